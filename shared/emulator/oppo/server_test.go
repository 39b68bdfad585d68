package oppoemu_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	oppoemu "github.com/offline-push/offline-push/shared/emulator/oppo"
)

var now = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

type answer struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
}

func start(t *testing.T, opts oppoemu.Options) *oppoemu.Server {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return now }
	}
	s, err := oppoemu.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	s.AddApp("key", "secret")
	return s
}

func post(t *testing.T, s *oppoemu.Server, path string, form url.Values) answer {
	t.Helper()
	resp, err := http.Post(s.URL+path, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a answer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	return a
}

func sign(key, ts, secret string) string {
	sum := sha256.Sum256([]byte(key + ts + secret))
	return hex.EncodeToString(sum[:])
}

func authForm(at time.Time, secret string) url.Values {
	ts := strconv.FormatInt(at.UnixMilli(), 10)
	return url.Values{"app_key": {"key"}, "timestamp": {ts}, "sign": {sign("key", ts, secret)}}
}

func token(t *testing.T, s *oppoemu.Server) string {
	t.Helper()
	a := post(t, s, oppoemu.AuthPath, authForm(now, "secret"))
	var d struct {
		AuthToken  string `json:"auth_token"`
		CreateTime int64  `json:"create_time"`
	}
	if a.Code != 0 || json.Unmarshal(a.Data, &d) != nil || d.AuthToken == "" || d.CreateTime != now.UnixMilli() {
		t.Fatalf("auth answer = %+v", a)
	}
	return d.AuthToken
}

func TestAuth(t *testing.T) {
	s := start(t, oppoemu.Options{})
	for _, tc := range []struct {
		name string
		form url.Values
		want int
	}{
		{"valid", authForm(now, "secret"), 0},
		{"upper-case hex accepted", func() url.Values {
			f := authForm(now, "secret")
			f.Set("sign", strings.ToUpper(f.Get("sign")))
			return f
		}(), 0},
		{"wrong secret", authForm(now, "other"), oppoemu.CodeInvalidSign},
		{"timestamp 11 minutes old", authForm(now.Add(-11*time.Minute), "secret"), oppoemu.CodeInvalidTime},
		{"timestamp in seconds", url.Values{"app_key": {"key"}, "timestamp": {"1795000000"}, "sign": {sign("key", "1795000000", "secret")}}, oppoemu.CodeInvalidTime},
		{"unknown app", url.Values{"app_key": {"nope"}, "timestamp": {"1"}, "sign": {"x"}}, oppoemu.CodeInvalidAppKey},
		{"no app key", url.Values{"timestamp": {"1"}, "sign": {"x"}}, oppoemu.CodeMissingAppKey},
		{"no timestamp", url.Values{"app_key": {"key"}, "sign": {"x"}}, oppoemu.CodeMissingTime},
		{"no sign", url.Values{"app_key": {"key"}, "timestamp": {"1"}}, oppoemu.CodeMissingSign},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := post(t, s, oppoemu.AuthPath, tc.form); got.Code != tc.want {
				t.Errorf("code = %d (%s), want %d", got.Code, got.Message, tc.want)
			}
		})
	}
}

func TestAuthNeedsAForm(t *testing.T) {
	s := start(t, oppoemu.Options{})
	resp, err := http.Post(s.URL+oppoemu.AuthPath, "application/json", strings.NewReader(`{"app_key":"key"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a answer
	json.NewDecoder(resp.Body).Decode(&a)
	if a.Code != oppoemu.CodeMissingArgs {
		t.Errorf("code = %d, want %d for a JSON body", a.Code, oppoemu.CodeMissingArgs)
	}
	r, err := http.Get(s.URL + oppoemu.AuthPath)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	json.NewDecoder(r.Body).Decode(&a)
	if a.Code != oppoemu.CodeWrongMethod {
		t.Errorf("GET answered code %d, want %d", a.Code, oppoemu.CodeWrongMethod)
	}
}

func message(regID string, n map[string]any) map[string]any {
	note := map[string]any{"title": "Team", "content": "lunch?", "channel_id": "im", "category": "IM"}
	for k, v := range n {
		if v == nil {
			delete(note, k)
		} else {
			note[k] = v
		}
	}
	return map[string]any{"target_type": 2, "target_value": regID, "notification": note}
}

func batch(t *testing.T, s *oppoemu.Server, tok string, msgs ...map[string]any) answer {
	t.Helper()
	b, err := json.Marshal(msgs)
	if err != nil {
		t.Fatal(err)
	}
	return post(t, s, oppoemu.BatchPath, url.Values{"auth_token": {tok}, "messages": {string(b)}})
}

func TestBatchChecks(t *testing.T) {
	s := start(t, oppoemu.Options{})
	tok := token(t, s)
	many := make([]map[string]any, 1001)
	for i := range many {
		many[i] = message(fmt.Sprintf("r%d", i), nil)
	}
	for _, tc := range []struct {
		name string
		msgs []map[string]any
		want int
	}{
		{"valid", []map[string]any{message("r1", nil)}, 0},
		{"camelCase member", []map[string]any{message("r1", map[string]any{"channelId": "im"})}, oppoemu.CodeInvalidArgs},
		{"notification as a string", []map[string]any{{"target_type": 2, "target_value": "r1", "notification": `{"title":"a"}`}}, oppoemu.CodeInvalidArgs},
		{"no title", []map[string]any{message("r1", map[string]any{"title": nil})}, oppoemu.CodeMissingArgs},
		{"no content", []map[string]any{message("r1", map[string]any{"content": nil})}, oppoemu.CodeMissingArgs},
		{"title of 51 characters", []map[string]any{message("r1", map[string]any{"title": strings.Repeat("标", 51)})}, oppoemu.CodeInvalidArgs},
		{"title of 50 emoji", []map[string]any{message("r1", map[string]any{"title": strings.Repeat("👍", 50)})}, 0},
		{"content of 51 characters", []map[string]any{message("r1", map[string]any{"content": strings.Repeat("x", 51)})}, oppoemu.CodeInvalidArgs},
		{"long text style takes 128", []map[string]any{message("r1", map[string]any{"style": 2, "content": strings.Repeat("x", 128)})}, 0},
		{"action_parameters not JSON", []map[string]any{message("r1", map[string]any{"action_parameters": "k=v"})}, oppoemu.CodeInvalidArgs},
		{"unknown category", []map[string]any{message("r1", map[string]any{"category": "CHAT"})}, oppoemu.CodeCategory},
		{"notify_level without category", []map[string]any{message("r1", map[string]any{"category": nil, "notify_level": 2})}, oppoemu.CodeCategory},
		{"target type 1", []map[string]any{{"target_type": 1, "target_value": "r1", "notification": map[string]any{"title": "a", "content": "b"}}}, oppoemu.CodeInvalidArgs},
		{"two targets in one message", []map[string]any{message("r1,r2", nil)}, oppoemu.CodeInvalidArgs},
		{"activity click without activity", []map[string]any{message("r1", map[string]any{"click_action_type": 4})}, oppoemu.CodeMissingArgs},
		{"1001 messages", many, oppoemu.CodeInvalidArgs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := batch(t, s, tok, tc.msgs...); got.Code != tc.want {
				t.Errorf("code = %d (%s), want %d", got.Code, got.Message, tc.want)
			}
		})
	}
	if got := post(t, s, oppoemu.BatchPath, url.Values{"auth_token": {tok}}); got.Code != oppoemu.CodeMissingArgs {
		t.Errorf("no messages: code %d, want %d", got.Code, oppoemu.CodeMissingArgs)
	}
	if got := batch(t, s, "", message("r1", nil)); got.Code != oppoemu.CodeMissingToken {
		t.Errorf("no auth_token: code %d, want %d", got.Code, oppoemu.CodeMissingToken)
	}
	if got := batch(t, s, "made-up", message("r1", nil)); got.Code != oppoemu.CodeInvalidToken {
		t.Errorf("unknown auth_token: code %d, want %d", got.Code, oppoemu.CodeInvalidToken)
	}
}

func TestTokenLifetime(t *testing.T) {
	clock := now
	s := start(t, oppoemu.Options{Now: func() time.Time { return clock }})
	tok := token(t, s)
	clock = now.Add(24*time.Hour - time.Second)
	if got := batch(t, s, tok, message("r1", nil)); got.Code != 0 {
		t.Errorf("just before 24 h: code %d, want 0", got.Code)
	}
	clock = now.Add(24 * time.Hour)
	if got := batch(t, s, tok, message("r2", nil)); got.Code != oppoemu.CodeInvalidToken {
		t.Errorf("after 24 h: code %d, want %d", got.Code, oppoemu.CodeInvalidToken)
	}
	clock = now
	tok = token(t, s)
	s.ExpireTokens()
	if got := batch(t, s, tok, message("r3", nil)); got.Code != oppoemu.CodeInvalidToken {
		t.Errorf("after ExpireTokens: code %d, want %d", got.Code, oppoemu.CodeInvalidToken)
	}
	if m := s.Mints(); m != 2 {
		t.Errorf("Mints = %d, want 2", m)
	}
}

func TestFaultsAndRecords(t *testing.T) {
	var printed bytes.Buffer
	s := start(t, oppoemu.Options{Printer: &printed})
	tok := token(t, s)
	s.FailToken("dead-regid-123456", oppoemu.CodeInvalidRegID)
	a := batch(t, s, tok, message("dead-regid-123456", nil), message("live-regid-654321", map[string]any{"app_message_id": "a1"}))
	var items []struct {
		MessageID      string `json:"messageId"`
		RegistrationID string `json:"registrationId"`
		ErrorCode      int    `json:"errorCode"`
	}
	if a.Code != 0 || json.Unmarshal(a.Data, &items) != nil || len(items) != 2 {
		t.Fatalf("answer = %+v", a)
	}
	if items[0].ErrorCode != oppoemu.CodeInvalidRegID || items[1].ErrorCode != 0 || items[1].RegistrationID != "live-regid-654321" || items[1].MessageID == "" {
		t.Errorf("items = %+v", items)
	}
	// The same app_message_id to the same target is pushed once.
	batch(t, s, tok, message("live-regid-654321", map[string]any{"app_message_id": "a1"}))
	rec := s.Received()
	if len(rec) != 1 || rec[0].Token != "live-regid-654321" || rec[0].Notification.Title != "Team" {
		t.Fatalf("received = %+v", rec)
	}
	line := printed.String()
	if strings.Count(line, "\n") != 1 || !strings.Contains(line, `"token":"654321"`) || strings.Contains(line, "live-regid") {
		t.Errorf("printed %q: want one line with the last 6 characters of the token only", line)
	}

	s.FailNext(oppoemu.CodeDailyLimit, 1)
	if got := batch(t, s, tok, message("r", nil)); got.Code != oppoemu.CodeDailyLimit {
		t.Errorf("FailNext: code %d", got.Code)
	}
	if got := batch(t, s, tok, message("r", nil)); got.Code != 0 {
		t.Errorf("after FailNext ran out: code %d", got.Code)
	}
	s.SetShares(oppoemu.Shares{FlowControl: 1})
	if got := batch(t, s, tok, message("r", nil)); got.Code != oppoemu.CodeFlowControl {
		t.Errorf("flow control share: code %d", got.Code)
	}
	s.ClearFaults()
	if got := batch(t, s, tok, message("dead-regid-123456", nil)); got.Code != 0 || strings.Contains(string(got.Data), "errorCode") {
		t.Errorf("after ClearFaults: %+v", got)
	}
}

func TestSharesAreSeeded(t *testing.T) {
	run := func() []int {
		s := start(t, oppoemu.Options{Seed: 7})
		tok := token(t, s)
		s.SetShares(oppoemu.Shares{FlowControl: 0.3, Unavailable: 0.3})
		var codes []int
		for range 20 {
			codes = append(codes, batch(t, s, tok, message("r", nil)).Code)
		}
		return codes
	}
	a, b := run(), run()
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("same seed, different faults: %v vs %v", a, b)
	}
}
