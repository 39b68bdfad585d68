package apnsemu_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/certificate"
	"github.com/sideshow/apns2/token"
	"golang.org/x/net/http2"

	apnsemu "github.com/offline-push/offline-push/shared/emulator/apns"
)

const (
	bundle = "com.example.chat"
	team   = "TEAM123456"
	keyID  = "KEY1234567"
)

var deviceToken = strings.Repeat("ab", 32)

// clock is a settable clock for the emulator, so a test can age a token
// without waiting.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) set(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset = d
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// start runs an emulator for one test, with the test team's key and bundle.
func start(t testing.TB, opts apnsemu.Options, key *ecdsa.PrivateKey) *apnsemu.Server {
	t.Helper()
	s, err := apnsemu.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	s.AddKey(team, keyID, &key.PublicKey)
	s.SetTopic(bundle)
	return s
}

// tokenClient is apns2's own token client, with its own HTTP/2 transport,
// trusting the emulator's certificate.
func tokenClient(s *apnsemu.Server, key *ecdsa.PrivateKey, kid, iss string) *apns2.Client {
	c := apns2.NewTokenClient(&token.Token{AuthKey: key, KeyID: kid, TeamID: iss})
	c.HTTPClient.Transport.(*http2.Transport).TLSClientConfig = &tls.Config{RootCAs: s.CertPool()}
	c.Host = s.URL
	return c
}

func alert(tok string) *apns2.Notification {
	return &apns2.Notification{
		DeviceToken: tok,
		Topic:       bundle,
		PushType:    apns2.PushTypeAlert,
		Priority:    apns2.PriorityHigh,
		Payload:     []byte(`{"aps":{"alert":{"title":"Alice","body":"lunch?"}}}`),
	}
}

// payloadOf returns a JSON payload of exactly n bytes, with aps when withAPS.
func payloadOf(t *testing.T, n int, withAPS bool) []byte {
	t.Helper()
	head, tail := `{"aps":{},"x":"`, `"}`
	if !withAPS {
		head = `{"x":"`
	}
	pad := n - len(head) - len(tail)
	if pad < 0 {
		t.Fatalf("payload of %d bytes is too small", n)
	}
	return []byte(head + strings.Repeat("a", pad) + tail)
}

// TestTokenAuth sends with apns2's token client and checks each documented
// answer.
func TestTokenAuth(t *testing.T) {
	key := newKey(t)
	other := newKey(t)
	tests := []struct {
		name       string
		client     func(s *apnsemu.Server) *apns2.Client
		edit       func(n *apns2.Notification)
		wantStatus int
		wantReason string
	}{
		{name: "accepted", wantStatus: 200},
		{name: "sandbox-length token", edit: func(n *apns2.Notification) { n.DeviceToken = strings.Repeat("0f", 100) }, wantStatus: 200},
		{name: "upper-case token", edit: func(n *apns2.Notification) { n.DeviceToken = strings.ToUpper(deviceToken) }, wantStatus: 200},
		{name: "no token", edit: func(n *apns2.Notification) { n.DeviceToken = "" }, wantStatus: 400, wantReason: "MissingDeviceToken"},
		{name: "token not hex", edit: func(n *apns2.Notification) { n.DeviceToken = strings.Repeat("zz", 32) }, wantStatus: 400, wantReason: "BadDeviceToken"},
		{name: "token too short", edit: func(n *apns2.Notification) { n.DeviceToken = "abcdef" }, wantStatus: 400, wantReason: "BadDeviceToken"},
		{name: "token odd length", edit: func(n *apns2.Notification) { n.DeviceToken = deviceToken + "a" }, wantStatus: 400, wantReason: "BadDeviceToken"},
		{name: "no topic", edit: func(n *apns2.Notification) { n.Topic = "" }, wantStatus: 400, wantReason: "MissingTopic"},
		{name: "unknown topic", edit: func(n *apns2.Notification) { n.Topic = "com.example.other" }, wantStatus: 400, wantReason: "BadTopic"},
		{name: "voip push to the bundle topic", edit: func(n *apns2.Notification) { n.PushType = apns2.PushTypeVOIP }, wantStatus: 400, wantReason: "DeviceTokenNotForTopic"},
		{name: "alert push to the voip topic", edit: func(n *apns2.Notification) { n.Topic = bundle + ".voip" }, wantStatus: 400, wantReason: "DeviceTokenNotForTopic"},
		{name: "voip push", edit: func(n *apns2.Notification) { n.PushType, n.Topic = apns2.PushTypeVOIP, bundle+".voip" }, wantStatus: 200},
		{name: "unknown push type", edit: func(n *apns2.Notification) { n.PushType = "chat" }, wantStatus: 400, wantReason: "InvalidPushType"},
		{name: "priority 5", edit: func(n *apns2.Notification) { n.Priority = 5 }, wantStatus: 200},
		{name: "priority 7", edit: func(n *apns2.Notification) { n.Priority = 7 }, wantStatus: 400, wantReason: "BadPriority"},
		{name: "background at priority 10", edit: func(n *apns2.Notification) {
			n.PushType, n.Payload = apns2.PushTypeBackground, []byte(`{"aps":{"content-available":1}}`)
		}, wantStatus: 400, wantReason: "BadPriority"},
		{name: "collapse id of 64 bytes", edit: func(n *apns2.Notification) { n.CollapseID = strings.Repeat("c", 64) }, wantStatus: 200},
		{name: "collapse id of 65 bytes", edit: func(n *apns2.Notification) { n.CollapseID = strings.Repeat("c", 65) }, wantStatus: 400, wantReason: "BadCollapseId"},
		{name: "apns-id a UUID", edit: func(n *apns2.Notification) { n.ApnsID = "123e4567-e89b-12d3-a456-426655440000" }, wantStatus: 200},
		{name: "apns-id not a UUID", edit: func(n *apns2.Notification) { n.ApnsID = "m-1001" }, wantStatus: 400, wantReason: "BadMessageId"},
		{name: "expiration", edit: func(n *apns2.Notification) { n.Expiration = time.Now().Add(time.Hour) }, wantStatus: 200},
		{name: "payload of 4096 bytes", edit: func(n *apns2.Notification) { n.Payload = payloadOf(t, 4096, true) }, wantStatus: 200},
		{name: "payload of 4097 bytes", edit: func(n *apns2.Notification) { n.Payload = payloadOf(t, 4097, true) }, wantStatus: 413, wantReason: "PayloadTooLarge"},
		{name: "voip payload of 5120 bytes", edit: func(n *apns2.Notification) {
			n.PushType, n.Topic, n.Payload = apns2.PushTypeVOIP, bundle+".voip", payloadOf(t, 5120, false)
		}, wantStatus: 200},
		{name: "voip payload of 5121 bytes", edit: func(n *apns2.Notification) {
			n.PushType, n.Topic, n.Payload = apns2.PushTypeVOIP, bundle+".voip", payloadOf(t, 5121, false)
		}, wantStatus: 413, wantReason: "PayloadTooLarge"},
		{name: "alert without aps", edit: func(n *apns2.Notification) { n.Payload = []byte(`{"k":"v"}`) }, wantStatus: 400, wantReason: "BadPayload"},
		{name: "no provider token", client: func(s *apnsemu.Server) *apns2.Client {
			c := tokenClient(s, key, keyID, team)
			c.Token = nil
			return c
		}, wantStatus: 403, wantReason: "MissingProviderToken"},
		{name: "token signed by another key", client: func(s *apnsemu.Server) *apns2.Client {
			return tokenClient(s, other, keyID, team)
		}, wantStatus: 403, wantReason: "InvalidProviderToken"},
		{name: "unknown key id", client: func(s *apnsemu.Server) *apns2.Client {
			return tokenClient(s, key, "KEY0000000", team)
		}, wantStatus: 403, wantReason: "InvalidProviderToken"},
		{name: "key of another team", client: func(s *apnsemu.Server) *apns2.Client {
			return tokenClient(s, key, keyID, "TEAM000000")
		}, wantStatus: 403, wantReason: "InvalidProviderToken"},
	}
	s := start(t, apnsemu.Options{}, key)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tokenClient(s, key, keyID, team)
			if tt.client != nil {
				c = tt.client(s)
			}
			n := alert(deviceToken)
			if tt.edit != nil {
				tt.edit(n)
			}
			res, err := c.PushWithContext(t.Context(), n)
			if err != nil {
				t.Fatalf("push: %v", err)
			}
			if res.StatusCode != tt.wantStatus || res.Reason != tt.wantReason {
				t.Errorf("got %d %q, want %d %q", res.StatusCode, res.Reason, tt.wantStatus, tt.wantReason)
			}
			if res.ApnsID == "" {
				t.Error("answer has no apns-id")
			}
			if n.ApnsID != "" && res.StatusCode == 200 && res.ApnsID != n.ApnsID {
				t.Errorf("apns-id = %s, want the request's %s", res.ApnsID, n.ApnsID)
			}
		})
	}
}

// signJWT builds a provider token by hand, so that tests can choose what
// apns2 never sends: another algorithm, a chosen iat.
func signJWT(t *testing.T, key *ecdsa.PrivateKey, alg, kid, iss string, iat int64) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(map[string]any{"alg": alg, "kid": kid}) + "." + enc(map[string]any{"iss": iss, "iat": iat})
	digest := sha256.Sum256([]byte(signing))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// rawPush sends a request with exactly the given headers and body through
// an HTTP/2 client that trusts the emulator.
func rawPush(t *testing.T, s *apnsemu.Server, method, path string, header http.Header, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, s.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Errorf("answered over %s, want HTTP/2", resp.Proto)
	}
	var answer struct{ Reason string }
	json.NewDecoder(resp.Body).Decode(&answer)
	return resp.StatusCode, answer.Reason
}

// TestRawRequests covers what apns2 never sends: other methods and paths,
// repeated headers, odd expirations and hand-made provider tokens.
func TestRawRequests(t *testing.T) {
	key := newKey(t)
	var clk clock
	s := start(t, apnsemu.Options{Now: clk.now}, key)
	now := time.Now().Unix()
	good := signJWT(t, key, "ES256", keyID, team, now)
	headers := func(kv ...string) http.Header {
		h := http.Header{"Authorization": {"bearer " + good}, "Apns-Topic": {bundle}, "Apns-Push-Type": {"alert"}}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				h.Del(kv[i])
				continue
			}
			h.Add(kv[i], kv[i+1])
		}
		return h
	}
	replace := func(name, value string) http.Header {
		h := headers()
		h.Set(name, value)
		return h
	}
	body := []byte(`{"aps":{"alert":"hi"}}`)
	tests := []struct {
		name       string
		method     string
		path       string
		header     http.Header
		body       []byte
		clock      time.Duration
		wantStatus int
		wantReason string
	}{
		{name: "accepted", header: headers(), wantStatus: 200},
		{name: "no push type means alert", header: headers("Apns-Push-Type", ""), wantStatus: 200},
		{name: "GET", method: http.MethodGet, header: headers(), wantStatus: 405, wantReason: "MethodNotAllowed"},
		{name: "other path", path: "/3/devices/" + deviceToken, header: headers(), wantStatus: 404, wantReason: "BadPath"},
		{name: "path below the token", path: "/3/device/" + deviceToken + "/x", header: headers(), wantStatus: 404, wantReason: "BadPath"},
		{name: "no token in path", path: "/3/device", header: headers(), wantStatus: 400, wantReason: "MissingDeviceToken"},
		{name: "topic twice", header: headers("Apns-Topic", bundle), wantStatus: 400, wantReason: "DuplicateHeaders"},
		{name: "expiration 0", header: headers("Apns-Expiration", "0"), wantStatus: 200},
		{name: "expiration negative", header: headers("Apns-Expiration", "-5"), wantStatus: 400, wantReason: "BadExpirationDate"},
		{name: "expiration not a number", header: headers("Apns-Expiration", "soon"), wantStatus: 400, wantReason: "BadExpirationDate"},
		{name: "empty payload", header: headers(), body: []byte{}, wantStatus: 400, wantReason: "PayloadEmpty"},
		{name: "payload not JSON", header: headers(), body: []byte(`{"aps":`), wantStatus: 400, wantReason: "BadPayload"},
		{name: "aps not a dictionary", header: headers(), body: []byte(`{"aps":"x"}`), wantStatus: 400, wantReason: "BadPayload"},
		{name: "priority 1", header: headers("Apns-Priority", "1"), wantStatus: 200},
		{name: "priority text", header: headers("Apns-Priority", "high"), wantStatus: 400, wantReason: "BadPriority"},
		{name: "scheme not bearer", header: replace("Authorization", "basic "+good), wantStatus: 403, wantReason: "InvalidProviderToken"},
		{name: "not a JWT", header: replace("Authorization", "bearer abc"), wantStatus: 403, wantReason: "InvalidProviderToken"},
		{name: "alg HS256", header: replace("Authorization", "bearer "+signJWT(t, key, "HS256", keyID, team, now)), wantStatus: 403, wantReason: "InvalidProviderToken"},
		{name: "signature altered", header: replace("Authorization", "bearer "+good[:len(good)-4]+"AAAA"), wantStatus: 403, wantReason: "InvalidProviderToken"},
		{name: "iat in the future", header: replace("Authorization", "bearer "+signJWT(t, key, "ES256", keyID, team, now+600)), wantStatus: 403, wantReason: "InvalidProviderToken"},
		{name: "token 59 minutes old", header: headers(), clock: 59 * time.Minute, wantStatus: 200},
		{name: "token 61 minutes old", header: headers(), clock: 61 * time.Minute, wantStatus: 403, wantReason: "ExpiredProviderToken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk.set(tt.clock)
			defer clk.set(0)
			method, path := tt.method, tt.path
			if method == "" {
				method = http.MethodPost
			}
			if path == "" {
				path = "/3/device/" + deviceToken
			}
			b := body
			if tt.body != nil {
				b = tt.body
			}
			status, reason := rawPush(t, s, method, path, tt.header, b)
			if status != tt.wantStatus || reason != tt.wantReason {
				t.Errorf("got %d %q, want %d %q", status, reason, tt.wantStatus, tt.wantReason)
			}
		})
	}
}

// TestTokenUpdatesTooOften: with MinTokenInterval, a team's second token
// issued under 20 minutes after its first is refused, an older token stays
// usable, and one issued 20 minutes later is accepted.
func TestTokenUpdatesTooOften(t *testing.T) {
	key := newKey(t)
	var clk clock
	s := start(t, apnsemu.Options{Now: clk.now, MinTokenInterval: 20 * time.Minute}, key)
	now := time.Now().Unix()
	steps := []struct {
		iat        int64
		clock      time.Duration
		wantStatus int
		wantReason string
	}{
		{iat: now, wantStatus: 200},
		{iat: now + 60, clock: time.Minute, wantStatus: 429, wantReason: "TooManyProviderTokenUpdates"},
		{iat: now, clock: time.Minute, wantStatus: 200},
		{iat: now + 1200, clock: 20 * time.Minute, wantStatus: 200},
		{iat: now + 1260, clock: 21 * time.Minute, wantStatus: 429, wantReason: "TooManyProviderTokenUpdates"},
	}
	for i, st := range steps {
		clk.set(st.clock)
		h := http.Header{"Authorization": {"bearer " + signJWT(t, key, "ES256", keyID, team, st.iat)}, "Apns-Topic": {bundle}}
		status, reason := rawPush(t, s, http.MethodPost, "/3/device/"+deviceToken, h, []byte(`{"aps":{}}`))
		if status != st.wantStatus || reason != st.wantReason {
			t.Errorf("step %d: got %d %q, want %d %q", i, status, reason, st.wantStatus, st.wantReason)
		}
	}
}

// TestRecords checks what the emulator keeps of an accepted push and the
// line it prints: the token's last 6 characters only.
func TestRecords(t *testing.T) {
	key := newKey(t)
	var printed bytes.Buffer
	s := start(t, apnsemu.Options{Printer: &printed}, key)
	c := tokenClient(s, key, keyID, team)
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	n := &apns2.Notification{
		DeviceToken: deviceToken, Topic: bundle + ".voip", PushType: apns2.PushTypeVOIP, Priority: 10,
		Expiration: exp, CollapseID: "c:bob", ApnsID: "123e4567-e89b-12d3-a456-426655440000",
		Payload: []byte(`{"type":"call_invite","callId":"c-9"}`),
	}
	res, err := c.PushWithContext(t.Context(), n)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("push: %v %+v", err, res)
	}
	got := s.Received()
	if len(got) != 1 {
		t.Fatalf("received %d pushes, want 1", len(got))
	}
	p := got[0]
	if p.IssuedAt.IsZero() || p.Bearer == "" || p.Header.Get("authorization") == "" {
		t.Errorf("token fields missing: %+v", p)
	}
	p.IssuedAt, p.Bearer, p.Header, p.Received = time.Time{}, "", nil, time.Time{}
	want := apnsemu.Push{
		Token: deviceToken, Topic: bundle + ".voip", PushType: "voip", Priority: 10,
		Expiration: exp.Unix(), ExpirationSet: true, CollapseID: "c:bob",
		ApnsID: "123e4567-e89b-12d3-a456-426655440000", Auth: "token", TeamID: team, KeyID: keyID,
		Proto: "HTTP/2.0", Payload: json.RawMessage(`{"type":"call_invite","callId":"c-9"}`),
	}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("record (-want +got):\n%s", diff)
	}
	lines := strings.Split(strings.TrimSpace(printed.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("printed %d lines, want 1: %q", len(lines), printed.String())
	}
	var line map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &line); err != nil {
		t.Fatalf("printed line is not JSON: %v", err)
	}
	if line["token"] != deviceToken[len(deviceToken)-6:] || strings.Contains(lines[0], deviceToken) {
		t.Errorf("printed token = %v, want the last 6 characters only", line["token"])
	}
	if line["pushType"] != "voip" || line["collapseId"] != "c:bob" {
		t.Errorf("printed line = %s", lines[0])
	}
	s.Reset()
	if n := len(s.Received()); n != 0 {
		t.Errorf("after Reset, %d records, want 0", n)
	}
}

// TestFaults checks the fault controls: chosen tokens, shares drawn from the
// seed (the same seed answers the same way), and a delay the client gives
// up on.
func TestFaults(t *testing.T) {
	key := newKey(t)
	s := start(t, apnsemu.Options{Seed: 7}, key)
	c := tokenClient(s, key, keyID, team)
	gone := strings.Repeat("01", 32)
	busy := strings.Repeat("02", 32)
	s.FailToken(gone, apnsemu.Reply{Status: 410, Reason: "Unregistered"})
	s.FailToken(strings.ToUpper(busy), apnsemu.Reply{Status: 429, Reason: "TooManyRequests"})
	for _, tt := range []struct {
		token      string
		wantStatus int
		wantReason string
	}{
		{gone, 410, "Unregistered"},
		{busy, 429, "TooManyRequests"},
		{deviceToken, 200, ""},
	} {
		res, err := c.PushWithContext(t.Context(), alert(tt.token))
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != tt.wantStatus || res.Reason != tt.wantReason {
			t.Errorf("token …%s: got %d %q, want %d %q", tt.token[58:], res.StatusCode, res.Reason, tt.wantStatus, tt.wantReason)
		}
		if tt.wantStatus == 410 && res.Timestamp.IsZero() {
			t.Error("410 answer has no timestamp")
		}
	}
	if n := len(s.Received()); n != 1 {
		t.Errorf("received %d pushes, want only the accepted one", n)
	}

	s.ClearFaults()
	sequence := func(s *apnsemu.Server, c *apns2.Client) []int {
		s.SetShares(apnsemu.Shares{TooManyRequests: 0.2, InternalError: 0.2, ServiceUnavailable: 0.2})
		defer s.ClearFaults()
		var out []int
		for range 60 {
			res, err := c.PushWithContext(t.Context(), alert(deviceToken))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, res.StatusCode)
		}
		return out
	}
	first := sequence(s, c)
	counts := map[int]int{}
	for _, st := range first {
		counts[st]++
	}
	for _, st := range []int{200, 429, 500, 503} {
		if counts[st] == 0 {
			t.Errorf("no %d among 60 answers with shares of 0.2: %v", st, counts)
		}
	}
	again := start(t, apnsemu.Options{Seed: 7}, key)
	if diff := cmp.Diff(first, sequence(again, tokenClient(again, key, keyID, team))); diff != "" {
		t.Errorf("same seed, other answers (-first +second):\n%s", diff)
	}

	s.SetDelay(time.Hour)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.PushWithContext(ctx, alert(deviceToken)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("push against an hour's delay: %v, want the client's deadline", err)
	}
	s.ClearFaults()
	if res, err := c.PushWithContext(t.Context(), alert(deviceToken)); err != nil || res.StatusCode != 200 {
		t.Errorf("after ClearFaults: %v %+v, want 200", err, res)
	}
}

// certs is a CA and a client certificate it signed, as PEM.
type certs struct {
	pool      *x509.CertPool
	clientPEM []byte // certificate and key, as an APNs .pem export holds them
}

func newCerts(t *testing.T, uid string) certs {
	t.Helper()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	clientKey := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject: pkix.Name{CommonName: "Apple Push Services: " + uid,
			ExtraNames: []pkix.AttributeTypeAndValue{{Type: []int{0, 9, 2342, 19200300, 100, 1, 1}, Value: uid}}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &clientKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(clientKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	out = append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...)
	return certs{pool: pool, clientPEM: out}
}

// certClient is apns2's certificate client trusting the emulator.
func certClient(t *testing.T, s *apnsemu.Server, pemBytes []byte) *apns2.Client {
	t.Helper()
	cert, err := certificate.FromPemBytes(pemBytes, "")
	if err != nil {
		t.Fatal(err)
	}
	c := apns2.NewClient(cert)
	c.HTTPClient.Transport.(*http2.Transport).TLSClientConfig.RootCAs = s.CertPool()
	c.Host = s.URL
	return c
}

// TestCertificateAuth: a client certificate that chains to the emulator's
// client CA authenticates without a provider token; one from another CA
// fails the TLS handshake; no certificate and no token is
// MissingProviderToken.
func TestCertificateAuth(t *testing.T) {
	good := newCerts(t, bundle)
	stranger := newCerts(t, bundle)
	key := newKey(t)
	s := start(t, apnsemu.Options{ClientCAs: good.pool}, key)

	res, err := certClient(t, s, good.clientPEM).PushWithContext(t.Context(), alert(deviceToken))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("push with a trusted certificate: %v %+v", err, res)
	}
	if got := s.Received(); len(got) != 1 || got[0].Auth != "certificate" || got[0].Proto != "HTTP/2.0" {
		t.Errorf("records = %+v, want one push by certificate over HTTP/2", got)
	}
	voip := alert(deviceToken)
	voip.PushType, voip.Topic = apns2.PushTypeVOIP, bundle+".voip"
	if res, err := certClient(t, s, good.clientPEM).PushWithContext(t.Context(), voip); err != nil || res.StatusCode != 200 {
		t.Errorf("voip push with a certificate: %v %+v", err, res)
	}
	if _, err := certClient(t, s, stranger.clientPEM).PushWithContext(t.Context(), alert(deviceToken)); err == nil {
		t.Error("push with a certificate of another CA succeeded, want a TLS failure")
	}
	c := tokenClient(s, key, keyID, team)
	c.Token = nil
	if res, err := c.PushWithContext(t.Context(), alert(deviceToken)); err != nil || res.StatusCode != 403 || res.Reason != "MissingProviderToken" {
		t.Errorf("push without certificate or token: %v %+v, want 403 MissingProviderToken", err, res)
	}
}

// TestHTTP2Only: a client that offers only HTTP/1.1 cannot push to the
// emulator, as it cannot to APNs.
func TestHTTP2Only(t *testing.T) {
	s := start(t, apnsemu.Options{}, newKey(t))
	c := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: s.CertPool(), NextProtos: []string{"http/1.1"}},
		ForceAttemptHTTP2: false,
		TLSNextProto:      map[string]func(string, *tls.Conn) http.RoundTripper{},
	}}
	resp, err := c.Post(s.URL+"/3/device/"+deviceToken, "application/json", strings.NewReader(`{"aps":{}}`))
	if err != nil {
		return // refused at the handshake: as good as a refusal
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusHTTPVersionNotSupported {
		t.Errorf("HTTP/1.1 request answered %d, want 505", resp.StatusCode)
	}
	if n := len(s.Received()); n != 0 {
		t.Errorf("%d pushes accepted over HTTP/1.1, want none", n)
	}
}

// TestCertificatePEM: a pool built from CertificatePEM trusts the emulator,
// as a credential's trusted CA would.
func TestCertificatePEM(t *testing.T) {
	key := newKey(t)
	s := start(t, apnsemu.Options{}, key)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.CertificatePEM()) {
		t.Fatal("CertificatePEM holds no certificate")
	}
	c := apns2.NewTokenClient(&token.Token{AuthKey: key, KeyID: keyID, TeamID: team})
	c.HTTPClient.Transport.(*http2.Transport).TLSClientConfig = &tls.Config{RootCAs: pool}
	c.Host = s.URL
	if res, err := c.PushWithContext(t.Context(), alert(deviceToken)); err != nil || res.StatusCode != 200 {
		t.Errorf("push: %v %+v", err, res)
	}
}

// TestListenAddr: Options.Addr picks the address; a taken one is an error.
func TestListenAddr(t *testing.T) {
	s := start(t, apnsemu.Options{Addr: "127.0.0.1:0"}, newKey(t))
	host := strings.TrimPrefix(s.URL, "https://")
	if _, err := apnsemu.New(apnsemu.Options{Addr: host}); err == nil {
		t.Errorf("second emulator on %s started, want an error", host)
	}
	if _, port, ok := strings.Cut(host, ":"); !ok || port == "0" {
		t.Errorf("URL %s has no port", s.URL)
	} else if _, err := strconv.Atoi(port); err != nil {
		t.Errorf("URL %s: %v", s.URL, err)
	}
}
