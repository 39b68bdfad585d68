package huaweiemu_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	huaweiemu "github.com/offline-push/offline-push/shared/emulator/huawei"
)

const (
	appID  = "104000001"
	secret = "s3cret"
)

func start(t *testing.T, opts huaweiemu.Options) *huaweiemu.Server {
	t.Helper()
	s, err := huaweiemu.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	s.AddApp(appID, secret)
	return s
}

// mint asks the emulator for an access token as Huawei's OAuth server
// documents it, and returns the decoded answer and status.
func mint(t *testing.T, s *huaweiemu.Server, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(s.URL+"/oauth2/v3/token", form)
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
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {appID}, "client_secret": {secret}}
}

func accessToken(t *testing.T, s *huaweiemu.Server) string {
	t.Helper()
	status, m := mint(t, s, goodForm())
	if status != http.StatusOK {
		t.Fatalf("mint: %d %v", status, m)
	}
	return m["access_token"].(string)
}

type answer struct {
	Status int
	Code   string
	Msg    string
}

func send(t *testing.T, s *huaweiemu.Server, app, bearer, contentType, body string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+"/v1/"+app+"/messages:send", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r struct {
		Code string `json:"code"`
		Msg  string `json:"msg"`
	}
	json.Unmarshal(raw, &r)
	return answer{resp.StatusCode, r.Code, r.Msg}
}

// body returns a valid request body whose android.notification members are
// replaced or added by notification, and whose tokens are tokens.
func body(tokens []string, android map[string]any, notification map[string]any) string {
	n := map[string]any{"title": "t", "body": "b", "click_action": map[string]any{"type": 3}}
	for k, v := range notification {
		if v == nil {
			delete(n, k)
		} else {
			n[k] = v
		}
	}
	a := map[string]any{"category": "IM", "urgency": "NORMAL", "ttl": "60s", "notification": n}
	for k, v := range android {
		a[k] = v
	}
	m := map[string]any{"data": `{"k":"v"}`, "android": a}
	if tokens != nil {
		m["token"] = tokens
	}
	b, _ := json.Marshal(map[string]any{"validate_only": false, "message": m})
	return string(b)
}

func TestToken(t *testing.T) {
	s := start(t, huaweiemu.Options{})
	for _, tc := range []struct {
		name       string
		form       url.Values
		wantStatus int
		wantError  float64
	}{
		{"good", goodForm(), 200, 0},
		{"wrong secret", url.Values{"grant_type": {"client_credentials"}, "client_id": {appID}, "client_secret": {"x"}}, 400, 1101},
		{"unknown client", url.Values{"grant_type": {"client_credentials"}, "client_id": {"1"}, "client_secret": {secret}}, 400, 1101},
		{"missing secret", url.Values{"grant_type": {"client_credentials"}, "client_id": {appID}}, 400, 1102},
		{"wrong grant", url.Values{"grant_type": {"password"}, "client_id": {appID}, "client_secret": {secret}}, 400, 1102},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, m := mint(t, s, tc.form)
			if status != tc.wantStatus {
				t.Fatalf("status = %d, want %d (%v)", status, tc.wantStatus, m)
			}
			if tc.wantError != 0 {
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
	start0 := time.Now()
	var offset atomic.Int64 // read by the server's goroutines
	s := start(t, huaweiemu.Options{Now: func() time.Time { return start0.Add(time.Duration(offset.Load())) }})
	s.AddApp("104000002", "other")
	tok := accessToken(t, s)
	one := []string{"tok-1"}
	json := "application/json;charset=utf-8"
	tooMany := make([]string, 1001)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf("tok-%d", i)
	}
	for _, tc := range []struct {
		name        string
		app, bearer string
		ctype, body string
		want        answer
	}{
		{"accepted", appID, tok, json, body(one, nil, nil), answer{200, "80000000", "Success"}},
		{"no bearer", appID, "", json, body(one, nil, nil), answer{401, "80200001", ""}},
		{"unknown bearer", appID, "nope", json, body(one, nil, nil), answer{401, "80200001", ""}},
		{"another app's token", "104000002", tok, json, body(one, nil, nil), answer{401, "80200001", ""}},
		{"not JSON content", appID, tok, "text/plain", body(one, nil, nil), answer{400, "80100001", ""}},
		{"broken JSON", appID, tok, json, `{"message":`, answer{400, "80100003", ""}},
		{"camelCase member", appID, tok, json, body(one, nil, map[string]any{"clickAction": map[string]any{"type": 3}}), answer{400, "80100003", ""}},
		{"no click_action", appID, tok, json, body(one, nil, map[string]any{"click_action": nil}), answer{400, "80100003", ""}},
		{"no tokens", appID, tok, json, body([]string{}, nil, nil), answer{400, "80300010", ""}},
		{"1001 tokens", appID, tok, json, body(tooMany, nil, nil), answer{400, "80300010", ""}},
		{"no target", appID, tok, json, body(nil, nil, nil), answer{400, "80100001", ""}},
		{"bad ttl", appID, tok, json, body(one, map[string]any{"ttl": "1d"}, nil), answer{400, "80100004", ""}},
		{"ttl over 15 days", appID, tok, json, body(one, map[string]any{"ttl": "1296001s"}, nil), answer{400, "80100004", ""}},
		{"unknown category", appID, tok, json, body(one, map[string]any{"category": "CHAT"}, nil), answer{400, "80100001", ""}},
		{"bad urgency", appID, tok, json, body(one, map[string]any{"urgency": "URGENT"}, nil), answer{400, "80100001", ""}},
		{"collapse_key out of range", appID, tok, json, body(one, map[string]any{"collapse_key": 101}, nil), answer{400, "80100013", ""}},
		{"badge without class", appID, tok, json, body(one, nil, map[string]any{"badge": map[string]any{"add_num": 1}}), answer{400, "80100003", ""}},
		{"badge add_num 100", appID, tok, json, body(one, nil, map[string]any{"badge": map[string]any{"add_num": 100, "class": "a.B"}}), answer{400, "80100003", ""}},
		{"notify_id not int32", appID, tok, json, body(one, nil, map[string]any{"notify_id": 1 << 40}), answer{400, "80100001", ""}},
		{"no title or body", appID, tok, json, body(one, nil, map[string]any{"title": nil, "body": nil}), answer{400, "80100003", ""}},
		{"message over 4096 bytes", appID, tok, json, body(one, nil, map[string]any{"body": strings.Repeat("x", 4000)}), answer{400, "80300008", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := send(t, s, tc.app, tc.bearer, tc.ctype, tc.body)
			if tc.want.Msg == "" {
				got.Msg = ""
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
	// The size limit leaves the token list out: 1000 long tokens pass.
	long := make([]string, 1000)
	for i := range long {
		long[i] = fmt.Sprintf("%0130d", i)
	}
	if got := send(t, s, appID, tok, json, body(long, nil, nil)); got.Code != "80000000" {
		t.Errorf("1000 tokens of 130 chars: %+v, want accepted", got)
	}

	offset.Store(int64(time.Hour))
	if got := send(t, s, appID, tok, json, body(one, nil, nil)); got.Status != 401 || got.Code != "80200003" {
		t.Errorf("after an hour: %+v, want 401 80200003", got)
	}
}

// TestFaults checks the fault controls and what the emulator records and
// prints.
func TestFaults(t *testing.T) {
	var printed bytes.Buffer
	s := start(t, huaweiemu.Options{Printer: &printed, Seed: 1})
	tok := accessToken(t, s)
	const ct = "application/json"
	s.FailToken("dead-1")
	s.FailToken("dead-2")

	got := send(t, s, appID, tok, ct, body([]string{"live-123456", "dead-1"}, nil, nil))
	if got.Code != "80100000" {
		t.Fatalf("partial: %+v", got)
	}
	var msg struct {
		Success int      `json:"success"`
		Failure int      `json:"failure"`
		Illegal []string `json:"illegal_tokens"`
	}
	if err := json.Unmarshal([]byte(got.Msg), &msg); err != nil {
		t.Fatalf("msg is not JSON text: %v", err)
	}
	if diff := cmp.Diff([]string{"dead-1"}, msg.Illegal); diff != "" || msg.Success != 1 || msg.Failure != 1 {
		t.Errorf("msg = %+v, want 1 success, dead-1 illegal", msg)
	}
	if got := send(t, s, appID, tok, ct, body([]string{"dead-1", "dead-2"}, nil, nil)); got.Code != "80300007" || got.Status != 400 {
		t.Errorf("all dead: %+v, want 400 80300007", got)
	}
	s.FailNext(1, huaweiemu.Reply{Status: 503})
	if got := send(t, s, appID, tok, ct, body([]string{"live-123456"}, nil, nil)); got.Status != 503 {
		t.Errorf("FailNext 503: %+v", got)
	}
	s.SetShares(huaweiemu.Shares{Internal: 1})
	if got := send(t, s, appID, tok, ct, body([]string{"live-123456"}, nil, nil)); got.Code != "81000001" || got.Status != 500 {
		t.Errorf("internal share 1: %+v", got)
	}
	s.SetShares(huaweiemu.Shares{FlowControl: 1})
	if got := send(t, s, appID, tok, ct, body([]string{"live-123456"}, nil, nil)); got.Status != 503 {
		t.Errorf("flow control share 1: %+v", got)
	}
	s.ClearFaults()
	s.ExpireAccessTokens()
	if got := send(t, s, appID, tok, ct, body([]string{"live-123456"}, nil, nil)); got.Code != "80200003" {
		t.Errorf("expired token: %+v", got)
	}

	if diff := cmp.Diff(map[string]int{"live-123456": 1}, s.Delivered()); diff != "" {
		t.Errorf("delivered (-want +got):\n%s", diff)
	}
	if n := s.Requests(); n != 6 {
		t.Errorf("requests = %d, want 6", n)
	}
	lines := strings.Split(strings.TrimSpace(printed.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("printed %d lines, want 1: %q", len(lines), printed.String())
	}
	var line map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &line); err != nil {
		t.Fatal(err)
	}
	if line["token"] != "123456" || line["emulator"] != "huawei" || strings.Contains(lines[0], "live-") {
		t.Errorf("printed %s, want the token's last 6 characters only", lines[0])
	}
}
