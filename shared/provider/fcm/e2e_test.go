package fcm_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/offline-push/offline-push/shared/e2e"
	fcmemu "github.com/offline-push/offline-push/shared/emulator/fcm"
	"github.com/offline-push/offline-push/shared/provider/fcm"
	"github.com/offline-push/offline-push/shared/push"
)

// The end-to-end tests follow messages from the HTTP routes (devices,
// ingest) through the FCM queue on moto and the FCM dispatch function,
// built by app.DispatchTo with this provider, to the FCM emulator (OAuth
// token endpoint and messages:send).

// fcmE2E is the pipeline and the emulator at its end.
type fcmE2E struct {
	*e2e.Env
	emu *fcmemu.Server
}

func newFCME2E(t *testing.T, maxReceives int) *fcmE2E {
	t.Helper()
	emu := fcmemu.New(fcmemu.Options{})
	t.Cleanup(emu.Close)
	sa, err := fcmemu.NewServiceAccount("demo-push", emu.TokenURI())
	if err != nil {
		t.Fatal(err)
	}
	if err := emu.AddServiceAccountJSON(sa.JSON()); err != nil {
		t.Fatal(err)
	}
	env := e2e.New(t, e2e.Options{Vendor: push.FCM, CertName: "android-fcm", Credentials: secret(t, sa, emu.Endpoint(), nil), MaxReceiveCount: maxReceives})
	return &fcmE2E{Env: env, emu: emu}
}

// fcmToken is a distinct registration token for n.
func fcmToken(n int) string { return fmt.Sprintf("e2e-fcm-token-%04d:APA91b", n) }

// fcmReceipt is what a test checks of one accepted push.
type fcmReceipt struct {
	Token, Type, MessageID, CallID, Priority, Tag, Body string
}

// receipts returns the pushes the emulator accepted. A call is a data
// message (the app rings itself); a chat message a notification.
func (x *fcmE2E) receipts(t *testing.T) []fcmReceipt {
	t.Helper()
	var out []fcmReceipt
	for _, r := range x.emu.Received() {
		var m struct {
			Data    map[string]string `json:"data"`
			Android struct {
				Priority     string `json:"priority"`
				Notification *struct {
					Body string `json:"body"`
					Tag  string `json:"tag"`
				} `json:"notification"`
			} `json:"android"`
		}
		if err := json.Unmarshal(r.Message, &m); err != nil {
			t.Fatalf("message %s: %v", r.Message, err)
		}
		rc := fcmReceipt{Token: r.Token, Type: m.Data["type"], MessageID: m.Data["messageId"], CallID: m.Data["callId"],
			Priority: m.Android.Priority, Tag: m.Data["tag"], Body: m.Data["body"]}
		if n := m.Android.Notification; n != nil {
			rc.Tag, rc.Body = n.Tag, n.Body
		}
		out = append(out, rc)
	}
	return out
}

var anyOrder = cmpopts.SortSlices(func(a, b fcmReceipt) bool { return a.MessageID+a.Token < b.MessageID+b.Token })

// TestE2EMessages sends a peer and a group message from the ingest route to
// the emulator.
func TestE2EMessages(t *testing.T) {
	x := newFCME2E(t, 0)
	h, m := x.Dispatch(t, fcm.New(time.Now, discard()))
	users := []string{"bob", "carol", "dave"}
	for i, u := range users {
		x.Register(t, u, "phone", e2e.Device{Token: fcmToken(i)})
	}
	tests := []struct {
		name string
		msg  e2e.Message
		want []fcmReceipt
	}{
		{"peer", e2e.Message{ID: "m-peer", Kind: push.KindMessage, Recipients: []string{"bob"}, Content: "hi bob"}, []fcmReceipt{
			{Token: fcmToken(0), Type: "message", MessageID: "m-peer", Priority: "high", Tag: push.MessageCollapseKey("m-peer"), Body: "Alice: hi bob"},
		}},
		{"group", e2e.Message{ID: "m-group", Kind: push.KindMessage, Group: "g1", Recipients: users, Content: "lunch?"}, []fcmReceipt{
			{Token: fcmToken(0), Type: "message", MessageID: "m-group", Priority: "high", Tag: push.MessageCollapseKey("m-group"), Body: "Alice: lunch?"},
			{Token: fcmToken(1), Type: "message", MessageID: "m-group", Priority: "high", Tag: push.MessageCollapseKey("m-group"), Body: "Alice: lunch?"},
			{Token: fcmToken(2), Type: "message", MessageID: "m-group", Priority: "high", Tag: push.MessageCollapseKey("m-group"), Body: "Alice: lunch?"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x.emu.Reset()
			m.Reset()
			if got := x.Post(t, tc.msg.JSON()); got.Pushes != len(tc.want) {
				t.Fatalf("ingest pushes = %d, want %d", got.Pushes, len(tc.want))
			}
			x.Drain(t, h)
			if diff := cmp.Diff(tc.want, x.receipts(t), anyOrder); diff != "" {
				t.Errorf("pushes (-want +got):\n%s", diff)
			}
			if got, want := e2e.Final(m.Counts()), map[string]int{"delivered": len(tc.want)}; !cmp.Equal(got, want) {
				t.Errorf("outcomes = %v, want %v", got, want)
			}
		})
	}
}

func fcmInvite(id, user, call string) e2e.Message {
	return e2e.Message{ID: id, Kind: push.KindCallInvite, Recipients: []string{user}, Content: "Incoming call", CallID: call, TimeoutSeconds: 60}
}

func fcmCancel(id, user, call string) e2e.Message {
	return e2e.Message{ID: id, Kind: push.KindCallCancel, Recipients: []string{user}, CallID: call}
}

// TestE2ECalls follows call invites and cancels (POLICY.md §7) to Android
// phones: the invite rings as a high-priority data message; a cancel after
// it went out reaches the phone as a "missed call" under the same collapse
// tag; a cancel before dispatch drops the queued invite; a newer call
// supersedes an older one still queued.
func TestE2ECalls(t *testing.T) {
	x := newFCME2E(t, 0)
	h, m := x.Dispatch(t, fcm.New(time.Now, discard()))
	tag := func(user string) string { id, _ := push.CollapseFor(push.FCM, push.CallCollapseKey(user)); return id }
	for i, u := range []string{"bob", "carol", "dave"} {
		x.Register(t, u, "phone", e2e.Device{Token: fcmToken(10 + i)})
	}

	t.Run("invite then cancel after dispatch", func(t *testing.T) {
		x.emu.Reset()
		m.Reset()
		x.Post(t, fcmInvite("c1-invite", "bob", "c1").JSON())
		x.Drain(t, h)
		x.Post(t, fcmCancel("c1-cancel", "bob", "c1").JSON())
		x.Drain(t, h)
		want := []fcmReceipt{
			{Token: fcmToken(10), Type: "call_invite", MessageID: "c1-invite", CallID: "c1", Priority: "high", Tag: tag("bob"), Body: "Alice: Incoming call"},
			{Token: fcmToken(10), Type: "call_cancel", MessageID: "c1-cancel", CallID: "c1", Priority: "high", Tag: tag("bob"), Body: push.DefaultCancelContent},
		}
		if diff := cmp.Diff(want, x.receipts(t), anyOrder); diff != "" {
			t.Errorf("pushes (-want +got):\n%s", diff)
		}
		if got, want := e2e.Final(m.Counts()), map[string]int{"delivered": 2}; !cmp.Equal(got, want) {
			t.Errorf("outcomes = %v, want %v", got, want)
		}
	})

	t.Run("cancel before dispatch", func(t *testing.T) {
		x.emu.Reset()
		m.Reset()
		x.Post(t, fcmInvite("c2-invite", "carol", "c2").JSON())
		x.Post(t, fcmCancel("c2-cancel", "carol", "c2").JSON())
		x.Drain(t, h)
		if got := x.receipts(t); len(got) != 0 {
			t.Errorf("pushes = %+v, want none: the invite was cancelled before dispatch", got)
		}
		if got := e2e.Final(m.Counts()); got["call_cancelled"] < 1 || len(got) != 1 {
			t.Errorf("outcomes = %v, want only call_cancelled, the invite's target at least", got)
		}
	})

	t.Run("newer call supersedes", func(t *testing.T) {
		x.emu.Reset()
		m.Reset()
		x.Post(t, fcmInvite("c3-invite", "dave", "c3").JSON())
		x.Post(t, fcmInvite("c4-invite", "dave", "c4").JSON())
		x.Drain(t, h)
		want := []fcmReceipt{
			{Token: fcmToken(12), Type: "call_invite", MessageID: "c4-invite", CallID: "c4", Priority: "high", Tag: tag("dave"), Body: "Alice: Incoming call"},
		}
		if diff := cmp.Diff(want, x.receipts(t), anyOrder); diff != "" {
			t.Errorf("pushes (-want +got):\n%s", diff)
		}
		if got, want := e2e.Final(m.Counts()), map[string]int{"delivered": 1, "call_superseded": 1}; !cmp.Equal(got, want) {
			t.Errorf("outcomes = %v, want %v", got, want)
		}
	})
}

// TestE2EFaultAccounting posts messages while the emulator fails about 30%
// of sends transiently (500 INTERNAL, 503 UNAVAILABLE, which the SDK
// retries itself), throttles some (429) and calls 5% of the tokens
// UNREGISTERED, then one more message while every send fails. From outside
// the counting code (the emulator's receipts, the dead-letter queue and the
// bindings left in DynamoDB) every target must end in exactly one outcome,
// and the dispatch function's own counts must agree.
func TestE2EFaultAccounting(t *testing.T) {
	x := newFCME2E(t, 3)
	h1, m1 := x.Dispatch(t, fcm.New(time.Now, discard()))
	h2, m2 := x.Dispatch(t, fcm.New(time.Now, discard()))
	const users, per, doomedUsers = 60, 6, 4
	type target struct{ user, token string }
	var all []target
	dead := map[string]bool{}
	faults := map[string]fcmemu.Fault{}
	for i := range users + doomedUsers {
		tg := target{fmt.Sprintf("user%02d", i), fcmToken(i)}
		x.Register(t, tg.user, "phone", e2e.Device{Token: tg.token})
		all = append(all, tg)
		if i < users && i%20 == 7 { // 3 of 60: 5%
			dead[tg.token] = true
			faults[tg.token] = fcmemu.Fault{Code: fcmemu.Unregistered}
		}
	}
	names := func(ts []target) []string {
		var out []string
		for _, tg := range ts {
			out = append(out, tg.user)
		}
		return out
	}
	for i := 0; i < users; i += per {
		x.Post(t, e2e.Message{ID: fmt.Sprintf("m-acct-%02d", i), Kind: push.KindMessage, Group: "g1", Recipients: names(all[i : i+per]), Content: "hi"}.JSON())
	}
	x.emu.SetFaults(fcmemu.Faults{Tokens: faults, ThrottleShare: 0.05, InternalShare: 0.25, UnavailableShare: 0.05, Seed: 11})
	x.Drain(t, h1, h2)
	// The doomed message fails whole on every receive (500s, which the
	// SDK does not retry), so its targets take the dead-letter path on the
	// queue's last receive.
	x.emu.SetFaults(fcmemu.Faults{InternalShare: 1})
	x.Post(t, e2e.Message{ID: "m-acct-doomed", Kind: push.KindMessage, Group: "g1", Recipients: names(all[users:]), Content: "hi"}.JSON())
	x.Drain(t, h1, h2)
	x.emu.SetFaults(fcmemu.Faults{})

	delivered := map[string]int{}
	for _, r := range x.emu.Received() {
		delivered[r.Token]++
	}
	dlq := x.DeadLettered(t)
	seen := map[string]int{}
	for _, tg := range all {
		d, l, b := delivered[tg.token], dlq[tg.token], x.Bound(t, tg.user, "phone", tg.token)
		switch {
		case d == 1 && l == 0 && b && !dead[tg.token]:
			seen["delivered"]++
		case d == 0 && l == 1 && b:
			seen["dead_lettered"]++
		case d == 0 && l == 0 && !b && dead[tg.token]:
			seen["invalid_token"]++
		default:
			t.Errorf("%s: delivered %d, dead-lettered %d, still bound %v, dead token %v: not exactly one outcome",
				tg.user, d, l, b, dead[tg.token])
		}
	}
	counted := e2e.Final(e2e.Sum(m1, m2))
	t.Logf("outcomes over %d targets: seen %v, counted %v (all counts %v; emulator %+v)", len(all), seen, counted, e2e.Sum(m1, m2), x.emu.Counts())
	if diff := cmp.Diff(seen, counted); diff != "" {
		t.Errorf("the dispatch function's counts disagree with what was observed (-observed +counted):\n%s", diff)
	}
	if seen["invalid_token"] != len(dead) || seen["dead_lettered"] < doomedUsers || seen["delivered"] < users-len(dead)-5 {
		t.Errorf("outcomes %v: want all %d dead tokens unbound, the doomed message dead-lettered and nearly all others delivered", seen, len(dead))
	}
}

// TestE2EBindingMoved moves a token to another user between ingest and
// dispatch: the queued push ends unbound and nothing reaches the phone.
func TestE2EBindingMoved(t *testing.T) {
	x := newFCME2E(t, 0)
	h, m := x.Dispatch(t, fcm.New(time.Now, discard()))
	tok := fcmToken(7)
	x.Register(t, "bob", "phone", e2e.Device{Token: tok})
	x.Post(t, e2e.Message{ID: "m-moved", Kind: push.KindMessage, Recipients: []string{"bob"}, Content: "for bob only"}.JSON())
	x.Register(t, "carol", "phone", e2e.Device{Token: tok}) // the phone changed hands
	x.Drain(t, h)
	if got := x.emu.Received(); len(got) != 0 {
		t.Errorf("pushes = %d, want none: the token belongs to carol now", len(got))
	}
	if got, want := e2e.Final(m.Counts()), map[string]int{"unbound": 1}; !cmp.Equal(got, want) {
		t.Errorf("outcomes = %v, want %v", got, want)
	}
	if !x.Bound(t, "carol", "phone", tok) || x.Bound(t, "bob", "phone", tok) {
		t.Error("the token should be bound to carol's phone alone")
	}
}

// TestE2EExpired lets a push with a one-second lifetime expire in the queue:
// dispatch drops it and never sends it.
func TestE2EExpired(t *testing.T) {
	x := newFCME2E(t, 0)
	h, m := x.Dispatch(t, fcm.New(time.Now, discard()))
	x.Register(t, "bob", "phone", e2e.Device{Token: fcmToken(8)})
	x.Post(t, e2e.Message{ID: "m-expired", Kind: push.KindMessage, Recipients: []string{"bob"}, Content: "soon stale", TTLSeconds: 1}.JSON())
	// Ingest accepted it before Post returned, so it has expired once a
	// second from now has passed; only then may dispatch see it.
	x.WaitPast(t, time.Now().Add(time.Second))
	x.Drain(t, h)
	if got := x.emu.Received(); len(got) != 0 {
		t.Errorf("pushes = %d, want none: the push expired", len(got))
	}
	if got, want := e2e.Final(m.Counts()), map[string]int{"expired": 1}; !cmp.Equal(got, want) {
		t.Errorf("outcomes = %v, want %v", got, want)
	}
}
