package xiaomiemu_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	xiaomiemu "github.com/offline-push/offline-push/shared/emulator/xiaomi"
)

const secret = "s3cr3t=="

func start(t testing.TB, opts xiaomiemu.Options) *xiaomiemu.Server {
	t.Helper()
	s := xiaomiemu.New(opts)
	t.Cleanup(s.Close)
	s.AddApp(xiaomiemu.App{Secret: secret, Packages: []string{"com.example.chat"}, Channels: []string{"im"}})
	return s
}

// valid is a form the emulator accepts; tests change one thing at a time.
func valid() url.Values {
	return url.Values{
		"restricted_package_name": {"com.example.chat"},
		"registration_id":         {"tokenAAAAAA111111,tokenBBBBBB222222"},
		"pass_through":            {"0"},
		"title":                   {"Alice"},
		"description":             {"hello"},
		"payload":                 {url.QueryEscape(`{"k":"v"}`)},
		"notify_type":             {"-1"},
		"time_to_live":            {"3600000"},
		"notify_id":               {"42"},
		"extra.channel_id":        {"im"},
		"extra.notify_effect":     {"1"},
	}
}

type answer struct {
	status int
	Result string `json:"result"`
	Code   int    `json:"code"`
	Reason string `json:"reason"`
	Data   struct {
		ID        string `json:"id"`
		BadRegIDs string `json:"bad_regids"`
	} `json:"data"`
}

func post(t testing.TB, s *xiaomiemu.Server, path string, header http.Header, body string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
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

func headers() http.Header {
	return http.Header{"Authorization": {"key=" + secret}, "Content-Type": {"application/x-www-form-urlencoded;charset=UTF-8"}}
}

func TestChecks(t *testing.T) {
	tests := []struct {
		name       string
		path       string
		header     func(http.Header)
		form       func(url.Values)
		rawBody    string
		wantStatus int
		wantCode   int
	}{
		{name: "valid", wantCode: 0},
		{name: "v2 path", path: "/v2/message/regid", wantCode: 0},
		{name: "unknown path", path: "/v3/message/alias", wantStatus: 404},
		{name: "no authorization", header: func(h http.Header) { h.Del("Authorization") }, wantCode: 21301},
		{name: "Key in capitals", header: func(h http.Header) { h.Set("Authorization", "Key="+secret) }, wantCode: 21301},
		{name: "wrong secret", header: func(h http.Header) { h.Set("Authorization", "key=other") }, wantCode: 21301},
		{name: "JSON body", header: func(h http.Header) { h.Set("Content-Type", "application/json") }, wantCode: 10008},
		{name: "bad form", rawBody: "a=%zz", wantCode: 10008},
		{name: "parameter twice", form: func(f url.Values) { f.Add("title", "again") }, wantCode: 10017},
		{name: "unknown parameter", form: func(f url.Values) { f.Set("priority", "high") }, wantCode: 10017},
		{name: "no package", form: func(f url.Values) { f.Del("restricted_package_name") }, wantCode: 21305},
		{name: "other package", form: func(f url.Values) { f.Set("restricted_package_name", "com.other") }, wantCode: 22022},
		{name: "no regId", form: func(f url.Values) { f.Del("registration_id") }, wantCode: 21305},
		{name: "empty regId in list", form: func(f url.Values) { f.Set("registration_id", "a,,b") }, wantCode: 10017},
		{name: "1001 regIds", form: func(f url.Values) { f.Set("registration_id", ids(1001)) }, wantCode: 10017},
		{name: "1000 regIds", form: func(f url.Values) { f.Set("registration_id", ids(1000)) }, wantCode: 0},
		{name: "no title", form: func(f url.Values) { f.Del("title") }, wantCode: 21305},
		{name: "blank description", form: func(f url.Values) { f.Set("description", "  \t") }, wantCode: 10017},
		{name: "title of 50", form: func(f url.Values) { f.Set("title", strings.Repeat("字", 50)) }, wantCode: 10017},
		{name: "title of 49", form: func(f url.Values) { f.Set("title", strings.Repeat("字", 49)) }, wantCode: 0},
		{name: "emoji count twice", form: func(f url.Values) { f.Set("description", strings.Repeat("😀", 64)) }, wantCode: 10017},
		{name: "description of 127 units", form: func(f url.Values) { f.Set("description", strings.Repeat("😀", 63)+"a") }, wantCode: 0},
		{name: "payload not URL-encoded", form: func(f url.Values) { f.Set("payload", "%zz") }, wantCode: 10017},
		{name: "payload too long", form: func(f url.Values) { f.Set("payload", strings.Repeat("x", 4097)) }, wantCode: 65009},
		{name: "bad notify_type", form: func(f url.Values) { f.Set("notify_type", "8") }, wantCode: 10017},
		{name: "zero TTL", form: func(f url.Values) { f.Set("time_to_live", "0") }, wantCode: 10017},
		{name: "TTL over two weeks", form: func(f url.Values) { f.Set("time_to_live", fmt.Sprint((15 * 24 * time.Hour).Milliseconds())) }, wantCode: 10017},
		{name: "notify_id too big", form: func(f url.Values) { f.Set("notify_id", "2147483648") }, wantCode: 10017},
		{name: "unapproved channel", form: func(f url.Values) { f.Set("extra.channel_id", "ads") }, wantCode: 27001},
		{name: "no channel", form: func(f url.Values) { f.Del("extra.channel_id") }, wantCode: 27001},
		{name: "notify_effect 2 without intent", form: func(f url.Values) { f.Set("extra.notify_effect", "2") }, wantCode: 10017},
		{name: "sound of another package", form: func(f url.Values) { f.Set("extra.sound_uri", "android.resource://com.other/raw/ring") }, wantCode: 10017},
		{name: "sound", form: func(f url.Values) { f.Set("extra.sound_uri", "android.resource://com.example.chat/raw/ring") }, wantCode: 0},
		{name: "11 custom extras", form: func(f url.Values) {
			for i := range 11 {
				f.Set(fmt.Sprint("extra.k", i), "v")
			}
		}, wantCode: 65014},
		{name: "custom extras too long", form: func(f url.Values) { f.Set("extra.k", strings.Repeat("v", 1024)) }, wantCode: 65015},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, xiaomiemu.Options{})
			h := headers()
			if tc.header != nil {
				tc.header(h)
			}
			f := valid()
			if tc.form != nil {
				tc.form(f)
			}
			body := f.Encode()
			if tc.rawBody != "" {
				body = tc.rawBody
			}
			path := "/v3/message/regid"
			if tc.path != "" {
				path = tc.path
			}
			a := post(t, s, path, h, body)
			wantStatus := tc.wantStatus
			if wantStatus == 0 {
				wantStatus = http.StatusOK
			}
			if a.status != wantStatus || a.Code != tc.wantCode {
				t.Fatalf("got status %d code %d (%s), want status %d code %d", a.status, a.Code, a.Reason, wantStatus, tc.wantCode)
			}
			if wantStatus == http.StatusOK && tc.wantCode == 0 {
				if a.Result != "ok" || a.Data.ID == "" || len(s.Received()) != 1 {
					t.Errorf("success answer %+v, %d received; want result ok, a message id and one record", a, len(s.Received()))
				}
			} else if len(s.Received()) != 0 {
				t.Errorf("a refused request was recorded as received")
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
		fmt.Fprintf(&b, "regid%04d", i)
	}
	return b.String()
}

func TestRecord(t *testing.T) {
	var out bytes.Buffer
	s := start(t, xiaomiemu.Options{Printer: &out})
	s.SetFaults(xiaomiemu.Faults{Tokens: map[string]xiaomiemu.Fault{"tokenBBBBBB222222": {Invalid: true}}})
	a := post(t, s, "/v3/message/regid", headers(), valid().Encode())
	if a.Code != 0 || a.Data.BadRegIDs != "tokenBBBBBB222222" {
		t.Fatalf("answer %+v, want code 0 and bad_regids tokenBBBBBB222222", a)
	}
	rec := s.Received()
	if len(rec) != 1 {
		t.Fatalf("%d received, want 1", len(rec))
	}
	p := rec[0]
	got := []any{p.RegIDs, p.BadRegIDs, p.Title, p.Description, p.Payload, p.NotifyID, p.TimeToLive, p.ChannelID, p.NotifyType}
	want := []any{[]string{"tokenAAAAAA111111"}, []string{"tokenBBBBBB222222"}, "Alice", "hello", `{"k":"v"}`, int64(42), time.Hour, "im", -1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("record (-want +got):\n%s", diff)
	}
	line := out.String()
	if strings.Count(line, "\n") != 1 || !strings.Contains(line, `"token":"111111"`) || strings.Contains(line, "tokenAAAAAA") {
		t.Errorf("printed %q, want one line naming only the regId's last 6 characters", line)
	}
	if diff := cmp.Diff([]xiaomiemu.Answer{{RegIDs: []string{"tokenAAAAAA111111", "tokenBBBBBB222222"}, Status: 200, BadRegIDs: []string{"tokenBBBBBB222222"}}}, s.Answers()); diff != "" {
		t.Errorf("answers (-want +got):\n%s", diff)
	}
}

// TestSeededShares checks that the same seed gives the same answers.
func TestSeededShares(t *testing.T) {
	run := func() []int {
		s := start(t, xiaomiemu.Options{})
		s.SetFaults(xiaomiemu.Faults{ThrottleShare: 0.3, BusyShare: 0.3, UnavailableShare: 0.2, Seed: 7})
		var codes []int
		for range 40 {
			a := post(t, s, "/v3/message/regid", headers(), valid().Encode())
			codes = append(codes, a.status*100000+a.Code)
		}
		return codes
	}
	first, second := run(), run()
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("same seed, different answers (-first +second):\n%s", diff)
	}
	kinds := map[int]bool{}
	for _, c := range first {
		kinds[c] = true
	}
	if len(kinds) != 4 {
		t.Errorf("40 draws gave %d kinds of answer, want 4 (ok, 10027, 10002, 503): %v", len(kinds), first)
	}
}

func TestRemoveApp(t *testing.T) {
	s := start(t, xiaomiemu.Options{})
	s.RemoveApp(secret)
	if a := post(t, s, "/v3/message/regid", headers(), valid().Encode()); a.Code != xiaomiemu.CodeAuthFailed {
		t.Errorf("code %d after the secret was revoked, want %d", a.Code, xiaomiemu.CodeAuthFailed)
	}
}

// FuzzCheck feeds arbitrary forms to the emulator: it must answer each
// with a status and, for status 200, Xiaomi's JSON, never panic.
func FuzzCheck(f *testing.F) {
	f.Add(valid().Encode())
	f.Add("registration_id=,&title=%E5")
	f.Add("")
	s := xiaomiemu.New(xiaomiemu.Options{})
	defer s.Close()
	s.AddApp(xiaomiemu.App{Secret: secret, Packages: []string{"com.example.chat"}})
	f.Fuzz(func(t *testing.T, body string) {
		post(t, s, "/v3/message/regid", headers(), body)
	})
}
