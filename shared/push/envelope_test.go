package push_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/offline-push/offline-push/shared/push"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	e := &push.Envelope{
		Version: push.EnvelopeVersion, App: "demo", Vendor: push.APNs, CertName: "ios", MessageID: "m-1",
		Kind: push.KindCallInvite, SenderID: "alice", ConversationType: push.Peer, CallID: "c-9",
		Media: push.MediaVideo, ExpiresAt: 1_800_000_000_000, Priority: push.PriorityHigh,
		Texts:   []push.EnvelopeText{{Title: "Alice", Body: "Incoming call", Lang: "en"}},
		Payload: map[string]string{"k": "v"},
		Targets: []push.Target{
			{UserID: "bob", DeviceID: "phone", Token: strings.Repeat("a", 64), Kind: push.TokenVoIP, Environment: push.Sandbox, Platform: push.PlatformIOS, CollapseID: "c:bob"},
			{UserID: "bob", DeviceID: "pad", Token: strings.Repeat("b", 64), Platform: push.PlatformIOS},
		},
	}
	b, err := push.EncodeEnvelope(e)
	if err != nil {
		t.Fatal(err)
	}
	got, err := push.DecodeEnvelope(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(e, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if k, env := got.Targets[1].TokenKind(), got.Targets[1].APNsEnvironment(); k != push.TokenAlert || env != push.Production {
		t.Errorf("defaults of a plain target = %s, %s, want alert, production", k, env)
	}
	if id, _ := got.Collapse(&got.Targets[0]); id != "c:bob" {
		t.Errorf("target collapse id = %q, want its own", id)
	}
}

func TestDecodeEnvelopeRefuses(t *testing.T) {
	tests := []struct{ name, body string }{
		{"other version", `{"v": 2, "texts": [{"t": "", "b": ""}], "targets": [{"u": "u", "d": "d", "tk": "t", "x": 0}]}`},
		{"no targets", `{"v": 1, "texts": [], "targets": []}`},
		{"text index out of range", `{"v": 1, "texts": [{"t": "", "b": ""}], "targets": [{"u": "u", "d": "d", "tk": "t", "x": 1}]}`},
		{"not JSON", `{"v": 1,`},
	}
	for _, tt := range tests {
		if _, err := push.DecodeEnvelope([]byte(tt.body)); err == nil {
			t.Errorf("%s: DecodeEnvelope = nil error, want one", tt.name)
		}
	}
}

func TestCollapseFor(t *testing.T) {
	long := push.MessageCollapseKey(strings.Repeat("m", 128))
	for _, v := range push.Vendors {
		for _, key := range []string{push.MessageCollapseKey("m-1"), push.CallCollapseKey("bob"), long} {
			id, n := push.CollapseFor(v, key)
			id2, n2 := push.CollapseFor(v, key)
			if id != id2 || n != n2 {
				t.Errorf("%s %q: not deterministic", v, key)
			}
			switch v {
			case push.Meizu:
				if len(id) != 8 {
					t.Errorf("meizu notifyKey %q has %d chars, want 8", id, len(id))
				}
			default:
				if len(id) == 0 || len(id) > 64 {
					t.Errorf("%s collapse id %q has %d bytes, want 1 to 64", v, id, len(id))
				}
			}
			switch v {
			case push.Xiaomi, push.Vivo, push.OPPO, push.Huawei, push.Honor:
				if n < 1 {
					t.Errorf("%s notify id %d, want 1 to 2147483647", v, n)
				}
			default:
				if n != 0 {
					t.Errorf("%s notify id %d, want none", v, n)
				}
			}
		}
	}
	if id, _ := push.CollapseFor(push.APNs, "m:m-1"); id != "m:m-1" {
		t.Errorf("short key = %q, want it unchanged", id)
	}
	a, _ := push.CollapseFor(push.Xiaomi, push.CallCollapseKey("bob"))
	b, _ := push.CollapseFor(push.Xiaomi, push.CallCollapseKey("carol"))
	if a == b {
		t.Error("two callees share a collapse id")
	}
}
