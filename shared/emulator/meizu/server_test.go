package meizuemu_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	meizuemu "github.com/offline-push/offline-push/shared/emulator/meizu"
)

const (
	appID  = "100001"
	secret = "abcdef0123456789"
	path   = "/garcia/api/server/push/varnished/pushByPushId"
)

func start(t testing.TB, opts meizuemu.Options) *meizuemu.Server {
	t.Helper()
	s := meizuemu.New(opts)
	t.Cleanup(s.Close)
	s.AddApp(meizuemu.App{ID: appID, Secret: secret})
	return s
}

// testSign signs params the way this test reads Meizu's README; it is the
// test's own copy, so that it checks the emulator rather than agreeing with it.
func testSign(params map[string]string, key string) string {
	var names []string
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	s := ""
	for _, k := range names {
		s += k + "=" + params[k]
	}
	sum := md5.Sum([]byte(s + key))
	return hex.EncodeToString(sum[:])
}

type msg map[string]any

func validMessage() msg {
	return msg{
		"noticeBarInfo": msg{"noticeBarType": 0, "title": "Alice", "content": "hello"},
		"clickTypeInfo": msg{"clickType": 0, "parameters": msg{"k": "v"}},
		"pushTimeInfo":  msg{"offLine": 1, "validTime": 24},
		"advanceInfo":   msg{"suspend": 1, "notifyKey": "ab12_-XY"},
	}
}

type answer struct {
	status int
	Code   string          `json:"code"`
	Value  json.RawMessage `json:"value"`
	MsgID  string          `json:"msgId"`
	Msg    string          `json:"message"`
}

// request posts params, signed with key unless params has a sign.
func request(t testing.TB, s *meizuemu.Server, contentType string, params map[string]string, key string) answer {
	t.Helper()
	form := url.Values{}
	for k, v := range params {
		form.Set(k, v)
	}
	if _, ok := params["sign"]; !ok {
		form.Set("sign", testSign(params, key))
	}
	resp, err := http.Post(s.URL+path, contentType, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(raw, &a); err != nil {
			t.Fatalf("answer %q is not JSON: %v", raw, err)
		}
	}
	return a
}

const form = "application/x-www-form-urlencoded;charset=UTF-8"

func params(m msg, ids string) map[string]string {
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return map[string]string{"appId": appID, "pushIds": ids, "messageJson": string(b)}
}

func TestChecks(t *testing.T) {
	tests := []struct {
		name     string
		edit     func(m msg)
		params   func(p map[string]string)
		key      string
		ctype    string
		wantCode string
	}{
		{name: "valid", wantCode: "200"},
		{name: "JSON body", ctype: "application/json", wantCode: "1005"},
		{name: "wrong secret", key: "other", wantCode: "1006"},
		{name: "tampered after signing", params: func(p map[string]string) { p["sign"] = strings.Repeat("0", 32) }, wantCode: "1006"},
		{name: "upper-case signature", params: func(p map[string]string) { p["sign"] = strings.ToUpper(testSign(p, secret)) }, wantCode: "1006"},
		{name: "unknown app", params: func(p map[string]string) { p["appId"] = "42" }, wantCode: "110000"},
		{name: "no pushIds", params: func(p map[string]string) { p["pushIds"] = "" }, wantCode: "110004"},
		{name: "unknown parameter", params: func(p map[string]string) { p["pushType"] = "0" }, wantCode: "1005"},
		{name: "1001 pushIds", params: func(p map[string]string) { p["pushIds"] = ids(1001) }, wantCode: "1005"},
		{name: "1000 pushIds", params: func(p map[string]string) { p["pushIds"] = ids(1000) }, wantCode: "200"},
		{name: "empty pushId", params: func(p map[string]string) { p["pushIds"] = "a,,b" }, wantCode: "1005"},
		{name: "pass-through message", edit: func(m msg) { delete(m, "noticeBarInfo"); m["title"] = "t" }, wantCode: "1005"},
		{name: "unknown member", edit: func(m msg) { m["priority"] = 1 }, wantCode: "1005"},
		{name: "title of 33", edit: func(m msg) { m["noticeBarInfo"].(msg)["title"] = strings.Repeat("字", 33) }, wantCode: "1005"},
		{name: "title of 32", edit: func(m msg) { m["noticeBarInfo"].(msg)["title"] = strings.Repeat("字", 32) }, wantCode: "200"},
		{name: "emoji count twice", edit: func(m msg) { m["noticeBarInfo"].(msg)["content"] = strings.Repeat("😀", 51) }, wantCode: "1005"},
		{name: "empty content", edit: func(m msg) { m["noticeBarInfo"].(msg)["content"] = "" }, wantCode: "1005"},
		{name: "validTime 73", edit: func(m msg) { m["pushTimeInfo"].(msg)["validTime"] = 73 }, wantCode: "1005"},
		{name: "validTime 0", edit: func(m msg) { m["pushTimeInfo"].(msg)["validTime"] = 0 }, wantCode: "1005"},
		{name: "offline 0 without validTime", edit: func(m msg) { m["pushTimeInfo"] = msg{"offLine": 0} }, wantCode: "200"},
		{name: "notifyKey of 9", edit: func(m msg) { m["advanceInfo"].(msg)["notifyKey"] = "123456789" }, wantCode: "1005"},
		{name: "notifyKey with a colon", edit: func(m msg) { m["advanceInfo"].(msg)["notifyKey"] = "m:1" }, wantCode: "1005"},
		{name: "clickType 2 without url", edit: func(m msg) { m["clickTypeInfo"].(msg)["clickType"] = 2 }, wantCode: "1005"},
		{name: "parameters not an object", edit: func(m msg) { m["clickTypeInfo"].(msg)["parameters"] = "k=v" }, wantCode: "1005"},
		{name: "sound 2", edit: func(m msg) { m["advanceInfo"].(msg)["notificationType"] = msg{"sound": 2} }, wantCode: "1005"},
		{name: "callback too long", edit: func(m msg) { m["extra"] = msg{"callback": strings.Repeat("x", 129)} }, wantCode: "1005"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, meizuemu.Options{})
			m := validMessage()
			if tc.edit != nil {
				tc.edit(m)
			}
			p := params(m, "idAAAAAA111111,idBBBBBB222222")
			if tc.params != nil {
				tc.params(p)
			}
			key := secret
			if tc.key != "" {
				key = tc.key
			}
			ctype := form
			if tc.ctype != "" {
				ctype = tc.ctype
			}
			a := request(t, s, ctype, p, key)
			if a.status != http.StatusOK || a.Code != tc.wantCode {
				t.Fatalf("got status %d code %s (%s), want 200 code %s", a.status, a.Code, a.Msg, tc.wantCode)
			}
			if got := len(s.Received()); (tc.wantCode == "200") != (got == 1) {
				t.Errorf("%d pushes recorded for code %s", got, a.Code)
			}
		})
	}
}

func ids(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "pushid%04d", i)
	}
	return b.String()
}

// TestDocumentedSignature sends Meizu's documented signing example: the
// signature must pass (its pass-through message then fails validation).
func TestDocumentedSignature(t *testing.T) {
	s := meizuemu.New(meizuemu.Options{})
	defer s.Close()
	s.AddApp(meizuemu.App{ID: "10000", Secret: "<APP_SECRET>"})
	p := map[string]string{
		"appId":       "10000",
		"pushIds":     "RA50c6348036344485d01776773577c64740465480a6b",
		"messageJson": `{"title":"title","content":"content","pushTimeInfo":{"offLine":1,"validTime":24}}`,
		"sign":        "ac076ff25d9900015a681cb5172aa53b",
	}
	if a := request(t, s, form, p, ""); a.Code != "1005" {
		t.Errorf("code %s (%s), want 1005: the signature passes, the message is not a notification", a.Code, a.Msg)
	}
}

func TestRecordAndFaults(t *testing.T) {
	var out bytes.Buffer
	s := start(t, meizuemu.Options{Printer: &out})
	s.SetFaults(meizuemu.Faults{Tokens: map[string]meizuemu.Fault{"idBBBBBB222222": {Code: meizuemu.CodeIllegalID}}})
	a := request(t, s, form, params(validMessage(), "idAAAAAA111111,idBBBBBB222222"), secret)
	var value map[string][]string
	if err := json.Unmarshal(a.Value, &value); err != nil || a.Code != "200" || a.MsgID == "" {
		t.Fatalf("answer %+v, want code 200, a msgId and a value map", a)
	}
	if diff := cmp.Diff(map[string][]string{"110003": {"idBBBBBB222222"}}, value); diff != "" {
		t.Errorf("value (-want +got):\n%s", diff)
	}
	p := s.Received()[0]
	got := []any{p.PushIDs, p.Message.NoticeBarInfo.Title, p.Message.PushTimeInfo.ValidTime, p.Message.AdvanceInfo.NotifyKey, p.Message.ClickTypeInfo.Parameters}
	want := []any{[]string{"idAAAAAA111111"}, "Alice", 24, "ab12_-XY", map[string]any{"k": "v"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("record (-want +got):\n%s", diff)
	}
	line := out.String()
	if strings.Count(line, "\n") != 1 || !strings.Contains(line, `"token":"111111"`) || strings.Contains(line, "idAAAAAA") {
		t.Errorf("printed %q, want one line naming only the pushId's last 6 characters", line)
	}

	s.SetFaults(meizuemu.Faults{Tokens: map[string]meizuemu.Fault{"idAAAAAA111111": {Request: meizuemu.CodeBusy, Times: 1}}})
	for i, want := range []string{"1003", "200"} {
		if a := request(t, s, form, params(validMessage(), "idAAAAAA111111"), secret); a.Code != want {
			t.Errorf("request %d: code %s, want %s", i, a.Code, want)
		}
	}
	s.SetFaults(meizuemu.Faults{DailyLimit: true})
	if a := request(t, s, form, params(validMessage(), "idAAAAAA111111"), secret); a.Code != meizuemu.CodeDailyLimit || string(a.Value) != `""` {
		t.Errorf("code %s value %s, want %s and an empty string", a.Code, a.Value, meizuemu.CodeDailyLimit)
	}
}

func TestSeededShares(t *testing.T) {
	run := func() []string {
		s := start(t, meizuemu.Options{})
		s.SetFaults(meizuemu.Faults{ThrottleShare: 0.3, BusyShare: 0.3, UnavailableShare: 0.2, Seed: 3})
		var codes []string
		for range 40 {
			a := request(t, s, form, params(validMessage(), "idAAAAAA111111"), secret)
			codes = append(codes, fmt.Sprint(a.status, a.Code))
		}
		return codes
	}
	first, second := run(), run()
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("same seed, different answers (-first +second):\n%s", diff)
	}
	kinds := map[string]bool{}
	for _, c := range first {
		kinds[c] = true
	}
	if len(kinds) != 4 {
		t.Errorf("40 draws gave %d kinds of answer, want 4: %v", len(kinds), first)
	}
}

// FuzzMessage feeds arbitrary messageJson, correctly signed, to the
// emulator: it must answer each with Meizu's JSON and never panic.
func FuzzMessage(f *testing.F) {
	b, _ := json.Marshal(validMessage())
	f.Add(string(b))
	f.Add(`{"noticeBarInfo":{"title":"","content":null}}`)
	f.Add(`[]`)
	s := meizuemu.New(meizuemu.Options{})
	defer s.Close()
	s.AddApp(meizuemu.App{ID: appID, Secret: secret})
	f.Fuzz(func(t *testing.T, mj string) {
		a := request(t, s, form, map[string]string{"appId": appID, "pushIds": "idAAAAAA111111", "messageJson": mj}, secret)
		if a.status != http.StatusOK || a.Code == "" {
			t.Errorf("status %d code %q", a.status, a.Code)
		}
	})
}
