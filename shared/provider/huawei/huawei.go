// Package huawei delivers pushes through Huawei Push Kit (HMS Core), the
// only push channel of most Huawei phones in China (VENDORS.md §4). It is
// an adapter: it speaks Huawei's REST API with its own HTTP client (there is
// no Go SDK), imports only push and the standard library, and maps every
// answer to a push.SendResult per target for the dispatch engine.
//
// Auth is OAuth 2.0 client credentials (AppID and AppSecret). Access tokens
// last an hour and are shared by every container through a TokenCache,
// since Huawei rate-limits minting; a token Huawei refuses (80200001,
// 80200003) is refreshed once and the request sent again.
//
// One request carries one notification to up to 1000 tokens, so a job's
// targets are grouped by text and collapse ids, and each group is split at
// MaxTokens.
package huawei

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/offline-push/offline-push/shared/push"
)

// Connection settings: a request that has not been answered in
// requestTimeout is given up (and retried by dispatch); maxParallel bounds
// the requests one Send runs at once, which a 500-target envelope split by
// language never exceeds by much.
const (
	requestTimeout = 20 * time.Second
	dialTimeout    = 10 * time.Second
	maxParallel    = 8
)

// Sender sends SendJobs to Huawei. One Sender lives for a container's
// lifetime; it keeps parsed credentials, access tokens and HTTP connections
// across warm invocations. It is safe for concurrent use.
type Sender struct {
	cache  TokenCache
	now    func() time.Time
	log    *slog.Logger
	client *http.Client

	mu     sync.Mutex
	apps   map[string]*app        // by SendJob.CredentialsKey
	tokens map[string]*tokenState // by cacheKey: one per Huawei app
}

// app is one credential, parsed once per CredentialsKey.
type app struct {
	creds *Credentials
	err   error // the credentials cannot be used
	token *tokenState
}

// maxCachedApps bounds the parsed credentials kept; past it the cache is
// dropped and rebuilt, which costs a parse, not a mint (tokens are kept).
const maxCachedApps = 256

// New returns a Sender that shares access tokens through cache, reads the
// time from now and logs anomalies (never tokens or secrets) to log.
func New(cache TokenCache, now func() time.Time, log *slog.Logger) *Sender {
	if now == nil {
		now = time.Now
	}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: dialTimeout,
		MaxIdleConnsPerHost: maxParallel * 2,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   true,
	}
	return &Sender{
		cache:  cache,
		now:    now,
		log:    log,
		client: &http.Client{Transport: tr, Timeout: requestTimeout},
		apps:   map[string]*app{},
		tokens: map[string]*tokenState{},
	}
}

// appFor returns the parsed credentials of job.
func (s *Sender) appFor(job *push.SendJob) *app {
	key := job.CredentialsKey
	if key == "" {
		sum := sha256.Sum256(job.Credentials)
		key = "sha256:" + hex.EncodeToString(sum[:])
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.apps[key]; ok {
		return a
	}
	if len(s.apps) >= maxCachedApps {
		s.apps = map[string]*app{}
	}
	a := &app{}
	a.creds, a.err = parseCredentials(job.Credentials)
	if a.err == nil {
		ck := cacheKey(a.creds)
		st, ok := s.tokens[ck]
		if !ok {
			st = &tokenState{}
			s.tokens[ck] = st
		}
		a.token = st
	}
	s.apps[key] = a
	return a
}

// Send delivers job and returns one result per target, in order. It never
// fails as a whole: every problem is a result class (unusable credentials
// are push.SendAuth, so dispatch retries and alarms until the secret is
// fixed).
func (s *Sender) Send(ctx context.Context, job *push.SendJob) []push.SendResult {
	results := make([]push.SendResult, len(job.Targets))
	if job.Envelope == nil {
		fill(results, nil, push.SendResult{Class: push.SendBadMessage, Code: "no_envelope"})
		return results
	}
	a := s.appFor(job)
	if a.err != nil {
		s.log.Error("huawei credentials unusable", "app", job.Envelope.App, "certName", job.Envelope.CertName, "err", a.err)
		fill(results, nil, push.SendResult{Class: push.SendAuth, Code: "credentials"})
		return results
	}
	sem := make(chan struct{}, maxParallel)
	var wg sync.WaitGroup
	for _, g := range groups(job) {
		m, err := build(job, a.creds, g)
		if err != nil {
			code := "bad_text"
			if errors.Is(err, errTooLarge) {
				code = "too_large"
			}
			s.log.Error("huawei message cannot be built", "app", job.Envelope.App, "messageId", job.Envelope.MessageID, "err", err)
			fill(results, g.idx, push.SendResult{Class: push.SendBadMessage, Code: code})
			continue
		}
		for start := 0; start < len(g.idx); start += MaxTokens {
			chunk := g.idx[start:min(start+MaxTokens, len(g.idx))]
			tokens := make([]string, len(chunk))
			for i, j := range chunk {
				tokens[i] = job.Targets[j].Token
			}
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				for i, r := range s.deliver(ctx, a, m, tokens) {
					results[chunk[i]] = r
				}
			}()
		}
	}
	wg.Wait()
	return results
}

// fill sets results[i] = r for each i of idx, or every result when idx is nil.
func fill(results []push.SendResult, idx []int, r push.SendResult) {
	if idx == nil {
		for i := range results {
			results[i] = r
		}
		return
	}
	for _, i := range idx {
		results[i] = r
	}
}

// deliver sends m to tokens (at most MaxTokens) and returns one result per
// token. A refused access token is refreshed once and the request sent
// again. An all-invalid answer to several tokens is not trusted for each:
// Huawei gives the same answer when the app id is wrong, so every token is
// sent alone once, and only a token refused alone is invalid.
func (s *Sender) deliver(ctx context.Context, a *app, m message, tokens []string) []push.SendResult {
	tok, err := s.accessToken(ctx, a)
	if err != nil {
		return s.authFailure(a, err, len(tokens))
	}
	ans := s.post(ctx, a, tok, m, tokens)
	if ans.authRejected() {
		tok, err = s.refreshToken(ctx, a, tok)
		if err != nil {
			return s.authFailure(a, err, len(tokens))
		}
		ans = s.post(ctx, a, tok, m, tokens)
	}
	if ans.err == nil && ans.code == codeAllInvalid && len(tokens) > 1 {
		return s.singly(ctx, a, m, tokens)
	}
	if ans.authRejected() {
		s.log.Error("huawei refused a fresh access token", "app", a.creds.AppID, "code", ans.code, "status", ans.status)
	}
	return classify(ans, tokens, s.now())
}

// singly sends m to each token alone, a few at a time.
func (s *Sender) singly(ctx context.Context, a *app, m message, tokens []string) []push.SendResult {
	out := make([]push.SendResult, len(tokens))
	sem := make(chan struct{}, maxParallel)
	var wg sync.WaitGroup
	for i, t := range tokens {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i] = s.deliver(ctx, a, m, []string{t})[0]
		}()
	}
	wg.Wait()
	return out
}

// authFailure is the result of every token when no access token could be
// had.
func (s *Sender) authFailure(a *app, err error, n int) []push.SendResult {
	r := push.SendResult{Class: push.SendTransient, Code: "auth"}
	var ae *authError
	if errors.As(err, &ae) {
		r = push.SendResult{Class: ae.class, RetryAfter: ae.retryAfter, Code: ae.code}
	}
	s.log.Warn("huawei access token unavailable", "app", a.creds.AppID, "class", r.Class, "code", r.Code, "err", err)
	out := make([]push.SendResult, n)
	for i := range out {
		out[i] = r
	}
	return out
}

// post sends one request and reads Huawei's answer.
func (s *Sender) post(ctx context.Context, a *app, tok push.AccessToken, m message, tokens []string) *answer {
	m.Token = tokens
	body, err := json.Marshal(sendRequest{Message: m})
	if err != nil {
		return &answer{err: err}
	}
	u := a.creds.Endpoint + "/v1/" + url.PathEscape(a.creds.AppID) + "/messages:send"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return &answer{err: err}
	}
	req.Header.Set("Authorization", "Bearer "+tok.Value)
	req.Header.Set("Content-Type", "application/json;charset=utf-8")
	resp, err := s.client.Do(req)
	if err != nil {
		return &answer{err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return &answer{err: err}
	}
	ans := &answer{status: resp.StatusCode, header: resp.Header}
	var r response
	if json.Unmarshal(raw, &r) == nil {
		ans.code, ans.msg = parseCode(r.Code), r.Msg
	}
	return ans
}
