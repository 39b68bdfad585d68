package fcmemu

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"
)

// FuzzParseSend: any body gets an answer, never a panic; a refusal is a
// 4xx, and an accepted request has exactly one target.
func FuzzParseSend(f *testing.F) {
	for _, seed := range []string{
		`{"message":{"token":"tok-1","data":{"k":"v"}}}`,
		`{"validate_only":true,"message":{"topic":"news","android":{"priority":"high","ttl":"3.5s","notification":{"color":"#aabbcc","notification_count":2}}}}`,
		`{"message":{"token":"t","apns":{"headers":{"apns-priority":"10"},"payload":{"aps":{"badge":1}}}}}`,
		`{"message":{"condition":"'a' in topics","android":{"ttl":"99999999999999999999s"}}}`,
		`{"message":null}`, `[]`, `{`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, e := parseSend(body)
		if e != nil {
			if e.status < 400 || e.status > 499 {
				t.Fatalf("refusal with status %d", e.status)
			}
			return
		}
		m := req.Message
		n := 0
		for _, s := range []string{m.Token, m.Topic, m.Condition} {
			if s != "" {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("accepted a message with %d targets", n)
		}
		if m.checkSize() != nil {
			t.Fatal("accepted an oversize message")
		}
	})
}

// FuzzVerifyAssertion: any assertion is judged without a panic, and one
// the emulator accepts names the registered account.
func FuzzVerifyAssertion(f *testing.F) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	s := New(Options{})
	defer s.Close()
	const email = "push@fuzz.iam.gserviceaccount.com"
	s.AddServiceAccount("fuzz", email, &key.PublicKey)
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	now := time.Now()
	signing := enc(map[string]string{"alg": "RS256", "typ": "JWT"}) + "." + enc(map[string]any{
		"iss": email, "scope": sendScopes[0], "aud": s.TokenURI(), "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	})
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		f.Fatal(err)
	}
	valid := signing + "." + base64.RawURLEncoding.EncodeToString(sig)
	if _, _, _, e := s.verifyAssertion(valid); e != nil {
		f.Fatalf("valid seed refused: %v", e)
	}
	f.Add(valid)
	f.Add("a.b.c")
	f.Add("")
	f.Add(signing + ".")
	f.Fuzz(func(t *testing.T, assertion string) {
		acct, who, _, e := s.verifyAssertion(assertion)
		if e == nil && (who != email || acct.project != "fuzz") {
			t.Fatalf("accepted for %q / %q", who, acct.project)
		}
		if e != nil && e.Code == "" {
			t.Fatal("refusal without an error code")
		}
	})
}
