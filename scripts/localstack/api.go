package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/offline-push/offline-push/shared/app"
	"github.com/offline-push/offline-push/shared/cfn"
)

// maxPayload is API Gateway's request size limit (10 MB); a larger request
// never reaches a function.
const maxPayload = 10 << 20

// apiServer serves the HTTP API as API Gateway would: it routes each
// request by the template's route keys, turns it into a payload format 2.0
// event, and calls the function's handler from app.HTTPFunctions.
type apiServer struct {
	log      *slog.Logger
	stack    *cfn.Stack
	routes   *routeTable
	handlers map[string]app.HTTPHandler // by logical id; absent: not registered
	srv      *http.Server
	ln       net.Listener
	served   chan struct{} // closed when Serve has returned, with serveErr
	serveErr error
}

// newAPI builds the handler of every HTTP function that app.HTTPFunctions
// registers, each once, as a cold start would.
func newAPI(ctx context.Context, log *slog.Logger, st *cfn.Stack, env envFactory) (*apiServer, error) {
	rt, err := newRouteTable(st)
	if err != nil {
		return nil, err
	}
	a := &apiServer{log: log, stack: st, routes: rt, handlers: map[string]app.HTTPHandler{}}
	for id, f := range st.Functions {
		if len(f.HTTPRoutes) == 0 {
			continue
		}
		construct, ok := app.HTTPFunctions[id]
		if !ok {
			log.Warn("function is not registered in app.HTTPFunctions; its routes answer 501", "function", id)
			continue
		}
		h, err := construct(ctx, env(f), log.With("function", id))
		if err != nil {
			return nil, fmt.Errorf("cold start of %s: %w", id, err)
		}
		a.handlers[id] = h
	}
	return a, nil
}

// start listens on addr (port 0 picks a free port) and serves in the
// background.
func (a *apiServer) start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	a.ln = ln
	a.srv = &http.Server{Handler: a, ReadHeaderTimeout: 10 * time.Second}
	a.served = make(chan struct{})
	go func() {
		a.serveErr = a.srv.Serve(ln)
		close(a.served)
	}()
	a.log.Info("HTTP API listening", "url", a.url())
	return nil
}

func (a *apiServer) url() string { return "http://" + a.ln.Addr().String() }

// stop lets requests in flight finish (within ctx) and closes the listener.
func (a *apiServer) stop(ctx context.Context) error {
	if err := a.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("stop HTTP API: %w", err)
	}
	<-a.served
	if !errors.Is(a.serveErr, http.ErrServerClosed) {
		return fmt.Errorf("HTTP API: %w", a.serveErr)
	}
	return nil
}

// waitReady polls GET /v1/health until the API answers. When the function
// behind that route is registered, only a 200 counts; otherwise any answer
// does, so the stack still comes up while functions are being added.
func (a *apiServer) waitReady(ctx context.Context) error {
	want200 := false
	if m, ok := a.routes.lookup(http.MethodGet, "/v1/health"); ok {
		_, want200 = a.handlers[m.function]
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.url()+"/v1/health", nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || !want200 {
				if resp.StatusCode != http.StatusOK {
					a.log.Warn("GET /v1/health does not answer 200 yet", "status", resp.StatusCode)
				}
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("GET /v1/health never answered 200 (last: %s): %w", last, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// gatewayError answers as API Gateway itself does, outside any function.
func gatewayError(w http.ResponseWriter, status int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"message": message})
}

func (a *apiServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rawPath, _, _ := strings.Cut(r.RequestURI, "?")
	if u, err := url.ParseRequestURI(r.RequestURI); err == nil && u.IsAbs() {
		rawPath = u.EscapedPath() // absolute-form request target (proxies)
	}
	m, ok := a.routes.lookup(r.Method, rawPath)
	if !ok {
		gatewayError(w, http.StatusNotFound, "Not Found")
		return
	}
	log := a.log.With("method", r.Method, "path", rawPath, "route", m.routeKey, "function", m.function)
	h, ok := a.handlers[m.function]
	if !ok {
		gatewayError(w, http.StatusNotImplemented, m.function+" is not registered in app.HTTPFunctions")
		log.Warn("request to an unregistered function", "status", http.StatusNotImplemented)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxPayload+1))
	if err != nil {
		gatewayError(w, http.StatusBadRequest, "Bad Request")
		return
	}
	if len(body) > maxPayload {
		gatewayError(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
		return
	}
	f := a.stack.Functions[m.function]
	ev := toEvent(r, rawPath, body, m, start, a.stack)
	ctx, cancel := context.WithTimeout(r.Context(), f.Timeout)
	defer cancel()
	ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{
		AwsRequestID:       ev.RequestContext.RequestID,
		InvokedFunctionArn: functionARN(a.stack, m.function),
	})
	resp, err := invoke(ctx, h, ev)
	if err != nil {
		// Lambda reports the error; API Gateway hides it from the caller.
		log.Error("function failed", "err", err, "requestId", ev.RequestContext.RequestID)
		gatewayError(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	status, out, err := responseBody(resp)
	if err != nil {
		// API Gateway answers 500 to a response it cannot map.
		log.Error("function returned an invalid response", "err", err)
		gatewayError(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	writeResponse(w, resp, status, out)
	log.Info("request", "status", status, "ms", time.Since(start).Milliseconds())
}

// invoke calls a handler, turning a panic into an error as the Lambda runtime
// would report it.
func invoke(ctx context.Context, h app.HTTPHandler, ev events.APIGatewayV2HTTPRequest) (resp events.APIGatewayV2HTTPResponse, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panicked: %v", p)
		}
	}()
	return h(ctx, ev)
}

func functionARN(st *cfn.Stack, id string) string {
	return "arn:aws:lambda:" + st.Region + ":" + st.AccountID + ":function:" + st.Name + "-" + id
}

// toEvent builds the payload format 2.0 event of a request. rawPath stays
// percent-encoded, as the request signature covers it in that form (API.md
// §2); path parameters are decoded.
func toEvent(r *http.Request, rawPath string, body []byte, m match, now time.Time, st *cfn.Stack) events.APIGatewayV2HTTPRequest {
	headers := map[string]string{}
	var cookies []string
	for name, values := range r.Header {
		lname := strings.ToLower(name)
		if lname == "cookie" {
			for _, v := range values {
				for _, c := range strings.Split(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						cookies = append(cookies, c)
					}
				}
			}
			continue
		}
		headers[lname] = strings.Join(values, ",")
	}
	headers["host"] = r.Host
	sourceIP, port, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		sourceIP = r.RemoteAddr
	}
	headers["x-forwarded-for"] = sourceIP
	headers["x-forwarded-proto"] = "http"
	if _, p, err := net.SplitHostPort(r.Host); err == nil {
		port = p
	}
	headers["x-forwarded-port"] = port

	var query map[string]string
	if q, err := url.ParseQuery(r.URL.RawQuery); err == nil && len(q) > 0 {
		query = make(map[string]string, len(q))
		for k, vs := range q {
			query[k] = strings.Join(vs, ",")
		}
	}
	var params map[string]string
	if len(m.params) > 0 {
		params = m.params
	}
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	prefix, _, _ := strings.Cut(host, ".")

	ev := events.APIGatewayV2HTTPRequest{
		Version:               "2.0",
		RouteKey:              m.routeKey,
		RawPath:               rawPath,
		RawQueryString:        r.URL.RawQuery,
		Cookies:               cookies,
		Headers:               headers,
		QueryStringParameters: query,
		PathParameters:        params,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:     m.routeKey,
			AccountID:    st.AccountID,
			Stage:        "$default",
			RequestID:    requestID(),
			APIID:        "local",
			DomainName:   host,
			DomainPrefix: prefix,
			Time:         now.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:    now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method:    r.Method,
				Path:      rawPath,
				Protocol:  r.Proto,
				SourceIP:  sourceIP,
				UserAgent: r.UserAgent(),
			},
		},
	}
	if len(body) > 0 {
		if utf8.Valid(body) {
			ev.Body = string(body)
		} else {
			ev.Body = base64.StdEncoding.EncodeToString(body)
			ev.IsBase64Encoded = true
		}
	}
	return ev
}

// responseBody checks a function's response and returns its status and
// decoded body, as API Gateway maps them.
func responseBody(resp events.APIGatewayV2HTTPResponse) (int, []byte, error) {
	status := resp.StatusCode
	if status == 0 {
		status = http.StatusOK
	}
	if status < 100 || status > 599 {
		return 0, nil, fmt.Errorf("status code %d", status)
	}
	if !resp.IsBase64Encoded {
		return status, []byte(resp.Body), nil
	}
	b, err := base64.StdEncoding.DecodeString(resp.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("body is not base64: %w", err)
	}
	return status, b, nil
}

// writeResponse writes a checked response. A write error means the client
// went away; there is no one left to tell.
func writeResponse(w http.ResponseWriter, resp events.APIGatewayV2HTTPResponse, status int, body []byte) {
	h := w.Header()
	for k, vs := range resp.MultiValueHeaders {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	for k, v := range resp.Headers {
		h.Set(k, v)
	}
	for _, c := range resp.Cookies {
		h.Add("Set-Cookie", c)
	}
	w.WriteHeader(status)
	w.Write(body)
}
