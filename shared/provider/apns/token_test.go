package apns_test

import (
	"sync"
	"testing"
	"time"

	apnsemu "github.com/offline-push/offline-push/shared/emulator/apns"
	"github.com/offline-push/offline-push/shared/provider/apns"
	"github.com/offline-push/offline-push/shared/push"
)

// bearers returns the distinct provider tokens the emulator saw.
func bearers(ps []apnsemu.Push) map[string]bool {
	m := map[string]bool{}
	for _, p := range ps {
		m[p.Bearer] = true
	}
	return m
}

// TestTokenSharedBySenders: several Senders (containers) sending at once
// through one cache mint one provider token between them; it is reused
// while under 50 minutes old and replaced once after.
func TestTokenSharedBySenders(t *testing.T) {
	start := time.Now().Truncate(time.Second)
	clk := newClock(start)
	// The emulator refuses a team's token updates under 20 minutes apart,
	// as Apple does.
	f := newFixture(t, apnsemu.Options{Now: clk.now, MinTokenInterval: 20 * time.Minute})
	cache := newMemoryCache()
	senders := make([]*apns.Sender, 5)
	for i := range senders {
		senders[i] = apns.New(cache, clk.now, discard())
	}
	round := func() {
		t.Helper()
		var wg sync.WaitGroup
		for _, s := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				env := message(20)
				for _, r := range s.Send(t.Context(), f.job(t, env)) {
					if r.Class != push.SendOK {
						t.Errorf("result %+v, want ok", r)
						return
					}
				}
			}()
		}
		wg.Wait()
	}
	steps := []struct {
		at          time.Duration
		wantMints   int64
		wantBearers int
	}{
		{0, 1, 1},
		{30 * time.Minute, 1, 1},
		{49*time.Minute + 59*time.Second, 1, 1},
		{50 * time.Minute, 2, 1}, // a new token for this round, used by all
		{90 * time.Minute, 2, 1},
		{101 * time.Minute, 3, 1},
	}
	for _, st := range steps {
		clk.set(start.Add(st.at))
		f.emu.Reset()
		round()
		if got := cache.stored.Load(); got != st.wantMints {
			t.Errorf("at +%v: %d tokens minted in all, want %d", st.at, got, st.wantMints)
		}
		if got := bearers(f.emu.Received()); len(got) != st.wantBearers {
			t.Errorf("at +%v: the emulator saw %d distinct tokens, want %d", st.at, len(got), st.wantBearers)
		}
	}
}

// TestTokenRefresh: an expired token is refreshed once and the push
// retried; a token under 20 minutes old that APNs refuses is not replaced,
// the push is classified auth.
func TestTokenRefresh(t *testing.T) {
	start := time.Now().Truncate(time.Second)
	senderClock, apnsClock := newClock(start), newClock(start)
	f := newFixture(t, apnsemu.Options{Now: apnsClock.now})
	cache := newMemoryCache()
	s := apns.New(cache, senderClock.now, discard())
	send := func() string {
		t.Helper()
		f.emu.Reset()
		return classes(s.Send(t.Context(), f.job(t, message(3))))
	}
	steps := []struct {
		name          string
		sender, apple time.Duration // clock offsets
		want          string
		wantMints     int64
		wantIssuedAt  time.Duration // of the accepted pushes' token
	}{
		{"fresh token", 0, 0, "ok ok ok", 1, 0},
		// Our clock says 30 minutes, Apple's 61: the token is refused as
		// expired, replaced (it is over 20 minutes old) and the retry passes.
		{"expired at Apple, 30 min old here", 30 * time.Minute, 61 * time.Minute, "ok ok ok", 2, 30 * time.Minute},
		// The new token is 10 minutes old here and refused again: too young
		// to replace.
		{"refused at 10 min old", 40 * time.Minute, 92 * time.Minute,
			"auth/ExpiredProviderToken auth/ExpiredProviderToken auth/ExpiredProviderToken", 2, -1},
	}
	for _, st := range steps {
		senderClock.set(start.Add(st.sender))
		apnsClock.set(start.Add(st.apple))
		if got := send(); got != st.want {
			t.Errorf("%s: results = %s, want %s", st.name, got, st.want)
		}
		if got := cache.stored.Load(); got != st.wantMints {
			t.Errorf("%s: %d tokens minted, want %d", st.name, got, st.wantMints)
		}
		r := f.emu.Received()
		if st.wantIssuedAt < 0 {
			if len(r) != 0 {
				t.Errorf("%s: emulator accepted %d pushes, want 0", st.name, len(r))
			}
			continue
		}
		for _, p := range r {
			if want := start.Add(st.wantIssuedAt); !p.IssuedAt.Equal(want) {
				t.Errorf("%s: accepted token issued at %v, want %v", st.name, p.IssuedAt, want)
			}
		}
	}
}

// TestTokenTakenFromCache: a token another container already refreshed is
// used instead of minting.
func TestTokenTakenFromCache(t *testing.T) {
	start := time.Now().Truncate(time.Second)
	senderClock, apnsClock := newClock(start), newClock(start)
	f := newFixture(t, apnsemu.Options{Now: apnsClock.now})
	cache := newMemoryCache()
	a := apns.New(cache, senderClock.now, discard())
	b := apns.New(cache, senderClock.now, discard())
	if got := classes(a.Send(t.Context(), f.job(t, message(1)))); got != "ok" {
		t.Fatalf("a: %s", got)
	}
	if got := classes(b.Send(t.Context(), f.job(t, message(1)))); got != "ok" {
		t.Fatalf("b: %s", got)
	}
	// Apple expires the token early; a refreshes it, b still holds the old
	// one, is refused, and must pick up a's token from the cache.
	senderClock.set(start.Add(25 * time.Minute))
	apnsClock.set(start.Add(61 * time.Minute))
	if got := classes(a.Send(t.Context(), f.job(t, message(1)))); got != "ok" {
		t.Fatalf("a after expiry: %s", got)
	}
	if got := classes(b.Send(t.Context(), f.job(t, message(1)))); got != "ok" {
		t.Fatalf("b after expiry: %s", got)
	}
	if got := cache.stored.Load(); got != 2 {
		t.Errorf("%d tokens minted, want 2", got)
	}
}

// TestTokenOfUnknownKey: APNs refuses a token signed by a key it does not
// know; a fresh token is not replaced, so the push is auth, once.
func TestTokenOfUnknownKey(t *testing.T) {
	f := newFixture(t, apnsemu.Options{})
	f.creds.KeyID = "KEY0000000"
	cache := newMemoryCache()
	s := apns.New(cache, nil, discard())
	if got, want := classes(s.Send(t.Context(), f.job(t, message(2)))), "auth/InvalidProviderToken auth/InvalidProviderToken"; got != want {
		t.Errorf("results = %s, want %s", got, want)
	}
	if got := cache.stored.Load(); got != 1 {
		t.Errorf("%d tokens minted, want 1", got)
	}
}

// TestTokenCacheDown: without the shared cache no token is minted, and
// every target is transient.
func TestTokenCacheDown(t *testing.T) {
	f := newFixture(t, apnsemu.Options{})
	s := apns.New(brokenCache{}, nil, discard())
	if got, want := classes(s.Send(t.Context(), f.job(t, message(2)))), "transient/TokenCache transient/TokenCache"; got != want {
		t.Errorf("results = %s, want %s", got, want)
	}
	if n := len(f.emu.Received()); n != 0 {
		t.Errorf("emulator received %d pushes, want 0", n)
	}
}
