package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/offline-push/offline-push/shared/push"
)

const devicePath = "/v1/apps/demo/users/bob/devices/phone-1"

// TestErrorTable checks every row of API.md §1's status table, whether the
// router or the handler produced the error.
func TestErrorTable(t *testing.T) {
	tests := []struct {
		name       string
		handlerErr error
		req        req
		wantStatus int
		wantCode   string
		wantField  string
	}{
		{name: "invalid argument", handlerErr: push.Invalid("updates[3].epoch", "must be >= 0"),
			wantStatus: 400, wantCode: "invalid_argument", wantField: "updates[3].epoch"},
		{name: "wrapped invalid argument", handlerErr: fmt.Errorf("validate: %w", push.Invalid("vendor", "unknown vendor")),
			wantStatus: 400, wantCode: "invalid_argument", wantField: "vendor"},
		{name: "unknown cert", handlerErr: fmt.Errorf("check cert: %w", push.ErrUnknownCert),
			wantStatus: 400, wantCode: "unknown_cert", wantField: "certName"},
		{name: "unauthenticated from handler", handlerErr: push.ErrUnauthenticated,
			wantStatus: 401, wantCode: "unauthenticated"},
		{name: "not found from handler", handlerErr: fmt.Errorf("get: %w", push.ErrNotFound),
			wantStatus: 404, wantCode: "not_found"},
		{name: "conflict", handlerErr: fmt.Errorf("put: %w", push.ErrConflict),
			wantStatus: 409, wantCode: "conflict"},
		{name: "internal", handlerErr: errors.New("dynamodb: AccessDeniedException arn:aws:secret"),
			wantStatus: 500, wantCode: "internal"},
		{name: "throttled is ours", handlerErr: fmt.Errorf("read: %w", push.ErrThrottled),
			wantStatus: 500, wantCode: "internal"},
		{name: "unknown route", req: req{method: "GET", path: "/v1/nothing"}.sign(),
			wantStatus: 404, wantCode: "not_found"},
		{name: "wrong method", req: req{method: "POST", path: devicePath}.sign(),
			wantStatus: 405, wantCode: "method_not_allowed"},
		{name: "too large", req: req{method: "PUT", path: devicePath, body: strings.Repeat("a", 64<<10+1)}.sign(),
			wantStatus: 413, wantCode: "payload_too_large"},
		{name: "bad path id", req: req{method: "PUT", path: "/v1/apps/demo/users/b%20b/devices/phone-1"}.sign(),
			wantStatus: 400, wantCode: "invalid_argument", wantField: "user"},
		{name: "bad auth", req: req{method: "PUT", path: devicePath}.signed("wrong", fixedUnixTime, ""),
			wantStatus: 401, wantCode: "unauthenticated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			handlerErr := tt.handlerErr
			r := newTestRouter(t, allHandlers(func(context.Context, *Request) (Response, error) {
				if handlerErr != nil {
					return Response{}, handlerErr
				}
				return Response{Status: 200, Body: map[string]bool{"ok": true}}, nil
			}))
			q := tt.req
			if q.method == "" {
				q = req{method: "PUT", path: devicePath, body: `{}`}.sign()
			}
			resp := r.do(t, q.event())
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d (body %s)", resp.StatusCode, tt.wantStatus, resp.Body)
			}
			if got := resp.Headers["Content-Type"]; got != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", got)
			}
			e := errorOf(t, resp.Body)
			if e.Code != tt.wantCode || e.Field != tt.wantField {
				t.Errorf("code, field = %q, %q; want %q, %q", e.Code, e.Field, tt.wantCode, tt.wantField)
			}
			if tt.wantStatus == 500 {
				if want := "internal error, request id req-1"; e.Message != want {
					t.Errorf("500 message = %q, want %q (only the request id)", e.Message, want)
				}
				if !strings.Contains(r.logs.String(), "AccessDenied") && tt.name == "internal" {
					t.Errorf("500 detail not logged; log:\n%s", r.logs)
				}
			}
		})
	}
}

// TestOrderOfChecks checks that the first failing check answers (API.md §1):
// route, size, path ids, auth, body.
func TestOrderOfChecks(t *testing.T) {
	strictBody := JSON(func(context.Context, *Request, *struct {
		Vendor string `json:"vendor"`
	}) (Response, error) {
		return Response{Status: 200}, nil
	})
	tests := []struct {
		name       string
		req        req
		wantStatus int
		wantField  string
	}{
		{"bad id on unknown route is 404", req{method: "PUT", path: "/v1/apps/demo/users/b%20b/gadgets/x"}, 404, ""},
		{"bad id with wrong method is 405", req{method: "POST", path: "/v1/apps/Demo!/users/bob/devices/x"}, 405, ""},
		{"oversize with bad signature is 413", req{method: "PUT", path: devicePath, body: strings.Repeat(" ", 64<<10+1)}.signed("wrong", fixedUnixTime, ""), 413, ""},
		{"oversize with bad id is 413", req{method: "PUT", path: "/v1/apps/demo/users/b%20b/devices/x", body: strings.Repeat(" ", 64<<10+1)}, 413, ""},
		{"bad id with bad signature is 400", req{method: "PUT", path: "/v1/apps/demo/users/b%20b/devices/x"}.signed("wrong", fixedUnixTime, ""), 400, "user"},
		{"bad app with no signature is 400", req{method: "PUT", path: "/v1/apps/Demo/users/bob/devices/x"}, 400, "app"},
		{"first bad id in path order wins", req{method: "PUT", path: "/v1/apps/demo/users/b%20b/devices/x%20y"}, 400, "user"},
		{"bad auth with bad body is 401", req{method: "PUT", path: devicePath, body: `{"bogus": 1}`}.signed("wrong", fixedUnixTime, ""), 401, ""},
		{"good auth with bad body is 400", req{method: "PUT", path: devicePath, body: `{"bogus": 1}`}.sign(), 400, "bogus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestRouter(t, allHandlers(strictBody))
			resp := r.do(t, tt.req.event())
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d (body %s)", resp.StatusCode, tt.wantStatus, resp.Body)
			}
			if e := errorOf(t, resp.Body); e.Field != tt.wantField {
				t.Errorf("field = %q, want %q", e.Field, tt.wantField)
			}
		})
	}
}

// TestAuth checks API.md §2 case by case. Every failure must answer the very
// same bytes, so a caller learns nothing about which check failed.
func TestAuth(t *testing.T) {
	base := req{method: "PUT", path: devicePath, query: "reason=logout", body: `{"vendor":"apns"}`}
	ts := func(d int64) string { return fmt.Sprint(fixedUnixTime + d) }
	without := func(q req, header string) req {
		h := map[string]string{}
		for k, v := range q.headers {
			if k != header {
				h[k] = v
			}
		}
		q.headers = h
		return q
	}
	tests := []struct {
		name string
		req  req
		ok   bool
	}{
		{"valid", base.sign(), true},
		{"second listed secret", base.signed(demoSecret2, fixedUnixTime, ""), true},
		{"header names in any case", func() req {
			q := base.sign()
			q.headers = map[string]string{
				"X-Push-Timestamp": q.headers["x-push-timestamp"],
				"X-PUSH-NONCE":     q.headers["x-push-nonce"],
				"x-Push-Signature": q.headers["x-push-signature"],
			}
			return q
		}(), true},
		{"timestamp 300 s old", base.signedWith(demoSecret, ts(-300), "nonce-old-300", ""), true},
		{"timestamp 300 s ahead", base.signedWith(demoSecret, ts(300), "nonce-new-300", ""), true},
		{"timestamp 301 s old", base.signedWith(demoSecret, ts(-301), "nonce-old-301", ""), false},
		{"timestamp 301 s ahead", base.signedWith(demoSecret, ts(301), "nonce-new-301", ""), false},
		{"timestamp not decimal", base.signedWith(demoSecret, "0x6AB1", "nonce-hex-ts", ""), false},
		{"timestamp with sign", base.signedWith(demoSecret, "+"+ts(0), "nonce-plus-ts", ""), false},
		{"timestamp in milliseconds", base.signedWith(demoSecret, ts(0)+"000", "nonce-ms-ts", ""), false},
		{"wrong secret", base.signed("not-the-secret", fixedUnixTime, ""), false},
		{"another app's secret", base.signed(otherSecret, fixedUnixTime, ""), false},
		{"unknown app", req{method: "PUT", path: "/v1/apps/ghost/users/bob/devices/phone-1"}.signed(demoSecret, fixedUnixTime, ""), false},
		{"nonce of 8 chars", base.signedWith(demoSecret, ts(0), "abcdefgh", ""), true},
		{"nonce of 64 chars", base.signedWith(demoSecret, ts(0), strings.Repeat("n", 64), ""), true},
		{"nonce of 7 chars", base.signedWith(demoSecret, ts(0), "abcdefg", ""), false},
		{"nonce of 65 chars", base.signedWith(demoSecret, ts(0), strings.Repeat("m", 65), ""), false},
		{"nonce with bad char", base.signedWith(demoSecret, ts(0), "abcd.efgh", ""), false},
		{"missing timestamp", without(base.sign(), "x-push-timestamp"), false},
		{"missing nonce", without(base.sign(), "x-push-nonce"), false},
		{"missing signature", without(base.sign(), "x-push-signature"), false},
		{"upper-case signature", func() req {
			q := base.sign()
			q.headers["x-push-signature"] = strings.ToUpper(q.headers["x-push-signature"])
			return q
		}(), false},
		{"body changed after signing", func() req { q := base.sign(); q.body = `{"vendor":"fcm"}`; return q }(), false},
		{"path changed after signing", func() req {
			q := base.sign()
			q.path = "/v1/apps/demo/users/eve/devices/phone-1"
			return q
		}(), false},
		{"query changed after signing", func() req { q := base.sign(); q.query = "reason=kicked"; return q }(), false},
		{"method changed after signing", func() req { q := base.sign(); q.method = "DELETE"; return q }(), false},
	}
	var failBody string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestRouter(t, allHandlers(echoHandler))
			resp := r.do(t, tt.req.event())
			if tt.ok {
				if resp.StatusCode != 200 {
					t.Fatalf("status = %d, want 200 (body %s)", resp.StatusCode, resp.Body)
				}
				if got := r.nonces.count(); got != 1 {
					t.Errorf("nonces spent = %d, want 1", got)
				}
				return
			}
			if resp.StatusCode != 401 {
				t.Fatalf("status = %d, want 401 (body %s)", resp.StatusCode, resp.Body)
			}
			errorOf(t, resp.Body)
			if failBody == "" {
				failBody = resp.Body
			}
			if resp.Body != failBody {
				t.Errorf("401 body = %s, want byte-identical %s", resp.Body, failBody)
			}
			if got := r.nonces.count(); got != 0 {
				t.Errorf("a failed request spent %d nonces, want 0", got)
			}
			if log := r.logs.String(); !strings.Contains(log, `"cause"`) {
				t.Errorf("log records no cause:\n%s", log)
			}
		})
	}
}

// TestReplay checks that a nonce is spent once the signature verifies,
// whatever the outcome of the request, and refused after.
func TestReplay(t *testing.T) {
	r := newTestRouter(t, allHandlers(func(context.Context, *Request) (Response, error) {
		return Response{}, push.Invalid("vendor", "unknown vendor")
	}))
	ev := req{method: "PUT", path: devicePath, body: `{}`}.sign().event()
	if got := r.do(t, ev).StatusCode; got != 400 {
		t.Fatalf("first request status = %d, want 400 from the handler", got)
	}
	resp := r.do(t, ev)
	if resp.StatusCode != 401 {
		t.Fatalf("replay status = %d, want 401", resp.StatusCode)
	}
	if e := errorOf(t, resp.Body); e.Message != unauthenticatedMessage {
		t.Errorf("replay message = %q, want the one auth message", e.Message)
	}
	if !strings.Contains(r.logs.String(), "replayed nonce") {
		t.Errorf("log does not name the replay:\n%s", r.logs)
	}
	// The same nonce is still free for another app.
	other := req{method: "PUT", path: "/v1/apps/other/users/bob/devices/phone-1", body: `{}`}.
		signedWith(otherSecret, fmt.Sprint(fixedUnixTime), ev.Headers["x-push-nonce"], "")
	if got := r.do(t, other.event()).StatusCode; got != 400 {
		t.Errorf("same nonce on another app: status = %d, want 400 from the handler", got)
	}
}

// TestAuthDependencyFailure checks that a secrets outage is a 500, not a 401
// that would tell a caller its good secret is wrong.
func TestAuthDependencyFailure(t *testing.T) {
	r := New(Config{
		Handlers: allHandlers(echoHandler),
		Verifier: NewVerifier(brokenSecrets{}, newOnceNonces()),
		Log:      discardLog(),
		Now:      func() time.Time { return testNow },
	})
	resp, _ := r.Lambda(context.Background(), req{method: "GET", path: "/v1/apps/demo/users/bob/devices"}.sign().event())
	if resp.StatusCode != 500 {
		t.Fatalf("status = %d, want 500", resp.StatusCode)
	}
}

// TestNoVerifier checks that a router built without a Verifier fails closed.
func TestNoVerifier(t *testing.T) {
	r := New(Config{Handlers: allHandlers(echoHandler), Log: discardLog()})
	resp, _ := r.Lambda(context.Background(), req{method: "GET", path: "/v1/apps/demo/users/bob/devices"}.event())
	if resp.StatusCode != 500 {
		t.Fatalf("status = %d, want 500", resp.StatusCode)
	}
	resp, _ = r.Lambda(context.Background(), req{method: "GET", path: "/v1/health"}.event())
	if resp.StatusCode != 200 {
		t.Fatalf("public route status = %d, want 200", resp.StatusCode)
	}
}

// TestRouting checks matching, stage prefixes, percent-decoding and the
// conversation {type} set.
func TestRouting(t *testing.T) {
	tests := []struct {
		name       string
		req        req
		wantStatus int
		wantRoute  string
		wantParams map[string]string
		wantAllow  string
	}{
		{name: "health without auth", req: req{method: "GET", path: "/v1/health"}, wantStatus: 200,
			wantRoute: "Health"},
		{name: "devices", req: req{method: "GET", path: "/v1/apps/demo/users/bob/devices"}.sign(), wantStatus: 200,
			wantRoute: "ListDevices", wantParams: map[string]string{"app": "demo", "user": "bob"}},
		{name: "lower-case method", req: req{method: "get", path: "/v1/health"}, wantStatus: 200, wantRoute: "Health"},
		{name: "named stage stripped", req: req{method: "GET", path: "/prod/v1/apps/demo/users/bob/devices", stage: "prod"}.
			signed(demoSecret, fixedUnixTime, "/v1/apps/demo/users/bob/devices"), wantStatus: 200,
			wantRoute: "ListDevices", wantParams: map[string]string{"app": "demo", "user": "bob"}},
		{name: "named stage signed with prefix fails", req: req{method: "GET", path: "/prod/v1/apps/demo/users/bob/devices", stage: "prod"}.
			sign(), wantStatus: 401},
		{name: "stage not in path", req: req{method: "GET", path: "/v1/health", stage: "prod"}, wantStatus: 200, wantRoute: "Health"},
		{name: "$default stage kept", req: req{method: "GET", path: "/$default/v1/health"}, wantStatus: 404},
		{name: "percent-encoded id", req: req{method: "GET", path: "/v1/apps/demo/users/a%40b.c/devices"}.sign(), wantStatus: 200,
			wantRoute: "ListDevices", wantParams: map[string]string{"app": "demo", "user": "a@b.c"}},
		{name: "percent-encoded literal", req: req{method: "GET", path: "/v1/%68ealth"}, wantStatus: 200, wantRoute: "Health"},
		{name: "encoded slash is not a separator", req: req{method: "GET", path: "/v1/apps/demo/users/a%2Fb/devices"}.sign(), wantStatus: 400},
		{name: "bad escape", req: req{method: "GET", path: "/v1/apps/demo/users/a%zzb/devices"}.sign(), wantStatus: 400},
		{name: "conversation type group", req: req{method: "GET", path: "/v1/apps/demo/users/bob/conversations/group/g1/settings"}.sign(),
			wantStatus: 200, wantRoute: "GetConversationSettings",
			wantParams: map[string]string{"app": "demo", "user": "bob", "type": "group", "conversation": "g1"}},
		{name: "conversation type outside the set", req: req{method: "GET", path: "/v1/apps/demo/users/bob/conversations/channel/g1/settings"}.sign(),
			wantStatus: 404},
		{name: "batch-get is not a type", req: req{method: "POST", path: "/v1/apps/demo/users/bob/conversations/batch-get", body: `{}`}.sign(),
			wantStatus: 200, wantRoute: "BatchGetConversationSettings", wantParams: map[string]string{"app": "demo", "user": "bob"}},
		{name: "trailing slash", req: req{method: "GET", path: "/v1/health/"}, wantStatus: 404},
		{name: "relative path", req: req{method: "GET", path: "v1/health"}, wantStatus: 404},
		{name: "empty path", req: req{method: "GET", path: ""}, wantStatus: 404},
		{name: "405 lists every method", req: req{method: "POST", path: "/v1/apps/demo/users/bob/conversations/peer/alice/settings"},
			wantStatus: 405, wantAllow: "DELETE, GET, PATCH"},
		{name: "405 on devices", req: req{method: "POST", path: devicePath}, wantStatus: 405, wantAllow: "DELETE, PUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestRouter(t, allHandlers(echoHandler))
			resp := r.do(t, tt.req.event())
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d (body %s)", resp.StatusCode, tt.wantStatus, resp.Body)
			}
			if got := resp.Headers["Allow"]; got != tt.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tt.wantAllow)
			}
			if tt.wantStatus != 200 {
				errorOf(t, resp.Body)
				return
			}
			var got struct {
				Route  string            `json:"route"`
				Params map[string]string `json:"params"`
			}
			if err := json.Unmarshal([]byte(resp.Body), &got); err != nil {
				t.Fatal(err)
			}
			if got.Route != tt.wantRoute {
				t.Errorf("route = %q, want %q", got.Route, tt.wantRoute)
			}
			if diff := cmp.Diff(tt.wantParams, got.Params); diff != "" {
				t.Errorf("params (-want +got):\n%s", diff)
			}
		})
	}
}

// TestOtherFunctionsRoute checks that a known route this router has no
// handler for answers 404: it belongs to another function.
func TestOtherFunctionsRoute(t *testing.T) {
	r := newTestRouter(t, map[string]HandlerFunc{"Health": echoHandler})
	resp := r.do(t, req{method: "GET", path: "/v1/apps/demo/users/bob/settings"}.sign().event())
	if resp.StatusCode != 404 {
		t.Fatalf("status = %d, want 404", resp.StatusCode)
	}
	if e := errorOf(t, resp.Body); e.Code != "not_found" {
		t.Errorf("code = %q, want not_found", e.Code)
	}
}

// TestBodyLimits checks 413 at each route's limit, measured on the decoded
// body, base64 included.
func TestBodyLimits(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		path       string
		size       int
		base64     bool
		wantStatus int
	}{
		{"64 KiB exactly", "PUT", devicePath, 64 << 10, false, 200},
		{"64 KiB + 1", "PUT", devicePath, 64<<10 + 1, false, 413},
		{"batch 256 KiB exactly", "POST", "/v1/apps/demo/presence/batch", 256 << 10, false, 200},
		{"batch 256 KiB + 1", "POST", "/v1/apps/demo/presence/batch", 256<<10 + 1, false, 413},
		{"base64 decoded under the limit", "PUT", devicePath, 64 << 10, true, 200},
		{"base64 decoded over the limit", "PUT", devicePath, 64<<10 + 1, true, 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestRouter(t, allHandlers(func(_ context.Context, r *Request) (Response, error) {
				return Response{Status: 200, Body: map[string]int{"len": len(r.Body)}}, nil
			}))
			body := strings.Repeat("x", tt.size)
			q := req{method: tt.method, path: tt.path, body: body}.sign()
			ev := q.event()
			if tt.base64 {
				ev.Body = base64.StdEncoding.EncodeToString([]byte(body))
				ev.IsBase64Encoded = true
			}
			resp := r.do(t, ev)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if tt.wantStatus == 200 {
				if want := fmt.Sprintf(`{"len":%d}`, tt.size); resp.Body != want {
					t.Errorf("body = %s, want %s", resp.Body, want)
				}
			}
		})
	}
	t.Run("bad base64", func(t *testing.T) {
		r := newTestRouter(t, allHandlers(echoHandler))
		ev := req{method: "PUT", path: devicePath}.sign().event()
		ev.Body, ev.IsBase64Encoded = "!!!", true
		if got := r.do(t, ev).StatusCode; got != 400 {
			t.Errorf("status = %d, want 400", got)
		}
	})
}

// TestResponses checks how handler answers are encoded.
func TestResponses(t *testing.T) {
	tests := []struct {
		name       string
		res        Response
		wantStatus int
		wantBody   string
	}{
		{"nil body sends none", Response{Status: 204}, 204, ""},
		{"zero status is 200", Response{Body: map[string]int{"n": 1}}, 200, `{"n":1}`},
		{"no HTML escaping", Response{Status: 202, Body: map[string]string{"t": "<a&b>"}}, 202, `{"t":"<a&b>"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := tt.res
			r := newTestRouter(t, allHandlers(func(context.Context, *Request) (Response, error) { return res, nil }))
			resp := r.do(t, req{method: "GET", path: "/v1/health"}.event())
			if resp.StatusCode != tt.wantStatus || resp.Body != tt.wantBody {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, resp.Body, tt.wantStatus, tt.wantBody)
			}
		})
	}
	t.Run("unencodable body is a 500", func(t *testing.T) {
		r := newTestRouter(t, allHandlers(func(context.Context, *Request) (Response, error) {
			return Response{Body: map[string]any{"f": func() {}}}, nil
		}))
		if got := r.do(t, req{method: "GET", path: "/v1/health"}.event()).StatusCode; got != 500 {
			t.Errorf("status = %d, want 500", got)
		}
	})
}

// TestPanicRecovered checks that a panicking handler answers 500 and the
// router returns normally.
func TestPanicRecovered(t *testing.T) {
	r := newTestRouter(t, allHandlers(func(context.Context, *Request) (Response, error) {
		var m map[string]int
		m["x"] = 1
		return Response{}, nil
	}))
	resp := r.do(t, req{method: "GET", path: "/v1/health"}.event())
	if resp.StatusCode != 500 {
		t.Fatalf("status = %d, want 500", resp.StatusCode)
	}
	if e := errorOf(t, resp.Body); e.Code != "internal" {
		t.Errorf("code = %q, want internal", e.Code)
	}
	if !strings.Contains(r.logs.String(), "handler panicked") {
		t.Errorf("panic not logged:\n%s", r.logs)
	}
}

// TestRequestPassedOn checks what the handler receives.
func TestRequestPassedOn(t *testing.T) {
	var got *Request
	r := newTestRouter(t, allHandlers(func(_ context.Context, r *Request) (Response, error) {
		got = r
		return Response{Status: 204}, nil
	}))
	ev := req{method: "DELETE", path: devicePath, query: "reason=kicked&x=a%20b"}.sign().event()
	r.do(t, ev)
	if got == nil {
		t.Fatal("handler not called")
	}
	if got.App != "demo" || got.Route.Name != "DeleteDevice" || got.RequestID != "req-1" || !got.Now.Equal(testNow) {
		t.Errorf("request = app %q route %q id %q now %v", got.App, got.Route.Name, got.RequestID, got.Now)
	}
	if got.Query.Get("reason") != "kicked" || got.Query.Get("x") != "a b" {
		t.Errorf("query = %v", got.Query)
	}
	if got.Header.Get("Content-Type") != "application/json" {
		t.Errorf("header = %v", got.Header)
	}

	t.Run("generated request id", func(t *testing.T) {
		ev := req{method: "GET", path: "/v1/health"}.event()
		ev.RequestContext.RequestID = ""
		r.do(t, ev)
		if len(got.RequestID) != 32 {
			t.Errorf("generated request id = %q, want 32 hex chars", got.RequestID)
		}
	})
}

// TestAccessLog checks the one access line per request: its fields, and the
// absence of the body and of auth header values.
func TestAccessLog(t *testing.T) {
	r := newTestRouter(t, allHandlers(func(context.Context, *Request) (Response, error) {
		return Response{Status: 200, Body: map[string]bool{"ok": true}}, nil
	}))
	q := req{method: "PUT", path: devicePath, body: `{"token":"SECRET-TOKEN-abcdef"}`}.sign()
	r.do(t, q.event())
	var lines []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(r.logs.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 1 {
		t.Fatalf("got %d log lines, want 1:\n%s", len(lines), r.logs)
	}
	l := lines[0]
	want := map[string]any{"method": "PUT", "route": "PutDevice", "status": float64(200), "app": "demo", "requestId": "req-1"}
	for k, v := range want {
		if l[k] != v {
			t.Errorf("log %s = %v, want %v", k, l[k], v)
		}
	}
	if _, ok := l["durationMs"].(float64); !ok {
		t.Errorf("log durationMs = %v, want a number", l["durationMs"])
	}
	for _, secret := range []string{"SECRET-TOKEN", q.headers["x-push-signature"], q.headers["x-push-nonce"], demoSecret} {
		if strings.Contains(r.logs.String(), secret) {
			t.Errorf("log contains %q:\n%s", secret, r.logs)
		}
	}
}
