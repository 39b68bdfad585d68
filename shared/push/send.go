package push

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// SendClass classifies the answer a vendor gave for one target. Every
// provider maps its vendor's codes to these once; the dispatch engine acts on
// the class alone (DESIGN.md §Dispatch).
type SendClass string

// Send classes.
const (
	// SendOK: the vendor accepted the push.
	SendOK SendClass = "ok"
	// SendInvalidToken: the token is dead; dispatch unbinds it (on condition
	// that the binding still holds that exact token) and never retries.
	SendInvalidToken SendClass = "invalid_token"
	// SendBadMessage: the vendor refused the request itself; retrying the
	// same request cannot help.
	SendBadMessage SendClass = "bad_message"
	// SendThrottled: the vendor asked us to slow down; retry after
	// RetryAfter (or the engine's backoff), never in a hot loop.
	SendThrottled SendClass = "throttled"
	// SendTransient: a fault that a later retry may not meet; retry with
	// backoff and jitter.
	SendTransient SendClass = "transient"
	// SendAuth: the vendor refused our credential. The provider has already
	// refreshed it once and retried; dispatch treats it as transient and
	// alarms.
	SendAuth SendClass = "auth"
)

// SendResult is a provider's verdict on one target.
type SendResult struct {
	Class SendClass
	// RetryAfter is the vendor's hint for throttled (or a daily quota's reset)
	// answers; zero lets the engine choose its backoff.
	RetryAfter time.Duration
	// Code is the vendor's reason or code ("Unregistered", "80300007"),
	// for logs and metrics. It never contains a token.
	Code string
}

// SendJob is one batch of targets of one envelope that a provider delivers.
// The provider may split it into as many vendor requests as the vendor's
// multicast limit needs; it returns one SendResult per target, in order.
type SendJob struct {
	Envelope *Envelope
	Targets  []Target
	// Credentials is the JSON of the secret {prefix}/{app}/vendors/{certName}.
	Credentials []byte
	// CredentialsKey identifies the credentials and their version, so that a
	// provider can keep one client per key across warm invocations and
	// rebuild it when the secret rotates.
	CredentialsKey string
	// TTL is the push's remaining lifetime, always positive: what the vendor
	// is told to keep it for (NowOrNever envelopes excepted).
	TTL time.Duration
	// Badges holds each target user's absolute badge count (APNs, rule 23),
	// when the envelope asks for a badge.
	Badges map[string]int
}

// AccessToken is a vendor credential minted from our keys: an APNs provider
// JWT or a vendor OAuth token. One is shared by every container through a
// cache, because vendors rate-limit minting.
type AccessToken struct {
	Value     string
	MintedAt  time.Time
	ExpiresAt time.Time
}

// CredentialFingerprint returns a short, one-way fingerprint of a
// credential's secret material. Providers add it to the key under which an
// access token is shared between containers, so credentials that name the
// same vendor app id with another secret (a typo, a rotated key, another
// app's misconfiguration) never borrow a token minted from the right one.
func CredentialFingerprint(secret ...string) string {
	h := sha256.New()
	for _, s := range secret {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}
