package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/google/go-cmp/cmp"

	"github.com/offline-push/offline-push/shared/devices"
	"github.com/offline-push/offline-push/shared/dynamo"
	"github.com/offline-push/offline-push/shared/httpapi"
	"github.com/offline-push/offline-push/shared/push"
	"github.com/offline-push/offline-push/shared/secrets"
	"github.com/offline-push/offline-push/shared/testenv"
)

// devicesSecret is the API secret of every app the device tests create.
const devicesSecret = "devices-test-secret"

// devicesEnv is one emulator with the template's stack, the devices
// function's handler built by Devices exactly as Lambda builds it, and a
// log that the tests search for leaked tokens.
type devicesEnv struct {
	endpoint string
	handler  func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)
	db       *dynamodb.Client
	sm       *secretsmanager.Client
	table    string
	prefix   string
	logs     *deviceLogBuffer
	log      *slog.Logger
	nonce    atomic.Int64
	run      string // distinguishes this run's nonces from an earlier one's
}

// deviceLogBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type deviceLogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *deviceLogBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *deviceLogBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newDevicesEnv(t *testing.T) *devicesEnv {
	t.Helper()
	srv := testenv.Moto(t)
	stack := testenv.Stack(t, srv.Endpoint)
	fnEnv := stack.FunctionEnv("DevicesFunction")
	cfg := testenv.AWSConfig(srv.Endpoint)
	e := &devicesEnv{
		endpoint: srv.Endpoint,
		db:       dynamodb.NewFromConfig(cfg),
		sm:       secretsmanager.NewFromConfig(cfg),
		table:    fnEnv[EnvStateTable],
		prefix:   fnEnv[EnvSecretPrefix],
		logs:     &deviceLogBuffer{},
		run:      strconv.FormatInt(time.Now().UnixNano(), 36),
	}
	e.log = slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.addApp(t, "demo")
	h, err := Devices(context.Background(), testenv.Env(srv.Endpoint, fnEnv), e.log)
	if err != nil {
		t.Fatalf("Devices: %v", err)
	}
	e.handler = h
	return e
}

// addApp creates an app's API secret and two credentials: "ios" (apns) and
// "fcm" (fcm), tagged with their vendor as API.md §7 requires.
func (e *devicesEnv) addApp(t *testing.T, app string) {
	t.Helper()
	create := func(name, value, vendor string) {
		in := &secretsmanager.CreateSecretInput{Name: aws.String(e.prefix + "/" + app + "/" + name), SecretString: aws.String(value)}
		if vendor != "" {
			in.Tags = []smtypes.Tag{{Key: aws.String("vendor"), Value: aws.String(vendor)}}
		}
		if _, err := e.sm.CreateSecret(context.Background(), in); err != nil {
			t.Fatalf("CreateSecret %s: %v", name, err)
		}
	}
	create("api", `{"apiSecrets": ["`+devicesSecret+`"]}`, "")
	create("vendors/ios", `{"vendor": "apns"}`, "apns")
	create("vendors/fcm", `{"vendor": "fcm"}`, "fcm")
}

// do sends a request signed with the app's secret, or unsigned when sign is
// false, and returns the status and body.
func (e *devicesEnv) do(method, path, query, body string, sign bool) (int, string) {
	headers := map[string]string{"content-type": "application/json"}
	if sign {
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		nonce := fmt.Sprintf("dev-%s-%06d", e.run, e.nonce.Add(1))
		headers["x-push-timestamp"] = ts
		headers["x-push-nonce"] = nonce
		headers["x-push-signature"] = httpapi.Sign(devicesSecret, method, path, query, ts, nonce, []byte(body))
	}
	resp, err := e.handler(context.Background(), events.APIGatewayV2HTTPRequest{
		Version:        "2.0",
		RouteKey:       "$default",
		RawPath:        path,
		RawQueryString: query,
		Headers:        headers,
		Body:           body,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			Stage:     "$default",
			RequestID: "req-" + strconv.FormatInt(e.nonce.Add(1), 10),
			HTTP:      events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path},
		},
	})
	if err != nil {
		return -1, err.Error()
	}
	return resp.StatusCode, resp.Body
}

func devicePath(app, user, device string) string {
	return "/v1/apps/" + app + "/users/" + user + "/devices/" + device
}

// deviceRegistered is the answer to a PUT, decoded strictly enough to notice a
// missing member.
type deviceRegistered struct {
	UserID       string           `json:"userId"`
	DeviceID     string           `json:"deviceId"`
	Vendor       string           `json:"vendor"`
	CertName     string           `json:"certName"`
	Environment  *string          `json:"environment"`
	RegisteredAt string           `json:"registeredAt"`
	MovedFrom    *deviceOwnerJSON `json:"movedFrom"`
}

// put registers a device and fails the test unless it answers 200.
func (e *devicesEnv) put(t *testing.T, app, user, device, body string) deviceRegistered {
	t.Helper()
	status, resp := e.do("PUT", devicePath(app, user, device), "", body, true)
	if status != 200 {
		t.Fatalf("PUT %s/%s = %d %s, want 200", user, device, status, resp)
	}
	var r deviceRegistered
	if err := json.Unmarshal([]byte(resp), &r); err != nil {
		t.Fatalf("PUT answer %s: %v", resp, err)
	}
	return r
}

// list returns a user's devices and fails the test unless GET answers 200.
func (e *devicesEnv) list(t *testing.T, app, user string) []deviceJSON {
	t.Helper()
	status, resp := e.do("GET", "/v1/apps/"+app+"/users/"+user+"/devices", "", "", true)
	if status != 200 {
		t.Fatalf("GET devices of %s = %d %s, want 200", user, status, resp)
	}
	var l deviceListJSON
	if err := json.Unmarshal([]byte(resp), &l); err != nil {
		t.Fatalf("GET answer %s: %v", resp, err)
	}
	return l.Devices
}

func deviceAPNsBody(token, voip string) string {
	if voip == "" {
		return `{"vendor": "apns", "token": "` + token + `", "certName": "ios"}`
	}
	return `{"vendor": "apns", "token": "` + token + `", "certName": "ios", "voipToken": "` + voip + `"}`
}

// deviceHexToken returns a distinct 64-digit APNs token for n.
func deviceHexToken(n int) string { return fmt.Sprintf("%064x", 0xabc000+n) }

// deviceTableState is what StateTable holds for one app: every binding's tokens and
// every index item, read with a Scan (tests only: the service never scans).
type deviceTableState struct {
	bindings map[push.Owner][2]string // alert token, VoIP token
	vendors  map[push.Owner]string
	index    map[[2]string]deviceIndexItem // (vendor, token) → owner
}

type deviceIndexItem struct {
	owner push.Owner
	kind  string
}

func (e *devicesEnv) scan(t *testing.T, app string) deviceTableState {
	t.Helper()
	st := deviceTableState{bindings: map[push.Owner][2]string{}, vendors: map[push.Owner]string{}, index: map[[2]string]deviceIndexItem{}}
	s := func(av types.AttributeValue) string {
		if v, ok := av.(*types.AttributeValueMemberS); ok {
			return v.Value
		}
		return ""
	}
	p := dynamodb.NewScanPaginator(e.db, &dynamodb.ScanInput{TableName: aws.String(e.table), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("Scan: %v", err)
		}
		for _, item := range page.Items {
			pk, sk := s(item["pk"]), s(item["sk"])
			switch {
			case strings.HasPrefix(pk, "u#"+app+"#") && sk == "profile":
				user := strings.TrimPrefix(pk, "u#"+app+"#")
				for name, av := range item {
					dev, ok := strings.CutPrefix(name, "d#")
					if !ok {
						continue
					}
					m := av.(*types.AttributeValueMemberM).Value
					o := push.Owner{UserID: user, DeviceID: dev}
					st.bindings[o] = [2]string{s(m["t"]), s(m["v"])}
					st.vendors[o] = s(m["vn"])
				}
			case strings.HasPrefix(pk, "t#"+app+"#") && sk == "owner":
				st.index[[2]string{s(item["vn"]), s(item["tok"])}] = deviceIndexItem{
					owner: push.Owner{UserID: s(item["uid"]), DeviceID: s(item["did"])},
					kind:  s(item["k"]),
				}
			}
		}
	}
	return st
}

// consistent fails the test unless bindings and index agree both ways: each
// token a binding holds has an index item naming that binding, and each
// index item names a binding holding that token (no orphans). So no token
// has two holders.
func (st deviceTableState) consistent(t *testing.T) {
	t.Helper()
	want := map[[2]string]deviceIndexItem{}
	for o, toks := range st.bindings {
		k := [2]string{st.vendors[o], toks[0]}
		if prev, dup := want[k]; dup {
			t.Errorf("token %s held by %v and %v", push.Redact(toks[0]), prev.owner, o)
		}
		want[k] = deviceIndexItem{owner: o, kind: "alert"}
		if toks[1] != "" {
			k := [2]string{"apns", toks[1]}
			if prev, dup := want[k]; dup {
				t.Errorf("token %s held by %v and %v", push.Redact(toks[1]), prev.owner, o)
			}
			want[k] = deviceIndexItem{owner: o, kind: "voip"}
		}
	}
	if diff := cmp.Diff(want, st.index, cmp.AllowUnexported(deviceIndexItem{})); diff != "" {
		t.Errorf("token index disagrees with the bindings (-from bindings +index):\n%s", diff)
	}
}

func TestDevices(t *testing.T) {
	e := newDevicesEnv(t)
	t.Run("RegisterAndRefresh", e.testRegisterAndRefresh)
	t.Run("Moves", e.testMoves)
	t.Run("NewTokenOnSameDevice", e.testNewTokenOnSameDevice)
	t.Run("Delete", e.testDelete)
	t.Run("List", e.testList)
	t.Run("InvalidRequests", e.testInvalidRequests)
	t.Run("UnknownCert", e.testUnknownCert)
	t.Run("ConcurrentRegistrations", e.testConcurrentRegistrations)
	t.Run("StaleRead", e.testStaleRead)
	t.Run("Throttled", e.testThrottled)
	t.Run("RequestCounts", e.testRequestCounts)
	// Last: every test above has logged by now.
	t.Run("LogsRedactTokens", e.testLogsRedactTokens)
}

// deviceLeakCheck remembers full tokens the tests used, for testLogsRedactTokens.
var deviceLeakCheck struct {
	sync.Mutex
	tokens []string
}

func deviceUsedToken(tok string) string {
	deviceLeakCheck.Lock()
	defer deviceLeakCheck.Unlock()
	deviceLeakCheck.tokens = append(deviceLeakCheck.tokens, tok)
	return tok
}

func (e *devicesEnv) testRegisterAndRefresh(t *testing.T) {
	tok := deviceUsedToken(deviceHexToken(1))
	// Upper case spells the same APNs token.
	first := e.put(t, "demo", "alice", "phone", deviceAPNsBody(strings.ToUpper(tok), ""))
	prod := "production"
	want := deviceRegistered{UserID: "alice", DeviceID: "phone", Vendor: "apns", CertName: "ios", Environment: &prod}
	got := first
	got.RegisteredAt = ""
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("first PUT answer mismatch (-want +got):\n%s", diff)
	}
	at, err := time.Parse("2006-01-02T15:04:05.000Z", first.RegisteredAt)
	if err != nil {
		t.Fatalf("registeredAt %q is not an RFC 3339 UTC instant with milliseconds: %v", first.RegisteredAt, err)
	}
	second := e.put(t, "demo", "alice", "phone", deviceAPNsBody(tok, ""))
	if second.MovedFrom != nil {
		t.Errorf("refresh movedFrom = %+v, want null", second.MovedFrom)
	}
	at2, _ := time.Parse("2006-01-02T15:04:05.000Z", second.RegisteredAt)
	if at2.Before(at) {
		t.Errorf("refresh registeredAt %s is before the first %s", second.RegisteredAt, first.RegisteredAt)
	}
	// The index item's refresh time (r, and xu for the sparse index) is the
	// last PUT's.
	st := e.scan(t, "demo")
	st.consistent(t)
	out, err := e.db.Query(context.Background(), &dynamodb.QueryInput{
		TableName:                 aws.String(e.table),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: tokenIndexPK("demo", "apns", tok)}},
		ConsistentRead:            aws.Bool(true),
	})
	if err != nil || len(out.Items) != 1 {
		t.Fatalf("index item query = %v, %v; want one item", out, err)
	}
	ms := strconv.FormatInt(at2.UnixMilli(), 10)
	for _, attr := range []string{"r", "xu"} {
		if n, _ := out.Items[0][attr].(*types.AttributeValueMemberN); n == nil || n.Value != ms {
			t.Errorf("index item %s = %v, want %s (the refresh)", attr, out.Items[0][attr], ms)
		}
	}
	if d := e.list(t, "demo", "alice"); len(d) != 1 || d[0].DeviceID != "phone" {
		t.Errorf("alice's devices = %+v, want phone only", d)
	}
}

func (e *devicesEnv) testMoves(t *testing.T) {
	type step struct {
		user, device, body string
		movedFrom          *deviceOwnerJSON
	}
	a, b, v, w := deviceUsedToken(deviceHexToken(10)), deviceUsedToken(deviceHexToken(11)), deviceUsedToken(deviceHexToken(12)), deviceUsedToken(deviceHexToken(13))
	tests := []struct {
		name  string
		steps []step
		// devices each user lists at the end
		want map[string][]string
	}{
		{
			name: "alert token moves to another user, with its VoIP token",
			steps: []step{
				{"u1", "x", deviceAPNsBody(a, v), nil},
				{"u2", "y", deviceAPNsBody(a, ""), &deviceOwnerJSON{"u1", "x"}},
			},
			want: map[string][]string{"u1": nil, "u2": {"y"}},
		},
		{
			name: "VoIP token moves alone: the old device keeps its alert token",
			steps: []step{
				{"u3", "x", deviceAPNsBody(a, v), nil},
				{"u4", "y", deviceAPNsBody(b, v), &deviceOwnerJSON{"u3", "x"}},
			},
			want: map[string][]string{"u3": {"x"}, "u4": {"y"}},
		},
		{
			name: "movedFrom names the alert token's holder before the VoIP token's",
			steps: []step{
				{"u5", "x", deviceAPNsBody(a, ""), nil},
				{"u6", "y", deviceAPNsBody(b, v), nil},
				{"u7", "z", deviceAPNsBody(a, v), &deviceOwnerJSON{"u5", "x"}},
			},
			want: map[string][]string{"u5": nil, "u6": {"y"}, "u7": {"z"}},
		},
		{
			name: "between two devices of one user",
			steps: []step{
				{"u8", "tablet", deviceAPNsBody(a, w), nil},
				{"u8", "phone", deviceAPNsBody(a, ""), &deviceOwnerJSON{"u8", "tablet"}},
			},
			want: map[string][]string{"u8": {"phone"}},
		},
		{
			name: "a device's alert token becomes another's VoIP token",
			steps: []step{
				{"u9", "x", deviceAPNsBody(a, ""), nil},
				{"u10", "y", deviceAPNsBody(b, a), &deviceOwnerJSON{"u9", "x"}},
			},
			want: map[string][]string{"u9": nil, "u10": {"y"}},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := "moves" + strconv.Itoa(i)
			e.addApp(t, app)
			for _, s := range tt.steps {
				got := e.put(t, app, s.user, s.device, s.body)
				if diff := cmp.Diff(s.movedFrom, got.MovedFrom); diff != "" {
					t.Errorf("PUT %s/%s movedFrom mismatch (-want +got):\n%s", s.user, s.device, diff)
				}
			}
			for user, want := range tt.want {
				var got []string
				for _, d := range e.list(t, app, user) {
					got = append(got, d.DeviceID)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("devices of %s mismatch (-want +got):\n%s", user, diff)
				}
			}
			e.scan(t, app).consistent(t)
		})
	}
	// The VoIP move left u3's device its alert token and nothing else.
	st := e.scan(t, "moves1")
	if got, want := st.bindings[push.Owner{UserID: "u3", DeviceID: "x"}], [2]string{a, ""}; got != want {
		t.Errorf("u3/x holds %v, want its alert token only", [2]string{push.Redact(got[0]), push.Redact(got[1])})
	}
}

func (e *devicesEnv) testNewTokenOnSameDevice(t *testing.T) {
	e.addApp(t, "swap")
	a, b, v := deviceUsedToken(deviceHexToken(20)), deviceUsedToken(deviceHexToken(21)), deviceUsedToken(deviceHexToken(22))
	e.put(t, "swap", "u", "phone", deviceAPNsBody(a, v))
	e.put(t, "swap", "u", "phone", deviceAPNsBody(b, ""))
	// An FCM token on the same device replaces the APNs binding whole.
	fcm := deviceUsedToken("fcm-token:" + strings.Repeat("Q", 150))
	e.put(t, "swap", "u", "phone", `{"vendor": "fcm", "token": "`+fcm+`", "certName": "fcm"}`)
	st := e.scan(t, "swap")
	st.consistent(t)
	if len(st.index) != 1 {
		t.Errorf("index holds %d items, want 1 (the old tokens' items deleted)", len(st.index))
	}
}

func (e *devicesEnv) testDelete(t *testing.T) {
	e.addApp(t, "del")
	a, v := deviceUsedToken(deviceHexToken(30)), deviceUsedToken(deviceHexToken(31))
	e.put(t, "del", "u", "phone", deviceAPNsBody(a, v))
	e.put(t, "del", "u", "tablet", deviceAPNsBody(deviceUsedToken(deviceHexToken(32)), ""))
	tests := []struct {
		name, device, query string
		status              int
	}{
		{"bound device", "phone", "reason=logout", 204},
		{"again: idempotent", "phone", "", 204},
		{"never bound", "watch", "reason=kicked", 204},
		{"bad reason", "tablet", "reason=stolen", 400},
		{"empty reason", "tablet", "reason=", 400},
		{"reason twice", "tablet", "reason=logout&reason=kicked", 400},
	}
	for _, tt := range tests {
		status, body := e.do("DELETE", devicePath("del", "u", tt.device), tt.query, "", true)
		if status != tt.status {
			t.Errorf("%s: DELETE = %d %s, want %d", tt.name, status, body, tt.status)
		}
		if status == 204 && body != "" {
			t.Errorf("%s: DELETE body = %q, want none", tt.name, body)
		}
	}
	st := e.scan(t, "del")
	st.consistent(t)
	if _, ok := st.bindings[push.Owner{UserID: "u", DeviceID: "tablet"}]; !ok || len(st.bindings) != 1 {
		t.Errorf("bindings left = %v, want the tablet only", st.bindings)
	}
	// The token is free again: registering it elsewhere moves nothing.
	if r := e.put(t, "del", "w", "phone", deviceAPNsBody(a, v)); r.MovedFrom != nil {
		t.Errorf("movedFrom after delete = %+v, want null", r.MovedFrom)
	}
}

func (e *devicesEnv) testList(t *testing.T) {
	e.addApp(t, "ls")
	apns := deviceUsedToken(deviceHexToken(40))
	fcm := deviceUsedToken("fcmTOKEN-" + strings.Repeat("z", 4000) + "END123")
	e.put(t, "ls", "u", "b-phone", deviceAPNsBody(apns, deviceUsedToken(deviceHexToken(41))))
	e.put(t, "ls", "u", "a-pixel", `{"vendor": "fcm", "token": "`+fcm+`", "certName": "fcm"}`)
	// A PC with presence only, and the phone online, through the presence
	// store that owns that item.
	ps := dynamo.NewPresenceStore(e.db, e.table)
	now := time.Now().UTC().Truncate(time.Millisecond)
	until := now.Add(10 * time.Minute)
	for _, l := range []push.Lease{
		{DeviceID: "c-pc", Platform: push.PlatformPC, Epoch: 1, Until: until},
		{DeviceID: "b-phone", Platform: push.PlatformIOS, Epoch: 1, Until: until},
	} {
		if _, _, err := ps.PutLease(context.Background(), "ls", "u", l, nil, now); err != nil {
			t.Fatalf("PutLease: %v", err)
		}
	}
	status, body := e.do("GET", "/v1/apps/ls/users/u/devices", "", "", true)
	if status != 200 {
		t.Fatalf("GET = %d %s", status, body)
	}
	for _, tok := range []string{apns, fcm, fcm[:len(fcm)-6]} {
		if strings.Contains(body, tok) {
			t.Errorf("GET answer holds a full token")
		}
	}
	var got map[string][]map[string]any
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("GET answer %s: %v", body, err)
	}
	lu := until.Format("2006-01-02T15:04:05.000Z")
	want := []map[string]any{
		{"deviceId": "a-pixel", "vendor": "fcm", "certName": "fcm", "tokenSuffix": "END123", "platform": "android", "online": false, "leaseUntil": nil},
		{"deviceId": "b-phone", "vendor": "apns", "certName": "ios", "tokenSuffix": apns[len(apns)-6:], "platform": "ios", "online": true, "leaseUntil": lu},
		{"deviceId": "c-pc", "vendor": nil, "certName": nil, "tokenSuffix": nil, "platform": "pc", "registeredAt": nil, "online": true, "leaseUntil": lu},
	}
	// registeredAt is the PUT's time: present, and checked for shape only.
	for i, d := range got["devices"] {
		if i < 2 {
			if s, ok := d["registeredAt"].(string); !ok || len(s) != len("2006-01-02T15:04:05.000Z") {
				t.Errorf("device %d registeredAt = %v, want an instant", i, d["registeredAt"])
			}
			delete(d, "registeredAt")
		}
	}
	if diff := cmp.Diff(want, got["devices"]); diff != "" {
		t.Errorf("devices mismatch (-want +got):\n%s", diff)
	}
	if status, body := e.do("GET", "/v1/apps/ls/users/nobody/devices", "", "", true); status != 200 || body != `{"devices":[]}` {
		t.Errorf("GET of an unknown user = %d %s, want 200 {\"devices\":[]}", status, body)
	}
}

// deviceErrorJSON is the API.md error shape.
type deviceErrorJSON struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"error"`
}

func (e *devicesEnv) testInvalidRequests(t *testing.T) {
	tok := deviceHexToken(50)
	apns := func(extra string) string {
		return `{"vendor": "apns", "token": "` + tok + `", "certName": "ios"` + extra + `}`
	}
	tests := []struct {
		name   string
		path   string
		body   string
		status int
		code   string
		field  string
	}{
		{"bad user id", devicePath("demo", "a!b", "d"), apns(""), 400, "invalid_argument", "user"},
		{"bad device id", devicePath("demo", "u", strings.Repeat("d", 129)), apns(""), 400, "invalid_argument", "device"},
		{"bad app id", devicePath("Demo", "u", "d"), apns(""), 400, "invalid_argument", "app"},
		{"malformed JSON", devicePath("demo", "u", "d"), `{"vendor": `, 400, "invalid_argument", ""},
		{"unknown member", devicePath("demo", "u", "d"), apns(`, "badge": 1`), 400, "invalid_argument", "badge"},
		{"wrong type", devicePath("demo", "u", "d"), `{"vendor": 1, "token": "x", "certName": "ios"}`, 400, "invalid_argument", "vendor"},
		{"vendor", devicePath("demo", "u", "d"), `{"vendor": "nokia", "token": "x", "certName": "ios"}`, 400, "invalid_argument", "vendor"},
		{"token", devicePath("demo", "u", "d"), `{"vendor": "apns", "token": "xyz", "certName": "ios"}`, 400, "invalid_argument", "token"},
		{"token missing", devicePath("demo", "u", "d"), `{"vendor": "fcm", "certName": "fcm"}`, 400, "invalid_argument", "token"},
		{"certName", devicePath("demo", "u", "d"), `{"vendor": "apns", "token": "` + tok + `", "certName": "a b"}`, 400, "invalid_argument", "certName"},
		{"platform", devicePath("demo", "u", "d"), apns(`, "platform": "web"`), 400, "invalid_argument", "platform"},
		{"environment", devicePath("demo", "u", "d"), apns(`, "environment": "dev"`), 400, "invalid_argument", "environment"},
		{"environment on fcm", devicePath("demo", "u", "d"), `{"vendor": "fcm", "token": "x", "certName": "fcm", "environment": "production"}`, 400, "invalid_argument", "environment"},
		{"voipToken", devicePath("demo", "u", "d"), apns(`, "voipToken": "12"`), 400, "invalid_argument", "voipToken"},
		{"voipToken same as token", devicePath("demo", "u", "d"), apns(`, "voipToken": "` + tok + `"`), 400, "invalid_argument", "voipToken"},
		{"voipToken on fcm", devicePath("demo", "u", "d"), `{"vendor": "fcm", "token": "x", "certName": "fcm", "voipToken": "` + tok + `"}`, 400, "invalid_argument", "voipToken"},
		{"locale", devicePath("demo", "u", "d"), apns(`, "locale": "en_US"`), 400, "invalid_argument", "locale"},
		{"appVersion", devicePath("demo", "u", "d"), apns(`, "appVersion": "` + strings.Repeat("9", 33) + `"`), 400, "invalid_argument", "appVersion"},
		{"oversize", devicePath("demo", "u", "d"), apns(`, "locale": "` + strings.Repeat("x", 64<<10) + `"`), 413, "payload_too_large", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := e.do("PUT", tt.path, "", tt.body, true)
			var got deviceErrorJSON
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("answer %d %q is not the error shape: %v", status, body, err)
			}
			if status != tt.status || got.Error.Code != tt.code || got.Error.Field != tt.field {
				t.Errorf("PUT = %d %s/%q (%s), want %d %s/%q", status, got.Error.Code, got.Error.Field, got.Error.Message, tt.status, tt.code, tt.field)
			}
		})
	}
	// Nothing of it was stored.
	if _, ok := e.scan(t, "demo").bindings[push.Owner{UserID: "u", DeviceID: "d"}]; ok {
		t.Errorf("a rejected PUT stored a binding")
	}
	if status, _ := e.do("PUT", devicePath("demo", "u", "d"), "", apns(""), false); status != 401 {
		t.Errorf("unsigned PUT = %d, want 401", status)
	}
}

func (e *devicesEnv) testUnknownCert(t *testing.T) {
	tok := deviceHexToken(60)
	tests := []struct{ name, body string }{
		{"no such credentials", `{"vendor": "apns", "token": "` + tok + `", "certName": "nope"}`},
		{"credentials of another vendor", `{"vendor": "apns", "token": "` + tok + `", "certName": "fcm"}`},
		{"fcm token on apns credentials", `{"vendor": "fcm", "token": "abc", "certName": "ios"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := e.do("PUT", devicePath("demo", "cert", "d"), "", tt.body, true)
			var got deviceErrorJSON
			_ = json.Unmarshal([]byte(body), &got)
			if status != 400 || got.Error.Code != "unknown_cert" || got.Error.Field != "certName" {
				t.Errorf("PUT = %d %s, want 400 unknown_cert at certName", status, body)
			}
		})
	}
	// A body error answers before the credential check (API.md §1 order).
	status, body := e.do("PUT", devicePath("demo", "cert", "d"), "", `{"vendor": "apns", "token": "`+tok+`", "certName": "nope", "locale": "??"}`, true)
	if !strings.Contains(body, `"field":"locale"`) || status != 400 {
		t.Errorf("PUT with a bad locale and an unknown cert = %d %s, want the locale error", status, body)
	}
}

// service returns the use case wired like Devices does, but with its
// DynamoDB client behind a fault proxy with opt and the store wrapped by
// wrap (nil: unwrapped).
func (e *devicesEnv) service(t *testing.T, opt testenv.ProxyOptions, wrap func(devices.Store) devices.Store) (*devices.Service, *testenv.Proxy) {
	t.Helper()
	proxy := testenv.NewProxy(t, e.endpoint, opt)
	var store devices.Store = deviceStore{dynamo.NewDeviceStore(dynamodb.NewFromConfig(testenv.AWSConfig(proxy.URL)), e.table)}
	if wrap != nil {
		store = wrap(store)
	}
	certs := secrets.New(e.sm, e.prefix, time.Now)
	return devices.New(store, certs, e.log), proxy
}

func deviceRegistration(token string) devices.Registration {
	return devices.Registration{Vendor: "apns", Token: token, CertName: "ios"}
}

func (e *devicesEnv) testConcurrentRegistrations(t *testing.T) {
	const n = 20
	e.addApp(t, "race")
	svc, _ := e.service(t, testenv.ProxyOptions{Serialize: true}, nil)
	tok := deviceUsedToken(deviceHexToken(70))
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = svc.Register(context.Background(), "race", fmt.Sprintf("u%02d", i), "phone", deviceRegistration(tok), time.Now())
		}()
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case errors.Is(err, push.ErrConflict):
			// Lost every retry: a 409 the caller may retry. Allowed, but
			// the table must still be consistent.
		default:
			t.Errorf("registration %d: %v", i, err)
		}
	}
	if won == 0 {
		t.Fatalf("no deviceRegistration of %d succeeded", n)
	}
	t.Logf("%d of %d concurrent registrations succeeded, %d gave up with 409", won, n, n-won)
	bound := 0
	for i := range n {
		bound += len(e.list(t, "race", fmt.Sprintf("u%02d", i)))
	}
	if bound != 1 {
		t.Errorf("the %d users list %d devices in all, want exactly 1", n, bound)
	}
	st := e.scan(t, "race")
	st.consistent(t)
	if len(st.index) != 1 {
		t.Errorf("index holds %d items, want 1", len(st.index))
	}
}

// racingStore performs a competing change right before the first Apply,
// that is after the snapshot behind that Apply was read, so the plan is
// stale deterministically.
type racingStore struct {
	devices.Store
	compete func()
	once    sync.Once
	applies atomic.Int32
}

func (s *racingStore) Apply(ctx context.Context, app string, p devices.Plan) error {
	s.applies.Add(1)
	s.once.Do(s.compete)
	return s.Store.Apply(ctx, app, p)
}

func (e *devicesEnv) testStaleRead(t *testing.T) {
	tok, other := deviceUsedToken(deviceHexToken(80)), deviceUsedToken(deviceHexToken(81))
	tests := []struct {
		name      string
		compete   func(ctx context.Context, svc *devices.Service, app string) error
		movedFrom *push.Owner
		applies   int32 // 2 when the competing change invalidates the plan
	}{
		{
			name: "a third user takes the token first",
			compete: func(ctx context.Context, svc *devices.Service, app string) error {
				_, err := svc.Register(ctx, app, "carol", "tab", deviceRegistration(tok), time.Now())
				return err
			},
			movedFrom: &push.Owner{UserID: "carol", DeviceID: "tab"},
			applies:   2,
		},
		{
			name: "the holder unregisters",
			compete: func(ctx context.Context, svc *devices.Service, app string) error {
				return svc.Unregister(ctx, app, "alice", "phone", devices.ReasonLogout, time.Now())
			},
			applies: 2,
		},
		{
			name: "the holder switches to another token",
			compete: func(ctx context.Context, svc *devices.Service, app string) error {
				_, err := svc.Register(ctx, app, "alice", "phone", deviceRegistration(other), time.Now())
				return err
			},
			applies: 2,
		},
		{
			// Ownership did not change, so the plan still holds: conditions
			// are on who holds what, not on refresh times.
			name: "the holder refreshes the token",
			compete: func(ctx context.Context, svc *devices.Service, app string) error {
				_, err := svc.Register(ctx, app, "alice", "phone", deviceRegistration(tok), time.Now())
				return err
			},
			movedFrom: &push.Owner{UserID: "alice", DeviceID: "phone"},
			applies:   1,
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			app := "stale" + strconv.Itoa(i)
			e.addApp(t, app)
			plain, _ := e.service(t, testenv.ProxyOptions{}, nil)
			if _, err := plain.Register(ctx, app, "alice", "phone", deviceRegistration(tok), time.Now()); err != nil {
				t.Fatalf("alice registers: %v", err)
			}
			var rs *racingStore
			svc, _ := e.service(t, testenv.ProxyOptions{}, func(s devices.Store) devices.Store {
				rs = &racingStore{Store: s}
				rs.compete = func() {
					if err := tt.compete(ctx, plain, app); err != nil {
						t.Errorf("competing change: %v", err)
					}
				}
				return rs
			})
			res, err := svc.Register(ctx, app, "bob", "phone", deviceRegistration(tok), time.Now())
			if err != nil {
				t.Fatalf("bob registers after a stale read: %v", err)
			}
			if got := rs.applies.Load(); got != tt.applies {
				t.Errorf("Apply ran %d times, want %d", got, tt.applies)
			}
			if diff := cmp.Diff(tt.movedFrom, res.MovedFrom); diff != "" {
				t.Errorf("movedFrom mismatch (-want +got):\n%s", diff)
			}
			st := e.scan(t, app)
			st.consistent(t)
			if got := st.index[[2]string{"apns", tok}].owner; got != (push.Owner{UserID: "bob", DeviceID: "phone"}) {
				t.Errorf("token held by %v, want bob/phone", got)
			}
		})
	}
}

func (e *devicesEnv) testThrottled(t *testing.T) {
	ctx := context.Background()
	e.addApp(t, "thr")
	svc, proxy := e.service(t, testenv.ProxyOptions{Seed: 42, ThrottleRate: 0.2, UnprocessedRate: 0.3}, nil)
	tok, voip := deviceUsedToken(deviceHexToken(90)), deviceUsedToken(deviceHexToken(91))
	var prev *push.Owner
	for i := range 8 {
		r := deviceRegistration(tok)
		if i%2 == 1 {
			v := voip
			r.VoIPToken = &v
		}
		// Odd steps also carry the VoIP token; even steps take the alert
		// token (and with it the previous holder's VoIP token) away.
		o := push.Owner{UserID: fmt.Sprintf("u%d", i), DeviceID: "phone"}
		res, err := svc.Register(ctx, "thr", o.UserID, o.DeviceID, r, time.Now())
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if diff := cmp.Diff(prev, res.MovedFrom); diff != "" {
			t.Errorf("step %d movedFrom mismatch (-want +got):\n%s", i, diff)
		}
		prev = &o
	}
	// A VoIP-only move: u8 takes the VoIP token from u7, which keeps its
	// alert token.
	r := deviceRegistration(deviceUsedToken(deviceHexToken(92)))
	v := voip
	r.VoIPToken = &v
	res, err := svc.Register(ctx, "thr", "u8", "phone", r, time.Now())
	if err != nil {
		t.Fatalf("VoIP move: %v", err)
	}
	if diff := cmp.Diff(prev, res.MovedFrom); diff != "" {
		t.Errorf("VoIP move movedFrom mismatch (-want +got):\n%s", diff)
	}
	if err := svc.Unregister(ctx, "thr", "u8", "phone", devices.ReasonNone, time.Now()); err != nil {
		t.Fatalf("Unregister: %v", err)
	}
	st := e.scan(t, "thr")
	st.consistent(t)
	if got, want := len(st.bindings), 1; got != want {
		t.Errorf("%d bindings left, want %d (u7 with its alert token)", got, want)
	}
	faults := 0
	for _, c := range proxy.Counts() {
		faults += c.Faults
	}
	if faults == 0 {
		t.Errorf("the proxy injected no faults; the retry paths went untested")
	}
}

// testRequestCounts pins what each device operation costs in DynamoDB
// requests and items, counted by the proxy from outside the code: reads are
// strongly consistent BatchGetItem rounds (each asks only for what the
// previous one revealed), every change one TransactWriteItems.
func (e *devicesEnv) testRequestCounts(t *testing.T) {
	ctx := context.Background()
	e.addApp(t, "cost")
	svc, proxy := e.service(t, testenv.ProxyOptions{}, nil)
	a, b, v := deviceUsedToken(deviceHexToken(100)), deviceUsedToken(deviceHexToken(101)), deviceUsedToken(deviceHexToken(102))
	withVoIP := func(tok, voip string) devices.Registration {
		r := deviceRegistration(tok)
		r.VoIPToken = &voip
		return r
	}
	type cost struct{ batchGets, itemsRead, transactions, itemsWritten int }
	tests := []struct {
		name string
		op   func() error
		want cost
	}{
		{"first registration", func() error {
			_, err := svc.Register(ctx, "cost", "alice", "phone", withVoIP(a, v), time.Now())
			return err
		}, cost{batchGets: 1, itemsRead: 0, transactions: 1, itemsWritten: 3}},
		{"refresh", func() error {
			_, err := svc.Register(ctx, "cost", "alice", "phone", withVoIP(a, v), time.Now())
			return err
		}, cost{batchGets: 1, itemsRead: 3, transactions: 1, itemsWritten: 3}},
		{"move of an alert token with its holder's VoIP token", func() error {
			_, err := svc.Register(ctx, "cost", "bob", "phone", deviceRegistration(a), time.Now())
			return err
		}, cost{batchGets: 3, itemsRead: 3, transactions: 1, itemsWritten: 4}},
		{"move of a token held alone", func() error {
			_, err := svc.Register(ctx, "cost", "carol", "phone", deviceRegistration(a), time.Now())
			return err
		}, cost{batchGets: 2, itemsRead: 2, transactions: 1, itemsWritten: 3}},
		{"new token on a bound device", func() error {
			_, err := svc.Register(ctx, "cost", "carol", "phone", deviceRegistration(b), time.Now())
			return err
		}, cost{batchGets: 2, itemsRead: 2, transactions: 1, itemsWritten: 3}},
		{"unregister", func() error {
			return svc.Unregister(ctx, "cost", "carol", "phone", devices.ReasonLogout, time.Now())
		}, cost{batchGets: 2, itemsRead: 2, transactions: 1, itemsWritten: 2}},
		{"unregister of an unbound device", func() error {
			return svc.Unregister(ctx, "cost", "carol", "phone", devices.ReasonLogout, time.Now())
		}, cost{batchGets: 1, itemsRead: 1, transactions: 0, itemsWritten: 0}},
		{"list", func() error {
			_, err := svc.List(ctx, "cost", "alice", time.Now())
			return err
		}, cost{batchGets: 1, itemsRead: 1, transactions: 0, itemsWritten: 0}},
	}
	for _, tt := range tests {
		proxy.Reset()
		if err := tt.op(); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		c := proxy.Counts()
		got := cost{
			batchGets: c["BatchGetItem"].Requests, itemsRead: c["BatchGetItem"].ItemsRead,
			transactions: c["TransactWriteItems"].Requests, itemsWritten: c["TransactWriteItems"].ItemsWritten,
		}
		if got != tt.want {
			t.Errorf("%s costs %+v, want %+v", tt.name, got, tt.want)
		}
		for op, n := range c {
			if op != "BatchGetItem" && op != "TransactWriteItems" && n.Requests > 0 {
				t.Errorf("%s also called %s %d times", tt.name, op, n.Requests)
			}
		}
		t.Logf("%-52s BatchGetItem %d (%d items), TransactWriteItems %d (%d items)", tt.name, got.batchGets, got.itemsRead, got.transactions, got.itemsWritten)
	}
	e.scan(t, "cost").consistent(t)
}

func (e *devicesEnv) testLogsRedactTokens(t *testing.T) {
	logs := e.logs.String()
	if !strings.Contains(logs, "device registered") {
		t.Fatalf("no deviceRegistration was logged; the check would prove nothing")
	}
	deviceLeakCheck.Lock()
	defer deviceLeakCheck.Unlock()
	for _, tok := range deviceLeakCheck.tokens {
		if strings.Contains(logs, tok) || strings.Contains(strings.ToLower(logs), strings.ToLower(tok)) {
			t.Errorf("the log holds the full token …%s", push.Redact(tok))
		}
	}
}

// tokenIndexPK spells the index key the way doc.go defines it, independently
// of the store's code.
func tokenIndexPK(app, vendor, token string) string {
	sum := sha256.Sum256([]byte(token))
	return "t#" + app + "#" + vendor + "#" + hex.EncodeToString(sum[:])
}
