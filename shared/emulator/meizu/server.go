// Package meizuemu is a local emulator of Meizu (Flyme) Push's server API
// (POST /garcia/api/server/push/varnished/pushByPushId) for tests and the
// local stack.
//
// It checks each request the way Meizu documents it (VENDORS.md §9,
// MEIZUPUSH/PushAPI README): the form encoding, the four parameters, the
// app id, the MD5 signature over the sorted raw parameters and the app
// secret (computed here on its own), at most 1000 pushIds, and the
// messageJson of a notification: its known members only, a title of 1 to
// 32 and a content of 1 to 100 characters (UTF-16 units, as Meizu's Java
// servers count), the click, expand and advance options, validTime from 1
// to 72 hours and a notifyKey of at most 8 of [0-9A-Za-z_-]. It answers
// with Meizu's shape ({"code":"200","value":{"<code>":[pushIds]},
// "msgId"} on success, {"code":"<code>","message","value":""} otherwise),
// HTTP 200 either way as Meizu does.
//
// Meizu has no access token, so there is none to expire; a wrong secret
// fails the signature (1006). Faults (per-pushId codes such as 110002,
// 110003, 518, 519, 520, whole-request codes or HTTP statuses, a spent
// daily limit, seeded shares of throttled, busy and unavailable answers, a
// delay) are set at run time.
//
// It implements every rule on its own and never imports the provider it
// checks: a bug shared by both sides would let a wrong request pass.
package meizuemu

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Options configure a Server. The zero value is a working emulator on a
// free loopback port.
type Options struct {
	// Listener, when set, is where the emulator serves; nil takes a free
	// port on 127.0.0.1.
	Listener net.Listener
	// Printer, when set, gets one JSON line per pushId of each accepted
	// push, with only the pushId's last 6 characters.
	Printer io.Writer
	// Now is the emulator's clock for records; nil means time.Now.
	Now func() time.Time
}

// App is a Meizu app the emulator accepts pushes for.
type App struct {
	ID     string
	Secret string
}

// Push is one request the emulator accepted.
type Push struct {
	// PushIDs are the pushIds the push was delivered to; Failed maps the
	// codes the emulator answered for the others to their pushIds.
	PushIDs []string
	Failed  map[string][]string
	// MsgID is the msgId the emulator answered.
	MsgID string
	AppID string
	// Message is messageJson decoded; MessageJSON as received.
	Message     Message
	MessageJSON string
	// Form is the whole decoded form; Body the request body as received,
	// for golden tests.
	Form     url.Values
	Body     []byte
	Received time.Time
}

// Answer is the emulator's answer to one request for a known app, so that
// a test can check a sender's accounting against it from outside.
type Answer struct {
	PushIDs []string
	// Status is the HTTP status; Code Meizu's code ("200" on success).
	Status int
	Code   string
	Failed map[string][]string
}

// Server is a running emulator. Its methods are safe for concurrent use.
type Server struct {
	// URL is the emulator's base URL, http://127.0.0.1:PORT: the value of
	// a credential's endpoint.
	URL string

	srv *httptest.Server
	now func() time.Time

	mu       sync.Mutex
	apps     map[string]App // by id
	faults   Faults
	rng      *rand.Rand
	hits     map[string]int
	received []Push
	answers  []Answer
	printer  io.Writer
	serial   uint64
}

// New starts an emulator. Close stops it.
func New(opts Options) *Server {
	s := &Server{
		now:     opts.Now,
		apps:    map[string]App{},
		hits:    map[string]int{},
		rng:     rand.New(rand.NewPCG(0, 0x6d7a)),
		printer: opts.Printer,
	}
	if s.now == nil {
		s.now = time.Now
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	if opts.Listener != nil {
		srv.Listener.Close()
		srv.Listener = opts.Listener
	}
	srv.Start()
	s.srv = srv
	s.URL = srv.URL
	return s
}

// Close stops the server and closes its connections.
func (s *Server) Close() { s.srv.Close() }

// AddApp registers (or replaces) an app, keyed by its id.
func (s *Server) AddApp(a App) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apps[a.ID] = a
}

// RemoveApp forgets the app of id, as if it were deleted: requests naming
// it are refused with 110000.
func (s *Server) RemoveApp(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.apps, id)
}

// Received returns a copy of the pushes accepted so far, in order.
func (s *Server) Received() []Push {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Push(nil), s.received...)
}

// Answers returns a copy of the answers given to requests for known apps.
func (s *Server) Answers() []Answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Answer(nil), s.answers...)
}

// Reset forgets the pushes and answers recorded so far.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.received, s.answers = nil, nil
}

// merror is a refusal: an HTTP status and, for Meizu's own errors (status
// 200), its code and message.
type merror struct {
	status  int
	code    string
	message string
}

// messages are Meizu's texts for the top-level codes (README "Api
// returnCode定义"; 110019 from the Java SDK's ErrorCode).
var messages = map[string]string{
	"500": "其他异常", "1001": "系统错误", "1003": "服务器忙", "1005": "参数错误，请参考API文档",
	"1006": "签名认证失败", "110000": "appId不合法", "110001": "appKey不合法",
	"110004": "参数不能为空", "110009": "应用被加入黑名单", "110010": "应用请求频率超过限制",
	"110019": "超过该应用的当天推送总数限制",
}

func fail(code, detail string) *merror {
	m := messages[code]
	if detail != "" {
		m += ": " + detail
	}
	return &merror{status: http.StatusOK, code: code, message: m}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	p, known, me := s.check(r, body)
	if me == nil {
		me = s.fault(r, p)
	}
	if known {
		a := Answer{Status: http.StatusOK, Code: "200"}
		if p != nil {
			a.PushIDs = append(append([]string(nil), p.PushIDs...), failedIDs(p.Failed)...)
		} else if f, err := url.ParseQuery(string(body)); err == nil {
			a.PushIDs = strings.Split(f.Get("pushIds"), ",")
		}
		if me != nil {
			a.Status, a.Code = me.status, me.code
		} else {
			a.Failed = p.Failed
		}
		s.mu.Lock()
		s.answers = append(s.answers, a)
		s.mu.Unlock()
	}
	if me != nil {
		if me.status != http.StatusOK {
			http.Error(w, http.StatusText(me.status), me.status)
			return
		}
		writeJSON(w, map[string]any{"code": me.code, "message": me.message, "value": "", "redirect": ""})
		return
	}
	s.accept(p)
	value := map[string][]string{}
	for c, ids := range p.Failed {
		value[c] = ids
	}
	writeJSON(w, map[string]any{"code": "200", "message": "", "value": value, "msgId": p.MsgID})
}

func failedIDs(failed map[string][]string) []string {
	var out []string
	for _, ids := range failed {
		out = append(out, ids...)
	}
	return out
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	json.NewEncoder(w).Encode(v)
}

func (s *Server) accept(p *Push) {
	s.mu.Lock()
	s.serial++
	p.MsgID = fmt.Sprintf("NS%030d", s.serial)
	s.received = append(s.received, *p)
	printer := s.printer
	s.mu.Unlock()
	if printer == nil {
		return
	}
	for _, id := range p.PushIDs {
		line := struct {
			Emulator  string `json:"emulator"`
			Token     string `json:"token"`
			MsgID     string `json:"msgId"`
			AppID     string `json:"appId"`
			Title     string `json:"title"`
			Content   string `json:"content"`
			NotifyKey string `json:"notifyKey,omitempty"`
			OffLine   int    `json:"offLine"`
			ValidTime int    `json:"validTimeHours,omitempty"`
		}{"meizu", last6(id), p.MsgID, p.AppID, p.Message.NoticeBarInfo.Title, p.Message.NoticeBarInfo.Content,
			p.Message.AdvanceInfo.NotifyKey, p.Message.PushTimeInfo.OffLine, p.Message.PushTimeInfo.ValidTime}
		b, err := json.Marshal(line)
		if err != nil {
			continue // strings and numbers always encode
		}
		s.mu.Lock()
		printer.Write(append(b, '\n'))
		s.mu.Unlock()
	}
}

// last6 returns the last 6 characters of a pushId, the only part the
// emulator ever prints.
func last6(token string) string {
	if len(token) <= 6 {
		return token
	}
	return token[len(token)-6:]
}
