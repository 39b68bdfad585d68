package apns_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	apnsemu "github.com/offline-push/offline-push/shared/emulator/apns"
	"github.com/offline-push/offline-push/shared/provider/apns"
	"github.com/offline-push/offline-push/shared/push"
)

// goldenNow is the fixed instant of the golden requests.
var goldenNow = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// TestGolden compares the requests the provider sends, as the emulator
// received them (headers and payload), with testdata/*.golden. Rewrite the
// files with UPDATE_GOLDEN=1 and review the diff.
func TestGolden(t *testing.T) {
	invite := call(push.KindCallInvite, goldenNow.Add(45*time.Second))
	cancel := call(push.KindCallCancel, goldenNow.Add(24*time.Hour))
	msg := message(1)
	msg.ResourceID = "chat"
	tests := []struct {
		name   string
		env    *push.Envelope
		target int
		ttl    time.Duration
		badges map[string]int
	}{
		{name: "alert-message", env: msg, ttl: 24 * time.Hour, badges: map[string]int{"u0": 3}},
		{name: "voip-invite", env: invite, target: 0, ttl: 45 * time.Second},
		{name: "voip-cancel", env: cancel, target: 0, ttl: 24 * time.Hour},
		{name: "missed-call-alert", env: cancel, target: 1, ttl: 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock(goldenNow)
			f := newFixture(t, apnsemu.Options{Now: clk.now})
			f.creds.Resources = map[string]apns.Resource{"chat": {Category: "MESSAGE"}}
			env := *tt.env
			env.Targets = []push.Target{tt.env.Targets[tt.target]}
			j := f.job(t, &env)
			j.TTL, j.Badges = tt.ttl, tt.badges
			if got := classes(apns.New(newMemoryCache(), clk.now, discard()).Send(t.Context(), j)); got != "ok" {
				t.Fatalf("result = %s, want ok", got)
			}
			r := f.emu.Received()
			if len(r) != 1 {
				t.Fatalf("emulator received %d pushes, want 1", len(r))
			}
			got := renderRequest(t, r[0])
			path := filepath.Join("testdata", tt.name+".golden")
			if os.Getenv("UPDATE_GOLDEN") == "1" {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with UPDATE_GOLDEN=1 to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s (-want +got):\n%s", path, diff)
			}
		})
	}
}

// renderRequest prints a received push as the golden files hold it: the
// request line, the APNs headers sorted, the provider token's header and
// claims (its signature differs on every mint), and the payload indented.
func renderRequest(t *testing.T, p apnsemu.Push) []byte {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("POST /3/device/" + p.Token + "\n")
	var names []string
	for name := range p.Header {
		n := strings.ToLower(name)
		if strings.HasPrefix(n, "apns-") || n == "authorization" || n == "content-type" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		v := p.Header.Get(n)
		if n == "authorization" {
			v = describeJWT(t, v)
		}
		b.WriteString(n + ": " + v + "\n")
	}
	b.WriteString("\n")
	if err := json.Indent(&b, p.Payload, "", "  "); err != nil {
		t.Fatal(err)
	}
	b.WriteString("\n")
	return b.Bytes()
}

func describeJWT(t *testing.T, header string) string {
	t.Helper()
	jwt, ok := strings.CutPrefix(header, "bearer ")
	parts := strings.Split(jwt, ".")
	if !ok || len(parts) != 3 {
		t.Fatalf("authorization %q is not a bearer JWT", header)
	}
	var out []string
	for _, seg := range parts[:2] {
		raw, err := base64.RawURLEncoding.DecodeString(seg)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(raw))
	}
	return "bearer " + strings.Join(out, ".") + ".<signature>"
}
