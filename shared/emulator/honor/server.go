// Package honoremu is a local emulator of Honor Push's server API for tests
// and the local stack. It serves both hosts a sender talks to: the OAuth
// server (POST /auth/token, client credentials) and the push server (POST
// /api/v1/{appId}/sendMessage). It checks each request the way Honor
// documents it (VENDORS.md §5): the bearer token and its expiry, the
// timestamp header, the camelCase field names (strictly), the token count
// and the message size; and it answers with Honor's shapes: code 200 with
// data.sendResult, data.failTokens and data.expireTokens.
//
// Where Honor documents nothing (the token limit, the message size, error
// codes other than 200), the emulator applies Huawei's rules, from which
// Honor's API descends, and says so.
//
// It implements every rule on its own, from the documentation, and never
// imports the provider it checks.
package honoremu

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configures a Server.
type Options struct {
	// Addr is the TCP address to listen on; empty means a free port on
	// 127.0.0.1.
	Addr string
	// Now is the emulator's clock, used to judge access tokens' expiry
	// and to stamp records; nil means time.Now.
	Now func() time.Time
	// Seed seeds the random draws of the share-based faults.
	Seed int64
	// Printer, when set, receives one JSON line per accepted push (per
	// token), with the token shortened to its last 6 characters.
	Printer io.Writer
	// TokenLifetime is the expires_in of minted access tokens; zero means
	// an hour.
	TokenLifetime time.Duration
}

// TokenFault is how the emulator answers a push to a token.
type TokenFault int

const (
	// Expired lists the token in data.expireTokens: the app is gone.
	Expired TokenFault = iota + 1
	// Failed lists the token in data.failTokens: not sent this time.
	Failed
)

// Reply is an answer the emulator gives instead of accepting a push. A
// zero Code sends a bare status without Honor's body, as a gateway would.
type Reply struct {
	Status  int
	Code    int
	Message string
	// RetryAfter, when positive, is sent as a Retry-After header.
	RetryAfter time.Duration
}

// Shares are the fractions (0 to 1) of valid requests that the emulator
// answers with a fault instead of accepting, drawn from the seeded random
// source, in the order of the fields.
type Shares struct {
	// FlowControl answers a bare HTTP 503.
	FlowControl float64
	// Internal answers HTTP 500 with code 500.
	Internal float64
}

// Push is one accepted request.
type Push struct {
	AppID string
	// Tokens are the tokens the push was delivered to; Expired and Failed
	// those answered in expireTokens and failTokens.
	Tokens  []string
	Expired []string
	Failed  []string
	Request Request
	// Data is data decoded, when it is a JSON object of strings.
	Data        map[string]string
	AccessToken string
	// Timestamp is the timestamp header, in Unix milliseconds.
	Timestamp int64
	Body      []byte
	Received  time.Time
}

// Server is a running emulator.
type Server struct {
	// URL is the base URL of both the OAuth and the push API; credentials
	// point endpoint and authEndpoint at it.
	URL string

	srv  *httptest.Server
	opts Options

	mu       sync.Mutex
	clients  map[string]string       // client id → client secret
	apps     map[string]string       // app id → client id
	tokens   map[string]*accessToken // by value
	faults   map[string]TokenFault   // by device token
	next     []Reply
	shares   Shares
	delay    time.Duration
	rnd      *mrand.Rand
	received []Push
	mints    int
	requests int
}

type accessToken struct {
	client    string
	expiresAt time.Time
}

// New starts an emulator serving plain HTTP. Close stops it.
func New(opts Options) (*Server, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.TokenLifetime <= 0 {
		opts.TokenLifetime = time.Hour
	}
	s := &Server{
		opts:    opts,
		clients: map[string]string{},
		apps:    map[string]string{},
		tokens:  map[string]*accessToken{},
		faults:  map[string]TokenFault{},
		rnd:     mrand.New(mrand.NewPCG(uint64(opts.Seed), 0x686f6e6f)),
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	if opts.Addr != "" {
		ln, err := net.Listen("tcp", opts.Addr)
		if err != nil {
			return nil, fmt.Errorf("honor emulator: listen on %s: %w", opts.Addr, err)
		}
		srv.Listener.Close()
		srv.Listener = ln
	}
	srv.Start()
	s.srv = srv
	s.URL = srv.URL
	return s, nil
}

// Close stops the server and closes its connections.
func (s *Server) Close() { s.srv.Close() }

// AddApp registers an app and the OAuth client that sends for it.
func (s *Server) AddApp(appID, clientID, clientSecret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[clientID] = clientSecret
	s.apps[appID] = clientID
}

// FailToken makes every push to token answer f in its request's data.
func (s *Server) FailToken(token string, f TokenFault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[token] = f
}

// FailNext makes the next n requests that pass every check answer r.
func (s *Server) FailNext(n int, r Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.next = append(s.next, r)
	}
}

// SetShares sets the fractions of valid requests answered with a fault.
func (s *Server) SetShares(sh Shares) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shares = sh
}

// SetDelay makes each send request wait d before it is judged (or until
// the client gives up).
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// ExpireAccessTokens makes every access token minted so far expired, so
// the next send with one answers HTTP 401.
func (s *Server) ExpireAccessTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	past := s.opts.Now().Add(-time.Second)
	for _, t := range s.tokens {
		t.expiresAt = past
	}
}

// ClearFaults removes every fault set by FailToken, FailNext, SetShares
// and SetDelay.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = map[string]TokenFault{}
	s.next = nil
	s.shares = Shares{}
	s.delay = 0
}

// Received returns a copy of the pushes accepted so far, in order.
func (s *Server) Received() []Push {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Push(nil), s.received...)
}

// Delivered counts, per device token, how often a push was delivered to it.
func (s *Server) Delivered() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, p := range s.received {
		for _, t := range p.Tokens {
			out[t]++
		}
	}
	return out
}

// Mints counts the access tokens issued so far.
func (s *Server) Mints() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mints
}

// Requests counts the send requests answered so far, whatever the answer.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Reset forgets the pushes accepted and the counts so far.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.received = nil
	s.mints = 0
	s.requests = 0
}

var sendPath = regexp.MustCompile(`^/api/v1/([^/]+)/sendMessage$`)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/auth/token" {
		s.token(w, r)
		return
	}
	m := sendPath.FindStringSubmatch(r.URL.EscapedPath())
	if m == nil {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	s.send(w, r, m[1])
}

// tokenError is the OAuth 2.0 error shape (RFC 6749 §5.2) that Honor's
// identity server answers.
func tokenError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

// token serves the client credentials grant.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		tokenError(w, http.StatusBadRequest, "invalid_request", "content type must be application/x-www-form-urlencoded")
		return
	}
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request", "malformed form")
		return
	}
	f := r.PostForm
	if f.Get("grant_type") != "client_credentials" {
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type must be client_credentials")
		return
	}
	if f.Get("client_id") == "" || f.Get("client_secret") == "" {
		tokenError(w, http.StatusBadRequest, "invalid_request", "client_id and client_secret are required")
		return
	}
	s.mu.Lock()
	secret, ok := s.clients[f.Get("client_id")]
	if !ok || secret != f.Get("client_secret") {
		s.mu.Unlock()
		tokenError(w, http.StatusUnauthorized, "invalid_client", "invalid client credentials")
		return
	}
	b := make([]byte, 48)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	value := "CF3Xl2XV6" + base64.StdEncoding.EncodeToString(b)
	s.tokens[value] = &accessToken{client: f.Get("client_id"), expiresAt: s.opts.Now().Add(s.opts.TokenLifetime)}
	s.mints++
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": value,
		"expires_in":   int64(s.opts.TokenLifetime / time.Second),
		"token_type":   "Bearer",
	})
}

func (s *Server) send(w http.ResponseWriter, r *http.Request, appID string) {
	s.mu.Lock()
	delay := s.delay
	s.requests++
	s.mu.Unlock()
	// The body is read before any delay: only then does the server notice
	// a client that gave up, and end the wait.
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		s.answer(w, reject(http.StatusBadRequest, codeStructure, "unreadable body"), nil)
		return
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	p, rej := s.check(r, appID, body)
	if rej == nil {
		rej = s.fault(p)
	}
	if rej != nil {
		s.answer(w, rej, nil)
		return
	}
	if len(p.Tokens) > 0 {
		s.accept(p)
	}
	s.answer(w, &rejection{status: http.StatusOK, code: 200, msg: "success"}, p)
}

// answer writes Honor's response body, with data when p is set, or a bare
// status when code is zero.
func (s *Server) answer(w http.ResponseWriter, rej *rejection, p *Push) {
	if rej.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64((rej.retryAfter+time.Second-1)/time.Second), 10))
	}
	if rej.code == 0 {
		http.Error(w, http.StatusText(rej.status), rej.status)
		return
	}
	out := map[string]any{"code": rej.code, "message": rej.msg}
	if p != nil {
		out["data"] = map[string]any{
			"sendResult":   len(p.Tokens) > 0,
			"requestId":    requestID(),
			"failTokens":   orEmpty(p.Failed),
			"expireTokens": orEmpty(p.Expired),
		}
	}
	writeJSON(w, rej.status, out)
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// check authenticates and decodes a send request.
func (s *Server) check(r *http.Request, appID string, body []byte) (*Push, *rejection) {
	value, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || value == "" {
		return nil, reject(http.StatusUnauthorized, codeAuth, "Authorization: Bearer <access token> is required")
	}
	s.mu.Lock()
	tok, known := s.tokens[value]
	client, app := s.apps[appID]
	now := s.opts.Now()
	s.mu.Unlock()
	switch {
	case !known:
		return nil, reject(http.StatusUnauthorized, codeAuth, "invalid access token")
	case !now.Before(tok.expiresAt):
		return nil, reject(http.StatusUnauthorized, codeExpired, "access token expired")
	case !app || client != tok.client:
		return nil, reject(http.StatusUnauthorized, codeAuth, "the access token does not belong to app %s", appID)
	}
	// Honor's documentation shows the timestamp in milliseconds
	// (1563105451261); seconds are refused, so a client sending them is
	// caught here.
	ts := r.Header.Get("timestamp")
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(ts) != 13 {
		return nil, reject(http.StatusBadRequest, codeParam, "timestamp header must be Unix milliseconds")
	}
	if mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" ||
		(params["charset"] != "" && !strings.EqualFold(params["charset"], "utf-8")) {
		return nil, reject(http.StatusBadRequest, codeParam, "Content-Type must be application/json; charset=UTF-8")
	}
	req, rej := decode(body)
	if rej != nil {
		return nil, rej
	}
	p := &Push{AppID: appID, Request: *req, AccessToken: value, Timestamp: ms, Body: body, Received: now}
	if d := req.Data; d != nil {
		var m map[string]string
		if json.Unmarshal([]byte(*d), &m) == nil {
			p.Data = m
		}
	}
	return p, nil
}

// fault returns the answer a fault control gives to a valid request, or
// nil to accept it; it splits the tokens into delivered, expired and
// failed.
func (s *Server) fault(p *Push) *rejection {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.next) > 0 {
		r := s.next[0]
		s.next = s.next[1:]
		return &rejection{r.Status, r.Code, r.Message, r.RetryAfter}
	}
	if f := s.shares.FlowControl; f > 0 && s.rnd.Float64() < f {
		return &rejection{status: http.StatusServiceUnavailable}
	}
	if f := s.shares.Internal; f > 0 && s.rnd.Float64() < f {
		return reject(http.StatusInternalServerError, 500, "internal error")
	}
	for _, t := range p.Request.Token {
		switch s.faults[t] {
		case Expired:
			p.Expired = append(p.Expired, t)
		case Failed:
			p.Failed = append(p.Failed, t)
		default:
			p.Tokens = append(p.Tokens, t)
		}
	}
	return nil
}

func (s *Server) accept(p *Push) {
	s.mu.Lock()
	s.received = append(s.received, *p)
	s.mu.Unlock()
	if s.opts.Printer == nil {
		return
	}
	var a AndroidConfig
	var n AndroidNotification
	if p.Request.Android != nil {
		a = *p.Request.Android
		if a.Notification != nil {
			n = *a.Notification
		}
	}
	var lines []byte
	for _, t := range p.Tokens {
		line := struct {
			Emulator   string            `json:"emulator"`
			App        string            `json:"app"`
			Token      string            `json:"token"`
			Importance string            `json:"importance,omitempty"`
			TTL        string            `json:"ttl,omitempty"`
			Title      string            `json:"title,omitempty"`
			Body       string            `json:"body,omitempty"`
			Tag        string            `json:"tag,omitempty"`
			NotifyID   *json.Number      `json:"notifyId,omitempty"`
			Data       map[string]string `json:"data,omitempty"`
		}{"honor", p.AppID, last6(t), n.Importance, a.TTL, n.Title, n.Body, n.Tag, n.NotifyID, p.Data}
		b, err := json.Marshal(line)
		if err != nil {
			continue // strings only; cannot happen
		}
		lines = append(append(lines, b...), '\n')
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.Printer.Write(lines)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// last6 returns the last 6 characters of a device token, the only part the
// emulator ever prints.
func last6(token string) string {
	if len(token) <= 6 {
		return token
	}
	return token[len(token)-6:]
}

// requestID returns an id for an accepted request.
func requestID() string {
	return strconv.FormatInt(time.Now().UnixNano(), 36)
}
