package devices

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/offline-push/offline-push/shared/push"
)

var (
	t0  = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	now = t0.Add(time.Hour)
)

func bind(device, token, voip string) push.Binding {
	return push.Binding{DeviceID: device, Vendor: push.APNs, Token: token, VoIPToken: voip, CertName: "ios",
		Platform: push.PlatformIOS, Environment: push.Production, RegisteredAt: t0}
}

func entry(user, device string, kind push.TokenKind) *IndexEntry {
	return &IndexEntry{Owner: push.Owner{UserID: user, DeviceID: device}, Kind: kind, Refreshed: t0}
}

func ref(token string) TokenRef { return TokenRef{Vendor: push.APNs, Token: token} }

func put(user, device string, kind push.TokenKind) *IndexEntry {
	return &IndexEntry{Owner: push.Owner{UserID: user, DeviceID: device}, Kind: kind, Refreshed: now}
}

func held(b push.Binding) Held {
	return Held{DeviceID: b.DeviceID, Bound: true, Token: b.Token, VoIPToken: b.VoIPToken}
}

func TestPlan(t *testing.T) {
	newB := bind("phone", "T", "")
	newB.RegisteredAt = now
	newBV := bind("phone", "T", "V")
	newBV.RegisteredAt = now
	oldAlice := bind("x", "T", "VA")
	voipHolder := bind("y", "TA", "V")
	voipLess := voipHolder
	voipLess.VoIPToken = ""

	tests := []struct {
		name      string
		snap      Snapshot
		in        intent
		want      Plan
		wantMoved *push.Owner
	}{
		{
			name: "first registration",
			snap: Snapshot{
				Profiles: map[string]map[string]push.Binding{"bob": nil},
				Index:    map[TokenRef]*IndexEntry{ref("T"): nil},
			},
			in: intent{user: "bob", device: "phone", binding: &newB},
			want: Plan{
				Profiles: []ProfileWrite{{UserID: "bob", Expect: []Held{{DeviceID: "phone"}}, Set: []push.Binding{newB}}},
				Index:    []IndexWrite{{Ref: ref("T"), Put: put("bob", "phone", push.TokenAlert)}},
			},
		},
		{
			name: "refresh moves nothing and refreshes the index",
			snap: Snapshot{
				Profiles: map[string]map[string]push.Binding{"bob": {"phone": bind("phone", "T", "")}},
				Index:    map[TokenRef]*IndexEntry{ref("T"): entry("bob", "phone", push.TokenAlert)},
			},
			in: intent{user: "bob", device: "phone", binding: &newB},
			want: Plan{
				Profiles: []ProfileWrite{{UserID: "bob", Expect: []Held{held(bind("phone", "T", ""))}, Set: []push.Binding{newB}}},
				Index: []IndexWrite{{Ref: ref("T"), Expect: entry("bob", "phone", push.TokenAlert),
					Put: put("bob", "phone", push.TokenAlert)}},
			},
		},
		{
			name: "new token replaces the old one, whose index entry goes",
			snap: Snapshot{
				Profiles: map[string]map[string]push.Binding{"bob": {"phone": bind("phone", "OLD", "OLDV")}},
				Index: map[TokenRef]*IndexEntry{
					ref("T"): nil, ref("OLD"): entry("bob", "phone", push.TokenAlert),
					ref("OLDV"): entry("bob", "phone", push.TokenVoIP),
				},
			},
			in: intent{user: "bob", device: "phone", binding: &newB},
			want: Plan{
				Profiles: []ProfileWrite{{UserID: "bob", Expect: []Held{held(bind("phone", "OLD", "OLDV"))}, Set: []push.Binding{newB}}},
				Index: []IndexWrite{
					{Ref: ref("T"), Put: put("bob", "phone", push.TokenAlert)},
					{Ref: ref("OLD"), Expect: entry("bob", "phone", push.TokenAlert), Delete: true},
					{Ref: ref("OLDV"), Expect: entry("bob", "phone", push.TokenVoIP), Delete: true},
				},
			},
		},
		{
			name: "alert token moves from another user with its VoIP token",
			snap: Snapshot{
				Profiles: map[string]map[string]push.Binding{"bob": {}, "alice": {"x": oldAlice, "other": bind("other", "Z", "")}},
				Index: map[TokenRef]*IndexEntry{
					ref("T"): entry("alice", "x", push.TokenAlert), ref("VA"): entry("alice", "x", push.TokenVoIP),
				},
			},
			in: intent{user: "bob", device: "phone", binding: &newB},
			want: Plan{
				Profiles: []ProfileWrite{
					{UserID: "alice", Expect: []Held{held(oldAlice)}, Remove: []string{"x"}},
					{UserID: "bob", Expect: []Held{{DeviceID: "phone"}}, Set: []push.Binding{newB}},
				},
				Index: []IndexWrite{
					{Ref: ref("T"), Expect: entry("alice", "x", push.TokenAlert), Put: put("bob", "phone", push.TokenAlert)},
					{Ref: ref("VA"), Expect: entry("alice", "x", push.TokenVoIP), Delete: true},
				},
			},
			wantMoved: &push.Owner{UserID: "alice", DeviceID: "x"},
		},
		{
			name: "VoIP token moves alone: the old device keeps its alert token",
			snap: Snapshot{
				Profiles: map[string]map[string]push.Binding{"bob": {}, "carol": {"y": voipHolder}},
				Index: map[TokenRef]*IndexEntry{
					ref("T"): nil, ref("V"): entry("carol", "y", push.TokenVoIP),
				},
			},
			in: intent{user: "bob", device: "phone", binding: &newBV},
			want: Plan{
				Profiles: []ProfileWrite{
					{UserID: "bob", Expect: []Held{{DeviceID: "phone"}}, Set: []push.Binding{newBV}},
					{UserID: "carol", Expect: []Held{held(voipHolder)}, RemoveVoIP: []string{"y"}},
				},
				Index: []IndexWrite{
					{Ref: ref("T"), Put: put("bob", "phone", push.TokenAlert)},
					{Ref: ref("V"), Expect: entry("carol", "y", push.TokenVoIP), Put: put("bob", "phone", push.TokenVoIP)},
				},
			},
			wantMoved: &push.Owner{UserID: "carol", DeviceID: "y"},
		},
		{
			name: "move between two devices of one user is one merged write",
			snap: Snapshot{
				Profiles: map[string]map[string]push.Binding{"bob": {"tablet": bind("tablet", "T", "")}},
				Index:    map[TokenRef]*IndexEntry{ref("T"): entry("bob", "tablet", push.TokenAlert)},
			},
			in: intent{user: "bob", device: "phone", binding: &newB},
			want: Plan{
				Profiles: []ProfileWrite{{
					UserID: "bob",
					Expect: []Held{{DeviceID: "phone"}, held(bind("tablet", "T", ""))},
					Set:    []push.Binding{newB},
					Remove: []string{"tablet"},
				}},
				Index: []IndexWrite{{Ref: ref("T"), Expect: entry("bob", "tablet", push.TokenAlert), Put: put("bob", "phone", push.TokenAlert)}},
			},
			wantMoved: &push.Owner{UserID: "bob", DeviceID: "tablet"},
		},
		{
			name: "a stale index entry moves nothing but is checked",
			snap: Snapshot{
				Profiles: map[string]map[string]push.Binding{"bob": {}, "alice": {"x": bind("x", "OTHER", "")}},
				Index:    map[TokenRef]*IndexEntry{ref("T"): entry("alice", "x", push.TokenAlert), ref("OTHER"): entry("alice", "x", push.TokenAlert)},
			},
			in: intent{user: "bob", device: "phone", binding: &newB},
			want: Plan{
				Profiles: []ProfileWrite{
					{UserID: "alice", Expect: []Held{held(bind("x", "OTHER", ""))}},
					{UserID: "bob", Expect: []Held{{DeviceID: "phone"}}, Set: []push.Binding{newB}},
				},
				Index: []IndexWrite{{Ref: ref("T"), Expect: entry("alice", "x", push.TokenAlert), Put: put("bob", "phone", push.TokenAlert)}},
			},
		},
		{
			name: "unregister removes the binding and both index entries",
			snap: Snapshot{
				Profiles: map[string]map[string]push.Binding{"bob": {"phone": bind("phone", "T", "V")}},
				Index:    map[TokenRef]*IndexEntry{ref("T"): entry("bob", "phone", push.TokenAlert), ref("V"): entry("bob", "phone", push.TokenVoIP)},
			},
			in: intent{user: "bob", device: "phone"},
			want: Plan{
				Profiles: []ProfileWrite{{UserID: "bob", Expect: []Held{held(bind("phone", "T", "V"))}, Remove: []string{"phone"}}},
				Index: []IndexWrite{
					{Ref: ref("T"), Expect: entry("bob", "phone", push.TokenAlert), Delete: true},
					{Ref: ref("V"), Expect: entry("bob", "phone", push.TokenVoIP), Delete: true},
				},
			},
		},
		{
			name: "unregister leaves an index entry that names someone else, checked",
			snap: Snapshot{
				Profiles: map[string]map[string]push.Binding{"bob": {"phone": bind("phone", "T", "")}},
				Index:    map[TokenRef]*IndexEntry{ref("T"): entry("zed", "z", push.TokenAlert)},
			},
			in: intent{user: "bob", device: "phone"},
			want: Plan{
				Profiles: []ProfileWrite{{UserID: "bob", Expect: []Held{held(bind("phone", "T", ""))}, Remove: []string{"phone"}}},
				Index:    []IndexWrite{{Ref: ref("T"), Expect: entry("zed", "z", push.TokenAlert)}},
			},
		},
		{
			name: "unregister of an unbound device does nothing",
			snap: Snapshot{Profiles: map[string]map[string]push.Binding{"bob": {}}},
			in:   intent{user: "bob", device: "phone"},
			want: Plan{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if users, tokens := missing(tt.snap, tt.in); len(users)+len(tokens) > 0 {
				t.Fatalf("snapshot incomplete: missing users %v, tokens %v", users, tokens)
			}
			got, moved := plan(tt.snap, tt.in, now)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("plan mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantMoved, moved); diff != "" {
				t.Errorf("movedFrom mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMissingReadsInRounds(t *testing.T) {
	b := bind("phone", "T", "V")
	in := intent{user: "bob", device: "phone", binding: &b}
	snap := Snapshot{Profiles: map[string]map[string]push.Binding{}, Index: map[TokenRef]*IndexEntry{}}
	type round struct {
		users  []string
		tokens []TokenRef
	}
	var got []round
	// The table as the rounds find it: bob's phone holds OLD; alice's x holds
	// T as its alert token with VoIP token VA; carol's y holds V.
	profiles := map[string]map[string]push.Binding{
		"bob":   {"phone": bind("phone", "OLD", "")},
		"alice": {"x": bind("x", "T", "VA")},
		"carol": {"y": bind("y", "TC", "V")},
	}
	index := map[TokenRef]*IndexEntry{
		ref("T"): entry("alice", "x", push.TokenAlert), ref("V"): entry("carol", "y", push.TokenVoIP),
		ref("OLD"): entry("bob", "phone", push.TokenAlert), ref("VA"): entry("alice", "x", push.TokenVoIP),
	}
	for len(got) < 5 {
		users, tokens := missing(snap, in)
		if len(users)+len(tokens) == 0 {
			break
		}
		got = append(got, round{users, tokens})
		for _, u := range users {
			snap.Profiles[u] = profiles[u]
		}
		for _, r := range tokens {
			snap.Index[r] = index[r]
		}
	}
	want := []round{
		{users: []string{"bob"}, tokens: []TokenRef{ref("T"), ref("V")}},
		{users: []string{"alice", "carol"}, tokens: []TokenRef{ref("OLD")}},
		{tokens: []TokenRef{ref("VA")}},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(round{})); diff != "" {
		t.Errorf("read rounds mismatch (-want +got):\n%s", diff)
	}
	p, moved := plan(snap, in, now)
	if diff := cmp.Diff(&push.Owner{UserID: "alice", DeviceID: "x"}, moved); diff != "" {
		t.Errorf("movedFrom mismatch (-want +got):\n%s", diff)
	}
	if n := len(p.Profiles); n != 3 {
		t.Errorf("plan writes %d profiles, want 3 (bob, alice, carol)", n)
	}
	if n := len(p.Index); n != 4 {
		t.Errorf("plan writes %d index items, want 4 (T, V, OLD, VA)", n)
	}
}
