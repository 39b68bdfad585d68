package oppo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/offline-push/offline-push/shared/push"
)

// Token ages. OPPO honours an auth_token for 24 hours; one is reused until
// an hour before that, so that a push never leaves with a token about to
// lapse, and replaced early only when OPPO refuses it.
const (
	tokenLifetime = 24 * time.Hour
	refreshBefore = time.Hour
)

// TokenCache shares auth tokens between containers. The dispatch wiring
// passes the DynamoDB implementation (dynamo.CredentialCache).
type TokenCache interface {
	// Load returns the stored token of key, and false when there is none.
	Load(ctx context.Context, key string) (push.AccessToken, bool, error)
	// Swap stores next if the stored token is still prev (nil: none is
	// stored) and returns next; otherwise it stores nothing and returns the
	// stored token, which another container put there first.
	Swap(ctx context.Context, key string, prev *push.AccessToken, next push.AccessToken) (push.AccessToken, error)
}

// errTokenCache marks a failure of the shared TokenCache, as opposed to
// one of OPPO's answers.
var errTokenCache = errors.New("oppo token cache")

// tokenState is this container's copy of one key's token. Its mutex makes
// concurrent sends that need a token wait for one look-up or mint instead of
// each minting.
type tokenState struct {
	mu  sync.Mutex
	tok push.AccessToken
}

// cacheKey names the token of an app key at an auth host: tokens are per
// OPPO app, and the overseas service issues its own.
func (p *parsed) cacheKey(r region) string {
	return "oppo/" + p.creds.AppKey + "@" + p.authHosts[r] + "#" + push.CredentialFingerprint(p.creds.MasterSecret)
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

func reusable(tok push.AccessToken, now time.Time) bool {
	return tok.Value != "" && now.Before(tok.ExpiresAt.Add(-refreshBefore))
}

// token returns the token to send with: this container's copy while it is
// reusable, else the shared one while that is, else a new one published
// through Swap (whoever swaps first wins, and everyone uses the winner).
func (s *Sender) token(ctx context.Context, p *parsed, r region) (push.AccessToken, error) {
	key := p.cacheKey(r)
	st := s.state(key)
	st.mu.Lock()
	defer st.mu.Unlock()
	now := s.now()
	if reusable(st.tok, now) {
		return st.tok, nil
	}
	shared, ok, err := s.cache.Load(ctx, key)
	if err != nil {
		return push.AccessToken{}, fmt.Errorf("%w: load %s: %w", errTokenCache, key, err)
	}
	if ok && reusable(shared, now) {
		st.tok = shared
		return shared, nil
	}
	var prev *push.AccessToken
	if ok {
		prev = &shared
	}
	return s.mintLocked(ctx, p, r, st, prev)
}

// refresh is called once OPPO refused rejected. It returns a token other
// than rejected: one another goroutine or container got meanwhile, or a new
// one.
func (s *Sender) refresh(ctx context.Context, p *parsed, r region, rejected push.AccessToken) (push.AccessToken, error) {
	key := p.cacheKey(r)
	st := s.state(key)
	st.mu.Lock()
	defer st.mu.Unlock()
	now := s.now()
	if st.tok.Value != rejected.Value && reusable(st.tok, now) {
		return st.tok, nil
	}
	shared, ok, err := s.cache.Load(ctx, key)
	if err != nil {
		return push.AccessToken{}, fmt.Errorf("%w: load %s: %w", errTokenCache, key, err)
	}
	if ok && shared.Value != rejected.Value && reusable(shared, now) {
		st.tok = shared
		return shared, nil
	}
	var prev *push.AccessToken
	if ok {
		prev = &shared
	}
	return s.mintLocked(ctx, p, r, st, prev)
}

// mintLocked asks OPPO for a token, publishes it in place of prev and keeps
// the winner. st.mu is held.
func (s *Sender) mintLocked(ctx context.Context, p *parsed, r region, st *tokenState, prev *push.AccessToken) (push.AccessToken, error) {
	next, err := s.mint(ctx, p, r)
	if err != nil {
		return push.AccessToken{}, err
	}
	won, err := s.cache.Swap(ctx, p.cacheKey(r), prev, next)
	if err != nil {
		return push.AccessToken{}, fmt.Errorf("%w: publish %s: %w", errTokenCache, p.cacheKey(r), err)
	}
	if won.Value == next.Value {
		s.log.Info("oppo auth token minted", "appKey", p.creds.AppKey, "host", p.authHosts[r])
	}
	st.tok = won
	return won, nil
}

// authAnswer is the body of /server/v1/auth.
type authAnswer struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    struct {
		AuthToken  string `json:"auth_token"`
		CreateTime int64  `json:"create_time"`
	} `json:"data"`
}

// mint calls OPPO's auth API: app_key, a 13-digit millisecond timestamp, and
// sign, the lowercase hex SHA-256 of app_key + timestamp + master_secret.
// The timestamp is an instant, so its time zone (the documentation says
// GMT+8) does not change the number.
func (s *Sender) mint(ctx context.Context, p *parsed, r region) (push.AccessToken, error) {
	now := s.now()
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	sum := sha256.Sum256([]byte(p.creds.AppKey + ts + p.creds.MasterSecret))
	form := url.Values{
		"app_key":   {p.creds.AppKey},
		"timestamp": {ts},
		"sign":      {hex.EncodeToString(sum[:])},
	}
	var a authAnswer
	if err := s.post(ctx, p.authHosts[r]+authPath, form, &a); err != nil {
		return push.AccessToken{}, fmt.Errorf("oppo auth: %w", err)
	}
	if a.Code != 0 || a.Data.AuthToken == "" {
		return push.AccessToken{}, fmt.Errorf("oppo auth: %w", &apiError{Code: a.Code, Message: a.Message})
	}
	// OPPO counts the lifetime from create_time, which is its clock;
	// counting from ours, taken before the request, errs on the early side.
	return push.AccessToken{Value: a.Data.AuthToken, MintedAt: now.UTC(), ExpiresAt: now.UTC().Add(tokenLifetime)}, nil
}

// localCache is the TokenCache of a Sender given none: this process only.
type localCache struct {
	mu sync.Mutex
	m  map[string]push.AccessToken
}

func newLocalCache() *localCache { return &localCache{m: map[string]push.AccessToken{}} }

func (c *localCache) Load(_ context.Context, key string) (push.AccessToken, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.m[key]
	return t, ok, nil
}

func (c *localCache) Swap(_ context.Context, key string, prev *push.AccessToken, next push.AccessToken) (push.AccessToken, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur, ok := c.m[key]
	if (prev == nil && ok) || (prev != nil && (!ok || cur.Value != prev.Value)) {
		return cur, nil
	}
	c.m[key] = next
	return next, nil
}
