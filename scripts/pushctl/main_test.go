package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const (
	testApp    = "demo"
	testSecret = "s3cret"
)

var apnsToken = strings.Repeat("ab", 32)

// fixedNow is the clock of every test: a real instant, so that a server
// checking the timestamp window against it behaves as in production.
var fixedNow = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// expectedSignature is the test's own implementation of API.md §2, written
// apart from the service's so that a shared bug cannot make both agree.
func expectedSignature(secret, method, path, query, ts, nonce string, body []byte) string {
	bodySum := sha256.Sum256(body)
	canonical := method + "\n" + path + "\n" + query + "\n" + ts + "\n" + nonce + "\n" + hex.EncodeToString(bodySum[:])
	m := hmac.New(sha256.New, []byte(secret))
	io.WriteString(m, canonical)
	return hex.EncodeToString(m.Sum(nil))
}

var nonceRE = regexp.MustCompile(`^[A-Za-z0-9_-]{16,64}$`)

// checkSignature verifies the X-Push-* headers h for a request, returning
// what is wrong or "".
func checkSignature(h http.Header, secret, method, path, query string, body []byte, now time.Time) string {
	ts, nonce, sig := h.Get("X-Push-Timestamp"), h.Get("X-Push-Nonce"), h.Get("X-Push-Signature")
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Sprintf("timestamp %q is not Unix seconds", ts)
	}
	if d := now.Unix() - n; d > 300 || d < -300 {
		return fmt.Sprintf("timestamp %d is %d s from the clock", n, d)
	}
	if !nonceRE.MatchString(nonce) {
		return fmt.Sprintf("nonce %q is not 16 to 64 chars of [A-Za-z0-9_-]", nonce)
	}
	if want := expectedSignature(secret, method, path, query, ts, nonce, body); sig != want {
		return fmt.Sprintf("signature %q, want %q", sig, want)
	}
	return ""
}

// seen is one request as the fake service received it.
type seen struct {
	Method      string
	Path        string // as sent, still escaped
	Query       string
	Body        any // decoded JSON; nil when empty
	ContentType string
	Signed      bool
}

// fakeService is an httptest server that checks each request's signature
// on its own and records what it got.
type fakeService struct {
	*httptest.Server
	stage  string // a prefix the signature does not cover, like an API stage
	status int
	answer string

	mu   sync.Mutex
	got  []seen
	errs []string
}

func newFakeService(t *testing.T) *fakeService {
	t.Helper()
	f := &fakeService{status: http.StatusOK, answer: `{"ok":true,"n":[1,2]}`}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeService) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	path, query, _ := strings.Cut(r.RequestURI, "?")
	s := seen{Method: r.Method, Path: path, Query: query, ContentType: r.Header.Get("Content-Type")}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &s.Body); err != nil {
			s.Body = "not JSON: " + string(body)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Header.Get("X-Push-Signature") != "" {
		s.Signed = true
		signed, ok := strings.CutPrefix(path, f.stage)
		if !ok {
			f.errs = append(f.errs, fmt.Sprintf("path %q lacks the stage %q", path, f.stage))
		}
		if msg := checkSignature(r.Header, testSecret, r.Method, signed, query, body, fixedNow); msg != "" {
			f.errs = append(f.errs, msg)
		}
	}
	f.got = append(f.got, s)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(f.status)
	io.WriteString(w, f.answer)
}

// take returns and forgets the recorded requests, failing t on any
// signature error.
func (f *fakeService) take(t *testing.T) []seen {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.errs {
		t.Errorf("service: %s", e)
	}
	got := f.got
	f.got, f.errs = nil, nil
	return got
}

// result is what one pushctl run printed and returned.
type result struct {
	code           int
	stdout, stderr string
}

// runCLI runs one command line in-process with env as the environment.
func runCLI(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	c := &cli{
		stdin:  strings.NewReader(stdin),
		stdout: &out,
		stderr: &errOut,
		getenv: func(k string) string { return env[k] },
		now:    func() time.Time { return fixedNow },
		nonce:  newNonce,
		http:   &http.Client{Timeout: 30 * time.Second},
	}
	code := c.run(context.Background(), args)
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

func envFor(f *fakeService) map[string]string {
	return map[string]string{"PUSH_URL": f.URL, "PUSH_APP": testApp, "PUSH_SECRET": testSecret}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func decodeJSON(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("not JSON: %v: %s", err, s)
	}
	return v
}

// TestSignatureVector pins the signature of fixed inputs to values computed
// outside Go (HMAC-SHA256 by hand over the canonical string of API.md §2).
func TestSignatureVector(t *testing.T) {
	putBody := []byte(`{"vendor":"apns","token":"` + apnsToken + `","certName":"ios-prod"}`)
	tests := []struct {
		name                string
		method, path, query string
		body                []byte
		want                string
	}{
		{"put with body", "PUT", "/v1/apps/demo/users/bob/devices/phone-1", "", putBody,
			"bced21520ffdc9154be3c369c623676803cc698124a378b9d165a12fc033c3f1"},
		{"delete with query, no body", "DELETE", "/v1/apps/demo/users/bob/devices/phone-1", "reason=logout", nil,
			"91cc546e170488344a6c2a13417766cdbaf48088109c3ea90ac30be9bf108c87"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &cli{
				now:   func() time.Time { return time.Unix(1700000000, 0) },
				nonce: func() (string, error) { return "nonce-0123456789AB", nil },
			}
			h, err := c.signedHeaders(testSecret, tt.method, tt.path, tt.query, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if got := h["X-Push-Signature"]; got != tt.want {
				t.Errorf("signature = %s, want %s", got, tt.want)
			}
			if own := expectedSignature(testSecret, tt.method, tt.path, tt.query, "1700000000", "nonce-0123456789AB", tt.body); own != tt.want {
				t.Errorf("the test's own HMAC = %s, want %s", own, tt.want)
			}
			if got := h["X-Push-Timestamp"]; got != "1700000000" {
				t.Errorf("timestamp = %s, want 1700000000", got)
			}
		})
	}
}

func TestNonce(t *testing.T) {
	seenNonces := map[string]bool{}
	for range 100 {
		n, err := newNonce()
		if err != nil {
			t.Fatal(err)
		}
		if !nonceRE.MatchString(n) {
			t.Fatalf("nonce %q is not 16 to 64 chars of [A-Za-z0-9_-]", n)
		}
		if seenNonces[n] {
			t.Fatalf("nonce %q repeated", n)
		}
		seenNonces[n] = true
	}
}

func TestCommands(t *testing.T) {
	msgFile := writeFile(t, "message.json", `{"messageId":"m-1","type":"message","sender":{"userId":"alice"},`+
		`"conversation":{"type":"group","id":"g1"},"recipients":["bob"],"push":{"content":"hi"},"dryRun":false}`)
	patchFile := writeFile(t, "patch.json", `{"language":"en"}`)
	const jsonCT, patchCT = "application/json", "application/merge-patch+json"
	tests := []struct {
		name  string
		args  []string
		stdin string
		want  seen
	}{
		{
			name: "device put, minimal",
			args: []string{"device", "put", "--user", "bob", "--device", "phone-1", "--vendor", "apns", "--token", apnsToken, "--cert", "ios-prod"},
			want: seen{Method: "PUT", Path: "/v1/apps/demo/users/bob/devices/phone-1", ContentType: jsonCT, Signed: true,
				Body: map[string]any{"vendor": "apns", "token": apnsToken, "certName": "ios-prod"}},
		},
		{
			name: "device put, every flag",
			args: []string{"device", "put", "--user", "bob", "--device", "phone-1", "--vendor", "apns", "--token", apnsToken,
				"--cert", "ios-dev", "--platform", "ios", "--environment", "sandbox", "--voip-token", "cd" + apnsToken[2:],
				"--locale", "zh-CN", "--app-version", "5.2.0"},
			want: seen{Method: "PUT", Path: "/v1/apps/demo/users/bob/devices/phone-1", ContentType: jsonCT, Signed: true,
				Body: map[string]any{"vendor": "apns", "token": apnsToken, "certName": "ios-dev", "platform": "ios",
					"environment": "sandbox", "voipToken": "cd" + apnsToken[2:], "locale": "zh-CN", "appVersion": "5.2.0"}},
		},
		{
			name: "ids with reserved characters are escaped",
			args: []string{"device", "list", "--user", "a b/c"},
			want: seen{Method: "GET", Path: "/v1/apps/demo/users/a%20b%2Fc/devices", Signed: true},
		},
		{
			name: "device delete with reason",
			args: []string{"device", "delete", "--user", "bob", "--device", "phone-1", "--reason", "logout"},
			want: seen{Method: "DELETE", Path: "/v1/apps/demo/users/bob/devices/phone-1", Query: "reason=logout", Signed: true},
		},
		{
			name: "device delete without reason",
			args: []string{"device", "delete", "--user", "bob", "--device", "phone-1"},
			want: seen{Method: "DELETE", Path: "/v1/apps/demo/users/bob/devices/phone-1", Signed: true},
		},
		{
			name: "device list",
			args: []string{"device", "list", "--user", "bob"},
			want: seen{Method: "GET", Path: "/v1/apps/demo/users/bob/devices", Signed: true},
		},
		{
			name: "presence online with every flag",
			args: []string{"presence", "--user", "bob", "--device", "pc-1", "--state", "online", "--platform", "pc",
				"--lease", "120", "--epoch", "17", "--badge", "0"},
			want: seen{Method: "PUT", Path: "/v1/apps/demo/users/bob/devices/pc-1/presence", ContentType: jsonCT, Signed: true,
				Body: map[string]any{"state": "online", "platform": "pc", "leaseSeconds": 120.0, "epoch": 17.0, "badge": 0.0}},
		},
		{
			name: "presence offline sends only what was given",
			args: []string{"presence", "--user", "bob", "--device", "pc-1", "--state", "offline"},
			want: seen{Method: "PUT", Path: "/v1/apps/demo/users/bob/devices/pc-1/presence", ContentType: jsonCT, Signed: true,
				Body: map[string]any{"state": "offline"}},
		},
		{
			name: "badge",
			args: []string{"badge", "--user", "bob", "--count", "0"},
			want: seen{Method: "PUT", Path: "/v1/apps/demo/users/bob/badge", ContentType: jsonCT, Signed: true,
				Body: map[string]any{"count": 0.0}},
		},
		{
			name: "settings get",
			args: []string{"settings", "get", "--user", "bob"},
			want: seen{Method: "GET", Path: "/v1/apps/demo/users/bob/settings", Signed: true},
		},
		{
			name: "settings patch with --data",
			args: []string{"settings", "patch", "--user", "bob", "--data", `{"remindType":"AT","dnd":{"window":null}}`},
			want: seen{Method: "PATCH", Path: "/v1/apps/demo/users/bob/settings", ContentType: patchCT, Signed: true,
				Body: map[string]any{"remindType": "AT", "dnd": map[string]any{"window": nil}}},
		},
		{
			name: "settings patch with --file",
			args: []string{"settings", "patch", "--user", "bob", "--file", patchFile},
			want: seen{Method: "PATCH", Path: "/v1/apps/demo/users/bob/settings", ContentType: patchCT, Signed: true,
				Body: map[string]any{"language": "en"}},
		},
		{
			name:  "settings patch from standard input",
			args:  []string{"settings", "patch", "--user", "bob", "-"},
			stdin: `{"showPreview":false}`,
			want: seen{Method: "PATCH", Path: "/v1/apps/demo/users/bob/settings", ContentType: patchCT, Signed: true,
				Body: map[string]any{"showPreview": false}},
		},
		{
			name: "conv get",
			args: []string{"conv", "get", "--user", "bob", "--type", "group", "--id", "g1"},
			want: seen{Method: "GET", Path: "/v1/apps/demo/users/bob/conversations/group/g1/settings", Signed: true},
		},
		{
			name: "conv patch",
			args: []string{"conv", "patch", "--user", "bob", "--type", "peer", "--id", "alice", "--data", `{"remindType":"NONE"}`},
			want: seen{Method: "PATCH", Path: "/v1/apps/demo/users/bob/conversations/peer/alice/settings", ContentType: patchCT, Signed: true,
				Body: map[string]any{"remindType": "NONE"}},
		},
		{
			name: "conv delete",
			args: []string{"conv", "delete", "--user", "bob", "--type", "group", "--id", "g1"},
			want: seen{Method: "DELETE", Path: "/v1/apps/demo/users/bob/conversations/group/g1/settings", Signed: true},
		},
		{
			name: "send with flags overriding the file",
			args: []string{"send", "--file", msgFile, "--dry-run", "--explain", "--evaluate-at", "2026-11-22T23:00:00Z"},
			want: seen{Method: "POST", Path: "/v1/apps/demo/messages", ContentType: jsonCT, Signed: true,
				Body: map[string]any{"messageId": "m-1", "type": "message", "sender": map[string]any{"userId": "alice"},
					"conversation": map[string]any{"type": "group", "id": "g1"}, "recipients": []any{"bob"},
					"push": map[string]any{"content": "hi"}, "dryRun": true, "explain": true, "evaluateAt": "2026-11-22T23:00:00Z"}},
		},
		{
			name:  "send without flags sends the body untouched",
			args:  []string{"send", "-"},
			stdin: `{"messageId": "m-2"`,
			want: seen{Method: "POST", Path: "/v1/apps/demo/messages", ContentType: jsonCT, Signed: true,
				Body: `not JSON: {"messageId": "m-2"`},
		},
		{
			name: "health is not signed",
			args: []string{"health"},
			want: seen{Method: "GET", Path: "/v1/health"},
		},
		{
			name: "request with a query and flags after the arguments",
			args: []string{"request", "delete", "/v1/apps/demo/users/bob/devices/phone-1?reason=kicked", "--app", "demo"},
			want: seen{Method: "DELETE", Path: "/v1/apps/demo/users/bob/devices/phone-1", Query: "reason=kicked", Signed: true},
		},
		{
			name: "request keeps the path's escaping as given",
			args: []string{"request", "GET", "/v1/apps/demo/users/b%6Fb/devices"},
			want: seen{Method: "GET", Path: "/v1/apps/demo/users/b%6Fb/devices", Signed: true},
		},
		{
			name:  "request with a body from standard input",
			args:  []string{"request", "POST", "/v1/apps/demo/presence/batch", "-"},
			stdin: `{"updates":[]}`,
			want: seen{Method: "POST", Path: "/v1/apps/demo/presence/batch", ContentType: jsonCT, Signed: true,
				Body: map[string]any{"updates": []any{}}},
		},
		{
			name: "global flags before the command",
			args: []string{"--app", "demo", "--secret", testSecret, "badge", "--user", "u1", "--count", "3"},
			want: seen{Method: "PUT", Path: "/v1/apps/demo/users/u1/badge", ContentType: jsonCT, Signed: true,
				Body: map[string]any{"count": 3.0}},
		},
	}
	f := newFakeService(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runCLI(t, envFor(f), tt.stdin, tt.args...)
			if res.code != exitOK {
				t.Fatalf("exit code = %d, want 0; stderr: %s", res.code, res.stderr)
			}
			got := f.take(t)
			if diff := cmp.Diff([]seen{tt.want}, got); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			if want := "HTTP/1.1 200 OK\n"; res.stderr != want {
				t.Errorf("stderr = %q, want %q", res.stderr, want)
			}
			if want := "{\n  \"ok\": true,\n  \"n\": [\n    1,\n    2\n  ]\n}\n"; res.stdout != want {
				t.Errorf("stdout = %q, want %q", res.stdout, want)
			}
		})
	}
}

func TestStagePrefixIsSentButNotSigned(t *testing.T) {
	f := newFakeService(t)
	f.stage = "/prod"
	env := envFor(f)
	env["PUSH_URL"] = f.URL + "/prod/"
	res := runCLI(t, env, "", "device", "list", "--user", "bob")
	if res.code != exitOK {
		t.Fatalf("exit code = %d, want 0; stderr: %s", res.code, res.stderr)
	}
	got := f.take(t)
	if len(got) != 1 || got[0].Path != "/prod/v1/apps/demo/users/bob/devices" {
		t.Errorf("requests = %+v, want one to /prod/v1/apps/demo/users/bob/devices", got)
	}
}

func TestErrorAnswers(t *testing.T) {
	tests := []struct {
		status     int
		answer     string
		wantCode   int
		wantStderr string
		wantStdout string
	}{
		{400, `{"error":{"code":"invalid_argument","message":"bad","field":"token"}}`, exitFail, "HTTP/1.1 400 Bad Request\n",
			"{\n  \"error\": {\n    \"code\": \"invalid_argument\",\n    \"message\": \"bad\",\n    \"field\": \"token\"\n  }\n}\n"},
		{401, `{"error":{"code":"unauthenticated","message":"no"}}`, exitFail, "HTTP/1.1 401 Unauthorized\n",
			"{\n  \"error\": {\n    \"code\": \"unauthenticated\",\n    \"message\": \"no\"\n  }\n}\n"},
		{500, `oops`, exitFail, "HTTP/1.1 500 Internal Server Error\n", "oops\n"},
		{204, ``, exitOK, "HTTP/1.1 204 No Content\n", ""},
		{202, `{}`, exitOK, "HTTP/1.1 202 Accepted\n", "{}\n"},
	}
	f := newFakeService(t)
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			f.status, f.answer = tt.status, tt.answer
			res := runCLI(t, envFor(f), "", "device", "delete", "--user", "bob", "--device", "d1")
			f.take(t)
			if res.code != tt.wantCode {
				t.Errorf("exit code = %d, want %d", res.code, tt.wantCode)
			}
			if res.stderr != tt.wantStderr {
				t.Errorf("stderr = %q, want %q", res.stderr, tt.wantStderr)
			}
			if res.stdout != tt.wantStdout {
				t.Errorf("stdout = %q, want %q", res.stdout, tt.wantStdout)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	f := newFakeService(t)
	tests := []struct {
		name       string
		args       []string
		wantStderr string // a substring
	}{
		{"no command", nil, "Usage: pushctl"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"unknown flag", []string{"device", "list", "--user", "bob", "--colour", "red"}, "flag provided but not defined: -colour"},
		{"missing user", []string{"device", "list"}, "--user is required"},
		{"missing device", []string{"device", "put", "--user", "bob"}, "--device is required"},
		{"missing subcommand", []string{"device"}, "device needs one of: put, delete, list"},
		{"unknown subcommand", []string{"settings", "put", "--user", "bob"}, `unknown subcommand "put"`},
		{"stray argument", []string{"device", "list", "--user", "bob", "extra"}, `unexpected argument "extra"`},
		{"request arity", []string{"request", "GET"}, "request takes METHOD PATH"},
		{"two bodies", []string{"request", "POST", "/v1/x", "--data", "{}", "-"}, "give the body once"},
		{"relative path", []string{"request", "GET", "v1/health"}, "must start with a single /"},
		{"bad integer", []string{"badge", "--user", "bob", "--count", "many"}, `not an integer: "many"`},
		{"missing count", []string{"badge", "--user", "bob"}, "--count is required"},
		{"patch without body", []string{"settings", "patch", "--user", "bob"}, "needs a JSON merge patch"},
		{"send without message", []string{"send", "--dry-run"}, "send needs the message"},
		{"bad url", []string{"--url", "ftp://x", "health"}, "is not an http(s) URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runCLI(t, envFor(f), "", tt.args...)
			if res.code != exitUsage {
				t.Errorf("exit code = %d, want %d", res.code, exitUsage)
			}
			if !strings.Contains(res.stderr, tt.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", res.stderr, tt.wantStderr)
			}
		})
	}
	if got := f.take(t); len(got) != 0 {
		t.Errorf("the service got %d requests, want none", len(got))
	}
}

func TestSendRejectsNonObjectWithFlags(t *testing.T) {
	f := newFakeService(t)
	res := runCLI(t, envFor(f), "[1,2]", "send", "-", "--dry-run")
	if res.code != exitFail || !strings.Contains(res.stderr, "must be a JSON object") {
		t.Errorf("exit %d, stderr %q; want 1 and a message that the message must be a JSON object", res.code, res.stderr)
	}
	if got := f.take(t); len(got) != 0 {
		t.Errorf("the service got %d requests, want none", len(got))
	}
}

func TestUnreachableService(t *testing.T) {
	f := newFakeService(t)
	env := envFor(f)
	f.Close() // nothing listens there any more
	res := runCLI(t, env, "", "health")
	if res.code != exitFail || !strings.Contains(res.stderr, "send GET /v1/health") {
		t.Errorf("exit %d, stderr %q; want 1 and the failed request named", res.code, res.stderr)
	}
}

func TestCredentials(t *testing.T) {
	oneApp := writeFile(t, "one.json", `{"apps":{"demo":{"apiSecrets":["first","second"],"vendors":{}}}}`)
	twoApps := writeFile(t, "two.json", `{"apps":{"demo":{"apiSecrets":["d1"]},"other":{"apiSecrets":["o1"]}}}`)
	noSecrets := writeFile(t, "none.json", `{"apps":{"demo":{"apiSecrets":[]}}}`)
	broken := writeFile(t, "broken.json", `{"apps":`)
	missing := filepath.Join(t.TempDir(), "missing.json")
	tests := []struct {
		name       string
		env        map[string]string
		pathApp    string
		wantApp    string
		wantSecret string
		wantErr    string
	}{
		{"flags or env win", map[string]string{"PUSH_APP": "x", "PUSH_SECRET": "y", "PUSH_LOCAL_CONFIG": missing}, "demo", "x", "y", ""},
		{"only app in config", map[string]string{"PUSH_LOCAL_CONFIG": oneApp}, "", "demo", "first", ""},
		{"secret of the given app", map[string]string{"PUSH_LOCAL_CONFIG": twoApps, "PUSH_APP": "other"}, "", "other", "o1", ""},
		{"app from the path", map[string]string{"PUSH_LOCAL_CONFIG": twoApps}, "other", "other", "o1", ""},
		{"explicit secret, app from config", map[string]string{"PUSH_LOCAL_CONFIG": oneApp, "PUSH_SECRET": "mine"}, "", "demo", "mine", ""},
		{"several apps, none chosen", map[string]string{"PUSH_LOCAL_CONFIG": twoApps}, "", "", "", "holds 2 apps (demo, other); choose one with --app"},
		{"app not in config", map[string]string{"PUSH_LOCAL_CONFIG": oneApp, "PUSH_APP": "nope"}, "", "", "", `has no apiSecrets for app "nope"`},
		{"app without secrets", map[string]string{"PUSH_LOCAL_CONFIG": noSecrets}, "", "", "", `has no apiSecrets for app "demo"`},
		{"config missing", map[string]string{"PUSH_LOCAL_CONFIG": missing}, "", "", "", "does not exist"},
		{"config broken", map[string]string{"PUSH_LOCAL_CONFIG": broken}, "", "", "", "parse the local config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &cli{getenv: func(k string) string { return tt.env[k] }}
			c.g = globals{app: tt.env["PUSH_APP"], secret: tt.env["PUSH_SECRET"]}
			app, secret, err := c.credentials(tt.pathApp)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if app != tt.wantApp || secret != tt.wantSecret {
				t.Errorf("credentials = (%q, %q), want (%q, %q)", app, secret, tt.wantApp, tt.wantSecret)
			}
		})
	}
}

func TestLocalConfigDrivesARequest(t *testing.T) {
	f := newFakeService(t)
	cfg := writeFile(t, "local.json", `{"apps":{"demo":{"apiSecrets":["`+testSecret+`"]}}}`)
	res := runCLI(t, map[string]string{"PUSH_URL": f.URL, "PUSH_LOCAL_CONFIG": cfg}, "", "device", "list", "--user", "bob")
	if res.code != exitOK {
		t.Fatalf("exit code = %d, want 0; stderr: %s", res.code, res.stderr)
	}
	got := f.take(t)
	if len(got) != 1 || got[0].Path != "/v1/apps/demo/users/bob/devices" || !got[0].Signed {
		t.Errorf("requests = %+v, want one signed GET of bob's devices", got)
	}
}

func TestSignEvent(t *testing.T) {
	body := `{"vendor":"apns","token":"` + apnsToken + `","certName":"ios-prod"}`
	tests := []struct {
		name     string
		event    map[string]any
		wantBody []byte
	}{
		{
			name: "plain body, stale headers replaced",
			event: map[string]any{
				"version": "2.0", "routeKey": "$default",
				"rawPath": "/v1/apps/demo/users/bob/devices/phone-1", "rawQueryString": "",
				"headers": map[string]any{"content-type": "application/json", "X-Push-Nonce": "stale-nonce-123", "x-push-signature": "00"},
				"requestContext": map[string]any{
					"http":      map[string]any{"method": "PUT", "path": "/v1/apps/demo/users/bob/devices/phone-1"},
					"timeEpoch": 1600000000000, "time": "13/Sep/2020:12:26:40 +0000", "requestId": "r-1",
				},
				"body": body, "isBase64Encoded": false,
			},
			wantBody: []byte(body),
		},
		{
			name: "base64 body and a query",
			event: map[string]any{
				"version": "2.0", "routeKey": "$default",
				"rawPath": "/v1/apps/demo/users/bob/devices/phone-1", "rawQueryString": "reason=logout",
				"requestContext": map[string]any{"http": map[string]any{"method": "delete"}},
				"body":           base64.StdEncoding.EncodeToString([]byte("raw\x00bytes")), "isBase64Encoded": true,
			},
			wantBody: []byte("raw\x00bytes"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := json.Marshal(tt.event)
			if err != nil {
				t.Fatal(err)
			}
			file := writeFile(t, "event.json", string(raw))
			res := runCLI(t, map[string]string{"PUSH_APP": testApp, "PUSH_SECRET": testSecret}, "", "sign-event", file)
			if res.code != exitOK {
				t.Fatalf("exit code = %d, want 0; stderr: %s", res.code, res.stderr)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(res.stdout), &got); err != nil {
				t.Fatalf("output is not JSON: %v", err)
			}
			headers := http.Header{}
			for k, v := range got["headers"].(map[string]any) {
				if k != strings.ToLower(k) {
					t.Errorf("header %q is not lower case, as API Gateway v2 delivers it", k)
				}
				headers.Add(k, v.(string))
			}
			if n := len(headers.Values("X-Push-Nonce")); n != 1 {
				t.Errorf("%d nonce headers, want 1", n)
			}
			rc := tt.event["requestContext"].(map[string]any)
			method := strings.ToUpper(rc["http"].(map[string]any)["method"].(string))
			if msg := checkSignature(headers, testSecret, method, tt.event["rawPath"].(string), tt.event["rawQueryString"].(string), tt.wantBody, fixedNow); msg != "" {
				t.Error(msg)
			}
			// Everything but the headers and the request time is as it was.
			want := decodeJSON(t, string(raw)).(map[string]any)
			if h, ok := want["headers"].(map[string]any); ok {
				for k := range h {
					if strings.HasPrefix(strings.ToLower(k), "x-push-") {
						delete(h, k)
					}
				}
			}
			wantRC := want["requestContext"].(map[string]any)
			if _, ok := wantRC["timeEpoch"]; ok {
				wantRC["timeEpoch"] = float64(fixedNow.UnixMilli())
				wantRC["time"] = "22/Nov/2026:10:00:00 +0000"
			}
			gotHeaders := got["headers"].(map[string]any)
			for _, k := range []string{"x-push-timestamp", "x-push-nonce", "x-push-signature"} {
				delete(gotHeaders, k)
			}
			if len(gotHeaders) == 0 && want["headers"] == nil {
				delete(got, "headers")
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("event (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSignEventWrite(t *testing.T) {
	file := writeFile(t, "event.json", `{"rawPath":"/v1/apps/demo/users/bob/devices","requestContext":{"http":{"method":"GET"}}}`)
	res := runCLI(t, map[string]string{"PUSH_APP": testApp, "PUSH_SECRET": testSecret}, "", "sign-event", "--write", file)
	if res.code != exitOK {
		t.Fatalf("exit code = %d, want 0; stderr: %s", res.code, res.stderr)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != res.stdout {
		t.Errorf("file = %s, want what was printed: %s", b, res.stdout)
	}
}

func TestSignEventErrors(t *testing.T) {
	tests := []struct {
		name, event, want string
	}{
		{"not JSON", `{`, "parse the event"},
		{"not an object", `[]`, "parse the event"},
		{"not HTTP API", `{"path":"/v1/health","httpMethod":"GET"}`, "no rawPath"},
		{"no method", `{"rawPath":"/v1/health"}`, "no requestContext.http.method"},
		{"bad base64", `{"rawPath":"/v1/x","requestContext":{"http":{"method":"POST"}},"body":"%%","isBase64Encoded":true}`, "not base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runCLI(t, map[string]string{"PUSH_APP": testApp, "PUSH_SECRET": testSecret}, tt.event, "sign-event", "-")
			if res.code != exitFail || !strings.Contains(res.stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", res.code, res.stderr, tt.want)
			}
		})
	}
}

// TestSignEventKeepsLayout checks that a rewritten sample changes only what
// must change: member order and the bytes of every other value stay, so a
// committed event rewritten with --write gives a small diff.
func TestSignEventKeepsLayout(t *testing.T) {
	in := `{
  "version": "2.0",
  "rawPath": "/v1/apps/demo/users/bob/devices/d1",
  "rawQueryString": "",
  "headers": {
    "x-push-timestamp": "1700000000",
    "host": "api.example.com",
    "X-Push-Nonce": "resign-me-0001"
  },
  "requestContext": {
    "http": {
      "method": "PUT"
    },
    "time": "14/Nov/2023:22:13:20 +0000",
    "timeEpoch": 1700000000000
  },
  "body": "{\"note\": \"<a & b>\", \"n\": 1.50}",
  "isBase64Encoded": false
}
`
	res := runCLI(t, map[string]string{"PUSH_APP": testApp, "PUSH_SECRET": testSecret}, in, "sign-event", "-")
	if res.code != exitOK {
		t.Fatalf("exit code = %d, want 0; stderr: %s", res.code, res.stderr)
	}
	got, err := parseObject([]byte(res.stdout))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"version", "rawPath", "rawQueryString", "headers", "requestContext", "body", "isBase64Encoded"}, got.keys); diff != "" {
		t.Errorf("member order (-want +got):\n%s", diff)
	}
	if want := `"{\"note\": \"<a & b>\", \"n\": 1.50}"`; string(got.vals["body"]) != want {
		t.Errorf("body = %s, want the bytes unchanged: %s", got.vals["body"], want)
	}
	headers, err := got.object("headers")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"x-push-timestamp", "host", "x-push-nonce", "x-push-signature"}, headers.keys); diff != "" {
		t.Errorf("header order (-want +got):\n%s", diff)
	}
	rc, err := got.object("requestContext")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"http", "time", "timeEpoch"}, rc.keys); diff != "" {
		t.Errorf("requestContext order (-want +got):\n%s", diff)
	}
	if want := strconv.FormatInt(fixedNow.UnixMilli(), 10); string(rc.vals["timeEpoch"]) != want {
		t.Errorf("timeEpoch = %s, want %s", rc.vals["timeEpoch"], want)
	}
}
