package honoremu_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	honoremu "github.com/offline-push/offline-push/shared/emulator/honor"
)

const (
	appID    = "104000002"
	clientID = "client-1"
	secret   = "s3cret"
)

func start(t *testing.T, opts honoremu.Options) *honoremu.Server {
	t.Helper()
	s, err := honoremu.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	s.AddApp(appID, clientID, secret)
	return s
}

func mint(t *testing.T, s *honoremu.Server, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(s.URL+"/auth/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("token answer is not JSON: %v", err)
	}
	return resp.StatusCode, m
}

func goodForm() url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}}
}

func accessToken(t *testing.T, s *honoremu.Server) string {
	t.Helper()
	status, m := mint(t, s, goodForm())
	if status != http.StatusOK {
		t.Fatalf("mint: %d %v", status, m)
	}
	return m["access_token"].(string)
}

type answer struct {
	Status int
	Code   float64
	Data   map[string]any
}

type request struct {
	app, bearer, timestamp, ctype, body string
}

func send(t *testing.T, s *honoremu.Server, r request) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+"/api/v1/"+r.app+"/sendMessage", strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if r.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+r.bearer)
	}
	if r.timestamp != "" {
		req.Header.Set("timestamp", r.timestamp)
	}
	req.Header.Set("Content-Type", r.ctype)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var b struct {
		Code float64        `json:"code"`
		Data map[string]any `json:"data"`
	}
	json.Unmarshal(raw, &b)
	return answer{resp.StatusCode, b.Code, b.Data}
}

func body(tokens []string, android, notification map[string]any) string {
	n := map[string]any{"title": "t", "body": "b", "clickAction": map[string]any{"type": 3}, "importance": "NORMAL"}
	for k, v := range notification {
		if v == nil {
			delete(n, k)
		} else {
			n[k] = v
		}
	}
	a := map[string]any{"ttl": "60s", "notification": n}
	for k, v := range android {
		a[k] = v
	}
	m := map[string]any{"data": `{"k":"v"}`, "android": a, "token": tokens}
	b, _ := json.Marshal(m)
	return string(b)
}

func TestToken(t *testing.T) {
	s := start(t, honoremu.Options{})
	for _, tc := range []struct {
		name       string
		form       url.Values
		wantStatus int
		wantError  string
	}{
		{"good", goodForm(), 200, ""},
		{"wrong secret", url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {"x"}}, 401, "invalid_client"},
		{"missing client", url.Values{"grant_type": {"client_credentials"}, "client_secret": {secret}}, 400, "invalid_request"},
		{"wrong grant", url.Values{"grant_type": {"password"}, "client_id": {clientID}, "client_secret": {secret}}, 400, "unsupported_grant_type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, m := mint(t, s, tc.form)
			if status != tc.wantStatus {
				t.Fatalf("status = %d, want %d (%v)", status, tc.wantStatus, m)
			}
			if tc.wantError != "" {
				if m["error"] != tc.wantError {
					t.Errorf("error = %v, want %v", m["error"], tc.wantError)
				}
				return
			}
			if m["expires_in"] != float64(3600) || m["token_type"] != "Bearer" || m["access_token"] == "" {
				t.Errorf("answer = %v, want a Bearer token for 3600 s", m)
			}
		})
	}
}

// TestChecks sends requests that break one documented rule each.
func TestChecks(t *testing.T) {
	base := time.Now()
	var offset atomic.Int64
	s := start(t, honoremu.Options{Now: func() time.Time { return base.Add(time.Duration(offset.Load())) }})
	s.AddApp("104000009", "client-9", "other")
	tok := accessToken(t, s)
	ms := strconv.FormatInt(base.UnixMilli(), 10)
	one := []string{"tok-1"}
	const ct = "application/json; charset=UTF-8"
	tooMany := make([]string, 1001)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf("tok-%d", i)
	}
	ok := func(b string) request { return request{appID, tok, ms, ct, b} }
	for _, tc := range []struct {
		name string
		req  request
		want answer
	}{
		{"accepted", ok(body(one, nil, nil)), answer{200, 200, nil}},
		{"no bearer", request{appID, "", ms, ct, body(one, nil, nil)}, answer{401, 80200001, nil}},
		{"unknown bearer", request{appID, "nope", ms, ct, body(one, nil, nil)}, answer{401, 80200001, nil}},
		{"another client's app", request{"104000009", tok, ms, ct, body(one, nil, nil)}, answer{401, 80200001, nil}},
		{"no timestamp", request{appID, tok, "", ct, body(one, nil, nil)}, answer{400, 80100001, nil}},
		{"timestamp in seconds", request{appID, tok, strconv.FormatInt(base.Unix(), 10), ct, body(one, nil, nil)}, answer{400, 80100001, nil}},
		{"not JSON content", request{appID, tok, ms, "text/plain", body(one, nil, nil)}, answer{400, 80100001, nil}},
		{"snake_case member", ok(body(one, nil, map[string]any{"click_action": map[string]any{"type": 3}})), answer{400, 80100003, nil}},
		{"no clickAction", ok(body(one, nil, map[string]any{"clickAction": nil})), answer{400, 80100003, nil}},
		{"no tokens", ok(body([]string{}, nil, nil)), answer{400, 80300010, nil}},
		{"1001 tokens", ok(body(tooMany, nil, nil)), answer{400, 80300010, nil}},
		{"bad ttl", ok(body(one, map[string]any{"ttl": "1d"}, nil)), answer{400, 80100004, nil}},
		{"importance HIGH", ok(body(one, nil, map[string]any{"importance": "HIGH"})), answer{400, 80100001, nil}},
		{"badge without class", ok(body(one, nil, map[string]any{"badge": map[string]any{"addNum": 1}})), answer{400, 80100003, nil}},
		{"data not JSON", ok(strings.Replace(body(one, nil, nil), `{\"k\":\"v\"}`, "plain", 1)), answer{400, 80100003, nil}},
		{"message over 4096 bytes", ok(body(one, nil, map[string]any{"body": strings.Repeat("x", 4100)})), answer{400, 80300008, nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := send(t, s, tc.req)
			got.Data = nil
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
	offset.Store(int64(time.Hour))
	if got := send(t, s, ok(body(one, nil, nil))); got.Status != 401 || got.Code != 80200003 {
		t.Errorf("after an hour: %+v, want 401 80200003", got)
	}
}

// TestFaults checks the fault controls and what the emulator records and
// prints.
func TestFaults(t *testing.T) {
	var printed bytes.Buffer
	s := start(t, honoremu.Options{Printer: &printed, Seed: 1})
	tok := accessToken(t, s)
	ms := strconv.FormatInt(time.Now().UnixMilli(), 10)
	req := func(tokens ...string) request {
		return request{appID, tok, ms, "application/json", body(tokens, nil, nil)}
	}
	s.FailToken("gone-1", honoremu.Expired)
	s.FailToken("busy-1", honoremu.Failed)

	got := send(t, s, req("live-123456", "gone-1", "busy-1"))
	want := map[string]any{"expireTokens": []any{"gone-1"}, "failTokens": []any{"busy-1"}, "sendResult": true}
	delete(got.Data, "requestId")
	if diff := cmp.Diff(want, got.Data); diff != "" || got.Code != 200 {
		t.Errorf("mixed answer %v (-want +got data):\n%s", got.Code, diff)
	}
	got = send(t, s, req("gone-1"))
	if got.Code != 200 || got.Data["sendResult"] != false {
		t.Errorf("only an expired token: %+v, want code 200 with sendResult false", got)
	}
	s.FailNext(1, honoremu.Reply{Status: 503})
	if got := send(t, s, req("live-123456")); got.Status != 503 {
		t.Errorf("FailNext 503: %+v", got)
	}
	s.SetShares(honoremu.Shares{Internal: 1})
	if got := send(t, s, req("live-123456")); got.Status != 500 {
		t.Errorf("internal share 1: %+v", got)
	}
	s.ClearFaults()
	s.ExpireAccessTokens()
	if got := send(t, s, req("live-123456")); got.Status != 401 || got.Code != 80200003 {
		t.Errorf("expired token: %+v", got)
	}

	if diff := cmp.Diff(map[string]int{"live-123456": 1}, s.Delivered()); diff != "" {
		t.Errorf("delivered (-want +got):\n%s", diff)
	}
	lines := strings.Split(strings.TrimSpace(printed.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("printed %d lines, want 1: %q", len(lines), printed.String())
	}
	var line map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &line); err != nil {
		t.Fatal(err)
	}
	if line["token"] != "123456" || line["emulator"] != "honor" || strings.Contains(lines[0], "live-") {
		t.Errorf("printed %s, want the token's last 6 characters only", lines[0])
	}
}
