// Package huaweiemu is a local emulator of Huawei Push Kit's server API
// (HMS Core, v1) for tests and the local stack. It serves both hosts a
// sender talks to: the OAuth server (POST /oauth2/v3/token, client
// credentials) and the push server (POST /v1/{appId}/messages:send). It
// checks each request the way Huawei documents it (VENDORS.md §4): the
// access token and its expiry, the app id, the field names (strictly), the
// token count and the 4096-byte message limit; and it answers with
// Huawei's HTTP statuses, business codes and msg texts.
//
// It implements every rule on its own, from the documentation, and never
// imports the provider it checks: a bug shared by both sides would let a
// wrong request pass.
package huaweiemu

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
	// Seed seeds the random draws of the share-based faults, so that a run
	// with the same requests in the same order answers the same way.
	Seed int64
	// Printer, when set, receives one JSON line per accepted push (per
	// token), with the token shortened to its last 6 characters.
	Printer io.Writer
	// TokenLifetime is the expires_in of minted access tokens; zero means
	// Huawei's 3600 s.
	TokenLifetime time.Duration
}

// Reply is an answer the emulator gives instead of accepting a push:
// an HTTP status, a business code and its msg.
type Reply struct {
	Status int
	Code   string
	Msg    string
	// RetryAfter, when positive, is sent as a Retry-After header in whole
	// seconds. Huawei documents none; it lets a test check that a sender
	// honours one should a gateway send it.
	RetryAfter time.Duration
}

// Shares are the fractions (0 to 1) of valid requests that the emulator
// answers with a fault instead of accepting, drawn from the seeded random
// source, in the order of the fields.
type Shares struct {
	// FlowControl answers HTTP 503, Huawei's traffic control.
	FlowControl float64
	// Internal answers HTTP 500 with 81000001, an internal error.
	Internal float64
}

// Push is one accepted request.
type Push struct {
	AppID string
	// Tokens are the tokens the push was delivered to; Refused those the
	// request named that were answered as illegal.
	Tokens  []string
	Refused []string
	Request Request
	// Data is message.data decoded, when it is a JSON object of strings.
	Data        map[string]string
	AccessToken string
	// Body is the raw request body.
	Body     []byte
	Received time.Time
}

// Server is a running emulator.
type Server struct {
	// URL is the base URL of both the OAuth and the push API, as
	// "http://127.0.0.1:port"; credentials point endpoint and
	// authEndpoint at it.
	URL string

	srv  *httptest.Server
	opts Options

	mu       sync.Mutex
	apps     map[string]string       // app id → app secret
	tokens   map[string]*accessToken // by value
	dead     map[string]bool         // device tokens answered as illegal
	next     []Reply                 // answers to the next valid requests
	shares   Shares
	delay    time.Duration
	rnd      *mrand.Rand
	received []Push
	mints    int
	requests int
}

type accessToken struct {
	app       string
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
		opts:   opts,
		apps:   map[string]string{},
		tokens: map[string]*accessToken{},
		dead:   map[string]bool{},
		rnd:    mrand.New(mrand.NewPCG(uint64(opts.Seed), 0x68756177)),
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	if opts.Addr != "" {
		ln, err := net.Listen("tcp", opts.Addr)
		if err != nil {
			return nil, fmt.Errorf("huawei emulator: listen on %s: %w", opts.Addr, err)
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

// AddApp registers an app: its app id is its OAuth client id, its app
// secret the client secret.
func (s *Server) AddApp(appID, appSecret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apps[appID] = appSecret
}

// FailToken makes token a dead device token: a request naming it with
// others answers 80100000 listing it in illegal_tokens, and a request
// naming only dead tokens answers 80300007.
func (s *Server) FailToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dead[token] = true
}

// FailNext makes the next n requests that pass every check answer r, for
// example Reply{400, "80300007", "All the tokens are invalid"} or
// Reply{503, "", ""}.
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
// the next send with one answers 80200003.
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
	s.dead = map[string]bool{}
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

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/oauth2/v3/token" {
		s.token(w, r)
		return
	}
	const prefix, suffix = "/v1/", "/messages:send"
	p := r.URL.EscapedPath()
	if !strings.HasPrefix(p, prefix) || !strings.HasSuffix(p, suffix) || len(p) <= len(prefix)+len(suffix) {
		http.NotFound(w, r)
		return
	}
	appID := p[len(prefix) : len(p)-len(suffix)]
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	s.send(w, r, appID)
}

// tokenError is Huawei OAuth's error shape.
func tokenError(w http.ResponseWriter, status, code, sub int, desc string) {
	writeJSON(w, status, map[string]any{"error": code, "sub_error": sub, "error_description": desc})
}

// token serves the client credentials grant.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		tokenError(w, http.StatusBadRequest, 1102, 20001, "content type must be application/x-www-form-urlencoded")
		return
	}
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, 1102, 20001, "malformed form")
		return
	}
	f := r.PostForm
	for _, k := range []string{"grant_type", "client_id", "client_secret"} {
		if f.Get(k) == "" {
			tokenError(w, http.StatusBadRequest, 1102, 20001, "missing required parameter: "+k)
			return
		}
	}
	if f.Get("grant_type") != "client_credentials" {
		tokenError(w, http.StatusBadRequest, 1102, 20003, "unsupported grant_type")
		return
	}
	s.mu.Lock()
	secret, ok := s.apps[f.Get("client_id")]
	if !ok || secret != f.Get("client_secret") {
		s.mu.Unlock()
		tokenError(w, http.StatusBadRequest, 1101, 20186, "invalid client")
		return
	}
	b := make([]byte, 48)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	// Standard base64, as Huawei's tokens are: they hold '/', '+' and '='
	// that a client must not mangle.
	value := "CgB6e3x9" + base64.StdEncoding.EncodeToString(b)
	s.tokens[value] = &accessToken{app: f.Get("client_id"), expiresAt: s.opts.Now().Add(s.opts.TokenLifetime)}
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
		s.answer(w, reject(http.StatusBadRequest, "80100003", "Illegal payload, unreadable body"))
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
		s.answer(w, rej)
		return
	}
	s.accept(p)
	if len(p.Refused) > 0 {
		msg, _ := json.Marshal(map[string]any{
			"success":        len(p.Tokens),
			"failure":        len(p.Refused),
			"illegal_tokens": p.Refused,
		})
		s.answer(w, &rejection{status: http.StatusOK, code: "80100000", msg: string(msg)})
		return
	}
	s.answer(w, &rejection{status: http.StatusOK, code: "80000000", msg: "Success"})
}

// answer writes Huawei's response body, or a bare status when code is empty
// (flow control answers come from a gateway without a business code).
func (s *Server) answer(w http.ResponseWriter, rej *rejection) {
	if rej.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64((rej.retryAfter+time.Second-1)/time.Second), 10))
	}
	if rej.code == "" {
		http.Error(w, http.StatusText(rej.status), rej.status)
		return
	}
	writeJSON(w, rej.status, map[string]string{"code": rej.code, "msg": rej.msg, "requestId": requestID()})
}

// check authenticates and decodes a send request.
func (s *Server) check(r *http.Request, appID string, body []byte) (*Push, *rejection) {
	auth := r.Header.Get("Authorization")
	value, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || value == "" {
		return nil, reject(http.StatusUnauthorized, "80200001", "Oauth authentication error, Authorization: Bearer <access token> is required")
	}
	s.mu.Lock()
	tok, known := s.tokens[value]
	now := s.opts.Now()
	s.mu.Unlock()
	switch {
	case !known:
		return nil, reject(http.StatusUnauthorized, "80200001", "Oauth authentication error")
	case !now.Before(tok.expiresAt):
		return nil, reject(http.StatusUnauthorized, "80200003", "Oauth Token expired")
	case tok.app != appID:
		// An access token of app A used for app B (Huawei's FAQ).
		return nil, reject(http.StatusUnauthorized, "80200001", "Oauth authentication error, the token belongs to another app")
	}
	if mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" ||
		(params["charset"] != "" && !strings.EqualFold(params["charset"], "utf-8")) {
		return nil, reject(http.StatusBadRequest, "80100001", "Check Parameter Error, Content-Type must be application/json;charset=utf-8")
	}
	req, rej := decode(body)
	if rej != nil {
		return nil, rej
	}
	p := &Push{AppID: appID, Request: *req, AccessToken: value, Body: body, Received: now}
	if d := req.Message.Data; d != nil {
		var m map[string]string
		if json.Unmarshal([]byte(*d), &m) == nil {
			p.Data = m
		}
	}
	return p, nil
}

// fault returns the answer a fault control gives to a valid request, or
// nil to accept it; it splits the tokens into accepted and refused.
func (s *Server) fault(p *Push) *rejection {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.next) > 0 {
		r := s.next[0]
		s.next = s.next[1:]
		return &rejection{r.Status, r.Code, r.Msg, r.RetryAfter}
	}
	for _, t := range p.Request.Message.Token {
		if s.dead[t] {
			p.Refused = append(p.Refused, t)
		} else {
			p.Tokens = append(p.Tokens, t)
		}
	}
	if len(p.Tokens) == 0 && len(p.Refused) > 0 {
		return reject(http.StatusBadRequest, "80300007", "All the tokens are invalid")
	}
	if f := s.shares.FlowControl; f > 0 && s.rnd.Float64() < f {
		return &rejection{status: http.StatusServiceUnavailable}
	}
	if f := s.shares.Internal; f > 0 && s.rnd.Float64() < f {
		return reject(http.StatusInternalServerError, "81000001", "System inner error")
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
	a := p.Request.Message.Android
	var n AndroidNotification
	if a != nil && a.Notification != nil {
		n = *a.Notification
	}
	if a == nil {
		a = &AndroidConfig{}
	}
	var lines []byte
	for _, t := range p.Tokens {
		line := struct {
			Emulator string            `json:"emulator"`
			App      string            `json:"app"`
			Token    string            `json:"token"`
			Category string            `json:"category,omitempty"`
			Urgency  string            `json:"urgency,omitempty"`
			TTL      string            `json:"ttl,omitempty"`
			Title    string            `json:"title,omitempty"`
			Body     string            `json:"body,omitempty"`
			Tag      string            `json:"tag,omitempty"`
			NotifyID *json.Number      `json:"notifyId,omitempty"`
			Data     map[string]string `json:"data,omitempty"`
		}{"huawei", p.AppID, last6(t), a.Category, a.Urgency, a.TTL, n.Title, n.Body, n.Tag, n.NotifyID, p.Data}
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

// requestID returns an id shaped like Huawei's (digits).
func requestID() string {
	return strconv.FormatInt(time.Now().UnixNano(), 10) + strconv.Itoa(mrand.IntN(1000))
}
