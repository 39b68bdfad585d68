package apns

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/sideshow/apns2"

	"github.com/offline-push/offline-push/shared/push"
)

// TestClassify covers VENDORS.md §1's table row by row, including answers
// the emulator tests cannot provoke.
func TestClassify(t *testing.T) {
	tests := []struct {
		status int
		reason string
		want   push.SendResult
	}{
		{200, "", push.SendResult{Class: push.SendOK}},
		{410, "Unregistered", push.SendResult{Class: push.SendInvalidToken, Code: "Unregistered"}},
		{410, "ExpiredToken", push.SendResult{Class: push.SendInvalidToken, Code: "ExpiredToken"}},
		{400, "BadDeviceToken", push.SendResult{Class: push.SendInvalidToken, Code: "BadDeviceToken"}},
		{400, "DeviceTokenNotForTopic", push.SendResult{Class: push.SendInvalidToken, Code: "DeviceTokenNotForTopic"}},
		{400, "IdleTimeout", push.SendResult{Class: push.SendTransient, Code: "IdleTimeout"}},
		{400, "MissingTopic", push.SendResult{Class: push.SendBadMessage, Code: "MissingTopic"}},
		{400, "BadTopic", push.SendResult{Class: push.SendBadMessage, Code: "BadTopic"}},
		{400, "TopicDisallowed", push.SendResult{Class: push.SendBadMessage, Code: "TopicDisallowed"}},
		{400, "BadPriority", push.SendResult{Class: push.SendBadMessage, Code: "BadPriority"}},
		{400, "BadExpirationDate", push.SendResult{Class: push.SendBadMessage, Code: "BadExpirationDate"}},
		{400, "InvalidPushType", push.SendResult{Class: push.SendBadMessage, Code: "InvalidPushType"}},
		{400, "PayloadEmpty", push.SendResult{Class: push.SendBadMessage, Code: "PayloadEmpty"}},
		{404, "BadPath", push.SendResult{Class: push.SendBadMessage, Code: "BadPath"}},
		{405, "MethodNotAllowed", push.SendResult{Class: push.SendBadMessage, Code: "MethodNotAllowed"}},
		{413, "PayloadTooLarge", push.SendResult{Class: push.SendBadMessage, Code: "PayloadTooLarge"}},
		{403, "ExpiredProviderToken", push.SendResult{Class: push.SendAuth, Code: "ExpiredProviderToken"}},
		{403, "BadCertificateEnvironment", push.SendResult{Class: push.SendAuth, Code: "BadCertificateEnvironment"}},
		{429, "TooManyRequests", push.SendResult{Class: push.SendThrottled, Code: "TooManyRequests"}},
		{429, "TooManyProviderTokenUpdates", push.SendResult{Class: push.SendThrottled, Code: "TooManyProviderTokenUpdates", RetryAfter: time.Minute}},
		{500, "InternalServerError", push.SendResult{Class: push.SendTransient, Code: "InternalServerError"}},
		{503, "Shutdown", push.SendResult{Class: push.SendTransient, Code: "Shutdown"}},
		{502, "", push.SendResult{Class: push.SendTransient, Code: "502"}},
		{418, "", push.SendResult{Class: push.SendBadMessage, Code: "418"}},
		{302, "", push.SendResult{Class: push.SendTransient, Code: "302"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, classify(tt.status, tt.reason)); diff != "" {
			t.Errorf("classify(%d, %q) (-want +got):\n%s", tt.status, tt.reason, diff)
		}
	}
}

func TestShorten(t *testing.T) {
	tests := []struct {
		in     string
		excess int
		want   string
	}{
		{"hello world", 1, "hello w…"}, // 1 over + 3 for … = 4 bytes off
		{"吃饭吗吃饭吗", 1, "吃饭吗吃…"},         // 4 bytes: two 3-byte characters
		{"ab\"cd", 1, "ab…"},           // the quote costs 2 bytes encoded
		{"hi", 10, ""},                 // nothing left beside the ellipsis
		{"already…", 1, "alread…"},     // the old ellipsis is reused, not doubled
		{"👍👍👍", 1, "👍👍…"},              // 4-byte runes are never split
	}
	for _, tt := range tests {
		got := shorten(tt.in, tt.excess)
		if got != tt.want {
			t.Errorf("shorten(%q, %d) = %q, want %q", tt.in, tt.excess, got, tt.want)
		}
		if !utf8.ValidString(got) {
			t.Errorf("shorten(%q, %d) = %q is not valid UTF-8", tt.in, tt.excess, got)
		}
		if got != "" && jsonLen(tt.in)-jsonLen(got) < tt.excess {
			t.Errorf("shorten(%q, %d) saved %d bytes, want at least %d", tt.in, tt.excess, jsonLen(tt.in)-jsonLen(got), tt.excess)
		}
	}
}

func TestAPNsID(t *testing.T) {
	a := push.Target{UserID: "bob", DeviceID: "phone"}
	v := push.Target{UserID: "bob", DeviceID: "phone", Kind: push.TokenVoIP}
	ids := map[string]string{
		"alert":         apnsID("demo", "m-1", &a),
		"voip":          apnsID("demo", "m-1", &v),
		"other message": apnsID("demo", "m-2", &a),
		"other app":     apnsID("demo2", "m-1", &a),
		// Length-prefixed parts: shifting a character between parts is
		// another push.
		"shifted": apnsID("demo", "m-1b", &push.Target{UserID: "ob", DeviceID: "phone"}),
	}
	seen := map[string]string{}
	for name, id := range ids {
		if other, dup := seen[id]; dup {
			t.Errorf("%s and %s share apns-id %s", name, other, id)
		}
		seen[id] = name
		if len(id) != 36 || strings.Count(id, "-") != 4 || id[14] != '8' || !strings.ContainsRune("89ab", rune(id[19])) {
			t.Errorf("%s: %s is not an RFC 9562 version 8 UUID", name, id)
		}
	}
	if apnsID("demo", "m-1", &a) != ids["alert"] {
		t.Error("apns-id is not deterministic")
	}
}

// TestHosts: without an endpoint, production and sandbox tokens go to
// Apple's two hosts (apns2's default host is the sandbox, so this must be
// explicit).
func TestHosts(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(Credentials{Vendor: "apns", BundleID: "com.example.chat", TeamID: "T", KeyID: "K",
		PrivateKey: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))})
	if err != nil {
		t.Fatal(err)
	}
	c := newConn(raw)
	if c.err != nil {
		t.Fatal(c.err)
	}
	if got := c.client(push.Production).Host; got != apns2.HostProduction {
		t.Errorf("production host = %s, want %s", got, apns2.HostProduction)
	}
	if got := c.client(push.Sandbox).Host; got != apns2.HostDevelopment {
		t.Errorf("sandbox host = %s, want %s", got, apns2.HostDevelopment)
	}
	if got := c.client("").Host; got != apns2.HostProduction {
		t.Errorf("host of an unset environment = %s, want production", got)
	}
	// The key names the team and key id, plus a fingerprint of the private
	// key, so credentials with the same ids but another key never share a
	// provider token.
	if got, want := c.creds.cacheKey(), "apns/T/K#"+push.CredentialFingerprint(c.creds.creds.PrivateKey); got != want {
		t.Errorf("cache key = %s, want %s", got, want)
	}
}

// TestMint checks the provider token's shape: header, claims, and an
// ES256 signature that verifies against the key.
func TestMint(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 22, 10, 0, 0, 900_000_000, time.UTC)
	tok, err := mint(k, "KEY1234567", "TEAM123456", now)
	if err != nil {
		t.Fatal(err)
	}
	if want := now.Truncate(time.Second); !tok.MintedAt.Equal(want) || !tok.ExpiresAt.Equal(want.Add(time.Hour)) {
		t.Errorf("minted %v expires %v, want %v and an hour later", tok.MintedAt, tok.ExpiresAt, want)
	}
	if got := describe(t, tok.Value); got != `{"alg":"ES256","kid":"KEY1234567"} {"iss":"TEAM123456","iat":1795341600}` {
		t.Errorf("token = %s", got)
	}
	if !verifyES256(t, &k.PublicKey, tok.Value) {
		t.Error("signature does not verify")
	}
}
