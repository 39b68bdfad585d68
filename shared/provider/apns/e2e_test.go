package apns_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/offline-push/offline-push/shared/app"
	"github.com/offline-push/offline-push/shared/e2e"
	apnsemu "github.com/offline-push/offline-push/shared/emulator/apns"
	"github.com/offline-push/offline-push/shared/provider/apns"
	"github.com/offline-push/offline-push/shared/push"
)

// The end-to-end tests follow messages from the HTTP routes (devices,
// ingest) through the APNs queue on moto and the APNs dispatch function,
// built by app.DispatchTo with this provider and the DynamoDB token cache,
// to the APNs emulator over TLS and HTTP/2.

// e2eCert names the APNs credentials of the end-to-end tests.
const e2eCert = "ios-prod"

// apnsE2E is the pipeline and the emulator at its end.
type apnsE2E struct {
	*e2e.Env
	emu *apnsemu.Server
}

func newAPNsE2E(t *testing.T, maxReceives int) *apnsE2E {
	t.Helper()
	emu, err := apnsemu.New(apnsemu.Options{Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Close)
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	emu.AddKey(team, keyID, &k.PublicKey)
	emu.SetTopic(bundle)
	creds, err := json.Marshal(apns.Credentials{
		Vendor: "apns", BundleID: bundle, TeamID: team, KeyID: keyID, PrivateKey: keyPEM(t, k),
		Endpoint: emu.URL, EndpointCA: string(emu.CertificatePEM()),
	})
	if err != nil {
		t.Fatal(err)
	}
	env := e2e.New(t, e2e.Options{Vendor: push.APNs, CertName: e2eCert, Credentials: creds, MaxReceiveCount: maxReceives})
	return &apnsE2E{Env: env, emu: emu}
}

// container builds one dispatch function container, as a cold start does:
// its own token cache client and its own Sender.
func (x *apnsE2E) container(t *testing.T) (app.SQSHandler, *e2e.Metrics) {
	t.Helper()
	return x.Dispatch(t, apns.New(x.TokenCache(t), time.Now, discard()))
}

// e2eReceipt is what a test checks of one accepted push.
type e2eReceipt struct {
	Token, Topic, PushType, CollapseID, Type, CallID, MessageID, Body string
}

// receipts returns the pushes the emulator accepted, in order.
func (x *apnsE2E) receipts(t *testing.T) []e2eReceipt {
	t.Helper()
	var out []e2eReceipt
	for _, p := range x.emu.Received() {
		var pl struct {
			Aps struct {
				Alert struct {
					Body string `json:"body"`
				} `json:"alert"`
			} `json:"aps"`
			Type      string `json:"type"`
			CallID    string `json:"callId"`
			MessageID string `json:"messageId"`
		}
		if err := json.Unmarshal(p.Payload, &pl); err != nil {
			t.Fatalf("payload %s: %v", p.Payload, err)
		}
		out = append(out, e2eReceipt{Token: p.Token, Topic: p.Topic, PushType: p.PushType, CollapseID: p.CollapseID,
			Type: pl.Type, CallID: pl.CallID, MessageID: pl.MessageID, Body: pl.Aps.Alert.Body})
	}
	return out
}

// TestE2EMessages sends a peer and a group message from the ingest route to
// the emulator.
func TestE2EMessages(t *testing.T) {
	x := newAPNsE2E(t, 0)
	h, m := x.container(t)
	users := []string{"bob", "carol", "dave"}
	for i, u := range users {
		x.Register(t, u, "iphone", e2e.Device{Token: tokenOf(i)})
	}
	tests := []struct {
		name   string
		msg    e2e.Message
		thread string
	}{
		{"peer", e2e.Message{ID: "m-peer", Kind: push.KindMessage, Recipients: []string{"bob"}, Content: "hi bob"}, "peer:alice"},
		{"group", e2e.Message{ID: "m-group", Kind: push.KindMessage, Group: "g1", Recipients: users, Content: "lunch?",
			Payload: map[string]string{"k": "v"}}, "group:g1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x.emu.Reset()
			m.Reset()
			if got := x.Post(t, tc.msg.JSON()); got.Pushes != len(tc.msg.Recipients) {
				t.Fatalf("ingest pushes = %d, want %d", got.Pushes, len(tc.msg.Recipients))
			}
			x.Drain(t, h)
			got := map[string]int{}
			for _, p := range x.emu.Received() {
				got[p.Token]++
				pl := payloadOf(t, p)
				aps, _ := pl["aps"].(map[string]any)
				alert, _ := aps["alert"].(map[string]any)
				if p.Topic != bundle || p.PushType != "alert" || pl["messageId"] != tc.msg.ID || aps["thread-id"] != tc.thread ||
					alert["body"] != "Alice: "+tc.msg.Content {
					t.Errorf("push to %s: topic %s type %s payload %s; want topic %s, alert, %s in %s with body %q",
						push.Redact(p.Token), p.Topic, p.PushType, p.Payload, bundle, tc.msg.ID, tc.thread, "Alice: "+tc.msg.Content)
				}
				if tc.msg.Payload != nil && pl["k"] != "v" {
					t.Errorf("push to %s: payload %s lacks k=v", push.Redact(p.Token), p.Payload)
				}
			}
			want := map[string]int{}
			for i, u := range users {
				for _, r := range tc.msg.Recipients {
					if r == u {
						want[tokenOf(i)] = 1
					}
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("pushes per token (-want +got):\n%s", diff)
			}
			if got, want := e2e.Final(m.Counts()), map[string]int{"delivered": len(tc.msg.Recipients)}; !cmp.Equal(got, want) {
				t.Errorf("outcomes = %v, want %v", got, want)
			}
		})
	}
}

// e2eCallee registers user's iPhone with a VoIP token and an iPad without
// one, and returns (iPhone VoIP token, iPhone alert token, iPad token).
func (x *apnsE2E) e2eCallee(t *testing.T, user string, n int) (voip, phone, pad string) {
	t.Helper()
	voip, phone, pad = tokenOf(1000+3*n), tokenOf(1001+3*n), tokenOf(1002+3*n)
	x.Register(t, user, "iphone", e2e.Device{Token: phone, VoIPToken: voip})
	x.Register(t, user, "ipad", e2e.Device{Token: pad})
	return voip, phone, pad
}

func invite(id, user, call string) e2e.Message {
	return e2e.Message{ID: id, Kind: push.KindCallInvite, Recipients: []string{user}, Content: "Incoming call", CallID: call, TimeoutSeconds: 60}
}

func cancel(id, user, call string) e2e.Message {
	return e2e.Message{ID: id, Kind: push.KindCallCancel, Recipients: []string{user}, CallID: call}
}

// TestE2ECalls follows call invites and cancels (POLICY.md §7): a VoIP push
// to the iPhone's VoIP token and an alert to the iPad; a cancel after the
// invite went out reaches both (VoIP cancel, "missed call" alert under the
// same collapse id); a cancel before dispatch drops the queued invite; a
// newer call supersedes an older one still queued.
func TestE2ECalls(t *testing.T) {
	x := newAPNsE2E(t, 0)
	h, m := x.container(t)
	collapse := func(user string) string { id, _ := push.CollapseFor(push.APNs, push.CallCollapseKey(user)); return id }

	t.Run("invite then cancel after dispatch", func(t *testing.T) {
		voip, _, pad := x.e2eCallee(t, "bob", 0)
		x.emu.Reset()
		m.Reset()
		x.Post(t, invite("c1-invite", "bob", "c1").JSON())
		x.Drain(t, h)
		x.Post(t, cancel("c1-cancel", "bob", "c1").JSON())
		x.Drain(t, h)
		want := []e2eReceipt{
			{Token: voip, Topic: bundle + ".voip", PushType: "voip", CollapseID: collapse("bob"), Type: "call_invite", CallID: "c1", MessageID: "c1-invite"},
			{Token: pad, Topic: bundle, PushType: "alert", CollapseID: collapse("bob"), Type: "call_invite", CallID: "c1", MessageID: "c1-invite", Body: "Alice: Incoming call"},
			{Token: voip, Topic: bundle + ".voip", PushType: "voip", CollapseID: collapse("bob"), Type: "call_cancel", CallID: "c1", MessageID: "c1-cancel"},
			{Token: pad, Topic: bundle, PushType: "alert", CollapseID: collapse("bob"), Type: "call_cancel", CallID: "c1", MessageID: "c1-cancel", Body: push.DefaultCancelContent},
		}
		if diff := cmp.Diff(want, x.receipts(t), anyOrder); diff != "" {
			t.Errorf("pushes (-want +got):\n%s", diff)
		}
		if got, want := e2e.Final(m.Counts()), map[string]int{"delivered": 4}; !cmp.Equal(got, want) {
			t.Errorf("outcomes = %v, want %v", got, want)
		}
	})

	t.Run("cancel before dispatch", func(t *testing.T) {
		x.e2eCallee(t, "carol", 1)
		x.emu.Reset()
		m.Reset()
		x.Post(t, invite("c2-invite", "carol", "c2").JSON())
		x.Post(t, cancel("c2-cancel", "carol", "c2").JSON())
		x.Drain(t, h)
		if got := x.receipts(t); len(got) != 0 {
			t.Errorf("pushes = %+v, want none: the invite was cancelled before dispatch", got)
		}
		got := e2e.Final(m.Counts())
		if got["call_cancelled"] < 2 || len(got) != 1 {
			t.Errorf("outcomes = %v, want only call_cancelled, at least the invite's 2 targets", got)
		}
	})

	t.Run("newer call supersedes", func(t *testing.T) {
		voip, _, pad := x.e2eCallee(t, "dave", 2)
		x.emu.Reset()
		m.Reset()
		x.Post(t, invite("c3-invite", "dave", "c3").JSON())
		x.Post(t, invite("c4-invite", "dave", "c4").JSON())
		x.Drain(t, h)
		want := []e2eReceipt{
			{Token: voip, Topic: bundle + ".voip", PushType: "voip", CollapseID: collapse("dave"), Type: "call_invite", CallID: "c4", MessageID: "c4-invite"},
			{Token: pad, Topic: bundle, PushType: "alert", CollapseID: collapse("dave"), Type: "call_invite", CallID: "c4", MessageID: "c4-invite", Body: "Alice: Incoming call"},
		}
		if diff := cmp.Diff(want, x.receipts(t), anyOrder); diff != "" {
			t.Errorf("pushes (-want +got):\n%s", diff)
		}
		if got, want := e2e.Final(m.Counts()), map[string]int{"delivered": 2, "call_superseded": 2}; !cmp.Equal(got, want) {
			t.Errorf("outcomes = %v, want %v", got, want)
		}
	})
}

// anyOrder compares receipts as a set: the sends of one envelope are
// concurrent.
var anyOrder = cmpopts.SortSlices(func(a, b e2eReceipt) bool { return a.MessageID+a.Token < b.MessageID+b.Token })

// TestE2EFaultAccounting posts messages while the emulator fails about 30%
// of sends transiently (500, 503), throttles some (429) and calls 5% of the
// tokens unregistered (410), then one more message while every send fails.
// From outside the counting code (the emulator's receipts, the dead-letter
// queue and the bindings left in DynamoDB) every target must end in exactly
// one outcome, and the dispatch function's own counts must agree.
func TestE2EFaultAccounting(t *testing.T) {
	x := newAPNsE2E(t, 3)
	h1, m1 := x.container(t)
	h2, m2 := x.container(t)
	const users, per, doomedUsers = 60, 6, 4
	type target struct{ user, token string }
	var all []target
	dead := map[string]bool{}
	for i := range users + doomedUsers {
		tg := target{fmt.Sprintf("user%02d", i), tokenOf(i)}
		x.Register(t, tg.user, "iphone", e2e.Device{Token: tg.token})
		all = append(all, tg)
		if i < users && i%20 == 7 { // 3 of 60: 5%
			dead[tg.token] = true
			x.emu.FailToken(tg.token, apnsemu.Reply{Status: http.StatusGone, Reason: "Unregistered"})
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
	x.emu.SetShares(apnsemu.Shares{TooManyRequests: 0.05, InternalError: 0.15, ServiceUnavailable: 0.18})
	x.Drain(t, h1, h2)
	// The doomed message fails whole on every receive, so its targets take
	// the dead-letter path on the queue's last receive.
	x.emu.SetShares(apnsemu.Shares{ServiceUnavailable: 1})
	x.Post(t, e2e.Message{ID: "m-acct-doomed", Kind: push.KindMessage, Group: "g1", Recipients: names(all[users:]), Content: "hi"}.JSON())
	x.Drain(t, h1, h2)
	x.emu.ClearFaults()

	delivered := map[string]int{}
	for _, p := range x.emu.Received() {
		delivered[p.Token]++
	}
	dlq := x.DeadLettered(t)
	seen := map[string]int{}
	for _, tg := range all {
		d, l, b := delivered[tg.token], dlq[tg.token], x.Bound(t, tg.user, "iphone", tg.token)
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
	t.Logf("outcomes over %d targets: seen %v, counted %v (all counts %v)", len(all), seen, counted, e2e.Sum(m1, m2))
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
	x := newAPNsE2E(t, 0)
	h, m := x.container(t)
	tok := tokenOf(7)
	x.Register(t, "bob", "iphone", e2e.Device{Token: tok})
	x.Post(t, e2e.Message{ID: "m-moved", Kind: push.KindMessage, Recipients: []string{"bob"}, Content: "for bob only"}.JSON())
	x.Register(t, "carol", "iphone", e2e.Device{Token: tok}) // the phone changed hands
	x.Drain(t, h)
	if got := x.emu.Received(); len(got) != 0 {
		t.Errorf("pushes = %d, want none: the token belongs to carol now", len(got))
	}
	if got, want := e2e.Final(m.Counts()), map[string]int{"unbound": 1}; !cmp.Equal(got, want) {
		t.Errorf("outcomes = %v, want %v", got, want)
	}
	if !x.Bound(t, "carol", "iphone", tok) || x.Bound(t, "bob", "iphone", tok) {
		t.Error("the token should be bound to carol's phone alone")
	}
}

// TestE2EExpired lets a push with a one-second lifetime expire in the queue:
// dispatch drops it and never sends it.
func TestE2EExpired(t *testing.T) {
	x := newAPNsE2E(t, 0)
	h, m := x.container(t)
	x.Register(t, "bob", "iphone", e2e.Device{Token: tokenOf(8)})
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

// TestE2EProviderTokenShared runs four dispatch containers, each with its
// own Sender and token cache client, over one queue: first all at once,
// cold, one record per invocation, then each alone. They share one provider
// token through DynamoDB, so APNs sees a single JWT (Apple throttles teams
// that refresh more often than every 20 minutes).
func TestE2EProviderTokenShared(t *testing.T) {
	x := newAPNsE2E(t, 0)
	x.BatchSize = 1
	var hs []app.SQSHandler
	var ms []*e2e.Metrics
	for range 4 {
		h, m := x.container(t)
		hs, ms = append(hs, h), append(ms, m)
	}
	const users = 12
	var names []string
	for i := range users {
		u := fmt.Sprintf("user%02d", i)
		x.Register(t, u, "iphone", e2e.Device{Token: tokenOf(i)})
		names = append(names, u)
	}
	post := func(i int) {
		x.Post(t, e2e.Message{ID: fmt.Sprintf("m-jwt-%02d", i), Kind: push.KindMessage, Recipients: names[i : i+1], Content: "hi"}.JSON())
	}
	for i := range 8 {
		post(i)
	}
	x.Drain(t, hs...)
	for i, h := range hs {
		post(8 + i)
		x.Drain(t, h)
	}
	bearers := map[string]bool{}
	for _, p := range x.emu.Received() {
		bearers[p.Bearer] = true
	}
	if got := len(x.emu.Received()); got != users {
		t.Errorf("pushes = %d, want %d", got, users)
	}
	for i, m := range ms {
		if m.Counts()["delivered"] == 0 {
			t.Errorf("container %d delivered nothing", i)
		}
	}
	if len(bearers) != 1 {
		t.Errorf("distinct provider tokens seen by APNs = %d, want 1 shared by the %d containers", len(bearers), len(hs))
	}
}
