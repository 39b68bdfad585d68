// Package fcmemu is a local emulator of Firebase Cloud Messaging's HTTP v1
// API and of the Google OAuth token endpoint a service account's token_uri
// names, for tests and the local stack.
//
// It implements FCM's rules on its own, from the documentation (VENDORS.md
// §3), and never imports the provider it checks: the token exchange verifies
// the RS256 JWT-bearer assertion against the service account's registered
// public key; a send checks the bearer token it issued, the project, the
// message schema (unknown fields, exactly one target, string data, priority,
// ttl, colours, APNs headers) and the 4096-byte payload limit, and answers
// with FCM's success and error shapes, so the real Firebase Admin SDK can
// talk to it unchanged. Faults (dead tokens, throttling, server errors,
// delay) are set at run time.
//
// The emulator serves plain HTTP: the SDK follows an http:// token_uri and
// endpoint override as it follows https://.
package fcmemu

import (
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configure a Server. The zero value is a working emulator on a
// free loopback port.
type Options struct {
	// Listener, when set, is where the emulator serves (the local stack
	// listens on an address of its choosing); nil takes a free port on
	// 127.0.0.1.
	Listener net.Listener
	// Printer, when set, gets one JSON line per accepted push, with only
	// the token's last 6 characters.
	Printer io.Writer
	// Now is the emulator's clock for JWT and access-token lifetimes;
	// nil means time.Now.
	Now func() time.Time
	// TokenLifetime is how long an issued access token is valid; zero
	// means one hour, as Google issues them.
	TokenLifetime time.Duration
}

// Server is a running emulator. Its methods are safe for concurrent use.
type Server struct {
	// URL is the emulator's base URL, http://127.0.0.1:PORT.
	URL string

	srv      *httptest.Server
	now      func() time.Time
	lifetime time.Duration

	mu       sync.Mutex
	accounts map[string]account // by client_email
	tokens   map[string]issued  // by access token
	faults   Faults
	rng      *rand.Rand
	hits     map[string]int // per-token fault answers given
	received []Received
	answers  []Answer
	counts   Counts
	printer  io.Writer
	serial   uint64
}

// account is a registered service account.
type account struct {
	project string
	key     keyRef
}

// issued is an access token the emulator handed out.
type issued struct {
	email   string
	project string
	expires time.Time
	canSend bool // its scopes allow messages:send
}

// Received is one push the emulator accepted (validate_only requests are
// not recorded).
type Received struct {
	// Project is the project of the request path.
	Project string
	// Name is the message name the emulator answered.
	Name string
	// Token is the message's registration token.
	Token string
	// Body is the request body exactly as received, for golden tests.
	Body []byte
	// Message is the "message" member of the body.
	Message json.RawMessage
}

// Answer is the emulator's answer to one send request that passed
// authentication: what the sender was told, so that a test can check the
// sender's accounting against it from outside.
type Answer struct {
	Token  string
	Status int
	// Code is the FCM error code of a failure ("UNREGISTERED",
	// "INVALID_ARGUMENT", …) and empty on success.
	Code string
}

// Counts are running totals of what the emulator served.
type Counts struct {
	// TokenRequests counts requests to the token endpoint, TokensIssued
	// those it granted.
	TokenRequests int
	TokensIssued  int
	// SendRequests counts requests to messages:send, Accepted those it
	// accepted (validate_only included), Unauthenticated those refused
	// for a missing, unknown or expired bearer token.
	SendRequests    int
	Accepted        int
	Unauthenticated int
}

// New starts an emulator. Stop it with Close.
func New(opts Options) *Server {
	s := &Server{
		now:      opts.Now,
		lifetime: opts.TokenLifetime,
		accounts: make(map[string]account),
		tokens:   make(map[string]issued),
		hits:     make(map[string]int),
		rng:      rand.New(rand.NewPCG(0, 0)),
		printer:  opts.Printer,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.lifetime <= 0 {
		s.lifetime = time.Hour
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	if opts.Listener != nil {
		s.srv.Listener.Close()
		s.srv.Listener = opts.Listener
	}
	s.srv.Start()
	s.URL = s.srv.URL
	return s
}

// Close stops the emulator and waits for requests in flight.
func (s *Server) Close() { s.srv.Close() }

// TokenURI is the OAuth token endpoint to put in a service account's
// token_uri.
func (s *Server) TokenURI() string { return s.URL + "/token" }

// Endpoint is the messaging base URL to give the SDK with
// option.WithEndpoint: requests go to Endpoint()+"/projects/P/messages:send".
func (s *Server) Endpoint() string { return s.URL + "/v1" }

// AddServiceAccount registers the public key of a service account, so that
// the token endpoint grants tokens for JWTs it signed. Registering an
// account again replaces its key.
func (s *Server) AddServiceAccount(projectID, clientEmail string, pub *rsa.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts[clientEmail] = account{project: projectID, key: keyRef{pub: pub}}
}

// AddServiceAccountJSON registers a service-account key file: its project,
// client email, private key id and the public half of its private key.
func (s *Server) AddServiceAccountJSON(data []byte) error {
	var a ServiceAccount
	if err := json.Unmarshal(data, &a); err != nil {
		return fmt.Errorf("service account: %w", err)
	}
	if a.Type != "service_account" || a.ProjectID == "" || a.ClientEmail == "" {
		return fmt.Errorf("service account: want type service_account with project_id and client_email")
	}
	pub, err := PublicKeyOf(a.PrivateKey)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts[a.ClientEmail] = account{project: a.ProjectID, key: keyRef{pub: pub, id: a.PrivateKeyID}}
	return nil
}

// RevokeTokens invalidates every access token issued so far, as Google does
// when a key is disabled: later sends with them get 401 UNAUTHENTICATED
// until the client fetches a new token.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// SetFaults replaces the faults in effect. The share draws restart from
// f.Seed, and per-token answer counts from zero.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
	s.rng = rand.New(rand.NewPCG(uint64(f.Seed), uint64(f.Seed)^0x9e3779b97f4a7c15))
	clear(s.hits)
}

// Received returns the pushes accepted so far, in the order accepted (at
// least the last 100000).
func (s *Server) Received() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.received...)
}

// Answers returns the answers to authenticated send requests so far, in
// order (at least the last 100000); retries of one message by the SDK
// appear once per attempt.
func (s *Server) Answers() []Answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Answer(nil), s.answers...)
}

// Counts returns the running totals.
func (s *Server) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts
}

// Reset forgets received messages, answers and counts; accounts, issued
// tokens and faults stay.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.received, s.answers, s.counts = nil, nil, Counts{}
}

// serve routes a request: the token endpoint, messages:send, or a 404 in
// Google's error shape.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/token" {
		s.serveToken(w, r)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1/projects/")
	project, tail, _ := strings.Cut(rest, "/")
	if ok && tail == "messages:send" && project != "" {
		if r.Method != http.MethodPost {
			writeError(w, &apiError{status: http.StatusMethodNotAllowed, statusText: "INVALID_ARGUMENT", message: "method " + r.Method + " not allowed; use POST"})
			return
		}
		s.serveSend(w, r, project)
		return
	}
	writeError(w, &apiError{status: http.StatusNotFound, statusText: "NOT_FOUND", message: "The requested URL " + r.URL.Path + " was not found on this server."})
}

// serveSend answers POST /v1/projects/{project}/messages:send.
func (s *Server) serveSend(w http.ResponseWriter, r *http.Request, project string) {
	s.mu.Lock()
	s.counts.SendRequests++
	s.mu.Unlock()
	if e := s.authorize(r, project); e != nil {
		if e.status == http.StatusUnauthorized {
			s.mu.Lock()
			s.counts.Unauthenticated++
			s.mu.Unlock()
		}
		writeError(w, e)
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		writeError(w, invalidArgument("", fmt.Sprintf("Invalid Content-Type %q, want application/json", ct)))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		writeError(w, invalidArgument("", "cannot read request body: "+err.Error()))
		return
	}
	if len(body) > maxBody {
		writeError(w, &apiError{status: http.StatusRequestEntityTooLarge, statusText: "INVALID_ARGUMENT", message: "Request payload size exceeds the limit"})
		return
	}
	req, e := parseSend(body)
	if e != nil {
		s.answer(req.token(), e)
		writeError(w, e)
		return
	}
	if e := s.fault(r, req.Message.Token); e != nil {
		s.answer(req.Message.Token, e)
		writeError(w, e)
		return
	}

	s.mu.Lock()
	s.counts.Accepted++
	s.serial++
	name := fmt.Sprintf("projects/%s/messages/0:%d%%emu%08x", project, s.serial, s.serial*2654435761)
	if req.ValidateOnly {
		name = "projects/" + project + "/messages/fake_message_id"
	} else {
		s.received = trim(append(s.received, Received{Project: project, Name: name, Token: req.Message.Token, Body: body, Message: req.raw}))
	}
	s.answers = trim(append(s.answers, Answer{Token: req.Message.Token, Status: http.StatusOK}))
	if s.printer != nil && !req.ValidateOnly {
		s.print(project, name, req.Message)
	}
	s.mu.Unlock()

	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	json.NewEncoder(w).Encode(map[string]string{"name": name})
}

// keep bounds the received messages and answers the emulator remembers, so
// that a long-running local stack does not grow without end; the oldest go
// first.
const keep = 100_000

// trim drops the oldest entries of a record beyond keep, in amortised
// constant time.
func trim[T any](s []T) []T {
	if len(s) < 2*keep {
		return s
	}
	return append([]T(nil), s[len(s)-keep:]...)
}

// maxBody bounds what the emulator reads of one request; far above FCM's
// 4096-byte payload limit, which parseSend checks on its own terms.
const maxBody = 1 << 20

// answer records a refusal for the accounting of Answers.
func (s *Server) answer(token string, e *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answers = trim(append(s.answers, Answer{Token: token, Status: e.status, Code: e.code()}))
}

// authorize checks the bearer token: issued here, unexpired, and for a
// service account of the path's project.
func (s *Server) authorize(r *http.Request, project string) *apiError {
	const unauthenticated = "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return &apiError{status: http.StatusUnauthorized, statusText: "UNAUTHENTICATED", message: unauthenticated}
	}
	s.mu.Lock()
	t, ok := s.tokens[token]
	s.mu.Unlock()
	if !ok || !s.now().Before(t.expires) {
		return &apiError{status: http.StatusUnauthorized, statusText: "UNAUTHENTICATED", message: unauthenticated}
	}
	if !t.canSend {
		return &apiError{status: http.StatusForbidden, statusText: "PERMISSION_DENIED", message: "Request had insufficient authentication scopes."}
	}
	if t.project != project {
		return &apiError{status: http.StatusForbidden, statusText: "PERMISSION_DENIED",
			message: fmt.Sprintf("Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/%s' (or it may not exist).", project)}
	}
	return nil
}

// print writes one accepted push as a JSON line, the token cut to its last
// 6 characters.
func (s *Server) print(project, name string, m *v1Message) {
	line := map[string]string{"vendor": "fcm", "project": project, "name": name, "token": redact(m.Token)}
	title, body := m.texts()
	for k, v := range map[string]string{"title": title, "body": body, "type": m.Data["type"], "priority": m.priority()} {
		if v != "" {
			line[k] = v
		}
	}
	b, _ := json.Marshal(line)
	s.printer.Write(append(b, '\n'))
}

// redact keeps the last 6 characters of a token.
func redact(token string) string {
	if len(token) <= 6 {
		return "…" + token
	}
	return "…" + token[len(token)-6:]
}

// apiError is an error answer in the shape of Google APIs, with FCM's
// FcmError detail and, for a bad field, a BadRequest field violation.
type apiError struct {
	status     int
	statusText string // google.rpc.Code name: INVALID_ARGUMENT, NOT_FOUND, …
	message    string
	fcmCode    string // FcmError.errorCode; empty for errors FCM itself does not code
	field      string // BadRequest field violation, if any
	retryAfter time.Duration
}

// code is the FCM error code of e, else its status name.
func (e *apiError) code() string {
	if e.fcmCode != "" {
		return e.fcmCode
	}
	return e.statusText
}

func invalidArgument(field, message string) *apiError {
	return &apiError{status: http.StatusBadRequest, statusText: "INVALID_ARGUMENT", message: message, fcmCode: "INVALID_ARGUMENT", field: field}
}

func writeError(w http.ResponseWriter, e *apiError) {
	type detail struct {
		Type            string           `json:"@type"`
		ErrorCode       string           `json:"errorCode,omitempty"`
		FieldViolations []map[string]any `json:"fieldViolations,omitempty"`
	}
	var details []detail
	if e.fcmCode != "" {
		details = append(details, detail{Type: "type.googleapis.com/google.firebase.fcm.v1.FcmError", ErrorCode: e.fcmCode})
	}
	if e.field != "" {
		details = append(details, detail{Type: "type.googleapis.com/google.rpc.BadRequest",
			FieldViolations: []map[string]any{{"field": e.field, "description": e.message}}})
	}
	body := map[string]any{"error": map[string]any{"code": e.status, "message": e.message, "status": e.statusText}}
	if len(details) > 0 {
		body["error"].(map[string]any)["details"] = details
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((e.retryAfter+time.Second-1)/time.Second)))
	}
	w.WriteHeader(e.status)
	json.NewEncoder(w).Encode(body)
}
