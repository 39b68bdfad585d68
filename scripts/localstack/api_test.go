package main

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/google/go-cmp/cmp"

	"github.com/offline-push/offline-push/shared/app"
	"github.com/offline-push/offline-push/shared/cfn"
)

// recorder is an HTTP function that keeps the event it got and answers with
// a fixed response.
type recorder struct {
	got    events.APIGatewayV2HTTPRequest
	reqID  string
	answer events.APIGatewayV2HTTPResponse
	err    error
	panic  bool
}

func (r *recorder) handle(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	r.got = ev
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		r.reqID = lc.AwsRequestID
	}
	if r.panic {
		panic("boom")
	}
	return r.answer, r.err
}

// testAPI serves a stack of one function, "Fn", on an httptest server.
func testAPI(t *testing.T, routes []string, h app.HTTPHandler) *httptest.Server {
	t.Helper()
	st := &cfn.Stack{Name: "s", Region: "us-east-1", AccountID: "123456789012", Functions: map[string]cfn.Function{
		"Fn":    {LogicalID: "Fn", HTTPRoutes: routes, Timeout: 5 * time.Second},
		"Other": {LogicalID: "Other", HTTPRoutes: []string{"GET /other"}, Timeout: 5 * time.Second},
	}}
	rt, err := newRouteTable(st)
	if err != nil {
		t.Fatal(err)
	}
	a := &apiServer{
		log: slog.New(slog.NewJSONHandler(io.Discard, nil)), stack: st, routes: rt,
		handlers: map[string]app.HTTPHandler{"Fn": h},
	}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return srv
}

func TestServeTranslatesRequestAndResponse(t *testing.T) {
	rec := &recorder{answer: events.APIGatewayV2HTTPResponse{
		StatusCode:        201,
		Headers:           map[string]string{"Content-Type": "application/octet-stream"},
		MultiValueHeaders: map[string][]string{"X-Multi": {"a", "b"}},
		Cookies:           []string{"c1=v1", "c2=v2"},
		Body:              base64.StdEncoding.EncodeToString([]byte{0xff, 0x00, 0x01}),
		IsBase64Encoded:   true,
	}}
	srv := testAPI(t, []string{"PUT /v1/apps/{app}/users/{user}"}, rec.handle)

	body := []byte{0xfe, 0xff, 'x'} // not UTF-8: must arrive base64-encoded
	req, err := http.NewRequest("PUT", srv.URL+"/v1/apps/demo/users/a%40b?x=1&x=2&y=%20", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Push-Nonce", "n1")
	req.Header.Add("X-Dup", "1")
	req.Header.Add("X-Dup", "2")
	req.Header.Set("Cookie", "k1=v1; k2=v2")
	req.Header.Set("User-Agent", "test-agent")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	gotBody, _ := io.ReadAll(resp.Body)

	ev := rec.got
	want := events.APIGatewayV2HTTPRequest{
		Version:               "2.0",
		RouteKey:              "PUT /v1/apps/{app}/users/{user}",
		RawPath:               "/v1/apps/demo/users/a%40b",
		RawQueryString:        "x=1&x=2&y=%20",
		Cookies:               []string{"k1=v1", "k2=v2"},
		QueryStringParameters: map[string]string{"x": "1,2", "y": " "},
		PathParameters:        map[string]string{"app": "demo", "user": "a@b"},
		Body:                  base64.StdEncoding.EncodeToString(body),
		IsBase64Encoded:       true,
	}
	ignore := cmp.FilterPath(func(p cmp.Path) bool {
		s := p.String()
		return s == "Headers" || s == "RequestContext"
	}, cmp.Ignore())
	if diff := cmp.Diff(want, ev, ignore); diff != "" {
		t.Errorf("event (-want +got):\n%s", diff)
	}
	for k, v := range map[string]string{"x-push-nonce": "n1", "x-dup": "1,2", "user-agent": "test-agent", "x-forwarded-proto": "http"} {
		if ev.Headers[k] != v {
			t.Errorf("header %s = %q, want %q (headers %v)", k, ev.Headers[k], v, ev.Headers)
		}
	}
	if _, ok := ev.Headers["cookie"]; ok {
		t.Errorf("the cookie header must move to cookies, headers = %v", ev.Headers)
	}
	if ev.Headers["host"] == "" {
		t.Error("no host header")
	}
	rc := ev.RequestContext
	if rc.Stage != "$default" || rc.HTTP.Method != "PUT" || rc.HTTP.Path != ev.RawPath || rc.RouteKey != ev.RouteKey ||
		rc.RequestID == "" || rc.RequestID != rec.reqID || rc.TimeEpoch == 0 || rc.HTTP.SourceIP != "127.0.0.1" {
		t.Errorf("requestContext = %+v (lambda request id %q)", rc, rec.reqID)
	}
	if _, err := time.Parse("02/Jan/2006:15:04:05 -0700", rc.Time); err != nil {
		t.Errorf("requestContext.time %q: %v", rc.Time, err)
	}

	if resp.StatusCode != 201 || string(gotBody) != "\xff\x00\x01" {
		t.Errorf("response %d %q, want 201 with the decoded body", resp.StatusCode, gotBody)
	}
	if diff := cmp.Diff([]string{"a", "b"}, resp.Header.Values("X-Multi")); diff != "" {
		t.Errorf("X-Multi (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"c1=v1", "c2=v2"}, resp.Header.Values("Set-Cookie")); diff != "" {
		t.Errorf("Set-Cookie (-want +got):\n%s", diff)
	}
	if got := resp.Header.Get("Content-Type"); got != "application/octet-stream" {
		t.Errorf("Content-Type = %q", got)
	}
}

func TestServeTextBody(t *testing.T) {
	rec := &recorder{answer: events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: `{"ok":true}`}}
	srv := testAPI(t, []string{"POST /t"}, rec.handle)
	resp, err := http.Post(srv.URL+"/t", "application/json", strings.NewReader(`{"text":"héllo"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if rec.got.IsBase64Encoded || rec.got.Body != `{"text":"héllo"}` {
		t.Errorf("event body %q (base64 %v), want the UTF-8 text as is", rec.got.Body, rec.got.IsBase64Encoded)
	}
	if resp.StatusCode != 200 || string(got) != `{"ok":true}` {
		t.Errorf("response %d %q", resp.StatusCode, got)
	}
}

// TestServeGatewayAnswers covers the answers API Gateway gives itself.
func TestServeGatewayAnswers(t *testing.T) {
	for _, tc := range []struct {
		name       string
		routes     []string
		rec        *recorder
		method     string
		path, body string
		wantStatus int
		wantBody   string
	}{
		{"no route and no $default", []string{"GET /t"}, &recorder{}, "GET", "/nothing", "", 404, `{"message":"Not Found"}`},
		{"$default takes the rest", []string{"$default"}, &recorder{answer: events.APIGatewayV2HTTPResponse{StatusCode: 405}}, "GET", "/nothing", "", 405, ""},
		{"function error", []string{"GET /t"}, &recorder{err: errors.New("secret detail")}, "GET", "/t", "", 500, `{"message":"Internal Server Error"}`},
		{"function panic", []string{"GET /t"}, &recorder{panic: true}, "GET", "/t", "", 500, `{"message":"Internal Server Error"}`},
		{"bad status", []string{"GET /t"}, &recorder{answer: events.APIGatewayV2HTTPResponse{StatusCode: 42}}, "GET", "/t", "", 500, `{"message":"Internal Server Error"}`},
		{"bad base64", []string{"GET /t"}, &recorder{answer: events.APIGatewayV2HTTPResponse{Body: "%%", IsBase64Encoded: true}}, "GET", "/t", "", 500, `{"message":"Internal Server Error"}`},
		{"status 0 is 200", []string{"GET /t"}, &recorder{answer: events.APIGatewayV2HTTPResponse{Body: "hi"}}, "GET", "/t", "", 200, "hi"},
		{"unregistered function", []string{"GET /t"}, &recorder{}, "GET", "/other", "", 501, `{"message":"Other is not registered in app.HTTPFunctions"}`},
		{"payload over 10 MB", []string{"POST /t"}, &recorder{}, "POST", "/t", strings.Repeat("x", maxPayload+1), 413, `{"message":"Request Entity Too Large"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testAPI(t, tc.routes, tc.rec.handle)
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus || strings.TrimSpace(string(got)) != tc.wantBody {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, got, tc.wantStatus, tc.wantBody)
			}
		})
	}
}

func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		expr    string
		want    time.Duration
		wantErr bool
	}{
		{"rate(1 minute)", time.Minute, false},
		{"rate(5 minutes)", 5 * time.Minute, false},
		{"rate(2 seconds)", 2 * time.Second, false},
		{"rate(1 hour)", time.Hour, false},
		{"rate(3 days)", 72 * time.Hour, false},
		{"rate( 10 minutes )", 10 * time.Minute, false},
		{"rate(0 minutes)", 0, true},
		{"rate(1 week)", 0, true},
		{"cron(0 12 * * ? *)", 0, true},
		{"every minute", 0, true},
	} {
		got, err := parseRate(tc.expr)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("parseRate(%q) = %v, %v; want %v, error %v", tc.expr, got, err, tc.want, tc.wantErr)
		}
	}
}
