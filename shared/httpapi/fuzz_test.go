package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"

	"github.com/offline-push/offline-push/shared/push"
)

// documentedStatus maps each status the API may answer to the error code it
// carries (API.md §1); success statuses carry none.
var documentedStatus = map[int]string{
	200: "", 202: "", 204: "",
	400: "", // invalid_argument or unknown_cert
	401: CodeUnauthenticated,
	404: CodeNotFound,
	405: CodeMethodNotAllowed,
	409: CodeConflict,
	413: CodePayloadTooLarge,
	500: CodeInternal,
}

// fuzzBody is a small request shape with nesting, so fuzzed bodies reach
// every part of the strict decoder.
type fuzzBody struct {
	Vendor  string            `json:"vendor"`
	Epoch   *int64            `json:"epoch"`
	Badge   uint8             `json:"badge"`
	Flags   map[string]bool   `json:"flags"`
	Updates []probeUpdate     `json:"updates"`
	DND     *probeDND         `json:"dnd"`
	Payload map[string]string `json:"payload"`
	Raw     json.RawMessage   `json:"raw"`
}

// fuzzHandlers decode a body on the routes that take one and echo otherwise.
func fuzzHandlers() map[string]HandlerFunc {
	withBody := JSON(func(_ context.Context, _ *Request, in *fuzzBody) (Response, error) {
		return Response{Status: 200, Body: in}, nil
	})
	m := map[string]HandlerFunc{}
	for _, r := range Routes {
		switch r.Method {
		case "PUT", "POST", "PATCH":
			m[r.Name] = withBody
		default:
			m[r.Name] = echoHandler
		}
	}
	return m
}

func parseHeaders(s string) map[string]string {
	h := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			h[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return h
}

func formatHeaders(h map[string]string) string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %s\n", k, h[k])
	}
	return b.String()
}

// sampleEvent is one layout of a file under events/ at the repository root;
// the other is the bare event.
type sampleEvent struct {
	ExpectStatus int             `json:"expectStatus"`
	Event        json.RawMessage `json:"event"`
}

// sampleHTTPEvents returns the API Gateway events under events/, skipping
// files of other kinds; none when the folder does not exist.
func sampleHTTPEvents(t testing.TB) []events.APIGatewayV2HTTPRequest {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Logf("no repository root: %v", err)
		return nil
	}
	var out []events.APIGatewayV2HTTPRequest
	err = filepath.WalkDir(filepath.Join(root, "events"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if d.IsDir() || !strings.HasSuffix(path, ".json") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		// A file is either a bare event or {"expectStatus", "event"}.
		var s sampleEvent
		if json.Unmarshal(b, &s) == nil && len(s.Event) > 0 {
			b = s.Event
		}
		var ev events.APIGatewayV2HTTPRequest
		if json.Unmarshal(b, &ev) != nil || ev.RequestContext.HTTP.Method == "" {
			return nil // not an HTTP API event (expect.json, a schedule event, …)
		}
		out = append(out, ev)
		return nil
	})
	if err != nil {
		t.Fatalf("read events: %v", err)
	}
	return out
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// FuzzRouter runs arbitrary requests through the whole router. It must never
// panic or return an error, must answer only documented statuses, and every
// answer from 400 up must be exactly the API.md error shape with the code of
// its status.
func FuzzRouter(f *testing.F) {
	seeds := []struct {
		method, path, query, headers string
		body                         []byte
		sign                         bool
	}{
		{"GET", "/v1/health", "", "", nil, false},
		{"PUT", devicePath, "", "", []byte(`{"vendor":"apns","token":"ab"}`), true},
		{"PUT", devicePath, "", "", []byte(`{"vendor":"apns","bogus":{"x":1}}`), true},
		{"PUT", devicePath, "", "", []byte(`{"updates":[{"epoch":-1},{"badge":300}]}`), true},
		{"PATCH", "/v1/apps/demo/users/bob/settings", "", "", []byte(`{"dnd":{"window":{"start":"22:00","x":1}}}`), true},
		{"DELETE", devicePath, "reason=logout", "", nil, true},
		{"DELETE", devicePath, "reason=%zz", "", nil, true},
		{"GET", "/v1/apps/demo/users/bob/conversations/group/g%401/settings", "", "", nil, true},
		{"GET", "/v1/apps/demo/users/bob/conversations/chan/g1/settings", "", "", nil, true},
		{"POST", devicePath, "", "", nil, false},
		{"PUT", "/v1/apps/DEMO/users/bob/devices/x", "", "", nil, false},
		{"PUT", devicePath, "", "x-push-timestamp: 1\nx-push-nonce: short\nx-push-signature: zz\n", []byte("{}"), false},
		{"PUT", devicePath, "", "", []byte("{\"vendor\":\"\xff\"}"), true},
		{"PUT", devicePath, "", "", []byte(`{} trailing`), true},
		{"", "", "", "", nil, false},
		{"GET", "//v1//health", "", "", nil, false},
		{"GET", "/v1/health/%", "", "", nil, false},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.query, s.headers, s.body, s.sign)
	}
	for _, ev := range sampleHTTPEvents(f) {
		body := []byte(ev.Body)
		if ev.IsBase64Encoded {
			if b, err := base64.StdEncoding.DecodeString(ev.Body); err == nil {
				body = b
			}
		}
		path := stripStage(ev.RawPath, ev.RequestContext.Stage)
		f.Add(ev.RequestContext.HTTP.Method, path, ev.RawQueryString, formatHeaders(ev.Headers), body, false)
		f.Add(ev.RequestContext.HTTP.Method, path, ev.RawQueryString, formatHeaders(ev.Headers), body, true)
	}
	f.Fuzz(func(t *testing.T, method, path, query, headers string, body []byte, sign bool) {
		r := New(Config{
			Handlers: fuzzHandlers(),
			Verifier: NewVerifier(testSecrets(), newOnceNonces()),
			Log:      discardLog(),
			Now:      func() time.Time { return testNow },
		})
		q := req{method: method, path: path, query: query, body: string(body), headers: parseHeaders(headers)}
		if sign {
			q = q.signedWith(demoSecret, strconv.Itoa(fixedUnixTime), "fuzz-nonce", "")
		}
		resp, err := r.Lambda(context.Background(), q.event())
		if err != nil {
			t.Fatalf("Lambda returned error %v", err)
		}
		code, ok := documentedStatus[resp.StatusCode]
		if !ok {
			t.Fatalf("undocumented status %d (body %s)", resp.StatusCode, resp.Body)
		}
		if resp.StatusCode == 500 {
			t.Fatalf("500 with working dependencies and a trivial handler: %s", resp.Body)
		}
		if resp.StatusCode < 400 {
			return
		}
		dec := json.NewDecoder(bytes.NewReader([]byte(resp.Body)))
		dec.DisallowUnknownFields()
		var eb ErrorBody
		if err := dec.Decode(&eb); err != nil || eb.Error.Message == "" {
			t.Fatalf("status %d body %q is not the error shape: %v", resp.StatusCode, resp.Body, err)
		}
		if code != "" && eb.Error.Code != code {
			t.Fatalf("status %d has code %q, want %q", resp.StatusCode, eb.Error.Code, code)
		}
		if resp.StatusCode == 400 && eb.Error.Code != CodeInvalidArgument && eb.Error.Code != CodeUnknownCert {
			t.Fatalf("400 has code %q", eb.Error.Code)
		}
		if resp.StatusCode == 405 && resp.Headers["Allow"] == "" {
			t.Fatal("405 without Allow")
		}
	})
}

// FuzzVerify checks the signature check with arbitrary inputs: it never
// panics, a request signed with the app's secret always verifies, and one
// signed with any other secret never does.
func FuzzVerify(f *testing.F) {
	f.Add("s3cret", "PUT", devicePath, "a=b", int64(0), "nonce-123", []byte(`{}`), "00")
	f.Add("", "get", "/v1/apps/demo/users/%41/devices", "", int64(300), "n", []byte(nil), strings.Repeat("a", 64))
	f.Add("k", "POST", "/", "x=\n", int64(-300), strings.Repeat("z", 80), []byte("\xff\x00"), "")
	f.Add("k", "PATCH", "/v1", "", int64(301), "abcdefgh", []byte("body"), strings.Repeat("A", 64))
	for _, ev := range sampleHTTPEvents(f) {
		f.Add("secret", ev.RequestContext.HTTP.Method, ev.RawPath, ev.RawQueryString, int64(0),
			ev.Headers["x-push-nonce"], []byte(ev.Body), ev.Headers["x-push-signature"])
	}
	f.Fuzz(func(t *testing.T, secret, method, path, query string, offset int64, nonce string, body []byte, sig string) {
		secret = "k" + secret // an empty secret is a configuration error, refused upstream
		ctx := context.Background()
		v := NewVerifier(fixedSecrets{"demo": {"unrelated", secret}}, newOnceNonces())
		ts := strconv.FormatInt(fixedUnixTime+offset, 10)

		// Arbitrary headers: no panic, and success only when they are right.
		in := SignedRequest{App: "demo", Method: method, RawPath: path, RawQuery: query,
			Timestamp: ts, Nonce: nonce, Signature: sig, Body: body}
		err := v.Verify(ctx, in, testNow)
		if err == nil {
			if sig != Sign(secret, method, path, query, ts, nonce, body) && sig != Sign("unrelated", method, path, query, ts, nonce, body) {
				t.Fatal("verified a signature that no listed secret made")
			}
			if !validNonce(nonce) || offset > 300 || offset < -300 {
				t.Fatalf("verified with nonce %q and offset %d", nonce, offset)
			}
		} else if !errors.Is(err, push.ErrUnauthenticated) {
			t.Fatalf("Verify error %v does not wrap ErrUnauthenticated", err)
		}

		// Right secret, valid nonce and timestamp: always verifies.
		in.Nonce = saneNonce(nonce)
		in.Timestamp = strconv.FormatInt(fixedUnixTime+max(-300, min(300, offset)), 10)
		in.Signature = Sign(secret, method, path, query, in.Timestamp, in.Nonce, body)
		if err := v.Verify(ctx, in, testNow); err != nil {
			t.Fatalf("correctly signed request refused: %v", err)
		}
		// Another secret never verifies.
		in.Nonce = saneNonce(nonce + "x")
		in.Signature = Sign(secret+"!", method, path, query, in.Timestamp, in.Nonce, body)
		if err := v.Verify(ctx, in, testNow); !errors.Is(err, push.ErrUnauthenticated) {
			t.Fatalf("request signed with another secret: err = %v", err)
		}
	})
}

// saneNonce maps arbitrary text onto a valid, distinct-per-input nonce.
func saneNonce(s string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < 56; i++ {
		b.WriteByte(alphabet[s[i]%64])
	}
	return fmt.Sprintf("%s%08d", b.String(), len(s)%100000000)
}

// FuzzDecode compares the strict decoder with encoding/json's own strict
// mode: Decode may refuse more (case-insensitive names, duplicates), never
// less, and what it accepts decodes to the same value.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"vendor":"apns","epoch":3,"badge":2}`, `{"updates":[{"userId":"a","epoch":1}]}`,
		`{"dnd":{"window":{"start":"1","end":"2"},"durationMs":5}}`, `{"flags":{"a":true}}`,
		`{"payload":{"k":"v"},"raw":[1,{"x":null}]}`, `{"Vendor":"x"}`, `{"epoch":1,"epoch":2}`,
		`{"updates":[{"badge":256}]}`, `{"raw":"\u00e9\\\""}`, `{"flags":{"a":1}}`, `{"vendor":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := Decode[fuzzBody](body)
		if err != nil {
			if !push.IsInvalid(err) {
				t.Fatalf("Decode error %v is not an InvalidArgumentError", err)
			}
			return
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		var want fuzzBody
		if err := dec.Decode(&want); err != nil {
			t.Fatalf("Decode accepted %q, encoding/json refuses it: %v", body, err)
		}
		if _, err := dec.Token(); err == nil {
			t.Fatalf("Decode accepted trailing data in %q", body)
		}
		if diff := cmp.Diff(&want, got); diff != "" {
			t.Fatalf("Decode(%q) differs from encoding/json (-want +got):\n%s", body, diff)
		}
	})
}

// TestSampleEventsRouted runs every sample HTTP event through a router that
// serves every route, so a sample that no longer parses or routes shows here
// too; its exact status is checked by the events package with the real
// handlers.
func TestSampleEventsRouted(t *testing.T) {
	evs := sampleHTTPEvents(t)
	if len(evs) == 0 {
		t.Skip("no sample events under events/")
	}
	t.Logf("%d sample HTTP events", len(evs))
	r := newTestRouter(t, fuzzHandlers())
	for _, ev := range evs {
		resp := r.do(t, ev)
		if _, ok := documentedStatus[resp.StatusCode]; !ok || resp.StatusCode == 500 {
			t.Errorf("%s %s: status %d", ev.RequestContext.HTTP.Method, ev.RawPath, resp.StatusCode)
		}
	}
}
