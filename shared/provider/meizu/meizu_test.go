package meizu_test

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

	meizuemu "github.com/offline-push/offline-push/shared/emulator/meizu"
	"github.com/offline-push/offline-push/shared/provider/meizu"
	"github.com/offline-push/offline-push/shared/push"
)

// The app the tests push for.
const (
	appID  = "110000"
	secret = "0123456789abcdef0123456789abcdef"
)

// clock is the senders' fixed clock: 10:00 UTC is 18:00 in China, six
// hours before Meizu's daily reset.
var clock = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

func now() time.Time { return clock }

var update = flag.Bool("update", os.Getenv("UPDATE_GOLDEN") == "1", "rewrite testdata/*.golden")

type fixture struct {
	emu    *meizuemu.Server
	sender *meizu.Sender
	creds  []byte
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	emu := meizuemu.New(meizuemu.Options{Now: now})
	t.Cleanup(emu.Close)
	emu.AddApp(meizuemu.App{ID: appID, Secret: secret})
	return &fixture{emu: emu, sender: meizu.New(now, slog.New(slog.DiscardHandler)), creds: credentials(emu.URL, nil)}
}

func credentials(endpoint string, extra map[string]any) []byte {
	c := map[string]any{"vendor": "meizu", "appId": appID, "appSecret": secret, "endpoint": endpoint}
	for k, v := range extra {
		c[k] = v
	}
	b, err := json.Marshal(c)
	if err != nil {
		panic(err)
	}
	return b
}

// token returns a pushId-shaped token, distinct per n.
func token(n int) string { return fmt.Sprintf("ULY6c%03d5d62050c7e5d7e787d040b6b6f00647b6c7f", n) }

func target(user string, n int) push.Target {
	return push.Target{UserID: user, DeviceID: fmt.Sprint("d", n), Token: token(n), Platform: push.PlatformAndroid}
}

func message(targets ...push.Target) *push.Envelope {
	id, _ := push.CollapseFor(push.Meizu, push.MessageCollapseKey("m-1"))
	return &push.Envelope{
		Version: push.EnvelopeVersion, App: "demo", Vendor: push.Meizu, CertName: "android",
		MessageID: "m-1", Kind: push.KindMessage, SenderID: "alice",
		ConversationType: push.ConversationType("group"), ConversationID: "g-7",
		ExpiresAt: clock.Add(24 * time.Hour).UnixMilli(), CollapseID: id,
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
	e.MessageID, e.Kind, e.CallID, e.Media = "call-9-invite", push.KindCallInvite, "call-9", push.MediaAudio
	e.ConversationType, e.ConversationID = push.ConversationType("peer"), ""
	e.ExpiresAt = clock.Add(45 * time.Second).UnixMilli()
	e.Priority = push.PriorityHigh
	e.CollapseID = ""
	e.Texts = []push.EnvelopeText{{Title: "Alice", Body: "Incoming call"}}
	e.Payload = nil
	for i := range e.Targets {
		e.Targets[i].CollapseID, _ = push.CollapseFor(push.Meizu, push.CallCollapseKey(e.Targets[i].UserID))
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

func TestSendMessage(t *testing.T) {
	f := newFixture(t)
	env := message(target("bob", 1), target("carol", 2), push.Target{UserID: "dan", DeviceID: "d3", Token: token(3), Text: 1})
	if diff := cmp.Diff(ok(3), f.send(t, env, 23*time.Hour+59*time.Minute)); diff != "" {
		t.Fatalf("results (-want +got):\n%s", diff)
	}
	rec := f.emu.Received()
	if len(rec) != 2 {
		t.Fatalf("emulator received %d requests, want 2 (one per text)", len(rec))
	}
	sort.Slice(rec, func(i, j int) bool { return len(rec[i].PushIDs) > len(rec[j].PushIDs) })
	key, _ := push.CollapseFor(push.Meizu, push.MessageCollapseKey("m-1"))
	for i, want := range []struct {
		ids     []string
		content string
	}{
		{[]string{token(1), token(2)}, "alice: see you at 8"},
		{[]string{token(3)}, "alice: 晚上八点见"},
	} {
		p := rec[i]
		m := p.Message
		if diff := cmp.Diff(want.ids, p.PushIDs); diff != "" {
			t.Errorf("request %d pushIds (-want +got):\n%s", i, diff)
		}
		got := []any{m.NoticeBarInfo.Title, m.NoticeBarInfo.Content, m.PushTimeInfo.OffLine, m.PushTimeInfo.ValidTime,
			m.AdvanceInfo.NotifyKey, m.AdvanceInfo.Suspend, m.AdvanceInfo.Sound, m.ClickTypeInfo.ClickType}
		wantFields := []any{"Alice", want.content, 1, 23, key, 1, 1, 0}
		if diff := cmp.Diff(wantFields, got); diff != "" {
			t.Errorf("request %d title, content, offLine, validTime, notifyKey, suspend, sound, clickType (-want +got):\n%s", i, diff)
		}
		wantData := map[string]any{
			"deepLink": "chat://g-7", "messageId": "m-1", "kind": "message", "senderId": "alice",
			"conversationType": "group", "conversationId": "g-7",
		}
		if diff := cmp.Diff(wantData, m.ClickTypeInfo.Parameters); diff != "" {
			t.Errorf("request %d parameters (-want +got):\n%s", i, diff)
		}
	}
}

// TestSendCall sends an invite and its cancel. The call has 45 s left, less
// than Meizu's one-hour minimum: the invite goes with validTime 1 and the
// call's expiry in its parameters (POLICY.md rule 25); the cancel replaces
// it (same notifyKey).
func TestSendCall(t *testing.T) {
	f := newFixture(t)
	if diff := cmp.Diff(ok(2), f.send(t, invite(target("bob", 1), target("carol", 2)), 45*time.Second)); diff != "" {
		t.Fatalf("invite results (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(ok(2), f.send(t, cancel(target("bob", 1), target("carol", 2)), 24*time.Hour)); diff != "" {
		t.Fatalf("cancel results (-want +got):\n%s", diff)
	}
	rec := f.emu.Received()
	if len(rec) != 4 {
		t.Fatalf("emulator received %d requests, want 4 (one per callee and kind)", len(rec))
	}
	for _, p := range rec {
		user := "bob"
		if p.PushIDs[0] == token(2) {
			user = "carol"
		}
		wantKey, _ := push.CollapseFor(push.Meizu, push.CallCollapseKey(user))
		m := p.Message
		if m.AdvanceInfo.NotifyKey != wantKey {
			t.Errorf("%s notifyKey = %q, want %q", user, m.AdvanceInfo.NotifyKey, wantKey)
		}
		params := m.ClickTypeInfo.Parameters
		switch params["kind"] {
		case "call_invite":
			want := map[string]any{"messageId": "call-9-invite", "kind": "call_invite", "senderId": "alice",
				"conversationType": "peer", "callId": "call-9", "media": "audio",
				"callExpiresAt": fmt.Sprint(clock.Add(45 * time.Second).UnixMilli())}
			if diff := cmp.Diff(want, params); diff != "" {
				t.Errorf("invite parameters (-want +got):\n%s", diff)
			}
			if m.PushTimeInfo.ValidTime != 1 || m.NoticeBarInfo.Content != "Incoming call" {
				t.Errorf("invite validTime %d content %q, want 1 %q", m.PushTimeInfo.ValidTime, m.NoticeBarInfo.Content, "Incoming call")
			}
		case "call_cancel":
			if m.PushTimeInfo.ValidTime != 24 || m.NoticeBarInfo.Content != "Missed call" {
				t.Errorf("cancel validTime %d content %q, want 24 %q", m.PushTimeInfo.ValidTime, m.NoticeBarInfo.Content, "Missed call")
			}
		default:
			t.Errorf("unexpected kind %v", params["kind"])
		}
	}
}

func TestSplitAtLimit(t *testing.T) {
	f := newFixture(t)
	const n = 2*meizu.MaxTargets + 1
	var targets []push.Target
	for i := range n {
		targets = append(targets, target(fmt.Sprint("u", i), i))
	}
	targets = append(targets, target("u7", 7)) // the same device twice: one delivery
	if diff := cmp.Diff(ok(n+1), f.send(t, message(targets...), time.Hour)); diff != "" {
		t.Fatalf("results (-want +got):\n%s", diff)
	}
	var sizes []int
	for _, p := range f.emu.Received() {
		sizes = append(sizes, len(p.PushIDs))
	}
	sort.Sort(sort.Reverse(sort.IntSlice(sizes)))
	if diff := cmp.Diff([]int{1000, 1000, 1}, sizes); diff != "" {
		t.Errorf("request sizes (-want +got):\n%s", diff)
	}
}

// TestResults drives every answer Meizu gives through the sender and
// checks the class of each target.
func TestResults(t *testing.T) {
	untilReset := 6 * time.Hour // 18:00 in China → midnight
	faults := func(m map[int]meizuemu.Fault) meizuemu.Faults {
		f := meizuemu.Faults{Tokens: map[string]meizuemu.Fault{}}
		for n, x := range m {
			f.Tokens[token(n)] = x
		}
		return f
	}
	tests := []struct {
		name    string
		faults  meizuemu.Faults
		creds   map[string]any
		targets int
		want    []push.SendResult
	}{
		{
			name: "per-pushId codes",
			faults: faults(map[int]meizuemu.Fault{
				1: {Code: meizuemu.CodeUnsubscribed}, 2: {Code: meizuemu.CodeIllegalID}, 3: {Code: meizuemu.CodeOverRate},
				4: {Code: meizuemu.CodeOverloaded}, 5: {Code: meizuemu.CodeFolded}, 6: {Code: meizuemu.CodePushFailed},
				7: {Code: meizuemu.CodeNoPermission}, 8: {Code: "999"},
			}),
			targets: 9,
			want: []push.SendResult{
				{Class: push.SendOK},
				{Class: push.SendInvalidToken, Code: "110002"},
				{Class: push.SendInvalidToken, Code: "110003"},
				{Class: push.SendThrottled, Code: "518"},
				{Class: push.SendThrottled, Code: "519"},
				{Class: push.SendOK, Code: "520"},
				{Class: push.SendTransient, Code: "513"},
				{Class: push.SendAuth, Code: "201"},
				{Class: push.SendTransient, Code: "999"},
			},
		},
		{
			name: "rate too high", faults: meizuemu.Faults{ThrottleShare: 1}, targets: 2,
			want: []push.SendResult{{Class: push.SendThrottled, Code: "110010"}, {Class: push.SendThrottled, Code: "110010"}},
		},
		{
			name: "daily limit", faults: meizuemu.Faults{DailyLimit: true}, targets: 1,
			want: []push.SendResult{{Class: push.SendThrottled, Code: "110019", RetryAfter: untilReset}},
		},
		{
			name: "busy", faults: meizuemu.Faults{BusyShare: 1}, targets: 1,
			want: []push.SendResult{{Class: push.SendTransient, Code: "1003"}},
		},
		{
			name: "unavailable", faults: meizuemu.Faults{UnavailableShare: 1}, targets: 1,
			want: []push.SendResult{{Class: push.SendTransient, Code: "http_503"}},
		},
		{
			name: "gateway throttles", faults: faults(map[int]meizuemu.Fault{0: {Status: http.StatusTooManyRequests}}), targets: 1,
			want: []push.SendResult{{Class: push.SendThrottled, Code: "http_429"}},
		},
		{
			name: "bad parameters", faults: faults(map[int]meizuemu.Fault{0: {Request: meizuemu.CodeBadParams}}), targets: 1,
			want: []push.SendResult{{Class: push.SendBadMessage, Code: "1005"}},
		},
		{
			name: "unknown request code", faults: faults(map[int]meizuemu.Fault{0: {Request: "4242"}}), targets: 1,
			want: []push.SendResult{{Class: push.SendTransient, Code: "4242"}},
		},
		{
			name: "wrong secret fails the signature", creds: map[string]any{"appSecret": "not-the-secret"}, targets: 2,
			want: []push.SendResult{{Class: push.SendAuth, Code: "1006"}, {Class: push.SendAuth, Code: "1006"}},
		},
		{
			name: "unknown app", creds: map[string]any{"appId": 999}, targets: 1,
			want: []push.SendResult{{Class: push.SendAuth, Code: "110000"}},
		},
		{
			name: "numeric app id", creds: map[string]any{"appId": 110000}, targets: 1,
			want: ok(1),
		},
		{
			name: "no secret", creds: map[string]any{"appSecret": ""}, targets: 1,
			want: []push.SendResult{{Class: push.SendAuth, Code: "bad_credentials"}},
		},
		{
			name: "endpoint still local", creds: map[string]any{"endpoint": "local"}, targets: 1,
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
			if diff := cmp.Diff(tc.want, f.send(t, message(targets...), time.Hour)); diff != "" {
				t.Errorf("results (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUnsendableTargets(t *testing.T) {
	f := newFixture(t)
	env := message(target("bob", 1), push.Target{UserID: "eve", DeviceID: "d9", Token: "two,ids"}, push.Target{UserID: "x", DeviceID: "d8", Token: token(8), Text: 9})
	want := []push.SendResult{{Class: push.SendOK}, {Class: push.SendInvalidToken, Code: "malformed_token"}, {Class: push.SendBadMessage, Code: "no_text"}}
	if diff := cmp.Diff(want, f.send(t, env, time.Hour)); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
}

func TestNetworkFailure(t *testing.T) {
	f := newFixture(t)
	f.emu.Close()
	if diff := cmp.Diff([]push.SendResult{{Class: push.SendTransient, Code: "network"}}, f.send(t, message(target("bob", 1)), time.Hour)); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
}

// TestPresentation checks what the sender does to texts, lifetimes and
// collapse keys before Meizu sees them.
func TestPresentation(t *testing.T) {
	long := strings.Repeat("长", 40)
	emoji := strings.Repeat("😀", 60) // 120 UTF-16 units
	tests := []struct {
		name                       string
		edit                       func(*push.Envelope)
		ttl                        time.Duration
		wantTitle, wantContent     string
		wantOffLine, wantValidTime int
		wantKey                    string
	}{
		{
			name: "long texts are cut on a character boundary",
			edit: func(e *push.Envelope) { e.Texts[0] = push.EnvelopeText{Title: long, Body: emoji} },
			ttl:  time.Hour, wantTitle: strings.Repeat("长", 31) + "…", wantContent: strings.Repeat("😀", 49) + "…",
			wantOffLine: 1, wantValidTime: 1,
		},
		{name: "TTL rounds down to hours", ttl: 5*time.Hour + 59*time.Minute, wantOffLine: 1, wantValidTime: 5},
		{name: "TTL capped at 72 hours", ttl: 28 * 24 * time.Hour, wantOffLine: 1, wantValidTime: 72},
		{name: "TTL under an hour gets the minimum", ttl: 10 * time.Second, wantOffLine: 1, wantValidTime: 1},
		{name: "now or never is not kept offline", edit: func(e *push.Envelope) { e.NowOrNever = true }, ttl: 20 * time.Second, wantOffLine: 0},
		{
			name: "collapse id too long for notifyKey is derived again",
			edit: func(e *push.Envelope) { e.CollapseID = "m:a-much-too-long-collapse-id" },
			ttl:  time.Hour, wantOffLine: 1, wantValidTime: 1,
			wantKey: func() string { k, _ := push.CollapseFor(push.Meizu, "m:a-much-too-long-collapse-id"); return k }(),
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
			m := f.emu.Received()[0].Message
			wantTitle, wantContent, wantKey := tc.wantTitle, tc.wantContent, tc.wantKey
			if wantTitle == "" {
				wantTitle, wantContent = "Alice", "alice: see you at 8"
			}
			if wantKey == "" {
				wantKey = env.CollapseID
			}
			got := []any{m.NoticeBarInfo.Title, m.NoticeBarInfo.Content, m.PushTimeInfo.OffLine, m.PushTimeInfo.ValidTime, m.AdvanceInfo.NotifyKey}
			want := []any{wantTitle, wantContent, tc.wantOffLine, tc.wantValidTime, wantKey}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("title, content, offLine, validTime, notifyKey (-want +got):\n%s", diff)
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
			fmt.Fprintf(&b, "POST /garcia/api/server/push/varnished/pushByPushId\n")
			for _, k := range []string{"appId", "messageJson", "pushIds", "sign"} {
				fmt.Fprintf(&b, "%s=%s\n", k, rec[0].Form.Get(k))
			}
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
