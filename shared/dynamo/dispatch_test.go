package dynamo_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/go-cmp/cmp"

	"github.com/offline-push/offline-push/shared/dynamo"
	"github.com/offline-push/offline-push/shared/push"
	"github.com/offline-push/offline-push/shared/testenv"
)

// dispatchEnv is one emulator and StateTable shared by the subtests of
// TestDispatchStore; each subtest uses its own app, so keys never collide.
type dispatchEnv struct {
	endpoint string
	table    string
	client   *dynamodb.Client
	store    *dynamo.DispatchStore
	devices  *dynamo.DeviceStore
}

func TestDispatchStore(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto_server")
	}
	srv := testenv.Moto(t)
	stack := testenv.Stack(t, srv.Endpoint)
	client := dynamodb.NewFromConfig(testenv.AWSConfig(srv.Endpoint))
	table := stack.Tables["StateTable"]
	e := &dispatchEnv{endpoint: srv.Endpoint, table: table, client: client,
		store: dynamo.NewDispatchStore(client, table), devices: dynamo.NewDeviceStore(client, table)}
	t.Run("Bound", e.testBound)
	t.Run("BoundUnprocessedKeys", e.testBoundUnprocessedKeys)
	t.Run("Unbind", e.testUnbind)
	t.Run("CountBadge", e.testCountBadge)
	t.Run("CountBadgeConcurrent", e.testCountBadgeConcurrent)
	t.Run("InviteMarks", e.testInviteMarks)
}

var dispatchT0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// bind commits a first registration of b for user, alert and VoIP token
// indexed, as the devices use case would.
func (e *dispatchEnv) bind(t *testing.T, app, user string, b push.Binding) {
	t.Helper()
	tokOwner := func(k push.TokenKind) *dynamo.TokenOwner {
		return &dynamo.TokenOwner{Owner: push.Owner{UserID: user, DeviceID: b.DeviceID}, Kind: k, Refreshed: dispatchT0}
	}
	c := dynamo.BindingChange{
		Profiles: []dynamo.ProfileChange{{UserID: user, Expect: []dynamo.HeldTokens{{DeviceID: b.DeviceID}}, Set: []push.Binding{b}}},
		Tokens:   []dynamo.TokenChange{{Key: dynamo.TokenKey{Vendor: b.Vendor, Token: b.Token}, Put: tokOwner(push.TokenAlert)}},
	}
	if b.VoIPToken != "" {
		c.Tokens = append(c.Tokens, dynamo.TokenChange{Key: dynamo.TokenKey{Vendor: b.Vendor, Token: b.VoIPToken}, Put: tokOwner(push.TokenVoIP)})
	}
	if err := e.devices.Commit(context.Background(), app, c); err != nil {
		t.Fatalf("register %s/%s: %v", user, b.DeviceID, err)
	}
}

func iosBinding(device, token, voip string) push.Binding {
	return push.Binding{DeviceID: device, Vendor: push.APNs, Token: token, VoIPToken: voip, CertName: "ios",
		Platform: push.PlatformIOS, Environment: push.Production, RegisteredAt: dispatchT0}
}

func hexToken(c byte) string { return strings.Repeat(string(c), 64) }

func dispatchPtr[T any](v T) *T { return &v }

func (e *dispatchEnv) testBound(t *testing.T) {
	ctx := context.Background()
	const app = "bound"
	e.bind(t, app, "bob", iosBinding("phone", hexToken('a'), hexToken('b')))
	e.bind(t, app, "carol", iosBinding("pad", hexToken('c'), ""))
	targets := []push.Target{
		{UserID: "bob", DeviceID: "phone", Token: hexToken('a')},                       // bound
		{UserID: "bob", DeviceID: "phone", Token: hexToken('b'), Kind: push.TokenVoIP}, // bound VoIP
		{UserID: "bob", DeviceID: "phone", Token: hexToken('b')},                       // the VoIP token as an alert target
		{UserID: "bob", DeviceID: "phone", Token: hexToken('c')},                       // carol's token
		{UserID: "bob", DeviceID: "other", Token: hexToken('a')},                       // another device of bob
		{UserID: "bob", DeviceID: "phone", Token: hexToken('d')},                       // no index item
		{UserID: "carol", DeviceID: "pad", Token: hexToken('c')},                       // bound
		{UserID: "carol", DeviceID: "pad", Token: hexToken('c')},                       // the same target twice
	}
	got, err := e.store.Bound(ctx, app, push.APNs, targets)
	if err != nil {
		t.Fatal(err)
	}
	want := []bool{true, true, false, false, false, false, true, true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Bound (-want +got):\n%s", diff)
	}
	// The same tokens under another vendor or app are not indexed.
	if got, err := e.store.Bound(ctx, app, push.FCM, targets[:1]); err != nil || got[0] {
		t.Errorf("Bound under fcm = %v, %v; want false", got, err)
	}
	if got, err := e.store.Bound(ctx, "other-app", push.APNs, targets[:1]); err != nil || got[0] {
		t.Errorf("Bound in another app = %v, %v; want false", got, err)
	}
}

// testBoundUnprocessedKeys reads 250 targets (three batches) through a proxy
// that leaves keys unprocessed and throttles: every answer still comes.
func (e *dispatchEnv) testBoundUnprocessedKeys(t *testing.T) {
	ctx := context.Background()
	const app = "bound-many"
	var targets []push.Target
	var want []bool
	for i := range 250 {
		tok := fmt.Sprintf("%064x", i)
		user := fmt.Sprintf("u%d", i)
		if i%2 == 0 {
			e.bind(t, app, user, iosBinding("d", tok, ""))
		}
		targets = append(targets, push.Target{UserID: user, DeviceID: "d", Token: tok})
		want = append(want, i%2 == 0)
	}
	proxy := testenv.NewProxy(t, e.endpoint, testenv.ProxyOptions{Seed: 3, UnprocessedRate: 0.4, ThrottleRate: 0.2})
	store := dynamo.NewDispatchStore(dynamodb.NewFromConfig(testenv.AWSConfig(proxy.URL)), e.table)
	got, err := store.Bound(ctx, app, push.APNs, targets)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Bound (-want +got):\n%s", diff)
	}
	if c := proxy.Counts()["BatchGetItem"]; c.ItemsRead != 125 || c.Faults == 0 {
		t.Errorf("BatchGetItem counts = %+v, want 125 items read and some faults injected", c)
	}
}

func (e *dispatchEnv) testUnbind(t *testing.T) {
	ctx := context.Background()
	const app = "unbind"
	// Cases name tokens by a letter; each case gets tokens of its own, since
	// a token may belong to one device of the app only.
	tests := []struct {
		name string
		// bind is registered first: device "phone" with the alert token
		// bind[0] and the VoIP token bind[1] (0: none); no binding when empty.
		bind   string
		target string // the dead token
		voip   bool   // the target is a VoIP target
		// want is the binding afterwards in the same notation; wantHeld the
		// tokens whose index item still names the user.
		want, wantHeld string
	}{
		{name: "a dead alert token removes the binding and both index items", bind: "av", target: "a"},
		{name: "a dead VoIP token removes only the VoIP token", bind: "av", target: "v", voip: true, want: "a0", wantHeld: "a"},
		{name: "a binding that holds another token now is left alone", bind: "cv", target: "a", want: "cv", wantHeld: "vc"},
		{name: "a VoIP target whose token is now the alert token is left alone", bind: "v0", target: "v", voip: true, want: "v0", wantHeld: "v"},
		{name: "no binding at all", target: "a"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			user := fmt.Sprintf("user-%d", i)
			tok := func(c byte) string { return fmt.Sprintf("%02x", i) + strings.Repeat(string(c), 62) }
			letter := map[byte]string{'a': tok('a'), 'v': tok('b'), 'c': tok('c'), '0': ""}
			binding := func(spec string) *push.Binding {
				if spec == "" {
					return nil
				}
				return dispatchPtr(iosBinding("phone", letter[spec[0]], letter[spec[1]]))
			}
			if b := binding(tc.bind); b != nil {
				e.bind(t, app, user, *b)
			}
			target := push.Target{UserID: user, DeviceID: "phone", Token: letter[tc.target[0]]}
			if tc.voip {
				target.Kind = push.TokenVoIP
			}
			if err := e.store.Unbind(ctx, app, push.APNs, target); err != nil {
				t.Fatalf("Unbind: %v", err)
			}
			bindings, _, err := e.devices.Devices(ctx, app, user)
			if err != nil {
				t.Fatal(err)
			}
			var got *push.Binding
			for _, b := range bindings {
				if b.DeviceID == "phone" {
					got = &b
				}
			}
			if diff := cmp.Diff(binding(tc.want), got); diff != "" {
				t.Errorf("binding after Unbind (-want +got):\n%s", diff)
			}
			var keys []dynamo.TokenKey
			for _, c := range []byte("avc") {
				keys = append(keys, dynamo.TokenKey{Vendor: push.APNs, Token: letter[c]})
			}
			snap, err := e.devices.Load(ctx, app, nil, keys)
			if err != nil {
				t.Fatal(err)
			}
			var held []byte
			for j, k := range keys {
				if o := snap.Tokens[k]; o != nil && o.Owner.UserID == user {
					held = append(held, "avc"[j])
				}
			}
			if want := sortedLetters(tc.wantHeld); string(held) != want {
				t.Errorf("index items held by the user: got %q, want %q", held, want)
			}
		})
	}
}

// sortedLetters orders token letters as testUnbind reads them: a, v, c.
func sortedLetters(s string) string {
	var out []byte
	for _, c := range []byte("avc") {
		if strings.IndexByte(s, c) >= 0 {
			out = append(out, c)
		}
	}
	return string(out)
}

func (e *dispatchEnv) testCountBadge(t *testing.T) {
	ctx := context.Background()
	const app = "badge"
	presence := dynamo.NewPresenceStore(e.client, e.table)
	if err := presence.SetBadge(ctx, app, "bob", 5); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		user, message string
		want          int
	}{
		{"bob", "m-1", 6},
		{"bob", "m-1", 6}, // a retry reuses the count
		{"bob", "m-2", 7},
		{"bob", "m-1", 6}, // still in its slot
		{"bob", "m-3", 8},
		{"carol", "m-1", 1}, // no base yet: counts from 0
		{"carol", "m-1", 1},
	}
	for i, s := range steps {
		got, err := e.store.CountBadge(ctx, app, s.user, s.message)
		if err != nil {
			t.Fatalf("step %d: CountBadge(%s, %s): %v", i, s.user, s.message, err)
		}
		if got != s.want {
			t.Errorf("step %d: CountBadge(%s, %s) = %d, want %d", i, s.user, s.message, got, s.want)
		}
	}
	if got, err := presence.Badge(ctx, app, "bob"); err != nil || got != 8 {
		t.Errorf("stored badge of bob = %d, %v; want 8", got, err)
	}
	// A new base clears the memory of counted messages.
	if err := presence.SetBadge(ctx, app, "bob", 0); err != nil {
		t.Fatal(err)
	}
	if got, err := e.store.CountBadge(ctx, app, "bob", "m-4"); err != nil || got != 1 {
		t.Errorf("CountBadge after a new base = %d, %v; want 1", got, err)
	}
}

// testCountBadgeConcurrent counts one message from many containers at once
// (serialized, as DynamoDB isolates writes to one item): one increment.
func (e *dispatchEnv) testCountBadgeConcurrent(t *testing.T) {
	ctx := context.Background()
	const app = "badge-race"
	proxy := testenv.NewProxy(t, e.endpoint, testenv.ProxyOptions{Serialize: true})
	var wg sync.WaitGroup
	got := make([]int, 8)
	errs := make([]error, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := dynamo.NewDispatchStore(dynamodb.NewFromConfig(testenv.AWSConfig(proxy.URL)), e.table)
			got[i], errs[i] = s.CountBadge(ctx, app, "dave", "m-1")
		}()
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil || got[i] != 1 {
			t.Errorf("container %d: CountBadge = %d, %v; want 1", i, got[i], errs[i])
		}
	}
}

func (e *dispatchEnv) testInviteMarks(t *testing.T) {
	ctx := context.Background()
	const app = "invites"
	calls := dynamo.NewCallStore(e.client, e.table)
	now := time.Now().UTC().Truncate(time.Millisecond)
	call := func(id string, at time.Duration) push.CallRecord {
		return push.CallRecord{CallID: id, AcceptedAt: now.Add(at), ExpiresAt: now.Add(at + time.Minute)}
	}
	devices := []push.CallDevice{{DeviceID: "phone", Vendor: push.APNs, CertName: "ios", Kind: push.TokenVoIP},
		{DeviceID: "pad", Vendor: push.APNs, CertName: "ios", Kind: push.TokenAlert}}
	if _, err := calls.Ring(ctx, app, "bob", call("c-1", 0), devices, now); err != nil {
		t.Fatal(err)
	}
	read := func(t *testing.T) *dynamo.CallStatus {
		t.Helper()
		got, err := e.store.Calls(ctx, app, []string{"bob", "nobody", "bob"}, now)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := got["nobody"]; ok || len(got) != 1 {
			t.Fatalf("Calls answered for %d users, want only bob", len(got))
		}
		return got["bob"]
	}
	until := now.Add(30 * time.Second)
	if ok, err := e.store.MarkSending(ctx, app, "bob", "c-1", []string{"phone", "pad"}, until); err != nil || !ok {
		t.Fatalf("MarkSending = %v, %v; want true", ok, err)
	}
	want := map[string]dynamo.InviteMark{
		"phone": {State: dynamo.InviteSending, At: until},
		"pad":   {State: dynamo.InviteSending, At: until},
	}
	st := read(t)
	if diff := cmp.Diff(want, st.Invites); diff != "" {
		t.Errorf("invites after MarkSending (-want +got):\n%s", diff)
	}
	if st.Record.CallID != "c-1" || st.Record.Cancelled {
		t.Errorf("call = %+v, want c-1 standing", st.Record)
	}
	if ok, err := e.store.MarkSending(ctx, app, "bob", "c-0", []string{"phone"}, until); err != nil || ok {
		t.Errorf("MarkSending of another call = %v, %v; want false", ok, err)
	}

	// The call is cancelled while its invite is in flight: no new sending
	// mark, but the outcome of the invite in flight is still recorded.
	if _, ok, err := calls.Cancel(ctx, app, "bob", "c-1", "x-1"); err != nil || !ok {
		t.Fatalf("Cancel = %v, %v", ok, err)
	}
	if ok, err := e.store.MarkSending(ctx, app, "bob", "c-1", []string{"phone"}, until); err != nil || ok {
		t.Errorf("MarkSending after the cancel = %v, %v; want false", ok, err)
	}
	done := now.Add(time.Second)
	if err := e.store.MarkDone(ctx, app, "bob", "c-1", map[string]string{"phone": dynamo.InviteSent, "pad": dynamo.InviteUnsent}, done); err != nil {
		t.Fatal(err)
	}
	want = map[string]dynamo.InviteMark{"phone": {State: dynamo.InviteSent, At: done}, "pad": {State: dynamo.InviteUnsent, At: done}}
	st = read(t)
	if diff := cmp.Diff(want, st.Invites); diff != "" {
		t.Errorf("invites after MarkDone (-want +got):\n%s", diff)
	}
	if !st.Record.Cancelled {
		t.Error("the call is not cancelled")
	}
	if err := e.store.MarkDone(ctx, app, "bob", "c-1", map[string]string{"phone": "bogus"}, done); err == nil {
		t.Error("MarkDone with an unknown state succeeded")
	}

	// A newer call: the marks of the old one no longer count, and marks of
	// the old call are not written over the new one.
	if ok, err := calls.Ring(ctx, app, "bob", call("c-2", time.Second), devices[:1], now); err != nil || !ok {
		t.Fatalf("Ring c-2 = %v, %v", ok, err)
	}
	if err := e.store.MarkDone(ctx, app, "bob", "c-1", map[string]string{"phone": dynamo.InviteSent}, done); err != nil {
		t.Fatal(err)
	}
	st = read(t)
	if st.Record.CallID != "c-2" || len(st.Invites) != 0 {
		t.Errorf("after a newer call: call %s with invites %v, want c-2 with none", st.Record.CallID, st.Invites)
	}
}
