package fcmemu_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	firebase "firebase.google.com/go/v4"
	"firebase.google.com/go/v4/errorutils"
	"firebase.google.com/go/v4/messaging"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/api/option"

	fcmemu "github.com/offline-push/offline-push/shared/emulator/fcm"
)

// fixture is an emulator with one registered service account.
type fixture struct {
	srv *fcmemu.Server
	sa  *fcmemu.ServiceAccount
	key *rsa.PrivateKey
}

func newFixture(t *testing.T, opts fcmemu.Options) *fixture {
	t.Helper()
	srv := fcmemu.New(opts)
	t.Cleanup(srv.Close)
	sa, err := fcmemu.NewServiceAccount("emu-project", srv.TokenURI())
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.AddServiceAccountJSON(sa.JSON()); err != nil {
		t.Fatal(err)
	}
	return &fixture{srv: srv, sa: sa, key: privateKey(t, sa)}
}

// privateKey parses the account's key for the tests that sign their own
// assertions.
func privateKey(t *testing.T, sa *fcmemu.ServiceAccount) *rsa.PrivateKey {
	t.Helper()
	var k *rsa.PrivateKey
	pub, err := fcmemu.PublicKeyOf(sa.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	k, err = parseRSA(sa.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	if !k.PublicKey.Equal(pub) {
		t.Fatal("PublicKeyOf does not match the private key")
	}
	return k
}

// sdkClient is the real Firebase Admin SDK pointed at the emulator through
// the service account's token_uri and the endpoint override only.
func (f *fixture) sdkClient(t *testing.T) *messaging.Client {
	t.Helper()
	ctx := context.Background()
	app, err := firebase.NewApp(ctx, &firebase.Config{ProjectID: f.sa.ProjectID},
		option.WithCredentialsJSON(f.sa.JSON()), option.WithEndpoint(f.srv.Endpoint()))
	if err != nil {
		t.Fatal(err)
	}
	c, err := app.Messaging(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSDKSendsThroughTheEmulator(t *testing.T) {
	var printed bytes.Buffer
	f := newFixture(t, fcmemu.Options{Printer: &syncWriter{w: &printed}})
	c := f.sdkClient(t)
	ttl := 90 * time.Second
	const token = "dGVzdC10b2tlbi0x:APA91bHqL3sYk0"
	for i := range 3 {
		name, err := c.Send(context.Background(), &messaging.Message{
			Token: token,
			Data:  map[string]string{"messageId": "m-1"},
			Android: &messaging.AndroidConfig{Priority: "high", TTL: &ttl,
				Notification: &messaging.AndroidNotification{Title: "Alice", Body: "lunch?", Tag: "m:m-1", ChannelID: "chat"}},
		})
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if !strings.HasPrefix(name, "projects/emu-project/messages/") {
			t.Errorf("name = %q, want projects/emu-project/messages/…", name)
		}
	}
	got := f.srv.Counts()
	want := fcmemu.Counts{TokenRequests: 1, TokensIssued: 1, SendRequests: 3, Accepted: 3}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	rec := f.srv.Received()
	if len(rec) != 3 || rec[0].Token != token || rec[0].Project != "emu-project" {
		t.Fatalf("received = %+v, want 3 messages to %s", rec, token)
	}
	var m map[string]any
	if err := json.Unmarshal(rec[0].Message, &m); err != nil {
		t.Fatal(err)
	}
	if got := m["android"].(map[string]any)["ttl"]; got != "90s" {
		t.Errorf("ttl = %v, want 90s", got)
	}
	lines := strings.Split(strings.TrimSpace(printed.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("printed %d lines, want 3:\n%s", len(lines), printed.String())
	}
	var line map[string]string
	if err := json.Unmarshal([]byte(lines[0]), &line); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"vendor": "fcm", "project": "emu-project", "name": rec[0].Name, "token": "…L3sYk0", "title": "Alice", "body": "lunch?", "priority": "high"}; !cmp.Equal(want, line) {
		t.Errorf("printed line = %v, want %v", line, want)
	}
	if strings.Contains(printed.String(), token) {
		t.Error("printed output contains the whole token")
	}
}

// TestSDKErrors checks that every fault reaches the SDK as the error its
// helpers recognise.
func TestSDKErrors(t *testing.T) {
	f := newFixture(t, fcmemu.Options{})
	c := f.sdkClient(t)
	tests := []struct {
		code  string
		field string
		check func(error) bool
		want  int
	}{
		{fcmemu.Unregistered, "", messaging.IsUnregistered, http.StatusNotFound},
		{fcmemu.InvalidArgument, "", messaging.IsInvalidArgument, http.StatusBadRequest},
		{fcmemu.InvalidArgument, "message.android.notification.tag", messaging.IsInvalidArgument, http.StatusBadRequest},
		{fcmemu.SenderIDMismatch, "", messaging.IsSenderIDMismatch, http.StatusForbidden},
		{fcmemu.QuotaExceeded, "", messaging.IsQuotaExceeded, http.StatusTooManyRequests},
		{fcmemu.Internal, "", messaging.IsInternal, http.StatusInternalServerError},
		{fcmemu.ThirdPartyAuthError, "", messaging.IsThirdPartyAuthError, http.StatusUnauthorized},
		// A Retry-After beyond the SDK's 2-minute cap stops its own retries.
		{fcmemu.Unavailable, "", messaging.IsUnavailable, http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.code+tt.field, func(t *testing.T) {
			token := "tok-" + strings.ToLower(tt.code)
			f.srv.SetFaults(fcmemu.Faults{Tokens: map[string]fcmemu.Fault{token: {Code: tt.code, Field: tt.field, RetryAfter: 5 * time.Minute}}})
			_, err := c.Send(context.Background(), &messaging.Message{Token: token, Data: map[string]string{"k": "v"}})
			if err == nil || !tt.check(err) {
				t.Fatalf("send: %v, want a %s error", err, tt.code)
			}
			resp := errorutils.HTTPResponse(err)
			if resp == nil || resp.StatusCode != tt.want {
				t.Fatalf("response %v, want status %d", resp, tt.want)
			}
			if got := resp.Header.Get("Retry-After"); got != "300" {
				t.Errorf("Retry-After = %q, want 300", got)
			}
			body, _ := io.ReadAll(resp.Body)
			wantField := tt.field
			if tt.code == fcmemu.InvalidArgument && wantField == "" {
				wantField = "message.token"
			}
			if wantField != "" && !strings.Contains(string(body), `"field":"`+wantField+`"`) {
				t.Errorf("body %s does not blame %s", body, wantField)
			}
		})
	}
}

// TestFaultTimesLetsTheSDKRetry: one 503 is retried by the SDK at once and
// the retry succeeds; the emulator's answers show both attempts.
func TestFaultTimesLetsTheSDKRetry(t *testing.T) {
	f := newFixture(t, fcmemu.Options{})
	c := f.sdkClient(t)
	f.srv.SetFaults(fcmemu.Faults{Tokens: map[string]fcmemu.Fault{"tok-1": {Code: fcmemu.Unavailable, Times: 1}}})
	if _, err := c.Send(context.Background(), &messaging.Message{Token: "tok-1"}); err != nil {
		t.Fatalf("send: %v", err)
	}
	want := []fcmemu.Answer{{Token: "tok-1", Status: 503, Code: "UNAVAILABLE"}, {Token: "tok-1", Status: 200}}
	if diff := cmp.Diff(want, f.srv.Answers()); diff != "" {
		t.Errorf("answers (-want +got):\n%s", diff)
	}
}

// TestSharesFollowTheSeed: the same seed gives the same answers to the same
// sequence of requests.
func TestSharesFollowTheSeed(t *testing.T) {
	f := newFixture(t, fcmemu.Options{})
	c := f.sdkClient(t)
	run := func() []fcmemu.Answer {
		f.srv.Reset()
		f.srv.SetFaults(fcmemu.Faults{ThrottleShare: 0.3, InternalShare: 0.2, Seed: 7})
		for i := range 40 {
			c.Send(context.Background(), &messaging.Message{Token: "tok-" + string(rune('a'+i%26))})
		}
		return f.srv.Answers()
	}
	first, second := run(), run()
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("second run differs (-first +second):\n%s", diff)
	}
	codes := map[string]int{}
	for _, a := range first {
		codes[a.Code]++
	}
	if codes[""] == 0 || codes["QUOTA_EXCEEDED"] == 0 || codes["INTERNAL"] == 0 {
		t.Errorf("answer codes = %v, want some of each", codes)
	}
}

func TestRevokedTokenIsUnauthenticated(t *testing.T) {
	f := newFixture(t, fcmemu.Options{})
	c := f.sdkClient(t)
	if _, err := c.Send(context.Background(), &messaging.Message{Token: "tok-1"}); err != nil {
		t.Fatal(err)
	}
	f.srv.RevokeTokens()
	_, err := c.Send(context.Background(), &messaging.Message{Token: "tok-1"})
	if !errorutils.IsUnauthenticated(err) || messaging.IsThirdPartyAuthError(err) {
		t.Fatalf("send after revoke: %v, want UNAUTHENTICATED without an FCM code", err)
	}
	if got := f.srv.Counts().Unauthenticated; got != 1 {
		t.Errorf("Unauthenticated = %d, want 1", got)
	}
}

// clock is a settable clock for token lifetimes.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// assertion signs a JWT-bearer assertion with key, claims overriding the
// valid defaults (a nil value deletes a claim).
func (f *fixture) assertion(t *testing.T, key *rsa.PrivateKey, alg string, now time.Time, override map[string]any) string {
	t.Helper()
	claims := map[string]any{
		"iss":   f.sa.ClientEmail,
		"scope": "https://www.googleapis.com/auth/firebase.messaging",
		"aud":   f.srv.TokenURI(),
		"iat":   now.Add(-10 * time.Second).Unix(),
		"exp":   now.Add(50 * time.Minute).Unix(),
	}
	for k, v := range override {
		if v == nil {
			delete(claims, k)
		} else {
			claims[k] = v
		}
	}
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(map[string]string{"alg": alg, "typ": "JWT", "kid": f.sa.PrivateKeyID}) + "." + enc(claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func postToken(t *testing.T, tokenURI string, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(tokenURI, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func TestTokenEndpoint(t *testing.T) {
	clk := &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	f := newFixture(t, fcmemu.Options{Now: clk.Now})
	now := clk.Now()
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		grant     string
		assertion string
		status    int
		wantError string
	}{
		{"valid", "", f.assertion(t, f.key, "RS256", now, nil), 200, ""},
		{"cloud-platform scope", "", f.assertion(t, f.key, "RS256", now, map[string]any{"scope": "https://www.googleapis.com/auth/cloud-platform"}), 200, ""},
		{"wrong grant type", "client_credentials", f.assertion(t, f.key, "RS256", now, nil), 400, "unsupported_grant_type"},
		{"signed by another key", "", f.assertion(t, other, "RS256", now, nil), 400, "invalid_grant"},
		{"alg HS256", "", f.assertion(t, f.key, "HS256", now, nil), 400, "invalid_grant"},
		{"unknown account", "", f.assertion(t, f.key, "RS256", now, map[string]any{"iss": "x@y.iam.gserviceaccount.com"}), 400, "invalid_grant"},
		{"wrong audience", "", f.assertion(t, f.key, "RS256", now, map[string]any{"aud": "https://oauth2.googleapis.com/token"}), 400, "invalid_grant"},
		{"expired", "", f.assertion(t, f.key, "RS256", now, map[string]any{"iat": now.Add(-2 * time.Hour).Unix(), "exp": now.Add(-time.Hour).Unix()}), 400, "invalid_grant"},
		{"longer than an hour", "", f.assertion(t, f.key, "RS256", now, map[string]any{"exp": now.Add(2 * time.Hour).Unix()}), 400, "invalid_grant"},
		{"issued in the future", "", f.assertion(t, f.key, "RS256", now, map[string]any{"iat": now.Add(10 * time.Minute).Unix(), "exp": now.Add(20 * time.Minute).Unix()}), 400, "invalid_grant"},
		{"no exp", "", f.assertion(t, f.key, "RS256", now, map[string]any{"exp": nil}), 400, "invalid_grant"},
		{"no scope", "", f.assertion(t, f.key, "RS256", now, map[string]any{"scope": nil}), 400, "invalid_scope"},
		{"another subject", "", f.assertion(t, f.key, "RS256", now, map[string]any{"sub": "user@example.com"}), 400, "unauthorized_client"},
		{"not a JWT", "", "abc", 400, "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			grant := tt.grant
			if grant == "" {
				grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
			}
			status, body := postToken(t, f.srv.TokenURI(), url.Values{"grant_type": {grant}, "assertion": {tt.assertion}})
			if status != tt.status {
				t.Fatalf("status = %d, want %d (body %v)", status, tt.status, body)
			}
			if tt.wantError != "" {
				if body["error"] != tt.wantError {
					t.Errorf("error = %v, want %s", body["error"], tt.wantError)
				}
				return
			}
			if body["token_type"] != "Bearer" || body["expires_in"] != float64(3600) || body["access_token"] == "" {
				t.Errorf("body = %v, want a Bearer token for 3600 s", body)
			}
		})
	}
}

// send posts a raw messages:send request with bearer.
func send(t *testing.T, srv *fcmemu.Server, project, bearer, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.Endpoint()+"/projects/"+project+"/messages:send", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

func (f *fixture) bearer(t *testing.T, now time.Time, scope string) string {
	t.Helper()
	status, body := postToken(t, f.srv.TokenURI(), url.Values{
		"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"},
		"assertion":  {f.assertion(t, f.key, "RS256", now, map[string]any{"scope": scope})},
	})
	if status != 200 {
		t.Fatalf("token: %d %v", status, body)
	}
	return body["access_token"].(string)
}

func TestSendChecks(t *testing.T) {
	clk := &clock{now: time.Now()}
	f := newFixture(t, fcmemu.Options{Now: clk.Now})
	bearer := f.bearer(t, clk.Now(), "https://www.googleapis.com/auth/firebase.messaging")
	narrow := f.bearer(t, clk.Now(), "https://www.googleapis.com/auth/userinfo.email")
	big := strings.Repeat("x", 4000)
	tests := []struct {
		name    string
		project string
		bearer  string
		body    string
		status  int
		field   string // blamed field, if any
	}{
		{"data message", "", "", `{"message":{"token":"tok-1","data":{"k":"v"}}}`, 200, ""},
		{"validate only", "", "", `{"validate_only":true,"message":{"token":"tok-1"}}`, 200, ""},
		{"ttl with fraction", "", "", `{"message":{"token":"tok-1","android":{"ttl":"3.5s"}}}`, 200, ""},
		{"ttl 4 weeks", "", "", `{"message":{"token":"tok-1","android":{"ttl":"2419200s"}}}`, 200, ""},
		{"no bearer", "", "-", `{"message":{"token":"tok-1"}}`, 401, ""},
		{"unknown bearer", "", "ya29.nope", `{"message":{"token":"tok-1"}}`, 401, ""},
		{"scope without messaging", "", narrow, `{"message":{"token":"tok-1"}}`, 403, ""},
		{"other project", "someone-else", "", `{"message":{"token":"tok-1"}}`, 403, ""},
		{"no message", "", "", `{}`, 400, "message"},
		{"unknown member", "", "", `{"message":{"token":"tok-1","android":{"urgency":"HIGH"}}}`, 400, "message"},
		{"two targets", "", "", `{"message":{"token":"tok-1","topic":"news"}}`, 400, "message"},
		{"no target", "", "", `{"message":{"data":{"k":"v"}}}`, 400, "message"},
		{"number in data", "", "", `{"message":{"token":"tok-1","data":{"n":12}}}`, 400, "message.data"},
		{"reserved data key", "", "", `{"message":{"token":"tok-1","data":{"from":"x"}}}`, 400, "message.data"},
		{"google data key", "", "", `{"message":{"token":"tok-1","data":{"google.x":"x"}}}`, 400, "message.data"},
		{"priority urgent", "", "", `{"message":{"token":"tok-1","android":{"priority":"urgent"}}}`, 400, "message.android.priority"},
		{"ttl without unit", "", "", `{"message":{"token":"tok-1","android":{"ttl":"10"}}}`, 400, "message.android.ttl"},
		{"ttl over 4 weeks", "", "", `{"message":{"token":"tok-1","android":{"ttl":"2419201s"}}}`, 400, "message.android.ttl"},
		{"ttl ten decimals", "", "", `{"message":{"token":"tok-1","android":{"ttl":"1.0123456789s"}}}`, 400, "message.android.ttl"},
		{"color name", "", "", `{"message":{"token":"tok-1","android":{"notification":{"color":"red"}}}}`, 400, "message.android.notification.color"},
		{"negative count", "", "", `{"message":{"token":"tok-1","android":{"notification":{"notification_count":-1}}}}`, 400, "message.android.notification.notification_count"},
		{"unknown notification field", "", "", `{"message":{"token":"tok-1","android":{"notification":{"subtitle":"x"}}}}`, 400, "message"},
		{"apns header not a string", "", "", `{"message":{"token":"tok-1","apns":{"headers":{"apns-priority":10}}}}`, 400, "message.apns.headers"},
		{"apns priority 7", "", "", `{"message":{"token":"tok-1","apns":{"headers":{"apns-priority":"7"}}}}`, 400, "message.apns.headers"},
		{"apns payload not an object", "", "", `{"message":{"token":"tok-1","apns":{"payload":[1]}}}`, 400, "message.apns.payload"},
		{"bad token", "", "", `{"message":{"token":"not a token!"}}`, 400, "message.token"},
		{"oversize data", "", "", `{"message":{"token":"tok-1","data":{"a":"` + big + `","b":"` + big[:100] + `"}}}`, 400, "message"},
		{"oversize apns payload", "", "", `{"message":{"token":"tok-1","data":{"a":"` + big[:2000] + `"},"apns":{"payload":{"aps":{"alert":{"body":"` + big[:2100] + `"}}}}}}`, 400, "message"},
		{"trailing data", "", "", `{"message":{"token":"tok-1"}} {}`, 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			project, b := tt.project, tt.bearer
			if project == "" {
				project = f.sa.ProjectID
			}
			switch b {
			case "":
				b = bearer
			case "-":
				b = ""
			}
			status, body := send(t, f.srv, project, b, tt.body)
			if status != tt.status {
				t.Fatalf("status = %d, want %d (body %v)", status, tt.status, body)
			}
			if status == 200 {
				if name, _ := body["name"].(string); !strings.HasPrefix(name, "projects/"+project+"/messages/") {
					t.Errorf("name = %v", body["name"])
				}
				return
			}
			e, _ := body["error"].(map[string]any)
			if e == nil || e["code"] != float64(tt.status) || e["message"] == "" || e["status"] == "" {
				t.Fatalf("error body = %v, want Google's error shape", body)
			}
			if tt.field == "" {
				return
			}
			raw, _ := json.Marshal(e["details"])
			if !strings.Contains(string(raw), `"errorCode":"INVALID_ARGUMENT"`) || !strings.Contains(string(raw), `"field":"`+tt.field+`"`) {
				t.Errorf("details = %s, want INVALID_ARGUMENT blaming %s", raw, tt.field)
			}
		})
	}
	if got := len(f.srv.Received()); got != 3 {
		t.Errorf("received %d messages, want the 3 valid non-validate-only ones", got)
	}

	clk.Add(time.Hour)
	if status, body := send(t, f.srv, f.sa.ProjectID, bearer, `{"message":{"token":"tok-1"}}`); status != 401 {
		t.Errorf("expired bearer: %d %v, want 401", status, body)
	}
}

func TestAddServiceAccountJSONRefuses(t *testing.T) {
	srv := fcmemu.New(fcmemu.Options{})
	defer srv.Close()
	for _, data := range []string{`nope`, `{"type":"authorized_user"}`, `{"type":"service_account","project_id":"p","client_email":"e","private_key":"x"}`} {
		if err := srv.AddServiceAccountJSON([]byte(data)); err == nil {
			t.Errorf("AddServiceAccountJSON(%s) = nil, want an error", data)
		}
	}
}

// syncWriter serialises writes to a buffer read after the test.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func parseRSA(pemText string) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode([]byte(pemText))
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("not RSA")
	}
	return rk, nil
}
