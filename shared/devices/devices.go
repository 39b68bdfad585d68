// Package devices is the token-upload use case (API.md §3): it validates a
// device's push token, enforces the one-owner rule (a token belongs to at
// most one device of an app) and lists a user's devices. It plans every
// change from a snapshot of the table and hands the plan to a Store, which
// applies it as one transaction. It imports only push.
package devices

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/offline-push/offline-push/shared/push"
)

// Store reads and writes bindings, the token index and presence.
type Store interface {
	// Read returns the profiles of users and the index entries of tokens,
	// strongly consistent, in one snapshot.
	Read(ctx context.Context, app string, users []string, tokens []TokenRef) (Snapshot, error)
	// Apply performs p atomically. It returns an error wrapping
	// push.ErrConflict when an item no longer is what p expects.
	Apply(ctx context.Context, app string, p Plan) error
	// Devices returns a user's bindings and presence leases, in any order.
	Devices(ctx context.Context, app, user string) ([]push.Binding, []push.Lease, error)
}

// Certs tells which vendor a named credential belongs to.
type Certs interface {
	// CertVendor returns the vendor of the credentials certName of app, or
	// an error wrapping push.ErrNotFound when there are none.
	CertVendor(ctx context.Context, app, certName string) (push.Vendor, error)
}

// Defaults of the optimistic concurrency retry. Eight attempts with full
// jitter over a doubling window spread about two seconds: enough for a burst
// of registrations of one token to settle, short of any caller's timeout.
const (
	defaultAttempts = 8
	defaultBackoff  = 10 * time.Millisecond
	maxBackoff      = time.Second
	// maxReadRounds bounds the snapshot reads of one attempt. Three rounds
	// suffice (see missing); a fourth would mean the planner keeps asking.
	maxReadRounds = 4
)

// Service is the device use case.
type Service struct {
	store Store
	certs Certs
	log   *slog.Logger

	// Attempts bounds how often a write that lost a race is re-planned from
	// a fresh read before the caller gets push.ErrConflict.
	Attempts int
	// Backoff is the first retry's maximal delay; each retry doubles it, and
	// the delay is drawn uniformly below it (full jitter).
	Backoff time.Duration
}

// New returns a Service over store and certs that logs to log.
func New(store Store, certs Certs, log *slog.Logger) *Service {
	return &Service{store: store, certs: certs, log: log, Attempts: defaultAttempts, Backoff: defaultBackoff}
}

// Registered is the outcome of a PUT.
type Registered struct {
	UserID  string
	Binding push.Binding
	// MovedFrom is the previous holder of the token, else of the VoIP token;
	// nil when nothing moved.
	MovedFrom *push.Owner
}

// Device is one line of a user's device list. A presence-only device has a
// zero Vendor, CertName, TokenSuffix and RegisteredAt.
type Device struct {
	DeviceID     string
	Vendor       push.Vendor
	CertName     string
	TokenSuffix  string
	Platform     push.Platform
	RegisteredAt time.Time
	Online       bool
	LeaseUntil   time.Time // zero unless Online
}

// Register validates r and binds user's device to its token at now, moving
// the token (and the VoIP token) from any other holder in the same
// transaction. Body errors come first, then the credential check, as API.md
// §1 orders them.
func (s *Service) Register(ctx context.Context, app, user, device string, r Registration, now time.Time) (Registered, error) {
	if err := validPath(app, user, device); err != nil {
		return Registered{}, err
	}
	b, err := r.validate(device)
	if err != nil {
		return Registered{}, err
	}
	v, err := s.certs.CertVendor(ctx, app, b.CertName)
	switch {
	case errors.Is(err, push.ErrNotFound):
		return Registered{}, fmt.Errorf("certName %q: %w", b.CertName, push.ErrUnknownCert)
	case err != nil:
		return Registered{}, fmt.Errorf("look up certName %q: %w", b.CertName, err)
	case v != b.Vendor:
		return Registered{}, fmt.Errorf("certName %q is for %s, not %s: %w", b.CertName, v, b.Vendor, push.ErrUnknownCert)
	}
	b.RegisteredAt = now.Truncate(time.Millisecond)

	moved, err := s.change(ctx, app, intent{user: user, device: device, binding: &b}, b.RegisteredAt)
	if err != nil {
		return Registered{}, err
	}
	attrs := []any{"app", app, "user", user, "device", device, "vendor", b.Vendor,
		"certName", b.CertName, "token", push.Redact(b.Token)}
	if b.VoIPToken != "" {
		attrs = append(attrs, "voipToken", push.Redact(b.VoIPToken))
	}
	if moved != nil {
		attrs = append(attrs, "movedFromUser", moved.UserID, "movedFromDevice", moved.DeviceID)
	}
	s.log.InfoContext(ctx, "device registered", attrs...)
	return Registered{UserID: user, Binding: b, MovedFrom: moved}, nil
}

// Unregister removes the device's binding and its token index entries, and
// leaves presence alone. Unregistering an unbound device succeeds and writes
// nothing.
func (s *Service) Unregister(ctx context.Context, app, user, device string, reason Reason, now time.Time) error {
	if err := validPath(app, user, device); err != nil {
		return err
	}
	if _, err := s.change(ctx, app, intent{user: user, device: device}, now); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "device unregistered", "app", app, "user", user, "device", device, "reason", string(reason))
	return nil
}

// List returns every device of user that has a binding or presence, sorted
// by device id; an unknown user has none.
func (s *Service) List(ctx context.Context, app, user string, now time.Time) ([]Device, error) {
	if !push.ValidApp(app) {
		return nil, push.Invalid("app", "must match ^[a-z0-9][a-z0-9-]{0,63}$")
	}
	if !push.ValidID(user) {
		return nil, push.Invalid("user", "must match ^[A-Za-z0-9_.@:+=~-]{1,128}$")
	}
	bindings, leases, err := s.store.Devices(ctx, app, user)
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	byID := map[string]*Device{}
	for _, b := range bindings {
		byID[b.DeviceID] = &Device{
			DeviceID:     b.DeviceID,
			Vendor:       b.Vendor,
			CertName:     b.CertName,
			TokenSuffix:  push.Redact(b.Token),
			Platform:     b.Platform,
			RegisteredAt: b.RegisteredAt,
		}
	}
	for _, l := range leases {
		d, ok := byID[l.DeviceID]
		if !ok {
			d = &Device{DeviceID: l.DeviceID, Platform: l.Platform}
			byID[l.DeviceID] = d
		}
		if l.Online(now) {
			d.Online, d.LeaseUntil = true, l.Until
		}
	}
	out := make([]Device, 0, len(byID))
	for _, d := range byID {
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b Device) int { return cmp.Compare(a.DeviceID, b.DeviceID) })
	return out, nil
}

// change reads, plans and applies in, and starts over from a fresh read when
// the write lost a race, up to s.Attempts times.
func (s *Service) change(ctx context.Context, app string, in intent, now time.Time) (*push.Owner, error) {
	var err error
	for attempt := 0; attempt < max(s.Attempts, 1); attempt++ {
		if attempt > 0 {
			if werr := s.wait(ctx, attempt); werr != nil {
				return nil, fmt.Errorf("wait to retry a binding change: %w", werr)
			}
		}
		var snap Snapshot
		snap, err = s.snapshot(ctx, app, in)
		if err != nil {
			return nil, err
		}
		p, moved := plan(snap, in, now)
		if p.Empty() {
			return nil, nil
		}
		err = s.store.Apply(ctx, app, p)
		if err == nil {
			return moved, nil
		}
		if !errors.Is(err, push.ErrConflict) && !errors.Is(err, push.ErrThrottled) {
			return nil, fmt.Errorf("apply binding change: %w", err)
		}
		s.log.DebugContext(ctx, "binding change lost a race, re-reading",
			"app", app, "user", in.user, "device", in.device, "attempt", attempt+1, "err", err)
	}
	return nil, fmt.Errorf("binding change gave up after %d attempts: %w", max(s.Attempts, 1), err)
}

// snapshot reads in rounds until the planner has everything it needs.
func (s *Service) snapshot(ctx context.Context, app string, in intent) (Snapshot, error) {
	snap := Snapshot{Profiles: map[string]map[string]push.Binding{}, Index: map[TokenRef]*IndexEntry{}}
	for round := 0; round < maxReadRounds; round++ {
		users, tokens := missing(snap, in)
		if len(users) == 0 && len(tokens) == 0 {
			return snap, nil
		}
		got, err := s.store.Read(ctx, app, users, tokens)
		if err != nil {
			return Snapshot{}, fmt.Errorf("read bindings: %w", err)
		}
		for _, u := range users {
			snap.Profiles[u] = got.Profiles[u]
		}
		for _, t := range tokens {
			snap.Index[t] = got.Index[t]
		}
	}
	return Snapshot{}, fmt.Errorf("binding snapshot still incomplete after %d reads", maxReadRounds)
}

// wait sleeps before retry attempt n (1-based) for a random time below
// Backoff·2^(n-1), capped, or until ctx ends.
func (s *Service) wait(ctx context.Context, n int) error {
	window := s.Backoff << (n - 1)
	if window <= 0 || window > maxBackoff {
		window = maxBackoff
	}
	t := time.NewTimer(rand.N(window) + 1)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func validPath(app, user, device string) error {
	switch {
	case !push.ValidApp(app):
		return push.Invalid("app", "must match ^[a-z0-9][a-z0-9-]{0,63}$")
	case !push.ValidID(user):
		return push.Invalid("user", "must match ^[A-Za-z0-9_.@:+=~-]{1,128}$")
	case !push.ValidID(device):
		return push.Invalid("device", "must match ^[A-Za-z0-9_.@:+=~-]{1,128}$")
	}
	return nil
}
