//go:build unix

package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/offline-push/offline-push/shared/app"
	"github.com/offline-push/offline-push/shared/httpapi"
	"github.com/offline-push/offline-push/shared/push"
	"github.com/offline-push/offline-push/shared/testenv"
)

// repositoryCredentials returns the credentials of config/local.json with
// their keys generated, as the local stack reads them.
func repositoryCredentials(t *testing.T) []credential {
	t.Helper()
	c, err := readConfig(filepath.Join("..", "..", defaultConfig))
	if err != nil {
		t.Fatal(err)
	}
	creds, err := c.credentials()
	if err != nil {
		t.Fatal(err)
	}
	return creds
}

// member reads a dotted path ("serviceAccount.token_uri") of a credential.
func member(f map[string]any, path string) any {
	var v any = f
	for _, k := range strings.Split(path, ".") {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return v
}

// findLocal returns the paths of members still holding the word local.
func findLocal(prefix string, v any) []string {
	switch x := v.(type) {
	case string:
		if x == localWord {
			return []string{prefix}
		}
	case map[string]any:
		var out []string
		for k, v := range x {
			out = append(out, findLocal(strings.TrimPrefix(prefix+"."+k, "."), v)...)
		}
		return out
	}
	return nil
}

// TestEmulatorsPointLocalCredentials starts the emulators for the
// repository's configuration: one per vendor, each answering, and every
// local member of every credential rewritten to its vendor's emulator; on
// stop they no longer answer.
func TestEmulatorsPointLocalCredentials(t *testing.T) {
	creds := repositoryCredentials(t)
	emus, err := startEmulators(creds, io.Discard, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			emus.stop()
		}
	})
	urls := emus.urls()
	if len(urls) != len(push.Vendors) {
		t.Errorf("emulators of %v, want one per vendor", urls)
	}
	if err := emus.waitReady(t.Context()); err != nil {
		t.Fatal(err)
	}

	// want gives, per vendor, each URL member and the path under the
	// emulator's URL it must name.
	want := map[push.Vendor]map[string]string{
		push.APNs:   {"endpoint": ""},
		push.FCM:    {"endpoint": "/v1", "serviceAccount.token_uri": "/token"},
		push.Huawei: {"endpoint": "", "authEndpoint": ""},
		push.Honor:  {"endpoint": "", "authEndpoint": ""},
		push.Xiaomi: {"endpoint": ""},
		push.OPPO:   {"endpoint": ""},
		push.Vivo:   {"endpoint": ""},
		push.Meizu:  {"endpoint": ""},
	}
	for _, c := range creds {
		base := urls[c.Vendor]
		for path, suffix := range want[c.Vendor] {
			if got := member(c.Fields, path); got != base+suffix {
				t.Errorf("%s %s = %v, want %s", c.CertName, path, got, base+suffix)
			}
		}
		if left := findLocal("", c.Fields); len(left) > 0 {
			t.Errorf("%s still has local members %v", c.CertName, left)
		}
		if c.Vendor == push.APNs {
			// The certificate must let a client verify the emulator.
			pool := x509.NewCertPool()
			ca, _ := c.Fields["endpointCA"].(string)
			if !pool.AppendCertsFromPEM([]byte(ca)) {
				t.Fatalf("endpointCA holds no certificate: %.40q", ca)
			}
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
			resp, err := client.Get(base + "/")
			if err != nil {
				t.Errorf("APNs emulator with endpointCA: %v", err)
			} else {
				resp.Body.Close()
				if resp.ProtoMajor != 2 {
					t.Errorf("APNs emulator answered %s, want HTTP/2", resp.Proto)
				}
			}
		}
	}

	emus.stop()
	stopped = true
	for v, u := range urls {
		if resp, err := http.Get(strings.Replace(u, "https:", "http:", 1) + "/"); err == nil {
			resp.Body.Close()
			t.Errorf("%s emulator still answers at %s after stop", v, u)
		}
	}
}

// TestEmulatorsLeaveOtherCredentials checks that only local credentials get
// an emulator and that members naming a URL of their own are kept.
func TestEmulatorsLeaveOtherCredentials(t *testing.T) {
	huawei := map[string]any{"vendor": "huawei", "appId": "1", "appSecret": "s", "endpoint": "https://push-api.cloud.huawei.com"}
	vivo := map[string]any{"vendor": "vivo", "appId": 10001.0, "appKey": "k", "appSecret": "s",
		"endpoint": "local", "authEndpoint": "http://127.0.0.1:9/auth-proxy"}
	creds := []credential{
		{App: "demo", CertName: "hw", Vendor: push.Huawei, Fields: cloneJSON(huawei)},
		{App: "demo", CertName: "vv", Vendor: push.Vivo, Fields: cloneJSON(vivo)},
	}
	emus, err := startEmulators(creds, io.Discard, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	defer emus.stop()
	urls := emus.urls()
	if diff := cmp.Diff([]push.Vendor{push.Vivo}, mapKeys(urls)); diff != "" {
		t.Errorf("emulated vendors (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(huawei, creds[0].Fields); diff != "" {
		t.Errorf("credential that is not local changed (-want +got):\n%s", diff)
	}
	vivo["endpoint"] = urls[push.Vivo]
	if diff := cmp.Diff(vivo, creds[1].Fields); diff != "" {
		t.Errorf("vivo credential (-want +got):\n%s", diff)
	}
}

func mapKeys[K ~string, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestEmulatorsRefuseBadLocalCredentials checks that a local credential an
// emulator cannot register stops the start with an error that names the
// credential and the member, never a secret.
func TestEmulatorsRefuseBadLocalCredentials(t *testing.T) {
	const secret = "do-not-show-this-secret"
	for _, tc := range []struct {
		name    string
		vendor  push.Vendor
		fields  map[string]any
		wantErr string
	}{
		{"vivo app id not numeric", push.Vivo, map[string]any{"appId": "abc", "appKey": "k", "appSecret": secret, "endpoint": "local"}, "appId must be vivo's numeric app id"},
		{"huawei without secret", push.Huawei, map[string]any{"appId": "1", "endpoint": "local"}, "appSecret is required"},
		{"honor without client", push.Honor, map[string]any{"appId": "1", "clientSecret": secret, "endpoint": "local"}, "clientId is required"},
		{"xiaomi without channel", push.Xiaomi, map[string]any{"appSecret": secret, "packageName": "p", "endpoint": "local"}, "channelId is required"},
		{"apns key not PEM", push.APNs, map[string]any{"bundleId": "b", "privateKey": secret, "keyId": "K", "teamId": "T", "endpoint": "local"}, "privateKey: no PEM block"},
		{"apns certificate not PEM", push.APNs, map[string]any{"bundleId": "b", "certificate": secret, "endpoint": "local"}, "client certificate"},
		{"fcm key not PEM", push.FCM, map[string]any{"endpoint": "local", "serviceAccount": map[string]any{
			"type": "service_account", "project_id": "p", "client_email": "e@p", "private_key": secret}}, "private_key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.fields["vendor"] = string(tc.vendor)
			creds := []credential{{App: "demo", CertName: "c1", Vendor: tc.vendor, Fields: tc.fields}}
			emus, err := startEmulators(creds, io.Discard, discardLog())
			if err == nil {
				emus.stop()
				t.Fatalf("got no error, want one containing %q", tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "c1") {
				t.Errorf("got %v, want an error naming c1 and containing %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error shows the secret: %v", err)
			}
		})
	}
}

// receipt is the part of an emulator's JSON line the tests read.
type receipt struct {
	Vendor push.Vendor
	Token  string
}

// parseReceipt reads an emulator line. The FCM emulator names its vendor
// in "vendor" and prefixes the suffix with an ellipsis; the others use
// "emulator" and the bare suffix.
func parseReceipt(line string) (receipt, bool) {
	var l struct{ Emulator, Vendor, Token string }
	if json.Unmarshal([]byte(line), &l) != nil {
		return receipt{}, false
	}
	name := l.Emulator
	if name == "" {
		name = l.Vendor
	}
	v, ok := push.ParseVendor(name)
	if !ok || l.Token == "" {
		return receipt{}, false
	}
	return receipt{Vendor: v, Token: strings.TrimPrefix(l.Token, "…")}, true
}

// testToken returns a token of vendor v in that vendor's form (APNs: hex),
// distinct per vendor and test, whose last 6 characters identify it.
func testToken(v push.Vendor, seed string) string {
	sum := sha256.Sum256([]byte(string(v) + "/" + seed))
	h := hex.EncodeToString(sum[:])
	if v == push.APNs {
		return h
	}
	return "tok-" + string(v) + "-" + h[:24]
}

// lockedBuffer is a bytes.Buffer safe for the emulators' goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	s := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	for s.Scan() {
		out = append(out, s.Text())
	}
	return out
}

// TestProvidersReachEmulators sends one push per vendor through that
// vendor's real provider, built as the local stack builds it, with the
// credential exactly as the local stack stores it: each is delivered, and
// each emulator prints one receipt with the token's last 6 characters and
// nothing more of it. This checks the registration of generated keys, app
// ids and URLs without the queues.
func TestProvidersReachEmulators(t *testing.T) {
	creds := repositoryCredentials(t)
	out := &lockedBuffer{}
	emus, err := startEmulators(creds, &syncWriter{w: out}, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	defer emus.stop()
	st := testenv.Stack(t, moto.Endpoint)
	now := time.Now()
	for _, c := range creds {
		t.Run(string(c.Vendor), func(t *testing.T) {
			getenv := testenv.Env(moto.Endpoint, st.FunctionEnv(app.DispatchFunctionID(c.Vendor)))
			sender, err := senders[c.Vendor](t.Context(), getenv, discardLog())
			if err != nil {
				t.Fatal(err)
			}
			raw, err := json.Marshal(c.Fields)
			if err != nil {
				t.Fatal(err)
			}
			token := testToken(c.Vendor, t.Name())
			collapse, notify := push.CollapseFor(c.Vendor, "g1")
			platform := push.PlatformAndroid
			if c.Vendor == push.APNs {
				platform = push.PlatformIOS
			}
			env := &push.Envelope{
				Version: push.EnvelopeVersion, App: c.App, Vendor: c.Vendor, CertName: c.CertName,
				MessageID: "m-1", Kind: push.KindMessage, SenderID: "alice",
				ConversationType: push.ConversationType("group"), ConversationID: "g1",
				ExpiresAt: now.Add(time.Hour).UnixMilli(), CollapseID: collapse, NotifyID: notify,
				Priority: push.PriorityHigh,
				Texts:    []push.EnvelopeText{{Title: "Alice", Body: "Alice: lunch?"}},
				Targets:  []push.Target{{UserID: "bob", DeviceID: "d1", Token: token, Platform: platform}},
			}
			job := &push.SendJob{Envelope: env, Targets: env.Targets, Credentials: raw,
				CredentialsKey: c.App + "/" + c.CertName + "#test", TTL: time.Hour, Badges: map[string]int{"bob": 1}}
			got := sender.Send(t.Context(), job)
			if len(got) != 1 || got[0].Class != push.SendOK {
				t.Fatalf("Send = %+v, want one %s", got, push.SendOK)
			}
			var found []receipt
			for _, line := range out.lines() {
				if strings.Contains(line, token[:len(token)-6]) {
					t.Errorf("a receipt shows more than the token's last 6 characters: %s", line)
				}
				if r, ok := parseReceipt(line); ok && r.Vendor == c.Vendor && r.Token == push.Redact(token) {
					found = append(found, r)
				}
			}
			if len(found) != 1 {
				t.Errorf("%d receipts of %s for …%s, want 1; stdout:\n%s", len(found), c.Vendor, push.Redact(token), strings.Join(out.lines(), "\n"))
			}
		})
	}
	for _, line := range out.lines() {
		if !json.Valid([]byte(line)) {
			t.Errorf("emulator line is not JSON: %s", line)
		}
		for _, c := range creds {
			for _, k := range []string{"privateKey", "appSecret", "clientSecret", "masterSecret"} {
				if s, _ := c.Fields[k].(string); s != "" && strings.Contains(line, s) {
					t.Errorf("an emulator line shows %s of %s: %s", k, c.CertName, line)
				}
			}
		}
	}
}

// signedRequest builds a request to the local stack signed with the demo
// app's API secret (API.md §2).
func signedRequest(t *testing.T, base, method, path string, body []byte, nonce int) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	n := fmt.Sprintf("e2e-nonce-%08d-%d", nonce, time.Now().UnixNano())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Push-Timestamp", ts)
	req.Header.Set("X-Push-Nonce", n)
	req.Header.Set("X-Push-Signature", httpapi.Sign(demoSecret, method, path, "", ts, n, body))
	return req
}

// demoSecret is the demo app's API secret in config/local.json.
const demoSecret = "demo-only-api-secret-0c5e9a27d41b"

// do sends a signed request and returns the status and body.
func do(t *testing.T, base, method, path string, body any, nonce int) (int, []byte) {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(signedRequest(t, base, method, path, raw, nonce))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, got
}

// TestLocalStackPushEndToEnd runs the local stack binary as `make run`
// does, registers one device per vendor through the HTTP API, posts one
// message to their users, and waits until every vendor's emulator has
// printed its receipt on the local stack's stdout with that device's token
// suffix: the whole pipeline from ingest through the queues and the
// dispatch functions to the emulators. Then SIGTERM must stop it all.
func TestLocalStackPushEndToEnd(t *testing.T) {
	// A moto of its own: the local stacks of other tests leave SQS long
	// polls waiting in a shared moto after they exit, and those would take
	// this test's messages out of sight for the visibility timeout.
	own := testenv.Moto(t)
	p := startLocal(t, "AWS_ENDPOINT_URL="+own.Endpoint)
	p.mu.Lock()
	base := p.url
	p.mu.Unlock()

	certs := map[push.Vendor]string{}
	for _, c := range repositoryCredentials(t) {
		certs[c.Vendor] = c.CertName
	}
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	tokens := map[push.Vendor]string{}
	var users []string
	for i, v := range push.Vendors {
		user := "e2e-" + string(v) + "-" + run
		users = append(users, user)
		tokens[v] = testToken(v, run)
		status, body := do(t, base, http.MethodPut, "/v1/apps/demo/users/"+user+"/devices/phone-1",
			map[string]string{"vendor": string(v), "token": tokens[v], "certName": certs[v]}, i)
		if status != http.StatusOK {
			t.Fatalf("register %s device: %d %s", v, status, body)
		}
	}
	msg := map[string]any{
		"messageId":    "e2e-" + run,
		"type":         "message",
		"sender":       map[string]string{"userId": "alice", "nickname": "Alice"},
		"conversation": map[string]string{"type": "group", "id": "g1"},
		"recipients":   users,
		"push":         map[string]any{"title": "Team", "content": "lunch?"},
	}
	status, body := do(t, base, http.MethodPost, "/v1/apps/demo/messages", msg, len(users))
	if status != http.StatusAccepted {
		t.Fatalf("POST messages: %d %s", status, body)
	}
	var ack struct{ Pushes int }
	if err := json.Unmarshal(body, &ack); err != nil || ack.Pushes != len(push.Vendors) {
		t.Fatalf("POST messages answered %s, want %d pushes", body, len(push.Vendors))
	}

	// Wait, with a deadline, for one receipt per vendor.
	deadline := time.Now().Add(90 * time.Second)
	var missing []push.Vendor
	for {
		seen := map[push.Vendor]int{}
		p.mu.Lock()
		for _, line := range p.stdout {
			if r, ok := parseReceipt(line); ok && r.Token == push.Redact(tokens[r.Vendor]) {
				seen[r.Vendor]++
			}
		}
		p.mu.Unlock()
		missing = missing[:0]
		for _, v := range push.Vendors {
			if seen[v] == 0 {
				missing = append(missing, v)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		select {
		case <-p.exited:
			t.Fatalf("local stack exited: %v", p.waitErr)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if len(missing) > 0 {
		t.Errorf("no receipt from the emulators of %v within 90 s", missing)
	}

	pgid := p.cmd.Process.Pid
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(time.Minute):
		t.Fatal("local stack still running a minute after SIGTERM")
	}
	if p.waitErr != nil {
		t.Errorf("exit after SIGTERM: %v, want status 0", p.waitErr)
	}
	if err := syscall.Kill(-pgid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("kill(-%d, 0) after exit = %v, want ESRCH: a process of the group is left", pgid, err)
	}

	// The stdout contract: "ready" once, on its own line, then only
	// emulator receipts, each JSON with a 6-character token suffix.
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := slices.Index(p.stdout, "ready"); n < 0 || slices.Index(p.stdout[n+1:], "ready") >= 0 {
		t.Errorf("stdout has %q, want ready exactly once", p.stdout)
	}
	for _, line := range p.stdout {
		if line == "ready" {
			continue
		}
		r, ok := parseReceipt(line)
		if !ok || len(r.Token) != 6 {
			t.Errorf("stdout line is not an emulator receipt with a token suffix: %s", line)
		}
		for _, tok := range tokens {
			if strings.Contains(line, tok[:len(tok)-6]) {
				t.Errorf("a receipt shows more than the token's last 6 characters: %s", line)
			}
		}
	}
	if t.Failed() {
		t.Logf("stdout:\n%s", strings.Join(p.stdout, "\n"))
	}
	for _, line := range p.stderr {
		if strings.Contains(line, "PRIVATE KEY") || strings.Contains(line, demoSecret) {
			t.Errorf("a log line shows a key or secret: %s", line)
		}
	}
}

// TestAPNsCertificateAuthReachesEmulator checks a local APNs credential that
// uses certificate auth: the emulator trusts its (self-signed) client
// certificate, and the real provider delivers with it.
func TestAPNsCertificateAuthReachesEmulator(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "Apple Push Services: com.example.cert"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := pkcs8PEM(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})) + keyPEM
	fields := map[string]any{"vendor": "apns", "bundleId": "com.example.cert", "certificate": certPEM, "endpoint": "local"}
	gen, err := completeLocal(push.APNs, fields)
	if err != nil || len(gen) != 0 {
		t.Fatalf("completeLocal = %v, %v; want nothing generated", gen, err)
	}
	creds := []credential{{App: "demo", CertName: "ios-cert", Vendor: push.APNs, Fields: fields}}
	out := &lockedBuffer{}
	emus, err := startEmulators(creds, out, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	defer emus.stop()
	st := testenv.Stack(t, moto.Endpoint)
	sender, err := senders[push.APNs](t.Context(), testenv.Env(moto.Endpoint, st.FunctionEnv(app.DispatchFunctionID(push.APNs))), discardLog())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	token := testToken(push.APNs, t.Name())
	env := &push.Envelope{
		Version: push.EnvelopeVersion, App: "demo", Vendor: push.APNs, CertName: "ios-cert",
		MessageID: "m-1", Kind: push.KindMessage, SenderID: "alice", ConversationType: push.ConversationType("peer"),
		ExpiresAt: time.Now().Add(time.Hour).UnixMilli(), Priority: push.PriorityHigh,
		Texts:   []push.EnvelopeText{{Title: "Alice", Body: "hi"}},
		Targets: []push.Target{{UserID: "bob", DeviceID: "d1", Token: token, Platform: push.PlatformIOS}},
	}
	got := sender.Send(t.Context(), &push.SendJob{Envelope: env, Targets: env.Targets, Credentials: raw, CredentialsKey: "demo/ios-cert#1", TTL: time.Hour})
	if len(got) != 1 || got[0].Class != push.SendOK {
		t.Fatalf("Send = %+v, want one %s", got, push.SendOK)
	}
	var auth []string
	for _, line := range out.lines() {
		var l struct{ Token, Auth string }
		if json.Unmarshal([]byte(line), &l) == nil && l.Token == push.Redact(token) {
			auth = append(auth, l.Auth)
		}
	}
	if diff := cmp.Diff([]string{"certificate"}, auth); diff != "" {
		t.Errorf("receipts' auth (-want +got):\n%s", diff)
	}
}
