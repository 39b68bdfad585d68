package httpapi

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/offline-push/offline-push/shared/push"
)

// Header names of the request signature (API.md §2). API Gateway v2 hands
// them to the function lower-cased; the router matches them in any case.
const (
	HeaderTimestamp = "X-Push-Timestamp"
	HeaderNonce     = "X-Push-Nonce"
	HeaderSignature = "X-Push-Signature"
)

// MaxClockSkew is how far a request's timestamp may lie from the server clock,
// either way, and still be accepted. 300 s is accepted, 301 s is not.
const MaxClockSkew = 300 * time.Second

// SecretSource yields the API secrets of an app. Every listed secret is
// accepted, which is how secrets are rotated. It returns push.ErrNotFound for
// an unknown app.
type SecretSource interface {
	APISecrets(ctx context.Context, app string) ([]string, error)
}

// NonceStore records spent nonces. Spend returns push.ErrConflict when the
// nonce was already spent for that app within its replay window.
type NonceStore interface {
	Spend(ctx context.Context, app, nonce string, now time.Time) error
}

// Verifier checks request signatures against the secrets of the app named in
// the path and spends each nonce once.
type Verifier struct {
	secrets SecretSource
	nonces  NonceStore
}

// NewVerifier returns a Verifier that reads secrets from secrets and records
// nonces in nonces.
func NewVerifier(secrets SecretSource, nonces NonceStore) *Verifier {
	return &Verifier{secrets: secrets, nonces: nonces}
}

// SignedRequest is what a signature covers, plus the three header values that
// carry it. RawPath is the path as sent, still percent-encoded and without a
// stage prefix; Body is the raw body with any base64 transfer encoding undone.
type SignedRequest struct {
	App       string
	Method    string
	RawPath   string
	RawQuery  string
	Timestamp string
	Nonce     string
	Signature string
	Body      []byte
}

// Verify authenticates r at instant now. It returns nil when the signature
// verifies and the nonce was fresh (the nonce is spent from then on), an error
// wrapping push.ErrUnauthenticated whose text names the cause for the log
// (never the signature or a secret), or another error when a dependency
// failed, which is a fault of ours rather than of the caller.
func (v *Verifier) Verify(ctx context.Context, r SignedRequest, now time.Time) error {
	if r.Timestamp == "" || r.Nonce == "" || r.Signature == "" {
		return authFailure("missing signature header")
	}
	ts, ok := parseTimestamp(r.Timestamp)
	if !ok {
		return authFailure("malformed timestamp")
	}
	skew := now.Unix() - ts
	if skew > int64(MaxClockSkew/time.Second) || skew < -int64(MaxClockSkew/time.Second) {
		return authFailure("timestamp outside the accepted window")
	}
	if !validNonce(r.Nonce) {
		return authFailure("malformed nonce")
	}
	got, ok := parseSignature(r.Signature)
	if !ok {
		return authFailure("malformed signature")
	}
	secrets, err := v.secrets.APISecrets(ctx, r.App)
	if errors.Is(err, push.ErrNotFound) {
		return authFailure("unknown app")
	}
	if err != nil {
		return fmt.Errorf("look up API secrets: %w", err)
	}
	canonical := []byte(Canonical(r.Method, r.RawPath, r.RawQuery, r.Timestamp, r.Nonce, r.Body))
	// Every secret is tried, even after a match, so the time taken does not
	// reveal which of the listed secrets signed the request.
	match := false
	for _, s := range secrets {
		if s == "" {
			continue
		}
		m := hmac.New(sha256.New, []byte(s))
		m.Write(canonical)
		if hmac.Equal(m.Sum(nil), got) {
			match = true
		}
	}
	if !match {
		return authFailure("signature does not match")
	}
	// The nonce is spent only now: a request that fails any earlier check
	// must not burn a nonce that its legitimate sender may still use.
	switch err := v.nonces.Spend(ctx, r.App, r.Nonce, now); {
	case errors.Is(err, push.ErrConflict):
		return authFailure("replayed nonce")
	case err != nil:
		return fmt.Errorf("spend nonce: %w", err)
	}
	return nil
}

// Canonical returns the string a signature covers (API.md §2): method in
// upper case, raw path, raw query, timestamp, nonce and the lowercase hex
// SHA-256 of the body, joined by "\n".
func Canonical(method, rawPath, rawQuery, timestamp, nonce string, body []byte) string {
	sum := sha256.Sum256(body)
	return strings.Join([]string{
		strings.ToUpper(method), rawPath, rawQuery, timestamp, nonce, hex.EncodeToString(sum[:]),
	}, "\n")
}

// Sign returns the X-Push-Signature value for a request: the lowercase hex
// HMAC-SHA256 of its canonical string under secret. Clients (pushctl, tests)
// use it; the server compares against it.
func Sign(secret, method, rawPath, rawQuery, timestamp, nonce string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(Canonical(method, rawPath, rawQuery, timestamp, nonce, body)))
	return hex.EncodeToString(m.Sum(nil))
}

func authFailure(cause string) error {
	return fmt.Errorf("%s: %w", cause, push.ErrUnauthenticated)
}

// parseTimestamp accepts decimal Unix seconds: digits only, no sign, no
// fraction, at most 19 digits so the value fits an int64.
func parseTimestamp(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 19 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// validNonce reports whether s is 8 to 64 characters of [A-Za-z0-9_-].
func validNonce(s string) bool {
	if len(s) < 8 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// parseSignature decodes a signature that is exactly 64 lowercase hex digits,
// the only spelling API.md §2 defines.
func parseSignature(s string) ([]byte, bool) {
	if len(s) != 2*sha256.Size {
		return nil, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return nil, false
		}
	}
	b, err := hex.DecodeString(s)
	return b, err == nil
}
