// Package dispatch is the engine behind every dispatch-<vendor> function: it
// takes the envelopes ingest queued for one vendor, re-checks each target
// (POLICY.md §8, at dispatch), counts badges, sends through the vendor's
// Sender, classifies every answer once for all vendors, and retries what can
// be retried without ever outliving a push's expiry. Every target ends in
// exactly one Outcome, or is handed on to a later try; both are counted.
//
// The package imports only push. The storage, queue, secret and vendor code
// it needs arrives through the small interfaces declared here, which the
// wiring in shared/app fills with the DynamoDB, SQS, Secrets Manager and
// provider adapters.
//
// # Retries: which path is taken when
//
// A target whose send failed for a reason that may pass (push.SendThrottled,
// push.SendTransient, push.SendAuth), or whose unbind failed, is retried:
//
//   - When every target of a record failed that way and nothing at all was
//     decided (delivered, dropped or waiting), Dispatch returns an error: the
//     record is reported in batchItemFailures and SQS delivers the same
//     message again once its visibility timeout ends. That costs no new SQS
//     message. A record whose reads (bindings, calls, badges, credentials)
//     fail is retried the same way, since nothing was sent yet. On the
//     record's last receive (Config.MaxReceives, the queue's maxReceiveCount)
//     its targets are written to the dead-letter queue by Dispatch itself
//     and counted dead_lettered, instead of being moved there by the redrive
//     policy unseen; the redrive policy stays as the net for crashes and
//     timeouts.
//   - Otherwise (partial success) only the failed targets are written back to
//     the queue as a new message: the same envelope with those targets and
//     Attempt+1, delayed by exponential backoff with jitter, at least the
//     vendor's RetryAfter, at most Config.MaxDelay (900 s, SQS's limit). A
//     retry that would come at or after the push's expiry ends as expired
//     (call_expired for an invite) instead. Since a new message's receive
//     count starts again, the Attempt bound (Config.MaxAttempts) is checked
//     here: past it, the targets go to the dead-letter queue, counted
//     dead_lettered.
//   - A throttled answer whose RetryAfter exceeds MaxDelay (a daily quota)
//     does not use up an attempt: the targets hop through the queue in
//     delays of at most MaxDelay until the vendor's reset or the push's
//     expiry, and while the wait lasts this container sends nothing for those
//     credentials.
//
// Counts of a record are added to the batch's Tally only once the record is
// settled (Dispatch returns nil), so a record that is delivered again is not
// counted twice. The one case where a vendor may see a push twice is a
// record that fails after sending because SQS kept refusing the retry
// message (after the SDK's own retries): the record comes again whole, and
// its delivered targets go out again, replacing themselves on the device
// through their collapse id.
//
// # Calls: how a cancel knows whether its invite was sent
//
// The callee's call item (StateTable, u#{app}#{user} / call) records, per
// device, what happened to the current call's invite:
//
//  1. Before an invite is handed to the vendor, dispatch marks its devices
//     "sending" until the invocation's deadline, on condition that the call
//     is still the callee's current call and not cancelled. A failed
//     condition means a cancel (or a newer call) came first: the invite is
//     dropped (call_cancelled, call_superseded) and never sent.
//  2. After the vendor answered, each device is marked "sent" (accepted, or a
//     transient failure that may hide an accepted push) or "unsent" (a
//     definite refusal). A retried invite marks "sending" again, on the same
//     condition.
//
// Ingest marks the call cancelled before it queues the cancel, so when a
// cancel is dispatched no new "sending" mark can appear. For each device
// the cancel then finds: no mark or "unsent" → the invite never reached the
// vendor and never will: nothing is sent (call_cancelled); "sent" → the
// cancel is sent (the provider renders a VoIP cancel or a "missed call"
// alert with the invite's collapse id); "sending" whose deadline has not
// passed → the invite is in flight, so the cancel is requeued until that
// deadline (it does not use up an attempt); "sending" past its deadline →
// the invite's invocation died mid-way, it may have been sent, and the
// cancel is sent. A cancel for a call that is no longer the callee's
// current one is dropped as call_superseded: the newer call's invite shares
// the collapse id, and a "missed call" alert would replace it.
package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/offline-push/offline-push/shared/push"
)

// Sender delivers one job to a vendor: one push.SendResult per target of
// job.Targets, in order. Every provider satisfies it.
type Sender interface {
	Send(ctx context.Context, job *push.SendJob) []push.SendResult
}

// BindingChecker re-reads the token index (POLICY.md §8).
type BindingChecker interface {
	// Bound reports, for each target, whether the token index still names
	// the target's user and device as the holder of its token, with the
	// target's token kind. It reads all targets together (one key each).
	Bound(ctx context.Context, app string, v push.Vendor, targets []push.Target) ([]bool, error)
}

// Unbinder removes a dead token.
type Unbinder interface {
	// Unbind removes the binding of t's device if it still holds t's token;
	// for a VoIP target only the VoIP token goes. A binding that moved on is
	// left alone, and that is not an error.
	Unbind(ctx context.Context, app string, v push.Vendor, t push.Target) error
}

// BadgeCounter counts a user's pushed messages (POLICY.md rule 23).
type BadgeCounter interface {
	// CountBadge adds one to the user's badge for messageID, once per
	// message however often it is asked, and returns the count.
	CountBadge(ctx context.Context, app, user, messageID string) (int, error)
}

// CallState reads and marks callees' call items (see the package comment).
type CallState interface {
	// Calls returns the current call of each user; a user without one is
	// absent from the map.
	Calls(ctx context.Context, app string, users []string, now time.Time) (map[string]*Call, error)
	// MarkSending marks devices of user as being sent call's invite until
	// until, if call is the user's current call and is not cancelled; it
	// reports whether it did.
	MarkSending(ctx context.Context, app, user, call string, devices []string, until time.Time) (bool, error)
	// MarkDone records how sending call's invite to each device ended, if
	// call is still the user's current call.
	MarkDone(ctx context.Context, app, user, call string, done map[string]InviteState, now time.Time) error
}

// Call is a callee's current call as dispatch needs it.
type Call struct {
	ID        string
	ExpiresAt time.Time
	Cancelled bool
	// Invites holds, by device id, what happened to this call's invite.
	Invites map[string]Invite
}

// InviteState is what dispatch recorded of an invite to one device.
type InviteState string

// Invite states.
const (
	InviteSending InviteState = "sending"
	InviteSent    InviteState = "sent"
	InviteUnsent  InviteState = "unsent"
)

// Invite is the record of an invite to one device: its state and, while
// sending, the deadline of the invocation that sends it.
type Invite struct {
	State InviteState
	Until time.Time
}

// Requeuer writes envelopes to the vendor's queue and dead-letter queue.
type Requeuer interface {
	// Requeue sends e to the vendor's queue, delivered after delay (whole
	// seconds, at most 900).
	Requeue(ctx context.Context, e *push.Envelope, delay time.Duration) error
	// DeadLetter sends e to the vendor's dead-letter queue.
	DeadLetter(ctx context.Context, e *push.Envelope) error
}

// CredentialSource reads a vendor credential: the JSON of the secret
// {prefix}/{app}/vendors/{certName} and a version key that changes when the
// secret does.
type CredentialSource interface {
	VendorCredentials(ctx context.Context, app, certName string) ([]byte, string, error)
}

// Deps are the adapters the engine runs on.
type Deps struct {
	Sender      Sender
	Bindings    BindingChecker
	Unbinder    Unbinder
	Badges      BadgeCounter
	Calls       CallState
	Queue       Requeuer
	Credentials CredentialSource
}

// Defaults of Config.
const (
	DefaultMaxAttempts = 8
	DefaultBaseDelay   = 2 * time.Second
	// MaxDelay is SQS's longest DelaySeconds.
	MaxDelay = 900 * time.Second
	// DefaultSendingLease is how long an invite's "sending" mark holds when
	// the context has no deadline.
	DefaultSendingLease = time.Minute
	// DefaultConcurrency bounds the per-user store calls of one record.
	DefaultConcurrency = 16
)

// Config tunes an Engine. Zero fields take the defaults.
type Config struct {
	// Vendor is the vendor whose queue this engine drains; an envelope of
	// another vendor is a bad message.
	Vendor push.Vendor
	// MaxAttempts bounds Envelope.Attempt: a target failing again at this
	// attempt is dead-lettered (default 8).
	MaxAttempts int
	// MaxReceives is the queue's maxReceiveCount: on that receive a record
	// that would fail whole is dead-lettered explicitly. 0: unknown, the
	// redrive policy does it (uncounted).
	MaxReceives int
	// BaseDelay is the first retry's delay, doubled per attempt (default 2 s;
	// negative: retry without delay, unless the vendor asked for one).
	BaseDelay time.Duration
	// MaxDelay caps every delay (default and at most 900 s).
	MaxDelay time.Duration
	// Concurrency bounds the store calls of one record made at once.
	Concurrency int
	// Now is the clock (default time.Now); Jitter returns a random duration
	// in [0, d) (default math/rand).
	Now    func() time.Time
	Jitter func(d time.Duration) time.Duration
	Log    *slog.Logger
}

// Engine dispatches the envelopes of one vendor's queue. It is safe for
// concurrent use and meant to live across warm invocations.
type Engine struct {
	d   Deps
	cfg Config

	mu      sync.Mutex
	blocked map[string]time.Time // app/certName → the vendor's quota reset
}

// New returns an engine over d. Every dependency is required.
func New(d Deps, cfg Config) (*Engine, error) {
	if d.Sender == nil || d.Bindings == nil || d.Unbinder == nil || d.Badges == nil || d.Calls == nil || d.Queue == nil || d.Credentials == nil {
		return nil, errors.New("dispatch: every dependency is required")
	}
	if _, ok := push.ParseVendor(string(cfg.Vendor)); !ok {
		return nil, fmt.Errorf("dispatch: unknown vendor %q", cfg.Vendor)
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	switch {
	case cfg.BaseDelay < 0:
		cfg.BaseDelay = 0
	case cfg.BaseDelay == 0:
		cfg.BaseDelay = DefaultBaseDelay
	}
	if cfg.MaxDelay <= 0 || cfg.MaxDelay > MaxDelay {
		cfg.MaxDelay = MaxDelay
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Jitter == nil {
		cfg.Jitter = func(d time.Duration) time.Duration {
			if d <= 0 {
				return 0
			}
			return rand.N(d)
		}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Engine{d: d, cfg: cfg, blocked: map[string]time.Time{}}, nil
}

// Record is one SQS record as the engine needs it.
type Record struct {
	// ID is the SQS message id, for logs.
	ID   string
	Body []byte
	// ReceiveCount is the record's ApproximateReceiveCount (1 on the first
	// delivery); 0 when unknown.
	ReceiveCount int
}

// ErrRetry marks the error Dispatch returns for a record that should be
// delivered again as it is (see the package comment).
var ErrRetry = errors.New("record to be delivered again")

// state is what one record's work knows of a target.
type state struct {
	t       push.Target
	outcome Outcome // final outcome, once decided
	// retry: failed for a reason that may pass; to be tried again at
	// Attempt+1 after delay. hop: to be tried again at the same Attempt
	// after delay (a cancel waiting for its invite, a quota wait).
	retry, hop bool
	delay      time.Duration
	code       string // the vendor's code, for logs
	class      push.SendClass
	send       bool // passed every check; goes to the vendor
	requeued   bool // handed on in a new message
	invite     bool // an invite whose device was marked sending
}

func (s *state) open() bool { return s.outcome == "" && !s.retry && !s.hop && !s.requeued }

// record is the work on one SQS record.
type record struct {
	e      *Engine
	rec    Record
	env    *push.Envelope
	now    time.Time
	states []state
	log    *slog.Logger
}

// Dispatch works through one record. It returns nil once every target of
// the record is settled (a final outcome, or handed on in a new message),
// having added the counts to tally, and an error wrapping ErrRetry when the
// record is to be delivered again as it is.
func (e *Engine) Dispatch(ctx context.Context, rec Record, tally *Tally) error {
	log := e.cfg.Log.With("vendor", string(e.cfg.Vendor), "record", rec.ID)
	env, err := push.DecodeEnvelope(rec.Body)
	if err == nil {
		err = e.validate(env)
	}
	if err != nil {
		n := countTargets(rec.Body)
		// The error names the message id and the broken part, never a token
		// or a text.
		log.WarnContext(ctx, "unreadable envelope dropped", "outcome", string(BadMessage), "targets", n, "err", err)
		tally.Add(string(BadMessage), n)
		return nil
	}
	r := &record{e: e, rec: rec, env: env, now: e.cfg.Now(), log: log.With("app", env.App, "messageId", env.MessageID, "attempt", env.Attempt)}
	r.states = make([]state, len(env.Targets))
	for i, t := range env.Targets {
		r.states[i].t = t
		if !validTarget(&t) {
			r.states[i].outcome = BadMessage
			r.states[i].code = "invalid_target"
		}
	}
	err = r.run(ctx)
	if err != nil && r.lastReceive() {
		// SQS would move the record to the dead-letter queue unseen; do it
		// here so that it is counted.
		err = r.deadLetterRest(ctx, err)
	}
	if err != nil {
		tally.Add(Retried, len(env.Targets))
		return fmt.Errorf("message %s attempt %d: %w: %w", env.MessageID, env.Attempt, ErrRetry, err)
	}
	counts := r.counts(ctx)
	tally.merge(counts)
	attrs := make([]any, 0, 2*len(counts))
	for k, n := range counts {
		attrs = append(attrs, k, n)
	}
	r.log.InfoContext(ctx, "record dispatched", attrs...)
	return nil
}

// deadLetterRest writes every target without a final outcome to the
// dead-letter queue, after cause made the record fail on its last receive.
// It returns nil when that worked, and cause joined with the failure
// otherwise.
func (r *record) deadLetterRest(ctx context.Context, cause error) error {
	var rest []int
	for i := range r.states {
		if s := &r.states[i]; s.outcome == "" && !s.requeued {
			rest = append(rest, i)
		}
	}
	if len(rest) > 0 {
		if err := r.e.d.Queue.DeadLetter(ctx, deadLetter(r.env, r.targets(rest))); err != nil {
			return errors.Join(cause, fmt.Errorf("dead-letter on the last receive: %w", err))
		}
	}
	r.log.ErrorContext(ctx, "record failed on its last receive; its open targets were dead-lettered", "targets", len(rest), "err", cause)
	r.finish(rest, DeadLettered)
	return nil
}

// counts tallies the states of a settled record.
func (r *record) counts(ctx context.Context) map[string]int {
	counts := map[string]int{}
	for i := range r.states {
		s := &r.states[i]
		switch {
		case s.outcome != "":
			counts[string(s.outcome)]++
			if s.outcome != Delivered {
				r.log.DebugContext(ctx, "target", "outcome", string(s.outcome), "code", s.code, "user", s.t.UserID,
					"device", s.t.DeviceID, "token", push.Redact(s.t.Token))
			}
		case s.requeued:
			counts[Requeued]++
		}
	}
	return counts
}

// lastReceive reports whether this is the record's last delivery before the
// redrive policy moves it.
func (r *record) lastReceive() bool {
	return r.e.cfg.MaxReceives > 0 && r.rec.ReceiveCount >= r.e.cfg.MaxReceives
}

// validate checks what DecodeEnvelope leaves to the reader: that the
// envelope belongs on this queue and is whole enough to act on.
func (e *Engine) validate(env *push.Envelope) error {
	if env.Vendor != e.cfg.Vendor {
		return fmt.Errorf("envelope of message %s is for vendor %q, not %q", env.MessageID, env.Vendor, e.cfg.Vendor)
	}
	if !push.ValidApp(env.App) || !push.ValidID(env.MessageID) || env.CertName == "" {
		return errors.New("envelope lacks a valid app, message id or certName")
	}
	switch env.Kind {
	case push.KindMessage:
	case push.KindCallInvite, push.KindCallCancel:
		if !push.ValidID(env.CallID) {
			return fmt.Errorf("call envelope of message %s lacks a valid call id", env.MessageID)
		}
	default:
		return fmt.Errorf("envelope of message %s has kind %q", env.MessageID, env.Kind)
	}
	if env.ExpiresAt <= 0 {
		return fmt.Errorf("envelope of message %s has no expiry", env.MessageID)
	}
	if len(env.Targets) > push.MaxEnvelopeTargets {
		return fmt.Errorf("envelope of message %s has %d targets, more than %d", env.MessageID, len(env.Targets), push.MaxEnvelopeTargets)
	}
	return nil
}

func validTarget(t *push.Target) bool {
	if t.Token == "" || !push.ValidID(t.UserID) || !push.ValidID(t.DeviceID) {
		return false
	}
	k := t.TokenKind()
	return k == push.TokenAlert || k == push.TokenVoIP
}

// countTargets counts the targets an unreadable envelope names, as far as
// its JSON can be read, so that a bad envelope is counted per target.
func countTargets(body []byte) int {
	var v struct {
		Targets []json.RawMessage `json:"targets"`
	}
	if json.Unmarshal(body, &v) != nil {
		return 0
	}
	return len(v.Targets)
}

// run decides every target of the record. An error means the record must
// come again (or, on its last receive, be dead-lettered).
func (r *record) run(ctx context.Context) error {
	if err := r.checkBindings(ctx); err != nil {
		return err
	}
	r.checkExpiry()
	if err := r.checkCalls(ctx); err != nil {
		return err
	}
	if err := r.send(ctx); err != nil {
		return err
	}
	if r.allFailed() {
		return errors.New("every target failed for a reason that may pass")
	}
	return r.settle(ctx)
}

// checkBindings drops the targets whose token left their device (unbound).
func (r *record) checkBindings(ctx context.Context) error {
	var idx []int
	var targets []push.Target
	for i := range r.states {
		if r.states[i].open() {
			idx = append(idx, i)
			targets = append(targets, r.states[i].t)
		}
	}
	if len(targets) == 0 {
		return nil
	}
	bound, err := r.e.d.Bindings.Bound(ctx, r.env.App, r.env.Vendor, targets)
	if err != nil {
		return fmt.Errorf("check bindings: %w", err)
	}
	if len(bound) != len(targets) {
		return fmt.Errorf("check bindings: %d answers for %d targets", len(bound), len(targets))
	}
	for j, i := range idx {
		if !bound[j] {
			r.states[i].outcome = Unbound
		}
	}
	return nil
}

// expiredOutcome is how a push of this envelope ends when its time is up.
func (r *record) expiredOutcome() Outcome {
	if r.env.Kind == push.KindCallInvite {
		return CallExpired
	}
	return Expired
}

// checkExpiry ends the open targets once the envelope's lifetime is over:
// a push is never sent after its expiry, however long it waited in queues.
func (r *record) checkExpiry() {
	if r.now.UnixMilli() < r.env.ExpiresAt {
		return
	}
	for i := range r.states {
		if r.states[i].open() {
			r.states[i].outcome = r.expiredOutcome()
		}
	}
}

// checkCalls applies the call rules to invites and cancels (package comment).
func (r *record) checkCalls(ctx context.Context) error {
	if r.env.Kind == push.KindMessage {
		return nil
	}
	users := r.openUsers()
	if len(users) == 0 {
		return nil
	}
	calls, err := r.e.d.Calls.Calls(ctx, r.env.App, users, r.now)
	if err != nil {
		return fmt.Errorf("read calls: %w", err)
	}
	for i := range r.states {
		s := &r.states[i]
		if !s.open() {
			continue
		}
		c := calls[s.t.UserID]
		if r.env.Kind == push.KindCallInvite {
			s.outcome = r.inviteVerdict(c)
			continue
		}
		switch {
		case c == nil:
			s.outcome = CallExpired
		case c.ID != r.env.CallID:
			s.outcome = CallSuperseded
		default:
			inv := c.Invites[s.t.DeviceID]
			switch {
			case inv.State == "" || inv.State == InviteUnsent:
				s.outcome = CallCancelled
			case inv.State == InviteSending && r.now.Before(inv.Until):
				// The invite is in flight: wait until its invocation's
				// deadline, then look again.
				s.hop = true
				s.delay = inv.Until.Sub(r.now)
				s.code = "invite_in_flight"
			}
		}
	}
	return nil
}

// inviteVerdict is the outcome of an invite given the callee's call; empty
// when the invite may go.
func (r *record) inviteVerdict(c *Call) Outcome {
	switch {
	case c == nil:
		return CallExpired
	case c.ID != r.env.CallID:
		return CallSuperseded
	case c.Cancelled:
		return CallCancelled
	case !r.now.Before(c.ExpiresAt):
		return CallExpired
	}
	return ""
}

// openUsers lists the distinct users of the targets still open, in order.
func (r *record) openUsers() []string {
	seen := map[string]bool{}
	var users []string
	for i := range r.states {
		if u := r.states[i].t.UserID; r.states[i].open() && !seen[u] {
			seen[u] = true
			users = append(users, u)
		}
	}
	return users
}

// credKey names the credentials for the quota memory.
func (r *record) credKey() string { return r.env.App + "/" + r.env.CertName }

// send hands the targets that passed every check to the vendor and
// classifies the answers.
func (r *record) send(ctx context.Context) error {
	if len(r.openUsers()) == 0 {
		return nil
	}
	if until, ok := r.e.quotaWait(r.credKey(), r.now); ok {
		for i := range r.states {
			if s := &r.states[i]; s.open() {
				s.hop, s.delay, s.code = true, until.Sub(r.now), "quota_wait"
			}
		}
		return nil
	}
	creds, version, err := r.e.d.Credentials.VendorCredentials(ctx, r.env.App, r.env.CertName)
	if err != nil {
		return fmt.Errorf("read credentials %s: %w", r.env.CertName, err)
	}
	badges, err := r.countBadges(ctx)
	if err != nil {
		return err
	}
	if r.env.Kind == push.KindCallInvite {
		if err := r.markSending(ctx); err != nil {
			return err
		}
	}
	var idx []int
	var targets []push.Target
	for i := range r.states {
		if r.states[i].open() {
			r.states[i].send = true
			idx = append(idx, i)
			targets = append(targets, r.states[i].t)
		}
	}
	if len(targets) == 0 {
		return nil
	}
	job := &push.SendJob{
		Envelope:       r.env,
		Targets:        targets,
		Credentials:    creds,
		CredentialsKey: r.env.App + "/" + r.env.CertName + "@" + version,
		TTL:            r.env.Expiry().Sub(r.now),
		Badges:         badges,
	}
	results := r.e.d.Sender.Send(ctx, job)
	if len(results) != len(targets) {
		r.log.ErrorContext(ctx, "sender answered for the wrong number of targets", "targets", len(targets), "results", len(results))
	}
	for j, i := range idx {
		res := push.SendResult{Class: push.SendTransient, Code: "no_result"}
		if j < len(results) {
			res = results[j]
		}
		r.classify(ctx, &r.states[i], res)
	}
	if r.env.Kind == push.KindCallInvite {
		r.markDone(ctx)
	}
	r.unbindDead(ctx)
	return nil
}

// classify applies the one classification of DESIGN.md §Dispatch. Dead
// tokens are unbound afterwards, by unbindDead.
func (r *record) classify(ctx context.Context, s *state, res push.SendResult) {
	s.code, s.class = res.Code, res.Class
	switch res.Class {
	case push.SendOK:
		s.outcome = Delivered
	case push.SendInvalidToken:
		s.outcome = InvalidToken
	case push.SendBadMessage:
		s.outcome = BadMessage
	case push.SendThrottled:
		if res.RetryAfter > r.e.cfg.MaxDelay {
			// A quota wait: hop without using up an attempt, and keep
			// this container from asking again before the reset.
			until := r.now.Add(res.RetryAfter)
			r.e.blockUntil(r.credKey(), until)
			s.hop, s.delay = true, res.RetryAfter
			return
		}
		s.retry, s.delay = true, res.RetryAfter
	case push.SendAuth:
		// The provider refreshed the credential once already; this is for
		// an operator to look at (alarm on the log line and the metric).
		r.log.ErrorContext(ctx, "vendor refused our credentials", "certName", r.env.CertName, "code", res.Code)
		s.retry = true
	default: // push.SendTransient and anything a provider should not answer
		s.class = push.SendTransient
		s.retry = true
	}
}

// unbindDead removes the bindings of dead tokens. A failed unbind turns the
// target into a retry, so that "invalid_token" always means the binding is
// gone: the next try meets the dead token again and unbinds again.
func (r *record) unbindDead(ctx context.Context) {
	var idx []int
	for i := range r.states {
		if r.states[i].outcome == InvalidToken && r.states[i].send {
			idx = append(idx, i)
		}
	}
	r.e.each(ctx, len(idx), func(ctx context.Context, j int) {
		s := &r.states[idx[j]]
		if err := r.e.d.Unbinder.Unbind(ctx, r.env.App, r.env.Vendor, s.t); err != nil {
			r.log.WarnContext(ctx, "unbind failed; the target is retried", "user", s.t.UserID, "device", s.t.DeviceID,
				"token", push.Redact(s.t.Token), "err", err)
			s.outcome, s.retry = "", true
		}
	})
}

// countBadges takes one count per user of the targets about to be sent,
// when the envelope asks for a badge.
func (r *record) countBadges(ctx context.Context) (map[string]int, error) {
	if !r.env.Badge {
		return nil, nil
	}
	users := r.openUsers()
	counts := make([]int, len(users))
	errs := make([]error, len(users))
	r.e.each(ctx, len(users), func(ctx context.Context, i int) {
		counts[i], errs[i] = r.e.d.Badges.CountBadge(ctx, r.env.App, users[i], r.env.MessageID)
	})
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("count badges: %w", err)
	}
	out := make(map[string]int, len(users))
	for i, u := range users {
		out[u] = counts[i]
	}
	return out, nil
}

// markSending marks each callee's devices before the invite is sent; a
// callee whose mark fails is read again and judged again.
func (r *record) markSending(ctx context.Context) error {
	until := r.now.Add(DefaultSendingLease)
	if d, ok := ctx.Deadline(); ok {
		until = d
	}
	users := r.openUsers()
	devices := make(map[string][]string, len(users))
	for i := range r.states {
		if s := &r.states[i]; s.open() {
			devices[s.t.UserID] = append(devices[s.t.UserID], s.t.DeviceID)
		}
	}
	verdicts := make([]Outcome, len(users))
	errs := make([]error, len(users))
	r.e.each(ctx, len(users), func(ctx context.Context, i int) {
		u := users[i]
		ok, err := r.e.d.Calls.MarkSending(ctx, r.env.App, u, r.env.CallID, devices[u], until)
		if err != nil || ok {
			errs[i] = err
			return
		}
		calls, err := r.e.d.Calls.Calls(ctx, r.env.App, []string{u}, r.now)
		if err != nil {
			errs[i] = err
			return
		}
		verdicts[i] = r.inviteVerdict(calls[u])
		if verdicts[i] == "" {
			// The mark was refused, yet the call looks current: it changed
			// between the two requests. Judge it on the next try.
			errs[i] = fmt.Errorf("call of user %s changed while marking its invite", u)
		}
	})
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("mark invites: %w", err)
	}
	for i := range r.states {
		s := &r.states[i]
		if !s.open() {
			continue
		}
		for j, u := range users {
			if u == s.t.UserID {
				if verdicts[j] != "" {
					s.outcome = verdicts[j]
				} else {
					s.invite = true
				}
			}
		}
	}
	return nil
}

// markDone records how each invite ended. A failure is only logged: the
// "sending" mark then lapses at its deadline, after which a cancel is sent
// as if the invite had been.
func (r *record) markDone(ctx context.Context) {
	done := map[string]map[string]InviteState{}
	for i := range r.states {
		s := &r.states[i]
		if !s.invite {
			continue
		}
		// A transient failure may hide a push the vendor accepted (a lost
		// answer), so it counts as sent: a cancel is cheap, a phone left
		// ringing is not.
		st := InviteUnsent
		if s.class == push.SendOK || s.class == push.SendTransient {
			st = InviteSent
		}
		if done[s.t.UserID] == nil {
			done[s.t.UserID] = map[string]InviteState{}
		}
		done[s.t.UserID][s.t.DeviceID] = st
	}
	users := make([]string, 0, len(done))
	for u := range done {
		users = append(users, u)
	}
	r.e.each(ctx, len(users), func(ctx context.Context, i int) {
		u := users[i]
		if err := r.e.d.Calls.MarkDone(ctx, r.env.App, u, r.env.CallID, done[u], r.now); err != nil {
			r.log.WarnContext(ctx, "recording sent invites failed; their marks lapse at the deadline", "user", u, "err", err)
		}
	})
}

// allFailed reports whether every target failed for a reason that may pass
// and nothing else was decided: the case for redelivering the record as it is.
func (r *record) allFailed() bool {
	for i := range r.states {
		if !r.states[i].retry {
			return false
		}
	}
	return len(r.states) > 0
}

// settle hands on the targets to be tried again.
func (r *record) settle(ctx context.Context) error {
	var retry, hop []int
	var retryDelay, hopDelay time.Duration
	for i := range r.states {
		s := &r.states[i]
		switch {
		case s.retry:
			retry = append(retry, i)
			retryDelay = max(retryDelay, s.delay)
		case s.hop:
			hop = append(hop, i)
			hopDelay = max(hopDelay, s.delay)
		}
	}
	if len(retry) > 0 {
		if r.env.Attempt+1 > r.e.cfg.MaxAttempts {
			if err := r.e.d.Queue.DeadLetter(ctx, deadLetter(r.env, r.targets(retry))); err != nil {
				return fmt.Errorf("dead-letter %d targets: %w", len(retry), err)
			}
			r.log.WarnContext(ctx, "targets dead-lettered after their last attempt", "targets", len(retry))
			r.finish(retry, DeadLettered)
		} else {
			delay := max(r.e.backoff(r.env.Attempt), retryDelay)
			if err := r.requeue(ctx, retry, delay, r.env.Attempt+1); err != nil {
				return err
			}
		}
	}
	if len(hop) > 0 {
		if err := r.requeue(ctx, hop, hopDelay, r.env.Attempt); err != nil {
			return err
		}
	}
	return nil
}

// requeue writes the targets at idx back to the queue as a new message,
// unless the try would come at or after expiry, which ends them.
func (r *record) requeue(ctx context.Context, idx []int, delay time.Duration, attempt int) error {
	delay = roundDelay(min(delay, r.e.cfg.MaxDelay))
	if !r.now.Add(delay).Before(r.env.Expiry()) {
		r.finish(idx, r.expiredOutcome())
		return nil
	}
	next := *r.env
	next.Targets = r.targets(idx)
	next.Attempt = attempt
	if err := r.e.d.Queue.Requeue(ctx, &next, delay); err != nil {
		return fmt.Errorf("requeue %d targets: %w", len(idx), err)
	}
	for _, i := range idx {
		r.states[i].retry, r.states[i].hop, r.states[i].requeued = false, false, true
	}
	r.log.InfoContext(ctx, "targets requeued", "targets", len(idx), "delaySeconds", int(delay/time.Second), "nextAttempt", attempt)
	return nil
}

func (r *record) finish(idx []int, o Outcome) {
	for _, i := range idx {
		s := &r.states[i]
		s.retry, s.hop, s.outcome = false, false, o
	}
}

func (r *record) targets(idx []int) []push.Target {
	out := make([]push.Target, len(idx))
	for j, i := range idx {
		out[j] = r.states[i].t
	}
	return out
}

// deadLetter is the envelope written to the dead-letter queue: e with only
// targets, and Attempt 0 so that an operator's redrive, once the cause is
// fixed, gets a full set of retries.
func deadLetter(e *push.Envelope, targets []push.Target) *push.Envelope {
	d := *e
	d.Targets = targets
	d.Attempt = 0
	return &d
}

// backoff is the delay before the try after attempt: BaseDelay doubled per
// attempt, capped at MaxDelay, with jitter over its upper half.
func (e *Engine) backoff(attempt int) time.Duration {
	if e.cfg.BaseDelay == 0 {
		return 0
	}
	d := e.cfg.BaseDelay << min(attempt, 20)
	if d <= 0 || d > e.cfg.MaxDelay {
		d = e.cfg.MaxDelay
	}
	half := d / 2
	return half + e.cfg.Jitter(d-half+1)
}

// roundDelay rounds up to whole seconds, the unit of SQS's DelaySeconds.
func roundDelay(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return (d + time.Second - 1) / time.Second * time.Second
}

// quotaWait reports whether a vendor quota wait for key lasts beyond now.
func (e *Engine) quotaWait(key string, now time.Time) (time.Time, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	until, ok := e.blocked[key]
	if ok && !now.Before(until) {
		delete(e.blocked, key)
		return time.Time{}, false
	}
	return until, ok
}

func (e *Engine) blockUntil(key string, until time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if until.After(e.blocked[key]) {
		e.blocked[key] = until
	}
}

// each runs fn for 0..n-1 with at most Concurrency at once.
func (e *Engine) each(ctx context.Context, n int, fn func(ctx context.Context, i int)) {
	if n == 0 {
		return
	}
	sem := make(chan struct{}, e.cfg.Concurrency)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			fn(ctx, i)
		}()
	}
	wg.Wait()
}
