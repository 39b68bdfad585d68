// Package httpapi turns API Gateway HTTP API events into calls of route
// handlers: it routes, limits body sizes, validates path ids, authenticates
// signed requests, decodes JSON strictly, and is the only place that maps
// errors to statuses and the API.md error shape. It knows no use case.
package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/offline-push/offline-push/shared/push"
)

// defaultMaxBody is the API.md §1 limit for routes that do not state one.
const defaultMaxBody = 64 << 10

// conversationTypes are the only values a {type} path segment matches
// (API.md §5); any other value matches no route, so it answers 404.
var conversationTypes = []string{"peer", "group", "chatroom"}

// Config configures a Router.
type Config struct {
	// Routes is the route table; nil means the package's Routes.
	Routes []Route
	// Handlers serve routes by Route.Name. A known route without a handler
	// here belongs to another function and answers 404.
	Handlers map[string]HandlerFunc
	// Verifier authenticates every non-public route. A router without one
	// answers 500 on those routes rather than serve them unauthenticated.
	Verifier *Verifier
	// Log receives one access line per request and the detail of every 500;
	// nil means slog.Default().
	Log *slog.Logger
	// Now is the server clock; nil means time.Now.
	Now func() time.Time
}

// Router serves API Gateway HTTP API (payload v2) events.
type Router struct {
	routes   []compiledRoute
	handlers map[string]HandlerFunc
	verifier *Verifier
	log      *slog.Logger
	now      func() time.Time
}

type compiledRoute struct {
	Route
	segments []segment
	literals int // how many segments are fixed text: more is more specific
}

type segment struct {
	literal string
	param   string // non-empty for a {param} segment
}

// New returns a Router for cfg.
func New(cfg Config) *Router {
	r := &Router{handlers: cfg.Handlers, verifier: cfg.Verifier, log: cfg.Log, now: cfg.Now}
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.now == nil {
		r.now = time.Now
	}
	routes := cfg.Routes
	if routes == nil {
		routes = Routes
	}
	for _, rt := range routes {
		r.routes = append(r.routes, compile(rt))
	}
	return r
}

func compile(rt Route) compiledRoute {
	c := compiledRoute{Route: rt}
	for _, s := range strings.Split(strings.TrimPrefix(rt.Pattern, "/"), "/") {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			c.segments = append(c.segments, segment{param: s[1 : len(s)-1]})
			if s == "{type}" {
				c.literals++ // a closed set of values counts as fixed text
			}
			continue
		}
		c.segments = append(c.segments, segment{literal: s})
		c.literals++
	}
	return c
}

// match returns the decoded path parameters when path segments fit the route.
func (c *compiledRoute) match(segs []string) (map[string]string, bool) {
	if len(segs) != len(c.segments) {
		return nil, false
	}
	var params map[string]string
	for i, s := range c.segments {
		v := segs[i]
		if s.param == "" {
			if v != s.literal {
				return nil, false
			}
			continue
		}
		if s.param == "type" && !slices.Contains(conversationTypes, v) {
			return nil, false
		}
		if params == nil {
			params = map[string]string{}
		}
		params[s.param] = v
	}
	return params, true
}

// outcome is what one request produced, for the access log line.
type outcome struct {
	method, route, app, requestID string
	status                        int
	cause                         string // why authentication failed, never a secret or signature
}

// Lambda serves one event. It never returns a non-nil error and never panics:
// every fault becomes an API.md error response.
func (r *Router) Lambda(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (resp events.APIGatewayV2HTTPResponse, err error) {
	start := time.Now()
	out := &outcome{method: strings.ToUpper(ev.RequestContext.HTTP.Method), requestID: ev.RequestContext.RequestID}
	if out.requestID == "" {
		out.requestID = newRequestID()
	}
	defer func() {
		if p := recover(); p != nil {
			r.log.LogAttrs(ctx, slog.LevelError, "handler panicked",
				slog.String("requestId", out.requestID), slog.String("route", out.route),
				slog.String("panic", fmt.Sprint(p)), slog.String("stack", string(debug.Stack())))
			resp = r.errorResponse(internalError(out.requestID), nil)
			out.status = resp.StatusCode
		}
		attrs := []slog.Attr{
			slog.String("method", out.method),
			slog.String("route", out.route),
			slog.Int("status", out.status),
			slog.Float64("durationMs", float64(time.Since(start).Microseconds())/1000),
			slog.String("app", out.app),
			slog.String("requestId", out.requestID),
		}
		if out.cause != "" {
			attrs = append(attrs, slog.String("cause", out.cause))
		}
		r.log.LogAttrs(ctx, slog.LevelInfo, "request", attrs...)
		err = nil
	}()
	resp = r.serve(ctx, ev, out)
	out.status = resp.StatusCode
	return resp, nil
}

// serve runs the API.md §1 checks in order; the first failure answers.
func (r *Router) serve(ctx context.Context, ev events.APIGatewayV2HTTPRequest, out *outcome) events.APIGatewayV2HTTPResponse {
	now := r.now()

	// 1. Route: 404, then 405.
	rawPath := stripStage(ev.RawPath, ev.RequestContext.Stage)
	segs, ok := splitPath(rawPath)
	if !ok {
		return r.errorResponse(notFound(), nil)
	}
	route, params, allow := r.find(out.method, segs)
	if route == nil {
		if len(allow) > 0 {
			return r.errorResponse(apiError{http.StatusMethodNotAllowed, ErrorDetail{
				Code:    CodeMethodNotAllowed,
				Message: "method " + out.method + " is not allowed on this route",
			}}, map[string]string{"Allow": strings.Join(allow, ", ")})
		}
		return r.errorResponse(notFound(), nil)
	}
	out.route = route.Name
	handler, ok := r.handlers[route.Name]
	if !ok || handler == nil {
		return r.errorResponse(notFound(), nil)
	}

	// 2. Size, measured on the decoded body.
	body := []byte(ev.Body)
	if ev.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(ev.Body)
		if err != nil {
			return r.errorResponse(invalid("", "request body is not valid base64"), nil)
		}
		body = b
	}
	limit := route.MaxBody
	if limit <= 0 {
		limit = defaultMaxBody
	}
	if int64(len(body)) > limit {
		return r.errorResponse(apiError{http.StatusRequestEntityTooLarge, ErrorDetail{
			Code:    CodePayloadTooLarge,
			Message: fmt.Sprintf("request body exceeds %d bytes", limit),
		}}, nil)
	}

	// 3. Path ids, in path order.
	for _, s := range route.segments {
		if s.param == "" || s.param == "type" {
			continue
		}
		v := params[s.param]
		if s.param == "app" {
			if !push.ValidApp(v) {
				return r.errorResponse(invalid("app", "must match ^[a-z0-9][a-z0-9-]{0,63}$"), nil)
			}
			continue
		}
		if !push.ValidID(v) {
			return r.errorResponse(invalid(s.param, "must match ^[A-Za-z0-9_.@:+=~-]{1,128}$"), nil)
		}
	}
	app := params["app"]
	out.app = app

	// 4. Authentication.
	if !route.Public {
		if r.verifier == nil {
			r.log.LogAttrs(ctx, slog.LevelError, "router has no verifier for a signed route",
				slog.String("requestId", out.requestID), slog.String("route", route.Name))
			return r.errorResponse(internalError(out.requestID), nil)
		}
		sr := SignedRequest{App: app, Method: out.method, RawPath: rawPath, RawQuery: ev.RawQueryString, Body: body}
		var okHeaders bool
		if sr.Timestamp, sr.Nonce, sr.Signature, okHeaders = authHeaders(ev.Headers); !okHeaders {
			out.cause = "auth header given twice with different values"
			return r.errorResponse(unauthenticated(), nil)
		}
		if err := r.verifier.Verify(ctx, sr, now); err != nil {
			if errors.Is(err, push.ErrUnauthenticated) {
				out.cause = err.Error()
			}
			return r.fail(ctx, err, out)
		}
	}

	// 5. Body and query: the handler decodes its body (JSON[T]); the query
	// string is parsed here once.
	query, err := url.ParseQuery(ev.RawQueryString)
	if err != nil {
		return r.errorResponse(invalid("", "malformed query string"), nil)
	}
	req := &Request{
		Route:     route.Route,
		App:       app,
		Params:    params,
		Query:     query,
		Header:    canonicalHeaders(ev.Headers),
		Body:      body,
		RequestID: out.requestID,
		Now:       now,
	}
	res, err := handler(ctx, req)
	if err != nil {
		return r.fail(ctx, err, out)
	}
	status := res.Status
	if status == 0 {
		status = http.StatusOK
	}
	if res.Body == nil {
		return response(status, "", nil)
	}
	b, err := marshal(res.Body)
	if err != nil {
		return r.fail(ctx, fmt.Errorf("encode response of %s: %w", route.Name, err), out)
	}
	return response(status, string(b), nil)
}

// find returns the most specific route matching both the path and method,
// or, when only the path matches, the methods that would (for Allow).
func (r *Router) find(method string, segs []string) (*compiledRoute, map[string]string, []string) {
	var (
		best       *compiledRoute
		bestParams map[string]string
		allow      []string
	)
	for i := range r.routes {
		c := &r.routes[i]
		params, ok := c.match(segs)
		if !ok {
			continue
		}
		if c.Method != method {
			if !slices.Contains(allow, c.Method) {
				allow = append(allow, c.Method)
			}
			continue
		}
		if best == nil || c.literals > best.literals {
			best, bestParams = c, params
		}
	}
	slices.Sort(allow)
	return best, bestParams, allow
}

// fail answers a handler or verifier error. Faults of ours are logged in
// full with the request id; the caller sees only that id.
func (r *Router) fail(ctx context.Context, err error, out *outcome) events.APIGatewayV2HTTPResponse {
	e, internal := classify(err, out.requestID)
	if internal {
		r.log.LogAttrs(ctx, slog.LevelError, "request failed",
			slog.String("requestId", out.requestID), slog.String("route", out.route),
			slog.String("app", out.app), slog.String("err", err.Error()))
	}
	return r.errorResponse(e, nil)
}

func (r *Router) errorResponse(e apiError, headers map[string]string) events.APIGatewayV2HTTPResponse {
	b, err := marshal(ErrorBody{Error: e.detail})
	if err != nil {
		// ErrorBody holds only strings; this cannot happen.
		b = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	return response(e.status, string(b), headers)
}

func response(status int, body string, extra map[string]string) events.APIGatewayV2HTTPResponse {
	h := map[string]string{"Content-Type": "application/json"}
	for k, v := range extra {
		h[k] = v
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: h, Body: body}
}

// marshal encodes v without HTML escaping: the API speaks JSON, not HTML, and
// "<" in a message text should arrive as "<".
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// stripStage removes the "/{stage}" prefix that API Gateway puts in front of
// the path on a named stage; the $default stage has none.
func stripStage(path, stage string) string {
	if stage == "" || stage == "$default" {
		return path
	}
	prefix := "/" + stage
	switch {
	case path == prefix:
		return "/"
	case strings.HasPrefix(path, prefix+"/"):
		return path[len(prefix):]
	}
	return path
}

// splitPath splits an absolute path into percent-decoded segments. A segment
// that does not decode is kept as sent; it then matches no fixed segment and
// fails id validation, since ids never contain "%".
func splitPath(path string) ([]string, bool) {
	if !strings.HasPrefix(path, "/") {
		return nil, false
	}
	segs := strings.Split(path[1:], "/")
	for i, s := range segs {
		if d, err := url.PathUnescape(s); err == nil {
			segs[i] = d
		}
	}
	return segs, true
}

// authHeaders returns the three signature headers, matched in any case. ok is
// false when one of them is present under two spellings with different
// values, which only a forged event can produce.
func authHeaders(h map[string]string) (ts, nonce, sig string, ok bool) {
	ok = true
	get := func(name string) string {
		var v string
		found := false
		for k, val := range h {
			if !strings.EqualFold(k, name) {
				continue
			}
			if found && val != v {
				ok = false
			}
			v, found = val, true
		}
		return v
	}
	ts, nonce, sig = get(HeaderTimestamp), get(HeaderNonce), get(HeaderSignature)
	return ts, nonce, sig, ok
}

func canonicalHeaders(h map[string]string) http.Header {
	out := make(http.Header, len(h))
	for k, v := range h {
		out.Set(k, v)
	}
	return out
}

// newRequestID makes an id for requests that arrive without one (the local
// stack, tests); API Gateway always supplies its own.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
