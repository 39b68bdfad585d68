package ingest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/offline-push/offline-push/shared/policy"
	"github.com/offline-push/offline-push/shared/push"
)

// packJob returns a job for message m accepted at t0.
func packJob(m push.Message) *job {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	if m.Call != nil {
		m.Call.AcceptedAt = t0
	}
	j := &job{app: "demo", in: &Input{Message: m}, clock: t0, accepted: t0}
	j.prep = policy.Prepare(&j.in.Message)
	return j
}

// pushes returns n push decisions for devices of vendor v under cert, with
// tokens of tokenLen characters and texts cycling through langs.
func pushes(n int, v push.Vendor, cert string, tokenLen int, langs []string) []push.Decision {
	ds := make([]push.Decision, n)
	for i := range ds {
		b := &push.Binding{
			DeviceID: "d", Vendor: v, CertName: cert, Platform: push.DefaultPlatform(v),
			Token: fmt.Sprintf("%0*d", tokenLen, i),
		}
		if v == push.APNs {
			b.Environment = push.Production
			b.VoIPToken = fmt.Sprintf("%064x", i)
		}
		lang := langs[i%len(langs)]
		ds[i] = push.Decision{
			UserID: fmt.Sprintf("u%05d", i), DeviceID: "d", Vendor: v, Push: true, Reason: push.ReasonRemindAll,
			Title: "Alice", Content: "Alice: text in " + lang, Language: lang, Binding: b,
		}
	}
	return ds
}

func pack(t *testing.T, j *job, ds []push.Decision) map[push.Vendor][]Outgoing {
	t.Helper()
	p := newPacker(j, 3)
	for i := range ds {
		if err := p.add(&ds[i]); err != nil {
			t.Fatalf("add: %v", err)
		}
	}
	if err := p.flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	return p.out
}

func TestPackCountsAndBytes(t *testing.T) {
	msg := push.Message{ID: "m-1", Kind: push.KindMessage, Sender: push.Sender{UserID: "alice"},
		Conversation: push.Conversation{Type: push.Group, ID: "g1"}, TTL: time.Hour,
		Content: push.Content{Badge: true, Payload: map[string]string{"k": "v"}}}
	tests := []struct {
		name      string
		ds        []push.Decision
		vendor    push.Vendor
		want      []int // targets per envelope
		wantTexts int   // texts per envelope
	}{
		{"500 targets per envelope, three languages in one table",
			pushes(1200, push.APNs, "ios", 64, []string{"en", "zh", "fr"}), push.APNs, []int{500, 500, 200}, 3},
		{"long FCM tokens fill 64 KB first",
			pushes(100, push.FCM, "fcm", 4096, []string{"en"}), push.FCM, []int{15, 15, 15, 15, 15, 15, 10}, 1},
	}
	for _, tt := range tests {
		out := pack(t, packJob(msg), tt.ds)
		var got []int
		seen := map[string]bool{}
		for k, o := range out[tt.vendor] {
			if want := fmt.Sprintf("c3-%s-%d", tt.vendor, k); o.ID != want {
				t.Errorf("%s: envelope %d id %q, want %q", tt.name, k, o.ID, want)
			}
			got = append(got, len(o.Envelope.Targets))
			b, err := push.EncodeEnvelope(o.Envelope)
			if err != nil || len(b) > push.MaxEnvelopeBytes {
				t.Errorf("%s: envelope %d encodes to %d bytes (%v), limit %d", tt.name, k, len(b), err, push.MaxEnvelopeBytes)
			}
			if len(o.Envelope.Texts) != tt.wantTexts {
				t.Errorf("%s: envelope %d has %d texts, want %d", tt.name, k, len(o.Envelope.Texts), tt.wantTexts)
			}
			for _, tg := range o.Envelope.Targets {
				if seen[tg.UserID] {
					t.Errorf("%s: target %s packed twice", tt.name, tg.UserID)
				}
				seen[tg.UserID] = true
				if tx := o.Envelope.Texts[tg.Text]; !strings.HasSuffix(tx.Body, tx.Lang) {
					t.Errorf("%s: target %s has text %+v", tt.name, tg.UserID, tx)
				}
			}
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: targets per envelope (-want +got):\n%s", tt.name, diff)
		}
		if len(seen) != len(tt.ds) {
			t.Errorf("%s: %d targets packed, want %d", tt.name, len(seen), len(tt.ds))
		}
	}
}

func TestPackDeterministic(t *testing.T) {
	msg := push.Message{ID: "m-2", Kind: push.KindMessage, Sender: push.Sender{UserID: "alice"},
		Conversation: push.Conversation{Type: push.Group, ID: "g1"}, TTL: time.Hour}
	mixed := func() []push.Decision {
		var ds []push.Decision
		ds = append(ds, pushes(700, push.APNs, "ios", 64, []string{"en", "zh"})...)
		ds = append(ds, pushes(300, push.FCM, "fcm", 160, []string{"en"})...)
		ds = append(ds, pushes(40, push.APNs, "ios-enterprise", 64, []string{"en"})...)
		for i := 0; i < len(ds); i += 7 {
			ds[i].Reason = push.ReasonForced
		}
		return ds
	}
	a, b := pack(t, packJob(msg), mixed()), pack(t, packJob(msg), mixed())
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("two packings of the same decisions differ (-first +second):\n%s", diff)
	}
	// Groups: cert and priority each get their own envelopes.
	type group struct {
		cert     string
		priority push.Priority
	}
	counts := map[group]int{}
	for _, o := range a[push.APNs] {
		counts[group{o.Envelope.CertName, o.Envelope.Priority}] += len(o.Envelope.Targets)
	}
	want := map[group]int{
		{"ios", push.PriorityNormal}:            600,
		{"ios", push.PriorityHigh}:              100,
		{"ios-enterprise", push.PriorityNormal}: 34,
		{"ios-enterprise", push.PriorityHigh}:   6,
	}
	if diff := cmp.Diff(want, counts); diff != "" {
		t.Errorf("APNs targets by cert and priority (-want +got):\n%s", diff)
	}
}

func TestPackCalls(t *testing.T) {
	msg := push.Message{ID: "m-3", Kind: push.KindCallInvite, Sender: push.Sender{UserID: "alice"},
		Conversation: push.Conversation{Type: push.Peer}, TTL: time.Hour,
		Call: &push.Call{ID: "c-9", Media: push.MediaVideo, Timeout: 30 * time.Second}}
	j := packJob(msg)
	ds := append(pushes(2, push.APNs, "ios", 64, []string{"en"}), pushes(1, push.Xiaomi, "mi", 30, []string{"en"})...)
	ds[0].VoIP = true
	ds[2].UserID = "u00000" // the same callee as the first
	out := pack(t, j, ds)
	apns := out[push.APNs][0].Envelope
	if apns.Priority != push.PriorityHigh || apns.CallID != "c-9" || apns.Media != push.MediaVideo ||
		apns.ExpiresAt != j.accepted.Add(30*time.Second).UnixMilli() || apns.CollapseID != "" || apns.Badge {
		t.Errorf("invite envelope = %+v", apns)
	}
	if tg := apns.Targets[0]; tg.Kind != push.TokenVoIP || tg.Token != ds[0].Binding.VoIPToken || tg.CollapseID != "c:u00000" {
		t.Errorf("VoIP target = %+v", tg)
	}
	if tg := apns.Targets[1]; tg.TokenKind() != push.TokenAlert || tg.Token != ds[1].Binding.Token || tg.CollapseID != "c:u00001" {
		t.Errorf("alert target = %+v", tg)
	}
	mi := out[push.Xiaomi][0].Envelope
	_, wantID := push.CollapseFor(push.Xiaomi, push.CallCollapseKey("u00000"))
	if _, n := mi.Collapse(&mi.Targets[0]); n != wantID || n == 0 {
		t.Errorf("Xiaomi notify id = %d, want %d", n, wantID)
	}
}

func TestResultStorage(t *testing.T) {
	big := strings.Repeat("x", 2000)
	res := &Result{MessageID: "m-1", Recipients: 2, Devices: 1, Pushes: 1,
		Skipped: map[push.Reason]int{push.ReasonNoDevices: 1}, Explained: true}
	for i := range 1000 {
		c := fmt.Sprintf("%d %s", i, big) // distinct texts compress poorly
		d, v := "phone", "apns"
		res.Decisions = append(res.Decisions, Decision{UserID: fmt.Sprintf("u%d", i), DeviceID: &d, Vendor: &v, Push: true, Reason: push.ReasonRemindAll, Content: &c})
	}
	for _, r := range []*Result{{MessageID: "m-0", Skipped: map[push.Reason]int{}}, res} {
		b, err := encodeStored(r)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > maxStoredResult {
			t.Errorf("stored %d bytes, limit %d", len(b), maxStoredResult)
		}
		got, err := decodeStored(b)
		if err != nil {
			t.Fatal(err)
		}
		if got.MessageID != r.MessageID || got.Pushes != r.Pushes || got.Explained != r.Explained || len(got.Decisions) != len(r.Decisions) {
			t.Errorf("round trip of %s = %+v", r.MessageID, got)
		}
	}
}
