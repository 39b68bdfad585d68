package vivoemu_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	vivoemu "github.com/offline-push/offline-push/shared/emulator/vivo"
)

var now = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

const (
	appID  = 10001
	appKey = "key"
	secret = "secret"
)

type answer struct {
	Result       int    `json:"result"`
	Desc         string `json:"desc"`
	AuthToken    string `json:"authToken"`
	TaskID       string `json:"taskId"`
	InvalidUser  *vivoemu.InvalidUser
	InvalidUsers []vivoemu.InvalidUser `json:"invalidUsers"`
}

func start(t *testing.T, opts vivoemu.Options) *vivoemu.Server {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return now }
	}
	s, err := vivoemu.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	s.AddApp(appID, appKey, secret)
	return s
}

func post(t *testing.T, s *vivoemu.Server, path, tok string, body any) (int, answer) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, s.URL+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("authToken", tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a answer
	json.NewDecoder(resp.Body).Decode(&a)
	return resp.StatusCode, a
}

func authBody(at time.Time, sec string) map[string]any {
	ts := at.UnixMilli()
	sum := md5.Sum([]byte(strconv.Itoa(appID) + appKey + strconv.FormatInt(ts, 10) + sec))
	return map[string]any{"appId": appID, "appKey": appKey, "timestamp": ts, "sign": hex.EncodeToString(sum[:])}
}

func token(t *testing.T, s *vivoemu.Server) string {
	t.Helper()
	_, a := post(t, s, vivoemu.AuthPath, "", authBody(now, secret))
	if a.Result != 0 || a.AuthToken == "" {
		t.Fatalf("auth = %+v", a)
	}
	return a.AuthToken
}

func TestAuth(t *testing.T) {
	s := start(t, vivoemu.Options{})
	for _, tc := range []struct {
		name string
		body map[string]any
		want int
	}{
		{"valid", authBody(now, secret), 0},
		{"app id as a string", func() map[string]any { b := authBody(now, secret); b["appId"] = strconv.Itoa(appID); return b }(), 0},
		{"wrong secret", authBody(now, "other"), vivoemu.CodeBadSign},
		{"11 minutes ahead", authBody(now.Add(11*time.Minute), secret), vivoemu.CodeBadTimestamp},
		{"no app id", map[string]any{"appKey": appKey, "timestamp": 1, "sign": "x"}, vivoemu.CodeNoAppID},
		{"no app key", map[string]any{"appId": appID, "timestamp": 1, "sign": "x"}, vivoemu.CodeNoAppKey},
		{"unknown member", func() map[string]any { b := authBody(now, secret); b["appSecret"] = secret; return b }(), vivoemu.CodeBadParam},
		{"another app's key", func() map[string]any { b := authBody(now, secret); b["appKey"] = "nope"; return b }(), vivoemu.CodeUnknownApp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, a := post(t, s, vivoemu.AuthPath, "", tc.body); a.Result != tc.want {
				t.Errorf("result = %d (%s), want %d", a.Result, a.Desc, tc.want)
			}
		})
	}
}

func message(regID string, over map[string]any) map[string]any {
	m := map[string]any{
		"appId": appID, "regId": regID, "notifyType": 4, "title": "Team", "content": "lunch?",
		"timeToLive": 86400, "skipType": 1, "classification": 1, "category": "IM", "requestId": "r1",
	}
	for k, v := range over {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m
}

func TestSendChecks(t *testing.T) {
	s := start(t, vivoemu.Options{})
	tok := token(t, s)
	custom := map[string]string{}
	for i := range 11 {
		custom[fmt.Sprint(i)] = "v"
	}
	for _, tc := range []struct {
		name string
		body map[string]any
		want int
	}{
		{"valid", message("r", nil), 0},
		{"other app id", message("r", map[string]any{"appId": 10002}), vivoemu.CodeAppIDMismatch},
		{"snake_case member", message("r", map[string]any{"notify_id": 1}), vivoemu.CodeBadParam},
		{"20 Chinese characters", message("r", map[string]any{"title": strings.Repeat("标", 20)}), 0},
		{"21 Chinese characters", message("r", map[string]any{"title": strings.Repeat("标", 21)}), vivoemu.CodeBadParam},
		{"40 emoji count as 40", message("r", map[string]any{"title": strings.Repeat("👍", 40)}), 0},
		{"content of 51 Chinese characters", message("r", map[string]any{"content": strings.Repeat("文", 51)}), vivoemu.CodeBadParam},
		{"timeToLive 59", message("r", map[string]any{"timeToLive": 59}), vivoemu.CodeBadParam},
		{"timeToLive 86401", message("r", map[string]any{"timeToLive": 86401}), vivoemu.CodeBadParam},
		{"no requestId", message("r", map[string]any{"requestId": nil}), vivoemu.CodeBadParam},
		{"requestId of 65", message("r", map[string]any{"requestId": strings.Repeat("x", 65)}), vivoemu.CodeBadParam},
		{"unknown category", message("r", map[string]any{"category": "CHAT"}), vivoemu.CodeBadCategory},
		{"IM without classification 1", message("r", map[string]any{"classification": 0}), vivoemu.CodeCategoryClass},
		{"11 custom pairs", message("r", map[string]any{"clientCustomMap": custom}), vivoemu.CodeBadParam},
		{"custom longer than 1024", message("r", map[string]any{"clientCustomMap": map[string]string{"k": strings.Repeat("x", 1024)}}), vivoemu.CodeBadParam},
		{"no regId", message("", nil), vivoemu.CodeBadParam},
		{"skipType 4 without content", message("r", map[string]any{"skipType": 4}), vivoemu.CodeBadParam},
		{"notifyId over int32", message("r", map[string]any{"notifyId": int64(1) << 31}), vivoemu.CodeBadParam},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, a := post(t, s, vivoemu.SendPath, tok, tc.body); a.Result != tc.want {
				t.Errorf("result = %d (%s), want %d", a.Result, a.Desc, tc.want)
			}
		})
	}
	if _, a := post(t, s, vivoemu.SendPath, "", message("r", nil)); a.Result != vivoemu.CodeAuthFailed {
		t.Errorf("no authToken: result %d, want %d", a.Result, vivoemu.CodeAuthFailed)
	}
}

func TestListPush(t *testing.T) {
	s := start(t, vivoemu.Options{})
	tok := token(t, s)
	if _, a := post(t, s, vivoemu.SavePath, tok, message("r", nil)); a.Result != vivoemu.CodeBadParam {
		t.Errorf("a list payload with a regId: result %d", a.Result)
	}
	_, saved := post(t, s, vivoemu.SavePath, tok, message("", map[string]any{"regId": nil}))
	if saved.Result != 0 || saved.TaskID == "" {
		t.Fatalf("save = %+v", saved)
	}
	s.FailToken("dead", vivoemu.StatusUninstalled)
	list := func(ids ...string) answer {
		_, a := post(t, s, vivoemu.PushListPath, tok, map[string]any{"appId": appID, "regIds": ids, "taskId": saved.TaskID, "requestId": "r2"})
		return a
	}
	if a := list("only"); a.Result != vivoemu.CodeBadParam {
		t.Errorf("one regId: result %d, want %d", a.Result, vivoemu.CodeBadParam)
	}
	a := list("dead", "live")
	if a.Result != 0 || len(a.InvalidUsers) != 1 || a.InvalidUsers[0] != (vivoemu.InvalidUser{UserID: "dead", Status: vivoemu.StatusUninstalled}) {
		t.Errorf("list = %+v", a)
	}
	rec := s.Received()
	if len(rec) != 1 || rec[0].Token != "live" || !rec[0].List || rec[0].Message.Title != "Team" {
		t.Errorf("received = %+v", rec)
	}
	if _, a := post(t, s, vivoemu.PushListPath, tok, map[string]any{"appId": appID, "regIds": []string{"a", "b"}, "taskId": "nope", "requestId": "r3"}); a.Result != vivoemu.CodeBadParam {
		t.Errorf("unknown taskId: result %d", a.Result)
	}
}

func TestFaults(t *testing.T) {
	var printed bytes.Buffer
	clock := now
	s := start(t, vivoemu.Options{Printer: &printed, Now: func() time.Time { return clock }})
	tok := token(t, s)
	s.FailToken("dead-reg-123456", vivoemu.StatusUnknown)
	if _, a := post(t, s, vivoemu.SendPath, tok, message("dead-reg-123456", nil)); a.Result != vivoemu.CodeInvalidUser || a.InvalidUser == nil || a.InvalidUser.Status != vivoemu.StatusUnknown {
		t.Errorf("dead token: %+v", a)
	}
	if _, a := post(t, s, vivoemu.SendPath, tok, message("live-reg-654321", nil)); a.Result != 0 || a.TaskID == "" {
		t.Errorf("live token: %+v", a)
	}
	if p := printed.String(); strings.Count(p, "\n") != 1 || !strings.Contains(p, `"token":"654321"`) || strings.Contains(p, "live-reg") {
		t.Errorf("printed %q: want one line with the token's last 6 characters only", p)
	}
	s.FailNext(vivoemu.CodeDailyTotal, 1)
	if _, a := post(t, s, vivoemu.SendPath, tok, message("r", nil)); a.Result != vivoemu.CodeDailyTotal {
		t.Errorf("FailNext: %+v", a)
	}
	s.SetShares(vivoemu.Shares{TooManyRequests: 1})
	if status, _ := post(t, s, vivoemu.SendPath, tok, message("r", nil)); status != http.StatusTooManyRequests {
		t.Errorf("429 share: status %d", status)
	}
	s.SetShares(vivoemu.Shares{ServerError: 1})
	if status, _ := post(t, s, vivoemu.SendPath, tok, message("r", nil)); status != http.StatusInternalServerError {
		t.Errorf("500 share: status %d", status)
	}
	s.ClearFaults()
	s.ExpireTokens()
	if _, a := post(t, s, vivoemu.SendPath, tok, message("r", nil)); a.Result != vivoemu.CodeAuthFailed {
		t.Errorf("expired token: %+v", a)
	}
	tok = token(t, s)
	clock = now.Add(24 * time.Hour)
	if _, a := post(t, s, vivoemu.SendPath, tok, message("r", nil)); a.Result != vivoemu.CodeAuthFailed {
		t.Errorf("token after 24 h: %+v", a)
	}
	if m := s.Mints(); m != 2 {
		t.Errorf("Mints = %d, want 2", m)
	}
}

func TestWidth(t *testing.T) {
	for s, want := range map[string]int{"abc": 3, "标": 2, "👍": 1, "ｱ": 2, "。": 2, "é": 1} {
		if got := vivoemu.Width(s); got != want {
			t.Errorf("Width(%q) = %d, want %d", s, got, want)
		}
	}
}
