// Package oppoemu is a local emulator of OPPO PUSH's server API for tests and
// the local stack. It serves the auth API and the batch unicast of
// notifications, and checks each request the way OPPO documents it
// (VENDORS.md §7; OPPO's pages "调用地址，公共参数和返回码", "鉴权",
// "单点推送" and "通知栏消息"): the sha256 signature and the 10-minute
// timestamp window of the auth request, the auth_token form field and its
// 24-hour lifetime, the form fields, the notification's member names (the
// snake_case of the parameter table; an unknown member is refused), types,
// lengths and the 1000-message batch limit. It answers with OPPO's codes
// and JSON shapes.
//
// It implements every rule on its own, from the documentation, and never
// imports the provider it checks: a bug shared by both sides would let a
// wrong request pass.
package oppoemu

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
)

// Paths the emulator serves.
const (
	AuthPath  = "/server/v1/auth"
	BatchPath = "/server/v1/message/notification/unicast_batch"
)

// Codes OPPO documents, as the emulator answers them.
const (
	CodeOK             = 0
	CodeUnavailable    = -1
	CodeFlowControl    = -2
	CodeInvalidToken   = 11
	CodeWrongMethod    = 12
	CodeCallLimited    = 13
	CodeInvalidAppKey  = 14
	CodeMissingAppKey  = 15
	CodeInvalidSign    = 16
	CodeMissingSign    = 17
	CodeMissingTime    = 18
	CodeInvalidTime    = 19
	CodeInvalidMethod  = 20
	CodeMissingToken   = 29
	CodeDailyLimit     = 33
	CodeMissingArgs    = 40
	CodeInvalidArgs    = 41
	CodeFrequencyLimit = 55
	CodeCategory       = 67
	CodeInvalidRegID   = 10000
)

// DefaultTokenLifetime is how long an auth_token is valid: 24 hours.
const DefaultTokenLifetime = 24 * time.Hour

// Options configures a Server.
type Options struct {
	// Addr is the TCP address to listen on; empty means a free port on
	// 127.0.0.1.
	Addr string
	// Now is the emulator's clock, for timestamps and token lifetimes; nil
	// means time.Now.
	Now func() time.Time
	// Seed seeds the share-based faults, so that the same requests in the
	// same order meet the same faults.
	Seed int64
	// Printer, when set, receives one JSON line per accepted push, with the
	// registration id shortened to its last 6 characters.
	Printer io.Writer
	// TokenLifetime overrides DefaultTokenLifetime.
	TokenLifetime time.Duration
}

// Shares are the fractions (0 to 1) of valid push requests answered with a
// fault instead, drawn from the seeded source, in the order of the fields.
type Shares struct {
	FlowControl float64 // code -2, "Service in Flow Control"
	Unavailable float64 // code -1, "Service Currently Unavailable"
}

// Push is one push the emulator accepted.
type Push struct {
	AppKey string
	// Token is the registration id (target_value).
	Token        string
	TargetType   int
	Verify       bool
	Notification Notification
	// Message is the message element as the client sent it.
	Message   json.RawMessage
	MessageID string
	Received  time.Time
}

// Server is a running emulator.
type Server struct {
	// URL is the base URL clients send to, as "http://127.0.0.1:port".
	URL string

	srv      *httptest.Server
	opts     Options
	mu       sync.Mutex
	apps     map[string]string // app key → master secret
	tokens   map[string]token
	failTok  map[string]int
	failNext []int
	shares   Shares
	delay    time.Duration
	rnd      *mrand.Rand
	received []Push
	seen     map[string]bool // app_message_id + target, for OPPO's de-duplication
	mints    int
	calls    map[string]int
}

type token struct {
	appKey  string
	expires time.Time
}

// New starts an emulator on plain HTTP (the local stack and tests run on
// loopback; OPPO's own hosts use HTTPS). Close stops it.
func New(opts Options) (*Server, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.TokenLifetime <= 0 {
		opts.TokenLifetime = DefaultTokenLifetime
	}
	s := &Server{
		opts:    opts,
		apps:    map[string]string{},
		tokens:  map[string]token{},
		failTok: map[string]int{},
		rnd:     mrand.New(mrand.NewPCG(uint64(opts.Seed), 0x6f70706f)),
		seen:    map[string]bool{},
		calls:   map[string]int{},
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	if opts.Addr != "" {
		ln, err := net.Listen("tcp", opts.Addr)
		if err != nil {
			return nil, fmt.Errorf("oppo emulator: listen on %s: %w", opts.Addr, err)
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

// AddApp registers an OPPO app: auth requests for appKey must be signed
// with masterSecret.
func (s *Server) AddApp(appKey, masterSecret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apps[appKey] = masterSecret
}

// FailToken makes every valid push to the registration id answer the
// per-message errorCode code, for example CodeInvalidRegID.
func (s *Server) FailToken(regID string, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failTok[regID] = code
}

// FailNext makes the next n push requests that carry a valid auth_token
// answer code as a whole (CodeInvalidToken, CodeDailyLimit, …). CodeOK lets
// its requests through, so that calls can aim a fault at a later request.
func (s *Server) FailNext(code, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failNext = append(s.failNext, code)
	}
}

// SetShares sets the fractions of push requests answered with a fault.
func (s *Server) SetShares(sh Shares) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shares = sh
}

// SetDelay makes each request wait d before it is judged (or until the
// client gives up).
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// ExpireTokens ends the life of every auth_token issued so far, as if 24
// hours had passed: pushes with them answer code 11.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	for k, t := range s.tokens {
		t.expires = now
		s.tokens[k] = t
	}
}

// ClearFaults removes every fault set by FailToken, FailNext, SetShares and
// SetDelay.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failTok = map[string]int{}
	s.failNext = nil
	s.shares = Shares{}
	s.delay = 0
}

// Received returns a copy of the pushes accepted so far, in order.
func (s *Server) Received() []Push {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Push(nil), s.received...)
}

// Reset forgets the pushes accepted so far and the request counts.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.received = nil
	s.seen = map[string]bool{}
	s.calls = map[string]int{}
	s.mints = 0
}

// Mints returns how many auth_tokens the emulator issued since the last
// Reset.
func (s *Server) Mints() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mints
}

// Calls returns how many requests reached each path since the last Reset.
func (s *Server) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.calls))
	for k, v := range s.calls {
		out[k] = v
	}
	return out
}

// answer is OPPO's response envelope.
type answer struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

func reply(w http.ResponseWriter, status int, a answer) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(a)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	delay := s.delay
	s.calls[r.URL.Path]++
	s.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	switch r.URL.Path {
	case AuthPath, BatchPath:
	default:
		reply(w, http.StatusNotFound, answer{Code: CodeInvalidMethod, Message: "Invalid Method"})
		return
	}
	if r.Method != http.MethodPost {
		reply(w, http.StatusOK, answer{Code: CodeWrongMethod, Message: "Http Action Not Allowed"})
		return
	}
	form, a := readForm(r)
	if a != nil {
		reply(w, http.StatusOK, *a)
		return
	}
	if r.URL.Path == AuthPath {
		reply(w, http.StatusOK, s.auth(form))
		return
	}
	reply(w, http.StatusOK, s.batch(form))
}

// newID returns a random hex id.
func newID(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// last6 is the only part of a registration id the emulator prints.
func last6(t string) string {
	if len(t) <= 6 {
		return t
	}
	return t[len(t)-6:]
}

func (s *Server) print(p *Push) {
	if s.opts.Printer == nil {
		return
	}
	n := p.Notification
	line := struct {
		Emulator    string `json:"emulator"`
		Token       string `json:"token"`
		Title       string `json:"title"`
		Content     string `json:"content"`
		ChannelID   string `json:"channelId,omitempty"`
		Category    string `json:"category,omitempty"`
		NotifyID    int64  `json:"notifyId,omitempty"`
		OffLineTTL  int64  `json:"offLineTtl,omitempty"`
		MessageID   string `json:"messageId"`
		ActionParam string `json:"actionParameters,omitempty"`
	}{"oppo", last6(p.Token), n.Title, n.Content, n.ChannelID, n.Category, n.NotifyID, n.OffLineTTL, p.MessageID, n.ActionParameters}
	b, err := json.Marshal(line)
	if err != nil {
		return
	}
	s.opts.Printer.Write(append(b, '\n'))
}
