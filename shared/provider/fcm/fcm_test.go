package fcm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	fcmemu "github.com/offline-push/offline-push/shared/emulator/fcm"
	"github.com/offline-push/offline-push/shared/provider/fcm"
	"github.com/offline-push/offline-push/shared/push"
)

// now is the clock of every Sender under test, so APNs expirations in the
// golden files stay put.
var now = time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)

func clock() time.Time { return now }

func discard() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }

// keys makes every test's CredentialsKey unique: the Sender caches clients
// per key for the whole process.
var keys atomic.Int64

// app is an emulator with one registered FCM app and its vendor secret.
type app struct {
	srv   *fcmemu.Server
	sa    *fcmemu.ServiceAccount
	creds []byte
	key   string
}

func newApp(t testing.TB) *app {
	t.Helper()
	srv := fcmemu.New(fcmemu.Options{})
	t.Cleanup(srv.Close)
	sa, err := fcmemu.NewServiceAccount("demo-push", srv.TokenURI())
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.AddServiceAccountJSON(sa.JSON()); err != nil {
		t.Fatal(err)
	}
	return &app{srv: srv, sa: sa, creds: secret(t, sa, srv.Endpoint(), nil), key: newKey()}
}

func newKey() string { return fmt.Sprintf("fcm-test-%d", keys.Add(1)) }

// secret is the vendor secret of sa; extra members replace or add to it
// (a nil value removes one).
func secret(t testing.TB, sa *fcmemu.ServiceAccount, endpoint string, extra map[string]any) []byte {
	t.Helper()
	m := map[string]any{
		"vendor":         "fcm",
		"serviceAccount": json.RawMessage(sa.JSON()),
		"endpoint":       endpoint,
		"channelId":      "im_messages",
		"callChannelId":  "calls",
		"resources": map[string]any{
			"chat": map[string]string{"channelId": "chat", "sound": "ding.mp3", "icon": "ic_chat", "color": "#3366FF"},
		},
	}
	for k, v := range extra {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (a *app) job(env *push.Envelope) *push.SendJob {
	return &push.SendJob{
		Envelope:       env,
		Targets:        env.Targets,
		Credentials:    a.creds,
		CredentialsKey: a.key,
		TTL:            time.Hour,
		Badges:         map[string]int{"bob": 7},
	}
}

// message is a group chat message to the given targets.
func message(targets ...push.Target) *push.Envelope {
	return &push.Envelope{
		Version:          push.EnvelopeVersion,
		App:              "demo",
		Vendor:           push.FCM,
		CertName:         "android-fcm",
		MessageID:        "m-1001",
		Kind:             push.KindMessage,
		SenderID:         "alice",
		ConversationType: push.Group,
		ConversationID:   "g1",
		ExpiresAt:        now.Add(time.Hour).UnixMilli(),
		CollapseID:       push.MessageCollapseKey("m-1001"),
		Priority:         push.PriorityNormal,
		Texts:            []push.EnvelopeText{{Title: "Team", Body: "Alice: lunch?"}, {Title: "团队", Body: "Alice: 吃饭吗?", Lang: "zh"}},
		Payload:          map[string]string{"k": "v"},
		Badge:            true,
		ResourceID:       "chat",
		Targets:          targets,
	}
}

// call is a call push of kind to the given targets.
func call(kind push.MessageKind, targets ...push.Target) *push.Envelope {
	body := "Alice is calling"
	if kind == push.KindCallCancel {
		body = "Missed call"
	}
	return &push.Envelope{
		Version:          push.EnvelopeVersion,
		App:              "demo",
		Vendor:           push.FCM,
		CertName:         "android-fcm",
		MessageID:        "m-call-9-" + string(kind),
		Kind:             kind,
		SenderID:         "alice",
		ConversationType: push.Peer,
		CallID:           "c-9",
		Media:            push.MediaVideo,
		ExpiresAt:        now.Add(30 * time.Second).UnixMilli(),
		CollapseID:       push.CallCollapseKey("bob"),
		Priority:         push.PriorityHigh,
		Texts:            []push.EnvelopeText{{Title: "Alice", Body: body}},
		Badge:            kind == push.KindCallInvite,
		Targets:          targets,
	}
}

func android(user, token string) push.Target {
	return push.Target{UserID: user, DeviceID: "phone-" + user, Token: token, Platform: push.PlatformAndroid}
}

func ios(user, token string) push.Target {
	return push.Target{UserID: user, DeviceID: "iphone-" + user, Token: token, Platform: push.PlatformIOS}
}

func ok(n int) []push.SendResult {
	r := make([]push.SendResult, n)
	for i := range r {
		r[i] = push.SendResult{Class: push.SendOK}
	}
	return r
}

// TestGolden checks the FCM v1 request the emulator receives for each kind
// of push against testdata/*.golden; UPDATE_GOLDEN=1 rewrites them.
func TestGolden(t *testing.T) {
	tests := []struct {
		name string
		env  *push.Envelope
		ttl  time.Duration
	}{
		{"message", message(android("bob", "tok-android-bob")), time.Hour},
		{"peer-message", func() *push.Envelope {
			e := message(android("bob", "tok-android-bob"))
			e.ConversationType, e.ConversationID, e.Priority = push.Peer, "", push.PriorityHigh
			return e
		}(), time.Hour},
		{"message-now-or-never", func() *push.Envelope {
			e := message(android("bob", "tok-android-bob"))
			e.NowOrNever, e.ResourceID, e.Badge, e.Payload = true, "", false, nil
			return e
		}(), 25 * time.Second},
		{"call-invite", call(push.KindCallInvite, android("bob", "tok-android-bob")), 29*time.Second + 400*time.Millisecond},
		{"call-cancel", call(push.KindCallCancel, android("bob", "tok-android-bob")), time.Hour},
		{"ios-message", message(ios("bob", "tok-ios-bob")), time.Hour},
		{"ios-call-invite", call(push.KindCallInvite, ios("bob", "tok-ios-bob")), 30 * time.Second},
	}
	a := newApp(t)
	s := fcm.New(clock, discard())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a.srv.Reset()
			job := a.job(tt.env)
			job.TTL = tt.ttl
			if diff := cmp.Diff(ok(1), s.Send(context.Background(), job)); diff != "" {
				t.Fatalf("results (-want +got):\n%s", diff)
			}
			rec := a.srv.Received()
			if len(rec) != 1 {
				t.Fatalf("emulator received %d messages, want 1", len(rec))
			}
			var got bytes.Buffer
			if err := json.Indent(&got, rec[0].Body, "", "  "); err != nil {
				t.Fatal(err)
			}
			got.WriteByte('\n')
			golden(t, filepath.Join("testdata", tt.name+".golden"), got.Bytes())
		})
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if os.Getenv("UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with UPDATE_GOLDEN=1 to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

// TestGroupMessage sends one envelope to more targets than one SendEach
// call takes: every target gets exactly one message, results stay in
// order, and one access token serves them all.
func TestGroupMessage(t *testing.T) {
	a := newApp(t)
	const n = 1203
	targets := make([]push.Target, n)
	for i := range targets {
		targets[i] = android(fmt.Sprintf("u%04d", i), fmt.Sprintf("tok-%06d", i))
		targets[i].Text = i % 2
	}
	got := fcm.New(clock, discard()).Send(context.Background(), a.job(message(targets...)))
	if diff := cmp.Diff(ok(n), got); diff != "" {
		t.Fatalf("results (-want +got):\n%s", diff)
	}
	seen := map[string]int{}
	for _, r := range a.srv.Received() {
		seen[r.Token]++
		var m struct {
			Message struct {
				Android struct {
					Notification struct{ Title string } `json:"notification"`
				} `json:"android"`
			} `json:"message"`
		}
		if err := json.Unmarshal(r.Body, &m); err != nil {
			t.Fatal(err)
		}
		var i int
		fmt.Sscanf(r.Token, "tok-%d", &i)
		if want := []string{"Team", "团队"}[i%2]; m.Message.Android.Notification.Title != want {
			t.Errorf("%s got title %q, want %q", r.Token, m.Message.Android.Notification.Title, want)
		}
	}
	if len(seen) != n {
		t.Errorf("emulator received %d distinct tokens, want %d", len(seen), n)
	}
	for tok, c := range seen {
		if c != 1 {
			t.Errorf("%s received %d times", tok, c)
		}
	}
	if c := a.srv.Counts(); c.TokenRequests != 1 || c.SendRequests != n {
		t.Errorf("counts = %+v, want 1 token request and %d sends", c, n)
	}
}

// TestClassification sends one job whose targets meet every FCM answer
// and checks each target's class.
func TestClassification(t *testing.T) {
	tests := []struct {
		token string
		fault fcmemu.Fault
		want  push.SendResult
	}{
		{"tok-ok", fcmemu.Fault{}, push.SendResult{Class: push.SendOK}},
		{"tok-unregistered", fcmemu.Fault{Code: fcmemu.Unregistered}, push.SendResult{Class: push.SendInvalidToken, Code: "UNREGISTERED"}},
		{"tok-invalid", fcmemu.Fault{Code: fcmemu.InvalidArgument}, push.SendResult{Class: push.SendInvalidToken, Code: "INVALID_ARGUMENT"}},
		{"tok-bad-payload", fcmemu.Fault{Code: fcmemu.InvalidArgument, Field: "message.android.notification.tag"}, push.SendResult{Class: push.SendBadMessage, Code: "INVALID_ARGUMENT"}},
		{"tok-other-project", fcmemu.Fault{Code: fcmemu.SenderIDMismatch}, push.SendResult{Class: push.SendInvalidToken, Code: "SENDER_ID_MISMATCH"}},
		{"tok-throttled", fcmemu.Fault{Code: fcmemu.QuotaExceeded, RetryAfter: 30 * time.Second}, push.SendResult{Class: push.SendThrottled, RetryAfter: 30 * time.Second, Code: "QUOTA_EXCEEDED"}},
		{"tok-throttled-no-hint", fcmemu.Fault{Code: fcmemu.QuotaExceeded}, push.SendResult{Class: push.SendThrottled, Code: "QUOTA_EXCEEDED"}},
		{"tok-internal", fcmemu.Fault{Code: fcmemu.Internal}, push.SendResult{Class: push.SendTransient, Code: "INTERNAL"}},
		// A Retry-After beyond 2 minutes stops the SDK's own 503 retries.
		{"tok-unavailable", fcmemu.Fault{Code: fcmemu.Unavailable, RetryAfter: 5 * time.Minute}, push.SendResult{Class: push.SendTransient, RetryAfter: 5 * time.Minute, Code: "UNAVAILABLE"}},
		{"tok-third-party-auth", fcmemu.Fault{Code: fcmemu.ThirdPartyAuthError}, push.SendResult{Class: push.SendAuth, Code: "THIRD_PARTY_AUTH_ERROR"}},
		// The emulator's own check of the token's form.
		{"not a token!", fcmemu.Fault{}, push.SendResult{Class: push.SendInvalidToken, Code: "INVALID_ARGUMENT"}},
		// Never sent.
		{"", fcmemu.Fault{}, push.SendResult{Class: push.SendInvalidToken, Code: "empty_token"}},
	}
	a := newApp(t)
	faults := fcmemu.Faults{Tokens: map[string]fcmemu.Fault{}}
	var targets []push.Target
	var want []push.SendResult
	for _, tt := range tests {
		if tt.fault.Code != "" {
			faults.Tokens[tt.token] = tt.fault
		}
		targets = append(targets, android("bob", tt.token))
		want = append(want, tt.want)
	}
	a.srv.SetFaults(faults)
	got := fcm.New(clock, discard()).Send(context.Background(), a.job(message(targets...)))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	// From outside: each target's class matches what the emulator
	// answered it.
	answered := map[string]fcmemu.Answer{}
	for _, ans := range a.srv.Answers() {
		answered[ans.Token] = ans
	}
	for i, tt := range tests {
		ans, sent := answered[tt.token]
		if tt.token == "" {
			if sent {
				t.Errorf("empty token was sent")
			}
			continue
		}
		if (ans.Status == 200) != (got[i].Class == push.SendOK) {
			t.Errorf("%s: emulator answered %d, sender says %s", tt.token, ans.Status, got[i].Class)
		}
	}
}

// TestUnavailableOnceIsRetriedBySDK: a single 503 without Retry-After is
// retried by the SDK at once and the push is delivered.
func TestUnavailableOnceIsRetriedBySDK(t *testing.T) {
	a := newApp(t)
	a.srv.SetFaults(fcmemu.Faults{Tokens: map[string]fcmemu.Fault{"tok-1": {Code: fcmemu.Unavailable, Times: 1}}})
	got := fcm.New(clock, discard()).Send(context.Background(), a.job(message(android("bob", "tok-1"))))
	if diff := cmp.Diff(ok(1), got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	if n := len(a.srv.Answers()); n != 2 {
		t.Errorf("emulator answered %d requests, want 2", n)
	}
}

// TestTokenReuse: the access token is fetched once at the service
// account's token_uri and reused by later sends, also through another
// Sender of the same process, as warm Lambda invocations do.
func TestTokenReuse(t *testing.T) {
	a := newApp(t)
	for i := range 3 {
		s := fcm.New(clock, discard())
		for j := range 2 {
			got := s.Send(context.Background(), a.job(message(android("bob", fmt.Sprintf("tok-%d-%d", i, j)))))
			if diff := cmp.Diff(ok(1), got); diff != "" {
				t.Fatalf("send %d/%d (-want +got):\n%s", i, j, diff)
			}
		}
	}
	want := fcmemu.Counts{TokenRequests: 1, TokensIssued: 1, SendRequests: 6, Accepted: 6}
	if diff := cmp.Diff(want, a.srv.Counts()); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
}

// TestNoNetwork: a send with the local token_uri and endpoint touches
// nothing but the emulator.
func TestNoNetwork(t *testing.T) {
	tripwire.take()
	a := newApp(t)
	got := fcm.New(clock, discard()).Send(context.Background(), a.job(message(android("bob", "tok-1"))))
	if diff := cmp.Diff(ok(1), got); diff != "" {
		t.Fatalf("results (-want +got):\n%s", diff)
	}
	if hosts := tripwire.take(); len(hosts) > 0 {
		t.Errorf("requests left the machine: %v", hosts)
	}
	if c := a.srv.Counts(); c.TokenRequests != 1 {
		t.Errorf("token requests at token_uri = %d, want 1", c.TokenRequests)
	}
}

// TestTripwireSeesGoogle is the control of TestNoNetwork: without the
// endpoint override the send heads for fcm.googleapis.com, and the
// tripwire catches it.
func TestTripwireSeesGoogle(t *testing.T) {
	a := newApp(t)
	a.creds = secret(t, a.sa, "", map[string]any{"endpoint": nil})
	// The SDK retries a failed connection with backoff; end the send as
	// soon as the tripwire has seen it.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tripwire.notify(cancel)
	defer tripwire.notify(nil)
	got := fcm.New(clock, discard()).Send(ctx, a.job(message(android("bob", "tok-1"))))
	if got[0].Class != push.SendTransient {
		t.Errorf("result = %+v, want transient", got[0])
	}
	hosts := tripwire.take()
	if len(hosts) == 0 || hosts[0] != "fcm.googleapis.com:443" {
		t.Errorf("tripwire saw %v, want fcm.googleapis.com:443", hosts)
	}
}

// TestRevokedTokenIsRefreshedOnce: FCM refusing the access token (401)
// makes the sender fetch a new one and send again.
func TestRevokedTokenIsRefreshedOnce(t *testing.T) {
	a := newApp(t)
	s := fcm.New(clock, discard())
	if diff := cmp.Diff(ok(1), s.Send(context.Background(), a.job(message(android("bob", "tok-1"))))); diff != "" {
		t.Fatalf("first send (-want +got):\n%s", diff)
	}
	a.srv.RevokeTokens()
	if diff := cmp.Diff(ok(2), s.Send(context.Background(), a.job(message(android("bob", "tok-2"), android("carol", "tok-3"))))); diff != "" {
		t.Fatalf("send after revoke (-want +got):\n%s", diff)
	}
	c := a.srv.Counts()
	if c.TokensIssued != 2 || c.Unauthenticated != 2 || c.Accepted != 3 {
		t.Errorf("counts = %+v, want 2 tokens issued, 2 refused sends, 3 accepted", c)
	}
}

// TestRefusedCredentials: credentials that cannot work make every target
// auth, and nothing is sent.
func TestRefusedCredentials(t *testing.T) {
	a := newApp(t)
	stranger, err := fcmemu.NewServiceAccount("demo-push", a.srv.TokenURI())
	if err != nil {
		t.Fatal(err)
	}
	badKey := *a.sa
	badKey.PrivateKey = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
	plainHTTP := *a.sa
	plainHTTP.TokenURI = "http://oauth2.example.com/token"
	tests := []struct {
		name  string
		creds []byte
		want  push.SendResult
	}{
		{"not JSON", []byte("{"), push.SendResult{Class: push.SendAuth, Code: "bad_credentials"}},
		{"other vendor", secret(t, a.sa, a.srv.Endpoint(), map[string]any{"vendor": "apns"}), push.SendResult{Class: push.SendAuth, Code: "bad_credentials"}},
		{"no service account", secret(t, a.sa, a.srv.Endpoint(), map[string]any{"serviceAccount": nil}), push.SendResult{Class: push.SendAuth, Code: "bad_credentials"}},
		{"user credentials", secret(t, a.sa, a.srv.Endpoint(), map[string]any{"serviceAccount": map[string]string{"type": "authorized_user", "client_id": "x"}}), push.SendResult{Class: push.SendAuth, Code: "bad_credentials"}},
		{"broken key", secret(t, &badKey, a.srv.Endpoint(), nil), push.SendResult{Class: push.SendAuth, Code: "bad_credentials"}},
		{"token_uri over plain HTTP", secret(t, &plainHTTP, a.srv.Endpoint(), nil), push.SendResult{Class: push.SendAuth, Code: "bad_credentials"}},
		{"endpoint over plain HTTP", secret(t, a.sa, "http://fcm.example.com/v1", nil), push.SendResult{Class: push.SendAuth, Code: "bad_credentials"}},
		{"colour name", secret(t, a.sa, a.srv.Endpoint(), map[string]any{"resources": map[string]any{"chat": map[string]string{"color": "red"}}}), push.SendResult{Class: push.SendAuth, Code: "bad_credentials"}},
		{"key the token endpoint does not know", secret(t, stranger, a.srv.Endpoint(), nil), push.SendResult{Class: push.SendAuth, Code: "token_invalid_grant"}},
	}
	s := fcm.New(clock, discard())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a.srv.Reset()
			job := a.job(message(android("bob", "tok-1"), android("carol", "tok-2")))
			job.Credentials, job.CredentialsKey = tt.creds, newKey()
			if diff := cmp.Diff([]push.SendResult{tt.want, tt.want}, s.Send(context.Background(), job)); diff != "" {
				t.Errorf("results (-want +got):\n%s", diff)
			}
			if c := a.srv.Counts(); c.SendRequests != 0 {
				t.Errorf("emulator got %d sends, want none", c.SendRequests)
			}
		})
	}
}

// TestOversizeTextIsShortened: a body too long for 4096 bytes is cut on a
// character boundary and ends in an ellipsis, and FCM accepts the result.
func TestOversizeTextIsShortened(t *testing.T) {
	a := newApp(t)
	env := message(android("bob", "tok-1"), ios("carol", "tok-2"))
	env.Texts = []push.EnvelopeText{{Title: strings.Repeat("标题", 30), Body: strings.Repeat("吃饭吗😀", 600)}}
	got := fcm.New(clock, discard()).Send(context.Background(), a.job(env))
	if diff := cmp.Diff(ok(2), got); diff != "" {
		t.Fatalf("results (-want +got):\n%s", diff)
	}
	for _, r := range a.srv.Received() {
		var m struct {
			Message struct {
				Android *struct {
					Notification struct{ Title, Body string } `json:"notification"`
				} `json:"android"`
				APNs *struct {
					Payload struct {
						Aps struct {
							Alert struct{ Title, Body string } `json:"alert"`
						} `json:"aps"`
					} `json:"payload"`
				} `json:"apns"`
			} `json:"message"`
		}
		if err := json.Unmarshal(r.Body, &m); err != nil {
			t.Fatal(err)
		}
		title, body := "", ""
		if m.Message.Android != nil {
			title, body = m.Message.Android.Notification.Title, m.Message.Android.Notification.Body
		} else {
			title, body = m.Message.APNs.Payload.Aps.Alert.Title, m.Message.APNs.Payload.Aps.Alert.Body
		}
		if title != env.Texts[0].Title {
			t.Errorf("%s: title changed to %q", r.Token, title)
		}
		if !strings.HasSuffix(body, "…") || !utf8.ValidString(body) || !strings.HasPrefix(env.Texts[0].Body, strings.TrimSuffix(body, "…")) {
			t.Errorf("%s: body %q is not a prefix of the text ending in …", r.Token, body)
		}
		if len(body) < 3000 {
			t.Errorf("%s: body cut to %d bytes, more than needed", r.Token, len(body))
		}
		if len(r.Message) > fcm.MaxPayloadBytes+len(r.Token)+len(`,"token":""`) {
			t.Errorf("%s: message is %d bytes", r.Token, len(r.Message))
		}
	}
}

// TestReservedPayloadKeys: keys FCM refuses are left out, not the push.
func TestReservedPayloadKeys(t *testing.T) {
	a := newApp(t)
	env := message(android("bob", "tok-1"))
	env.Payload = map[string]string{"from": "x", "google.sent_time": "1", "gcm.x": "y", "message_type": "z", "k": "v"}
	if diff := cmp.Diff(ok(1), fcm.New(clock, discard()).Send(context.Background(), a.job(env))); diff != "" {
		t.Fatalf("results (-want +got):\n%s", diff)
	}
	var m struct {
		Message struct{ Data map[string]string } `json:"message"`
	}
	if err := json.Unmarshal(a.srv.Received()[0].Body, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"from", "google.sent_time", "gcm.x", "message_type"} {
		if _, ok := m.Message.Data[k]; ok {
			t.Errorf("data kept reserved key %q", k)
		}
	}
	if m.Message.Data["k"] != "v" {
		t.Errorf("data = %v, want k=v kept", m.Message.Data)
	}
}

// TestCancelledContext: a send whose context is already done reports
// transient, not a vendor verdict.
func TestCancelledContext(t *testing.T) {
	a := newApp(t)
	ctx, cancel := context.WithCancel(context.Background())
	s := fcm.New(clock, discard())
	// Warm the client first, so the cancel hits the send itself.
	s.Send(context.Background(), a.job(message(android("bob", "tok-0"))))
	a.srv.SetFaults(fcmemu.Faults{Delay: time.Minute})
	cancel()
	got := s.Send(ctx, a.job(message(android("bob", "tok-1"))))
	if got[0].Class != push.SendTransient {
		t.Errorf("result = %+v, want transient", got[0])
	}
}

// TestEvents sends the sample SQS events of events/dispatch/fcm-*.json
// through the sender, so they never drift from the envelope format.
func TestEvents(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "..", "events", "dispatch", "fcm-*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no events/dispatch/fcm-*.json")
	}
	a := newApp(t)
	s := fcm.New(clock, discard())
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var event struct {
				Records []struct {
					Body           string `json:"body"`
					EventSource    string `json:"eventSource"`
					EventSourceARN string `json:"eventSourceARN"`
				} `json:"Records"`
			}
			if err := json.Unmarshal(raw, &event); err != nil {
				t.Fatal(err)
			}
			if len(event.Records) == 0 {
				t.Fatal("no records")
			}
			for _, r := range event.Records {
				if r.EventSource != "aws:sqs" || !strings.HasSuffix(r.EventSourceARN, "fcm") && !strings.Contains(r.EventSourceARN, "fcm") {
					t.Errorf("record source %s %s, want aws:sqs from the fcm queue", r.EventSource, r.EventSourceARN)
				}
				env, err := push.DecodeEnvelope([]byte(r.Body))
				if err != nil {
					t.Fatal(err)
				}
				if env.Vendor != push.FCM {
					t.Errorf("vendor %s, want fcm", env.Vendor)
				}
				got := s.Send(context.Background(), a.job(env))
				if diff := cmp.Diff(ok(len(env.Targets)), got); diff != "" {
					t.Errorf("results (-want +got):\n%s", diff)
				}
			}
		})
	}
}
