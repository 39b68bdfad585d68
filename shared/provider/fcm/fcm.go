// Package fcm delivers pushes through Firebase Cloud Messaging HTTP v1 with
// the Firebase Admin SDK (firebase.google.com/go/v4): one message per
// target, sent with SendEach in batches of at most 500, and each answer
// classified once into a push.SendClass.
//
// Credentials are a Google service-account key file inside the vendor
// secret (see credentials); the SDK exchanges it for an OAuth access token
// at the key file's token_uri and reuses the token across warm invocations.
package fcm

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"firebase.google.com/go/v4/messaging"

	"github.com/offline-push/offline-push/shared/push"
)

// maxBatch is SendEach's limit on messages per call.
const maxBatch = 500

// sendHeadroom is kept back from the caller's deadline for the sends. The
// SDK retries a 503 on its own for up to about 7 s per message (longer when
// FCM asks, up to 2 minutes), and a send that ran into the Lambda deadline
// would leave dispatch no time to re-enqueue what failed.
const sendHeadroom = 2 * time.Second

// Sender delivers push.SendJobs to FCM. It is safe for concurrent use; the
// SDK clients it builds are shared by every Sender of the process.
type Sender struct {
	now func() time.Time
	log *slog.Logger
}

// New returns a Sender. now stamps APNs expirations of iOS devices
// registered through FCM.
func New(now func() time.Time, log *slog.Logger) *Sender {
	if log == nil {
		log = slog.Default()
	}
	return &Sender{now: now, log: log.With("vendor", string(push.FCM))}
}

// Send delivers job and returns one result per target, in order.
//
// A target whose answer was 401 UNAUTHENTICATED (an access token FCM no
// longer accepts) is sent once more with a client built afresh, which
// fetches a new token; a second 401 is SendAuth. Credentials that cannot
// work (a malformed secret, or a key the token endpoint refuses) make every
// target SendAuth without a send. When ctx has a deadline, sending stops
// sendHeadroom before it, and what was cut short is SendTransient.
func (s *Sender) Send(ctx context.Context, job *push.SendJob) []push.SendResult {
	results := make([]push.SendResult, len(job.Targets))
	if d, ok := ctx.Deadline(); ok && time.Until(d) > 2*sendHeadroom {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-sendHeadroom))
		defer cancel()
	}
	log := s.log.With("app", job.Envelope.App, "certName", job.Envelope.CertName, "messageId", job.Envelope.MessageID)
	c, res, ok := s.ready(ctx, job, log)
	if !ok {
		fill(results, res)
		return results
	}
	sh, dropped := newShared(job, c.creds, s.now())
	if len(dropped) > 0 {
		slices.Sort(dropped)
		log.Warn("payload keys reserved by FCM left out", "keys", dropped)
	}

	msgs := make([]*messaging.Message, len(job.Targets))
	var todo []int
	for i := range job.Targets {
		m, r := s.build(sh, job, &job.Targets[i])
		if m == nil {
			results[i] = r
			continue
		}
		msgs[i] = m
		todo = append(todo, i)
	}
	retry := s.sendAll(ctx, c, msgs, todo, results)
	if len(retry) == 0 {
		return results
	}

	// FCM refused the access token: build the client again, which mints a
	// new token, and send those targets once more.
	log.Warn("FCM refused the access token; fetching a new one", "targets", len(retry))
	dropClient(c)
	c, res, ok = s.ready(ctx, job, log)
	if !ok {
		for _, i := range retry {
			results[i] = res
		}
		return results
	}
	for _, i := range s.sendAll(ctx, c, msgs, retry, results) {
		results[i] = push.SendResult{Class: push.SendAuth, Code: "UNAUTHENTICATED"}
	}
	return results
}

// ready returns the job's client with a valid access token, or the result
// every target gets when there is none.
func (s *Sender) ready(ctx context.Context, job *push.SendJob, log *slog.Logger) (*client, push.SendResult, bool) {
	c, built, err := clientFor(job.CredentialsKey, job.Credentials)
	if err != nil {
		log.Error("FCM credentials unusable", "err", err)
		return nil, push.SendResult{Class: push.SendAuth, Code: "bad_credentials"}, false
	}
	if built {
		log.Info("FCM client built", "project", c.creds.project)
	}
	if err := c.token(ctx); err != nil {
		if code, ok := errContext(ctx.Err()); ok {
			return nil, push.SendResult{Class: push.SendTransient, Code: code}, false
		}
		if code, refused := tokenRefused(err); refused {
			log.Error("token endpoint refused the service account", "code", code)
			return nil, push.SendResult{Class: push.SendAuth, Code: "token_" + code}, false
		}
		log.Warn("access token fetch failed", "err", err)
		return nil, push.SendResult{Class: push.SendTransient, Code: "token_unavailable"}, false
	}
	return c, push.SendResult{}, true
}

// build returns target t's message with its token, or the result of a
// target that cannot be sent.
func (s *Sender) build(sh *shared, job *push.SendJob, t *push.Target) (*messaging.Message, push.SendResult) {
	env := job.Envelope
	if t.Token == "" {
		return nil, push.SendResult{Class: push.SendInvalidToken, Code: "empty_token"}
	}
	if t.Text < 0 || t.Text >= len(env.Texts) {
		return nil, push.SendResult{Class: push.SendBadMessage, Code: "no_text"}
	}
	var badge *int
	if env.Badge {
		if n, ok := job.Badges[t.UserID]; ok {
			badge = &n
		}
	}
	text := env.Texts[t.Text]
	m, ok := sh.fit(t, text.Title, text.Body, badge)
	if !ok {
		return nil, push.SendResult{Class: push.SendBadMessage, Code: "payload_too_large"}
	}
	m.Token = t.Token
	return m, push.SendResult{}
}

// sendAll sends msgs[i] for each i of idx with SendEach, at most maxBatch
// at a time, and records each result; it returns the indexes FCM answered
// with 401 UNAUTHENTICATED, to be retried with a new token.
func (s *Sender) sendAll(ctx context.Context, c *client, msgs []*messaging.Message, idx []int, results []push.SendResult) []int {
	var unauthenticated []int
	for chunk := range slices.Chunk(idx, maxBatch) {
		batch := make([]*messaging.Message, len(chunk))
		for j, i := range chunk {
			batch[j] = msgs[i]
		}
		br, err := c.msg.SendEach(ctx, batch)
		if err != nil {
			// SendEach sends nothing when it refuses the batch: a
			// message the SDK's own validation rejects.
			r := push.SendResult{Class: push.SendBadMessage, Code: "sdk_refused"}
			if code, ok := errContext(ctx.Err()); ok {
				r = push.SendResult{Class: push.SendTransient, Code: code}
			} else {
				s.log.Error("SDK refused the batch", "err", err)
			}
			for _, i := range chunk {
				results[i] = r
			}
			continue
		}
		for j, resp := range br.Responses {
			i := chunk[j]
			if resp.Success {
				results[i] = push.SendResult{Class: push.SendOK}
				continue
			}
			r, refresh := classify(resp.Error, s.now())
			if refresh {
				unauthenticated = append(unauthenticated, i)
			}
			results[i] = r
		}
	}
	return unauthenticated
}

func fill(results []push.SendResult, r push.SendResult) {
	for i := range results {
		results[i] = r
	}
}

// errContext tells a send cut short by the caller's deadline.
func errContext(err error) (string, bool) {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "DEADLINE_EXCEEDED", true
	case errors.Is(err, context.Canceled):
		return "CANCELLED", true
	}
	return "", false
}
