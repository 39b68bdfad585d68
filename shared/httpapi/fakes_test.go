package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/offline-push/offline-push/shared/push"
)

// fixedSecrets knows a fixed set of apps and their API secrets.
type fixedSecrets map[string][]string

func (s fixedSecrets) APISecrets(_ context.Context, app string) ([]string, error) {
	v, ok := s[app]
	if !ok {
		return nil, push.ErrNotFound
	}
	return v, nil
}

// brokenSecrets fails every look-up, as Secrets Manager does in an outage.
type brokenSecrets struct{}

func (brokenSecrets) APISecrets(context.Context, string) ([]string, error) {
	return nil, errors.New("secrets manager unavailable")
}

// onceNonces accepts each (app, nonce) once, forever.
type onceNonces struct {
	mu    sync.Mutex
	spent map[string]bool
}

func newOnceNonces() *onceNonces { return &onceNonces{spent: map[string]bool{}} }

func (n *onceNonces) Spend(_ context.Context, app, nonce string, _ time.Time) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	k := app + "\x00" + nonce
	if n.spent[k] {
		return push.ErrConflict
	}
	n.spent[k] = true
	return nil
}

func (n *onceNonces) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.spent)
}

// Shared fixtures: two apps, demo with two secrets (mid-rotation), other
// with one.
const (
	demoSecret    = "demo-secret-1"
	demoSecret2   = "demo-secret-2"
	otherSecret   = "other-secret"
	fixedUnixTime = 1_790_000_000
)

var testNow = time.Unix(fixedUnixTime, 250_000_000).UTC()

func testSecrets() fixedSecrets {
	return fixedSecrets{"demo": {demoSecret, demoSecret2}, "other": {otherSecret}}
}

// echoHandler answers 200 with what it was given, so tests can see what the
// router passed on.
func echoHandler(_ context.Context, r *Request) (Response, error) {
	return Response{Status: 200, Body: map[string]any{
		"route": r.Route.Name, "app": r.App, "params": r.Params, "query": r.Query,
		"body": string(r.Body), "requestId": r.RequestID,
	}}, nil
}

// allHandlers serves every route of the table with h.
func allHandlers(h HandlerFunc) map[string]HandlerFunc {
	m := map[string]HandlerFunc{}
	for _, r := range Routes {
		m[r.Name] = h
	}
	return m
}

type testRouter struct {
	*Router
	nonces *onceNonces
	logs   *bytes.Buffer
}

func newTestRouter(t testing.TB, handlers map[string]HandlerFunc) *testRouter {
	t.Helper()
	nonces := newOnceNonces()
	logs := &bytes.Buffer{}
	r := New(Config{
		Handlers: handlers,
		Verifier: NewVerifier(testSecrets(), nonces),
		Log:      slog.New(slog.NewJSONHandler(logs, nil)),
		Now:      func() time.Time { return testNow },
	})
	return &testRouter{Router: r, nonces: nonces, logs: logs}
}

// req describes a test request; sign fills in valid auth headers.
type req struct {
	method, path, query, body string
	stage                     string
	headers                   map[string]string
}

var nonceSeq atomic.Int64

func (q req) event() events.APIGatewayV2HTTPRequest {
	h := map[string]string{"content-type": "application/json"}
	for k, v := range q.headers {
		h[k] = v
	}
	stage := q.stage
	if stage == "" {
		stage = "$default"
	}
	return events.APIGatewayV2HTTPRequest{
		Version:        "2.0",
		RawPath:        q.path,
		RawQueryString: q.query,
		Headers:        h,
		Body:           q.body,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			Stage:     stage,
			RequestID: "req-1",
			HTTP:      events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: q.method, Path: q.path},
		},
	}
}

// signed returns q with headers signed by secret at ts, with a fresh nonce.
// signPath is the path that is signed (the path without stage prefix).
func (q req) signed(secret string, ts int64, signPath string) req {
	nonce := "nonce-" + strconv.FormatInt(100000+nonceSeq.Add(1), 10)
	return q.signedWith(secret, strconv.FormatInt(ts, 10), nonce, signPath)
}

func (q req) signedWith(secret, ts, nonce, signPath string) req {
	if signPath == "" {
		signPath = q.path
	}
	h := map[string]string{}
	for k, v := range q.headers {
		h[k] = v
	}
	h["x-push-timestamp"] = ts
	h["x-push-nonce"] = nonce
	h["x-push-signature"] = Sign(secret, q.method, signPath, q.query, ts, nonce, []byte(q.body))
	q.headers = h
	return q
}

func (q req) sign() req { return q.signed(demoSecret, fixedUnixTime, "") }

func (r *testRouter) do(t testing.TB, ev events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	t.Helper()
	resp, err := r.Lambda(context.Background(), ev)
	if err != nil {
		t.Fatalf("Lambda returned error %v; it must never return one", err)
	}
	return resp
}

// errorOf decodes an error response body, failing the test if it is not
// exactly the API.md shape.
func errorOf(t testing.TB, body string) ErrorDetail {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader([]byte(body)))
	dec.DisallowUnknownFields()
	var b ErrorBody
	if err := dec.Decode(&b); err != nil {
		t.Fatalf("error body %q is not the API.md shape: %v", body, err)
	}
	if b.Error.Code == "" || b.Error.Message == "" {
		t.Fatalf("error body %q lacks code or message", body)
	}
	return b.Error
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }
