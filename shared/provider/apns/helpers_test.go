package apns_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	apnsemu "github.com/offline-push/offline-push/shared/emulator/apns"
	"github.com/offline-push/offline-push/shared/provider/apns"
	"github.com/offline-push/offline-push/shared/push"
)

const (
	bundle = "com.example.chat"
	team   = "TEAM123456"
	keyID  = "KEY1234567"
)

// tokenOf returns a distinct valid APNs device token for n.
func tokenOf(n int) string { return fmt.Sprintf("%064x", n+0xa11ce) }

// clock is a settable clock shared by a Sender and an emulator, so tests can
// age provider tokens without waiting.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// memoryCache is an in-memory TokenCache with the contract of the DynamoDB
// one: Swap stores only over the expected previous token. It counts the
// tokens it stored, that is, the mints that won.
type memoryCache struct {
	mu     sync.Mutex
	tokens map[string]push.AccessToken
	stored atomic.Int64
}

func newMemoryCache() *memoryCache { return &memoryCache{tokens: map[string]push.AccessToken{}} }

func (m *memoryCache) Load(_ context.Context, key string) (push.AccessToken, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tokens[key]
	return t, ok, nil
}

func (m *memoryCache) Swap(_ context.Context, key string, prev *push.AccessToken, next push.AccessToken) (push.AccessToken, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.tokens[key]
	switch {
	case ok && (prev == nil || prev.Value != cur.Value):
		return cur, nil
	case !ok && prev != nil:
		// The expected token is gone (expired); nobody else won either.
	}
	m.tokens[key] = next
	m.stored.Add(1)
	return next, nil
}

// brokenCache fails every call, as a DynamoDB outage would.
type brokenCache struct{}

var errCacheDown = errors.New("cache down")

func (brokenCache) Load(context.Context, string) (push.AccessToken, bool, error) {
	return push.AccessToken{}, false, errCacheDown
}

func (brokenCache) Swap(context.Context, string, *push.AccessToken, push.AccessToken) (push.AccessToken, error) {
	return push.AccessToken{}, errCacheDown
}

func discard() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }

// keyCounter makes every fixture's CredentialsKey unique: clients are kept
// per key in package state, and each test has its own emulator.
var keyCounter atomic.Int64

// fixture is an emulator and credentials pointing at it.
type fixture struct {
	emu   *apnsemu.Server
	key   *ecdsa.PrivateKey
	creds apns.Credentials
}

func newFixture(t testing.TB, opts apnsemu.Options) *fixture {
	t.Helper()
	emu, err := apnsemu.New(opts)
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
	return &fixture{emu: emu, key: k, creds: apns.Credentials{
		Vendor: "apns", BundleID: bundle, TeamID: team, KeyID: keyID, PrivateKey: keyPEM(t, k),
		Endpoint: emu.URL, EndpointCA: string(emu.CertificatePEM()),
	}}
}

func keyPEM(t testing.TB, k *ecdsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// job wraps env and its targets in a SendJob for f's credentials.
func (f *fixture) job(t testing.TB, env *push.Envelope) *push.SendJob {
	t.Helper()
	raw, err := json.Marshal(f.creds)
	if err != nil {
		t.Fatal(err)
	}
	return &push.SendJob{
		Envelope:       env,
		Targets:        env.Targets,
		Credentials:    raw,
		CredentialsKey: fmt.Sprintf("%s#%d", t.Name(), keyCounter.Add(1)),
		TTL:            time.Hour,
	}
}

// message returns a chat message envelope to n alert targets.
func message(n int) *push.Envelope {
	env := &push.Envelope{
		Version: push.EnvelopeVersion, App: "demo", Vendor: push.APNs, CertName: "ios-prod",
		MessageID: "m-1001", Kind: push.KindMessage, SenderID: "alice",
		ConversationType: push.Group, ConversationID: "g1",
		CollapseID: "m:m-1001", Priority: push.PriorityNormal,
		Texts:   []push.EnvelopeText{{Title: "Team", Body: "Alice: lunch?"}},
		Payload: map[string]string{"k": "v"},
		Badge:   true,
	}
	for i := range n {
		env.Targets = append(env.Targets, push.Target{UserID: fmt.Sprintf("u%d", i), DeviceID: "phone", Token: tokenOf(i), Platform: push.PlatformIOS})
	}
	return env
}

// call returns a call envelope of kind to one VoIP and one alert target.
func call(kind push.MessageKind, expires time.Time) *push.Envelope {
	env := &push.Envelope{
		Version: push.EnvelopeVersion, App: "demo", Vendor: push.APNs, CertName: "ios-prod",
		MessageID: "m-call-" + string(kind), Kind: kind, SenderID: "alice",
		ConversationType: push.Peer, CallID: "c-9", Media: push.MediaVideo,
		ExpiresAt: expires.UnixMilli(), Priority: push.PriorityHigh,
		Texts: []push.EnvelopeText{{Title: "Alice", Body: "Incoming video call"}},
		Targets: []push.Target{
			{UserID: "bob", DeviceID: "iphone", Token: tokenOf(100), Kind: push.TokenVoIP, CollapseID: "c:bob"},
			{UserID: "bob", DeviceID: "ipad", Token: tokenOf(101), CollapseID: "c:bob"},
		},
	}
	if kind == push.KindCallCancel {
		env.Texts = []push.EnvelopeText{{Body: push.DefaultCancelContent}}
	}
	return env
}

// byToken indexes received pushes by device token.
func byToken(ps []apnsemu.Push) map[string]apnsemu.Push {
	m := map[string]apnsemu.Push{}
	for _, p := range ps {
		m[p.Token] = p
	}
	return m
}

// payloadOf decodes a received payload.
func payloadOf(t testing.TB, p apnsemu.Push) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(p.Payload, &m); err != nil {
		t.Fatalf("payload %s: %v", p.Payload, err)
	}
	return m
}

func classes(rs []push.SendResult) string {
	var b strings.Builder
	for i, r := range rs {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(string(r.Class))
		if r.Code != "" {
			b.WriteString("/" + r.Code)
		}
	}
	return b.String()
}
