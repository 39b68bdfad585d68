package huawei_test

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

	huaweiemu "github.com/offline-push/offline-push/shared/emulator/huawei"
	"github.com/offline-push/offline-push/shared/provider/huawei"
	"github.com/offline-push/offline-push/shared/push"
)

const (
	appID     = "104000001"
	appSecret = "huawei-test-secret"
	badge     = "com.example.demo.MainActivity"
)

// now is the provider's clock in these tests: fixed, so TTLs and expiries
// in golden files never move.
var now = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func quiet() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }

// memCache is an in-memory TokenCache with the contract of the DynamoDB one:
// Swap stores next only while the stored token is still prev.
type memCache struct {
	mu    sync.Mutex
	m     map[string]push.AccessToken
	loads int
	swaps int
}

func newCache() *memCache { return &memCache{m: map[string]push.AccessToken{}} }

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
	c.swaps++
	cur, ok := c.m[key]
	if (!ok && prev == nil) || (ok && prev != nil && cur.Value == prev.Value) || (!ok && prev != nil) {
		c.m[key] = next
		return next, nil
	}
	return cur, nil
}

func startEmulator(t testing.TB, opts huaweiemu.Options) *huaweiemu.Server {
	t.Helper()
	emu, err := huaweiemu.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Close)
	emu.AddApp(appID, appSecret)
	return emu
}

func credentials(emu *huaweiemu.Server, extra map[string]any) []byte {
	c := map[string]any{
		"vendor":       "huawei",
		"appId":        appID,
		"appSecret":    appSecret,
		"badgeClass":   badge,
		"endpoint":     emu.URL,
		"authEndpoint": emu.URL,
		"resources": map[string]any{
			"chat": map[string]any{"channelId": "im_messages", "sound": "ding.mp3"},
		},
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
	id, n := push.CollapseFor(push.Huawei, push.MessageCollapseKey("m-1001"))
	return &push.Envelope{
		Version: push.EnvelopeVersion, App: "demo", Vendor: push.Huawei, CertName: "android-huawei",
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
	id, n := push.CollapseFor(push.Huawei, push.CallCollapseKey("bob"))
	return &push.Envelope{
		Version: push.EnvelopeVersion, App: "demo", Vendor: push.Huawei, CertName: "android-huawei",
		MessageID: "m-call-9", Kind: push.KindCallInvite, SenderID: "alice",
		ConversationType: push.Peer, CallID: "c-9", Media: push.MediaVideo,
		ExpiresAt: now.Add(30 * time.Second).UnixMilli(), CollapseID: id, NotifyID: n,
		Priority: push.PriorityHigh,
		Texts:    []push.EnvelopeText{{Title: "Alice", Body: "Incoming video call"}},
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
			Token: fmt.Sprintf("IQAAAACy0kYRAAAr-tok%05d", i), Text: text,
		}
	}
	return out
}

func job(env *push.Envelope, creds []byte, ttl time.Duration, ts ...push.Target) *push.SendJob {
	return &push.SendJob{Envelope: env, Targets: ts, Credentials: creds, CredentialsKey: "demo/android-huawei@v1", TTL: ttl}
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
// emulator and checks what Huawei would show: classification, urgency, TTL,
// collapse ids, badge, sound, channel and the app's data.
func TestPresentation(t *testing.T) {
	emu := startEmulator(t, huaweiemu.Options{})
	s := huawei.New(newCache(), func() time.Time { return now }, quiet())
	creds := credentials(emu, nil)
	msgTag, msgNotify := push.CollapseFor(push.Huawei, push.MessageCollapseKey("m-1001"))
	callTag, callNotify := push.CollapseFor(push.Huawei, push.CallCollapseKey("bob"))
	type want struct {
		category, urgency, ttl, title, body, tag, channel, sound string
		notifyID                                                 int64
		defaultSound                                             bool
		badge                                                    bool
		data                                                     map[string]string
	}
	for _, tc := range []struct {
		name string
		env  *push.Envelope
		ttl  time.Duration
		want want
	}{
		{"message", message(), time.Hour, want{
			category: "IM", urgency: "NORMAL", ttl: "3600s", title: "Team", body: "Alice: lunch?",
			tag: msgTag, notifyID: int64(msgNotify), channel: "im_messages", sound: "/raw/ding", badge: true,
			data: map[string]string{"k": "v", "type": "message", "messageId": "m-1001", "senderId": "alice",
				"conversationType": "group", "conversationId": "g1"},
		}},
		{"call invite: time left rounded up, callExpiresAt", callInvite(), 29200 * time.Millisecond, want{
			category: "VOIP", urgency: "HIGH", ttl: "30s", title: "Alice", body: "Incoming video call",
			tag: callTag, notifyID: int64(callNotify), defaultSound: true,
			data: map[string]string{"type": "call_invite", "messageId": "m-call-9", "senderId": "alice",
				"conversationType": "peer", "callId": "c-9", "media": "video",
				"callExpiresAt": fmt.Sprint(now.Add(30 * time.Second).UnixMilli())},
		}},
		{"call cancel: missed call replaces the ringing one", callCancel(), 24 * time.Hour, want{
			category: "VOIP", urgency: "HIGH", ttl: "86400s", title: "Alice", body: push.DefaultCancelContent,
			tag: callTag, notifyID: int64(callNotify), defaultSound: true,
			data: map[string]string{"type": "call_cancel", "messageId": "m-call-9-cancel", "senderId": "alice",
				"conversationType": "peer", "callId": "c-9", "media": "video"},
		}},
		{"ttl capped at 15 days", message(), 28 * 24 * time.Hour, want{
			category: "IM", urgency: "NORMAL", ttl: "1296000s", title: "Team", body: "Alice: lunch?",
			tag: msgTag, notifyID: int64(msgNotify), channel: "im_messages", sound: "/raw/ding", badge: true,
			data: map[string]string{"k": "v", "type": "message", "messageId": "m-1001", "senderId": "alice",
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
			a := got[0].Request.Message.Android
			n := a.Notification
			var notify int64
			if n.NotifyID != nil {
				notify, _ = n.NotifyID.Int64()
			}
			g := want{
				category: a.Category, urgency: a.Urgency, ttl: a.TTL, title: n.Title, body: n.Body,
				tag: n.Tag, notifyID: notify, channel: n.ChannelID, sound: n.Sound,
				defaultSound: n.DefaultSound, badge: n.Badge != nil, data: got[0].Data,
			}
			if diff := cmp.Diff(tc.want, g, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
			if n.Badge != nil && (n.Badge.AddNum == nil || *n.Badge.AddNum != 1 || n.Badge.Class != badge) {
				t.Errorf("badge = %+v, want add_num 1 with class %s", n.Badge, badge)
			}
			if n.ClickAction == nil || n.ClickAction.Type != 3 {
				t.Errorf("click_action = %+v, want type 3 (open the app)", n.ClickAction)
			}
			if n.Importance != "NORMAL" {
				t.Errorf("importance = %q, want NORMAL", n.Importance)
			}
		})
	}
}

// TestClassificationFromCredentials checks that the credentials' category
// fields and the resource's override the defaults, and that no badge goes
// out without the launcher activity Huawei needs.
func TestClassificationFromCredentials(t *testing.T) {
	emu := startEmulator(t, huaweiemu.Options{})
	s := huawei.New(newCache(), func() time.Time { return now }, quiet())
	for _, tc := range []struct {
		name         string
		extra        map[string]any
		env          *push.Envelope
		wantCategory string
		wantBadge    bool
	}{
		{"message category", map[string]any{"category": "WORK"}, message(), "WORK", true},
		{"call category", map[string]any{"callCategory": "IM"}, callInvite(), "IM", false},
		{"resource category wins", map[string]any{"resources": map[string]any{"chat": map[string]any{"category": "MAIL"}}}, message(), "MAIL", true},
		{"no badge class, no badge", map[string]any{"badgeClass": ""}, message(), "IM", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			emu.Reset()
			j := job(tc.env, credentials(emu, tc.extra), time.Minute, targets(1, 0)...)
			j.CredentialsKey = tc.name
			if rs := s.Send(context.Background(), j); rs[0].Class != push.SendOK {
				t.Fatalf("result = %+v, want ok", rs[0])
			}
			got := emu.Received()[0].Request.Message.Android
			if got.Category != tc.wantCategory {
				t.Errorf("category = %q, want %q", got.Category, tc.wantCategory)
			}
			if (got.Notification.Badge != nil) != tc.wantBadge {
				t.Errorf("badge = %+v, want present %v", got.Notification.Badge, tc.wantBadge)
			}
		})
	}
}

// TestSplitting checks that targets are grouped by text and split at 1000
// tokens per request, and that every target is delivered exactly once.
func TestSplitting(t *testing.T) {
	emu := startEmulator(t, huaweiemu.Options{})
	s := huawei.New(newCache(), func() time.Time { return now }, quiet())
	ts := targets(2101, 0)
	for i := 2000; i < len(ts); i++ {
		ts[i].Text = 1 // the last 101 read Chinese
	}
	rs := s.Send(context.Background(), job(message(), credentials(emu, nil), time.Hour, ts...))
	if diff := cmp.Diff(repeat(push.SendOK, len(ts)), classes(rs)); diff != "" {
		t.Fatalf("results (-want +got):\n%s", diff)
	}
	sizes := map[string][]int{}
	for _, p := range emu.Received() {
		body := p.Request.Message.Android.Notification.Body
		sizes[body] = append(sizes[body], len(p.Tokens))
	}
	for _, v := range sizes {
		// Requests of one group run concurrently; compare as a multiset.
		if len(v) > 1 && v[0] < v[1] {
			v[0], v[1] = v[1], v[0]
		}
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
// controls and checks the class of each target and how many requests it
// took.
func TestResultMapping(t *testing.T) {
	emu := startEmulator(t, huaweiemu.Options{})
	s := huawei.New(newCache(), func() time.Time { return now }, quiet())
	creds := credentials(emu, nil)
	ts := targets(3, 0)
	for _, tc := range []struct {
		name      string
		n         int // targets sent
		setup     func()
		ctx       func() (context.Context, context.CancelFunc)
		want      []push.SendClass
		wantCode  string // of the first result
		wantRetry time.Duration
		requests  int
		delivered int
	}{
		{name: "success", n: 3, want: repeat(push.SendOK, 3), wantCode: "80000000", requests: 1, delivered: 3},
		{name: "partial success: illegal token unbound, the rest ok", n: 3,
			setup: func() { emu.FailToken(ts[1].Token) },
			want:  []push.SendClass{push.SendOK, push.SendInvalidToken, push.SendOK}, wantCode: "80100000", requests: 1, delivered: 2},
		{name: "all invalid, one token", n: 1,
			setup: func() { emu.FailToken(ts[0].Token) },
			want:  []push.SendClass{push.SendInvalidToken}, wantCode: "80300007", requests: 1},
		{name: "all invalid, several: each retried alone, then unbound", n: 3,
			setup: func() {
				for _, tg := range ts {
					emu.FailToken(tg.Token)
				}
			},
			want: repeat(push.SendInvalidToken, 3), wantCode: "80300007", requests: 4},
		{name: "all invalid for a batch that is fine alone: nothing unbound", n: 3,
			setup: func() {
				emu.FailNext(1, huaweiemu.Reply{Status: 400, Code: "80300007", Msg: "All the tokens are invalid"})
			},
			want: repeat(push.SendOK, 3), wantCode: "80000000", requests: 4, delivered: 3},
		{name: "flow control: throttled", n: 3,
			setup: func() { emu.FailNext(1, huaweiemu.Reply{Status: 503}) },
			want:  repeat(push.SendThrottled, 3), wantCode: "http_503", requests: 1},
		{name: "flow control with a hint", n: 1,
			setup: func() { emu.FailNext(1, huaweiemu.Reply{Status: 503, RetryAfter: 7 * time.Second}) },
			want:  []push.SendClass{push.SendThrottled}, wantCode: "http_503", wantRetry: 7 * time.Second, requests: 1},
		{name: "internal error: transient", n: 3,
			setup: func() { emu.FailNext(1, huaweiemu.Reply{Status: 500, Code: "81000001", Msg: "System inner error"}) },
			want:  repeat(push.SendTransient, 3), wantCode: "81000001", requests: 1},
		{name: "bad gateway without a code: transient", n: 1,
			setup: func() { emu.FailNext(1, huaweiemu.Reply{Status: 502}) },
			want:  []push.SendClass{push.SendTransient}, wantCode: "http_502", requests: 1},
		{name: "illegal payload: bad message", n: 2,
			setup: func() { emu.FailNext(1, huaweiemu.Reply{Status: 400, Code: "80100003", Msg: "Illegal payload"}) },
			want:  repeat(push.SendBadMessage, 2), wantCode: "80100003", requests: 1},
		{name: "sensitive content: bad message", n: 1,
			setup: func() { emu.FailNext(1, huaweiemu.Reply{Status: 400, Code: "80100016", Msg: "sensitive"}) },
			want:  []push.SendClass{push.SendBadMessage}, wantCode: "80100016", requests: 1},
		{name: "no push permission: auth", n: 1,
			setup: func() { emu.FailNext(1, huaweiemu.Reply{Status: 403, Code: "80300002", Msg: "no permission"}) },
			want:  []push.SendClass{push.SendAuth}, wantCode: "80300002", requests: 1},
		{name: "unknown code: transient", n: 1,
			setup: func() { emu.FailNext(1, huaweiemu.Reply{Status: 400, Code: "89999999", Msg: "?"}) },
			want:  []push.SendClass{push.SendTransient}, wantCode: "89999999", requests: 1},
		{name: "no answer in time: transient", n: 2,
			setup: func() { emu.SetDelay(time.Minute) },
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 200*time.Millisecond)
			},
			want: repeat(push.SendTransient, 2), wantCode: "network", requests: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			emu.ClearFaults()
			// Mint before counting, so that requests count sends only.
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
			if rs[0].Code != tc.wantCode {
				t.Errorf("code = %q, want %q", rs[0].Code, tc.wantCode)
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
// is refused with 80200003, the token is refreshed once (published to the
// cache) and the send succeeds. A token refused even when fresh is auth.
func TestRefreshOnce(t *testing.T) {
	emu := startEmulator(t, huaweiemu.Options{})
	cache := newCache()
	s := huawei.New(cache, func() time.Time { return now }, quiet())
	creds := credentials(emu, nil)
	send := func() []push.SendResult {
		return s.Send(context.Background(), job(message(), creds, time.Hour, targets(2, 0)...))
	}
	if rs := send(); rs[0].Class != push.SendOK {
		t.Fatalf("first send: %+v", rs)
	}
	first := cache.m["huawei/"+appID+"#"+push.CredentialFingerprint(appSecret)]
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
	if second := cache.m["huawei/"+appID+"#"+push.CredentialFingerprint(appSecret)]; second.Value == first.Value {
		t.Error("the cache still holds the expired token")
	}

	emu.Reset()
	emu.FailNext(2, huaweiemu.Reply{Status: 401, Code: "80200001", Msg: "Oauth authentication error"})
	rs := send()
	if diff := cmp.Diff(repeat(push.SendAuth, 2), classes(rs)); diff != "" {
		t.Errorf("refused twice (-want +got):\n%s", diff)
	}
	if got, want := emu.Requests(), 2; got != want {
		t.Errorf("send requests = %d, want %d: one refresh, never a loop", got, want)
	}
}

// TestTokenShared checks that two containers (two Senders over one cache)
// mint one token between them, and that a token another container has
// already replaced is taken from the cache instead of minted again.
func TestTokenShared(t *testing.T) {
	emu := startEmulator(t, huaweiemu.Options{})
	cache := newCache()
	creds := credentials(emu, nil)
	a := huawei.New(cache, func() time.Time { return now }, quiet())
	b := huawei.New(cache, func() time.Time { return now }, quiet())
	for _, s := range []*huawei.Sender{a, b, a, b} {
		if rs := s.Send(context.Background(), job(message(), creds, time.Hour, targets(1, 0)...)); rs[0].Class != push.SendOK {
			t.Fatalf("send: %+v", rs)
		}
	}
	if got := emu.Mints(); got != 1 {
		t.Errorf("mints = %d, want 1 shared by both", got)
	}
	// Container a refreshes after an expiry; b, refused with its old copy,
	// must pick a's token from the cache rather than mint.
	emu.ExpireAccessTokens()
	a.Send(context.Background(), job(message(), creds, time.Hour, targets(1, 0)...))
	if rs := b.Send(context.Background(), job(message(), creds, time.Hour, targets(1, 0)...)); rs[0].Class != push.SendOK {
		t.Fatalf("send by b: %+v", rs)
	}
	if got := emu.Mints(); got != 2 {
		t.Errorf("mints = %d, want 2 (one refresh shared)", got)
	}
}

// TestTokenReusedUntilCloseToExpiry moves the provider's clock: the token
// is reused while more than its refresh margin is left, then replaced.
func TestTokenReusedUntilCloseToExpiry(t *testing.T) {
	var clock atomic.Int64 // offset from now, read by the emulator's goroutines too
	read := func() time.Time { return now.Add(time.Duration(clock.Load())) }
	emu := startEmulator(t, huaweiemu.Options{Now: read})
	s := huawei.New(newCache(), read, quiet())
	creds := credentials(emu, nil)
	for _, step := range []struct {
		at    time.Duration
		mints int
	}{{0, 1}, {30 * time.Minute, 1}, {54 * time.Minute, 1}, {56 * time.Minute, 2}} {
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
// auth (retried and alarmed by dispatch), never a panic or a drop.
func TestUnusableCredentials(t *testing.T) {
	emu := startEmulator(t, huaweiemu.Options{})
	s := huawei.New(newCache(), func() time.Time { return now }, quiet())
	for _, tc := range []struct {
		name  string
		creds []byte
		want  push.SendResult
	}{
		{"wrong secret", credentials(emu, map[string]any{"appSecret": "wrong"}), push.SendResult{Class: push.SendAuth, Code: "auth_1101"}},
		{"not JSON", []byte("{"), push.SendResult{Class: push.SendAuth, Code: "credentials"}},
		{"no app id", credentials(emu, map[string]any{"appId": ""}), push.SendResult{Class: push.SendAuth, Code: "credentials"}},
		{"unknown category", credentials(emu, map[string]any{"category": "CHAT"}), push.SendResult{Class: push.SendAuth, Code: "credentials"}},
		{"local endpoint outside the local stack", credentials(emu, map[string]any{"endpoint": "local"}), push.SendResult{Class: push.SendAuth, Code: "credentials"}},
		{"plain http to a remote host", credentials(emu, map[string]any{"endpoint": "http://push.example.com"}), push.SendResult{Class: push.SendAuth, Code: "credentials"}},
		{"other vendor", credentials(emu, map[string]any{"vendor": "honor"}), push.SendResult{Class: push.SendAuth, Code: "credentials"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := job(message(), tc.creds, time.Hour, targets(2, 0)...)
			j.CredentialsKey = tc.name
			rs := s.Send(context.Background(), j)
			if diff := cmp.Diff([]push.SendResult{tc.want, tc.want}, rs); diff != "" {
				t.Errorf("results (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFitsMessageLimit sends a body far over Huawei's 4096 bytes: it is cut
// on a character boundary with an ellipsis and accepted; a payload that
// cannot fit whatever the text is a bad message and never sent.
func TestFitsMessageLimit(t *testing.T) {
	emu := startEmulator(t, huaweiemu.Options{})
	s := huawei.New(newCache(), func() time.Time { return now }, quiet())
	creds := credentials(emu, nil)
	env := message()
	long := strings.Repeat("吃饭吗😀", 400) // 2400 runes, 8800 bytes
	env.Texts = []push.EnvelopeText{{Title: "Team", Body: long}}
	rs := s.Send(context.Background(), job(env, creds, time.Hour, targets(1, 0)...))
	if rs[0].Class != push.SendOK {
		t.Fatalf("long body: %+v", rs[0])
	}
	p := emu.Received()[0]
	body := p.Request.Message.Android.Notification.Body
	if !utf8.ValidString(body) || !strings.HasSuffix(body, "…") || !strings.HasPrefix(long, strings.TrimSuffix(body, "…")) {
		t.Errorf("body is not a clean prefix of the text plus an ellipsis: %q…", body[:40])
	}

	emu.Reset()
	env = message()
	env.Payload = map[string]string{"blob": strings.Repeat("x", 4200)}
	rs = s.Send(context.Background(), job(env, creds, time.Hour, targets(2, 0)...))
	want := push.SendResult{Class: push.SendBadMessage, Code: "too_large"}
	if diff := cmp.Diff([]push.SendResult{want, want}, rs); diff != "" {
		t.Errorf("oversize payload (-want +got):\n%s", diff)
	}
	if n := emu.Requests(); n != 0 {
		t.Errorf("emulator got %d requests for an oversize payload, want 0", n)
	}
}

var update = flag.Bool("update", os.Getenv("UPDATE_GOLDEN") == "1", "rewrite testdata/*.golden")

// TestGolden pins the request body of each kind, as the emulator received
// it. Rewrite with UPDATE_GOLDEN=1.
func TestGolden(t *testing.T) {
	emu := startEmulator(t, huaweiemu.Options{})
	s := huawei.New(newCache(), func() time.Time { return now }, quiet())
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
