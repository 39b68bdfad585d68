package vivo

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/offline-push/offline-push/shared/push"
)

// Token ages. vivo honours an authToken for 24 hours and asks callers to
// renew it every one to two hours; one is reused for an hour.
const (
	tokenLifetime = 24 * time.Hour
	reuseFor      = time.Hour
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
// one of vivo's answers.
var errTokenCache = errors.New("vivo token cache")

// tokenState is this container's copy of one key's token. Its mutex makes
// concurrent sends that need a token wait for one look-up or mint.
type tokenState struct {
	mu  sync.Mutex
	tok push.AccessToken
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

// reusable reports whether tok is young enough to send with; a token
// minted in our future (another container's clock runs ahead) counts as new.
func reusable(tok push.AccessToken, now time.Time) bool {
	return tok.Value != "" && max(now.Sub(tok.MintedAt), 0) < reuseFor && now.Before(tok.ExpiresAt)
}

// token returns the token to send with: this container's copy while it is
// reusable, else the shared one while that is, else a new one published
// through Swap (whoever swaps first wins, and everyone uses the winner).
func (s *Sender) token(ctx context.Context, p *parsed) (push.AccessToken, error) {
	return s.tokenOtherThan(ctx, p, "")
}

// tokenOtherThan is token, refusing the token whose value is rejected (one
// vivo refused) even while it looks reusable.
func (s *Sender) tokenOtherThan(ctx context.Context, p *parsed, rejected string) (push.AccessToken, error) {
	key := p.cacheKey()
	st := s.state(key)
	st.mu.Lock()
	defer st.mu.Unlock()
	now := s.now()
	if st.tok.Value != rejected && reusable(st.tok, now) {
		return st.tok, nil
	}
	shared, ok, err := s.cache.Load(ctx, key)
	if err != nil {
		return push.AccessToken{}, fmt.Errorf("%w: load %s: %w", errTokenCache, key, err)
	}
	if ok && shared.Value != rejected && reusable(shared, now) {
		st.tok = shared
		return shared, nil
	}
	var prev *push.AccessToken
	if ok {
		prev = &shared
	}
	next, err := s.mint(ctx, p)
	if err != nil {
		return push.AccessToken{}, err
	}
	won, err := s.cache.Swap(ctx, key, prev, next)
	if err != nil {
		return push.AccessToken{}, fmt.Errorf("%w: publish %s: %w", errTokenCache, key, err)
	}
	if won.Value == next.Value {
		s.log.Info("vivo auth token minted", "appId", p.appID)
	}
	st.tok = won
	return won, nil
}

// authRequest is the body of /message/auth.
type authRequest struct {
	AppID     int64  `json:"appId"`
	AppKey    string `json:"appKey"`
	Timestamp int64  `json:"timestamp"`
	Sign      string `json:"sign"`
}

// mint calls vivo's auth API. sign is the lowercase hex MD5 of appId +
// appKey + timestamp + appSecret, each trimmed, with the timestamp in
// milliseconds (vivo accepts ±10 minutes of its clock).
func (s *Sender) mint(ctx context.Context, p *parsed) (push.AccessToken, error) {
	now := s.now()
	ts := now.UnixMilli()
	appID := strconv.FormatInt(p.appID, 10)
	sum := md5.Sum([]byte(appID + p.creds.AppKey + strconv.FormatInt(ts, 10) + p.creds.AppSecret))
	req := authRequest{AppID: p.appID, AppKey: p.creds.AppKey, Timestamp: ts, Sign: hex.EncodeToString(sum[:])}
	var a answer
	if err := s.post(ctx, p.authHost+authPath, "", req, &a); err != nil {
		return push.AccessToken{}, fmt.Errorf("vivo auth: %w", err)
	}
	if a.Result != 0 || a.AuthToken == "" {
		return push.AccessToken{}, fmt.Errorf("vivo auth: %w", &apiError{Code: a.Result, Desc: a.Desc, minting: true})
	}
	return push.AccessToken{Value: a.AuthToken, MintedAt: now.UTC(), ExpiresAt: now.UTC().Add(tokenLifetime)}, nil
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
