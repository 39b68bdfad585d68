package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/offline-push/offline-push/shared/cfn"
	"github.com/offline-push/offline-push/shared/httpapi"
	"github.com/offline-push/offline-push/shared/push"
	"github.com/offline-push/offline-push/shared/testenv"
)

// The two tenants of the isolation test. Both hold credentials under the
// same certNames ("ios", "fcm"), and each has one the other lacks, so that
// a certName check that ignored the app would be caught.
const (
	isoA = "app-a"
	isoB = "app-b"
)

// isoAPISecrets are the tenants' API secrets. App B lists two (rotation), so
// that "any listed secret" cannot be stretched to another app's list.
var isoAPISecrets = map[string][]string{
	isoA: {"iso-api-secret-of-app-a-3f9c2e71d4"},
	isoB: {"iso-api-secret-of-app-b-old-80a1c5", "iso-api-secret-of-app-b-new-b72e94"},
}

// isoCerts are each tenant's vendor credentials: certName → vendor.
var isoCerts = map[string]map[string]push.Vendor{
	isoA: {"ios": push.APNs, "fcm": push.FCM, "a-only": push.Huawei},
	isoB: {"ios": push.APNs, "fcm": push.FCM, "b-only": push.APNs},
}

// isoRequest is one request of the isolation test, addressed by route name
// so that it goes through the route table like a caller's request.
type isoRequest struct {
	Route  string
	Params map[string]string // path parameters other than {app}
	Query  string
	Body   string
	Want   int // the status when signed with the path's own app secret
}

// isoValue picks a tenant's own value, so that the two tenants write
// different data under the same ids and a read shows whose data it got.
func isoValue(app, a, b string) string {
	if app == isoA {
		return a
	}
	return b
}

// isoHexToken is a distinct APNs token (64 hex digits) for a name.
func isoHexToken(name string) string {
	sum := sha256.Sum256([]byte("isolation/" + name))
	return hex.EncodeToString(sum[:])
}

// Tokens of the test. isoShared and isoShared3 are registered under both
// tenants with the same user and device ids; the FCM tokens differ per
// tenant, so that a target on a queue shows whose binding it came from.
var (
	isoShared  = isoHexToken("shared-d1")
	isoShared3 = isoHexToken("shared-d3")
)

// isoFCMToken is app's own FCM token of a device: the two tenants' differ.
func isoFCMToken(app, device string) string {
	return "fcm-" + device + "-" + app + "-" + isoHexToken(app + device)[:40]
}

func isoDeviceBody(vendor, token, cert string) string {
	return `{"vendor": "` + vendor + `", "token": "` + token + `", "certName": "` + cert + `"}`
}

// isoMessageText is the text of each tenant's message, scanned for in the
// logs at the end.
func isoMessageText(app string) string { return "isolation text for " + app + " 5d1e0c77a2" }

var (
	isoUser  = map[string]string{"user": "u1"}
	isoGroup = func(id string) map[string]string {
		return map[string]string{"user": "u1", "type": "group", "conversation": id}
	}
	isoDevice = func(device string) map[string]string {
		return map[string]string{"user": "u1", "device": device}
	}
)

// isoSeed is the state each tenant sets up before the per-route checks:
// three devices (one to be deleted), a desktop presence, a badge, app-level
// settings and two conversation settings (one to be deleted).
func isoSeed(app string) []isoRequest {
	return []isoRequest{
		{Route: "PutDevice", Params: isoDevice("d1"), Body: isoDeviceBody("apns", isoShared, "ios"), Want: http.StatusOK},
		{Route: "PutDevice", Params: isoDevice("d2"), Body: isoDeviceBody("fcm", isoFCMToken(app, "d2"), "fcm"), Want: http.StatusOK},
		{Route: "PutDevice", Params: isoDevice("d-gone"), Body: isoDeviceBody("fcm", isoFCMToken(app, "d-gone"), "fcm"), Want: http.StatusOK},
		{Route: "PutPresence", Params: isoDevice("pc1"), Body: `{"state": "online", "platform": "pc", "leaseSeconds": 900, "epoch": 1}`, Want: http.StatusOK},
		{Route: "PutBadge", Params: isoUser, Body: isoValue(app, `{"count": 7}`, `{"count": 8}`), Want: http.StatusOK},
		{Route: "PatchSettings", Params: isoUser, Body: isoValue(app, `{"showPreview": false}`, `{"remindType": "AT", "language": "zh"}`), Want: http.StatusOK},
		{Route: "PatchConversationSettings", Params: isoGroup("g1"), Body: isoValue(app, `{"remindType": "AT"}`, `{"remindType": "NONE"}`), Want: http.StatusOK},
		{Route: "PatchConversationSettings", Params: isoGroup("g-gone"), Body: `{"remindType": "NONE"}`, Want: http.StatusOK},
	}
}

// isoCases holds one request per authenticated route of httpapi.Routes, as
// tenant app sends it. The test fails when a route of the table has no case
// here, so a new route cannot ship without an isolation check.
func isoCases(app string) map[string]isoRequest {
	return map[string]isoRequest{
		"PutDevice":    {Params: isoDevice("d3"), Body: isoDeviceBody("apns", isoShared3, "ios"), Want: http.StatusOK},
		"DeleteDevice": {Params: isoDevice("d-gone"), Query: "reason=logout", Want: http.StatusNoContent},
		"ListDevices":  {Params: isoUser, Want: http.StatusOK},
		"PutPresence":  {Params: isoDevice("pc1"), Body: `{"state": "online", "platform": "pc", "leaseSeconds": 900, "epoch": 2}`, Want: http.StatusOK},
		"PresenceBatch": {
			Body: `{"updates": [{"userId": "u2", "deviceId": "w1", "state": "online", "platform": "web", "leaseSeconds": 900, "epoch": 1}]}`,
			Want: http.StatusOK,
		},
		"PutBadge":    {Params: isoUser, Body: isoValue(app, `{"count": 3}`, `{"count": 4}`), Want: http.StatusOK},
		"GetSettings": {Params: isoUser, Want: http.StatusOK},
		"PatchSettings": {Params: isoUser, Body: isoValue(app, `{"multiDevicePolicy": "any_offline"}`, `{"mobilePushWhenDesktopOnline": false}`),
			Want: http.StatusOK},
		"GetConversationSettings":    {Params: isoGroup("g1"), Want: http.StatusOK},
		"PatchConversationSettings":  {Params: isoGroup("g1"), Body: isoValue(app, `{"remindType": "ALL"}`, `{"remindType": "AT"}`), Want: http.StatusOK},
		"DeleteConversationSettings": {Params: isoGroup("g-gone"), Want: http.StatusNoContent},
		"BatchGetConversationSettings": {Params: isoUser,
			Body: `{"conversations": [{"type": "group", "id": "g1"}, {"type": "group", "id": "g-gone"}]}`, Want: http.StatusOK},
		// The same messageId in both tenants: an idempotency record keyed
		// without the app would answer the second tenant "duplicate".
		"PostMessage": {Body: `{"messageId": "m-iso-1", "type": "message", "sender": {"userId": "u2", "nickname": "U2"},
			"conversation": {"type": "group", "id": "g1"}, "recipients": ["u1"], "mentions": {"userIds": ["u1"]},
			"push": {"content": "` + isoMessageText(app) + `"}}`, Want: http.StatusAccepted},
	}
}

// isoReads are the reads that show a tenant's state: its user's devices,
// settings and conversation settings, and a dry run with explain of a
// message, which shows every decision its state leads to.
func isoReads() []isoRequest {
	return []isoRequest{
		{Route: "ListDevices", Params: isoUser, Want: http.StatusOK},
		{Route: "GetSettings", Params: isoUser, Want: http.StatusOK},
		{Route: "GetConversationSettings", Params: isoGroup("g1"), Want: http.StatusOK},
		{Route: "GetConversationSettings", Params: isoGroup("g-gone"), Want: http.StatusOK},
		{Route: "BatchGetConversationSettings", Params: isoUser,
			Body: `{"conversations": [{"type": "group", "id": "g1"}, {"type": "group", "id": "g-gone"}]}`, Want: http.StatusOK},
		{Route: "PostMessage", Body: `{"messageId": "m-iso-dry", "type": "message", "sender": {"userId": "u2"},
			"conversation": {"type": "group", "id": "g1"}, "recipients": ["u1", "u2"], "push": {"content": "dry"},
			"dryRun": true, "explain": true}`, Want: http.StatusOK},
	}
}

// isoEnv is one emulator with the template's stack, both tenants' secrets,
// and every HTTP function of the route table built by its constructor, as
// Lambda builds it.
type isoEnv struct {
	stack   *cfn.Stack
	db      *dynamodb.Client
	sq      *sqs.Client
	api     *apiClient
	logs    *scanBuffer
	scanner *leakScanner
}

func newIsoEnv(t *testing.T) *isoEnv {
	t.Helper()
	ctx := context.Background()
	srv := testenv.Moto(t)
	stack := testenv.Stack(t, srv.Endpoint)
	cfg := testenv.AWSConfig(srv.Endpoint)
	e := &isoEnv{
		stack:   stack,
		db:      dynamodb.NewFromConfig(cfg),
		sq:      sqs.NewFromConfig(cfg),
		logs:    &scanBuffer{},
		scanner: &leakScanner{},
	}
	prefix := stack.Parameters["SecretPrefix"]
	sm := secretsmanager.NewFromConfig(cfg)
	for app, secrets := range isoAPISecrets {
		e.scanner.add("API secret of "+app, secrets...)
		body, _ := json.Marshal(map[string][]string{"apiSecrets": secrets})
		if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
			Name: aws.String(prefix + "/" + app + "/api"), SecretString: aws.String(string(body)),
		}); err != nil {
			t.Fatalf("CreateSecret %s/api: %v", app, err)
		}
		for cert, v := range isoCerts[app] {
			secret := "vendor-secret-" + app + "-" + cert + "-" + isoHexToken(app + cert)[:24]
			e.scanner.add("vendor secret "+app+"/"+cert, secret)
			body, _ := json.Marshal(map[string]string{"vendor": string(v), "appSecret": secret})
			if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
				Name:         aws.String(prefix + "/" + app + "/vendors/" + cert),
				SecretString: aws.String(string(body)),
				Tags:         []smtypes.Tag{{Key: aws.String("vendor"), Value: aws.String(string(v))}},
			}); err != nil {
				t.Fatalf("CreateSecret %s/vendors/%s: %v", app, cert, err)
			}
		}
	}
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.api = newAPIClient(t, srv.Endpoint, stack, func(string) *slog.Logger { return log })
	return e
}

// apiClient sends requests through the route table: each goes to the HTTP
// function that its route names, built by that function's constructor
// exactly as Lambda builds it, as an API Gateway event.
type apiClient struct {
	handlers map[string]HTTPHandler // by httpapi.Route.Function
	routes   map[string]httpapi.Route
	run      string // distinguishes this run's nonces
	nonce    atomic.Int64
}

// apiFunctionID is the template's logical id of the function serving a
// route: "devices" → DevicesFunction.
func apiFunctionID(function string) string {
	return strings.ToUpper(function[:1]) + function[1:] + "Function"
}

// newAPIClient builds every function that serves a route of httpapi.Routes
// with the template's environment for it, each with the logger logFor
// returns for its logical id.
func newAPIClient(t *testing.T, endpoint string, stack *cfn.Stack, logFor func(functionID string) *slog.Logger) *apiClient {
	t.Helper()
	c := &apiClient{
		handlers: map[string]HTTPHandler{},
		routes:   map[string]httpapi.Route{},
		run:      strconv.FormatInt(time.Now().UnixNano(), 36),
	}
	for _, r := range httpapi.Routes {
		c.routes[r.Name] = r
		if _, ok := c.handlers[r.Function]; ok {
			continue
		}
		id := apiFunctionID(r.Function)
		build, ok := HTTPFunctions[id]
		if !ok {
			t.Fatalf("route %s is served by %s, which app.HTTPFunctions lacks", r.Name, id)
		}
		env := stack.FunctionEnv(id)
		if env == nil {
			t.Fatalf("route %s is served by %s, which template.yaml lacks", r.Name, id)
		}
		h, err := build(context.Background(), testenv.Env(endpoint, env), logFor(id))
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		c.handlers[r.Function] = h
	}
	return c
}

// path fills the route's pattern for app; it fails the test when params
// lacks a parameter the pattern needs.
func (c *apiClient) path(t *testing.T, route httpapi.Route, app string, params map[string]string) string {
	t.Helper()
	segs := strings.Split(route.Pattern, "/")
	for i, s := range segs {
		if !strings.HasPrefix(s, "{") {
			continue
		}
		name := strings.Trim(s, "{}")
		if name == "app" {
			segs[i] = app
			continue
		}
		v, ok := params[name]
		if !ok {
			t.Fatalf("route %s: the request gives no {%s}", route.Name, name)
		}
		segs[i] = v
	}
	return strings.Join(segs, "/")
}

// send serves req on app's path, signed with secret now and a fresh nonce,
// or unsigned when secret is empty.
func (c *apiClient) send(t *testing.T, app, secret string, req isoRequest) (int, string) {
	t.Helper()
	return c.sendSigned(t, app, secret, req, time.Now(), c.newNonce())
}

func (c *apiClient) newNonce() string {
	return fmt.Sprintf("api-%s-%06d", c.run, c.nonce.Add(1))
}

// sendSigned serves req on app's path signed with secret for the instant
// ts and nonce (unsigned when secret is empty), through the function that
// the route table names.
func (c *apiClient) sendSigned(t *testing.T, app, secret string, req isoRequest, ts time.Time, nonce string) (int, string) {
	t.Helper()
	route, ok := c.routes[req.Route]
	if !ok {
		t.Fatalf("no route %q in httpapi.Routes", req.Route)
	}
	path := c.path(t, route, app, req.Params)
	headers := map[string]string{"content-type": "application/json"}
	if secret != "" {
		unix := strconv.FormatInt(ts.Unix(), 10)
		headers["x-push-timestamp"] = unix
		headers["x-push-nonce"] = nonce
		headers["x-push-signature"] = httpapi.Sign(secret, route.Method, path, req.Query, unix, nonce, []byte(req.Body))
	}
	resp, err := c.handlers[route.Function](context.Background(), events.APIGatewayV2HTTPRequest{
		Version:        "2.0",
		RouteKey:       "$default",
		RawPath:        path,
		RawQueryString: req.Query,
		Headers:        headers,
		Body:           req.Body,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			Stage:     "$default",
			RequestID: "api-req-" + strconv.FormatInt(c.nonce.Add(1), 10),
			HTTP:      events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: route.Method, Path: path},
		},
	})
	if err != nil {
		t.Fatalf("%s %s: handler error %v", route.Method, path, err)
	}
	return resp.StatusCode, resp.Body
}

// must sends req signed with app's own secret and fails unless it answers
// req.Want.
func (e *isoEnv) must(t *testing.T, app string, req isoRequest) string {
	t.Helper()
	status, body := e.api.send(t, app, isoAPISecrets[app][0], req)
	if status != req.Want {
		t.Fatalf("%s of %s: status %d, want %d (body %.300s)", req.Route, app, status, req.Want, body)
	}
	return body
}

// isoSnapshot is everything a request could change: every item of both
// tables and the depth of every queue of the stack.
type isoSnapshot struct {
	Items  map[string][]string // table logical id → items as JSON, sorted
	Queues map[string]string   // queue logical id → visible/in flight/delayed
}

func (e *isoEnv) snapshot(t *testing.T) isoSnapshot {
	t.Helper()
	ctx := context.Background()
	s := isoSnapshot{Items: map[string][]string{}, Queues: map[string]string{}}
	for id, table := range e.stack.Tables {
		p := dynamodb.NewScanPaginator(e.db, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
		items := []string{}
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatalf("Scan %s: %v", id, err)
			}
			for _, it := range page.Items {
				var m map[string]any
				if err := attributevalue.UnmarshalMap(it, &m); err != nil {
					t.Fatalf("unmarshal item of %s: %v", id, err)
				}
				b, err := json.Marshal(m)
				if err != nil {
					t.Fatalf("marshal item of %s: %v", id, err)
				}
				items = append(items, string(b))
			}
		}
		sort.Strings(items)
		s.Items[id] = items
	}
	for id, q := range e.stack.Queues {
		out, err := e.sq.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
			QueueUrl: aws.String(q.URL),
			AttributeNames: []sqstypes.QueueAttributeName{
				sqstypes.QueueAttributeNameApproximateNumberOfMessages,
				sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
				sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed,
			},
		})
		if err != nil {
			t.Fatalf("GetQueueAttributes %s: %v", id, err)
		}
		a := out.Attributes
		s.Queues[id] = a["ApproximateNumberOfMessages"] + "/" + a["ApproximateNumberOfMessagesNotVisible"] + "/" + a["ApproximateNumberOfMessagesDelayed"]
	}
	return s
}

// drain receives and deletes every message of every vendor queue and
// returns the envelopes.
func (e *isoEnv) drain(t *testing.T) []*push.Envelope {
	t.Helper()
	ctx := context.Background()
	var out []*push.Envelope
	deadline := time.Now().Add(time.Minute)
	for _, v := range push.Vendors {
		url := e.stack.Queues[strings.ToUpper(string(v[:1]))+string(v[1:])+"Queue"].URL
		for {
			if time.Now().After(deadline) {
				t.Fatal("queues did not drain within a minute")
			}
			res, err := e.sq.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, VisibilityTimeout: 900})
			if err != nil {
				t.Fatalf("ReceiveMessage %s: %v", v, err)
			}
			if len(res.Messages) == 0 {
				break
			}
			for _, m := range res.Messages {
				env, err := push.DecodeEnvelope([]byte(aws.ToString(m.Body)))
				if err != nil {
					t.Fatalf("decode envelope on the %s queue: %v", v, err)
				}
				out = append(out, env)
				if _, err := e.sq.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
					t.Fatalf("DeleteMessage: %v", err)
				}
			}
		}
	}
	return out
}

// reads performs isoReads for app and returns the bodies, keyed by step.
func (e *isoEnv) reads(t *testing.T, app string) map[string]json.RawMessage {
	t.Helper()
	out := map[string]json.RawMessage{}
	for i, r := range isoReads() {
		body := e.must(t, app, r)
		var v any
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatalf("%s of %s: decode %.300s: %v", r.Route, app, body, err)
		}
		norm, _ := json.Marshal(v)
		out[fmt.Sprintf("%02d %s %v", i, r.Route, r.Params)] = norm
	}
	return out
}

// crossSigned sends req to victim's path signed with attacker's secret and
// checks that it answers exactly the 401 any authentication failure answers,
// and changes nothing at all: not the victim's state, not the attacker's,
// not a nonce, not a queue.
func (e *isoEnv) crossSigned(t *testing.T, attacker, victim string, req isoRequest) {
	t.Helper()
	// The reference: the same request without any signature.
	wantStatus, wantBody := e.api.send(t, victim, "", req)
	if wantStatus != http.StatusUnauthorized {
		t.Fatalf("%s unsigned: status %d, want 401 (body %.300s)", req.Route, wantStatus, wantBody)
	}
	before := e.snapshot(t)
	for _, secret := range isoAPISecrets[attacker] {
		status, body := e.api.send(t, victim, secret, req)
		if status != http.StatusUnauthorized || body != wantBody {
			t.Errorf("%s to %s signed with a secret of %s: got %d %s, want %d %s", req.Route, victim, attacker, status, body, wantStatus, wantBody)
		}
	}
	if diff := cmp.Diff(before, e.snapshot(t)); diff != "" {
		t.Errorf("%s to %s signed with a secret of %s changed stored state (-before +after):\n%s", req.Route, victim, attacker, diff)
	}
}

// TestTenantIsolation checks API.md §2 "a secret of app A never authorizes a
// path of app B" and that one tenant's writes never reach another's data,
// for every authenticated route of the route table. Each rejected request
// is sent again with the right secret and must then succeed, so a rejection
// cannot come from a malformed request instead of the wrong secret.
func TestTenantIsolation(t *testing.T) {
	e := newIsoEnv(t)

	var missing, stale []string
	for _, r := range httpapi.Routes {
		if r.Public {
			if r.Name != "Health" {
				t.Errorf("route %s is public: only Health may be; a new public route needs a security review and a case here", r.Name)
			}
			continue
		}
		if _, ok := isoCases(isoA)[r.Name]; !ok {
			missing = append(missing, r.Name)
		}
	}
	for name := range isoCases(isoA) {
		if r, ok := e.api.routes[name]; !ok || r.Public {
			stale = append(stale, name)
		}
	}
	sort.Strings(stale)
	if len(missing) > 0 || len(stale) > 0 {
		t.Fatalf("isoCases must hold exactly one case per authenticated route of httpapi.Routes: missing %v, stale %v", missing, stale)
	}

	// B sets up its state, then every route is tried on B's path with A's
	// secrets (rejected, nothing changes) and with B's (accepted).
	for _, r := range isoSeed(isoB) {
		e.must(t, isoB, r)
	}
	ok := t.Run("A's secret on B's paths", func(t *testing.T) {
		for _, route := range httpapi.Routes {
			if route.Public {
				continue
			}
			req := isoCases(isoB)[route.Name]
			req.Route = route.Name
			e.crossSigned(t, isoA, isoB, req)
			e.must(t, isoB, req)
		}
	})
	if !ok {
		return
	}
	for _, env := range e.drain(t) {
		if env.App != isoB {
			t.Errorf("B's message enqueued an envelope of app %q", env.App)
		}
	}

	// A writes through every route with the very ids B used; B's reads
	// must not change, and A's must show A's own data.
	bBefore := e.reads(t, isoB)
	isoCheckB(t, bBefore)
	aTokens := map[string]string{} // device → token A bound
	for _, r := range isoSeed(isoA) {
		e.must(t, isoA, r)
	}
	for _, route := range httpapi.Routes {
		if route.Public {
			continue
		}
		req := isoCases(isoA)[route.Name]
		req.Route = route.Name
		body := e.must(t, isoA, req)
		if route.Name == "PostMessage" {
			var res struct {
				Duplicate bool `json:"duplicate"`
				Pushes    int  `json:"pushes"`
			}
			if err := json.Unmarshal([]byte(body), &res); err != nil || res.Duplicate || res.Pushes == 0 {
				t.Errorf("A's message: got %s, want a fresh message with pushes (not B's duplicate)", body)
			}
		}
	}
	aTokens["d1"], aTokens["d2"], aTokens["d3"] = isoShared, isoFCMToken(isoA, "d2"), isoShared3

	t.Run("B unaffected by A's writes", func(t *testing.T) {
		if diff := cmp.Diff(isoJSON(bBefore), isoJSON(e.reads(t, isoB))); diff != "" {
			t.Errorf("B's reads changed after A wrote under the same ids (-before +after):\n%s", diff)
		}
	})

	t.Run("each app lists only its own devices", func(t *testing.T) {
		list := func(app string) map[string]string {
			var got deviceListJSON
			if err := json.Unmarshal([]byte(e.must(t, app, isoRequest{Route: "ListDevices", Params: isoUser, Want: http.StatusOK})), &got); err != nil {
				t.Fatal(err)
			}
			out := map[string]string{}
			for _, d := range got.Devices {
				out[d.DeviceID] = isoDeref(d.Vendor) + " " + isoDeref(d.CertName) + " " + isoDeref(d.TokenSuffix)
			}
			return out
		}
		want := func(app string) map[string]string {
			return map[string]string{
				"d1":  "apns ios " + push.Redact(isoShared),
				"d2":  "fcm fcm " + push.Redact(isoFCMToken(app, "d2")),
				"d3":  "apns ios " + push.Redact(isoShared3),
				"pc1": "- - -",
			}
		}
		for _, app := range []string{isoA, isoB} {
			if diff := cmp.Diff(want(app), list(app)); diff != "" {
				t.Errorf("devices of u1 in %s (-want +got):\n%s", app, diff)
			}
		}
	})

	t.Run("A's settings are A's", func(t *testing.T) {
		var a, b map[string]any
		json.Unmarshal([]byte(e.must(t, isoA, isoRequest{Route: "GetSettings", Params: isoUser, Want: http.StatusOK})), &a)
		json.Unmarshal([]byte(e.must(t, isoB, isoRequest{Route: "GetSettings", Params: isoUser, Want: http.StatusOK})), &b)
		got := fmt.Sprintf("%v %v %v / %v %v %v", a["remindType"], a["showPreview"], a["mobilePushWhenDesktopOnline"],
			b["remindType"], b["showPreview"], b["mobilePushWhenDesktopOnline"])
		if want := "ALL false true / AT true false"; got != want {
			t.Errorf("remindType showPreview mobilePushWhenDesktopOnline of A / B = %q, want %q", got, want)
		}
	})

	t.Run("A's message enqueues only A's targets", func(t *testing.T) {
		envs := e.drain(t)
		if len(envs) == 0 {
			t.Fatal("A's message enqueued nothing; the check would be vacuous")
		}
		n := 0
		for _, env := range envs {
			if env.App != isoA {
				t.Errorf("envelope of message %s has app %q, want %q", env.MessageID, env.App, isoA)
			}
			for _, tg := range env.Targets {
				n++
				if tg.UserID != "u1" || aTokens[tg.DeviceID] == "" || aTokens[tg.DeviceID] != tg.Token {
					t.Errorf("target %s/%s with token …%s is not a binding of %s", tg.UserID, tg.DeviceID, push.Redact(tg.Token), isoA)
				}
			}
		}
		if n != len(aTokens) {
			t.Errorf("A's message has %d targets, want %d (one per device of u1 with a token)", n, len(aTokens))
		}
	})

	// A moves the token both tenants hold to another of its users. Only A's
	// owner record may follow: B's device keeps it, and B's refresh of its
	// own binding moves nothing. An owner key without the app would make
	// B's refresh take the token from A's user instead.
	t.Run("a token moved in A stays in B", func(t *testing.T) {
		put := isoRequest{Route: "PutDevice", Params: map[string]string{"user": "u7", "device": "d7"}, Body: isoDeviceBody("apns", isoShared, "ios"), Want: http.StatusOK}
		var moved putDeviceResultJSON
		json.Unmarshal([]byte(e.must(t, isoA, put)), &moved)
		if moved.MovedFrom == nil || *moved.MovedFrom != (deviceOwnerJSON{UserID: "u1", DeviceID: "d1"}) {
			t.Errorf("A's move of the shared token: movedFrom %+v, want u1/d1", moved.MovedFrom)
		}
		refresh := isoRequest{Route: "PutDevice", Params: isoDevice("d1"), Body: isoDeviceBody("apns", isoShared, "ios"), Want: http.StatusOK}
		var got putDeviceResultJSON
		json.Unmarshal([]byte(e.must(t, isoB, refresh)), &got)
		if got.MovedFrom != nil {
			t.Errorf("B's refresh of its own binding moved the token from %+v, want nothing moved", *got.MovedFrom)
		}
		var list deviceListJSON
		json.Unmarshal([]byte(e.must(t, isoB, isoRequest{Route: "ListDevices", Params: isoUser, Want: http.StatusOK})), &list)
		held := false
		for _, d := range list.Devices {
			held = held || (d.DeviceID == "d1" && isoDeref(d.TokenSuffix) == push.Redact(isoShared))
		}
		if !held {
			t.Errorf("B's u1/d1 lost the shared token after A moved it: %+v", list.Devices)
		}
		// The token index itself (shared/dynamo/doc.go): one owner item
		// per app, each naming that app's holder. Dispatch re-checks a
		// binding here, so a shared item would drop B's pushes.
		sum := sha256.Sum256([]byte(isoShared))
		for app, want := range map[string]string{isoA: "u7/d7", isoB: "u1/d1"} {
			out, err := e.db.GetItem(context.Background(), &dynamodb.GetItemInput{
				TableName: aws.String(e.stack.Tables["StateTable"]),
				Key: map[string]ddbtypes.AttributeValue{
					"pk": &ddbtypes.AttributeValueMemberS{Value: "t#" + app + "#apns#" + hex.EncodeToString(sum[:])},
					"sk": &ddbtypes.AttributeValueMemberS{Value: "owner"},
				},
				ConsistentRead: aws.Bool(true),
			})
			if err != nil {
				t.Fatal(err)
			}
			var owner struct {
				UID string `dynamodbav:"uid"`
				DID string `dynamodbav:"did"`
			}
			attributevalue.UnmarshalMap(out.Item, &owner)
			if got := owner.UID + "/" + owner.DID; got != want {
				t.Errorf("token index of %s names %q as the shared token's holder, want %q", app, got, want)
			}
		}
	})

	t.Run("certName of another app", func(t *testing.T) {
		for _, c := range []struct{ app, vendor, cert string }{
			{isoA, "apns", "b-only"},
			{isoB, "huawei", "a-only"},
		} {
			token := isoHexToken("cert-" + c.app)
			if c.vendor != "apns" {
				token = "hw-" + token
			}
			req := isoRequest{Route: "PutDevice", Params: isoDevice("d9"), Body: isoDeviceBody(c.vendor, token, c.cert), Want: http.StatusBadRequest}
			var got httpapi.ErrorBody
			json.Unmarshal([]byte(e.must(t, c.app, req)), &got)
			if got.Error.Code != httpapi.CodeUnknownCert {
				t.Errorf("PUT device in %s with certName %s of the other app: code %q, want %q", c.app, c.cert, got.Error.Code, httpapi.CodeUnknownCert)
			}
			// The control: the owner of the certName may use it.
			owner := isoValue(c.app, isoB, isoA)
			req.Want = http.StatusOK
			e.must(t, owner, req)
		}
	})

	t.Run("B's secret on A's paths", func(t *testing.T) {
		for _, route := range httpapi.Routes {
			if route.Public {
				continue
			}
			req := isoCases(isoA)[route.Name]
			req.Route = route.Name
			e.crossSigned(t, isoB, isoA, req)
		}
	})

	t.Run("unknown app", func(t *testing.T) {
		req := isoCases(isoA)["ListDevices"]
		req.Route = "ListDevices"
		_, want := e.api.send(t, isoA, "", req)
		status, body := e.api.send(t, "app-c", isoAPISecrets[isoA][0], req)
		if status != http.StatusUnauthorized || body != want {
			t.Errorf("a path of an unknown app: got %d %s, want 401 %s", status, body, want)
		}
	})

	t.Run("logs", func(t *testing.T) {
		for _, app := range []string{isoA, isoB} {
			e.scanner.add("token of "+app, isoShared, isoShared3, isoFCMToken(app, "d2"), isoFCMToken(app, "d-gone"))
			e.scanner.add("message text of "+app, isoMessageText(app))
		}
		if e.scanner.check(t, "isolation", e.logs.String()) == 0 {
			t.Error("the functions logged nothing")
		}
	})
}

// isoCheckB asserts that B's reads show the state B set up, so that "B's
// reads did not change" is not a comparison of two empty answers.
func isoCheckB(t *testing.T, reads map[string]json.RawMessage) {
	t.Helper()
	all := strings.Join(isoJSON(reads), "\n")
	for _, want := range []string{
		`"deviceId":"d1"`, `"deviceId":"d2"`, `"deviceId":"d3"`, `"deviceId":"pc1"`,
		`"remindType":"AT"`, `"mobilePushWhenDesktopOnline":false`, `"reason":"`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("B's reads lack %s:\n%s", want, all)
		}
	}
	if strings.Contains(all, `"deviceId":"d-gone"`) {
		t.Errorf("B's reads still show the deleted device d-gone:\n%s", all)
	}
}

// isoJSON lists the reads in order, one line each, for readable diffs.
func isoJSON(reads map[string]json.RawMessage) []string {
	out := make([]string, 0, len(reads))
	for k, v := range reads {
		out = append(out, k+" "+string(v))
	}
	sort.Strings(out)
	return out
}

func isoDeref(s *string) string {
	if s == nil {
		return "-"
	}
	return *s
}
