package xiaomi_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	xiaomiemu "github.com/offline-push/offline-push/shared/emulator/xiaomi"
	"github.com/offline-push/offline-push/shared/provider/xiaomi"
	"github.com/offline-push/offline-push/shared/push"
)

// The app the tests push for.
const (
	secret      = "test-app-secret-0123456789=="
	packageName = "com.example.chat"
	chatChannel = "im_chat"
	callChannel = "im_call"
)

// clock is the senders' fixed clock: 10:00 UTC is 18:00 in China, six
// hours before Xiaomi's daily reset.
var clock = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

func now() time.Time { return clock }

var update = flag.Bool("update", os.Getenv("UPDATE_GOLDEN") == "1", "rewrite testdata/*.golden")

// fixture is an emulator with the test app and a Sender pointed at it.
type fixture struct {
	emu    *xiaomiemu.Server
	sender *xiaomi.Sender
	creds  []byte
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	emu := xiaomiemu.New(xiaomiemu.Options{Now: now})
	t.Cleanup(emu.Close)
	emu.AddApp(xiaomiemu.App{Secret: secret, Packages: []string{packageName}, Channels: []string{chatChannel, callChannel, "im_loud"}})
	return &fixture{emu: emu, sender: xiaomi.New(now, slog.New(slog.DiscardHandler)), creds: credentials(emu.URL, nil)}
}

func credentials(endpoint string, extra map[string]any) []byte {
	c := map[string]any{
		"vendor": "xiaomi", "appSecret": secret, "packageName": packageName,
		"channelId": chatChannel, "callChannelId": callChannel, "endpoint": endpoint,
		"resources": map[string]any{"loud": map[string]any{"channelId": "im_loud", "sound": "ring"}},
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

// token returns a regId-shaped token, distinct per n.
func token(n int) string { return fmt.Sprintf("regid%03d/AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+=", n) }

func message(targets ...push.Target) *push.Envelope {
	id, n := push.CollapseFor(push.Xiaomi, push.MessageCollapseKey("m-1"))
	return &push.Envelope{
		Version: push.EnvelopeVersion, App: "demo", Vendor: push.Xiaomi, CertName: "android",
		MessageID: "m-1", Kind: push.KindMessage, SenderID: "alice",
		ConversationType: push.ConversationType("group"), ConversationID: "g-7",
		ExpiresAt: clock.Add(24 * time.Hour).UnixMilli(), CollapseID: id, NotifyID: n,
		Priority: push.PriorityNormal,
		Texts: []push.EnvelopeText{
			{Title: "Alice", Body: "alice: see you at 8"},
			{Title: "Alice", Body: "alice: 晚上八点见", Lang: "zh"},
		},
		Payload: map[string]string{"deepLink": "chat://g-7"},
		Badge:   true,
		Targets: targets,
	}
}

func invite(targets ...push.Target) *push.Envelope {
	e := message(targets...)
	e.MessageID, e.Kind, e.CallID, e.Media = "call-9-invite", push.KindCallInvite, "call-9", push.MediaVideo
	e.ConversationType, e.ConversationID = push.ConversationType("peer"), ""
	e.ExpiresAt = clock.Add(45 * time.Second).UnixMilli()
	e.Priority = push.PriorityHigh
	e.CollapseID, e.NotifyID = "", 0
	e.Texts = []push.EnvelopeText{{Title: "Alice", Body: "Incoming video call"}}
	e.Payload = nil
	for i := range e.Targets {
		e.Targets[i].CollapseID, e.Targets[i].NotifyID = push.CollapseFor(push.Xiaomi, push.CallCollapseKey(e.Targets[i].UserID))
	}
	return e
}

func cancel(targets ...push.Target) *push.Envelope {
	e := invite(targets...)
	e.MessageID, e.Kind = "call-9-cancel", push.KindCallCancel
	e.ExpiresAt = clock.Add(24 * time.Hour).UnixMilli()
	e.Texts = []push.EnvelopeText{{Title: "Alice", Body: "Missed call"}}
	return e
}

func target(user string, n int) push.Target {
	return push.Target{UserID: user, DeviceID: "d" + fmt.Sprint(n), Token: token(n), Platform: push.PlatformAndroid}
}

func (f *fixture) send(t testing.TB, env *push.Envelope, ttl time.Duration) []push.SendResult {
	t.Helper()
	job := &push.SendJob{Envelope: env, Targets: env.Targets, Credentials: f.creds, CredentialsKey: "demo/android#1", TTL: ttl}
	got := f.sender.Send(context.Background(), job)
	if len(got) != len(env.Targets) {
		t.Fatalf("Send returned %d results for %d targets", len(got), len(env.Targets))
	}
	return got
}

func ok(n int) []push.SendResult {
	out := make([]push.SendResult, n)
	for i := range out {
		out[i] = push.SendResult{Class: push.SendOK}
	}
	return out
}

func decodePayload(t testing.TB, p xiaomiemu.Push) map[string]string {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal([]byte(p.Payload), &m); err != nil {
		t.Fatalf("payload %q is not a JSON object of strings: %v", p.Payload, err)
	}
	return m
}

func TestSendMessage(t *testing.T) {
	f := newFixture(t)
	env := message(target("bob", 1), target("carol", 2), push.Target{UserID: "dan", DeviceID: "d3", Token: token(3), Text: 1})
	got := f.send(t, env, 23*time.Hour)
	if diff := cmp.Diff(ok(3), got); diff != "" {
		t.Fatalf("results (-want +got):\n%s", diff)
	}
	rec := f.emu.Received()
	if len(rec) != 2 {
		t.Fatalf("emulator received %d requests, want 2 (one per text)", len(rec))
	}
	sort.Slice(rec, func(i, j int) bool { return len(rec[i].RegIDs) > len(rec[j].RegIDs) })
	_, wantNotify := push.CollapseFor(push.Xiaomi, push.MessageCollapseKey("m-1"))
	for i, want := range []struct {
		regIDs []string
		body   string
	}{
		{[]string{token(1), token(2)}, "alice: see you at 8"},
		{[]string{token(3)}, "alice: 晚上八点见"},
	} {
		p := rec[i]
		if diff := cmp.Diff(want.regIDs, p.RegIDs); diff != "" {
			t.Errorf("request %d regIds (-want +got):\n%s", i, diff)
		}
		checks := []struct {
			name      string
			got, want any
		}{
			{"title", p.Title, "Alice"},
			{"description", p.Description, want.body},
			{"package", p.PackageName, packageName},
			{"channel", p.ChannelID, chatChannel},
			{"notify_id", p.NotifyID, int64(wantNotify)},
			{"time_to_live", p.TimeToLive, 23 * time.Hour},
			{"notify_type", p.NotifyType, -1},
			{"pass_through", p.PassThrough, 0},
			{"notify_effect", p.Extra["notify_effect"], "1"},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("request %d %s = %v, want %v", i, c.name, c.got, c.want)
			}
		}
		wantData := map[string]string{
			"deepLink": "chat://g-7", "messageId": "m-1", "kind": "message", "senderId": "alice",
			"conversationType": "group", "conversationId": "g-7",
		}
		if diff := cmp.Diff(wantData, decodePayload(t, p)); diff != "" {
			t.Errorf("request %d payload (-want +got):\n%s", i, diff)
		}
	}
}

// TestSendCall sends an invite and its cancel: the invite goes in the call
// channel with the call's time left as TTL and its expiry in the payload;
// the cancel replaces it (same notify id) in the chat channel.
func TestSendCall(t *testing.T) {
	f := newFixture(t)
	inv := invite(target("bob", 1), target("bob", 2), target("carol", 3))
	if diff := cmp.Diff(ok(3), f.send(t, inv, 45*time.Second)); diff != "" {
		t.Fatalf("invite results (-want +got):\n%s", diff)
	}
	can := cancel(target("bob", 1), target("bob", 2), target("carol", 3))
	if diff := cmp.Diff(ok(3), f.send(t, can, 24*time.Hour)); diff != "" {
		t.Fatalf("cancel results (-want +got):\n%s", diff)
	}
	rec := f.emu.Received()
	if len(rec) != 4 {
		t.Fatalf("emulator received %d requests, want 4 (one per callee and kind)", len(rec))
	}
	byUser := func(p xiaomiemu.Push) string {
		if p.RegIDs[0] == token(3) {
			return "carol"
		}
		return "bob"
	}
	for _, p := range rec {
		data := decodePayload(t, p)
		_, want := push.CollapseFor(push.Xiaomi, push.CallCollapseKey(byUser(p)))
		if p.NotifyID != int64(want) {
			t.Errorf("%s %s notify_id = %d, want %d (the callee's call collapse id)", data["kind"], byUser(p), p.NotifyID, want)
		}
		switch data["kind"] {
		case "call_invite":
			if p.ChannelID != callChannel || p.TimeToLive != 45*time.Second || p.Description != "Incoming video call" {
				t.Errorf("invite: channel %q ttl %v description %q, want %q 45s %q", p.ChannelID, p.TimeToLive, p.Description, callChannel, "Incoming video call")
			}
			want := map[string]string{"messageId": "call-9-invite", "kind": "call_invite", "senderId": "alice",
				"conversationType": "peer", "callId": "call-9", "media": "video",
				"callExpiresAt": fmt.Sprint(clock.Add(45 * time.Second).UnixMilli())}
			if diff := cmp.Diff(want, data); diff != "" {
				t.Errorf("invite payload (-want +got):\n%s", diff)
			}
		case "call_cancel":
			if p.ChannelID != chatChannel || p.Description != "Missed call" {
				t.Errorf("cancel: channel %q description %q, want %q %q", p.ChannelID, p.Description, chatChannel, "Missed call")
			}
			if _, ok := data["callExpiresAt"]; ok {
				t.Errorf("cancel payload carries callExpiresAt")
			}
		default:
			t.Errorf("unexpected kind %q", data["kind"])
		}
	}
}

func TestSplitAtLimit(t *testing.T) {
	f := newFixture(t)
	const n = 2*xiaomi.MaxTargets + 500
	var targets []push.Target
	for i := range n {
		targets = append(targets, target(fmt.Sprint("u", i), i))
	}
	// The same device twice in one job: one delivery, both targets told.
	targets = append(targets, target("u0", 0))
	env := message(targets...)
	got := f.send(t, env, time.Hour)
	if diff := cmp.Diff(ok(n+1), got); diff != "" {
		t.Fatalf("results (-want +got):\n%s", diff)
	}
	var sizes []int
	for _, p := range f.emu.Received() {
		sizes = append(sizes, len(p.RegIDs))
	}
	sort.Sort(sort.Reverse(sort.IntSlice(sizes)))
	if diff := cmp.Diff([]int{1000, 1000, 500}, sizes); diff != "" {
		t.Errorf("request sizes (-want +got):\n%s", diff)
	}
}

// TestResults drives every answer Xiaomi gives through the sender and
// checks the class of each target.
func TestResults(t *testing.T) {
	untilReset := 6 * time.Hour // 18:00 in China → midnight
	invalid := push.SendResult{Class: push.SendInvalidToken, Code: "bad_regids"}
	tests := []struct {
		name    string
		faults  xiaomiemu.Faults
		targets int
		creds   map[string]any
		want    []push.SendResult
		// requests is how many requests the emulator must have answered.
		requests int
	}{
		{
			name:    "bad regId in a batch",
			faults:  xiaomiemu.Faults{Tokens: map[string]xiaomiemu.Fault{token(1): {Invalid: true}}},
			targets: 3, requests: 1,
			want: []push.SendResult{{Class: push.SendOK}, invalid, {Class: push.SendOK}},
		},
		{
			name:    "single regId invalid",
			faults:  xiaomiemu.Faults{Tokens: map[string]xiaomiemu.Fault{token(0): {Invalid: true}}},
			targets: 1, requests: 1,
			want: []push.SendResult{{Class: push.SendInvalidToken, Code: "20301"}},
		},
		{
			name: "whole batch invalid is retried one by one",
			faults: xiaomiemu.Faults{Tokens: map[string]xiaomiemu.Fault{
				token(0): {Invalid: true}, token(1): {Invalid: true}}},
			targets: 2, requests: 3,
			want: []push.SendResult{{Class: push.SendInvalidToken, Code: "20301"}, {Class: push.SendInvalidToken, Code: "20301"}},
		},
		{
			name:    "20301 for a batch of live regIds unbinds none",
			faults:  xiaomiemu.Faults{Tokens: map[string]xiaomiemu.Fault{token(0): {Code: xiaomiemu.CodeSendFailed, Times: 1}}},
			targets: 2, requests: 3,
			want: ok(2),
		},
		{
			name:    "daily limit",
			faults:  xiaomiemu.Faults{DailyLimit: xiaomiemu.CodeDailyLimit},
			targets: 2, requests: 1,
			want: []push.SendResult{{Class: push.SendThrottled, Code: "10034", RetryAfter: untilReset}, {Class: push.SendThrottled, Code: "10034", RetryAfter: untilReset}},
		},
		{
			name:    "daily limit, production code",
			faults:  xiaomiemu.Faults{DailyLimit: xiaomiemu.CodeDailyLimitOld},
			targets: 1, requests: 1,
			want: []push.SendResult{{Class: push.SendThrottled, Code: "200001", RetryAfter: untilReset}},
		},
		{
			name:    "too frequent",
			faults:  xiaomiemu.Faults{ThrottleShare: 1},
			targets: 1, requests: 1,
			want: []push.SendResult{{Class: push.SendThrottled, Code: "10027"}},
		},
		{
			name:    "busy",
			faults:  xiaomiemu.Faults{BusyShare: 1},
			targets: 1, requests: 1,
			want: []push.SendResult{{Class: push.SendTransient, Code: "10002"}},
		},
		{
			name:    "unavailable",
			faults:  xiaomiemu.Faults{UnavailableShare: 1},
			targets: 1, requests: 1,
			want: []push.SendResult{{Class: push.SendTransient, Code: "http_503"}},
		},
		{
			name:    "gateway throttles",
			faults:  xiaomiemu.Faults{Tokens: map[string]xiaomiemu.Fault{token(0): {Status: http.StatusTooManyRequests}}},
			targets: 1, requests: 1,
			want: []push.SendResult{{Class: push.SendThrottled, Code: "http_429"}},
		},
		{
			name:    "unknown code is transient",
			faults:  xiaomiemu.Faults{Tokens: map[string]xiaomiemu.Fault{token(0): {Code: 12345}}},
			targets: 1, requests: 1,
			want: []push.SendResult{{Class: push.SendTransient, Code: "12345"}},
		},
		{
			name:    "content too long",
			faults:  xiaomiemu.Faults{Tokens: map[string]xiaomiemu.Fault{token(0): {Code: xiaomiemu.CodeTooLong}}},
			targets: 1, requests: 1,
			want: []push.SendResult{{Class: push.SendBadMessage, Code: "65009"}},
		},
		{
			name:    "wrong secret",
			creds:   map[string]any{"appSecret": "not-the-secret"},
			targets: 2, requests: 0,
			want: []push.SendResult{{Class: push.SendAuth, Code: "21301"}, {Class: push.SendAuth, Code: "21301"}},
		},
		{
			name:    "wrong package",
			creds:   map[string]any{"packageName": "com.example.other"},
			targets: 1, requests: 1,
			want: []push.SendResult{{Class: push.SendAuth, Code: "22022"}},
		},
		{
			name:    "channel not approved",
			creds:   map[string]any{"channelId": "marketing"},
			targets: 1, requests: 1,
			want: []push.SendResult{{Class: push.SendBadMessage, Code: "27001"}},
		},
		{
			name:    "credentials without channel",
			creds:   map[string]any{"channelId": ""},
			targets: 1, requests: 0,
			want: []push.SendResult{{Class: push.SendAuth, Code: "bad_credentials"}},
		},
		{
			name:    "endpoint still local",
			creds:   map[string]any{"endpoint": "local"},
			targets: 1, requests: 0,
			want: []push.SendResult{{Class: push.SendAuth, Code: "bad_credentials"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.emu.SetFaults(tc.faults)
			if tc.creds != nil {
				f.creds = credentials(f.emu.URL, tc.creds)
			}
			var targets []push.Target
			for i := range tc.targets {
				targets = append(targets, target(fmt.Sprint("u", i), i))
			}
			got := f.send(t, message(targets...), time.Hour)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("results (-want +got):\n%s", diff)
			}
			if n := len(f.emu.Answers()); n != tc.requests {
				t.Errorf("emulator answered %d authenticated requests, want %d", n, tc.requests)
			}
		})
	}
}

func TestUnsendableTargets(t *testing.T) {
	f := newFixture(t)
	env := message(target("bob", 1), push.Target{UserID: "eve", DeviceID: "d9", Token: "two,tokens"}, push.Target{UserID: "x", DeviceID: "d8", Token: token(8), Text: 5})
	got := f.send(t, env, time.Hour)
	want := []push.SendResult{{Class: push.SendOK}, {Class: push.SendInvalidToken, Code: "malformed_token"}, {Class: push.SendBadMessage, Code: "no_text"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
}

func TestNetworkFailure(t *testing.T) {
	f := newFixture(t)
	f.emu.Close()
	got := f.send(t, message(target("bob", 1)), time.Hour)
	if diff := cmp.Diff([]push.SendResult{{Class: push.SendTransient, Code: "network"}}, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
}

// TestPresentation checks what the sender does to texts, TTLs and sounds
// before Xiaomi sees them.
func TestPresentation(t *testing.T) {
	long := strings.Repeat("很长的标题", 12) // 60 characters
	emoji := strings.Repeat("😀", 70)    // 140 UTF-16 units
	tests := []struct {
		name        string
		edit        func(*push.Envelope)
		ttl         time.Duration
		wantTitle   string
		wantBody    string
		wantTTL     time.Duration
		wantChannel string
		wantSound   string
		wantType    int
	}{
		{
			name:      "long texts are cut on a character boundary",
			edit:      func(e *push.Envelope) { e.Texts[0] = push.EnvelopeText{Title: long, Body: emoji} },
			ttl:       time.Hour,
			wantTitle: string([]rune(long)[:48]) + "…", wantBody: strings.Repeat("😀", 63) + "…",
			wantTTL: time.Hour, wantChannel: chatChannel, wantType: -1,
		},
		{
			name:      "TTL capped at two weeks",
			ttl:       28 * 24 * time.Hour,
			wantTitle: "Alice", wantBody: "alice: see you at 8",
			wantTTL: 14 * 24 * time.Hour, wantChannel: chatChannel, wantType: -1,
		},
		{
			name:      "now or never keeps only the grace",
			edit:      func(e *push.Envelope) { e.NowOrNever = true },
			ttl:       time.Hour,
			wantTitle: "Alice", wantBody: "alice: see you at 8",
			wantTTL: push.NowOrNeverGrace, wantChannel: chatChannel, wantType: -1,
		},
		{
			name:      "resource picks channel and sound",
			edit:      func(e *push.Envelope) { e.ResourceID = "loud" },
			ttl:       time.Hour,
			wantTitle: "Alice", wantBody: "alice: see you at 8",
			wantTTL: time.Hour, wantChannel: "im_loud", wantSound: "android.resource://" + packageName + "/raw/ring", wantType: 6,
		},
		{
			name:      "envelope sound",
			edit:      func(e *push.Envelope) { e.Sound = "ding" },
			ttl:       time.Hour,
			wantTitle: "Alice", wantBody: "alice: see you at 8",
			wantTTL: time.Hour, wantChannel: chatChannel, wantSound: "android.resource://" + packageName + "/raw/ding", wantType: 6,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			env := message(target("bob", 1))
			if tc.edit != nil {
				tc.edit(env)
			}
			if diff := cmp.Diff(ok(1), f.send(t, env, tc.ttl)); diff != "" {
				t.Fatalf("results (-want +got):\n%s", diff)
			}
			p := f.emu.Received()[0]
			got := []any{p.Title, p.Description, p.TimeToLive, p.ChannelID, p.Extra["sound_uri"], p.NotifyType}
			want := []any{tc.wantTitle, tc.wantBody, tc.wantTTL, tc.wantChannel, tc.wantSound, tc.wantType}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("title, description, ttl, channel, sound, notify_type (-want +got):\n%s", diff)
			}
		})
	}
}

// TestGolden pins the request body of each kind of push.
func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  *push.Envelope
		ttl  time.Duration
	}{
		{"message", message(target("bob", 1), target("carol", 2)), 24 * time.Hour},
		{"call-invite", invite(target("bob", 1)), 45 * time.Second},
		{"call-cancel", cancel(target("bob", 1)), 24 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.send(t, tc.env, tc.ttl)
			rec := f.emu.Received()
			if len(rec) != 1 {
				t.Fatalf("emulator received %d requests, want 1", len(rec))
			}
			var b strings.Builder
			fmt.Fprintf(&b, "POST %s\n", rec[0].Path)
			keys := make([]string, 0, len(rec[0].Form))
			for k := range rec[0].Form {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(&b, "%s=%s\n", k, rec[0].Form.Get(k))
			}
			fmt.Fprintf(&b, "# payload as the app receives it\n%s\n", rec[0].Payload)
			golden(t, filepath.Join("testdata", tc.name+".golden"), b.String())
		})
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with UPDATE_GOLDEN=1 to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

// BenchmarkSend measures targets delivered per CPU-second of this process,
// emulator included, in jobs of 100 targets over one text.
func BenchmarkSend(b *testing.B) {
	f := newFixture(b)
	var targets []push.Target
	for i := range 100 {
		targets = append(targets, target(fmt.Sprint("u", i), i))
	}
	env := message(targets...)
	job := &push.SendJob{Envelope: env, Targets: env.Targets, Credentials: f.creds, CredentialsKey: "demo/android#1", TTL: time.Hour}
	start := cpuTime(b)
	sent := 0
	for b.Loop() {
		for _, r := range f.sender.Send(context.Background(), job) {
			if r.Class != push.SendOK {
				b.Fatalf("result %+v", r)
			}
		}
		sent += len(targets)
		f.emu.Reset()
	}
	if cpu := (cpuTime(b) - start).Seconds(); cpu > 0 {
		b.ReportMetric(float64(sent)/cpu, "sends/cpu-s")
	}
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
