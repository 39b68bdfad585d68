package honor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/offline-push/offline-push/shared/push"
)

// TokenCache shares access tokens between containers, because vendors
// rate-limit minting (Honor documents no figure; its OAuth server is shared
// by every Honor developer service). The dispatch wiring passes the
// DynamoDB implementation (dynamo.CredentialCache).
type TokenCache interface {
	// Load returns the stored token of key, and false when there is none.
	Load(ctx context.Context, key string) (push.AccessToken, bool, error)
	// Swap stores next if the stored token is still prev (nil: none is
	// stored) and returns next; otherwise it stores nothing and returns the
	// stored token, which another container put there first.
	Swap(ctx context.Context, key string, prev *push.AccessToken, next push.AccessToken) (push.AccessToken, error)
}

// maxRefreshMargin is how long before its expiry an access token is
// replaced: a token of an hour is reused for 55 minutes. Honor documents
// its lifetime only through expires_in, which is trusted; a short-lived
// token is replaced in its last quarter.
const maxRefreshMargin = 5 * time.Minute

// usable reports whether tok may still be sent with at now.
func usable(tok push.AccessToken, now time.Time) bool {
	if tok.Value == "" {
		return false
	}
	margin := min(maxRefreshMargin, tok.ExpiresAt.Sub(tok.MintedAt)/4)
	return now.Before(tok.ExpiresAt.Add(-margin))
}

// tokenState is this container's copy of one app's access token. Its mutex
// makes the goroutines of one Send that need a token wait for one look-up
// or mint instead of each minting.
type tokenState struct {
	mu  sync.Mutex
	tok push.AccessToken
}

// authError is a failure to get an access token, already classified: the
// token endpoint refusing our client id or secret is SendAuth, its flow
// control SendThrottled, anything else SendTransient.
type authError struct {
	class      push.SendClass
	code       string
	retryAfter time.Duration
	err        error
}

func (e *authError) Error() string { return e.err.Error() }
func (e *authError) Unwrap() error { return e.err }

// cacheKey names an app's access token in the shared TokenCache.
// Tokens belong to the OAuth client, which may serve several apps.
func cacheKey(c *Credentials) string {
	return "honor/" + c.ClientID + "#" + push.CredentialFingerprint(c.ClientSecret)
}

// accessToken returns the token to send with: this container's copy while
// it is usable, else the shared one while that is, else a new one,
// published through Swap (whoever swapped first wins and every container
// uses the winner). A failing cache costs a mint, never the push.
func (s *Sender) accessToken(ctx context.Context, a *app) (push.AccessToken, error) {
	st := a.token
	st.mu.Lock()
	defer st.mu.Unlock()
	now := s.now()
	if usable(st.tok, now) {
		return st.tok, nil
	}
	var prev *push.AccessToken
	shared, ok, err := s.cache.Load(ctx, cacheKey(a.creds))
	switch {
	case err != nil:
		s.log.Warn("honor token cache unreadable; minting", "client", a.creds.ClientID, "err", err)
	case ok && usable(shared, now):
		st.tok = shared
		return shared, nil
	case ok:
		prev = &shared
	}
	return s.mintLocked(ctx, a, prev)
}

// refreshToken is called when Honor refused rejected (HTTP 401).
// It returns the token to retry with: one another goroutine or container
// has already put in its place, or a new one.
func (s *Sender) refreshToken(ctx context.Context, a *app, rejected push.AccessToken) (push.AccessToken, error) {
	st := a.token
	st.mu.Lock()
	defer st.mu.Unlock()
	now := s.now()
	if st.tok.Value != rejected.Value && usable(st.tok, now) {
		return st.tok, nil
	}
	var prev *push.AccessToken
	shared, ok, err := s.cache.Load(ctx, cacheKey(a.creds))
	switch {
	case err != nil:
		s.log.Warn("honor token cache unreadable; minting", "client", a.creds.ClientID, "err", err)
		prev = &rejected
	case ok && shared.Value != rejected.Value && usable(shared, now):
		st.tok = shared
		return shared, nil
	case ok:
		prev = &shared
	}
	return s.mintLocked(ctx, a, prev)
}

// mintLocked gets a new token from Honor, publishes it in place of prev
// and keeps the winner. a.token.mu is held.
func (s *Sender) mintLocked(ctx context.Context, a *app, prev *push.AccessToken) (push.AccessToken, error) {
	next, err := s.mint(ctx, a.creds)
	if err != nil {
		return push.AccessToken{}, err
	}
	won, err := s.cache.Swap(ctx, cacheKey(a.creds), prev, next)
	if err != nil {
		// The token is good; only sharing it failed. Others mint their own.
		s.log.Warn("honor token cache unwritable", "client", a.creds.ClientID, "err", err)
		won = next
	}
	if won.Value == next.Value {
		s.log.Info("honor access token minted", "client", a.creds.ClientID, "expiresAt", next.ExpiresAt)
	}
	a.token.tok = won
	return won, nil
}

// tokenResponse is Honor's OAuth answer. Errors carry error (an OAuth error
// name) and error_description instead.
type tokenResponse struct {
	AccessToken      string          `json:"access_token"`
	ExpiresIn        int64           `json:"expires_in"`
	TokenType        string          `json:"token_type"`
	Error            json.RawMessage `json:"error"`
	ErrorDescription string          `json:"error_description"`
}

// mint asks Honor's OAuth server for an access token with the client
// credentials grant (VENDORS.md §5).
func (s *Sender) mint(ctx context.Context, c *Credentials) (push.AccessToken, error) {
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {c.ClientID},
		"client_secret": {c.ClientSecret},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.AuthEndpoint+tokenPath, strings.NewReader(form.Encode()))
	if err != nil {
		return push.AccessToken{}, &authError{class: push.SendAuth, code: "auth_url", err: fmt.Errorf("honor token request: %w", err)}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	sent := s.now()
	resp, err := s.client.Do(req)
	if err != nil {
		return push.AccessToken{}, &authError{class: push.SendTransient, code: "auth_network", err: fmt.Errorf("honor token request: %w", err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return push.AccessToken{}, &authError{class: push.SendTransient, code: "auth_network", err: fmt.Errorf("honor token response: %w", err)}
	}
	var tr tokenResponse
	jsonErr := json.Unmarshal(body, &tr)
	if resp.StatusCode != http.StatusOK || jsonErr != nil || tr.AccessToken == "" {
		code := fmt.Sprintf("auth_http_%d", resp.StatusCode)
		if len(tr.Error) > 0 {
			code = "auth_" + strings.Trim(string(tr.Error), `"`)
		}
		e := &authError{class: push.SendTransient, code: code,
			err: fmt.Errorf("honor token request: HTTP %d %s", resp.StatusCode, tr.ErrorDescription)}
		switch {
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
			e.class, e.retryAfter = push.SendThrottled, retryAfter(resp.Header, s.now())
		case resp.StatusCode >= 400 && resp.StatusCode < 500:
			// A refused client id or secret: the secret must be fixed.
			e.class = push.SendAuth
		}
		return push.AccessToken{}, e
	}
	if tr.ExpiresIn <= 0 {
		tr.ExpiresIn = 3600 // an hour, like Huawei's, when the answer omits it
	}
	// The lifetime counts from before the request went out, so network
	// time can only make us replace the token early, never late.
	return push.AccessToken{
		Value:     tr.AccessToken,
		MintedAt:  sent.UTC(),
		ExpiresAt: sent.Add(time.Duration(tr.ExpiresIn) * time.Second).UTC(),
	}, nil
}
