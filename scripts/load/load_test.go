package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/offline-push/offline-push/shared/push"
)

// TestLoadRun runs the whole tool with a tiny load against its own moto and
// local stack, faults on, and checks that the accounting passes: every
// target reached exactly one outcome, the dead token was unbound, and no
// log line leaks a token or a secret.
func TestLoadRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts moto and the local stack, and waits for retries to drain")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	o, err := parseFlags([]string{"-users", "10", "-rate", "2", "-duration", "5s", "-visibility", "31s", "-quiet-timeout", "5m", "-seed", "7"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	rep, err := loadRun(ctx, o, &progress)
	var out bytes.Buffer
	if rep != nil {
		rep.print(&out)
	}
	if err != nil {
		t.Fatalf("load run: %v\nreport:\n%s\nprogress:\n%s", err, out.String(), progress.String())
	}
	a := rep.acc
	got := map[string]int{
		"failed": len(a.Failed), "unaccounted": len(a.Unaccounted), "duplicates": len(a.Duplicates),
		"stray": len(a.Stray), "unparsed": a.Unparsed, "valid lost": len(a.ValidLost),
		"dead tokens": a.InvalidDevices, "dead tokens unbound": a.InvalidRemoved, "leaks": len(rep.leaks),
		"outcomes": a.Delivered + a.InvalidToken + a.DeadLettered,
	}
	want := map[string]int{
		"failed": 0, "unaccounted": 0, "duplicates": 0, "stray": 0, "unparsed": 0, "valid lost": 0,
		// Seed 7 pushes to the one dead token, so it must be unbound.
		"dead tokens": 1, "dead tokens unbound": 1, "leaks": 0,
		"outcomes": a.Targets,
	}
	if diff := cmp.Diff(want, got); diff != "" || !rep.passed() {
		t.Errorf("accounting (-want +got):\n%s\nreport:\n%s", diff, out.String())
	}
	t.Logf("report:\n%s", out.String())
	if a.Targets == 0 || a.Messages != 10 {
		t.Errorf("%d messages with %d targets, want 10 messages with some targets", a.Messages, a.Targets)
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "defaults", args: nil},
		{name: "tiny", args: []string{"-users", "2", "-rate", "0.1", "-duration", "1s"}},
		{name: "too few users", args: []string{"-users", "1"}, wantErr: "-users"},
		{name: "rate zero", args: []string{"-rate", "0"}, wantErr: "-rate"},
		{name: "rate NaN", args: []string{"-rate", "NaN"}, wantErr: "-rate"},
		{name: "share above one", args: []string{"-invalid", "1.5"}, wantErr: "-invalid"},
		{name: "faults above one", args: []string{"-transient", "0.7", "-vendor-throttle", "0.4"}, wantErr: "add up"},
		{name: "throttle too high", args: []string{"-throttle", "0.6"}, wantErr: "-throttle"},
		{name: "visibility under the timeout", args: []string{"-visibility", "30s"}, wantErr: "-visibility"},
		{name: "visibility kept", args: []string{"-visibility", "0"}},
		{name: "stray argument", args: []string{"now"}, wantErr: "unexpected"},
		{name: "duration too long", args: []string{"-duration", "2h"}, wantErr: "-duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFlags(tt.args, io.Discard)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("parseFlags(%q) = %v, want no error", tt.args, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("parseFlags(%q) = %v, want an error naming %q", tt.args, err, tt.wantErr)
			}
		})
	}
}

func TestBadCommandLineExitsWithUsage(t *testing.T) {
	if got := run(t.Context(), []string{"-users", "0"}, io.Discard, io.Discard); got != exitUsage {
		t.Errorf("exit code %d, want %d", got, exitUsage)
	}
}

func TestPercentile(t *testing.T) {
	ms := func(n ...int) []time.Duration {
		out := make([]time.Duration, len(n))
		for i, x := range n {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	tests := []struct {
		name string
		ds   []time.Duration
		q    float64
		want time.Duration
	}{
		{"none", nil, 50, 0},
		{"one", ms(7), 99, 7 * time.Millisecond},
		{"median of odd", ms(5, 1, 3), 50, 3 * time.Millisecond},
		{"p99 of 100", ms(seq(100)...), 99, 99 * time.Millisecond},
		{"p100 is the max", ms(4, 9, 2), 100, 9 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := percentile(tt.ds, tt.q); got != tt.want {
			t.Errorf("%s: percentile(%v) = %s, want %s", tt.name, tt.q, got, tt.want)
		}
	}
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

func TestPopulate(t *testing.T) {
	certs := map[push.Vendor]string{}
	for _, v := range push.Vendors {
		certs[v] = "cert-" + string(v)
	}
	p, err := populate("abc123", 50, 0.02, certs, 3)
	if err != nil {
		t.Fatal(err)
	}
	again, err := populate("abc123", 50, 0.02, certs, 3)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(tokens(p), tokens(again)); diff != "" {
		t.Errorf("the same seed drew other tokens (-first +second):\n%s", diff)
	}
	if got := len(p.vendorsUsed()); got != len(push.Vendors) {
		t.Errorf("devices over %d vendors, want all %d", got, len(push.Vendors))
	}
	suffixes := map[string]bool{}
	for _, d := range p.Devices {
		if suffixes[string(d.Vendor)+d.Suffix] {
			t.Errorf("suffix %s of %s repeats", d.Suffix, d.Vendor)
		}
		suffixes[string(d.Vendor)+d.Suffix] = true
		if !strings.HasSuffix(d.Token, d.Suffix) {
			t.Errorf("token of %s/%s does not end in its suffix", d.User, d.ID)
		}
		if d.Invalid && d.Presence == online {
			t.Errorf("%s/%s is dead and online: no push would ever find it dead", d.User, d.ID)
		}
		if d.Vendor == push.APNs && (len(d.Token) != 64 || strings.Trim(d.Token, hexDigits) != "") {
			t.Errorf("APNs token of %s/%s is not 64 hex digits", d.User, d.ID)
		}
	}
	if n := len(p.invalid()); n < 1 {
		t.Errorf("%d dead tokens, want at least 1", n)
	}
	if _, err := populate("abc123", 5, 0, map[push.Vendor]string{}, 1); err == nil {
		t.Error("populate without credentials succeeded")
	}
}

func tokens(p *population) []string {
	var out []string
	for _, d := range p.Devices {
		out = append(out, d.Token)
	}
	return out
}

func TestPlan(t *testing.T) {
	users := []string{"a", "b", "c", "d", "e", "f"}
	msgs := plan("run1", users, 200, 0.5, 5, 1)
	groups := 0
	for _, m := range msgs {
		seen := map[string]bool{}
		for _, r := range m.Recipients {
			if r == m.Sender || seen[r] {
				t.Fatalf("message %s: recipient %s repeats or is the sender", m.ID, r)
			}
			seen[r] = true
		}
		if m.Group != "" {
			groups++
			if len(m.Recipients) < 3 || len(m.Recipients) > 5 {
				t.Errorf("group message %s has %d recipients, want 3 to 5", m.ID, len(m.Recipients))
			}
		} else if len(m.Recipients) != 1 {
			t.Errorf("peer message %s has %d recipients, want 1", m.ID, len(m.Recipients))
		}
		if !messageIDs("run1").MatchString(m.ID) {
			t.Errorf("message id %s does not match the run's pattern", m.ID)
		}
	}
	if groups == 0 || groups == len(msgs) {
		t.Errorf("%d of %d messages to groups, want a mix", groups, len(msgs))
	}
}

func TestParseReceipt(t *testing.T) {
	ids := messageIDs("abc123")
	at := time.Unix(100, 0)
	tests := []struct {
		name string
		line string
		want parsedReceipt
		ok   bool
	}{
		{
			name: "apns",
			line: `{"emulator":"apns","token":"00000a","collapseId":"m:ld-abc123-000004","apnsId":"x","payload":{"aps":{"alert":{"title":"ld-abc123-000004"}}}}`,
			want: parsedReceipt{Vendor: push.APNs, Suffix: "00000a", MessageID: "ld-abc123-000004", Collapse: "collapseId=m:ld-abc123-000004", At: at},
			ok:   true,
		},
		{
			name: "fcm names itself vendor and shows an ellipsis",
			line: `{"body":"u: load test ld-abc123-000001","title":"ld-abc123-000001","token":"…000001","vendor":"fcm"}`,
			want: parsedReceipt{Vendor: push.FCM, Suffix: "000001", MessageID: "ld-abc123-000001", At: at},
			ok:   true,
		},
		{
			name: "numeric notify id",
			line: `{"emulator":"vivo","token":"000006","title":"ld-abc123-000002","notifyId":1131533734}`,
			want: parsedReceipt{Vendor: push.Vivo, Suffix: "000006", MessageID: "ld-abc123-000002", Collapse: "notifyId=1131533734", At: at},
			ok:   true,
		},
		{
			name: "title cut by the vendor, id in the text",
			line: `{"emulator":"meizu","token":"000009","title":"ld-abc1","content":"u: load test ld-abc123-000003"}`,
			want: parsedReceipt{Vendor: push.Meizu, Suffix: "000009", MessageID: "ld-abc123-000003", At: at},
			ok:   true,
		},
		{name: "another run", line: `{"emulator":"apns","token":"00000a","title":"ld-ffffff-000004"}`},
		{name: "unknown vendor", line: `{"emulator":"nokia","token":"00000a","title":"ld-abc123-000004"}`},
		{name: "no token", line: `{"emulator":"apns","title":"ld-abc123-000004"}`},
		{name: "not JSON", line: `ld-abc123-000004 delivered`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseReceipt(receipt{Line: tt.line, At: at}, ids)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if diff := cmp.Diff(tt.want, got); ok && diff != "" {
				t.Errorf("receipt (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAccount feeds the accounting a hand-made run in which each target
// meets a different fate, and checks that each is judged as it must be.
func TestAccount(t *testing.T) {
	p := &population{bySuffix: map[vendorSuffix]*device{}, byKey: map[deviceKey]*device{}}
	for _, d := range []*device{
		{User: "u1", ID: "d1", Vendor: push.APNs, Suffix: "000001"},
		{User: "u2", ID: "d1", Vendor: push.FCM, Suffix: "000002"},
		{User: "u3", ID: "d1", Vendor: push.Huawei, Suffix: "000003", Invalid: true},
		{User: "u4", ID: "d1", Vendor: push.Xiaomi, Suffix: "000004"},
		{User: "u5", ID: "d1", Vendor: push.Vivo, Suffix: "000005", Invalid: true},
		{User: "u6", ID: "d1", Vendor: push.OPPO, Suffix: "000006"},
	} {
		p.add(d)
	}
	ids := messageIDs("r00001")
	t0 := time.Unix(1000, 0)
	tgt := func(m, u string, v push.Vendor) target { return target{MessageID: m, User: u, Device: "d1", Vendor: v} }
	ss := []sent{
		{Msg: message{ID: "ld-r00001-000000"}, Accepted: t0, Latency: 20 * time.Millisecond, Targets: []target{
			tgt("ld-r00001-000000", "u1", push.APNs),   // delivered twice, same collapse id: a repeat
			tgt("ld-r00001-000000", "u2", push.FCM),    // dead-lettered
			tgt("ld-r00001-000000", "u3", push.Huawei), // dead token, unbound
		}},
		{Msg: message{ID: "ld-r00001-000001"}, Accepted: t0, Latency: 30 * time.Millisecond, Retried: map[int]int{409: 1}, Targets: []target{
			tgt("ld-r00001-000001", "u4", push.Xiaomi), // delivered twice, no collapse key: duplicate
			tgt("ld-r00001-000001", "u5", push.Vivo),   // dead token, still bound: unaccounted
			tgt("ld-r00001-000001", "u6", push.OPPO),   // nothing at all: unaccounted
		}},
		{Msg: message{ID: "ld-r00001-000002"}, Err: errors.New("500")},
	}
	lines := []receipt{
		{Line: `{"emulator":"apns","token":"000001","title":"ld-r00001-000000","collapseId":"m:1"}`, At: t0.Add(time.Second)},
		{Line: `{"emulator":"apns","token":"000001","title":"ld-r00001-000000","collapseId":"m:1"}`, At: t0.Add(3 * time.Second)},
		{Line: `{"emulator":"xiaomi","token":"000004","title":"ld-r00001-000001"}`, At: t0.Add(2 * time.Second)},
		{Line: `{"emulator":"xiaomi","token":"000004","title":"ld-r00001-000001"}`, At: t0.Add(2 * time.Second)},
		{Line: `{"emulator":"oppo","token":"000006","title":"ld-r00001-000000"}`, At: t0},
		{Line: `{"emulator":"oppo","token":"999999","title":"ld-r00001-000000"}`, At: t0},
		{Line: `garbage`, At: t0},
	}
	dead := []target{tgt("ld-r00001-000000", "u2", push.FCM)}
	bound := map[deviceKey]string{
		{"u1", "d1"}: "000001", {"u4", "d1"}: "000004", {"u5", "d1"}: "000005", {"u6", "d1"}: "000006",
	}
	a := account(p, ss, lines, dead, bound, ids)

	got := map[string]int{
		"messages": a.Messages, "accepted": a.Accepted, "failed": len(a.Failed),
		"targets": a.Targets, "delivered": a.Delivered, "invalid_token": a.InvalidToken,
		"dead_lettered": a.DeadLettered, "unaccounted": len(a.Unaccounted), "duplicates": len(a.Duplicates),
		"repeats": a.Repeats, "stray": len(a.Stray), "unparsed": a.Unparsed,
		"invalid removed": a.InvalidRemoved, "invalid left": a.InvalidLeft, "valid lost": len(a.ValidLost),
		"retried 409": a.Retried[409],
	}
	want := map[string]int{
		"messages": 3, "accepted": 2, "failed": 1,
		"targets": 6, "delivered": 2, "invalid_token": 1,
		"dead_lettered": 1, "unaccounted": 2, "duplicates": 1,
		"repeats": 1, "stray": 2, "unparsed": 1,
		"invalid removed": 1, "invalid left": 1, "valid lost": 1, // u2's binding is gone though its token is valid
		"retried 409": 1,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("accounting (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]time.Duration{time.Second, 2 * time.Second}, a.EndToEnd); diff != "" {
		t.Errorf("end-to-end latencies from the 202 (-want +got):\n%s", diff)
	}
	// The requests took 20 and 30 ms before their 202s.
	if diff := cmp.Diff([]time.Duration{1020 * time.Millisecond, 2030 * time.Millisecond}, a.FromPost); diff != "" {
		t.Errorf("end-to-end latencies from the POST (-want +got):\n%s", diff)
	}
	if a.passed() {
		t.Error("passed() = true for a run with unaccounted targets")
	}
}

func TestScanner(t *testing.T) {
	token := "Zq81mUv0c4HbXy7sT1nLw2e5Rr9Kp0Aa000042"
	sc := newScanner([]string{token}, []string{"demo-only-api-secret-0c5e9a27d41b"})
	tests := []struct {
		line string
		want string
	}{
		{`{"msg":"target","token":"…000042"}`, ""},
		{`{"msg":"sent","token":"` + token + `"}`, "token"},
		{`prefix` + token, "token"},
		{`{"msg":"x","secret":"demo-only-api-secret-0c5e9a27d41b"}`, "secret"},
		{`{"msg":"x","token":"` + token[:20] + `"}`, ""},
		{``, ""},
	}
	for _, tt := range tests {
		if got := sc.line(tt.line); got != tt.want {
			t.Errorf("line(%q) = %q, want %q", tt.line, got, tt.want)
		}
	}
	leaks, n, err := sc.scanFiles(nil, map[string]string{"text": "clean\nleak " + token + "\nclean\n"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]leak{{File: "text", Line: 2, What: "token"}}, leaks); diff != "" || n != 3 {
		t.Errorf("scan: %d lines, leaks (-want +got):\n%s", n, diff)
	}
}

func TestSecretStrings(t *testing.T) {
	cred := map[string]any{
		"vendor":    "apns",
		"bundleId":  "com.example.demo-app",
		"endpoint":  "https://127.0.0.1:1234",
		"appSecret": "s3cr3t-value-long-enough",
		"short":     "x",
		"serviceAccount": map[string]any{
			"client_email": "push@example.iam.gserviceaccount.com",
			"private_key":  "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nshort\n-----END PRIVATE KEY-----\n",
		},
		"appKey": "tiny",
	}
	got := secretStrings(cred, false)
	want := []string{"s3cr3t-value-long-enough", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"}
	less := func(a, b string) bool { return a < b }
	if diff := cmp.Diff(want, got, cmpopts.SortSlices(less)); diff != "" {
		t.Errorf("secret strings (-want +got):\n%s", diff)
	}
}

func TestStackEnv(t *testing.T) {
	base := []string{"PATH=/bin", "AWS_ENDPOINT_URL=http://elsewhere", "AWS_ENDPOINT_URL_SQS=http://sqs", "AWS_PROFILE=dev", "PUSH_LOCAL_ADDR=1.2.3.4:5", "HOME=/root"}
	got := stackEnv(base, map[string]string{"AWS_ENDPOINT_URL": "http://moto", "PUSH_LOCAL_ADDR": "127.0.0.1:9"})
	want := []string{"AWS_ENDPOINT_URL=http://moto", "HOME=/root", "PATH=/bin", "PUSH_LOCAL_ADDR=127.0.0.1:9"}
	if diff := cmp.Diff(want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("environment (-want +got):\n%s", diff)
	}
}

func TestFindRoot(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, err := findRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(root + "/template.yaml"); err != nil {
		t.Errorf("root %s has no template.yaml: %v", root, err)
	}
	if _, err := findRoot(t.TempDir()); err == nil {
		t.Error("findRoot of a directory outside the repository succeeded")
	}
}
