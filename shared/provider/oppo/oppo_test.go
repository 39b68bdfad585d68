package oppo_test

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
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	oppoemu "github.com/offline-push/offline-push/shared/emulator/oppo"
	"github.com/offline-push/offline-push/shared/provider/oppo"
	"github.com/offline-push/offline-push/shared/push"
)

const (
	appKey       = "abcdef0123456789abcdef01"
	masterSecret = "0123456789abcdef0123456789abcdef"
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
// one, counting its calls.
type memCache struct {
	mu          sync.Mutex
	m           map[string]push.AccessToken
	loads, swap int
}

func newMemCache() *memCache { return &memCache{m: map[string]push.AccessToken{}} }

func (c *memCache) Load(_ context.Context, key string) (push.AccessToken, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.loads++
	t, ok := c.m[key]
	return t, ok, nil
}

func (c *memCache) Swap(_ context.Context, key string, prev *push.AccessToken, next push.AccessToken) (push.AccessToken, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.swap++
	cur, ok := c.m[key]
	if (prev == nil && ok) || (prev != nil && (!ok || cur.Value != prev.Value)) {
		return cur, nil
	}
	c.m[key] = next
	return next, nil
}

// fixture is an emulator with one app and a sender pointed at it.
type fixture struct {
	emu    *oppoemu.Server
	clock  *clock
	cache  *memCache
	sender *oppo.Sender
	creds  []byte
}

func newFixture(t testing.TB, extra map[string]any) *fixture {
	t.Helper()
	c := &clock{t: start}
	emu, err := oppoemu.New(oppoemu.Options{Now: c.Now, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Close)
	emu.AddApp(appKey, masterSecret)
	creds := map[string]any{
		"vendor": "oppo", "appKey": appKey, "masterSecret": masterSecret,
		"channelId": "im_messages", "endpoint": emu.URL,
	}
	for k, v := range extra {
		creds[k] = v
	}
	raw, err := json.Marshal(creds)
	if err != nil {
		t.Fatal(err)
	}
	cache := newMemCache()
	return &fixture{
		emu:    emu,
		clock:  c,
		cache:  cache,
		sender: oppo.New(oppo.Options{Cache: cache, Now: c.Now}),
		creds:  raw,
	}
}

// envelope returns an envelope of kind with one text and the targets.
func envelope(kind push.MessageKind, targets ...push.Target) *push.Envelope {
	e := &push.Envelope{
		Version: push.EnvelopeVersion, App: "demo", Vendor: push.OPPO, CertName: "android-oppo",
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
		e.CallID, e.Media = "c-9", push.MediaVideo
		e.Priority = push.PriorityHigh
		e.ExpiresAt = start.Add(30 * time.Second).UnixMilli()
		e.MessageID = "m-call-" + string(kind)
		e.ConversationType, e.ConversationID = push.Peer, ""
		e.Texts = []push.EnvelopeText{{Title: "Alice", Body: "Incoming video call"}}
		if kind == push.KindCallCancel {
			e.Texts = []push.EnvelopeText{{Title: "Alice", Body: "Missed call"}}
			e.ExpiresAt = start.Add(24 * time.Hour).UnixMilli()
		}
		key = push.CallCollapseKey("bob")
	}
	e.CollapseID, e.NotifyID = push.CollapseFor(push.OPPO, key)
	return e
}

func target(user, token string) push.Target {
	return push.Target{UserID: user, DeviceID: "phone-" + user, Token: token, Platform: push.PlatformAndroid}
}

func (f *fixture) job(e *push.Envelope) *push.SendJob {
	return &push.SendJob{
		Envelope:       e,
		Targets:        e.Targets,
		Credentials:    f.creds,
		CredentialsKey: "demo/android-oppo@v1",
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

func decodeParams(t *testing.T, s string) map[string]string {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("action_parameters %q: %v", s, err)
	}
	return m
}

func TestSendMessage(t *testing.T) {
	f := newFixture(t, nil)
	e := envelope(push.KindMessage, target("bob", "CN_b6bbd94b59cdb5df8391642c1509b7fe"))
	got := f.sender.Send(context.Background(), f.job(e))
	if diff := cmp.Diff(ok(1), got); diff != "" {
		t.Fatalf("results (-want +got):\n%s", diff)
	}
	rec := f.emu.Received()
	if len(rec) != 1 {
		t.Fatalf("emulator received %d pushes, want 1", len(rec))
	}
	p := rec[0]
	if p.Token != "CN_b6bbd94b59cdb5df8391642c1509b7fe" || p.AppKey != appKey || p.TargetType != 2 || !p.Verify {
		t.Errorf("target = %q app %q type %d verify %v", p.Token, p.AppKey, p.TargetType, p.Verify)
	}
	n := p.Notification
	_, wantNotify := push.CollapseFor(push.OPPO, push.MessageCollapseKey("m-1001"))
	checks := []struct {
		name      string
		got, want any
	}{
		{"title", n.Title, "Team"},
		{"content", n.Content, "Alice: lunch?"},
		{"category", n.Category, "IM"},
		{"channel_id", n.ChannelID, "im_messages"},
		{"notify_id", n.NotifyID, int64(wantNotify)},
		{"off_line", n.OffLine != nil && *n.OffLine, true},
		{"off_line_ttl", n.OffLineTTL, int64(86400)},
		{"style", n.Style, 1},
		{"click_action_type", n.ClickActionType, 0},
		{"notify_level", n.NotifyLevel, 0},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	wantParams := map[string]string{
		"k": "v", "type": "message", "messageId": "m-1001", "senderId": "alice",
		"conversationType": "group", "conversationId": "g1",
	}
	if diff := cmp.Diff(wantParams, decodeParams(t, n.ActionParameters)); diff != "" {
		t.Errorf("action_parameters (-want +got):\n%s", diff)
	}
	if n.AppMessageID == "" {
		t.Error("app_message_id is empty; retries of an accepted push would show twice")
	}
}

func TestSendCall(t *testing.T) {
	f := newFixture(t, nil)
	invite := envelope(push.KindCallInvite, target("bob", "regid-bob-000001"))
	if got := f.sender.Send(context.Background(), f.job(invite)); !cmp.Equal(ok(1), got) {
		t.Fatalf("invite results = %v", got)
	}
	cancel := envelope(push.KindCallCancel, target("bob", "regid-bob-000001"))
	if got := f.sender.Send(context.Background(), f.job(cancel)); !cmp.Equal(ok(1), got) {
		t.Fatalf("cancel results = %v", got)
	}
	rec := f.emu.Received()
	if len(rec) != 2 {
		t.Fatalf("emulator received %d pushes, want 2", len(rec))
	}
	in, out := rec[0].Notification, rec[1].Notification
	_, wantNotify := push.CollapseFor(push.OPPO, push.CallCollapseKey("bob"))
	if in.NotifyID != int64(wantNotify) || out.NotifyID != int64(wantNotify) {
		t.Errorf("notify ids = %d and %d, want both %d: the cancel must replace the ringing invite", in.NotifyID, out.NotifyID, wantNotify)
	}
	if in.OffLineTTL != 30 || in.Category != "IM" {
		t.Errorf("invite off_line_ttl %d category %q, want 30 and IM", in.OffLineTTL, in.Category)
	}
	wantInvite := map[string]string{
		"k": "v", "type": "call_invite", "messageId": "m-call-call_invite", "senderId": "alice",
		"conversationType": "peer", "callId": "c-9", "media": "video",
		"callExpiresAt": "2026-11-22T10:00:30.000Z",
	}
	if diff := cmp.Diff(wantInvite, decodeParams(t, in.ActionParameters)); diff != "" {
		t.Errorf("invite action_parameters (-want +got):\n%s", diff)
	}
	got := decodeParams(t, out.ActionParameters)
	if got["type"] != "call_cancel" || got["callId"] != "c-9" || got["callExpiresAt"] != "" {
		t.Errorf("cancel action_parameters = %v, want type call_cancel, callId c-9, no callExpiresAt", got)
	}
	if out.Content != "Missed call" {
		t.Errorf("cancel content = %q", out.Content)
	}
}

func TestTTL(t *testing.T) {
	for _, tc := range []struct {
		name        string
		ttl         time.Duration
		nowOrNever  bool
		wantOffLine bool
		wantTTL     int64
	}{
		{"seconds rounded up", 1500 * time.Millisecond, false, true, 2},
		{"below a second", time.Millisecond, false, true, 1},
		{"a day", 24 * time.Hour, false, true, 86400},
		{"capped at 10 days", 28 * 24 * time.Hour, false, true, 864000},
		{"now or never is not stored", 30 * time.Second, true, false, 0},
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
			n := f.emu.Received()[0].Notification
			if gotOff := n.OffLine != nil && *n.OffLine; gotOff != tc.wantOffLine || n.OffLineTTL != tc.wantTTL {
				t.Errorf("off_line %v off_line_ttl %d, want %v and %d", gotOff, n.OffLineTTL, tc.wantOffLine, tc.wantTTL)
			}
		})
	}
}

func TestTextsFitOPPOLimits(t *testing.T) {
	f := newFixture(t, nil)
	e := envelope(push.KindMessage, target("bob", "regid-long"))
	e.Texts = []push.EnvelopeText{{Title: strings.Repeat("标", 60), Body: strings.Repeat("👍", 30) + strings.Repeat("e\u0301", 20)}}
	if got := f.sender.Send(context.Background(), f.job(e)); !cmp.Equal(ok(1), got) {
		t.Fatalf("results = %v; the emulator refused the texts", got)
	}
	n := f.emu.Received()[0].Notification
	for _, c := range []struct {
		name, text string
		max        int
	}{{"title", n.Title, oppo.TitleLimit}, {"content", n.Content, oppo.ContentLimit}} {
		if k := utf8.RuneCountInString(c.text); k > c.max || !strings.HasSuffix(c.text, oppo.Ellipsis) {
			t.Errorf("%s has %d characters (max %d) and ends %q, want cut with an ellipsis", c.name, k, c.max, c.text)
		}
	}
	if strings.Contains(n.Content, "e"+oppo.Ellipsis) {
		t.Errorf("content %q strips the accent from its letter", n.Content)
	}
}

func TestTextsWithDifferentLanguagesShareOneRequest(t *testing.T) {
	f := newFixture(t, nil)
	e := envelope(push.KindMessage, target("bob", "regid-en"), target("carol", "regid-zh"))
	e.Texts = append(e.Texts, push.EnvelopeText{Title: "团队", Body: "Alice: 吃饭吗?", Lang: "zh"})
	e.Targets[1].Text = 1
	if got := f.sender.Send(context.Background(), f.job(e)); !cmp.Equal(ok(2), got) {
		t.Fatalf("results = %v", got)
	}
	if calls := f.emu.Calls()[oppoemu.BatchPath]; calls != 1 {
		t.Errorf("%d batch requests, want 1: each message carries its own notification", calls)
	}
	byToken := map[string]string{}
	for _, p := range f.emu.Received() {
		byToken[p.Token] = p.Notification.Content
	}
	if diff := cmp.Diff(map[string]string{"regid-en": "Alice: lunch?", "regid-zh": "Alice: 吃饭吗?"}, byToken); diff != "" {
		t.Errorf("contents (-want +got):\n%s", diff)
	}
}

func TestSplitsAtBatchLimit(t *testing.T) {
	f := newFixture(t, nil)
	var targets []push.Target
	for i := range oppo.MaxBatch + 1 {
		targets = append(targets, target(fmt.Sprintf("u%04d", i), fmt.Sprintf("CN_regid%06d", i)))
	}
	e := envelope(push.KindMessage, targets...)
	if got := f.sender.Send(context.Background(), f.job(e)); !cmp.Equal(ok(len(targets)), got) {
		t.Fatalf("not every target was delivered")
	}
	if calls := f.emu.Calls()[oppoemu.BatchPath]; calls != 2 {
		t.Errorf("%d batch requests for %d targets, want 2", calls, len(targets))
	}
	if n := len(f.emu.Received()); n != len(targets) {
		t.Errorf("emulator received %d pushes, want %d", n, len(targets))
	}
}

func TestResource(t *testing.T) {
	f := newFixture(t, map[string]any{
		"category":  "IM",
		"resources": map[string]any{"calls": map[string]any{"channelId": "calls", "category": "IM", "notifyLevel": 16, "sound": "ring"}},
	})
	e := envelope(push.KindCallInvite, target("bob", "regid-res"))
	e.ResourceID = "calls"
	if got := f.sender.Send(context.Background(), f.job(e)); !cmp.Equal(ok(1), got) {
		t.Fatalf("results = %v", got)
	}
	n := f.emu.Received()[0].Notification
	if n.ChannelID != "calls" || n.NotifyLevel != 16 || n.Category != "IM" {
		t.Errorf("channel %q notify_level %d category %q, want calls, 16, IM", n.ChannelID, n.NotifyLevel, n.Category)
	}
}

func TestResultMapping(t *testing.T) {
	toMidnight := 6 * time.Hour // 18:00 in China at start
	bad, good := "regid-dead", "regid-good"
	for _, tc := range []struct {
		name  string
		fault func(*oppoemu.Server)
		want  []push.SendResult
	}{
		{"per-message 10000 is an invalid token, the rest delivered", func(s *oppoemu.Server) { s.FailToken(bad, oppoemu.CodeInvalidRegID) },
			[]push.SendResult{{Class: push.SendInvalidToken, Code: "10000"}, {Class: push.SendOK}}},
		{"flow control -2 throttles", func(s *oppoemu.Server) { s.FailNext(oppoemu.CodeFlowControl, 1) },
			[]push.SendResult{{Class: push.SendThrottled, Code: "-2"}, {Class: push.SendThrottled, Code: "-2"}}},
		{"frequency limit 55 throttles", func(s *oppoemu.Server) { s.FailNext(oppoemu.CodeFrequencyLimit, 1) },
			[]push.SendResult{{Class: push.SendThrottled, Code: "55"}, {Class: push.SendThrottled, Code: "55"}}},
		{"call limit 13 throttles", func(s *oppoemu.Server) { s.FailNext(oppoemu.CodeCallLimited, 1) },
			[]push.SendResult{{Class: push.SendThrottled, Code: "13"}, {Class: push.SendThrottled, Code: "13"}}},
		{"daily limit 33 waits for midnight in China", func(s *oppoemu.Server) { s.FailNext(oppoemu.CodeDailyLimit, 1) },
			[]push.SendResult{{Class: push.SendThrottled, RetryAfter: toMidnight, Code: "33"}, {Class: push.SendThrottled, RetryAfter: toMidnight, Code: "33"}}},
		{"unavailable -1 is transient", func(s *oppoemu.Server) { s.FailNext(oppoemu.CodeUnavailable, 1) },
			[]push.SendResult{{Class: push.SendTransient, Code: "-1"}, {Class: push.SendTransient, Code: "-1"}}},
		{"invalid arguments 41 is a bad message", func(s *oppoemu.Server) { s.FailNext(oppoemu.CodeInvalidArgs, 1) },
			[]push.SendResult{{Class: push.SendBadMessage, Code: "41"}, {Class: push.SendBadMessage, Code: "41"}}},
		{"category refused 67 is a bad message", func(s *oppoemu.Server) { s.FailNext(oppoemu.CodeCategory, 1) },
			[]push.SendResult{{Class: push.SendBadMessage, Code: "67"}, {Class: push.SendBadMessage, Code: "67"}}},
		{"app disabled 28 is auth", func(s *oppoemu.Server) { s.FailNext(28, 1) },
			[]push.SendResult{{Class: push.SendAuth, Code: "28"}, {Class: push.SendAuth, Code: "28"}}},
		{"an unknown code is transient", func(s *oppoemu.Server) { s.FailNext(77777, 1) },
			[]push.SendResult{{Class: push.SendTransient, Code: "77777"}, {Class: push.SendTransient, Code: "77777"}}},
		{"an unknown per-message code is transient", func(s *oppoemu.Server) { s.FailToken(bad, 10001) },
			[]push.SendResult{{Class: push.SendTransient, Code: "10001"}, {Class: push.SendOK}}},
		{"invalid auth token twice is auth", func(s *oppoemu.Server) { s.FailNext(oppoemu.CodeInvalidToken, 2) },
			[]push.SendResult{{Class: push.SendAuth, Code: "11"}, {Class: push.SendAuth, Code: "11"}}},
		{"invalid auth token once is refreshed", func(s *oppoemu.Server) { s.FailNext(oppoemu.CodeInvalidToken, 1) },
			ok(2)},
		{"flow control share", func(s *oppoemu.Server) { s.SetShares(oppoemu.Shares{FlowControl: 1}) },
			[]push.SendResult{{Class: push.SendThrottled, Code: "-2"}, {Class: push.SendThrottled, Code: "-2"}}},
		{"unavailable share", func(s *oppoemu.Server) { s.SetShares(oppoemu.Shares{Unavailable: 1}) },
			[]push.SendResult{{Class: push.SendTransient, Code: "-1"}, {Class: push.SendTransient, Code: "-1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			tc.fault(f.emu)
			e := envelope(push.KindMessage, target("bob", bad), target("carol", good))
			got := f.sender.Send(context.Background(), f.job(e))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("results (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHTTPFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		header map[string]string
		want   push.SendResult
	}{
		{"503 is transient", http.StatusServiceUnavailable, nil, push.SendResult{Class: push.SendTransient, Code: "http_503"}},
		{"502 is transient", http.StatusBadGateway, nil, push.SendResult{Class: push.SendTransient, Code: "http_502"}},
		{"429 throttles with Retry-After", http.StatusTooManyRequests, map[string]string{"Retry-After": "7"}, push.SendResult{Class: push.SendThrottled, RetryAfter: 7 * time.Second, Code: "http_429"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A gateway in front of OPPO: it answers the auth request
			// and fails every push.
			f := newFixture(t, nil)
			gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
			}))
			t.Cleanup(gw.Close)
			f.creds = mustJSON(t, map[string]any{"appKey": appKey, "masterSecret": masterSecret, "channelId": "c",
				"endpoint": gw.URL, "authEndpoint": f.emu.URL})
			e := envelope(push.KindMessage, target("bob", "regid-1"))
			got := f.sender.Send(context.Background(), f.job(e))
			if diff := cmp.Diff([]push.SendResult{tc.want}, got); diff != "" {
				t.Errorf("results (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("unreachable is transient", func(t *testing.T) {
		f := newFixture(t, nil)
		f.emu.Close()
		got := f.sender.Send(context.Background(), f.job(envelope(push.KindMessage, target("bob", "regid-1"))))
		if diff := cmp.Diff([]push.SendResult{{Class: push.SendTransient, Code: "network"}}, got); diff != "" {
			t.Errorf("results (-want +got):\n%s", diff)
		}
	})
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestExpiredTokenIsRefreshedOnce(t *testing.T) {
	f := newFixture(t, nil)
	job := f.job(envelope(push.KindMessage, target("bob", "regid-1")))
	if got := f.sender.Send(context.Background(), job); !cmp.Equal(ok(1), got) {
		t.Fatalf("first send = %v", got)
	}
	f.emu.ExpireTokens()
	if got := f.sender.Send(context.Background(), job); !cmp.Equal(ok(1), got) {
		t.Fatalf("send after expiry = %v, want delivered after one refresh", got)
	}
	if m := f.emu.Mints(); m != 2 {
		t.Errorf("%d tokens minted, want 2 (one refresh)", m)
	}
	if n := len(f.emu.Received()); n != 1 {
		// The second push carries the same app_message_id to the same
		// target: OPPO (and the emulator) push it once.
		t.Errorf("emulator shows %d pushes, want 1 after de-duplication", n)
	}
}

func TestTokenSharedAndReused(t *testing.T) {
	f := newFixture(t, nil)
	other := oppo.New(oppo.Options{Cache: f.cache, Now: f.clock.Now})
	for i, s := range []*oppo.Sender{f.sender, other, f.sender, other} {
		e := envelope(push.KindMessage, target("bob", "regid-1"))
		e.MessageID = fmt.Sprintf("m-%d", i)
		if got := s.Send(context.Background(), f.job(e)); !cmp.Equal(ok(1), got) {
			t.Fatalf("send %d = %v", i, got)
		}
	}
	if m := f.emu.Mints(); m != 1 {
		t.Errorf("%d tokens minted for two containers, want 1 shared through the cache", m)
	}
	// Close to its 24-hour expiry the token is replaced ahead of time.
	f.clock.Add(23*time.Hour + time.Minute)
	if got := f.sender.Send(context.Background(), f.job(envelope(push.KindMessage, target("bob", "regid-1")))); !cmp.Equal(ok(1), got) {
		t.Fatalf("late send = %v", got)
	}
	if m := f.emu.Mints(); m != 2 {
		t.Errorf("%d tokens minted, want 2 once the first is within an hour of expiry", m)
	}
}

func TestCredentialErrors(t *testing.T) {
	auth := func(code string) []push.SendResult { return []push.SendResult{{Class: push.SendAuth, Code: code}} }
	for _, tc := range []struct {
		name  string
		creds func(emu string) map[string]any
		want  []push.SendResult
	}{
		{"not JSON", nil, auth("credentials")},
		{"no app key", func(emu string) map[string]any {
			return map[string]any{"masterSecret": masterSecret, "channelId": "c", "endpoint": emu}
		}, auth("credentials")},
		{"no channel", func(emu string) map[string]any {
			return map[string]any{"appKey": appKey, "masterSecret": masterSecret, "endpoint": emu}
		}, auth("credentials")},
		{"another vendor", func(emu string) map[string]any {
			return map[string]any{"vendor": "vivo", "appKey": appKey, "masterSecret": masterSecret, "channelId": "c", "endpoint": emu}
		}, auth("credentials")},
		{"local outside the local stack", func(string) map[string]any {
			return map[string]any{"appKey": appKey, "masterSecret": masterSecret, "channelId": "c", "endpoint": "local"}
		}, auth("credentials")},
		{"plain http off loopback", func(string) map[string]any {
			return map[string]any{"appKey": appKey, "masterSecret": masterSecret, "channelId": "c", "endpoint": "http://push.example.com"}
		}, auth("credentials")},
		{"wrong master secret", func(emu string) map[string]any {
			return map[string]any{"appKey": appKey, "masterSecret": "wrong", "channelId": "c", "endpoint": emu}
		}, auth("16")},
		{"unknown app key", func(emu string) map[string]any {
			return map[string]any{"appKey": "nope", "masterSecret": masterSecret, "channelId": "c", "endpoint": emu}
		}, auth("14")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			f.creds = []byte("{not json")
			if tc.creds != nil {
				f.creds = mustJSON(t, tc.creds(f.emu.URL))
			}
			got := f.sender.Send(context.Background(), f.job(envelope(push.KindMessage, target("bob", "regid-1"))))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("results (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPayloadTooLarge(t *testing.T) {
	f := newFixture(t, nil)
	e := envelope(push.KindMessage, target("bob", "regid-1"))
	e.Payload = map[string]string{"big": strings.Repeat("x", oppo.ActionParametersLimit)}
	got := f.sender.Send(context.Background(), f.job(e))
	if diff := cmp.Diff([]push.SendResult{{Class: push.SendBadMessage, Code: "payload_too_large"}}, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	if n := f.emu.Calls()[oppoemu.BatchPath]; n != 0 {
		t.Errorf("%d requests sent for an oversize payload, want none", n)
	}
}

func TestOurKeysWinOverCallerPayload(t *testing.T) {
	f := newFixture(t, nil)
	e := envelope(push.KindCallInvite, target("bob", "regid-1"))
	e.Payload = map[string]string{"callId": "forged", "type": "message", "extra": "kept"}
	if got := f.sender.Send(context.Background(), f.job(e)); !cmp.Equal(ok(1), got) {
		t.Fatalf("results = %v", got)
	}
	m := decodeParams(t, f.emu.Received()[0].Notification.ActionParameters)
	if m["callId"] != "c-9" || m["type"] != "call_invite" || m["extra"] != "kept" {
		t.Errorf("action_parameters = %v", m)
	}
}

// TestGolden pins the message element the provider sends for each kind.
// Rewrite with UPDATE_GOLDEN=1 after a deliberate change.
func TestGolden(t *testing.T) {
	for _, kind := range []push.MessageKind{push.KindMessage, push.KindCallInvite, push.KindCallCancel} {
		t.Run(string(kind), func(t *testing.T) {
			f := newFixture(t, nil)
			e := envelope(kind, target("bob", "CN_b6bbd94b59cdb5df8391642c1509b7fe"))
			if got := f.sender.Send(context.Background(), f.job(e)); !cmp.Equal(ok(1), got) {
				t.Fatalf("results = %v", got)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, f.emu.Received()[0].Message, "", "  "); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			path := filepath.Join("testdata", string(kind)+".golden")
			if os.Getenv("UPDATE_GOLDEN") != "" {
				if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with UPDATE_GOLDEN=1 to create it)", err)
			}
			if diff := cmp.Diff(string(want), pretty.String()); diff != "" {
				t.Errorf("request body differs from %s (-want +got):\n%s", path, diff)
			}
		})
	}
}
