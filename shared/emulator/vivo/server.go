// Package vivoemu is a local emulator of vivo Push's server API for tests and
// the local stack. It serves /message/auth, /message/send,
// /message/saveListPayload and /message/pushToList, and checks each request
// the way vivo documents it (VENDORS.md §8; vivo's "PUSH-UPS-API接口文档"
// 2.9.2 and its 2024 revision): the md5 signature and the 10-minute
// timestamp window of the auth request, the authToken header and the
// token's 24-hour lifetime, the appId that must match the token's, member
// names (an unknown member is refused), the title and content limits
// (counting a Chinese character as two), timeToLive, the category and its
// classification, clientCustomMap's 10 pairs and 1024 characters, requestId,
// and the 2-to-1000 regIds of a list push. It answers with vivo's result
// codes and JSON shapes.
//
// vivo's documentation does not give every code. Where it gives none the
// emulator answers with codes of its own, named below (CodeBadParam and
// the auth codes after 10201), and a refused or expired authToken answers
// 10000, which is what the provider takes it to be.
//
// It implements every rule on its own, from the documentation, and never
// imports the provider it checks: a bug shared by both sides would let a
// wrong request pass.
package vivoemu

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
	AuthPath     = "/message/auth"
	SendPath     = "/message/send"
	SavePath     = "/message/saveListPayload"
	PushListPath = "/message/pushToList"
)

// Result codes the emulator answers.
const (
	CodeOK = 0
	// CodeAuthFailed answers a missing, unknown or expired authToken.
	CodeAuthFailed = 10000
	// CodeDailyTotal: the day's total is spent.
	CodeDailyTotal = 10070
	// CodeAppIDMismatch: the body's appId is not the token's.
	CodeAppIDMismatch = 10094
	// CodeBadCategory and CodeCategoryClass refuse a category.
	CodeBadCategory   = 10096
	CodeCategoryClass = 10097
	// CodeBadParam refuses any other malformed member (the emulator's own
	// code: vivo's table for these was not found).
	CodeBadParam = 10101
	// Auth codes: 10200 and 10201 are vivo's; the others the emulator's.
	CodeNoAppID      = 10200
	CodeNoAppKey     = 10201
	CodeBadTimestamp = 10202
	CodeBadSign      = 10203
	CodeUnknownApp   = 10204
	// CodeListPayloadLimit: the day's list payloads are spent.
	CodeListPayloadLimit = 10252
	// CodeInvalidUser: a target is unreachable; invalidUser says why.
	CodeInvalidUser = 10302
)

// Statuses of an invalid user.
const (
	StatusUnknown     = 1 // regId unknown to this app
	StatusUninstalled = 2 // uninstalled, unsubscribed or data cleared
	StatusInactive    = 3 // offline for 90 days
	StatusNotTestUser = 4 // a test push to someone not listed as a tester
)

// DefaultTokenLifetime is how long an authToken is valid: 24 hours.
const DefaultTokenLifetime = 24 * time.Hour

// Options configures a Server.
type Options struct {
	// Addr is the TCP address to listen on; empty means a free port on
	// 127.0.0.1.
	Addr string
	// Now is the emulator's clock; nil means time.Now.
	Now func() time.Time
	// Seed seeds the share-based faults.
	Seed int64
	// Printer, when set, receives one JSON line per accepted push, with the
	// regId shortened to its last 6 characters.
	Printer io.Writer
	// TokenLifetime overrides DefaultTokenLifetime.
	TokenLifetime time.Duration
}

// Shares are the fractions (0 to 1) of valid push requests answered with a
// fault instead, drawn from the seeded source, in the order of the fields.
// vivo documents no throttling status; 429 stands for it here.
type Shares struct {
	TooManyRequests float64 // HTTP 429
	ServerError     float64 // HTTP 500 "Internet server error!"
}

// Push is one push the emulator accepted.
type Push struct {
	AppID int64
	// Token is the regId.
	Token string
	// List tells a push through pushToList from one through /message/send.
	List    bool
	TaskID  string
	Message Message
	// Body is the request body that carried the notification (the send
	// body, or the saved list payload).
	Body     json.RawMessage
	Received time.Time
}

// Server is a running emulator.
type Server struct {
	// URL is the base URL clients send to, as "http://127.0.0.1:port".
	URL string

	srv      *httptest.Server
	opts     Options
	mu       sync.Mutex
	apps     map[int64]app
	tokens   map[string]token
	payloads map[string]payload // by taskId
	failTok  map[string]int
	failNext []int
	shares   Shares
	delay    time.Duration
	rnd      *mrand.Rand
	received []Push
	mints    int
	calls    map[string]int
}

type app struct{ key, secret string }

type token struct {
	appID   int64
	expires time.Time
}

type payload struct {
	appID int64
	msg   Message
	body  json.RawMessage
}

// New starts an emulator on plain HTTP (the local stack and tests run on
// loopback; vivo's own host uses HTTPS). Close stops it.
func New(opts Options) (*Server, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.TokenLifetime <= 0 {
		opts.TokenLifetime = DefaultTokenLifetime
	}
	s := &Server{
		opts:     opts,
		apps:     map[int64]app{},
		tokens:   map[string]token{},
		payloads: map[string]payload{},
		failTok:  map[string]int{},
		rnd:      mrand.New(mrand.NewPCG(uint64(opts.Seed), 0x7669766f)),
		calls:    map[string]int{},
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	if opts.Addr != "" {
		ln, err := net.Listen("tcp", opts.Addr)
		if err != nil {
			return nil, fmt.Errorf("vivo emulator: listen on %s: %w", opts.Addr, err)
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

// AddApp registers a vivo app: auth requests for appID must carry appKey
// and be signed with appSecret.
func (s *Server) AddApp(appID int64, appKey, appSecret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apps[appID] = app{appKey, appSecret}
}

// FailToken makes every valid push to regID answer it as an invalid user
// with status (StatusUninstalled, …).
func (s *Server) FailToken(regID string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failTok[regID] = status
}

// FailNext makes the next n push requests (send, saveListPayload or
// pushToList) that carry a valid authToken answer result code as a whole.
// CodeOK lets its requests through, so that calls can aim a fault at a
// later request (the pushToList after its saveListPayload).
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

// ExpireTokens ends the life of every authToken issued so far.
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

// Reset forgets the pushes accepted so far and the counts.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.received = nil
	s.calls = map[string]int{}
	s.mints = 0
}

// Mints returns how many authTokens the emulator issued since the last
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

// answer is vivo's response body.
type answer struct {
	Result       int           `json:"result"`
	Desc         string        `json:"desc"`
	AuthToken    string        `json:"authToken,omitempty"`
	TaskID       string        `json:"taskId,omitempty"`
	InvalidUser  *InvalidUser  `json:"invalidUser,omitempty"`
	InvalidUsers []InvalidUser `json:"invalidUsers,omitempty"`
}

// InvalidUser names an unreachable target.
type InvalidUser struct {
	UserID string `json:"userid"`
	Status int    `json:"status"`
}

func fail(code int, format string, args ...any) answer {
	return answer{Result: code, Desc: fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, status int, a answer) {
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
	case AuthPath, SendPath, SavePath, PushListPath:
	default:
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeJSON(w, http.StatusOK, fail(CodeBadParam, "body unreadable"))
		return
	}
	if r.URL.Path == AuthPath {
		writeJSON(w, http.StatusOK, s.auth(body))
		return
	}
	appID, a := s.authorize(r.Header.Get("authToken"))
	if a != nil {
		writeJSON(w, http.StatusOK, *a)
		return
	}
	if status, a := s.fault(); status != 0 {
		if status == http.StatusInternalServerError {
			w.WriteHeader(status)
			io.WriteString(w, "Internet server error!")
			return
		}
		writeJSON(w, status, a)
		return
	} else if a.Result != 0 {
		writeJSON(w, http.StatusOK, a)
		return
	}
	switch r.URL.Path {
	case SendPath:
		writeJSON(w, http.StatusOK, s.send(appID, body))
	case SavePath:
		writeJSON(w, http.StatusOK, s.save(appID, body))
	case PushListPath:
		writeJSON(w, http.StatusOK, s.pushList(appID, body))
	}
}

// authorize checks the authToken header and returns the token's app.
func (s *Server) authorize(tok string) (int64, *answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[tok]
	if tok == "" || !ok || !s.opts.Now().Before(t.expires) {
		a := fail(CodeAuthFailed, "权限认证失败")
		return 0, &a
	}
	return t.appID, nil
}

// fault returns the fault a push request meets: an HTTP status other than
// 200, or a result code, or neither.
func (s *Server) fault() (int, answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failNext) > 0 {
		code := s.failNext[0]
		s.failNext = s.failNext[1:]
		return 0, fail(code, "emulated fault")
	}
	if sh := s.shares.TooManyRequests; sh > 0 && s.rnd.Float64() < sh {
		return http.StatusTooManyRequests, fail(CodeDailyTotal, "too many requests")
	}
	if sh := s.shares.ServerError; sh > 0 && s.rnd.Float64() < sh {
		return http.StatusInternalServerError, answer{}
	}
	return 0, answer{}
}

func newID(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// last6 is the only part of a regId the emulator prints.
func last6(t string) string {
	if len(t) <= 6 {
		return t
	}
	return t[len(t)-6:]
}

// accept records p and prints it; s.mu is held.
func (s *Server) accept(p Push) {
	s.received = append(s.received, p)
	if s.opts.Printer == nil {
		return
	}
	m := p.Message
	line := struct {
		Emulator       string            `json:"emulator"`
		Token          string            `json:"token"`
		Title          string            `json:"title"`
		Content        string            `json:"content"`
		Category       string            `json:"category,omitempty"`
		Classification *int              `json:"classification,omitempty"`
		NotifyID       int64             `json:"notifyId,omitempty"`
		TimeToLive     *int64            `json:"timeToLive,omitempty"`
		TaskID         string            `json:"taskId,omitempty"`
		Custom         map[string]string `json:"clientCustomMap,omitempty"`
	}{"vivo", last6(p.Token), m.Title, m.Content, m.Category, m.Classification, m.NotifyID, m.TimeToLive, p.TaskID, m.ClientCustomMap}
	b, err := json.Marshal(line)
	if err != nil {
		return
	}
	s.opts.Printer.Write(append(b, '\n'))
}
