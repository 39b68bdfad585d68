package huawei_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/offline-push/offline-push/shared/app"
	"github.com/offline-push/offline-push/shared/cfn"
	"github.com/offline-push/offline-push/shared/dynamo"
	huaweiemu "github.com/offline-push/offline-push/shared/emulator/huawei"
	"github.com/offline-push/offline-push/shared/httpapi"
	"github.com/offline-push/offline-push/shared/provider/huawei"
	"github.com/offline-push/offline-push/shared/push"
	"github.com/offline-push/offline-push/shared/testenv"
)

// The end-to-end tests run the real wiring on moto: devices registered
// through the devices function, messages posted to the ingest function
// (API.md §6), its envelopes on the template's Huawei queue, the dispatch
// handler built by app.Dispatch with this provider and the DynamoDB token
// cache, fed by a poller that does what Lambda's event source mapping does,
// and the Huawei emulator at the far end.

const (
	e2eApp    = "demo"
	e2eCert   = "hw"
	e2eSecret = "e2e-api-secret"
)

type e2eEnv struct {
	endpoint string
	stack    *cfn.Stack
	sqs      *sqs.Client
	devices  *dynamo.DeviceStore
	emu      *huaweiemu.Server
	register app.HTTPHandler
	ingest   app.HTTPHandler
	dispatch app.SQSHandler
	queue    string
	dlq      string
	nonce    atomic.Int64
}

func newE2E(t *testing.T, opts huaweiemu.Options) *e2eEnv {
	t.Helper()
	ctx := context.Background()
	srv := testenv.Moto(t)
	stack := testenv.Stack(t, srv.Endpoint)
	cfg := testenv.AWSConfig(srv.Endpoint)
	db := dynamodb.NewFromConfig(cfg)
	e := &e2eEnv{
		endpoint: srv.Endpoint,
		stack:    stack,
		sqs:      sqs.NewFromConfig(cfg),
		devices:  dynamo.NewDeviceStore(db, stack.Tables["StateTable"]),
		emu:      startEmulator(t, opts),
		queue:    stack.Queues["HuaweiQueue"].URL,
		dlq:      stack.Queues["HuaweiDeadLetterQueue"].URL,
	}
	prefix := stack.Parameters["SecretPrefix"]
	sm := secretsmanager.NewFromConfig(cfg)
	for _, s := range []struct{ name, value, vendor string }{
		{"api", `{"apiSecrets": ["` + e2eSecret + `"]}`, ""},
		{"vendors/" + e2eCert, string(credentials(e.emu, nil)), "huawei"},
	} {
		in := &secretsmanager.CreateSecretInput{Name: aws.String(prefix + "/" + e2eApp + "/" + s.name), SecretString: aws.String(s.value)}
		if s.vendor != "" {
			in.Tags = []smtypes.Tag{{Key: aws.String("vendor"), Value: aws.String(s.vendor)}}
		}
		if _, err := sm.CreateSecret(ctx, in); err != nil {
			t.Fatalf("CreateSecret %s: %v", s.name, err)
		}
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	var err error
	if e.register, err = app.Devices(ctx, testenv.Env(srv.Endpoint, stack.FunctionEnv("DevicesFunction")), log); err != nil {
		t.Fatalf("app.Devices: %v", err)
	}
	if e.ingest, err = app.Ingest(ctx, testenv.Env(srv.Endpoint, stack.FunctionEnv("IngestFunction")), log); err != nil {
		t.Fatalf("app.Ingest: %v", err)
	}
	env := stack.FunctionEnv(app.DispatchFunctionID(push.Huawei))
	if env == nil { // until the template declares the function
		env = map[string]string{
			app.EnvStateTable:         stack.Tables["StateTable"],
			app.EnvRequestTable:       stack.Tables["RequestTable"],
			app.EnvSecretPrefix:       prefix,
			app.EnvQueueURL:           e.queue,
			app.EnvDeadLetterQueueURL: e.dlq,
		}
	}
	env[app.EnvMaxReceiveCount] = "4"
	env[app.EnvDispatchBaseDelayMS] = "0"
	getenv := testenv.Env(srv.Endpoint, env)
	cache, err := app.TokenCache(ctx, getenv)
	if err != nil {
		t.Fatalf("app.TokenCache: %v", err)
	}
	if e.dispatch, err = app.Dispatch(ctx, getenv, log, push.Huawei, huawei.New(cache, time.Now, log)); err != nil {
		t.Fatalf("app.Dispatch: %v", err)
	}
	return e
}

// call sends a signed request to h, as API Gateway hands it over, and
// fails the test unless it answers want.
func (e *e2eEnv) call(t *testing.T, h app.HTTPHandler, method, path, body string, want int) string {
	t.Helper()
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	nonce := fmt.Sprintf("e2e-nonce-%08d", e.nonce.Add(1))
	resp, err := h(context.Background(), events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "$default", RawPath: path,
		Headers: map[string]string{
			"content-type":     "application/json",
			"x-push-timestamp": ts,
			"x-push-nonce":     nonce,
			"x-push-signature": httpapi.Sign(e2eSecret, method, path, "", ts, nonce, []byte(body)),
		},
		Body: body,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			Stage: "$default", RequestID: nonce,
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path},
		},
	})
	if err != nil || resp.StatusCode != want {
		t.Fatalf("%s %s: %v, status %d %s, want %d", method, path, err, resp.StatusCode, resp.Body, want)
	}
	return resp.Body
}

// bind registers user's device with token through the devices route.
func (e *e2eEnv) bind(t *testing.T, user, device, token string) {
	t.Helper()
	path := "/v1/apps/" + e2eApp + "/users/" + user + "/devices/" + device
	e.call(t, e.register, http.MethodPut, path, fmt.Sprintf(`{"vendor": "huawei", "token": %q, "certName": %q}`, token, e2eCert), http.StatusOK)
}

// post sends a message to the ingest route and returns how many pushes it
// decided.
func (e *e2eEnv) post(t *testing.T, body string) int {
	t.Helper()
	raw := e.call(t, e.ingest, http.MethodPost, "/v1/apps/"+e2eApp+"/messages", body, http.StatusAccepted)
	var res struct {
		Pushes int `json:"pushes"`
	}
	if err := json.Unmarshal([]byte(raw), &res); err != nil {
		t.Fatalf("ingest answer %s: %v", raw, err)
	}
	return res.Pushes
}

// messageBody is an ingest request of kind to recipients.
func messageBody(id, kind string, recipients []string, extra string) string {
	rs, _ := json.Marshal(recipients)
	conv := `{"type": "group", "id": "g1"}`
	if kind != "message" {
		conv = `{"type": "peer"}`
	}
	return fmt.Sprintf(`{"messageId": %q, "type": %q, "sender": {"userId": "alice", "nickname": "Alice"},
		"conversation": %s, "recipients": %s%s}`, id, kind, conv, rs, extra)
}

// bound reports whether user's device still holds token.
func (e *e2eEnv) bound(t *testing.T, user, device, token string) bool {
	t.Helper()
	bs, _, err := e.devices.Devices(context.Background(), e2eApp, user)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if b.DeviceID == device && b.Token == token {
			return true
		}
	}
	return false
}

// drain feeds the queue to the dispatch handler as Lambda's event source
// mapping does (batches of up to 10, failed records left for redelivery,
// the others deleted) until the queue is empty. A failed record is made
// visible again at once instead of after its visibility timeout, so the
// test need not wait; its receive count still grows.
func (e *e2eEnv) drain(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		res, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(e.queue), MaxNumberOfMessages: 10,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Messages) == 0 {
			if e.depth(t) == 0 {
				return
			}
			continue // delayed or in-flight messages remain
		}
		ev := events.SQSEvent{}
		handles := map[string]*string{}
		for _, m := range res.Messages {
			ev.Records = append(ev.Records, events.SQSMessage{
				MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle),
				Body: aws.ToString(m.Body), Attributes: m.Attributes, EventSource: "aws:sqs",
			})
			handles[aws.ToString(m.MessageId)] = m.ReceiptHandle
		}
		resp, err := e.dispatch(ctx, ev)
		if err != nil {
			t.Fatalf("dispatch handler: %v", err)
		}
		for _, f := range resp.BatchItemFailures {
			if _, err := e.sqs.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
				QueueUrl: aws.String(e.queue), ReceiptHandle: handles[f.ItemIdentifier], VisibilityTimeout: 0,
			}); err != nil {
				t.Fatal(err)
			}
			delete(handles, f.ItemIdentifier)
		}
		for _, h := range handles {
			if _, err := e.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(e.queue), ReceiptHandle: h}); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Fatal("the Huawei queue did not drain within 2 minutes")
}

// depth counts the queue's visible, in-flight and delayed messages.
func (e *e2eEnv) depth(t *testing.T) int {
	t.Helper()
	out, err := e.sqs.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(e.queue),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, k := range []string{"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"} {
		v, _ := strconv.Atoi(out.Attributes[k])
		n += v
	}
	return n
}

// deadLettered returns the tokens of the targets in the dead-letter queue.
func (e *e2eEnv) deadLettered(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	for {
		res, err := e.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(e.dlq), MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Messages) == 0 {
			return out
		}
		for _, m := range res.Messages {
			env, err := push.DecodeEnvelope([]byte(aws.ToString(m.Body)))
			if err != nil {
				t.Fatalf("dead-letter message: %v", err)
			}
			for _, tg := range env.Targets {
				out[tg.Token]++
			}
			e.sqs.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(e.dlq), ReceiptHandle: m.ReceiptHandle})
		}
	}
}

func e2eToken(user string) string { return "IQAAAACy0kYRAAAr-e2e-" + user }

// TestEndToEnd posts a message to three devices, then a call invite and
// its cancel, to the ingest route, and follows them through the whole
// chain to the emulator.
func TestEndToEnd(t *testing.T) {
	e := newE2E(t, huaweiemu.Options{})
	users := []string{"bob", "carol", "dave"}
	for _, u := range users {
		e.bind(t, u, "phone", e2eToken(u))
	}
	if n := e.post(t, messageBody("m-e2e-1", "message", users, `, "push": {"title": "Team", "content": "lunch?", "payload": {"k": "v"}}`)); n != 3 {
		t.Fatalf("ingest decided %d pushes, want 3", n)
	}
	e.drain(t)
	delivered := e.emu.Delivered()
	for _, u := range users {
		if delivered[e2eToken(u)] != 1 {
			t.Errorf("%s: delivered %d times, want 1", u, delivered[e2eToken(u)])
		}
	}
	for _, p := range e.emu.Received() {
		a := p.Request.Message.Android
		if a.Category != "IM" || a.Notification.Title != "Team" || a.Notification.Body != "Alice: lunch?" ||
			p.Data["k"] != "v" || p.Data["messageId"] != "m-e2e-1" {
			t.Errorf("message push: category %s title %q body %q data %v", a.Category, a.Notification.Title, a.Notification.Body, p.Data)
		}
	}

	e.emu.Reset()
	if n := e.post(t, messageBody("c-e2e-invite", "call_invite", []string{"bob"},
		`, "push": {"content": "Incoming call"}, "call": {"callId": "c-e2e", "timeoutSeconds": 60}`)); n != 1 {
		t.Fatalf("ingest decided %d invite pushes, want 1", n)
	}
	e.drain(t)
	e.post(t, messageBody("c-e2e-cancel", "call_cancel", []string{"bob"}, `, "call": {"callId": "c-e2e"}`))
	e.drain(t)

	tag, _ := push.CollapseFor(push.Huawei, push.CallCollapseKey("bob"))
	got := e.emu.Received()
	if len(got) != 2 {
		t.Fatalf("call pushes accepted = %d, want 2 (invite, cancel)", len(got))
	}
	for i, want := range []struct{ kind, body string }{{"call_invite", "Alice: Incoming call"}, {"call_cancel", push.DefaultCancelContent}} {
		a := got[i].Request.Message.Android
		if got[i].Data["type"] != want.kind || a.Notification.Body != want.body || a.Category != "VOIP" || a.Urgency != "HIGH" || a.Notification.Tag != tag {
			t.Errorf("push %d: type %s body %q category %s urgency %s tag %s; want %s %q VOIP HIGH %s",
				i, got[i].Data["type"], a.Notification.Body, a.Category, a.Urgency, a.Notification.Tag, want.kind, want.body, tag)
		}
	}
	secs, _ := strconv.Atoi(strings.TrimSuffix(got[0].Request.Message.Android.TTL, "s"))
	if secs < 1 || secs > 60 {
		t.Errorf("invite ttl = %s, want the call's time left (at most 60s)", got[0].Request.Message.Android.TTL)
	}
	if got[0].Data["callExpiresAt"] == "" {
		t.Error("invite carries no callExpiresAt")
	}
}

// TestFaultAccounting posts many messages while the emulator refuses dead
// tokens and fails a share of requests, and checks from outside the
// counting code that every target ended in exactly one outcome: delivered
// once (the emulator's receipts), dead-lettered (the dead-letter queue), or
// invalid and unbound (the bindings left in DynamoDB).
func TestFaultAccounting(t *testing.T) {
	e := newE2E(t, huaweiemu.Options{Seed: 7})
	const envelopes, per = 12, 4
	var all []push.Target
	// One more envelope is sent while every request fails, so that the
	// dead-letter path is always taken.
	const doomed = envelopes * per
	dead := map[string]bool{}
	for i := range envelopes*per + per {
		u := fmt.Sprintf("user%02d", i)
		tok := e2eToken(u)
		e.bind(t, u, "phone", tok)
		all = append(all, push.Target{UserID: u, DeviceID: "phone", Token: tok, Platform: push.PlatformAndroid})
		if i%7 == 3 {
			dead[tok] = true
			e.emu.FailToken(tok)
		}
	}
	users := func(ts []push.Target) []string {
		var out []string
		for _, tg := range ts {
			out = append(out, tg.UserID)
		}
		return out
	}
	for i := range envelopes {
		e.post(t, messageBody(fmt.Sprintf("m-acct-%02d", i), "message", users(all[i*per:(i+1)*per]), `, "push": {"content": "hi"}`))
	}
	e.emu.SetShares(huaweiemu.Shares{FlowControl: 0.35, Internal: 0.15})
	e.drain(t)
	e.emu.SetShares(huaweiemu.Shares{FlowControl: 1})
	e.post(t, messageBody("m-acct-doomed", "message", users(all[doomed:]), `, "push": {"content": "hi"}`))
	e.drain(t)
	e.emu.ClearFaults()

	delivered := e.emu.Delivered()
	dlq := e.deadLettered(t)
	counts := map[string]int{}
	for _, tg := range all {
		d, l, b := delivered[tg.Token], dlq[tg.Token], e.bound(t, tg.UserID, tg.DeviceID, tg.Token)
		var outcome string
		switch {
		case d == 1 && l == 0 && b && !dead[tg.Token]:
			outcome = "delivered"
		case d == 0 && l == 1 && b:
			outcome = "dead_lettered"
		case d == 0 && l == 0 && !b && dead[tg.Token]:
			outcome = "invalid_token"
		default:
			t.Errorf("%s: delivered %d, dead-lettered %d, still bound %v, dead %v: not exactly one outcome",
				tg.UserID, d, l, b, dead[tg.Token])
			continue
		}
		counts[outcome]++
	}
	t.Logf("outcomes over %d targets: %v (emulator answered %d requests)", len(all), counts, e.emu.Requests())
	if counts["delivered"] == 0 || counts["invalid_token"] == 0 || counts["dead_lettered"] < per {
		t.Errorf("outcomes %v: want some delivered, some invalid and the doomed envelope dead-lettered", counts)
	}
}
