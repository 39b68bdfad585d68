// Package ingest is the message use case (API.md §6): it validates a
// message, claims its id for idempotency, reads each recipient's state,
// lets the policy engine decide per device, records calls, and fans the
// pushes out to the vendor queues in envelopes. It imports push and policy
// and declares the interfaces it consumes; adapters meet it in shared/app.
//
// Recipients are processed in chunks (ChunkSize, 1,000 by default): read,
// evaluate, record calls, pack, send, record progress; then the next chunk.
// Memory stays bounded by a chunk whatever the number of recipients, and
// DynamoDB and SQS requests grow with recipients / 100.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/offline-push/offline-push/shared/policy"
	"github.com/offline-push/offline-push/shared/push"
)

// Query says what RecipientReader reads for each recipient besides the
// profile (bindings and app-level settings), which it always reads.
type Query struct {
	Presence bool
	// Conversation is the conversation whose own settings to read; nil for
	// none. For a peer message it is {peer, sender}.
	Conversation *push.Conversation
	// Call reads the callee's current call record.
	Call bool
}

// Recipient is what RecipientReader read about one recipient.
type Recipient struct {
	policy.Recipient
	// CallCancelledBy is the message id of the call_cancel that cancelled
	// the current call; empty while it stands or when there is none.
	CallCancelledBy string
	// CallDevices are the devices the current call's invite went to.
	CallDevices []push.CallDevice
}

// RecipientReader reads the state of recipients: BatchGetItem only, at most
// four item keys per recipient, no write.
type RecipientReader interface {
	// ReadRecipients returns the state of each of users, in order. users
	// holds no duplicates. now judges record expiry (a call record past its
	// retention reads as none); leases and DND durations are returned as
	// stored, for the policy engine to judge.
	ReadRecipients(ctx context.Context, app string, users []string, q Query, now time.Time) ([]Recipient, error)
}

// Claim is the outcome of claiming a message id.
type Claim struct {
	// Owner proves the claim to the ledger's other methods.
	Owner string
	// AcceptedAt is when the message was first accepted; a retry that takes
	// over keeps the first instant, so expiries agree between attempts.
	AcceptedAt time.Time
	// Sent are the envelope ids an earlier attempt already sent.
	Sent []string
	// Result is set when the message is done: the stored first result.
	Result []byte
}

// Ledger is the idempotency record of message ids (24 hours).
type Ledger interface {
	// Claim claims id for lease from now, or returns the stored result of a
	// message already done. While another request holds an unexpired lease
	// it returns an error wrapping push.ErrConflict.
	Claim(ctx context.Context, app, id string, now time.Time, lease time.Duration) (Claim, error)
	// MarkSent records envelope ids as sent; push.ErrConflict when owner
	// lost the claim.
	MarkSent(ctx context.Context, app, id, owner string, ids []string) error
	// Finish stores the result and ends the claim; push.ErrConflict when
	// owner lost the claim.
	Finish(ctx context.Context, app, id, owner string, result []byte) error
	// Release ends the lease at once, keeping the progress, so a retry can
	// take over without waiting.
	Release(ctx context.Context, app, id, owner string) error
}

// CallStore keeps each callee's current call (POLICY.md rule 26).
type CallStore interface {
	// Ring makes rec the callee's current call unless a newer call is
	// stored, with devices as the devices its invite goes to, and reports
	// whether rec is the current call afterwards.
	Ring(ctx context.Context, app, user string, rec push.CallRecord, devices []push.CallDevice, now time.Time) (bool, error)
	// Cancel marks call cancelled by messageID if it is the callee's
	// current call, returning the devices its invite went to; ok is false
	// when it is not the current call or another cancel came first.
	Cancel(ctx context.Context, app, user, call, messageID string) (devices []push.CallDevice, ok bool, err error)
}

// Outgoing is one envelope to enqueue, with its id: deterministic for the
// message (chunk, vendor and sequence), so a resumed request recognises the
// envelopes an earlier attempt sent.
type Outgoing struct {
	ID       string
	Envelope *push.Envelope
}

// Enqueuer sends envelopes to the vendor queues.
type Enqueuer interface {
	// Enqueue sends out to vendor v's queue. After each SendMessageBatch it
	// calls sent with the ids that call delivered; an error from sent stops
	// Enqueue and is returned.
	Enqueue(ctx context.Context, v push.Vendor, out []Outgoing, sent func(ids []string) error) error
}

// Defaults of a Service.
const (
	// DefaultChunkSize is how many recipients are read, decided and sent
	// together: 1,000 recipients make 30 to 40 BatchGetItem calls and a few
	// SendMessageBatch calls, and their decisions take well under a MiB.
	DefaultChunkSize = 1000
	// DefaultLease is how long a claim holds a message id: twice the HTTP
	// functions' timeout (25 s in template.yaml), so a request still
	// running is never taken over, and a crashed one is within a minute.
	DefaultLease = 50 * time.Second
	// defaultConcurrency bounds the call record writes in flight.
	defaultConcurrency = 16
	// deadlineMargin is the time a request keeps before its context's
	// deadline (the Lambda timeout) to stop between chunks and release its
	// claim; a chunk takes well under a second.
	deadlineMargin = 3 * time.Second
)

// Service is the message use case.
type Service struct {
	reader RecipientReader
	ledger Ledger
	calls  CallStore
	queue  Enqueuer
	log    *slog.Logger

	// ChunkSize is how many recipients are processed together;
	// DefaultChunkSize when 0.
	ChunkSize int
	// Lease is how long a claim holds a message id; DefaultLease when 0.
	Lease time.Duration
}

// New returns the use case over its stores and queue. log receives one
// summary line per message and the failures to release a claim.
func New(reader RecipientReader, ledger Ledger, calls CallStore, queue Enqueuer, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	return &Service{reader: reader, ledger: ledger, calls: calls, queue: queue, log: log}
}

// releaseTimeout bounds the release of a claim on the way out of a failed
// request, which must not wait on the request's own, maybe expired, context.
const releaseTimeout = 5 * time.Second

// Post processes one message of app received at now and returns its result.
// A dry run evaluates at req.EvaluateAt (else now), enqueues and writes
// nothing, and never touches the idempotency record. Otherwise the message
// id is claimed first: a repeat of a finished message gets the first result
// marked duplicate, a repeat while it is processed push.ErrConflict, and a
// retry after a crash resumes the fan-out where it stopped. A request that
// fails releases its claim, keeping its progress, so its retry can resume at
// once.
func (s *Service) Post(ctx context.Context, app string, req *Request, now time.Time) (*Result, error) {
	in, err := Parse(req)
	if err != nil {
		return nil, err
	}
	now = now.UTC().Truncate(time.Millisecond)
	if in.DryRun {
		clock := now
		if !in.EvaluateAt.IsZero() {
			clock = in.EvaluateAt
		}
		res, err := s.run(ctx, &job{app: app, in: in, clock: clock, accepted: clock, dry: true})
		if err != nil {
			return nil, err
		}
		res.DryRun = true
		s.summary(ctx, app, in, res, nil)
		return res, nil
	}

	id := in.Message.ID
	claim, err := s.ledger.Claim(ctx, app, id, now, s.lease())
	if err != nil {
		return nil, err
	}
	if claim.Result != nil {
		res, err := decodeStored(claim.Result)
		if err != nil {
			return nil, err
		}
		res.Duplicate = true
		return res, nil
	}
	j := &job{app: app, in: in, clock: now, accepted: claim.AcceptedAt, owner: claim.Owner,
		sent: make(map[string]bool, len(claim.Sent)), enqueued: map[push.Vendor]int{}}
	for _, e := range claim.Sent {
		j.sent[e] = true
	}
	res, err := s.run(ctx, j)
	if err == nil {
		var stored []byte
		if stored, err = encodeStored(res); err == nil {
			err = s.ledger.Finish(ctx, app, id, claim.Owner, stored)
		}
		if errors.Is(err, push.ErrConflict) {
			// The lease ran out and a retry took over: every push of this
			// request is sent and recorded, and the retry, which skips them,
			// finishes the record with the same result.
			s.log.LogAttrs(ctx, slog.LevelWarn, "message taken over before it finished",
				slog.String("app", app), slog.String("messageId", id))
			err = nil
		}
	}
	if err != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		defer cancel()
		if rerr := s.ledger.Release(rctx, app, id, claim.Owner); rerr != nil {
			s.log.LogAttrs(ctx, slog.LevelWarn, "release of a failed message's claim failed; its retry waits for the lease",
				slog.String("app", app), slog.String("messageId", id), slog.String("err", rerr.Error()))
		}
		return nil, err
	}
	s.summary(ctx, app, in, res, j.enqueued)
	return res, nil
}

func (s *Service) lease() time.Duration {
	if s.Lease > 0 {
		return s.Lease
	}
	return DefaultLease
}

func (s *Service) chunkSize() int {
	if s.ChunkSize > 0 {
		return s.ChunkSize
	}
	return DefaultChunkSize
}

// summary logs one line per message: its counts, its decisions by reason
// and the targets it enqueued per vendor, never a token or a text. Outside
// dry runs the line is also a CloudWatch Embedded Metric Format record
// (namespace OfflinePush/Ingest, dimension "type"), so the counts become
// metrics without an API call.
func (s *Service) summary(ctx context.Context, app string, in *Input, res *Result, enqueued map[push.Vendor]int) {
	attrs := []slog.Attr{
		slog.String("app", app),
		slog.String("messageId", in.Message.ID),
		slog.String("type", string(in.Message.Kind)),
		slog.Bool("dryRun", in.DryRun),
	}
	var metrics []map[string]string
	metric := func(name string, n int) {
		attrs = append(attrs, slog.Int(name, n))
		metrics = append(metrics, map[string]string{"Name": name, "Unit": "Count"})
	}
	metric("recipients", res.Recipients)
	metric("devices", res.Devices)
	metric("pushes", res.Pushes)
	for _, r := range push.Reasons {
		if n := res.Skipped[r]; n > 0 {
			metric("skipped."+string(r), n)
		}
	}
	for _, v := range push.Vendors {
		if n := enqueued[v]; n > 0 {
			metric("enqueued."+string(v), n)
		}
	}
	if !in.DryRun {
		attrs = append(attrs, slog.Any("_aws", map[string]any{
			"Timestamp": time.Now().UnixMilli(),
			"CloudWatchMetrics": []any{map[string]any{
				"Namespace":  "OfflinePush/Ingest",
				"Dimensions": [][]string{{"type"}},
				"Metrics":    metrics,
			}},
		}))
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "message", attrs...)
}

// job is one message being processed.
type job struct {
	app string
	in  *Input
	// clock judges leases, DND and call expiry: the request's clock, or
	// evaluateAt for a dry run.
	clock time.Time
	// accepted is when the message was first accepted: expiries count
	// from it, so a resumed request computes the same ones.
	accepted time.Time
	dry      bool
	owner    string
	sent     map[string]bool     // envelope ids already sent
	enqueued map[push.Vendor]int // targets this attempt enqueued, for the summary

	prep *policy.Prepared
	res  *Result
}

// run processes every chunk of recipients and returns the result.
func (s *Service) run(ctx context.Context, j *job) (*Result, error) {
	m := &j.in.Message
	if m.Call != nil {
		m.Call.AcceptedAt = j.accepted
	}
	j.prep = policy.Prepare(m)
	j.res = &Result{
		MessageID:  m.ID,
		Recipients: len(j.in.Recipients),
		Skipped:    map[push.Reason]int{},
		Explained:  j.in.Explain,
	}
	size := s.chunkSize()
	for c, start := 0, 0; start < len(j.in.Recipients); c, start = c+1, start+size {
		if dl, ok := ctx.Deadline(); ok && !j.dry && time.Until(dl) < deadlineMargin {
			// Stop cleanly while there is time to release the claim, so the
			// caller's retry resumes at once instead of after the lease.
			return nil, fmt.Errorf("message %s: stopped before the function's deadline after %d of %d recipients; a retry resumes: %w",
				m.ID, start, len(j.in.Recipients), push.ErrConflict)
		}
		users := j.in.Recipients[start:min(start+size, len(j.in.Recipients))]
		if err := s.chunk(ctx, j, c, users); err != nil {
			return nil, err
		}
	}
	return j.res, nil
}

// query returns what to read for each recipient of m.
func query(m *push.Message) Query {
	if m.Kind == push.KindCallCancel {
		// A cancel is not judged against settings: it needs the call record
		// and the profile (tokens, language, showPreview) only.
		return Query{Call: true}
	}
	q := Query{Presence: true, Call: m.Kind == push.KindCallInvite}
	conv := m.Conversation
	if conv.Type == push.Peer {
		conv.ID = m.Sender.UserID
	}
	q.Conversation = &conv
	return q
}

// chunk processes one chunk of recipients: read, decide, record calls, count
// and fan out.
func (s *Service) chunk(ctx context.Context, j *job, index int, users []string) error {
	m := &j.in.Message
	var ds []push.Decision
	var states []Recipient
	if m.Conversation.Type == push.Chatroom && m.Kind != push.KindCallCancel {
		// Chatroom messages are never pushed: nothing to read.
		ds = make([]push.Decision, len(users))
		for i, u := range users {
			ds[i] = push.Decision{UserID: u, Reason: push.ReasonChatroom}
		}
	} else {
		var err error
		if states, err = s.reader.ReadRecipients(ctx, j.app, users, query(m), j.clock); err != nil {
			return err
		}
		switch m.Kind {
		case push.KindCallCancel:
			if ds, err = s.cancel(ctx, j, states); err != nil {
				return err
			}
		default:
			ranges := make([][2]int, len(states))
			ds = make([]push.Decision, 0, 2*len(states))
			for i := range states {
				from := len(ds)
				ds = j.prep.Evaluate(&states[i].Recipient, j.clock, ds)
				ranges[i] = [2]int{from, len(ds)}
			}
			if m.Kind == push.KindCallInvite && !j.dry {
				if err := s.ring(ctx, j, states, ranges, ds); err != nil {
					return err
				}
			}
		}
	}
	res := j.res
	for i := range ds {
		d := &ds[i]
		if d.DeviceID != "" {
			res.Devices++
		}
		if d.Push {
			res.Pushes++
		} else {
			res.Skipped[d.Reason]++
		}
		if j.in.Explain {
			res.Decisions = append(res.Decisions, decision(d))
		}
	}
	if j.dry {
		return nil
	}
	return s.fanOut(ctx, j, index, ds)
}

// ring makes the invite each callee's current call, storing the devices it
// goes to (POLICY.md rule 26). A callee whose stored call turns out newer
// gets call_superseded instead of the reasons that rule precedes: an older
// invite arriving late never rings. Callees without devices, and those
// already judged superseded or expired, are left alone.
func (s *Service) ring(ctx context.Context, j *job, states []Recipient, ranges [][2]int, ds []push.Decision) error {
	m := &j.in.Message
	rec := push.CallRecord{CallID: m.Call.ID, AcceptedAt: m.Call.AcceptedAt, ExpiresAt: m.Call.ExpiresAt()}
	return each(ctx, len(states), func(ctx context.Context, i int) error {
		mine := ds[ranges[i][0]:ranges[i][1]]
		if len(mine) == 0 || mine[0].DeviceID == "" {
			return nil
		}
		var devices []push.CallDevice
		for k := range mine {
			d := &mine[k]
			if d.Reason == push.ReasonCallSuperseded || d.Reason == push.ReasonCallExpired {
				return nil
			}
			if d.Push {
				kind := push.TokenAlert
				if d.VoIP {
					kind = push.TokenVoIP
				}
				devices = append(devices, push.CallDevice{DeviceID: d.DeviceID, Vendor: d.Vendor, CertName: d.Binding.CertName, Kind: kind})
			}
		}
		current, err := s.calls.Ring(ctx, j.app, states[i].UserID, rec, devices, j.clock)
		if err != nil || current {
			return err
		}
		for k := range mine {
			d := &mine[k]
			switch d.Reason {
			case push.ReasonDeviceOnline, push.ReasonUserOnline, push.ReasonDesktopOnline:
				// These come before call_superseded in POLICY.md §8.
			default:
				*d = push.Decision{UserID: d.UserID, DeviceID: d.DeviceID, Vendor: d.Vendor, Reason: push.ReasonCallSuperseded, Binding: d.Binding}
			}
		}
		return nil
	})
}

// cancel decides a call_cancel: for each callee whose current call is the
// cancelled one, mark it cancelled and list the devices its invite went to,
// each with reason call and the cancel's text. A callee with another call or
// none gets no decision (API.md §6).
func (s *Service) cancel(ctx context.Context, j *job, states []Recipient) ([]push.Decision, error) {
	m := &j.in.Message
	per := make([][]push.CallDevice, len(states))
	err := each(ctx, len(states), func(ctx context.Context, i int) error {
		st := &states[i]
		cur := st.CurrentCall
		if cur == nil || cur.CallID != m.Call.ID || (st.CallCancelledBy != "" && st.CallCancelledBy != m.ID) {
			return nil
		}
		if j.dry {
			per[i] = st.CallDevices
			return nil
		}
		devices, ok, err := s.calls.Cancel(ctx, j.app, st.UserID, m.Call.ID, m.ID)
		if ok {
			per[i] = devices
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	var ds []push.Decision
	for i := range states {
		st := &states[i]
		for _, cd := range per[i] {
			d := push.Decision{UserID: st.UserID, DeviceID: cd.DeviceID, Vendor: cd.Vendor, Push: true, Reason: push.ReasonCall}
			var locale string
			for k := range st.Bindings {
				b := &st.Bindings[k]
				if b.DeviceID != cd.DeviceID || b.Vendor != cd.Vendor {
					continue
				}
				locale = b.Locale
				// The cancel goes by the token kind the invite used; a
				// device that lost that token since is listed but gets no
				// push (dispatch would drop it as unbound anyway).
				if (cd.Kind == push.TokenVoIP && b.VoIPToken != "") || (cd.Kind != push.TokenVoIP && b.Token != "") {
					d.Binding = b
					d.VoIP = cd.Kind == push.TokenVoIP
				}
			}
			t := j.prep.Render(policy.Viewer{Language: st.Settings.Language, Locale: locale, ShowPreview: st.Settings.ShowPreview})
			d.Title, d.Content, d.Language = t.Title, t.Body, t.Language
			ds = append(ds, d)
		}
	}
	return ds, nil
}

// each runs fn for 0..n-1 with at most defaultConcurrency in flight and
// returns the first error; after an error no new call starts.
func each(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		sem   = make(chan struct{}, defaultConcurrency)
	)
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(ctx, i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
					cancel()
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}
