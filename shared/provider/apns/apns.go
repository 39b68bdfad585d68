// Package apns delivers pushes through Apple's APNs provider API over
// HTTP/2 with the sideshow/apns2 client (VENDORS.md §1–2). It renders each
// target's notification, sends one request per target concurrently over a
// connection kept across warm invocations, and classifies each answer for
// the dispatch engine.
//
// Provider tokens (JWTs) are shared by every container through a
// TokenCache, because Apple counts token refreshes per team and throttles a
// team whose containers each mint their own.
package apns

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/sideshow/apns2"

	"github.com/offline-push/offline-push/shared/push"
)

// maxInFlight bounds the requests of one Send in flight at once. APNs
// multiplexes them as HTTP/2 streams on one connection and allows far more;
// the bound keeps one big envelope from starving the others of a batch.
const maxInFlight = 100

// tokenUpdatesBackoff is how long a team told TooManyProviderTokenUpdates
// waits: Apple leaves the connection unusable "for a while".
const tokenUpdatesBackoff = time.Minute

// Codes of failures that APNs did not answer itself.
const (
	CodeInvalidCredentials = "InvalidCredentials" // the secret cannot be used
	CodeTokenCache         = "TokenCache"         // the shared provider token could not be read or published
	CodeTransport          = "TransportError"     // no valid APNs answer (network, TLS, timeout)
	CodeVoIPNotACall       = "VoIPNotACall"       // a VoIP token was given a chat message
	CodeBadEnvelope        = "BadEnvelope"        // the job has no envelope, or a target names a text it lacks
)

// Sender sends SendJobs to APNs. One Sender serves one container: it keeps
// that container's copy of each provider token, while HTTP/2 clients are
// kept per credentials in package state.
type Sender struct {
	cache TokenCache
	now   func() time.Time
	log   *slog.Logger

	mu     sync.Mutex
	tokens map[string]*tokenState // by TokenCache key
}

// New returns a Sender sharing provider tokens through cache. now is the
// clock that ages tokens and sets expirations (nil: time.Now).
func New(cache TokenCache, now func() time.Time, log *slog.Logger) *Sender {
	if now == nil {
		now = time.Now
	}
	return &Sender{cache: cache, now: now, log: log, tokens: map[string]*tokenState{}}
}

// Send delivers job and returns one result per target, in order. It never
// returns early: every target gets a verdict, also when the credentials or
// the token cache fail.
func (s *Sender) Send(ctx context.Context, job *push.SendJob) []push.SendResult {
	results := make([]push.SendResult, len(job.Targets))
	all := func(r push.SendResult) []push.SendResult {
		for i := range results {
			results[i] = r
		}
		return results
	}
	if job.Envelope == nil {
		return all(push.SendResult{Class: push.SendBadMessage, Code: CodeBadEnvelope})
	}
	c := connFor(job.CredentialsKey, job.Credentials)
	if c.err != nil {
		s.log.Error("apns credentials unusable", "app", job.Envelope.App, "certName", job.Envelope.CertName, "err", c.err)
		return all(push.SendResult{Class: push.SendAuth, Code: CodeInvalidCredentials})
	}
	var tok push.AccessToken
	if c.creds.tokenAuth() {
		var err error
		if tok, err = s.providerToken(ctx, c.creds); err != nil {
			s.log.Warn("apns provider token unavailable", "err", err)
			return all(push.SendResult{Class: push.SendTransient, Code: CodeTokenCache})
		}
	}
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	for i := range job.Targets {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			results[i] = s.sendOne(ctx, c, job, &job.Targets[i], tok)
		}()
	}
	wg.Wait()
	return results
}

// sendOne renders and sends one target's push. When APNs refuses the
// provider token, it refreshes the token once (within the 20-minute rule)
// and retries this target.
func (s *Sender) sendOne(ctx context.Context, c *conn, job *push.SendJob, t *push.Target, tok push.AccessToken) push.SendResult {
	o, err := build(job, t, c.creds, s.now())
	switch {
	case errors.Is(err, errTooLarge):
		return push.SendResult{Class: push.SendBadMessage, Code: apns2.ReasonPayloadTooLarge}
	case errors.Is(err, errNotACall):
		return push.SendResult{Class: push.SendBadMessage, Code: CodeVoIPNotACall}
	case err != nil:
		return push.SendResult{Class: push.SendBadMessage, Code: CodeBadEnvelope}
	}
	res, err := s.push(ctx, c, t, o, tok)
	if err != nil {
		return push.SendResult{Class: push.SendTransient, Code: CodeTransport}
	}
	if c.creds.tokenAuth() && providerTokenRefused(res) {
		fresh, ok, err := s.refreshToken(ctx, c.creds, tok)
		switch {
		case err != nil:
			s.log.Warn("apns provider token refresh failed", "err", err)
			return push.SendResult{Class: push.SendTransient, Code: CodeTokenCache}
		case !ok:
			return push.SendResult{Class: push.SendAuth, Code: res.Reason}
		}
		if res, err = s.push(ctx, c, t, o, fresh); err != nil {
			return push.SendResult{Class: push.SendTransient, Code: CodeTransport}
		}
	}
	if res.Reason == apns2.ReasonShutdown {
		// The server is going away: let the next request dial anew.
		c.transport.CloseIdleConnections()
	}
	return classify(res.StatusCode, res.Reason)
}

func (s *Sender) push(ctx context.Context, c *conn, t *push.Target, o *outgoing, tok push.AccessToken) (*apns2.Response, error) {
	ctx = withHeaders(ctx, &requestHeaders{bearer: tok.Value, expirationNow: o.expirationNow})
	return c.client(t.APNsEnvironment()).PushWithContext(ctx, o.n)
}

// providerTokenRefused reports whether APNs refused the provider token
// itself, which a fresh token may cure.
func providerTokenRefused(res *apns2.Response) bool {
	if res.StatusCode != http.StatusForbidden {
		return false
	}
	switch res.Reason {
	case apns2.ReasonExpiredProviderToken, apns2.ReasonInvalidProviderToken, apns2.ReasonMissingProviderToken:
		return true
	}
	return false
}

// classify maps an APNs answer to a send class, as VENDORS.md §1's table
// prescribes. The code is Apple's reason, or the status when there is none.
//
//   - 200: ok;
//   - 410 Unregistered or ExpiredToken, 400 BadDeviceToken (malformed, or a
//     token of the other environment) and 400 DeviceTokenNotForTopic: the
//     token is dead for this app and topic, invalid_token;
//   - 400 IdleTimeout is the connection's, not the request's: transient;
//   - other 400s, 404, 405 and 413: our request is wrong, bad_message;
//   - 403: the credential (the provider token after its one refresh, or
//     the certificate), auth;
//   - 429: throttled; TooManyProviderTokenUpdates waits a minute;
//   - 5xx: transient.
func classify(status int, reason string) push.SendResult {
	r := push.SendResult{Code: reason}
	if r.Code == "" && status != http.StatusOK {
		r.Code = strconv.Itoa(status)
	}
	switch {
	case status == http.StatusOK:
		r.Class = push.SendOK
	case status == http.StatusGone:
		r.Class = push.SendInvalidToken
	case status == http.StatusBadRequest && (reason == apns2.ReasonBadDeviceToken || reason == apns2.ReasonDeviceTokenNotForTopic):
		r.Class = push.SendInvalidToken
	case status == http.StatusBadRequest && reason == apns2.ReasonIdleTimeout:
		r.Class = push.SendTransient
	case status == http.StatusForbidden:
		r.Class = push.SendAuth
	case status == http.StatusTooManyRequests:
		r.Class = push.SendThrottled
		if reason == apns2.ReasonTooManyProviderTokenUpdates {
			r.RetryAfter = tokenUpdatesBackoff
		}
	case status >= 500:
		r.Class = push.SendTransient
	case status >= 400:
		r.Class = push.SendBadMessage
	default:
		// Not an answer APNs documents (a redirect, say): a later try may
		// meet a sane server.
		r.Class = push.SendTransient
	}
	return r
}
