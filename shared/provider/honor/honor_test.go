package honor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	honoremu "github.com/offline-push/offline-push/shared/emulator/honor"
	"github.com/offline-push/offline-push/shared/provider/honor"
	"github.com/offline-push/offline-push/shared/push"
)

const (
	appID        = "104000002"
	clientID     = "demo-honor-client"
	clientSecret = "honor-test-secret"
	badge        = "com.example.demo.MainActivity"
)

// now is the provider's clock in these tests: fixed, so TTLs and expiries
// in golden files never move.
var now = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func quiet() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }

// memCache is an in-memory TokenCache with the contract of the DynamoDB one:
// Swap stores next only while the stored token is still prev.
type memCache struct {
	mu sync.Mutex
	m  map[string]push.AccessToken
}

func newCache() *memCache { return &memCache{m: map[string]push.AccessToken{}} }

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
	if !ok || (prev != nil && cur.Value == prev.Value) {
		c.m[key] = next
		return next, nil
	}
	return cur, nil
}

func (c *memCache) get(key string) push.AccessToken {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[key]
}

func startEmulator(t testing.TB, opts honoremu.Options) *honoremu.Server {
	t.Helper()
	emu, err := honoremu.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Close)
	emu.AddApp(appID, clientID, clientSecret)
	return emu
}

func credentials(emu *honoremu.Server, extra map[string]any) []byte {
	c := map[string]any{
		"vendor":       "honor",
		"appId":        appID,
		"clientId":     clientID,
		"clientSecret": clientSecret,
		"badgeClass":   badge,
		"endpoint":     emu.URL,
		"authEndpoint": emu.URL,
	}
	for k, v := range extra {
		c[k] = v
	}
	b, err := json.Marshal(c)
	if err != nil {
		panic(err)
	}
	return b
}

func message() *push.Envelope {
	id, n := push.CollapseFor(push.Honor, push.MessageCollapseKey("m-1001"))
	return &push.Envelope{
		Version: push.EnvelopeVersion, App: "demo", Vendor: push.Honor, CertName: "android-honor",
		MessageID: "m-1001", Kind: push.KindMessage, SenderID: "alice",
		ConversationType: push.Group, ConversationID: "g1",
		ExpiresAt: now.Add(time.Hour).UnixMilli(), CollapseID: id, NotifyID: n,
		Priority: push.PriorityNormal,
		Texts: []push.EnvelopeText{
			{Title: "Team", Body: "Alice: lunch?"},
			{Title: "Team", Body: "Alice: 吃饭吗?", Lang: "zh"},
		},
		Payload: map[string]string{"k": "v"}, Badge: true, ResourceID: "chat",
	}
}

func callInvite() *push.Envelope {
	id, n := push.CollapseFor(push.Honor, push.CallCollapseKey("bob"))
	return &push.Envelope{
		Version: push.EnvelopeVersion, App: "demo", Vendor: push.Honor, CertName: "android-honor",
		MessageID: "m-call-9", Kind: push.KindCallInvite, SenderID: "alice",
		ConversationType: push.Peer, CallID: "c-9", Media: push.MediaAudio,
		ExpiresAt: now.Add(30 * time.Second).UnixMilli(), CollapseID: id, NotifyID: n,
		Priority: push.PriorityHigh,
		Texts:    []push.EnvelopeText{{Title: "Alice", Body: "Incoming call"}},
	}
}

func callCancel() *push.Envelope {
	e := callInvite()
	e.MessageID, e.Kind, e.ExpiresAt = "m-call-9-cancel", push.KindCallCancel, now.Add(24*time.Hour).UnixMilli()
	e.Texts = []push.EnvelopeText{{Title: "Alice", Body: ""}}
	return e
}

func targets(n int, text int) []push.Target {
	out := make([]push.Target, n)
	for i := range out {
		out[i] = push.Target{
			UserID: fmt.Sprintf("u%d", i), DeviceID: "phone", Platform: push.PlatformAndroid,
			Token: fmt.Sprintf("honor-token-%05d", i), Text: text,
		}
	}
	return out
}

func job(env *push.Envelope, creds []byte, ttl time.Duration, ts ...push.Target) *push.SendJob {
	return &push.SendJob{Envelope: env, Targets: ts, Credentials: creds, CredentialsKey: "demo/android-honor@v1", TTL: ttl}
}

func classes(rs []push.SendResult) []push.SendClass {
	out := make([]push.SendClass, len(rs))
	for i, r := range rs {
		out[i] = r.Class
	}
	return out
}

func repeat(c push.SendClass, n int) []push.SendClass {
	out := make([]push.SendClass, n)
	for i := range out {
		out[i] = c
	}
	return out
}

// TestPresentation sends a message, a call invite and a cancel through the
// emulator and checks what Honor would show.
func TestPresentation(t *testing.T) {
	emu := startEmulator(t, honoremu.Options{})
	s := honor.New(newCache(), func() time.Time { return now }, quiet())
	creds := credentials(emu, nil)
	msgTag, msgNotify := push.CollapseFor(push.Honor, push.MessageCollapseKey("m-1001"))
	callTag, callNotify := push.CollapseFor(push.Honor, push.CallCollapseKey("bob"))
	type want struct {
		Importance, TTL, Title, Body, Tag string
		NotifyID                          int64
		Badge                             bool
		Data                              map[string]string
	}
	for _, tc := range []struct {
		name string
		env  *push.Envelope
		ttl  time.Duration
		want want
	}{
		{"message", message(), time.Hour, want{
			Importance: "NORMAL", TTL: "3600s", Title: "Team", Body: "Alice: lunch?", Tag: msgTag,
			NotifyID: int64(msgNotify), Badge: true,
			Data: map[string]string{"k": "v", "type": "message", "messageId": "m-1001", "senderId": "alice",
				"conversationType": "group", "conversationId": "g1"},
		}},
		{"call invite: time left rounded up, callExpiresAt", callInvite(), 29200 * time.Millisecond, want{
			Importance: "NORMAL", TTL: "30s", Title: "Alice", Body: "Incoming call", Tag: callTag,
			NotifyID: int64(callNotify),
			Data: map[string]string{"type": "call_invite", "messageId": "m-call-9", "senderId": "alice",
				"conversationType": "peer", "callId": "c-9", "media": "audio",
				"callExpiresAt": fmt.Sprint(now.Add(30 * time.Second).UnixMilli())},
		}},
		{"call cancel: missed call replaces the ringing one", callCancel(), 24 * time.Hour, want{
			Importance: "NORMAL", TTL: "86400s", Title: "Alice", Body: push.DefaultCancelContent, Tag: callTag,
			NotifyID: int64(callNotify),
			Data: map[string]string{"type": "call_cancel", "messageId": "m-call-9-cancel", "senderId": "alice",
				"conversationType": "peer", "callId": "c-9", "media": "audio"},
		}},
		{"ttl capped at 15 days", message(), 28 * 24 * time.Hour, want{
			Importance: "NORMAL", TTL: "1296000s", Title: "Team", Body: "Alice: lunch?", Tag: msgTag,
			NotifyID: int64(msgNotify), Badge: true,
			Data: map[string]string{"k": "v", "type": "message", "messageId": "m-1001", "senderId": "alice",
				"conversationType": "group", "conversationId": "g1"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			emu.Reset()
			rs := s.Send(context.Background(), job(tc.env, creds, tc.ttl, targets(1, 0)...))
			if diff := cmp.Diff([]push.SendClass{push.SendOK}, classes(rs)); diff != "" {
				t.Fatalf("results (-want +got):\n%s%v", diff, rs)
			}
			got := emu.Received()
			if len(got) != 1 {
				t.Fatalf("emulator accepted %d requests, want 1", len(got))
			}
			a := got[0].Request.Android
			n := a.Notification
			var notify int64
			if n.NotifyID != nil {
				notify, _ = n.NotifyID.Int64()
			}
			g := want{
				Importance: n.Importance, TTL: a.TTL, Title: n.Title, Body: n.Body, Tag: n.Tag,
				NotifyID: notify, Badge: n.Badge != nil, Data: got[0].Data,
			}
			if diff := cmp.Diff(tc.want, g); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
			if n.Badge != nil && (n.Badge.AddNum == nil || *n.Badge.AddNum != 1 || n.Badge.BadgeClass != badge) {
				t.Errorf("badge = %+v, want addNum 1 with badgeClass %s", n.Badge, badge)
			}
			if n.ClickAction == nil || n.ClickAction.Type != 3 {
				t.Errorf("clickAction = %+v, want type 3 (open the app)", n.ClickAction)
			}
			if ts := got[0].Timestamp; ts != now.UnixMilli() {
				t.Errorf("timestamp header = %d, want %d (Unix ms)", ts, now.UnixMilli())
			}
		})
	}
}

// TestImportanceFromCredentials checks that the credentials' importance and
// the resource's override the default, and that no badge goes out without
// the launcher activity Honor needs.
func TestImportanceFromCredentials(t *testing.T) {
	emu := startEmulator(t, honoremu.Options{})
	s := honor.New(newCache(), func() time.Time { return now }, quiet())
	for _, tc := range []struct {
		name      string
		extra     map[string]any
		want      string
		wantBadge bool
	}{
		{"credentials", map[string]any{"importance": "LOW"}, "LOW", true},
		{"resource wins", map[string]any{"importance": "LOW", "resources": map[string]any{"chat": map[string]any{"importance": "NORMAL"}}}, "NORMAL", true},
		{"no badge class, no badge", map[string]any{"badgeClass": ""}, "NORMAL", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			emu.Reset()
			j := job(message(), credentials(emu, tc.extra), time.Minute, targets(1, 0)...)
			j.CredentialsKey = tc.name
			if rs := s.Send(context.Background(), j); rs[0].Class != push.SendOK {
				t.Fatalf("result = %+v, want ok", rs[0])
			}
			n := emu.Received()[0].Request.Android.Notification
			if n.Importance != tc.want {
				t.Errorf("importance = %q, want %q", n.Importance, tc.want)
			}
			if (n.Badge != nil) != tc.wantBadge {
				t.Errorf("badge = %+v, want present %v", n.Badge, tc.wantBadge)
			}
		})
	}
}

// TestSplitting checks that targets are grouped by text and split at 1000
// tokens per request, and that every target is delivered exactly once.
func TestSplitting(t *testing.T) {
	emu := startEmulator(t, honoremu.Options{})
	s := honor.New(newCache(), func() time.Time { return now }, quiet())
	ts := targets(2101, 0)
	for i := 2000; i < len(ts); i++ {
		ts[i].Text = 1
	}
	rs := s.Send(context.Background(), job(message(), credentials(emu, nil), time.Hour, ts...))
	if diff := cmp.Diff(repeat(push.SendOK, len(ts)), classes(rs)); diff != "" {
		t.Fatalf("results (-want +got):\n%s", diff)
	}
	sizes := map[string][]int{}
	for _, p := range emu.Received() {
		body := p.Request.Android.Notification.Body
		sizes[body] = append(sizes[body], len(p.Tokens))
	}
	want := map[string][]int{"Alice: lunch?": {1000, 1000}, "Alice: 吃饭吗?": {101}}
	if diff := cmp.Diff(want, sizes); diff != "" {
		t.Errorf("tokens per request by text (-want +got):\n%s", diff)
	}
	delivered := emu.Delivered()
	for _, tg := range ts {
		if delivered[tg.Token] != 1 {
			t.Fatalf("token %s delivered %d times, want 1", push.Redact(tg.Token), delivered[tg.Token])
		}
	}
}

// TestResultMapping drives every answer path through the emulator's fault
// controls.
func TestResultMapping(t *testing.T) {
	emu := startEmulator(t, honoremu.Options{})
	s := honor.New(newCache(), func() time.Time { return now }, quiet())
	creds := credentials(emu, nil)
	ts := targets(3, 0)
	for _, tc := range []struct {
		name      string
		n         int
		setup     func()
		ctx       func() (context.Context, context.CancelFunc)
		want      []push.SendClass
		wantCodes []string
		wantRetry time.Duration
		requests  int
		delivered int
	}{
		{name: "success", n: 3, want: repeat(push.SendOK, 3), wantCodes: []string{"200", "200", "200"}, requests: 1, delivered: 3},
		{name: "expireTokens unbound, failTokens retried, the rest ok", n: 3,
			setup:     func() { emu.FailToken(ts[0].Token, honoremu.Expired); emu.FailToken(ts[2].Token, honoremu.Failed) },
			want:      []push.SendClass{push.SendInvalidToken, push.SendOK, push.SendTransient},
			wantCodes: []string{"expireTokens", "200", "failTokens"}, requests: 1, delivered: 1},
		{name: "every token expired", n: 2,
			setup: func() { emu.FailToken(ts[0].Token, honoremu.Expired); emu.FailToken(ts[1].Token, honoremu.Expired) },
			want:  repeat(push.SendInvalidToken, 2), wantCodes: []string{"expireTokens", "expireTokens"}, requests: 1},
		{name: "code 200 without a result: transient", n: 1,
			setup: func() { emu.FailNext(1, honoremu.Reply{Status: 200, Code: 200, Message: "success"}) },
			want:  []push.SendClass{push.SendTransient}, wantCodes: []string{"not_sent"}, requests: 1},
		{name: "flow control: throttled with its hint", n: 2,
			setup: func() { emu.FailNext(1, honoremu.Reply{Status: 503, RetryAfter: 5 * time.Second}) },
			want:  repeat(push.SendThrottled, 2), wantCodes: []string{"http_503", "http_503"}, wantRetry: 5 * time.Second, requests: 1},
		{name: "too many requests: throttled", n: 1,
			setup: func() { emu.FailNext(1, honoremu.Reply{Status: 429}) },
			want:  []push.SendClass{push.SendThrottled}, wantCodes: []string{"http_429"}, requests: 1},
		{name: "internal error: transient", n: 1,
			setup: func() { emu.FailNext(1, honoremu.Reply{Status: 500, Code: 500, Message: "internal"}) },
			want:  []push.SendClass{push.SendTransient}, wantCodes: []string{"500"}, requests: 1},
		{name: "parameter error: bad message", n: 2,
			setup: func() { emu.FailNext(1, honoremu.Reply{Status: 400, Code: 80100003, Message: "illegal payload"}) },
			want:  repeat(push.SendBadMessage, 2), wantCodes: []string{"80100003", "80100003"}, requests: 1},
		{name: "unknown code: transient", n: 1,
			setup: func() { emu.FailNext(1, honoremu.Reply{Status: 400, Code: 12345, Message: "?"}) },
			want:  []push.SendClass{push.SendTransient}, wantCodes: []string{"12345"}, requests: 1},
		{name: "no answer in time: transient", n: 2,
			setup: func() { emu.SetDelay(time.Minute) },
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 200*time.Millisecond)
			},
			want: repeat(push.SendTransient, 2), wantCodes: []string{"network", "network"}, requests: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			emu.ClearFaults()
			s.Send(context.Background(), job(message(), creds, time.Hour, push.Target{UserID: "w", DeviceID: "w", Token: "warm-up-token"}))
			emu.Reset()
			if tc.setup != nil {
				tc.setup()
			}
			ctx, cancel := context.WithCancel(context.Background())
			if tc.ctx != nil {
				ctx, cancel = tc.ctx()
			}
			defer cancel()
			rs := s.Send(ctx, job(message(), creds, time.Hour, ts[:tc.n]...))
			emu.ClearFaults()
			if diff := cmp.Diff(tc.want, classes(rs)); diff != "" {
				t.Errorf("classes (-want +got):\n%s", diff)
			}
			codes := make([]string, len(rs))
			for i, r := range rs {
				codes[i] = r.Code
			}
			if diff := cmp.Diff(tc.wantCodes, codes); diff != "" {
				t.Errorf("codes (-want +got):\n%s", diff)
			}
			if rs[0].RetryAfter != tc.wantRetry {
				t.Errorf("retry after = %v, want %v", rs[0].RetryAfter, tc.wantRetry)
			}
			if got := emu.Requests(); got != tc.requests {
				t.Errorf("requests = %d, want %d", got, tc.requests)
			}
			got := 0
			for _, n := range emu.Delivered() {
				got += n
			}
			if got != tc.delivered {
				t.Errorf("delivered = %d, want %d", got, tc.delivered)
			}
		})
	}
}

// TestRefreshOnce expires the access token at the emulator: the next send
// is refused (HTTP 401), the token is refreshed once and the send
// succeeds. A token refused even when fresh is auth, after one refresh.
func TestRefreshOnce(t *testing.T) {
	emu := startEmulator(t, honoremu.Options{})
	cache := newCache()
	s := honor.New(cache, func() time.Time { return now }, quiet())
	creds := credentials(emu, nil)
	send := func() []push.SendResult {
		return s.Send(context.Background(), job(message(), creds, time.Hour, targets(2, 0)...))
	}
	if rs := send(); rs[0].Class != push.SendOK {
		t.Fatalf("first send: %+v", rs)
	}
	first := cache.get("honor/" + clientID + "#" + push.CredentialFingerprint(clientSecret))
	emu.ExpireAccessTokens()
	emu.Reset()
	if diff := cmp.Diff(repeat(push.SendOK, 2), classes(send())); diff != "" {
		t.Fatalf("send after expiry (-want +got):\n%s", diff)
	}
	if got := emu.Mints(); got != 1 {
		t.Errorf("mints after expiry = %d, want 1", got)
	}
	if got := emu.Requests(); got != 2 {
		t.Errorf("send requests = %d, want 2 (refused, then sent)", got)
	}
	if second := cache.get("honor/" + clientID + "#" + push.CredentialFingerprint(clientSecret)); second.Value == first.Value {
		t.Error("the cache still holds the expired token")
	}

	emu.Reset()
	emu.FailNext(2, honoremu.Reply{Status: 401})
	if diff := cmp.Diff(repeat(push.SendAuth, 2), classes(send())); diff != "" {
		t.Errorf("refused twice (-want +got):\n%s", diff)
	}
	if got := emu.Requests(); got != 2 {
		t.Errorf("send requests = %d, want 2: one refresh, never a loop", got)
	}
}

// TestTokenShared checks that two containers mint one token between them.
func TestTokenShared(t *testing.T) {
	emu := startEmulator(t, honoremu.Options{})
	cache := newCache()
	creds := credentials(emu, nil)
	a := honor.New(cache, func() time.Time { return now }, quiet())
	b := honor.New(cache, func() time.Time { return now }, quiet())
	for _, s := range []*honor.Sender{a, b, a, b} {
		if rs := s.Send(context.Background(), job(message(), creds, time.Hour, targets(1, 0)...)); rs[0].Class != push.SendOK {
			t.Fatalf("send: %+v", rs)
		}
	}
	if got := emu.Mints(); got != 1 {
		t.Errorf("mints = %d, want 1 shared by both", got)
	}
	emu.ExpireAccessTokens()
	a.Send(context.Background(), job(message(), creds, time.Hour, targets(1, 0)...))
	if rs := b.Send(context.Background(), job(message(), creds, time.Hour, targets(1, 0)...)); rs[0].Class != push.SendOK {
		t.Fatalf("send by b: %+v", rs)
	}
	if got := emu.Mints(); got != 2 {
		t.Errorf("mints = %d, want 2 (one refresh shared)", got)
	}
}

// TestTokenReusedUntilCloseToExpiry moves both clocks: the token is reused
// while more than its refresh margin is left, then replaced.
func TestTokenReusedUntilCloseToExpiry(t *testing.T) {
	var clock atomic.Int64
	read := func() time.Time { return now.Add(time.Duration(clock.Load())) }
	emu := startEmulator(t, honoremu.Options{Now: read})
	s := honor.New(newCache(), read, quiet())
	creds := credentials(emu, nil)
	for _, step := range []struct {
		at    time.Duration
		mints int
	}{{0, 1}, {54 * time.Minute, 1}, {56 * time.Minute, 2}} {
		clock.Store(int64(step.at))
		if rs := s.Send(context.Background(), job(message(), creds, time.Hour, targets(1, 0)...)); rs[0].Class != push.SendOK {
			t.Fatalf("at +%v: %+v", step.at, rs)
		}
		if got := emu.Mints(); got != step.mints {
			t.Errorf("at +%v: mints = %d, want %d", step.at, got, step.mints)
		}
	}
}

// TestUnusableCredentials checks that credentials that cannot work are
// auth, never a panic or a drop.
func TestUnusableCredentials(t *testing.T) {
	emu := startEmulator(t, honoremu.Options{})
	s := honor.New(newCache(), func() time.Time { return now }, quiet())
	for _, tc := range []struct {
		name  string
		creds []byte
		want  push.SendResult
	}{
		{"wrong secret", credentials(emu, map[string]any{"clientSecret": "wrong"}), push.SendResult{Class: push.SendAuth, Code: "auth_invalid_client"}},
		{"not JSON", []byte("["), push.SendResult{Class: push.SendAuth, Code: "credentials"}},
		{"no client id", credentials(emu, map[string]any{"clientId": ""}), push.SendResult{Class: push.SendAuth, Code: "credentials"}},
		{"bad importance", credentials(emu, map[string]any{"importance": "HIGH"}), push.SendResult{Class: push.SendAuth, Code: "credentials"}},
		{"local endpoint outside the local stack", credentials(emu, map[string]any{"authEndpoint": "local"}), push.SendResult{Class: push.SendAuth, Code: "credentials"}},
		{"other vendor", credentials(emu, map[string]any{"vendor": "huawei"}), push.SendResult{Class: push.SendAuth, Code: "credentials"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := job(message(), tc.creds, time.Hour, targets(2, 0)...)
			j.CredentialsKey = tc.name
			if diff := cmp.Diff([]push.SendResult{tc.want, tc.want}, s.Send(context.Background(), j)); diff != "" {
				t.Errorf("results (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFitsMessageLimit checks the rune-safe cut and the oversize payload.
func TestFitsMessageLimit(t *testing.T) {
	emu := startEmulator(t, honoremu.Options{})
	s := honor.New(newCache(), func() time.Time { return now }, quiet())
	creds := credentials(emu, nil)
	env := message()
	long := strings.Repeat("🇨🇳吃饭吗", 500)
	env.Texts = []push.EnvelopeText{{Title: "Team", Body: long}}
	if rs := s.Send(context.Background(), job(env, creds, time.Hour, targets(1, 0)...)); rs[0].Class != push.SendOK {
		t.Fatalf("long body: %+v", rs[0])
	}
	body := emu.Received()[0].Request.Android.Notification.Body
	if !utf8.ValidString(body) || !strings.HasSuffix(body, "…") || !strings.HasPrefix(long, strings.TrimSuffix(body, "…")) {
		t.Errorf("body is not a clean prefix of the text plus an ellipsis: %q…", body[:40])
	}
	if flags := strings.Count(strings.TrimSuffix(body, "…"), "🇨🇳"); strings.Count(body, "\U0001F1E8") != flags {
		t.Errorf("the cut left half a flag")
	}

	emu.Reset()
	env = message()
	env.Payload = map[string]string{"blob": strings.Repeat("x", 4200)}
	want := push.SendResult{Class: push.SendBadMessage, Code: "too_large"}
	if diff := cmp.Diff([]push.SendResult{want}, s.Send(context.Background(), job(env, creds, time.Hour, targets(1, 0)...))); diff != "" {
		t.Errorf("oversize payload (-want +got):\n%s", diff)
	}
	if n := emu.Requests(); n != 0 {
		t.Errorf("emulator got %d requests for an oversize payload, want 0", n)
	}
}

var update = flag.Bool("update", os.Getenv("UPDATE_GOLDEN") == "1", "rewrite testdata/*.golden")

// TestGolden pins the request body of each kind. Rewrite with
// UPDATE_GOLDEN=1.
func TestGolden(t *testing.T) {
	emu := startEmulator(t, honoremu.Options{})
	s := honor.New(newCache(), func() time.Time { return now }, quiet())
	creds := credentials(emu, nil)
	for _, tc := range []struct {
		name string
		env  *push.Envelope
		ttl  time.Duration
	}{
		{"message", message(), 24 * time.Hour},
		{"call-invite", callInvite(), 30 * time.Second},
		{"call-cancel", callCancel(), 24 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			emu.Reset()
			if rs := s.Send(context.Background(), job(tc.env, creds, tc.ttl, targets(2, 0)...)); rs[0].Class != push.SendOK {
				t.Fatalf("send: %+v", rs)
			}
			var got bytes.Buffer
			if err := json.Indent(&got, emu.Received()[0].Body, "", "  "); err != nil {
				t.Fatal(err)
			}
			got.WriteByte('\n')
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with UPDATE_GOLDEN=1 to create it)", err)
			}
			if diff := cmp.Diff(string(want), got.String()); diff != "" {
				t.Errorf("request body (-want +got):\n%s", diff)
			}
		})
	}
}
