package apns

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/offline-push/offline-push/shared/push"
)

// Provider token ages (VENDORS.md §1). Apple honours a token for an hour
// after its iat and answers 429 TooManyProviderTokenUpdates to a team that
// refreshes more often than every 20 minutes, counting all of the team's
// keys and all our containers together. So one token per key is shared
// through the TokenCache, reused until reuseFor, and replaced early only
// when APNs refuses it and it is at least minRefreshAge old.
const (
	tokenLifetime = time.Hour
	reuseFor      = 50 * time.Minute
	minRefreshAge = 20 * time.Minute
)

// TokenCache shares provider tokens between containers. The dispatch
// wiring passes the DynamoDB implementation (dynamo.CredentialCache).
type TokenCache interface {
	// Load returns the stored token of key, and false when there is none.
	Load(ctx context.Context, key string) (push.AccessToken, bool, error)
	// Swap stores next if the stored token is still prev (nil: none is
	// stored) and returns next; otherwise it stores nothing and returns the
	// stored token, which another container put there first.
	Swap(ctx context.Context, key string, prev *push.AccessToken, next push.AccessToken) (push.AccessToken, error)
}

// tokenState is this container's copy of one key's provider token. Its
// mutex also makes the goroutines of one Send that need a token wait for
// one look-up or mint instead of each minting.
type tokenState struct {
	mu  sync.Mutex
	tok push.AccessToken // zero when none is known yet
}

func (s *Sender) state(key string) *tokenState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.tokens[key]
	if !ok {
		st = &tokenState{}
		s.tokens[key] = st
	}
	return st
}

// age is how long ago tok was minted; a token minted in our future (another
// container's clock runs ahead) counts as new.
func age(tok push.AccessToken, now time.Time) time.Duration {
	return max(now.Sub(tok.MintedAt), 0)
}

func reusable(tok push.AccessToken, now time.Time) bool {
	return tok.Value != "" && age(tok, now) < reuseFor
}

// providerToken returns the token to send with for p's key: this
// container's copy while it is younger than reuseFor, else the shared one
// while that is, else a new one, published through Swap (whoever swapped
// first wins and every container uses the winner).
func (s *Sender) providerToken(ctx context.Context, p *parsed) (push.AccessToken, error) {
	st := s.state(p.cacheKey())
	st.mu.Lock()
	defer st.mu.Unlock()
	now := s.now()
	if reusable(st.tok, now) {
		return st.tok, nil
	}
	shared, ok, err := s.cache.Load(ctx, p.cacheKey())
	if err != nil {
		return push.AccessToken{}, fmt.Errorf("load apns provider token %s: %w", p.cacheKey(), err)
	}
	if ok && reusable(shared, now) {
		st.tok = shared
		return shared, nil
	}
	var prev *push.AccessToken
	if ok {
		prev = &shared
	}
	return s.mintLocked(ctx, p, st, prev, now)
}

// refreshToken is called when APNs refused rejected as expired or invalid.
// It returns the token to retry with, or false when rejected is too young
// to replace (a young token that APNs refuses points at the key, not its
// age, and minting again would only earn TooManyProviderTokenUpdates).
func (s *Sender) refreshToken(ctx context.Context, p *parsed, rejected push.AccessToken) (push.AccessToken, bool, error) {
	st := s.state(p.cacheKey())
	st.mu.Lock()
	defer st.mu.Unlock()
	now := s.now()
	if st.tok.Value != rejected.Value && reusable(st.tok, now) {
		return st.tok, true, nil // another goroutine refreshed it already
	}
	if age(rejected, now) < minRefreshAge {
		return push.AccessToken{}, false, nil
	}
	shared, ok, err := s.cache.Load(ctx, p.cacheKey())
	if err != nil {
		return push.AccessToken{}, false, fmt.Errorf("load apns provider token %s: %w", p.cacheKey(), err)
	}
	if ok && shared.Value != rejected.Value && reusable(shared, now) {
		st.tok = shared
		return shared, true, nil // another container refreshed it already
	}
	var prev *push.AccessToken
	if ok {
		prev = &shared
	}
	tok, err := s.mintLocked(ctx, p, st, prev, now)
	if err != nil {
		return push.AccessToken{}, false, err
	}
	return tok, tok.Value != rejected.Value, nil
}

// mintLocked signs a new token, publishes it in place of prev and keeps
// the winner. st.mu is held.
func (s *Sender) mintLocked(ctx context.Context, p *parsed, st *tokenState, prev *push.AccessToken, now time.Time) (push.AccessToken, error) {
	next, err := mint(p.authKey, p.creds.KeyID, p.creds.TeamID, now)
	if err != nil {
		return push.AccessToken{}, fmt.Errorf("mint apns provider token %s: %w", p.cacheKey(), err)
	}
	won, err := s.cache.Swap(ctx, p.cacheKey(), prev, next)
	if err != nil {
		return push.AccessToken{}, fmt.Errorf("publish apns provider token %s: %w", p.cacheKey(), err)
	}
	if won.Value == next.Value {
		s.log.Info("apns provider token minted", "team", p.creds.TeamID, "key", p.creds.KeyID)
	}
	st.tok = won
	return won, nil
}

// mint returns a provider token as Apple specifies it: a JWT with header
// {"alg":"ES256","kid":keyID} and claims {"iss":teamID,"iat":now},
// signed with the team's P-256 key. iat has whole seconds, so MintedAt is
// truncated to match the age APNs will judge.
func mint(key *ecdsa.PrivateKey, keyID, teamID string, now time.Time) (push.AccessToken, error) {
	iat := now.Unix()
	header, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}{"ES256", keyID})
	if err != nil {
		return push.AccessToken{}, err
	}
	claims, err := json.Marshal(struct {
		Iss string `json:"iss"`
		Iat int64  `json:"iat"`
	}{teamID, iat})
	if err != nil {
		return push.AccessToken{}, err
	}
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
	digest := sha256.Sum256([]byte(signing))
	r, sv, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		return push.AccessToken{}, err
	}
	// JWS ES256 signatures are R and S as two 32-byte big-endian numbers.
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	sv.FillBytes(sig[32:])
	minted := time.Unix(iat, 0).UTC()
	return push.AccessToken{
		Value:     signing + "." + enc.EncodeToString(sig),
		MintedAt:  minted,
		ExpiresAt: minted.Add(tokenLifetime),
	}, nil
}
