// Package honor delivers pushes through Honor Push, the push channel of
// Honor phones on Magic UI 4.0 and later (VENDORS.md §5; older Honor
// phones use Huawei's). It is an adapter: it speaks Honor's REST API with
// its own HTTP client (there is no Go SDK), imports only push and the
// standard library, and maps every answer to a push.SendResult per target
// for the dispatch engine.
//
// Auth is OAuth 2.0 client credentials (clientId and clientSecret). Access
// tokens are shared by every container through a TokenCache; a token Honor
// refuses (HTTP 401) is refreshed once and the request sent again.
//
// One request carries one notification to a token array, so a job's
// targets are grouped by text and collapse ids, and each group is split at
// MaxTokens.
package honor

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
	"strconv"
	"sync"
	"time"

	"github.com/offline-push/offline-push/shared/push"
)

// Connection settings: a request that has not been answered in
// requestTimeout is given up (and retried by dispatch); maxParallel bounds
// the requests one Send runs at once.
const (
	requestTimeout = 20 * time.Second
	dialTimeout    = 10 * time.Second
	maxParallel    = 8
)

// Sender sends SendJobs to Honor. One Sender lives for a container's
// lifetime; it keeps parsed credentials, access tokens and HTTP connections
// across warm invocations. It is safe for concurrent use.
type Sender struct {
	cache  TokenCache
	now    func() time.Time
	log    *slog.Logger
	client *http.Client

	mu     sync.Mutex
	apps   map[string]*app        // by SendJob.CredentialsKey
	tokens map[string]*tokenState // by cacheKey: one per OAuth client
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
		s.log.Error("honor credentials unusable", "app", job.Envelope.App, "certName", job.Envelope.CertName, "err", a.err)
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
			s.log.Error("honor message cannot be built", "app", job.Envelope.App, "messageId", job.Envelope.MessageID, "err", err)
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
// again.
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
		if ans.authRejected() {
			s.log.Error("honor refused a fresh access token", "client", a.creds.ClientID, "code", ans.code, "status", ans.status)
		}
	}
	return classify(ans, tokens, s.now())
}

// authFailure is the result of every token when no access token could be
// had.
func (s *Sender) authFailure(a *app, err error, n int) []push.SendResult {
	r := push.SendResult{Class: push.SendTransient, Code: "auth"}
	var ae *authError
	if errors.As(err, &ae) {
		r = push.SendResult{Class: ae.class, RetryAfter: ae.retryAfter, Code: ae.code}
	}
	s.log.Warn("honor access token unavailable", "client", a.creds.ClientID, "class", r.Class, "code", r.Code, "err", err)
	out := make([]push.SendResult, n)
	for i := range out {
		out[i] = r
	}
	return out
}

// post sends one request and reads Honor's answer. The timestamp header is
// in milliseconds, as Honor's documentation shows it (one client sends
// seconds; VENDORS.md §11.3).
func (s *Sender) post(ctx context.Context, a *app, tok push.AccessToken, m message, tokens []string) *answer {
	m.Token = tokens
	body, err := json.Marshal(m)
	if err != nil {
		return &answer{err: err}
	}
	u := a.creds.Endpoint + "/api/v1/" + url.PathEscape(a.creds.AppID) + "/sendMessage"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return &answer{err: err}
	}
	req.Header.Set("Authorization", "Bearer "+tok.Value)
	req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	req.Header.Set("timestamp", strconv.FormatInt(s.now().UnixMilli(), 10))
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
		ans.code, ans.message, ans.result = parseCode(r.Code), r.Message, r.Data
	}
	return ans
}
