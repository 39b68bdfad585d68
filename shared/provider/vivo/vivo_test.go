package vivo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	vivoemu "github.com/offline-push/offline-push/shared/emulator/vivo"
	"github.com/offline-push/offline-push/shared/provider/vivo"
	"github.com/offline-push/offline-push/shared/push"
)

const (
	appID     = 105000000
	appKey    = "0123456789abcdef0123456789abcdef"
	appSecret = "01234567-89ab-cdef-0123-456789abcdef"
)

// start is a fixed instant: 10:00 UTC, 18:00 in China.
var start = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// clock is a settable clock shared by the sender and the emulator.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// memCache is an in-memory TokenCache with the semantics of the DynamoDB
// one.
type memCache struct {
	mu sync.Mutex
	m  map[string]push.AccessToken
}

func newMemCache() *memCache { return &memCache{m: map[string]push.AccessToken{}} }

func (c *memCache) Load(_ context.Context, key string) (push.AccessToken, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.m[key]
	return t, ok, nil
}

func (c *memCache) Swap(_ context.Context, key string, prev *push.AccessToken, next push.AccessToken) (push.AccessToken, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur, ok := c.m[key]
	if (prev == nil && ok) || (prev != nil && (!ok || cur.Value != prev.Value)) {
		return cur, nil
	}
	c.m[key] = next
	return next, nil
}

// seqIDs returns request ids r1, r2, … so that golden bodies are stable.
func seqIDs() func() string {
	var mu sync.Mutex
	n := 0
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		n++
		return fmt.Sprintf("r%d", n)
	}
}

type fixture struct {
	emu    *vivoemu.Server
	clock  *clock
	cache  *memCache
	sender *vivo.Sender
	creds  []byte
}

func newFixture(t testing.TB, extra map[string]any) *fixture {
	t.Helper()
	c := &clock{t: start}
	emu, err := vivoemu.New(vivoemu.Options{Now: c.Now, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Close)
	emu.AddApp(appID, appKey, appSecret)
	creds := map[string]any{"vendor": "vivo", "appId": fmt.Sprint(appID), "appKey": appKey, "appSecret": appSecret, "endpoint": emu.URL}
	for k, v := range extra {
		creds[k] = v
	}
	cache := newMemCache()
	return &fixture{
		emu:    emu,
		clock:  c,
		cache:  cache,
		sender: vivo.New(vivo.Options{Cache: cache, Now: c.Now, RequestID: seqIDs()}),
		creds:  mustJSON(t, creds),
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func envelope(kind push.MessageKind, targets ...push.Target) *push.Envelope {
	e := &push.Envelope{
		Version: push.EnvelopeVersion, App: "demo", Vendor: push.Vivo, CertName: "android-vivo",
		MessageID: "m-1001", Kind: kind, SenderID: "alice",
		ConversationType: push.Group, ConversationID: "g1",
		ExpiresAt: start.Add(24 * time.Hour).UnixMilli(),
		Priority:  push.PriorityNormal,
		Texts:     []push.EnvelopeText{{Title: "Team", Body: "Alice: lunch?"}},
		Payload:   map[string]string{"k": "v"},
		Badge:     true,
		Targets:   targets,
	}
	key := push.MessageCollapseKey(e.MessageID)
	if kind != push.KindMessage {
		e.CallID, e.Media = "c-9", push.MediaAudio
		e.Priority = push.PriorityHigh
		e.ExpiresAt = start.Add(30 * time.Second).UnixMilli()
		e.MessageID = "m-call-" + string(kind)
		e.ConversationType, e.ConversationID = push.Peer, ""
		e.Texts = []push.EnvelopeText{{Title: "Alice", Body: "Incoming call"}}
		if kind == push.KindCallCancel {
			e.Texts = []push.EnvelopeText{{Title: "Alice", Body: "Missed call"}}
			e.ExpiresAt = start.Add(24 * time.Hour).UnixMilli()
		}
		key = push.CallCollapseKey("bob")
	}
	e.CollapseID, e.NotifyID = push.CollapseFor(push.Vivo, key)
	return e
}

func target(user, token string) push.Target {
	return push.Target{UserID: user, DeviceID: "phone-" + user, Token: token, Platform: push.PlatformAndroid}
}

func (f *fixture) job(e *push.Envelope) *push.SendJob {
	return &push.SendJob{
		Envelope: e, Targets: e.Targets, Credentials: f.creds,
		CredentialsKey: "demo/android-vivo@v1",
		TTL:            e.Expiry().Sub(f.clock.Now()),
	}
}

func ok(n int) []push.SendResult {
	out := make([]push.SendResult, n)
	for i := range out {
		out[i] = push.SendResult{Class: push.SendOK}
	}
	return out
}

func TestSendMessage(t *testing.T) {
	f := newFixture(t, nil)
	e := envelope(push.KindMessage, target("bob", "15000000000000000000001"))
	if got := f.sender.Send(context.Background(), f.job(e)); !cmp.Equal(ok(1), got) {
		t.Fatalf("results = %v", got)
	}
	rec := f.emu.Received()
	if len(rec) != 1 || rec[0].List || rec[0].Token != "15000000000000000000001" || rec[0].AppID != appID {
		t.Fatalf("received = %+v", rec)
	}
	m := rec[0].Message
	_, wantNotify := push.CollapseFor(push.Vivo, push.MessageCollapseKey("m-1001"))
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"title", m.Title, "Team"},
		{"content", m.Content, "Alice: lunch?"},
		{"category", m.Category, "IM"},
		{"classification", *m.Classification, 1},
		{"notifyId", m.NotifyID, int64(wantNotify)},
		{"timeToLive", *m.TimeToLive, int64(86400)},
		{"notifyType", m.NotifyType, 4},
		{"skipType", m.SkipType, 1},
		{"pushMode", m.PushMode, 0},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	want := map[string]string{"k": "v", "type": "message", "messageId": "m-1001", "senderId": "alice", "conversationType": "group", "conversationId": "g1"}
	if diff := cmp.Diff(want, m.ClientCustomMap); diff != "" {
		t.Errorf("clientCustomMap (-want +got):\n%s", diff)
	}
}

func TestSendCall(t *testing.T) {
	f := newFixture(t, nil)
	invite := envelope(push.KindCallInvite, target("bob", "regid-bob"))
	if got := f.sender.Send(context.Background(), f.job(invite)); !cmp.Equal(ok(1), got) {
		t.Fatalf("invite = %v", got)
	}
	cancel := envelope(push.KindCallCancel, target("bob", "regid-bob"))
	if got := f.sender.Send(context.Background(), f.job(cancel)); !cmp.Equal(ok(1), got) {
		t.Fatalf("cancel = %v", got)
	}
	rec := f.emu.Received()
	if len(rec) != 2 {
		t.Fatalf("received %d pushes, want 2", len(rec))
	}
	in, out := rec[0].Message, rec[1].Message
	_, wantNotify := push.CollapseFor(push.Vivo, push.CallCollapseKey("bob"))
	if in.NotifyID != int64(wantNotify) || out.NotifyID != int64(wantNotify) {
		t.Errorf("notifyIds %d and %d, want both %d", in.NotifyID, out.NotifyID, wantNotify)
	}
	// 30 s left: vivo's minimum is 60 s, so rule 25 sends 60 s and the
	// absolute expiry travels in the data.
	if *in.TimeToLive != 60 {
		t.Errorf("invite timeToLive = %d, want 60", *in.TimeToLive)
	}
	want := map[string]string{"k": "v", "type": "call_invite", "messageId": "m-call-call_invite", "senderId": "alice",
		"conversationType": "peer", "callId": "c-9", "media": "audio", "callExpiresAt": "2026-11-22T10:00:30.000Z"}
	if diff := cmp.Diff(want, in.ClientCustomMap); diff != "" {
		t.Errorf("invite clientCustomMap (-want +got):\n%s", diff)
	}
	if out.ClientCustomMap["type"] != "call_cancel" || out.Content != "Missed call" {
		t.Errorf("cancel = %+v", out)
	}
}

func TestTTL(t *testing.T) {
	for _, tc := range []struct {
		name       string
		ttl        time.Duration
		nowOrNever bool
		want       int64
	}{
		{"rounded up", 100500 * time.Millisecond, false, 101},
		{"raised to the minimum", 5 * time.Second, false, 60},
		{"capped at a day", 7 * 24 * time.Hour, false, 86400},
		{"now or never takes the minimum", time.Hour, true, 60},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			e := envelope(push.KindMessage, target("bob", "regid-ttl"))
			e.NowOrNever = tc.nowOrNever
			job := f.job(e)
			job.TTL = tc.ttl
			if got := f.sender.Send(context.Background(), job); !cmp.Equal(ok(1), got) {
				t.Fatalf("results = %v", got)
			}
			if got := *f.emu.Received()[0].Message.TimeToLive; got != tc.want {
				t.Errorf("timeToLive = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestTextsFitVivoWidth(t *testing.T) {
	f := newFixture(t, nil)
	e := envelope(push.KindMessage, target("bob", "regid-long"))
	// 40 Chinese characters fit ingest's budget of 40, but vivo counts
	// them as 80.
	e.Texts = []push.EnvelopeText{{Title: strings.Repeat("标", 40), Body: strings.Repeat("文", 100)}}
	if got := f.sender.Send(context.Background(), f.job(e)); !cmp.Equal(ok(1), got) {
		t.Fatalf("results = %v: the emulator refused the texts", got)
	}
	m := f.emu.Received()[0].Message
	if w := vivoemu.Width(m.Title); w > 40 || !strings.HasSuffix(m.Title, vivo.Ellipsis) {
		t.Errorf("title %q has width %d, want at most 40 ending in an ellipsis", m.Title, w)
	}
	if w := vivoemu.Width(m.Content); w > 100 || !strings.HasSuffix(m.Content, vivo.Ellipsis) {
		t.Errorf("content %q has width %d", m.Content, w)
	}
}

func TestListSendAndGrouping(t *testing.T) {
	f := newFixture(t, nil)
	var targets []push.Target
	for i := range 5 {
		targets = append(targets, target(fmt.Sprintf("u%d", i), fmt.Sprintf("regid-%d", i)))
	}
	e := envelope(push.KindMessage, targets...)
	e.Texts = append(e.Texts, push.EnvelopeText{Title: "团队", Body: "吃饭吗?", Lang: "zh"})
	e.Targets[4].Text = 1 // one reader of Chinese: a group of its own
	if got := f.sender.Send(context.Background(), f.job(e)); !cmp.Equal(ok(5), got) {
		t.Fatalf("results = %v", got)
	}
	calls := f.emu.Calls()
	want := map[string]int{vivoemu.AuthPath: 1, vivoemu.SavePath: 1, vivoemu.PushListPath: 1, vivoemu.SendPath: 1}
	if diff := cmp.Diff(want, calls); diff != "" {
		t.Errorf("requests by path (-want +got):\n%s", diff)
	}
	byToken := map[string]string{}
	for _, p := range f.emu.Received() {
		byToken[p.Token] = p.Message.Content
	}
	if byToken["regid-4"] != "吃饭吗?" || byToken["regid-0"] != "Alice: lunch?" || len(byToken) != 5 {
		t.Errorf("contents = %v", byToken)
	}
}

func TestSplitsAtListLimit(t *testing.T) {
	f := newFixture(t, nil)
	var targets []push.Target
	for i := range vivo.MaxList + 2 {
		targets = append(targets, target(fmt.Sprintf("u%04d", i), fmt.Sprintf("regid%06d", i)))
	}
	if got := f.sender.Send(context.Background(), f.job(envelope(push.KindMessage, targets...))); !cmp.Equal(ok(len(targets)), got) {
		t.Fatalf("not every target was delivered")
	}
	calls := f.emu.Calls()
	if calls[vivoemu.PushListPath] != 2 || calls[vivoemu.SavePath] != 2 {
		t.Errorf("requests = %v, want 2 list pushes of 1000 and 2", calls)
	}
	if n := len(f.emu.Received()); n != len(targets) {
		t.Errorf("received %d, want %d", n, len(targets))
	}
}

func TestCallsToSeveralCalleesGroupByNotifyID(t *testing.T) {
	f := newFixture(t, nil)
	e := envelope(push.KindCallInvite, target("bob", "regid-b1"), target("bob", "regid-b2"), target("carol", "regid-c1"))
	for i, callee := range []string{"bob", "bob", "carol"} {
		e.Targets[i].CollapseID, e.Targets[i].NotifyID = push.CollapseFor(push.Vivo, push.CallCollapseKey(callee))
	}
	if got := f.sender.Send(context.Background(), f.job(e)); !cmp.Equal(ok(3), got) {
		t.Fatalf("results = %v", got)
	}
	notify := map[string]int64{}
	for _, p := range f.emu.Received() {
		notify[p.Token] = p.Message.NotifyID
	}
	_, bob := push.CollapseFor(push.Vivo, push.CallCollapseKey("bob"))
	_, carol := push.CollapseFor(push.Vivo, push.CallCollapseKey("carol"))
	if diff := cmp.Diff(map[string]int64{"regid-b1": int64(bob), "regid-b2": int64(bob), "regid-c1": int64(carol)}, notify); diff != "" {
		t.Errorf("notifyIds (-want +got):\n%s", diff)
	}
}

func TestResultMapping(t *testing.T) {
	toMidnight := 6 * time.Hour
	dead, live := "regid-dead", "regid-live"
	for _, tc := range []struct {
		name    string
		targets int // 1: a single send; 2: a list send
		fault   func(*vivoemu.Server)
		want    []push.SendResult
	}{
		{"single: status 2 is an invalid token", 1, func(s *vivoemu.Server) { s.FailToken(dead, vivoemu.StatusUninstalled) },
			[]push.SendResult{{Class: push.SendInvalidToken, Code: "10302/2"}}},
		{"single: status 1 is an invalid token", 1, func(s *vivoemu.Server) { s.FailToken(dead, vivoemu.StatusUnknown) },
			[]push.SendResult{{Class: push.SendInvalidToken, Code: "10302/1"}}},
		{"single: status 4 is a bad message", 1, func(s *vivoemu.Server) { s.FailToken(dead, vivoemu.StatusNotTestUser) },
			[]push.SendResult{{Class: push.SendBadMessage, Code: "10302/4"}}},
		{"list: invalidUsers, the rest delivered", 2, func(s *vivoemu.Server) { s.FailToken(dead, vivoemu.StatusInactive) },
			[]push.SendResult{{Class: push.SendInvalidToken, Code: "10302/3"}, {Class: push.SendOK}}},
		{"daily total 10070 waits for midnight in China", 1, func(s *vivoemu.Server) { s.FailNext(vivoemu.CodeDailyTotal, 1) },
			[]push.SendResult{{Class: push.SendThrottled, RetryAfter: toMidnight, Code: "10070"}}},
		{"list: daily total on the payload", 2, func(s *vivoemu.Server) { s.FailNext(vivoemu.CodeDailyTotal, 1) },
			[]push.SendResult{{Class: push.SendThrottled, RetryAfter: toMidnight, Code: "10070"}, {Class: push.SendThrottled, RetryAfter: toMidnight, Code: "10070"}}},
		{"list: daily total on the push", 2, func(s *vivoemu.Server) { s.FailNext(vivoemu.CodeOK, 1); s.FailNext(vivoemu.CodeDailyTotal, 1) },
			[]push.SendResult{{Class: push.SendThrottled, RetryAfter: toMidnight, Code: "10070"}, {Class: push.SendThrottled, RetryAfter: toMidnight, Code: "10070"}}},
		{"category 10096 is a bad message", 1, func(s *vivoemu.Server) { s.FailNext(vivoemu.CodeBadCategory, 1) },
			[]push.SendResult{{Class: push.SendBadMessage, Code: "10096"}}},
		{"unknown code is transient", 1, func(s *vivoemu.Server) { s.FailNext(vivoemu.CodeBadParam, 1) },
			[]push.SendResult{{Class: push.SendTransient, Code: "10101"}}},
		{"auth failed twice is auth", 1, func(s *vivoemu.Server) { s.FailNext(vivoemu.CodeAuthFailed, 2) },
			[]push.SendResult{{Class: push.SendAuth, Code: "10000"}}},
		{"auth failed once is refreshed", 1, func(s *vivoemu.Server) { s.FailNext(vivoemu.CodeAuthFailed, 1) },
			ok(1)},
		{"429 share throttles", 1, func(s *vivoemu.Server) { s.SetShares(vivoemu.Shares{TooManyRequests: 1}) },
			[]push.SendResult{{Class: push.SendThrottled, Code: "http_429"}}},
		{"500 share is transient", 2, func(s *vivoemu.Server) { s.SetShares(vivoemu.Shares{ServerError: 1}) },
			[]push.SendResult{{Class: push.SendTransient, Code: "http_500"}, {Class: push.SendTransient, Code: "http_500"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			tc.fault(f.emu)
			targets := []push.Target{target("bob", dead)}
			if tc.targets == 2 {
				targets = append(targets, target("carol", live))
			}
			got := f.sender.Send(context.Background(), f.job(envelope(push.KindMessage, targets...)))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("results (-want +got):\n%s", diff)
			}
		})
	}
}

func TestListPayloadLimitFallsBackToSingleSends(t *testing.T) {
	f := newFixture(t, nil)
	f.emu.FailNext(vivoemu.CodeListPayloadLimit, 1)
	e := envelope(push.KindMessage, target("bob", "regid-1"), target("carol", "regid-2"))
	if got := f.sender.Send(context.Background(), f.job(e)); !cmp.Equal(ok(2), got) {
		t.Fatalf("results = %v", got)
	}
	// Until midnight in China no list payload is tried again.
	e.MessageID = "m-1002"
	if got := f.sender.Send(context.Background(), f.job(e)); !cmp.Equal(ok(2), got) {
		t.Fatalf("second results = %v", got)
	}
	calls := f.emu.Calls()
	if calls[vivoemu.SavePath] != 1 || calls[vivoemu.SendPath] != 4 || calls[vivoemu.PushListPath] != 0 {
		t.Errorf("requests = %v, want 1 refused payload and 4 single sends", calls)
	}
}

func TestHTTPFailures(t *testing.T) {
	f := newFixture(t, nil)
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "9")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	t.Cleanup(gw.Close)
	f.creds = mustJSON(t, map[string]any{"appId": appID, "appKey": appKey, "appSecret": appSecret, "endpoint": gw.URL, "authEndpoint": f.emu.URL})
	got := f.sender.Send(context.Background(), f.job(envelope(push.KindMessage, target("bob", "regid-1"))))
	if diff := cmp.Diff([]push.SendResult{{Class: push.SendThrottled, RetryAfter: 9 * time.Second, Code: "http_429"}}, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	f.emu.Close()
	got = vivo.New(vivo.Options{Now: f.clock.Now}).Send(context.Background(), f.job(envelope(push.KindMessage, target("bob", "regid-1"))))
	if diff := cmp.Diff([]push.SendResult{{Class: push.SendTransient, Code: "network"}}, got); diff != "" {
		t.Errorf("unreachable (-want +got):\n%s", diff)
	}
}

func TestExpiredTokenIsRefreshedOnce(t *testing.T) {
	f := newFixture(t, nil)
	e := envelope(push.KindMessage, target("bob", "regid-1"), target("carol", "regid-2"))
	if got := f.sender.Send(context.Background(), f.job(e)); !cmp.Equal(ok(2), got) {
		t.Fatalf("first = %v", got)
	}
	f.emu.ExpireTokens()
	if got := f.sender.Send(context.Background(), f.job(e)); !cmp.Equal(ok(2), got) {
		t.Fatalf("after expiry = %v, want delivered after one refresh", got)
	}
	if m := f.emu.Mints(); m != 2 {
		t.Errorf("%d tokens minted, want 2", m)
	}
}

func TestTokenSharedAndRenewedHourly(t *testing.T) {
	f := newFixture(t, nil)
	other := vivo.New(vivo.Options{Cache: f.cache, Now: f.clock.Now})
	for _, s := range []*vivo.Sender{f.sender, other, f.sender, other} {
		if got := s.Send(context.Background(), f.job(envelope(push.KindMessage, target("bob", "regid-1")))); !cmp.Equal(ok(1), got) {
			t.Fatalf("send = %v", got)
		}
	}
	if m := f.emu.Mints(); m != 1 {
		t.Errorf("%d tokens minted for two containers, want 1", m)
	}
	f.clock.Add(61 * time.Minute)
	if got := other.Send(context.Background(), f.job(envelope(push.KindMessage, target("bob", "regid-1")))); !cmp.Equal(ok(1), got) {
		t.Fatalf("send = %v", got)
	}
	if m := f.emu.Mints(); m != 2 {
		t.Errorf("%d tokens minted, want 2: vivo asks for a new token every hour or two", m)
	}
}

func TestCredentialErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		creds func(emu string) map[string]any
		want  string
	}{
		{"app id not numeric", func(emu string) map[string]any {
			return map[string]any{"appId": "abc", "appKey": appKey, "appSecret": appSecret, "endpoint": emu}
		}, "credentials"},
		{"no secret", func(emu string) map[string]any {
			return map[string]any{"appId": appID, "appKey": appKey, "endpoint": emu}
		}, "credentials"},
		{"local outside the local stack", func(string) map[string]any {
			return map[string]any{"appId": appID, "appKey": appKey, "appSecret": appSecret, "endpoint": "local"}
		}, "credentials"},
		{"wrong secret", func(emu string) map[string]any {
			return map[string]any{"appId": appID, "appKey": appKey, "appSecret": "wrong", "endpoint": emu}
		}, "auth/10203"},
		{"unknown app", func(emu string) map[string]any {
			return map[string]any{"appId": 42, "appKey": appKey, "appSecret": appSecret, "endpoint": emu}
		}, "auth/10204"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			f.creds = mustJSON(t, tc.creds(f.emu.URL))
			got := f.sender.Send(context.Background(), f.job(envelope(push.KindMessage, target("bob", "regid-1"))))
			if diff := cmp.Diff([]push.SendResult{{Class: push.SendAuth, Code: tc.want}}, got); diff != "" {
				t.Errorf("results (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCustomMapWithinVivoLimits(t *testing.T) {
	big := map[string]string{}
	for i := range 8 {
		big[fmt.Sprintf("key%d", i)] = "v"
	}
	for _, tc := range []struct {
		name     string
		payload  map[string]string
		wantKeys []string
		wantBad  bool
	}{
		{"flat when it fits", map[string]string{"a": "1"}, []string{"a", "conversationId", "conversationType", "messageId", "senderId", "type"}, false},
		{"too many pairs: payload packed", big, []string{"conversationId", "conversationType", "messageId", "payload", "senderId", "type"}, false},
		{"too long: optional keys dropped", map[string]string{"a": strings.Repeat("x", 950)}, []string{"conversationType", "messageId", "payload", "type"}, false},
		{"too long for anything", map[string]string{"a": strings.Repeat("x", 1100)}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			e := envelope(push.KindMessage, target("bob", "regid-1"))
			e.Payload = tc.payload
			got := f.sender.Send(context.Background(), f.job(e))
			if tc.wantBad {
				if diff := cmp.Diff([]push.SendResult{{Class: push.SendBadMessage, Code: "payload_too_large"}}, got); diff != "" {
					t.Errorf("results (-want +got):\n%s", diff)
				}
				return
			}
			if !cmp.Equal(ok(1), got) {
				t.Fatalf("results = %v", got)
			}
			m := f.emu.Received()[0].Message.ClientCustomMap
			var keys []string
			for k := range m {
				keys = append(keys, k)
			}
			if diff := cmp.Diff(tc.wantKeys, keys, cmp.Transformer("sort", sorted)); diff != "" {
				t.Errorf("keys (-want +got):\n%s", diff)
			}
			if p, ok := m["payload"]; ok {
				var back map[string]string
				if err := json.Unmarshal([]byte(p), &back); err != nil || !cmp.Equal(tc.payload, back) {
					t.Errorf("payload %q does not carry the caller's data", p)
				}
			}
		})
	}
}

func sorted(in []string) []string {
	out := append([]string(nil), in...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestResourceCategory(t *testing.T) {
	f := newFixture(t, map[string]any{"resources": map[string]any{"promo": map[string]any{"category": "MARKETING", "notifyType": 2}}})
	e := envelope(push.KindMessage, target("bob", "regid-1"))
	e.ResourceID = "promo"
	if got := f.sender.Send(context.Background(), f.job(e)); !cmp.Equal(ok(1), got) {
		t.Fatalf("results = %v", got)
	}
	m := f.emu.Received()[0].Message
	if m.Category != "MARKETING" || *m.Classification != 0 || m.NotifyType != 2 {
		t.Errorf("category %q classification %d notifyType %d, want MARKETING 0 2", m.Category, *m.Classification, m.NotifyType)
	}
}

// TestGolden pins the bodies the provider sends for each kind: the single
// send, and for a list the saved payload and the list push. Rewrite with
// UPDATE_GOLDEN=1 after a deliberate change.
func TestGolden(t *testing.T) {
	cases := []struct {
		name    string
		kind    push.MessageKind
		targets []push.Target
	}{
		{"message", push.KindMessage, []push.Target{target("bob", "15000000000000000000001")}},
		{"call_invite", push.KindCallInvite, []push.Target{target("bob", "15000000000000000000001")}},
		{"call_cancel", push.KindCallCancel, []push.Target{target("bob", "15000000000000000000001")}},
		{"message_list", push.KindMessage, []push.Target{target("bob", "15000000000000000000001"), target("carol", "15000000000000000000002")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			var bodies bytes.Buffer
			// A recording hop between the sender and the emulator.
			rec := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var buf bytes.Buffer
				buf.ReadFrom(r.Body)
				if r.URL.Path != vivoemu.AuthPath {
					fmt.Fprintf(&bodies, "POST %s\n", r.URL.Path)
					json.Indent(&bodies, buf.Bytes(), "", "  ")
					bodies.WriteString("\n")
				}
				out, err := http.NewRequest(r.Method, f.emu.URL+r.URL.Path, &buf)
				if err != nil {
					t.Error(err)
					return
				}
				out.Header = r.Header.Clone()
				resp, err := http.DefaultClient.Do(out)
				if err != nil {
					t.Error(err)
					return
				}
				defer resp.Body.Close()
				w.WriteHeader(resp.StatusCode)
				var ans bytes.Buffer
				ans.ReadFrom(resp.Body)
				// pushToList needs the emulator's taskId; a golden file
				// needs a stable one.
				w.Write(ans.Bytes())
			}))
			t.Cleanup(rec.Close)
			f.creds = mustJSON(t, map[string]any{"appId": appID, "appKey": appKey, "appSecret": appSecret, "endpoint": rec.URL})
			if got := f.sender.Send(context.Background(), f.job(envelope(tc.kind, tc.targets...))); !cmp.Equal(ok(len(tc.targets)), got) {
				t.Fatalf("results = %v", got)
			}
			text := taskIDs(bodies.String())
			path := filepath.Join("testdata", tc.name+".golden")
			if os.Getenv("UPDATE_GOLDEN") != "" {
				if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with UPDATE_GOLDEN=1 to create it)", err)
			}
			if diff := cmp.Diff(string(want), text); diff != "" {
				t.Errorf("request bodies differ from %s (-want +got):\n%s", path, diff)
			}
		})
	}
}

// taskIDs replaces the emulator's random task ids with a placeholder.
func taskIDs(s string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), `"taskId":`) {
			comma := ""
			if strings.HasSuffix(line, ",") {
				comma = ","
			}
			line = line[:strings.Index(line, `"taskId":`)] + `"taskId": "<task>"` + comma
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}
