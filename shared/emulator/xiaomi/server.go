// Package xiaomiemu is a local emulator of Xiaomi MiPush's server API
// (POST /v3/message/regid) for tests and the local stack.
//
// It checks each request the way Xiaomi documents it (VENDORS.md §6;
// dev.mi.com pId=1559 for the parameters, pId=1560 for the error codes):
// the "Authorization: key=<AppSecret>" header, the form encoding, the
// package, at most 1000 regIds, the title (< 50) and description (< 128)
// lengths counted in UTF-16 units as Xiaomi's Java servers count, the
// URL-encoded payload, the TTL in milliseconds (at most two weeks), the
// notify id range, the extra.* keys (at most 10 custom ones) and, for an
// app registered with channels, that extra.channel_id names one of them.
// It answers with Xiaomi's success shape ({"result":"ok","code":0,
// "data":{"id", "bad_regids"}}) and error shape ({"result":"error","code",
// "reason","description"}), HTTP 200 either way as Xiaomi does.
//
// Xiaomi has no token exchange, so there is no access token to expire; a
// wrong secret is refused with 21301. Faults (dead regIds, chosen codes or
// HTTP statuses per regId, a spent daily quota, seeded shares of throttled,
// busy and unavailable answers, a delay) are set at run time.
//
// It implements every rule on its own and never imports the provider it
// checks: a bug shared by both sides would let a wrong request pass.
package xiaomiemu

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
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
	// Printer, when set, gets one JSON line per regId of each accepted
	// push, with only the regId's last 6 characters.
	Printer io.Writer
	// Now is the emulator's clock for time_to_send and records; nil means
	// time.Now.
	Now func() time.Time
}

// App is a Xiaomi app the emulator accepts pushes for.
type App struct {
	// Secret is the AppSecret the Authorization header must carry.
	Secret string
	// Packages are the app's package names (restricted_package_name).
	Packages []string
	// Channels, when set, are the app's approved notification channels:
	// every push must then name one in extra.channel_id, as Xiaomi
	// requires of apps on its 2024-11 classification rules.
	Channels []string
}

// Push is one request the emulator accepted.
type Push struct {
	// RegIDs are the regIds the push was delivered to; BadRegIDs those it
	// answered as bad_regids.
	RegIDs    []string
	BadRegIDs []string
	// MessageID is the data.id the emulator answered.
	MessageID   string
	Path        string
	PackageName string
	PassThrough int
	Title       string
	Description string
	// Payload is the payload field URL-decoded, as the app receives it.
	Payload    string
	NotifyType int
	// NotifyID is -1 when the request had none.
	NotifyID int64
	// TimeToLive is zero when the request had none (Xiaomi's default then).
	TimeToLive time.Duration
	ChannelID  string
	// Extra holds the extra.* parameters without their prefix.
	Extra map[string]string
	// Form is the whole decoded form; Body the request body as received,
	// for golden tests.
	Form     url.Values
	Body     []byte
	Received time.Time
}

// Answer is the emulator's answer to one request that passed
// authentication, so that a test can check a sender's accounting against
// it from outside.
type Answer struct {
	RegIDs []string
	// Status is the HTTP status; Code Xiaomi's code (0 on success).
	Status    int
	Code      int
	BadRegIDs []string
}

// Server is a running emulator. Its methods are safe for concurrent use.
type Server struct {
	// URL is the emulator's base URL, http://127.0.0.1:PORT: the value of
	// a credential's endpoint.
	URL string

	srv *httptest.Server
	now func() time.Time

	mu       sync.Mutex
	apps     map[string]App // by secret
	faults   Faults
	rng      *rand.Rand
	hits     map[string]int // per-regId fault answers given
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
		rng:     rand.New(rand.NewPCG(0, 0x786d)),
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

// AddApp registers (or replaces) an app, keyed by its secret.
func (s *Server) AddApp(a App) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apps[a.Secret] = a
}

// RemoveApp forgets the app of secret, as if the secret were revoked:
// requests carrying it are refused with 21301.
func (s *Server) RemoveApp(secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.apps, secret)
}

// Received returns a copy of the pushes accepted so far, in order.
func (s *Server) Received() []Push {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Push(nil), s.received...)
}

// Answers returns a copy of the answers given to authenticated requests.
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

// xerror is a refusal: an HTTP status and, for Xiaomi's own errors
// (status 200), its code and texts.
type xerror struct {
	status      int
	code        int
	reason      string
	description string
}

// descriptions are Xiaomi's texts for the codes the emulator answers
// (dev.mi.com pId=1560).
var descriptions = map[int]string{
	10002: "系统繁忙", 10008: "参数错误,请参考API文档", 10017: "参数值非法",
	10027: "应用的API调用太频繁", 10034: "应用当日发送消息数量过多",
	20301: "发送消息失败", 21301: "认证失败", 21305: "缺少必要的参数",
	22022: "应用程序package name不合法", 27001: "channel相关信息不匹配",
	65009: "消息内容太长", 65014: "键值对数目太多", 65015: "键值对总长度太长",
	200001: "超过当日推送总量限制",
}

func fail(code int, reason string) *xerror {
	return &xerror{status: http.StatusOK, code: code, reason: reason, description: descriptions[code]}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	p, app, xe := s.check(r, body)
	if xe == nil {
		xe = s.fault(r, p)
	}
	if app != nil {
		// Only authenticated requests are accounted.
		a := Answer{RegIDs: regIDs(p, body), Status: http.StatusOK}
		if xe != nil {
			a.Status, a.Code = xe.status, xe.code
		} else {
			a.BadRegIDs = p.BadRegIDs
		}
		s.mu.Lock()
		s.answers = append(s.answers, a)
		s.mu.Unlock()
	}
	if xe != nil {
		writeError(w, xe, s.traceID())
		return
	}
	s.accept(p)
	data := map[string]any{"id": p.MessageID, "day_acked": strconv.Itoa(len(p.RegIDs)), "day_quota": "0"}
	if len(p.BadRegIDs) > 0 {
		data["bad_regids"] = joinComma(p.BadRegIDs)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"result":      "ok",
		"code":        0,
		"trace_id":    s.traceID(),
		"data":        data,
		"description": "成功",
		"info":        fmt.Sprintf("Received push messages for %d REGID", len(p.RegIDs)+len(p.BadRegIDs)),
	})
}

// regIDs returns the regIds a request named, for the answer log, even when
// it was refused before they were parsed.
func regIDs(p *Push, body []byte) []string {
	if p != nil {
		return append(append([]string(nil), p.RegIDs...), p.BadRegIDs...)
	}
	f, err := url.ParseQuery(string(body))
	if err != nil {
		return nil
	}
	return splitComma(f.Get("registration_id"))
}

func writeError(w http.ResponseWriter, xe *xerror, trace string) {
	if xe.status != http.StatusOK {
		http.Error(w, http.StatusText(xe.status), xe.status)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"result":      "error",
		"code":        xe.code,
		"reason":      xe.reason,
		"description": xe.description,
		"trace_id":    trace,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (s *Server) traceID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.serial++
	return fmt.Sprintf("Xlm%019d", s.serial)
}

func (s *Server) accept(p *Push) {
	s.mu.Lock()
	s.serial++
	p.MessageID = fmt.Sprintf("slm%019d", s.serial)
	s.received = append(s.received, *p)
	printer := s.printer
	s.mu.Unlock()
	if printer == nil {
		return
	}
	for _, id := range p.RegIDs {
		line := struct {
			Emulator   string `json:"emulator"`
			Token      string `json:"token"`
			MessageID  string `json:"messageId"`
			Package    string `json:"package"`
			Channel    string `json:"channelId,omitempty"`
			Title      string `json:"title"`
			Body       string `json:"description"`
			NotifyID   int64  `json:"notifyId"`
			TimeToLive int64  `json:"timeToLiveMs"`
			Payload    string `json:"payload,omitempty"`
		}{"xiaomi", last6(id), p.MessageID, p.PackageName, p.ChannelID, p.Title, p.Description,
			p.NotifyID, p.TimeToLive.Milliseconds(), p.Payload}
		b, err := json.Marshal(line)
		if err != nil {
			continue // strings and numbers always encode
		}
		s.mu.Lock()
		printer.Write(append(b, '\n'))
		s.mu.Unlock()
	}
}

// last6 returns the last 6 characters of a regId, the only part the
// emulator ever prints.
func last6(token string) string {
	if len(token) <= 6 {
		return token
	}
	return token[len(token)-6:]
}
