package apns_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	apnsemu "github.com/offline-push/offline-push/shared/emulator/apns"
	"github.com/offline-push/offline-push/shared/provider/apns"
	"github.com/offline-push/offline-push/shared/push"
)

// TestSend sends envelopes of each kind through the real apns2 client over
// TLS and HTTP/2 to the emulator, and checks the results and what the
// emulator accepted.
func TestSend(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	tests := []struct {
		name  string
		env   func() *push.Envelope
		creds func(c *apns.Credentials)
		job   func(j *push.SendJob)
		check func(t *testing.T, got map[string]apnsemu.Push)
	}{
		{
			name: "message with badge, collapse and expiry",
			env:  func() *push.Envelope { return message(2) },
			job:  func(j *push.SendJob) { j.Badges = map[string]int{"u0": 7} },
			check: func(t *testing.T, got map[string]apnsemu.Push) {
				p := got[tokenOf(0)]
				if p.Topic != bundle || p.PushType != "alert" || p.Priority != 10 || p.CollapseID != "m:m-1001" {
					t.Errorf("headers: topic %s, type %s, priority %d, collapse %s; want %s alert 10 m:m-1001", p.Topic, p.PushType, p.Priority, p.CollapseID, bundle)
				}
				if want := now.Add(time.Hour).Unix(); p.Expiration != want {
					t.Errorf("apns-expiration = %d, want now + TTL = %d", p.Expiration, want)
				}
				if p.Proto != "HTTP/2.0" || p.Auth != "token" {
					t.Errorf("sent over %s with %s auth, want HTTP/2.0 with token auth", p.Proto, p.Auth)
				}
				aps := payloadOf(t, p)["aps"].(map[string]any)
				if aps["badge"] != 7.0 {
					t.Errorf("badge of u0 = %v, want 7", aps["badge"])
				}
				if _, ok := payloadOf(t, got[tokenOf(1)])["aps"].(map[string]any)["badge"]; ok {
					t.Error("u1 has no count in Badges but got a badge")
				}
				if got[tokenOf(0)].ApnsID == got[tokenOf(1)].ApnsID {
					t.Error("two devices got the same apns-id")
				}
			},
		},
		{
			name: "high priority",
			env: func() *push.Envelope {
				e := message(1)
				e.Priority = push.PriorityHigh
				return e
			},
			check: func(t *testing.T, got map[string]apnsemu.Push) {
				if p := got[tokenOf(0)]; p.Priority != 10 {
					t.Errorf("priority = %d, want 10", p.Priority)
				}
			},
		},
		{
			name: "now or never",
			env: func() *push.Envelope {
				e := message(1)
				e.NowOrNever = true
				return e
			},
			check: func(t *testing.T, got map[string]apnsemu.Push) {
				if p := got[tokenOf(0)]; !p.ExpirationSet || p.Expiration != 0 {
					t.Errorf("apns-expiration = %q, want 0", p.Header.Get("apns-expiration"))
				}
			},
		},
		{
			name: "no badge asked",
			env: func() *push.Envelope {
				e := message(1)
				e.Badge = false
				return e
			},
			job: func(j *push.SendJob) { j.Badges = map[string]int{"u0": 7} },
			check: func(t *testing.T, got map[string]apnsemu.Push) {
				if _, ok := payloadOf(t, got[tokenOf(0)])["aps"].(map[string]any)["badge"]; ok {
					t.Error("badge sent for an envelope without Badge")
				}
			},
		},
		{
			name: "resource presentation",
			env: func() *push.Envelope {
				e := message(1)
				e.ResourceID = "chat"
				return e
			},
			creds: func(c *apns.Credentials) {
				c.Resources = map[string]apns.Resource{"chat": {Sound: "ding.caf", Category: "MESSAGE", ThreadID: "all-chats"}}
			},
			check: func(t *testing.T, got map[string]apnsemu.Push) {
				aps := payloadOf(t, got[tokenOf(0)])["aps"].(map[string]any)
				want := map[string]any{"sound": "ding.caf", "category": "MESSAGE", "thread-id": "all-chats"}
				for k, v := range want {
					if aps[k] != v {
						t.Errorf("aps.%s = %v, want %v", k, aps[k], v)
					}
				}
			},
		},
		{
			name: "explicit sound beats the resource",
			env: func() *push.Envelope {
				e := message(1)
				e.ResourceID, e.Sound = "chat", "urgent.caf"
				return e
			},
			creds: func(c *apns.Credentials) {
				c.Resources = map[string]apns.Resource{"chat": {Sound: "ding.caf"}}
			},
			check: func(t *testing.T, got map[string]apnsemu.Push) {
				if s := payloadOf(t, got[tokenOf(0)])["aps"].(map[string]any)["sound"]; s != "urgent.caf" {
					t.Errorf("sound = %v, want urgent.caf", s)
				}
			},
		},
		{
			name: "collapse id over 64 bytes is hashed",
			env: func() *push.Envelope {
				e := message(1)
				e.CollapseID = strings.Repeat("x", 80)
				return e
			},
			check: func(t *testing.T, got map[string]apnsemu.Push) {
				want, _ := push.CollapseFor(push.APNs, strings.Repeat("x", 80))
				if p := got[tokenOf(0)]; p.CollapseID != want {
					t.Errorf("collapse id = %s, want %s", p.CollapseID, want)
				}
			},
		},
		{
			name: "call invite: VoIP and alert",
			env:  func() *push.Envelope { return call(push.KindCallInvite, now.Add(time.Minute)) },
			job:  func(j *push.SendJob) { j.TTL = time.Minute },
			check: func(t *testing.T, got map[string]apnsemu.Push) {
				v, a := got[tokenOf(100)], got[tokenOf(101)]
				if v.PushType != "voip" || v.Topic != bundle+".voip" || v.Priority != 10 || v.CollapseID != "c:bob" {
					t.Errorf("voip headers: %s %s %d %s", v.PushType, v.Topic, v.Priority, v.CollapseID)
				}
				if want := now.Add(time.Minute).Unix(); v.Expiration != want {
					t.Errorf("voip apns-expiration = %d, want the call's expiry %d", v.Expiration, want)
				}
				pv := payloadOf(t, v)
				if pv["type"] != "call_invite" || pv["callId"] != "c-9" || pv["media"] != "video" ||
					pv["callExpiresAt"] != float64(now.Add(time.Minute).UnixMilli()) || pv["title"] != "Alice" {
					t.Errorf("voip payload = %s", v.Payload)
				}
				if _, ok := pv["aps"]; ok {
					t.Errorf("voip payload has aps: %s", v.Payload)
				}
				if a.PushType != "alert" || a.Topic != bundle || a.Priority != 10 || a.CollapseID != "c:bob" {
					t.Errorf("alert headers: %s %s %d %s", a.PushType, a.Topic, a.Priority, a.CollapseID)
				}
			},
		},
		{
			name: "call cancel: VoIP cancel and missed-call alert",
			env:  func() *push.Envelope { return call(push.KindCallCancel, now.Add(time.Hour)) },
			check: func(t *testing.T, got map[string]apnsemu.Push) {
				v, a := got[tokenOf(100)], got[tokenOf(101)]
				pv := payloadOf(t, v)
				if v.PushType != "voip" || pv["type"] != "call_cancel" || pv["callId"] != "c-9" {
					t.Errorf("voip cancel: type %s, payload %s", v.PushType, v.Payload)
				}
				pa := payloadOf(t, a)
				alert := pa["aps"].(map[string]any)["alert"].(map[string]any)
				if a.PushType != "alert" || alert["body"] != push.DefaultCancelContent || a.CollapseID != "c:bob" {
					t.Errorf("missed-call alert: type %s, collapse %s, payload %s", a.PushType, a.CollapseID, a.Payload)
				}
			},
		},
		{
			name: "cancel without text says Missed call",
			env: func() *push.Envelope {
				e := call(push.KindCallCancel, now.Add(time.Hour))
				e.Texts = []push.EnvelopeText{{}}
				e.Targets = e.Targets[1:]
				return e
			},
			check: func(t *testing.T, got map[string]apnsemu.Push) {
				alert := payloadOf(t, got[tokenOf(101)])["aps"].(map[string]any)["alert"].(map[string]any)
				if alert["body"] != push.DefaultCancelContent {
					t.Errorf("body = %v, want %q", alert["body"], push.DefaultCancelContent)
				}
			},
		},
		{
			name: "custom keys cannot replace ours",
			env: func() *push.Envelope {
				e := message(1)
				e.Payload = map[string]string{"messageId": "forged", "aps": "x", "extra": "kept"}
				return e
			},
			check: func(t *testing.T, got map[string]apnsemu.Push) {
				p := payloadOf(t, got[tokenOf(0)])
				if p["messageId"] != "m-1001" || p["extra"] != "kept" {
					t.Errorf("payload = %s", got[tokenOf(0)].Payload)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock(now)
			f := newFixture(t, apnsemu.Options{Now: clk.now})
			env := tt.env()
			if tt.creds != nil {
				tt.creds(&f.creds)
			}
			j := f.job(t, env)
			if tt.job != nil {
				tt.job(j)
			}
			s := apns.New(newMemoryCache(), clk.now, discard())
			got := s.Send(t.Context(), j)
			want := make([]push.SendResult, len(env.Targets))
			for i := range want {
				want[i] = push.SendResult{Class: push.SendOK}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("results (-want +got):\n%s", diff)
			}
			received := f.emu.Received()
			if len(received) != len(env.Targets) {
				t.Fatalf("emulator accepted %d pushes, want %d", len(received), len(env.Targets))
			}
			tt.check(t, byToken(received))
		})
	}
}

// TestAPNsIDStable: a retried push carries the same apns-id, a UUID.
func TestAPNsIDStable(t *testing.T) {
	f := newFixture(t, apnsemu.Options{})
	s := apns.New(newMemoryCache(), nil, discard())
	env := message(1)
	for range 2 {
		if got := s.Send(t.Context(), f.job(t, env)); got[0].Class != push.SendOK {
			t.Fatalf("send: %+v", got)
		}
	}
	r := f.emu.Received()
	if len(r) != 2 || r[0].ApnsID != r[1].ApnsID {
		t.Fatalf("apns-ids of a push and its retry differ: %+v", r)
	}
	if id := r[0].ApnsID; len(id) != 36 || id[14] != '8' {
		t.Errorf("apns-id %s is not a version 8 UUID", id)
	}
}

// TestSandboxAndProduction: each target goes to its environment's host.
func TestSandboxAndProduction(t *testing.T) {
	prod := newFixture(t, apnsemu.Options{})
	sandbox, err := apnsemu.New(apnsemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sandbox.Close)
	sandbox.AddKey(team, keyID, &prod.key.PublicKey)
	sandbox.SetTopic(bundle)
	prod.creds.SandboxEndpoint = sandbox.URL
	prod.creds.EndpointCA += string(sandbox.CertificatePEM())

	env := message(2)
	env.Targets[1].Environment = push.Sandbox
	s := apns.New(newMemoryCache(), nil, discard())
	if got := classes(s.Send(t.Context(), prod.job(t, env))); got != "ok ok" {
		t.Fatalf("results = %s, want ok ok", got)
	}
	if r := prod.emu.Received(); len(r) != 1 || r[0].Token != tokenOf(0) {
		t.Errorf("production host received %+v, want the production token only", r)
	}
	if r := sandbox.Received(); len(r) != 1 || r[0].Token != tokenOf(1) {
		t.Errorf("sandbox host received %+v, want the sandbox token only", r)
	}
}

// TestClassification drives each documented APNs answer through the
// emulator and checks the class the provider gives it.
func TestClassification(t *testing.T) {
	tests := []struct {
		name  string
		reply apnsemu.Reply
		token string // instead of a fault
		want  push.SendResult
	}{
		{name: "410 Unregistered", reply: apnsemu.Reply{Status: 410, Reason: "Unregistered"}, want: push.SendResult{Class: push.SendInvalidToken, Code: "Unregistered"}},
		{name: "410 ExpiredToken", reply: apnsemu.Reply{Status: 410, Reason: "ExpiredToken"}, want: push.SendResult{Class: push.SendInvalidToken, Code: "ExpiredToken"}},
		{name: "400 BadDeviceToken from the emulator's own check", token: strings.Repeat("zz", 32), want: push.SendResult{Class: push.SendInvalidToken, Code: "BadDeviceToken"}},
		{name: "400 BadDeviceToken (other environment)", reply: apnsemu.Reply{Status: 400, Reason: "BadDeviceToken"}, want: push.SendResult{Class: push.SendInvalidToken, Code: "BadDeviceToken"}},
		{name: "400 DeviceTokenNotForTopic", reply: apnsemu.Reply{Status: 400, Reason: "DeviceTokenNotForTopic"}, want: push.SendResult{Class: push.SendInvalidToken, Code: "DeviceTokenNotForTopic"}},
		{name: "400 BadCollapseId", reply: apnsemu.Reply{Status: 400, Reason: "BadCollapseId"}, want: push.SendResult{Class: push.SendBadMessage, Code: "BadCollapseId"}},
		{name: "413 PayloadTooLarge", reply: apnsemu.Reply{Status: 413, Reason: "PayloadTooLarge"}, want: push.SendResult{Class: push.SendBadMessage, Code: "PayloadTooLarge"}},
		{name: "403 BadCertificate", reply: apnsemu.Reply{Status: 403, Reason: "BadCertificate"}, want: push.SendResult{Class: push.SendAuth, Code: "BadCertificate"}},
		{name: "403 Forbidden", reply: apnsemu.Reply{Status: 403, Reason: "Forbidden"}, want: push.SendResult{Class: push.SendAuth, Code: "Forbidden"}},
		{name: "429 TooManyRequests", reply: apnsemu.Reply{Status: 429, Reason: "TooManyRequests"}, want: push.SendResult{Class: push.SendThrottled, Code: "TooManyRequests"}},
		{name: "429 TooManyProviderTokenUpdates", reply: apnsemu.Reply{Status: 429, Reason: "TooManyProviderTokenUpdates"}, want: push.SendResult{Class: push.SendThrottled, Code: "TooManyProviderTokenUpdates", RetryAfter: time.Minute}},
		{name: "500 InternalServerError", reply: apnsemu.Reply{Status: 500, Reason: "InternalServerError"}, want: push.SendResult{Class: push.SendTransient, Code: "InternalServerError"}},
		{name: "503 ServiceUnavailable", reply: apnsemu.Reply{Status: 503, Reason: "ServiceUnavailable"}, want: push.SendResult{Class: push.SendTransient, Code: "ServiceUnavailable"}},
		{name: "503 Shutdown", reply: apnsemu.Reply{Status: 503, Reason: "Shutdown"}, want: push.SendResult{Class: push.SendTransient, Code: "Shutdown"}},
	}
	f := newFixture(t, apnsemu.Options{})
	s := apns.New(newMemoryCache(), nil, discard())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := message(2) // the second target stays healthy
			if tt.token != "" {
				env.Targets[0].Token = tt.token
			} else {
				f.emu.FailToken(env.Targets[0].Token, tt.reply)
				defer f.emu.ClearFaults()
			}
			got := s.Send(t.Context(), f.job(t, env))
			want := []push.SendResult{tt.want, {Class: push.SendOK}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("results (-want +got):\n%s", diff)
			}
		})
	}
}

// TestTransportError: no answer at all is transient.
func TestTransportError(t *testing.T) {
	f := newFixture(t, apnsemu.Options{})
	f.emu.Close()
	s := apns.New(newMemoryCache(), nil, discard())
	got := s.Send(t.Context(), f.job(t, message(2)))
	want := []push.SendResult{{Class: push.SendTransient, Code: apns.CodeTransport}, {Class: push.SendTransient, Code: apns.CodeTransport}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
}

// TestFaultShares: under random 429/500/503 answers every target still
// gets exactly one verdict, and those the emulator accepted are exactly
// the ok ones.
func TestFaultShares(t *testing.T) {
	f := newFixture(t, apnsemu.Options{Seed: 3})
	f.emu.SetShares(apnsemu.Shares{TooManyRequests: 0.1, InternalError: 0.1, ServiceUnavailable: 0.1})
	s := apns.New(newMemoryCache(), nil, discard())
	env := message(300)
	got := s.Send(t.Context(), f.job(t, env))
	accepted := byToken(f.emu.Received())
	count := map[push.SendClass]int{}
	for i, r := range got {
		count[r.Class]++
		_, ok := accepted[env.Targets[i].Token]
		if ok != (r.Class == push.SendOK) {
			t.Errorf("target %d: class %s, accepted by the emulator %v", i, r.Class, ok)
		}
	}
	if count[push.SendOK] == 0 || count[push.SendThrottled] == 0 || count[push.SendTransient] == 0 {
		t.Errorf("classes = %v, want ok, throttled and transient among 300", count)
	}
	if len(accepted) != count[push.SendOK] {
		t.Errorf("emulator accepted %d, %d ok", len(accepted), count[push.SendOK])
	}
}

// TestPayloadLimit: a body too long for 4096 bytes (a custom payload ate
// the reserve) is shortened on a character boundary with an ellipsis; a
// custom payload that alone is too big is a bad message, never sent.
func TestPayloadLimit(t *testing.T) {
	f := newFixture(t, apnsemu.Options{})
	s := apns.New(newMemoryCache(), nil, discard())

	env := message(1)
	env.Texts[0].Body = strings.Repeat("吃饭吗?", 300) // 3000 bytes
	env.Payload = map[string]string{"blob": strings.Repeat("p", 1500)}
	if got := classes(s.Send(t.Context(), f.job(t, env))); got != "ok" {
		t.Fatalf("results = %s, want ok", got)
	}
	r := f.emu.Received()
	if len(r) != 1 {
		t.Fatalf("received %d, want 1", len(r))
	}
	if n := len(r[0].Payload); n > 4096 || n < 4000 {
		t.Errorf("payload is %d bytes, want just under 4096", n)
	}
	var p struct {
		Aps struct{ Alert struct{ Body string } }
	}
	if err := json.Unmarshal(r[0].Payload, &p); err != nil {
		t.Fatal(err)
	}
	if b := p.Aps.Alert.Body; !utf8.ValidString(b) || !strings.HasSuffix(b, "…") || !strings.HasPrefix(env.Texts[0].Body, strings.TrimSuffix(b, "…")) {
		t.Errorf("body = %q, want a prefix of the text ending in …", b)
	}

	voip := call(push.KindCallInvite, time.Now().Add(time.Minute))
	voip.Targets = voip.Targets[:1]
	voip.Texts[0].Body = strings.Repeat("x", 6000)
	if got := classes(s.Send(t.Context(), f.job(t, voip))); got != "ok" {
		t.Fatalf("voip results = %s, want ok", got)
	}
	if r := f.emu.Received(); len(r) != 2 || len(r[1].Payload) > 5120 || len(r[1].Payload) < 5000 {
		t.Errorf("voip payload is %d bytes, want just under 5120", len(r[len(r)-1].Payload))
	}

	huge := message(1)
	huge.Payload = map[string]string{"blob": strings.Repeat("p", 5000)}
	f.emu.Reset()
	if got := classes(s.Send(t.Context(), f.job(t, huge))); got != "bad_message/PayloadTooLarge" {
		t.Errorf("results = %s, want bad_message/PayloadTooLarge", got)
	}
	if n := len(f.emu.Received()); n != 0 {
		t.Errorf("emulator received %d pushes of an oversize payload, want 0", n)
	}
}

// TestRefusedEnvelopes: pushes that must never go out.
func TestRefusedEnvelopes(t *testing.T) {
	f := newFixture(t, apnsemu.Options{})
	s := apns.New(newMemoryCache(), nil, discard())
	msg := message(2)
	msg.Targets[0].Kind = push.TokenVoIP // a chat message on a VoIP token
	msg.Targets[1].Text = 5              // a text the envelope lacks
	got := classes(s.Send(t.Context(), f.job(t, msg)))
	if want := "bad_message/" + apns.CodeVoIPNotACall + " bad_message/" + apns.CodeBadEnvelope; got != want {
		t.Errorf("results = %s, want %s", got, want)
	}
	j := f.job(t, msg)
	j.Envelope = nil
	if got := classes(s.Send(t.Context(), j)); got != "bad_message/BadEnvelope bad_message/BadEnvelope" {
		t.Errorf("results without envelope = %s", got)
	}
	if n := len(f.emu.Received()); n != 0 {
		t.Errorf("emulator received %d pushes, want 0", n)
	}
}

// TestCredentials: credentials that cannot work give every target auth,
// without sending anything.
func TestCredentials(t *testing.T) {
	f := newFixture(t, apnsemu.Options{})
	tests := []struct {
		name string
		edit func(c *apns.Credentials)
		raw  string
	}{
		{name: "not JSON", raw: `{"vendor":`},
		{name: "another vendor", edit: func(c *apns.Credentials) { c.Vendor = "fcm" }},
		{name: "no bundle id", edit: func(c *apns.Credentials) { c.BundleID = "" }},
		{name: "no key id", edit: func(c *apns.Credentials) { c.KeyID = "" }},
		{name: "key not PEM", edit: func(c *apns.Credentials) { c.PrivateKey = "MIGTAgEAMBMGByqGSM49" }},
		{name: "token and certificate", edit: func(c *apns.Credentials) { c.Certificate = "-----BEGIN CERTIFICATE-----" }},
		{name: "certificate not PEM", edit: func(c *apns.Credentials) { c.PrivateKey, c.KeyID, c.TeamID, c.Certificate = "", "", "", "garbage" }},
		{name: "p12 not base64", edit: func(c *apns.Credentials) { c.PrivateKey, c.KeyID, c.TeamID, c.P12 = "", "", "", "!!" }},
		{name: "p12 not PKCS#12", edit: func(c *apns.Credentials) { c.PrivateKey, c.KeyID, c.TeamID, c.P12 = "", "", "", "AAAA" }},
		{name: "no key at all", edit: func(c *apns.Credentials) { c.PrivateKey, c.KeyID, c.TeamID = "", "", "" }},
		{name: "endpoint local", edit: func(c *apns.Credentials) { c.Endpoint = "local" }},
		{name: "endpoint over plain HTTP", edit: func(c *apns.Credentials) { c.Endpoint = strings.Replace(c.Endpoint, "https", "http", 1) }},
		{name: "endpoint with a path", edit: func(c *apns.Credentials) { c.Endpoint += "/3/device" }},
		{name: "sandbox endpoint alone", edit: func(c *apns.Credentials) { c.SandboxEndpoint, c.Endpoint = c.Endpoint, "" }},
		{name: "CA without endpoint", edit: func(c *apns.Credentials) { c.Endpoint = "" }},
		{name: "CA not PEM", edit: func(c *apns.Credentials) { c.EndpointCA = "garbage" }},
	}
	s := apns.New(newMemoryCache(), nil, discard())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.creds
			if tt.edit != nil {
				tt.edit(&c)
			}
			g := &fixture{emu: f.emu, creds: c}
			j := g.job(t, message(2))
			if tt.raw != "" {
				j.Credentials = []byte(tt.raw)
			}
			want := "auth/InvalidCredentials auth/InvalidCredentials"
			if got := classes(s.Send(t.Context(), j)); got != want {
				t.Errorf("results = %s, want %s", got, want)
			}
		})
	}
	if n := len(f.emu.Received()); n != 0 {
		t.Errorf("emulator received %d pushes, want 0", n)
	}
}

// TestManyTargetsConcurrently: a full envelope of 500 targets, sent over
// one HTTP/2 connection with bounded concurrency, keeps its order.
func TestManyTargetsConcurrently(t *testing.T) {
	f := newFixture(t, apnsemu.Options{})
	env := message(push.MaxEnvelopeTargets)
	for i := 0; i < len(env.Targets); i += 7 {
		f.emu.FailToken(env.Targets[i].Token, apnsemu.Reply{Status: 410, Reason: "Unregistered"})
	}
	got := apns.New(newMemoryCache(), nil, discard()).Send(t.Context(), f.job(t, env))
	for i, r := range got {
		want := push.SendOK
		if i%7 == 0 {
			want = push.SendInvalidToken
		}
		if r.Class != want {
			t.Errorf("target %d: %s, want %s", i, r.Class, want)
		}
	}
	if n, want := len(f.emu.Received()), len(env.Targets)-(len(env.Targets)+6)/7; n != want {
		t.Errorf("emulator accepted %d, want %d", n, want)
	}
}
