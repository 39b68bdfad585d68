package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/go-cmp/cmp"

	"github.com/offline-push/offline-push/shared/cfn"
	"github.com/offline-push/offline-push/shared/dynamo"
	"github.com/offline-push/offline-push/shared/httpapi"
	"github.com/offline-push/offline-push/shared/ingest"
	"github.com/offline-push/offline-push/shared/push"
	"github.com/offline-push/offline-push/shared/secrets"
	"github.com/offline-push/offline-push/shared/testenv"
)

// The app and API secret of every ingest test.
const (
	ingApp    = "demo"
	ingSecret = "ingest-test-secret"
	ingPath   = "/v1/apps/" + ingApp + "/messages"
)

// ingClock is the ingest router's clock, moved by the tests.
type ingClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *ingClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *ingClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// ingBuffer is a log sink safe for concurrent writes.
type ingBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *ingBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *ingBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ingEnv is one emulator with the template's stack, the devices and
// settings functions built by their constructors (to set state up through
// the real routes), and the ingest route served by the real router and
// verifier, its data path (DynamoDB and SQS) through the fault proxy so
// that tests can count and break it. The verifier talks to the emulator
// directly, so the proxy counts only what ingest does.
type ingEnv struct {
	endpoint string
	stack    *cfn.Stack
	db       *dynamodb.Client // direct, for seeding and checks
	sq       *sqs.Client      // direct, for draining the queues
	env      map[string]string
	urls     map[push.Vendor]string
	devices  HTTPHandler
	settings HTTPHandler
	proxy    *testenv.Proxy
	svc      *ingest.Service
	router   *httpapi.Router
	clock    *ingClock
	logs     *ingBuffer
	nonce    atomic.Int64
	run      string
}

// queueID is the template's logical id of vendor v's queue.
func queueID(v push.Vendor) string {
	return strings.ToUpper(string(v[:1])) + string(v[1:]) + "Queue"
}

// ingCerts are the credentials of the test app, by certName.
var ingCerts = map[string]push.Vendor{
	"ios": push.APNs, "fcm": push.FCM, "hw": push.Huawei, "honor": push.Honor,
	"mi": push.Xiaomi, "oppo": push.OPPO, "vivo": push.Vivo, "mz": push.Meizu,
}

func newIngEnv(tb testing.TB) *ingEnv {
	tb.Helper()
	ctx := context.Background()
	srv := testenv.Moto(tb)
	stack := testenv.Stack(tb, srv.Endpoint)
	cfg := testenv.AWSConfig(srv.Endpoint)
	e := &ingEnv{
		endpoint: srv.Endpoint,
		stack:    stack,
		db:       dynamodb.NewFromConfig(cfg),
		sq:       sqs.NewFromConfig(cfg),
		env:      stack.FunctionEnv("DevicesFunction"),
		urls:     map[push.Vendor]string{},
		clock:    &ingClock{now: time.Now().UTC().Truncate(time.Millisecond)},
		logs:     &ingBuffer{},
		run:      strconv.FormatInt(time.Now().UnixNano(), 36),
	}
	for _, v := range push.Vendors {
		e.urls[v] = stack.Queues[queueID(v)].URL
	}
	sm := secretsmanager.NewFromConfig(cfg)
	create := func(name, value, vendor string) {
		in := &secretsmanager.CreateSecretInput{Name: aws.String(e.env[EnvSecretPrefix] + "/" + ingApp + "/" + name), SecretString: aws.String(value)}
		if vendor != "" {
			in.Tags = []smtypes.Tag{{Key: aws.String("vendor"), Value: aws.String(vendor)}}
		}
		if _, err := sm.CreateSecret(ctx, in); err != nil {
			tb.Fatalf("CreateSecret %s: %v", name, err)
		}
	}
	create("api", `{"apiSecrets": ["`+ingSecret+`"]}`, "")
	for cert, v := range ingCerts {
		create("vendors/"+cert, `{"vendor": "`+string(v)+`"}`, string(v))
	}
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var err error
	if e.devices, err = Devices(ctx, testenv.Env(srv.Endpoint, e.env), log); err != nil {
		tb.Fatalf("Devices: %v", err)
	}
	if e.settings, err = Settings(ctx, testenv.Env(srv.Endpoint, stack.FunctionEnv("SettingsFunction")), log); err != nil {
		tb.Fatalf("Settings: %v", err)
	}
	e.proxy = testenv.NewProxy(tb, srv.Endpoint, testenv.ProxyOptions{Serialize: true})
	pcfg := testenv.AWSConfig(e.proxy.URL)
	e.svc = newIngestService(dynamodb.NewFromConfig(pcfg), sqs.NewFromConfig(pcfg), e.env[EnvStateTable], e.env[EnvRequestTable], e.urls, log)
	e.router = httpapi.New(httpapi.Config{
		Handlers: ingestHandlers(e.svc),
		Verifier: httpapi.NewVerifier(
			secrets.New(sm, e.env[EnvSecretPrefix], time.Now),
			dynamo.NewNonceStore(e.db, e.env[EnvRequestTable]),
		),
		Log: log,
		Now: e.clock.Now,
	})
	return e
}

// send signs a request for the clock reading now and serves it with h.
func (e *ingEnv) send(h HTTPHandler, now time.Time, method, path, body string) (int, string) {
	return e.sendCtx(context.Background(), h, now, method, path, body)
}

// sendCtx is send under ctx, as Lambda passes the invocation's deadline.
func (e *ingEnv) sendCtx(ctx context.Context, h HTTPHandler, now time.Time, method, path, body string) (int, string) {
	ts := strconv.FormatInt(now.Unix(), 10)
	nonce := fmt.Sprintf("ing-%s-%07d", e.run, e.nonce.Add(1))
	resp, err := h(ctx, events.APIGatewayV2HTTPRequest{
		Version:  "2.0",
		RouteKey: "$default",
		RawPath:  path,
		Headers: map[string]string{
			"content-type":     "application/json",
			"x-push-timestamp": ts,
			"x-push-nonce":     nonce,
			"x-push-signature": httpapi.Sign(ingSecret, method, path, "", ts, nonce, []byte(body)),
		},
		Body: body,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			Stage:     "$default",
			RequestID: "ing-req-" + strconv.FormatInt(e.nonce.Add(1), 10),
			HTTP:      events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path},
		},
	})
	if err != nil {
		return -1, err.Error()
	}
	return resp.StatusCode, resp.Body
}

// post sends a message to the ingest route at the ingest clock.
func (e *ingEnv) post(body string) (int, string) {
	return e.send(e.router.Lambda, e.clock.Now(), http.MethodPost, ingPath, body)
}

// route calls a devices or settings route, at the wall clock those
// functions run on, and fails the test unless it answers want.
func (e *ingEnv) route(tb testing.TB, h HTTPHandler, method, path, body string, want int) string {
	tb.Helper()
	status, raw := e.send(h, time.Now(), method, path, body)
	if status != want {
		tb.Fatalf("%s %s: status %d, want %d (body %s)", method, path, status, want, raw)
	}
	return raw
}

func userPath(user string) string { return "/v1/apps/" + ingApp + "/users/" + user }

// device registers a device of user through PUT .../devices/{device}.
func (e *ingEnv) device(tb testing.TB, user, device, body string) {
	tb.Helper()
	e.route(tb, e.devices, http.MethodPut, userPath(user)+"/devices/"+device, body, http.StatusOK)
}

// online puts a device online through PUT .../presence.
func (e *ingEnv) online(tb testing.TB, user, device string, platform push.Platform) {
	tb.Helper()
	e.route(tb, e.devices, http.MethodPut, userPath(user)+"/devices/"+device+"/presence",
		`{"state": "online", "platform": "`+string(platform)+`", "leaseSeconds": 600}`, http.StatusOK)
}

// setting patches a user's app-level settings.
func (e *ingEnv) setting(tb testing.TB, user, body string) string {
	tb.Helper()
	return e.route(tb, e.settings, http.MethodPatch, userPath(user)+"/settings", body, http.StatusOK)
}

// convSetting patches a user's settings of one conversation.
func (e *ingEnv) convSetting(tb testing.TB, user, typ, id, body string) {
	tb.Helper()
	e.route(tb, e.settings, http.MethodPatch, userPath(user)+"/conversations/"+typ+"/"+id+"/settings", body, http.StatusOK)
}

// apnsToken is a distinct APNs token for a name.
func apnsToken(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:])
}

func apnsDevice(name, locale string) string {
	return `{"vendor": "apns", "token": "` + apnsToken(name) + `", "certName": "ios", "locale": "` + locale + `"}`
}

func fcmDevice(name string) string {
	return `{"vendor": "fcm", "token": "fcm-` + name + `", "certName": "fcm"}`
}

// ingResult is the response body of the message route.
type ingResult struct {
	MessageID  string         `json:"messageId"`
	Duplicate  bool           `json:"duplicate"`
	Recipients int            `json:"recipients"`
	Devices    int            `json:"devices"`
	Pushes     int            `json:"pushes"`
	Skipped    map[string]int `json:"skipped"`
	Decisions  *[]ingDecision `json:"decisions"`
}

type ingDecision struct {
	UserID   string  `json:"userId"`
	DeviceID *string `json:"deviceId"`
	Vendor   *string `json:"vendor"`
	Push     bool    `json:"push"`
	Reason   string  `json:"reason"`
	Content  *string `json:"content"`
}

// String is a decision on one line, for readable diffs.
func (d ingDecision) String() string {
	deref := func(s *string) string {
		if s == nil {
			return "-"
		}
		return *s
	}
	verb := "skip"
	if d.Push {
		verb = "push"
	}
	s := d.UserID + " " + deref(d.DeviceID) + " " + deref(d.Vendor) + " " + verb + " " + d.Reason
	if d.Content != nil {
		s += " " + *d.Content
	}
	return s
}

// decisions returns the result's decisions as lines; nil when it has none.
func (r ingResult) decisions() []string {
	if r.Decisions == nil {
		return nil
	}
	out := []string{}
	for _, d := range *r.Decisions {
		out = append(out, d.String())
	}
	return out
}

// mustPost posts body and decodes the answer, failing unless the status is
// want.
func (e *ingEnv) mustPost(tb testing.TB, body string, want int) ingResult {
	tb.Helper()
	status, raw := e.post(body)
	if status != want {
		tb.Fatalf("POST messages: status %d, want %d (body %.400s)", status, want, raw)
	}
	var r ingResult
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		tb.Fatalf("decode %.400s: %v", raw, err)
	}
	return r
}

// msg builds a message body from members given as JSON texts.
func msg(members map[string]string) string {
	keys := make([]string, 0, len(members))
	for k := range members {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = `"` + k + `": ` + members[k]
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func jsonList(ids []string) string {
	b, _ := json.Marshal(ids)
	return string(b)
}

// drain receives and deletes every message of every vendor queue.
func (e *ingEnv) drain(tb testing.TB) map[push.Vendor][]*push.Envelope {
	tb.Helper()
	out := map[push.Vendor][]*push.Envelope{}
	deadline := time.Now().Add(time.Minute)
	for _, v := range push.Vendors {
		for {
			if time.Now().After(deadline) {
				tb.Fatal("queues did not drain within a minute")
			}
			res, err := e.sq.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
				QueueUrl: aws.String(e.urls[v]), MaxNumberOfMessages: 10, VisibilityTimeout: 900,
			})
			if err != nil {
				tb.Fatalf("ReceiveMessage %s: %v", v, err)
			}
			if len(res.Messages) == 0 {
				break
			}
			for _, m := range res.Messages {
				env, err := push.DecodeEnvelope([]byte(aws.ToString(m.Body)))
				if err != nil {
					tb.Fatalf("decode envelope on %s: %v", v, err)
				}
				if env.Vendor != v {
					tb.Errorf("envelope of vendor %s on the %s queue", env.Vendor, v)
				}
				out[v] = append(out[v], env)
				if _, err := e.sq.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(e.urls[v]), ReceiptHandle: m.ReceiptHandle}); err != nil {
					tb.Fatalf("DeleteMessage: %v", err)
				}
			}
		}
	}
	return out
}

// sentTarget is one target as it arrived on a queue, with its text.
type sentTarget struct {
	Vendor push.Vendor
	User   string
	Device string
	Kind   push.TokenKind
	Title  string
	Body   string
}

// targets flattens envelopes into their targets, and counts each.
func targets(envs map[push.Vendor][]*push.Envelope) map[sentTarget]int {
	out := map[sentTarget]int{}
	for v, es := range envs {
		for _, e := range es {
			for _, t := range e.Targets {
				tx := e.Texts[t.Text]
				out[sentTarget{Vendor: v, User: t.UserID, Device: t.DeviceID, Kind: t.TokenKind(), Title: tx.Title, Body: tx.Body}]++
			}
		}
	}
	return out
}

func envelopeCount(envs map[push.Vendor][]*push.Envelope) int {
	n := 0
	for _, es := range envs {
		n += len(es)
	}
	return n
}

// TestIngestDecisions is the decision matrix through the message route:
// every user's state is set up through the real device, presence and
// settings routes, and each message is a dry run with explain, so every
// reason code of API.md §6 shows in a decision.
func TestIngestDecisions(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto_server")
	}
	e := newIngEnv(t)
	seen := map[string]bool{}
	check := func(name string, r ingResult, want []string) {
		t.Helper()
		if diff := cmp.Diff(want, r.decisions()); diff != "" {
			t.Errorf("%s: decisions (-want +got):\n%s", name, diff)
		}
		for _, d := range *r.Decisions {
			seen[d.Reason] = true
		}
	}

	// State, through the real routes.
	e.device(t, "u-online", "phone", apnsDevice("u-online", "en-US"))
	e.device(t, "u-online", "tab", fcmDevice("u-online"))
	e.online(t, "u-online", "phone", push.PlatformIOS)
	e.device(t, "u-allofl", "phone", apnsDevice("u-allofl", "en-US"))
	e.setting(t, "u-allofl", `{"multiDevicePolicy": "all_offline"}`)
	e.online(t, "u-allofl", "pc", push.PlatformPC)
	e.device(t, "u-desk", "phone", fcmDevice("u-desk"))
	e.setting(t, "u-desk", `{"mobilePushWhenDesktopOnline": false}`)
	e.online(t, "u-desk", "web", push.PlatformWeb)
	for _, u := range []string{"u-rnone", "u-at", "u-atm", "u-dur", "u-dconv", "u-cnone", "u-cover", "u-forced", "u-priv", "u-win", "u-peer", "u-callee2"} {
		e.device(t, u, "phone", fcmDevice(u))
	}
	e.setting(t, "u-rnone", `{"remindType": "NONE"}`)
	e.setting(t, "u-at", `{"remindType": "AT"}`)
	e.setting(t, "u-atm", `{"remindType": "AT"}`)
	durRaw := e.setting(t, "u-dur", `{"dnd": {"durationMs": 3600000}}`)
	e.convSetting(t, "u-dconv", "group", "g1", `{"dnd": {"durationMs": 3600000}}`)
	e.convSetting(t, "u-cnone", "group", "g1", `{"remindType": "NONE"}`)
	e.setting(t, "u-cover", `{"remindType": "NONE"}`)
	e.convSetting(t, "u-cover", "group", "g1", `{"remindType": "ALL"}`)
	e.setting(t, "u-forced", `{"remindType": "NONE", "dnd": {"durationMs": 3600000}}`)
	e.setting(t, "u-priv", `{"showPreview": false}`)
	e.setting(t, "u-win", `{"dnd": {"window": {"start": "22:00", "end": "07:30", "timezone": "Asia/Shanghai"}}}`)
	e.convSetting(t, "u-peer", "peer", "alice", `{"remindType": "NONE"}`)
	e.device(t, "u-lang", "phone", apnsDevice("u-lang", "zh-CN"))
	e.setting(t, "u-lang", `{"language": "en"}`)
	e.device(t, "u-loc", "phone", apnsDevice("u-loc", "zh-Hans-CN"))
	e.device(t, "u-callee", "phone", `{"vendor": "apns", "token": "`+apnsToken("u-callee")+`", "certName": "ios", "voipToken": "`+apnsToken("u-callee-voip")+`"}`)
	e.device(t, "u-callee", "tab", fcmDevice("u-callee"))

	base := map[string]string{
		"type":         `"message"`,
		"sender":       `{"userId": "alice", "nickname": "Alice"}`,
		"conversation": `{"type": "group", "id": "g1"}`,
		"push":         `{"content": "lunch?", "translations": {"en": "lunch (en)?", "zh": "吃饭吗?"}}`,
		"dryRun":       "true",
		"explain":      "true",
	}
	with := func(id string, over map[string]string) string {
		m := map[string]string{"messageId": `"` + id + `"`}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range over {
			m[k] = v
		}
		return msg(m)
	}

	t.Run("group message", func(t *testing.T) {
		r := e.mustPost(t, with("m-a", map[string]string{
			"recipients": jsonList([]string{"u-none", "u-online", "u-allofl", "u-desk", "u-rnone", "u-at", "u-atm", "u-dur",
				"u-dconv", "u-cnone", "u-cover", "u-forced", "u-lang", "u-loc", "u-priv", "alice", "u-none"}),
			"mentions":  `{"userIds": ["u-atm"]}`,
			"forcePush": `{"userIds": ["u-forced"], "content": "urgent: lunch?"}`,
		}), http.StatusOK)
		check("group message", r, []string{
			"u-none - - skip no_devices",
			"u-online phone apns skip device_online",
			"u-online tab fcm push remind_all Alice: lunch?",
			"u-allofl phone apns skip user_online",
			"u-desk phone fcm skip desktop_online",
			"u-rnone phone fcm skip remind_none",
			"u-at phone fcm skip not_mentioned",
			"u-atm phone fcm push mentioned Alice: lunch?",
			"u-dur phone fcm skip dnd_duration",
			"u-dconv phone fcm skip dnd_conversation",
			"u-cnone phone fcm skip remind_none",
			"u-cover phone fcm push remind_all Alice: lunch?",
			"u-forced phone fcm push forced urgent: lunch?",
			"u-lang phone apns push remind_all Alice: lunch (en)?",
			"u-loc phone apns push remind_all Alice: 吃饭吗?",
			"u-priv phone fcm push remind_all You have a new message",
		})
		want := ingResult{MessageID: "m-a", Recipients: 15, Devices: 15, Pushes: 7, Skipped: map[string]int{
			"no_devices": 1, "device_online": 1, "user_online": 1, "desktop_online": 1, "remind_none": 2,
			"not_mentioned": 1, "dnd_duration": 1, "dnd_conversation": 1,
		}, Decisions: r.Decisions}
		if diff := cmp.Diff(want, r); diff != "" {
			t.Errorf("counts (-want +got):\n%s", diff)
		}
	})

	t.Run("@all, chatroom and peer", func(t *testing.T) {
		r := e.mustPost(t, with("m-b", map[string]string{
			"conversation": `{"type": "group", "id": "g2"}`,
			"recipients":   `["u-online", "u-at", "u-rnone"]`,
			"mentions":     `{"all": true}`,
		}), http.StatusOK)
		check("@all", r, []string{
			"u-online phone apns skip device_online",
			"u-online tab fcm push mentioned_all Alice: lunch?",
			"u-at phone fcm push mentioned_all Alice: lunch?",
			"u-rnone phone fcm skip remind_none",
		})
		r = e.mustPost(t, with("m-c", map[string]string{
			"conversation": `{"type": "chatroom", "id": "room"}`,
			"recipients":   `["u-online", "u-none"]`,
		}), http.StatusOK)
		check("chatroom", r, []string{"u-online - - skip chatroom", "u-none - - skip chatroom"})
		if r.Devices != 0 || r.Pushes != 0 || r.Skipped["chatroom"] != 2 {
			t.Errorf("chatroom counts = %+v", r)
		}
		// A peer conversation's settings are keyed by the sender, whatever
		// conversation.id says; @all means nothing in a peer chat.
		r = e.mustPost(t, with("m-d", map[string]string{
			"conversation": `{"type": "peer", "id": "ignored"}`,
			"recipients":   `["u-peer", "u-at"]`,
			"mentions":     `{"all": true}`,
		}), http.StatusOK)
		check("peer from alice", r, []string{"u-peer phone fcm skip remind_none", "u-at phone fcm skip not_mentioned"})
		r = e.mustPost(t, with("m-e", map[string]string{
			"sender":       `{"userId": "bob"}`,
			"conversation": `{"type": "peer"}`,
			"recipients":   `["u-peer"]`,
		}), http.StatusOK)
		check("peer from bob", r, []string{"u-peer phone fcm push remind_all bob: lunch?"})
	})

	t.Run("quiet hours at their boundaries", func(t *testing.T) {
		for _, c := range []struct{ at, want string }{
			{"2030-01-01T13:59:59.999Z", "u-win phone fcm push remind_all Alice: lunch?"}, // 21:59:59.999 in Shanghai
			{"2030-01-01T14:00:00.000Z", "u-win phone fcm skip dnd_window"},               // 22:00
			{"2030-01-02T06:00:00+08:00", "u-win phone fcm skip dnd_window"},              // past midnight
			{"2030-01-01T23:29:59.999Z", "u-win phone fcm skip dnd_window"},               // 07:29:59.999
			{"2030-01-01T23:30:00.000Z", "u-win phone fcm push remind_all Alice: lunch?"}, // 07:30
		} {
			r := e.mustPost(t, with("m-w", map[string]string{"recipients": `["u-win"]`, "evaluateAt": `"` + c.at + `"`}), http.StatusOK)
			check("window at "+c.at, r, []string{c.want})
		}
		var st struct {
			DND struct {
				Until string `json:"until"`
			} `json:"dnd"`
		}
		if err := json.Unmarshal([]byte(durRaw), &st); err != nil {
			t.Fatal(err)
		}
		until, err := time.Parse(time.RFC3339Nano, st.DND.Until)
		if err != nil {
			t.Fatalf("dnd.until %q: %v", st.DND.Until, err)
		}
		for _, c := range []struct {
			at   time.Time
			want string
		}{
			{until.Add(-time.Millisecond), "u-dur phone fcm skip dnd_duration"},
			{until, "u-dur phone fcm push remind_all Alice: lunch?"},
		} {
			at := c.at.UTC().Format("2006-01-02T15:04:05.000Z")
			r := e.mustPost(t, with("m-u", map[string]string{"recipients": `["u-dur"]`, "evaluateAt": `"` + at + `"`}), http.StatusOK)
			check("duration at "+at, r, []string{c.want})
		}
	})

	t.Run("forced against NONE, AT and DND", func(t *testing.T) {
		r := e.mustPost(t, with("m-f", map[string]string{
			"recipients": `["u-rnone", "u-at", "u-dur", "u-dconv", "u-online"]`,
			"forcePush":  `{"all": true, "content": "urgent"}`,
		}), http.StatusOK)
		check("forced", r, []string{
			"u-rnone phone fcm push forced urgent",
			"u-at phone fcm push forced urgent",
			"u-dur phone fcm push forced urgent",
			"u-dconv phone fcm push forced urgent",
			"u-online phone apns skip device_online",
			"u-online tab fcm push forced urgent",
		})
		r = e.mustPost(t, with("m-g", map[string]string{
			"recipients": `["u-win"]`,
			"forcePush":  `{"userIds": ["u-win"]}`,
			"evaluateAt": `"2030-01-01T15:00:00.000Z"`,
		}), http.StatusOK)
		check("forced in the window", r, []string{"u-win phone fcm push forced Alice: lunch?"})
	})

	t.Run("calls", func(t *testing.T) {
		invite := func(id, call string, over map[string]string) string {
			m := map[string]string{
				"type":         `"call_invite"`,
				"conversation": `{"type": "peer"}`,
				"push":         `{"content": "Incoming call"}`,
				"call":         `{"callId": "` + call + `", "timeoutSeconds": 30}`,
				"recipients":   `["u-callee"]`,
				"dryRun":       "false",
			}
			for k, v := range over {
				m[k] = v
			}
			return with(id, m)
		}
		r := e.mustPost(t, invite("m-call-new", "c-new", nil), http.StatusAccepted)
		check("invite", r, []string{
			"u-callee phone apns push call Alice: Incoming call",
			"u-callee tab fcm push call Alice: Incoming call",
		})
		// An invite of an older call, judged as if accepted a minute before
		// the stored one: superseded.
		before := e.clock.Now().Add(-time.Minute).Format("2006-01-02T15:04:05.000Z")
		r = e.mustPost(t, invite("m-call-old", "c-old", map[string]string{"dryRun": "true", "evaluateAt": `"` + before + `"`}), http.StatusOK)
		check("older invite", r, []string{
			"u-callee phone apns skip call_superseded",
			"u-callee tab fcm skip call_superseded",
		})
		// An invite whose first attempt failed, retried after its timeout:
		// the call expired.
		e.proxy.SetOptions(testenv.ProxyOptions{Serialize: true, FailAfter: map[string]int{"BatchGetItem": 0}})
		body := invite("m-call-exp", "c-exp", map[string]string{"recipients": `["u-callee2"]`, "call": `{"callId": "c-exp", "timeoutSeconds": 1}`})
		if status, raw := e.post(body); status != http.StatusInternalServerError {
			t.Fatalf("invite while DynamoDB fails: status %d, want 500 (%s)", status, raw)
		}
		e.proxy.SetOptions(testenv.ProxyOptions{Serialize: true})
		e.clock.Add(2 * time.Second)
		r = e.mustPost(t, body, http.StatusAccepted)
		check("expired invite", r, []string{"u-callee2 phone fcm skip call_expired"})
		e.drain(t)
	})

	var missing []string
	for _, r := range push.Reasons {
		if !seen[string(r)] {
			missing = append(missing, string(r))
		}
	}
	if len(missing) > 0 {
		t.Errorf("reasons never decided: %v", missing)
	}
}

// seedMember is one recipient seeded straight into the table, for the
// tests of large groups where thousands of signed requests would only add
// time.
type seedMember struct {
	user   string
	vendor push.Vendor // APNs or FCM
	locale string
	online bool
}

// seed writes the members' profile and presence items in the layout of
// shared/dynamo/doc.go with BatchWriteItem, 25 items a call: seeding
// thousands of members through TransactWriteItems one by one would take
// minutes on moto. The codecs themselves are checked against the real
// stores in shared/dynamo's tests.
func (e *ingEnv) seed(tb testing.TB, members []seedMember) {
	tb.Helper()
	ctx := context.Background()
	table := e.env[EnvStateTable]
	now := time.Now().UTC().Truncate(time.Millisecond)
	s := func(v string) ddbtypes.AttributeValue { return &ddbtypes.AttributeValueMemberS{Value: v} }
	n := func(v int64) ddbtypes.AttributeValue {
		return &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
	}
	var writes []ddbtypes.WriteRequest
	for _, m := range members {
		pk := "u#" + ingApp + "#" + m.user
		b := map[string]ddbtypes.AttributeValue{
			"vn": s(string(m.vendor)), "pl": s(string(push.DefaultPlatform(m.vendor))),
			"l": s(m.locale), "r": n(now.UnixMilli()),
		}
		switch m.vendor {
		case push.APNs:
			b["t"], b["c"], b["e"] = s(apnsToken(m.user)), s("ios"), s(string(push.Production))
		default:
			b["t"], b["c"] = s("fcm-"+m.user+"-"+strings.Repeat("x", 140)), s("fcm")
		}
		writes = append(writes, ddbtypes.WriteRequest{PutRequest: &ddbtypes.PutRequest{Item: map[string]ddbtypes.AttributeValue{
			"pk": s(pk), "sk": s("profile"), "d#phone": &ddbtypes.AttributeValueMemberM{Value: b},
		}}})
		if m.online {
			lease := map[string]ddbtypes.AttributeValue{
				"e": n(0), "u": n(now.Add(time.Hour).UnixMilli()), "pl": s(string(push.DefaultPlatform(m.vendor))),
			}
			writes = append(writes, ddbtypes.WriteRequest{PutRequest: &ddbtypes.PutRequest{Item: map[string]ddbtypes.AttributeValue{
				"pk": s(pk), "sk": s("presence"), "p#phone": &ddbtypes.AttributeValueMemberM{Value: lease},
				"ttl": n(now.Add(8 * 24 * time.Hour).Unix()),
			}}})
		}
	}
	for len(writes) > 0 {
		batch := writes[:min(25, len(writes))]
		writes = writes[len(batch):]
		for len(batch) > 0 {
			out, err := e.db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]ddbtypes.WriteRequest{table: batch}})
			if err != nil {
				tb.Fatalf("seed: %v", err)
			}
			batch = out.UnprocessedItems[table]
		}
	}
}

// group returns n members: even ones on APNs, odd ones on FCM, locales
// cycling en-US, zh-CN, fr-FR, and 30% offline (i % 10 < 3).
func group(prefix string, n int) []seedMember {
	locales := []string{"en-US", "zh-CN", "fr-FR"}
	out := make([]seedMember, n)
	for i := range out {
		v := push.APNs
		if i%2 == 1 {
			v = push.FCM
		}
		out[i] = seedMember{user: fmt.Sprintf("%s%05d", prefix, i), vendor: v, locale: locales[i%3], online: i%10 >= 3}
	}
	return out
}

// groupText is the body a member of group gets for groupMessage.
func groupText(m seedMember) string {
	switch m.locale {
	case "en-US":
		return "Alice: lunch?"
	case "zh-CN":
		return "Alice: 吃饭吗?"
	}
	return "Alice: lunch? (original)"
}

func groupMessage(id string, members []seedMember, extra map[string]string) string {
	users := make([]string, len(members))
	for i, m := range members {
		users[i] = m.user
	}
	m := map[string]string{
		"messageId":    `"` + id + `"`,
		"type":         `"message"`,
		"sender":       `{"userId": "alice", "nickname": "Alice"}`,
		"conversation": `{"type": "group", "id": "big"}`,
		"recipients":   jsonList(users),
		"push":         `{"content": "lunch? (original)", "translations": {"en": "lunch?", "zh": "吃饭吗?"}}`,
	}
	for k, v := range extra {
		m[k] = v
	}
	return msg(m)
}

// wantTargets is every offline member's device, once, with its text.
func wantTargets(members []seedMember) map[sentTarget]int {
	out := map[sentTarget]int{}
	for _, m := range members {
		if !m.online {
			out[sentTarget{Vendor: m.vendor, User: m.user, Device: "phone", Kind: push.TokenAlert, Title: "Alice", Body: groupText(m)}] = 1
		}
	}
	return out
}

// ddbCounts sums the proxy's DynamoDB requests: reads, writes and items.
type ddbCounts struct {
	reads, writes, itemsRead, sqsCalls int
}

func countRequests(p *testenv.Proxy) ddbCounts {
	var c ddbCounts
	for op, n := range p.Counts() {
		switch op {
		case "GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems":
			c.reads += n.Requests
			c.itemsRead += n.ItemsRead
		case "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems":
			c.writes += n.Requests
		case "SendMessageBatch", "SendMessage":
			c.sqsCalls += n.Requests
		}
	}
	return c
}

// TestIngestGroup sends one message to a 1,000-member group and checks the
// envelopes on the queues and the requests it took.
func TestIngestGroup(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto_server")
	}
	e := newIngEnv(t)
	members := group("g", 1000)
	e.seed(t, members)

	e.proxy.Reset()
	r := e.mustPost(t, groupMessage("m-group", members, nil), http.StatusAccepted)
	c := countRequests(e.proxy)
	const recipients = 1000
	if r.Recipients != recipients || r.Devices != 1000 || r.Pushes != 300 || r.Skipped["device_online"] != 700 || r.Decisions != nil {
		t.Errorf("result = %+v, want 1000 recipients and devices, 300 pushes, 700 device_online, no decisions", r)
	}
	envs := e.drain(t)
	if diff := cmp.Diff(wantTargets(members), targets(envs)); diff != "" {
		t.Errorf("targets on the queues (-want +got):\n%s", diff)
	}
	if n := envelopeCount(envs); n != 2 || len(envs[push.APNs]) != 1 || len(envs[push.FCM]) != 1 {
		t.Errorf("%d envelopes (apns %d, fcm %d), want one per vendor", n, len(envs[push.APNs]), len(envs[push.FCM]))
	}
	for v, es := range envs {
		for _, env := range es {
			b, _ := push.EncodeEnvelope(env)
			collapse, _ := push.CollapseFor(v, push.MessageCollapseKey("m-group"))
			if env.App != ingApp || env.MessageID != "m-group" || env.Kind != push.KindMessage || env.Priority != push.PriorityNormal ||
				!env.Badge || env.CollapseID != collapse || env.SenderID != "alice" || env.ConversationID != "big" ||
				env.ExpiresAt != e.clock.Now().Add(push.DefaultTTL).UnixMilli() || len(env.Texts) != 3 || len(b) > push.MaxEnvelopeBytes {
				t.Errorf("%s envelope: %+v (%d texts, %d bytes)", v, env, len(env.Texts), len(b))
			}
		}
	}

	// Cost bounds (DESIGN.md, Data and cost), counted by the proxy.
	if max := int(math.Ceil(4*recipients/100.0)) + 2; c.reads > max {
		t.Errorf("DynamoDB read requests = %d, want at most ceil(4R/100)+2 = %d", c.reads, max)
	}
	if c.itemsRead > 4*recipients {
		t.Errorf("items read = %d, want at most 4 per recipient (%d)", c.itemsRead, 4*recipients)
	}
	// Writes: the claim, one progress record per SendMessageBatch, the result.
	if c.writes > 2+c.sqsCalls {
		t.Errorf("DynamoDB write requests = %d, want at most 2 + %d SendMessageBatch calls: no write per recipient", c.writes, c.sqsCalls)
	}
	if max := 2 + int(math.Ceil(300/5000.0)); c.sqsCalls > max {
		t.Errorf("SendMessageBatch calls = %d, want at most one per vendor queue touched plus one per 5,000 pushes (%d)", c.sqsCalls, max)
	}
	t.Logf("1,000-member group: %d DynamoDB reads (%d items), %d writes, %d SendMessageBatch for %d pushes", c.reads, c.itemsRead, c.writes, c.sqsCalls, r.Pushes)

	t.Run("peer message", func(t *testing.T) {
		e.proxy.Reset()
		r := e.mustPost(t, msg(map[string]string{
			"messageId":    `"m-peer"`,
			"type":         `"message"`,
			"sender":       `{"userId": "alice", "nickname": "Alice"}`,
			"conversation": `{"type": "peer"}`,
			"recipients":   `["g00001"]`,
			"push":         `{"content": "hi"}`,
		}), http.StatusAccepted)
		c := countRequests(e.proxy)
		if r.Pushes != 1 || c.reads != 1 || c.sqsCalls != 1 || c.itemsRead > 4 || c.writes > 3 {
			t.Errorf("peer message: %d pushes, %d reads (%d items), %d writes, %d SendMessageBatch; want 1 push, 1 read, 1 SendMessageBatch",
				r.Pushes, c.reads, c.itemsRead, c.writes, c.sqsCalls)
		}
		got := targets(e.drain(t))
		want := map[sentTarget]int{{Vendor: push.FCM, User: "g00001", Device: "phone", Kind: push.TokenAlert, Title: "Alice", Body: "Alice: hi"}: 1}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("peer targets (-want +got):\n%s", diff)
		}
	})

	t.Run("dry run touches no record", func(t *testing.T) {
		e.proxy.Reset()
		e.mustPost(t, groupMessage("m-group", members[:50], map[string]string{"dryRun": "true"}), http.StatusOK)
		for op, n := range e.proxy.Counts() {
			if op != "BatchGetItem" && n.Requests > 0 {
				t.Errorf("dry run made %d %s requests, want BatchGetItem only", n.Requests, op)
			}
		}
		if got := envelopeCount(e.drain(t)); got != 0 {
			t.Errorf("dry run enqueued %d envelopes", got)
		}
	})
}

// TestIngestDuplicates posts one message ten times at once: exactly one
// request enqueues, and every later repeat answers the first result.
func TestIngestDuplicates(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto_server")
	}
	e := newIngEnv(t)
	e.device(t, "bob", "phone", apnsDevice("bob", "en"))
	e.device(t, "carol", "phone", fcmDevice("carol"))
	e.device(t, "dave", "phone", fcmDevice("dave"))
	body := msg(map[string]string{
		"messageId":    `"m-dup"`,
		"type":         `"message"`,
		"sender":       `{"userId": "alice"}`,
		"conversation": `{"type": "group", "id": "g1"}`,
		"recipients":   `["bob", "carol", "dave"]`,
		"push":         `{"content": "hi"}`,
		"explain":      "true",
	})
	const n = 10
	statuses := make([]int, n)
	bodies := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], bodies[i] = e.post(body)
		}()
	}
	wg.Wait()
	accepted := 0
	var first ingResult
	for i, s := range statuses {
		switch s {
		case http.StatusAccepted:
			accepted++
			if err := json.Unmarshal([]byte(bodies[i]), &first); err != nil {
				t.Fatal(err)
			}
		case http.StatusConflict:
			if !strings.Contains(bodies[i], `"code":"conflict"`) {
				t.Errorf("409 body %s", bodies[i])
			}
		case http.StatusOK:
			if !strings.Contains(bodies[i], `"duplicate":true`) {
				t.Errorf("200 body %s, want a duplicate", bodies[i])
			}
		default:
			t.Errorf("concurrent post %d: status %d (%s)", i, s, bodies[i])
		}
	}
	if accepted != 1 {
		t.Fatalf("%d of %d concurrent posts were accepted (statuses %v), want exactly 1", accepted, n, statuses)
	}
	envs := e.drain(t)
	if got := targets(envs); len(got) != 3 || envelopeCount(envs) != 2 {
		t.Errorf("enqueued %d envelopes with targets %v, want 2 envelopes, 3 targets, once each", envelopeCount(envs), got)
	}
	for _, c := range targets(envs) {
		if c != 1 {
			t.Errorf("a target was enqueued %d times", c)
		}
	}

	// A later repeat answers the first result, whatever its body says, and
	// pushes nothing.
	first.Duplicate = true
	other := strings.Replace(body, `["bob", "carol", "dave"]`, `["erin"]`, 1)
	for _, b := range []string{body, other} {
		r := e.mustPost(t, b, http.StatusOK)
		if diff := cmp.Diff(first, r); diff != "" {
			t.Errorf("repeat (-want +got):\n%s", diff)
		}
	}
	if got := envelopeCount(e.drain(t)); got != 0 {
		t.Errorf("repeats enqueued %d envelopes", got)
	}
}

// TestIngestCalls checks that a newer invite supersedes an older one, and
// that a cancel marks the call cancelled and enqueues cancel targets for
// the devices the invite went to.
func TestIngestCalls(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto_server")
	}
	e := newIngEnv(t)
	e.device(t, "bob", "phone", `{"vendor": "apns", "token": "`+apnsToken("bob")+`", "certName": "ios", "voipToken": "`+apnsToken("bob-voip")+`"}`)
	e.device(t, "bob", "tab", `{"vendor": "xiaomi", "token": "mi-bob", "certName": "mi"}`)
	e.device(t, "carol", "phone", fcmDevice("carol"))
	e.online(t, "carol", "phone", push.PlatformAndroid)
	calls := dynamo.NewCallStore(e.db, e.env[EnvStateTable])
	call := func(id, typ, callID string, extra map[string]string) string {
		m := map[string]string{
			"messageId":    `"` + id + `"`,
			"type":         `"` + typ + `"`,
			"sender":       `{"userId": "alice", "nickname": "Alice"}`,
			"conversation": `{"type": "group", "id": "g1"}`,
			"recipients":   `["bob", "carol"]`,
			"call":         `{"callId": "` + callID + `", "media": "video", "timeoutSeconds": 45}`,
			"explain":      "true",
		}
		if typ == "call_invite" {
			m["push"] = `{"content": "Incoming call"}`
		}
		for k, v := range extra {
			m[k] = v
		}
		return msg(m)
	}
	bobCollapse := func(v push.Vendor) string { id, _ := push.CollapseFor(v, push.CallCollapseKey("bob")); return id }

	r := e.mustPost(t, call("m-1", "call_invite", "c-1", nil), http.StatusAccepted)
	if r.Pushes != 2 {
		t.Errorf("first invite: %d pushes, want 2 (%v)", r.Pushes, r.decisions())
	}
	e.drain(t)
	e.clock.Add(time.Second)
	second := e.clock.Now()
	r = e.mustPost(t, call("m-2", "call_invite", "c-2", nil), http.StatusAccepted)
	want := []string{
		"bob phone apns push call Alice: Incoming call",
		"bob tab xiaomi push call Alice: Incoming call",
		"carol phone fcm skip device_online",
	}
	if diff := cmp.Diff(want, r.decisions()); diff != "" {
		t.Errorf("second invite (-want +got):\n%s", diff)
	}
	envs := e.drain(t)
	wantTargets := map[sentTarget]int{
		{Vendor: push.APNs, User: "bob", Device: "phone", Kind: push.TokenVoIP, Title: "Alice", Body: "Alice: Incoming call"}:  1,
		{Vendor: push.Xiaomi, User: "bob", Device: "tab", Kind: push.TokenAlert, Title: "Alice", Body: "Alice: Incoming call"}: 1,
	}
	if diff := cmp.Diff(wantTargets, targets(envs)); diff != "" {
		t.Errorf("invite targets (-want +got):\n%s", diff)
	}
	for v, es := range envs {
		env := es[0]
		tg := env.Targets[0]
		id, n := env.Collapse(&tg)
		_, wantN := push.CollapseFor(v, push.CallCollapseKey("bob"))
		if env.Kind != push.KindCallInvite || env.CallID != "c-2" || env.Media != push.MediaVideo || env.Priority != push.PriorityHigh ||
			env.ExpiresAt != second.Add(45*time.Second).UnixMilli() || id != bobCollapse(v) || n != wantN {
			t.Errorf("%s invite envelope %+v, target %+v", v, env, tg)
		}
		if v == push.APNs && tg.Token != apnsToken("bob-voip") {
			t.Errorf("VoIP target token ends %s, want the VoIP token", push.Redact(tg.Token))
		}
	}
	st, err := calls.Call(context.Background(), ingApp, "bob", e.clock.Now())
	if err != nil || st == nil || st.Record.CallID != "c-2" || len(st.Devices) != 2 {
		t.Fatalf("bob's call record = %+v, %v; want c-2 with two devices", st, err)
	}

	// An invite of an older call arriving late is superseded and rings nothing.
	e.clock.Add(-time.Minute)
	r = e.mustPost(t, call("m-0", "call_invite", "c-0", nil), http.StatusAccepted)
	want = []string{
		"bob phone apns skip call_superseded",
		"bob tab xiaomi skip call_superseded",
		"carol phone fcm skip device_online",
	}
	if diff := cmp.Diff(want, r.decisions()); diff != "" {
		t.Errorf("late older invite (-want +got):\n%s", diff)
	}
	if n := envelopeCount(e.drain(t)); n != 0 {
		t.Errorf("late older invite enqueued %d envelopes", n)
	}
	e.clock.Add(time.Minute + time.Second)

	// The cancel goes to the devices the invite went to, by the same token
	// kind, without a nickname prefix.
	r = e.mustPost(t, call("m-3", "call_cancel", "c-2", nil), http.StatusAccepted)
	want = []string{
		"bob phone apns push call Missed call",
		"bob tab xiaomi push call Missed call",
	}
	if diff := cmp.Diff(want, r.decisions()); diff != "" {
		t.Errorf("cancel (-want +got):\n%s", diff)
	}
	envs = e.drain(t)
	wantTargets = map[sentTarget]int{
		{Vendor: push.APNs, User: "bob", Device: "phone", Kind: push.TokenVoIP, Title: "Alice", Body: "Missed call"}:  1,
		{Vendor: push.Xiaomi, User: "bob", Device: "tab", Kind: push.TokenAlert, Title: "Alice", Body: "Missed call"}: 1,
	}
	if diff := cmp.Diff(wantTargets, targets(envs)); diff != "" {
		t.Errorf("cancel targets (-want +got):\n%s", diff)
	}
	for v, es := range envs {
		tg := es[0].Targets[0]
		if id, _ := es[0].Collapse(&tg); es[0].Kind != push.KindCallCancel || es[0].Priority != push.PriorityHigh || id != bobCollapse(v) {
			t.Errorf("%s cancel envelope %+v", v, es[0])
		}
	}
	st, err = calls.Call(context.Background(), ingApp, "bob", e.clock.Now())
	if err != nil || st == nil || !st.Record.Cancelled || st.CancelledBy != "m-3" {
		t.Errorf("bob's call after the cancel = %+v, %v; want c-2 cancelled by m-3", st, err)
	}

	// A cancel of a call with no invite on record, and a second cancel
	// message of the cancelled call: 202, no decisions, nothing enqueued.
	for _, b := range []string{call("m-4", "call_cancel", "c-unknown", nil), call("m-5", "call_cancel", "c-2", nil)} {
		r = e.mustPost(t, b, http.StatusAccepted)
		if got := r.decisions(); len(got) != 0 || r.Pushes != 0 || r.Recipients != 2 {
			t.Errorf("cancel without an invite on record: %+v", r)
		}
	}
	if n := envelopeCount(e.drain(t)); n != 0 {
		t.Errorf("cancels without invites enqueued %d envelopes", n)
	}
}

// TestIngestCrashResume crashes a fan-out mid-way (SQS fails after some
// SendMessageBatch calls) and retries it: every target arrives exactly once.
func TestIngestCrashResume(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto_server")
	}
	e := newIngEnv(t)
	members := group("cr", 300)
	for i := range members {
		members[i].online = false
	}
	e.seed(t, members)
	e.svc.ChunkSize = 50 // 6 chunks, two vendor queues each: 12 SendMessageBatch calls
	body := groupMessage("m-crash", members, nil)

	e.proxy.SetOptions(testenv.ProxyOptions{Serialize: true, FailAfter: map[string]int{"SendMessageBatch": 5}})
	if status, raw := e.post(body); status != http.StatusInternalServerError {
		t.Fatalf("post while SQS fails: status %d, want 500 (%s)", status, raw)
	}
	before := e.drain(t)
	if n := envelopeCount(before); n != 5 {
		t.Errorf("%d envelopes arrived before the crash, want 5", n)
	}
	e.proxy.SetOptions(testenv.ProxyOptions{Serialize: true})
	e.proxy.Reset()
	r := e.mustPost(t, body, http.StatusAccepted)
	if r.Pushes != 300 || r.Duplicate {
		t.Errorf("resumed result %+v, want 300 pushes", r)
	}
	if calls := e.proxy.Counts()["SendMessageBatch"].Requests; calls != 7 {
		t.Errorf("the retry made %d SendMessageBatch calls, want the 7 left", calls)
	}
	after := e.drain(t)
	got := targets(before)
	for k, n := range targets(after) {
		got[k] += n
	}
	if diff := cmp.Diff(wantTargets(members), got); diff != "" {
		t.Errorf("targets over both attempts, each once (-want +got):\n%s", diff)
	}
	if r := e.mustPost(t, body, http.StatusOK); !r.Duplicate || r.Pushes != 300 {
		t.Errorf("repeat after the resume = %+v, want the duplicate of the result", r)
	}

	// A request about to reach the function's deadline stops before its
	// next chunk and releases its claim: 409, and the retry goes through at
	// once.
	late := groupMessage("m-deadline", members, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if status, raw := e.sendCtx(ctx, e.router.Lambda, e.clock.Now(), http.MethodPost, ingPath, late); status != http.StatusConflict {
		t.Errorf("post near the deadline: status %d, want 409 (%s)", status, raw)
	}
	if r := e.mustPost(t, late, http.StatusAccepted); r.Pushes != 300 {
		t.Errorf("retry after the deadline stop = %+v, want 300 pushes", r)
	}
	if diff := cmp.Diff(wantTargets(members), targets(e.drain(t))); diff != "" {
		t.Errorf("targets after the deadline stop (-want +got):\n%s", diff)
	}
}

// TestIngestRetries runs a message with a fifth of DynamoDB and SQS
// requests throttled or partially failed: the decisions and the envelopes
// are those of a run without faults.
func TestIngestRetries(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto_server")
	}
	e := newIngEnv(t)
	members := group("rt", 400)
	e.seed(t, members)
	want := e.mustPost(t, groupMessage("m-retry", members, map[string]string{"dryRun": "true", "explain": "true"}), http.StatusOK)

	e.svc.ChunkSize = 100
	e.proxy.SetOptions(testenv.ProxyOptions{Serialize: true, Seed: 42, ThrottleRate: 0.2, UnprocessedRate: 0.2, PartialBatchRate: 0.2})
	e.proxy.Reset()
	got := e.mustPost(t, groupMessage("m-retry", members, map[string]string{"explain": "true"}), http.StatusAccepted)
	counts := e.proxy.Counts()
	e.proxy.SetOptions(testenv.ProxyOptions{Serialize: true})
	if diff := cmp.Diff(want.decisions(), got.decisions()); diff != "" {
		t.Errorf("decisions under faults (-fault-free +faulty):\n%s", diff)
	}
	if diff := cmp.Diff(wantTargets(members), targets(e.drain(t))); diff != "" {
		t.Errorf("targets under faults (-want +got):\n%s", diff)
	}
	for _, op := range []string{"BatchGetItem", "SendMessageBatch"} {
		if counts[op].Faults == 0 {
			t.Errorf("no fault was injected into %s; the retry path went untested", op)
		}
	}
}

// TestIngestBadInput sends one bad request per field through the router.
func TestIngestBadInput(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto_server")
	}
	e := newIngEnv(t)
	good := map[string]string{
		"messageId":    `"m-bad"`,
		"type":         `"message"`,
		"sender":       `{"userId": "alice"}`,
		"conversation": `{"type": "group", "id": "g1"}`,
		"recipients":   `["bob"]`,
		"push":         `{"content": "hi"}`,
	}
	with := func(key, value string) string {
		m := map[string]string{}
		for k, v := range good {
			m[k] = v
		}
		if value == "" {
			delete(m, key)
		} else {
			m[key] = value
		}
		return msg(m)
	}
	tests := []struct {
		name, body, field string
	}{
		{"malformed JSON", `{"messageId": `, ""},
		{"messageId", with("messageId", `"bad id"`), "messageId"},
		{"type", with("type", `"text"`), "type"},
		{"sender.userId", with("sender", `{}`), "sender.userId"},
		{"sender.nickname", with("sender", `{"userId": "alice", "nickname": 5}`), "sender.nickname"},
		{"conversation.type", with("conversation", `{"type": "room", "id": "x"}`), "conversation.type"},
		{"conversation.id", with("conversation", `{"type": "group"}`), "conversation.id"},
		{"recipients", with("recipients", ""), "recipients"},
		{"recipients[i]", with("recipients", `["bob", "b@d!"]`), "recipients[1]"},
		{"mentions.userIds[i]", with("mentions", `{"userIds": ["x y"]}`), "mentions.userIds[0]"},
		{"push.content", with("push", `{"content": ""}`), "push.content"},
		{"push.title", with("push", `{"content": "hi", "title": "`+strings.Repeat("t", 101)+`"}`), "push.title"},
		{"push.translations", with("push", `{"content": "hi", "translations": {"1x": "a"}}`), "push.translations.1x"},
		{"push.payload", with("push", `{"content": "hi", "payload": {"k": "`+strings.Repeat("v", 1100)+`"}}`), "push.payload"},
		{"push.sound", with("push", `{"content": "hi", "sound": "`+strings.Repeat("s", 65)+`"}`), "push.sound"},
		{"push.resourceId", with("push", `{"content": "hi", "resourceId": "`+strings.Repeat("r", 33)+`"}`), "push.resourceId"},
		{"forcePush.userIds[i]", with("forcePush", `{"userIds": ["carol"]}`), "forcePush.userIds[0]"},
		{"call", with("call", `{"callId": "c"}`), "call"},
		{"ttlSeconds", with("ttlSeconds", `2419201`), "ttlSeconds"},
		{"evaluateAt", with("evaluateAt", `"2026-11-22T10:00:00.000Z"`), "evaluateAt"},
		{"unknown member", with("priority", `"high"`), "priority"},
	}
	for _, tt := range tests {
		status, raw := e.post(tt.body)
		var eb httpapi.ErrorBody
		if err := json.Unmarshal([]byte(raw), &eb); err != nil || status != http.StatusBadRequest ||
			eb.Error.Code != httpapi.CodeInvalidArgument || eb.Error.Field != tt.field {
			t.Errorf("%s: status %d body %s, want 400 invalid_argument at %q", tt.name, status, raw, tt.field)
		}
	}
	// Over 5 MiB: 413, before anything else.
	big := with("push", `{"content": "`+strings.Repeat("x", 5<<20)+`"}`)
	if status, _ := e.post(big); status != http.StatusRequestEntityTooLarge {
		t.Errorf("body over 5 MiB: status %d, want 413", status)
	}
	if got := e.proxy.Counts(); len(got) != 0 {
		t.Errorf("bad requests reached DynamoDB or SQS: %v", got)
	}
}

// TestIngestLogs checks that no token and no message text reaches the log.
func TestIngestLogs(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto_server")
	}
	e := newIngEnv(t)
	e.device(t, "bob", "phone", apnsDevice("bob", "en"))
	e.mustPost(t, msg(map[string]string{
		"messageId": `"m-log"`, "type": `"message"`, "sender": `{"userId": "alice"}`,
		"conversation": `{"type": "group", "id": "g1"}`, "recipients": `["bob"]`,
		"push": `{"content": "secret-lunch-plans"}`,
	}), http.StatusAccepted)
	logs := e.logs.String()
	if strings.Contains(logs, apnsToken("bob")) || strings.Contains(logs, "secret-lunch-plans") {
		t.Errorf("the log holds a token or a message text:\n%s", logs)
	}
	var summary struct {
		Msg      string `json:"msg"`
		Pushes   int    `json:"pushes"`
		Enqueued int    `json:"enqueued.apns"`
		AWS      struct {
			CloudWatchMetrics []struct {
				Namespace string
				Metrics   []struct{ Name string }
			}
		} `json:"_aws"`
	}
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, `"msg":"message"`) {
			if err := json.Unmarshal([]byte(line), &summary); err != nil {
				t.Fatalf("summary line %s: %v", line, err)
			}
		}
	}
	if summary.Pushes != 1 || summary.Enqueued != 1 || len(summary.AWS.CloudWatchMetrics) != 1 ||
		summary.AWS.CloudWatchMetrics[0].Namespace != "OfflinePush/Ingest" || len(summary.AWS.CloudWatchMetrics[0].Metrics) == 0 {
		t.Errorf("summary line %+v, want pushes and enqueued.apns 1 as EMF metrics, in:\n%s", summary, logs)
	}
}

// TestIngestFunction checks the wiring of app.Ingest itself: it needs every
// vendor's queue URL, and its handler serves the message route.
func TestIngestFunction(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto_server")
	}
	e := newIngEnv(t)
	env := map[string]string{}
	for k, v := range e.env {
		env[k] = v
	}
	if _, declared := e.stack.Functions["IngestFunction"]; declared {
		env = e.stack.FunctionEnv("IngestFunction")
	} else {
		for _, v := range push.Vendors {
			env[QueueURLEnv(v)] = e.urls[v]
		}
	}
	for _, v := range push.Vendors {
		if env[QueueURLEnv(v)] != e.urls[v] {
			t.Errorf("%s = %q, want the %s queue's URL %q", QueueURLEnv(v), env[QueueURLEnv(v)], queueID(v), e.urls[v])
		}
	}
	partial := map[string]string{}
	for k, v := range env {
		if k != QueueURLEnv(push.Meizu) {
			partial[k] = v
		}
	}
	if _, err := Ingest(context.Background(), testenv.Env(e.endpoint, partial), slog.New(slog.NewJSONHandler(io.Discard, nil))); err == nil {
		t.Error("Ingest without MEIZU_QUEUE_URL = nil error, want one")
	}
	h, err := Ingest(context.Background(), testenv.Env(e.endpoint, env), slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("Ingest: %v", err)
	}
	status, raw := e.send(h, time.Now(), http.MethodPost, ingPath, msg(map[string]string{
		"messageId": `"m-fn"`, "type": `"message"`, "sender": `{"userId": "alice"}`,
		"conversation": `{"type": "group", "id": "g1"}`, "recipients": `["bob"]`,
		"push": `{"content": "hi"}`, "dryRun": "true",
	}))
	if status != http.StatusOK || !strings.Contains(raw, `"no_devices":1`) {
		t.Errorf("dry run through app.Ingest: %d %s", status, raw)
	}
}

// TestIngestSampleEvents runs every sample event of events/ingest through
// the router, freshly signed, and checks the status events/ingest/
// expect.json declares for it, so the samples never drift from the code.
func TestIngestSampleEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto_server")
	}
	e := newIngEnv(t)
	e.device(t, "bob", "phone", apnsDevice("bob", "en-US"))
	dir := filepath.Join("..", "..", "events", "ingest")
	raw, err := os.ReadFile(filepath.Join(dir, "expect.json"))
	if err != nil {
		t.Fatal(err)
	}
	var expect map[string]int
	if err := json.Unmarshal(raw, &expect); err != nil {
		t.Fatalf("expect.json: %v", err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(expect)+1 {
		t.Errorf("events/ingest holds %d events, expect.json declares %d", len(files)-1, len(expect))
	}
	names := make([]string, 0, len(expect))
	for name := range expect {
		names = append(names, name)
	}
	sort.Strings(names) // post-call-1-invite before post-call-2-cancel
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		var ev events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if _, signed := ev.Headers["x-push-signature"]; signed {
			now := e.clock.Now()
			ts := strconv.FormatInt(now.Unix(), 10)
			nonce := fmt.Sprintf("ev-%s-%06d", e.run, e.nonce.Add(1))
			ev.Headers["x-push-timestamp"] = ts
			ev.Headers["x-push-nonce"] = nonce
			ev.Headers["x-push-signature"] = httpapi.Sign(ingSecret, ev.RequestContext.HTTP.Method, ev.RawPath, ev.RawQueryString, ts, nonce, []byte(ev.Body))
		}
		resp, _ := e.router.Lambda(context.Background(), ev)
		if resp.StatusCode != expect[name] {
			t.Errorf("%s: status %d, want %d (body %s)", name, resp.StatusCode, expect[name], resp.Body)
		}
	}
}

// benchIngest measures the requests per push of one message to members,
// posted b.N times under fresh message ids.
func benchIngest(b *testing.B, members []seedMember, body func(id string) string) {
	e := newIngEnv(b)
	e.seed(b, members)
	e.proxy.Reset()
	pushes := 0
	i := 0
	for b.Loop() {
		i++
		r := e.mustPost(b, body(fmt.Sprintf("bench-%d", i)), http.StatusAccepted)
		pushes += r.Pushes
	}
	b.StopTimer()
	c := countRequests(e.proxy)
	if pushes == 0 {
		b.Fatal("no push was made")
	}
	p := float64(pushes)
	b.ReportMetric(float64(c.reads+c.writes)/p, "ddb-req/push")
	b.ReportMetric(float64(c.itemsRead)/p, "items-read/push")
	b.ReportMetric(float64(c.sqsCalls)/p, "sqs-req/push")
	b.ReportMetric(p/float64(i), "pushes/msg")
	e.drain(b)
}

// BenchmarkIngestPeer is a peer message to one offline FCM device.
func BenchmarkIngestPeer(b *testing.B) {
	members := []seedMember{{user: "peer-bob", vendor: push.FCM, locale: "en-US"}}
	benchIngest(b, members, func(id string) string {
		return msg(map[string]string{
			"messageId": `"` + id + `"`, "type": `"message"`, "sender": `{"userId": "alice"}`,
			"conversation": `{"type": "peer"}`, "recipients": `["peer-bob"]`, "push": `{"content": "hi"}`,
		})
	})
}

// BenchmarkIngestGroup is a message to a 1,000-member group: half APNs,
// half FCM, 30% offline.
func BenchmarkIngestGroup(b *testing.B) {
	members := group("bg", 1000)
	benchIngest(b, members, func(id string) string { return groupMessage(id, members, nil) })
}

// TestIngestScale sends one message to 10,000 recipients through the
// handler against moto and reports wall time and peak heap. It is a check
// to run by hand: INGEST_SCALE=1 go test ./shared/app -run TestIngestScale -v
func TestIngestScale(t *testing.T) {
	if testing.Short() || os.Getenv("INGEST_SCALE") == "" {
		t.Skip("set INGEST_SCALE=1 to run the 10,000-recipient scale check")
	}
	n := 10000
	if s := os.Getenv("INGEST_SCALE_N"); s != "" {
		if v, err := strconv.Atoi(s); err == nil && v > 0 {
			n = v
		}
	}
	e := newIngEnv(t)
	members := group("sc", n)
	seedStart := time.Now()
	e.seed(t, members)
	t.Logf("seeded %d members in %v", n, time.Since(seedStart).Round(time.Millisecond))
	body := groupMessage("m-scale", members, nil)

	runtime.GC()
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	// One request alone: nothing to serialize, so reads run concurrently as
	// they would against DynamoDB.
	e.proxy.SetOptions(testenv.ProxyOptions{})
	e.proxy.Reset()
	cpu0 := processCPU()
	start := time.Now()
	r := e.mustPost(t, body, http.StatusAccepted)
	wall := time.Since(start)
	cpu := processCPU() - cpu0
	close(stop)
	<-done
	c := countRequests(e.proxy)
	envs := e.drain(t)
	if diff := cmp.Diff(wantTargets(members), targets(envs)); diff != "" {
		t.Errorf("targets (-want +got):\n%s", diff)
	}
	t.Logf("%d recipients: %d pushes in %d envelopes; wall %v (mostly moto); CPU of this process by the runtime's estimate %v (handler, SDK and proxy); "+
		"peak HeapInuse %.1f MiB; body %d KiB; %d DynamoDB reads (%d items), %d writes, %d SendMessageBatch",
		r.Recipients, r.Pushes, envelopeCount(envs), wall.Round(time.Millisecond), cpu.Round(time.Millisecond),
		float64(peak.Load())/(1<<20), len(body)>>10, c.reads, c.itemsRead, c.writes, c.sqsCalls)
}

// processCPU is the CPU time this process has spent running Go code and
// collecting garbage, as the runtime estimates it (runtime/metrics).
func processCPU() time.Duration {
	samples := []metrics.Sample{{Name: "/cpu/classes/user:cpu-seconds"}, {Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(samples)
	var total float64
	for _, s := range samples {
		if s.Value.Kind() == metrics.KindFloat64 {
			total += s.Value.Float64()
		}
	}
	return time.Duration(total * float64(time.Second))
}
