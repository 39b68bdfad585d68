package meizu_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/offline-push/offline-push/shared/app"
	"github.com/offline-push/offline-push/shared/cfn"
	meizuemu "github.com/offline-push/offline-push/shared/emulator/meizu"
	"github.com/offline-push/offline-push/shared/httpapi"
	"github.com/offline-push/offline-push/shared/provider/meizu"
	"github.com/offline-push/offline-push/shared/push"
	"github.com/offline-push/offline-push/shared/testenv"
)

// The end-to-end tests run the pipeline as it runs in AWS, on moto: the
// devices route registers tokens, the ingest route takes a message and
// enqueues envelopes, the dispatch handler built by app.Dispatch drains the
// Meizu queue into this provider, which talks to the emulator.

const (
	e2eApp    = "demo"
	e2eSecret = "e2e-api-secret"
	e2eCert   = "mz"
	vendor    = push.Meizu
)

// e2e is one provisioned stack with the three functions built by their
// shared/app constructors.
type e2e struct {
	endpoint string
	stack    *cfn.Stack
	sqs      *sqs.Client
	devices  app.HTTPHandler
	ingest   app.HTTPHandler
	dispatch app.SQSHandler
	queue    string
	dlq      string
	nonce    atomic.Int64
}

// addMessageRoute adds the message route to the route table when it is not
// there yet: it lands in httpapi.Routes with the template's IngestFunction,
// and until then ingest's own tests add it the same way.
func addMessageRoute() {
	if !slices.ContainsFunc(httpapi.Routes, func(r httpapi.Route) bool { return r.Name == "PostMessage" }) {
		httpapi.Routes = append(httpapi.Routes, httpapi.Route{
			Name: "PostMessage", Method: "POST", Pattern: "/v1/apps/{app}/messages", Function: "ingest", MaxBody: 5 << 20,
		})
	}
}

func queueID(v push.Vendor) string { return strings.ToUpper(string(v[:1])) + string(v[1:]) + "Queue" }

// newE2E provisions a stack in the moto at endpoint, stores the app's API
// secret and creds as its Meizu credentials, and builds the functions.
// extra is added to the dispatch function's environment.
func newE2E(t *testing.T, endpoint string, creds []byte, extra map[string]string) *e2e {
	t.Helper()
	addMessageRoute()
	ctx := context.Background()
	st := testenv.Stack(t, endpoint)
	cfg := testenv.AWSConfig(endpoint)
	e := &e2e{endpoint: endpoint, stack: st, sqs: sqs.NewFromConfig(cfg),
		queue: st.Queues[queueID(vendor)].URL, dlq: st.Queues[strings.TrimSuffix(queueID(vendor), "Queue")+"DeadLetterQueue"].URL}
	devEnv := st.FunctionEnv("DevicesFunction")
	prefix := devEnv[app.EnvSecretPrefix]
	sm := secretsmanager.NewFromConfig(cfg)
	for _, s := range []struct{ name, value, tag string }{
		{"api", `{"apiSecrets": ["` + e2eSecret + `"]}`, ""},
		{"vendors/" + e2eCert, string(creds), string(vendor)},
	} {
		in := &secretsmanager.CreateSecretInput{Name: aws.String(prefix + "/" + e2eApp + "/" + s.name), SecretString: aws.String(s.value)}
		if s.tag != "" {
			in.Tags = []smtypes.Tag{{Key: aws.String("vendor"), Value: aws.String(s.tag)}}
		}
		if _, err := sm.CreateSecret(ctx, in); err != nil {
			t.Fatalf("CreateSecret %s: %v", s.name, err)
		}
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	var err error
	if e.devices, err = app.Devices(ctx, testenv.Env(endpoint, devEnv), log); err != nil {
		t.Fatalf("app.Devices: %v", err)
	}
	ingEnv := map[string]string{
		app.EnvStateTable: devEnv[app.EnvStateTable], app.EnvRequestTable: devEnv[app.EnvRequestTable], app.EnvSecretPrefix: prefix,
	}
	for _, v := range push.Vendors {
		ingEnv[app.QueueURLEnv(v)] = st.Queues[queueID(v)].URL
	}
	if e.ingest, err = app.Ingest(ctx, testenv.Env(endpoint, ingEnv), log); err != nil {
		t.Fatalf("app.Ingest: %v", err)
	}
	dispEnv := st.FunctionEnv(app.DispatchFunctionID(vendor))
	if dispEnv == nil {
		dispEnv = map[string]string{
			app.EnvStateTable: devEnv[app.EnvStateTable], app.EnvRequestTable: devEnv[app.EnvRequestTable], app.EnvSecretPrefix: prefix,
			app.EnvQueueURL: e.queue, app.EnvDeadLetterQueueURL: e.dlq, app.EnvMaxReceiveCount: "5",
		}
	}
	dispEnv[app.EnvDispatchBaseDelayMS] = "0" // retries at once: the test needs no pacing
	for k, v := range extra {
		dispEnv[k] = v
	}
	if e.dispatch, err = app.Dispatch(ctx, testenv.Env(endpoint, dispEnv), log, vendor, meizu.New(time.Now, log)); err != nil {
		t.Fatalf("app.Dispatch: %v", err)
	}
	return e
}

// call signs a request for now and serves it with h, failing the test
// unless it answers want.
func (e *e2e) call(t *testing.T, h app.HTTPHandler, method, path, body string, want int) string {
	t.Helper()
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	nonce := fmt.Sprintf("e2e-%d-%06d", time.Now().UnixNano(), e.nonce.Add(1))
	resp, err := h(context.Background(), events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "$default", RawPath: path, Body: body,
		Headers: map[string]string{
			"content-type":     "application/json",
			"x-push-timestamp": ts,
			"x-push-nonce":     nonce,
			"x-push-signature": httpapi.Sign(e2eSecret, method, path, "", ts, nonce, []byte(body)),
		},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			Stage: "$default", RequestID: nonce,
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path},
		},
	})
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, resp.Body)
	}
	return resp.Body
}

func userPath(user string) string { return "/v1/apps/" + e2eApp + "/users/" + user }

// register binds token to the user's device through the devices route.
func (e *e2e) register(t *testing.T, user, device, token, locale string) {
	t.Helper()
	body := fmt.Sprintf(`{"vendor": %q, "token": %q, "certName": %q, "locale": %q}`, vendor, token, e2eCert, locale)
	e.call(t, e.devices, http.MethodPut, userPath(user)+"/devices/"+device, body, http.StatusOK)
}

// bound reports whether the user's device still holds a token.
func (e *e2e) bound(t *testing.T, user, device string) bool {
	t.Helper()
	var list struct {
		Devices []struct {
			DeviceID    string  `json:"deviceId"`
			TokenSuffix *string `json:"tokenSuffix"`
		} `json:"devices"`
	}
	if err := json.Unmarshal([]byte(e.call(t, e.devices, http.MethodGet, userPath(user)+"/devices", "", http.StatusOK)), &list); err != nil {
		t.Fatal(err)
	}
	for _, d := range list.Devices {
		if d.DeviceID == device && d.TokenSuffix != nil {
			return true
		}
	}
	return false
}

// post sends a message to the ingest route.
func (e *e2e) post(t *testing.T, body string) {
	t.Helper()
	e.call(t, e.ingest, http.MethodPost, "/v1/apps/"+e2eApp+"/messages", body, http.StatusAccepted)
}

// drain feeds the vendor queue to the dispatch handler as Lambda's event
// source mapping does, until the queue is empty: records the handler
// reports as failed are made visible again at once, as if their
// visibility timeout had passed, so that redelivery and the redrive to the
// dead-letter queue happen within the test.
func (e *e2e) drain(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		out, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(e.queue), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
		})
		if err != nil {
			t.Fatalf("ReceiveMessage: %v", err)
		}
		if len(out.Messages) == 0 {
			if e.pending(t) == 0 {
				return
			}
			continue
		}
		ev := events.SQSEvent{}
		for _, m := range out.Messages {
			ev.Records = append(ev.Records, events.SQSMessage{
				MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle),
				Body: aws.ToString(m.Body), Attributes: m.Attributes, EventSource: "aws:sqs",
			})
		}
		resp, err := e.dispatch(ctx, ev)
		if err != nil {
			t.Fatalf("dispatch handler: %v", err)
		}
		failed := map[string]bool{}
		for _, f := range resp.BatchItemFailures {
			failed[f.ItemIdentifier] = true
		}
		for _, m := range out.Messages {
			if failed[aws.ToString(m.MessageId)] {
				_, err = e.sqs.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(e.queue), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0})
			} else {
				_, err = e.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(e.queue), ReceiptHandle: m.ReceiptHandle})
			}
			if err != nil {
				t.Fatalf("settle record: %v", err)
			}
		}
	}
	t.Fatalf("the %s queue did not drain within two minutes", vendor)
}

// pending counts the messages of the vendor queue, visible, in flight or
// delayed.
func (e *e2e) pending(t *testing.T) int {
	t.Helper()
	out, err := e.sqs.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(e.queue),
		AttributeNames: []sqstypes.QueueAttributeName{
			sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed,
		}})
	if err != nil {
		t.Fatalf("GetQueueAttributes: %v", err)
	}
	n := 0
	for _, v := range out.Attributes {
		x, _ := strconv.Atoi(v)
		n += x
	}
	return n
}

// deadLettered returns, per message id, the tokens of the targets in the
// dead-letter queue.
func (e *e2e) deadLettered(t *testing.T) map[string]map[string]int {
	t.Helper()
	out := map[string]map[string]int{}
	for {
		res, err := e.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(e.dlq), MaxNumberOfMessages: 10, VisibilityTimeout: 900})
		if err != nil {
			t.Fatalf("ReceiveMessage on the dead-letter queue: %v", err)
		}
		if len(res.Messages) == 0 {
			return out
		}
		for _, m := range res.Messages {
			env, err := push.DecodeEnvelope([]byte(aws.ToString(m.Body)))
			if err != nil {
				t.Fatalf("dead-lettered record: %v", err)
			}
			if out[env.MessageID] == nil {
				out[env.MessageID] = map[string]int{}
			}
			for _, tg := range env.Targets {
				out[env.MessageID][tg.Token]++
			}
		}
	}
}

func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto_server")
	}
	srv := testenv.Moto(t)
	t.Run("MessageAndCall", func(t *testing.T) { testE2EMessageAndCall(t, srv.Endpoint) })
	t.Run("FaultAccounting", func(t *testing.T) { testE2EFaultAccounting(t, srv.Endpoint) })
}

func newEmulator(t *testing.T) *meizuemu.Server {
	emu := meizuemu.New(meizuemu.Options{})
	t.Cleanup(emu.Close)
	emu.AddApp(meizuemu.App{ID: appID, Secret: secret})
	return emu
}

// testE2EMessageAndCall sends a chat message, then a call invite and its
// cancel, and checks what reached the emulator.
func testE2EMessageAndCall(t *testing.T, endpoint string) {
	emu := newEmulator(t)
	e := newE2E(t, endpoint, credentials(emu.URL, nil), nil)
	e.register(t, "bob", "phone", token(1), "zh-CN")

	e.post(t, `{"messageId": "m-1", "type": "message", "sender": {"userId": "alice", "nickname": "Alice"},
		"conversation": {"type": "group", "id": "g1"}, "recipients": ["bob"],
		"push": {"title": "Team", "content": "lunch?", "translations": {"zh": "吃饭吗?"}, "payload": {"k": "v"}}}`)
	e.drain(t)
	rec := emu.Received()
	if len(rec) != 1 {
		t.Fatalf("emulator received %d pushes, want 1", len(rec))
	}
	m := rec[0].Message
	wantKey, _ := push.CollapseFor(push.Meizu, push.MessageCollapseKey("m-1"))
	got := []any{rec[0].PushIDs, m.NoticeBarInfo.Title, m.NoticeBarInfo.Content, m.AdvanceInfo.NotifyKey,
		m.ClickTypeInfo.Parameters["messageId"], m.ClickTypeInfo.Parameters["k"], m.PushTimeInfo.ValidTime}
	want := []any{[]string{token(1)}, "Team", "Alice: 吃饭吗?", wantKey, "m-1", "v", 23}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("message push: pushIds, title, content, notifyKey, messageId, k, validTime = %v, want %v", got, want)
	}

	emu.Reset()
	e.post(t, `{"messageId": "c-1-invite", "type": "call_invite", "sender": {"userId": "alice", "nickname": "Alice"},
		"conversation": {"type": "peer"}, "recipients": ["bob"], "push": {"content": "Incoming call"},
		"call": {"callId": "c-1", "media": "video", "timeoutSeconds": 30}}`)
	e.drain(t)
	e.post(t, `{"messageId": "c-1-cancel", "type": "call_cancel", "sender": {"userId": "alice", "nickname": "Alice"},
		"conversation": {"type": "peer"}, "recipients": ["bob"], "call": {"callId": "c-1"}}`)
	e.drain(t)
	rec = emu.Received()
	if len(rec) != 2 {
		t.Fatalf("emulator received %d call pushes, want 2 (invite, cancel)", len(rec))
	}
	callKey, _ := push.CollapseFor(push.Meizu, push.CallCollapseKey("bob"))
	inv, can := rec[0].Message, rec[1].Message
	ip, cp := inv.ClickTypeInfo.Parameters, can.ClickTypeInfo.Parameters
	if ip["kind"] != "call_invite" || inv.AdvanceInfo.NotifyKey != callKey || ip["callId"] != "c-1" ||
		ip["callExpiresAt"] == nil || inv.PushTimeInfo.ValidTime != 1 {
		t.Errorf("invite: kind %v notifyKey %s callId %v callExpiresAt %v validTime %d; want call_invite %s c-1, an expiry, 1 hour (rule 25)",
			ip["kind"], inv.AdvanceInfo.NotifyKey, ip["callId"], ip["callExpiresAt"], inv.PushTimeInfo.ValidTime, callKey)
	}
	if cp["kind"] != "call_cancel" || can.AdvanceInfo.NotifyKey != callKey || can.NoticeBarInfo.Content != push.DefaultCancelContent {
		t.Errorf("cancel: kind %v notifyKey %s content %q, want call_cancel %s %q", cp["kind"], can.AdvanceInfo.NotifyKey, can.NoticeBarInfo.Content, callKey, push.DefaultCancelContent)
	}
}

// testE2EFaultAccounting pushes several messages to many devices while the
// emulator throttles, fails and refuses a share of requests and some
// pushIds are dead or throttled on their own, with few attempts allowed,
// and then checks from outside the counting code that every target of
// every message ended in exactly one outcome: delivered (the emulator's
// receipts), invalid_token (its binding is gone), or dead_lettered (in the
// dead-letter queue).
func testE2EFaultAccounting(t *testing.T, endpoint string) {
	emu := newEmulator(t)
	e := newE2E(t, endpoint, credentials(emu.URL, nil), map[string]string{app.EnvDispatchMaxAttempts: "3"})
	const users, messages = 30, 6
	dead, slow := map[string]bool{}, map[string]bool{}
	faults := meizuemu.Faults{Tokens: map[string]meizuemu.Fault{}, ThrottleShare: 0.15, BusyShare: 0.15, UnavailableShare: 0.1, Seed: 11}
	var recipients []string
	for i := range users {
		user := fmt.Sprint("user", i)
		recipients = append(recipients, user)
		locale := "en-US"
		if i%2 == 1 {
			locale = "zh-CN" // a second text, so a message takes two requests per attempt
		}
		e.register(t, user, "phone", token(i), locale)
		switch {
		case i%7 == 3:
			dead[token(i)] = true
			faults.Tokens[token(i)] = meizuemu.Fault{Code: []string{meizuemu.CodeUnsubscribed, meizuemu.CodeIllegalID}[i%2]}
		case i == 12:
			// Over its rate every time: throttled until the attempts run out.
			slow[token(i)] = true
			faults.Tokens[token(i)] = meizuemu.Fault{Code: meizuemu.CodeOverloaded}
		}
	}
	// One device reads Japanese, alone in its text and so in its requests,
	// and its requests always meet a failing gateway: it must end in the
	// dead-letter queue, once per message.
	stuck := token(users)
	e.register(t, "stuck", "phone", stuck, "ja-JP")
	recipients = append(recipients, "stuck")
	faults.Tokens[stuck] = meizuemu.Fault{Status: http.StatusServiceUnavailable}
	emu.SetFaults(faults)
	list, _ := json.Marshal(recipients)
	for m := range messages {
		e.post(t, fmt.Sprintf(`{"messageId": "m-%d", "type": "message", "sender": {"userId": "alice"},
			"conversation": {"type": "group", "id": "g1"}, "recipients": %s,
			"push": {"content": "hello %d", "translations": {"zh": "你好 %d", "ja": "こんにちは %d"}}}`, m, list, m, m, m))
	}
	e.drain(t)

	delivered := map[string]map[string]int{} // message → token → receipts
	for _, p := range emu.Received() {
		id, _ := p.Message.ClickTypeInfo.Parameters["messageId"].(string)
		if delivered[id] == nil {
			delivered[id] = map[string]int{}
		}
		for _, tk := range p.PushIDs {
			delivered[id][tk]++
		}
	}
	dlq := e.deadLettered(t)
	outcomes := map[string]int{}
	for m := range messages {
		id := fmt.Sprint("m-", m)
		for i := range users {
			tk := token(i)
			got, lettered := delivered[id][tk], dlq[id][tk]
			unbound := !e.bound(t, fmt.Sprint("user", i), "phone")
			switch {
			case got == 1 && lettered == 0 && !dead[tk] && !slow[tk]:
				outcomes["delivered"]++
			case got == 0 && lettered == 1:
				outcomes["dead_lettered"]++
			case got == 0 && lettered == 0 && dead[tk] && unbound:
				// invalid_token, or unbound when an earlier message
				// already removed the binding.
				outcomes["invalid_or_unbound"]++
			default:
				t.Errorf("%s to %s: %d receipts, %d dead-lettered, dead %v, unbound %v: not exactly one outcome",
					id, tk, got, lettered, dead[tk], unbound)
			}
			if unbound && !dead[tk] {
				t.Errorf("%s: live token unbound", tk)
			}
			if slow[tk] && lettered != 1 {
				t.Errorf("%s to the throttled device: %d dead-lettered, want 1", id, lettered)
			}
		}
		if delivered[id][stuck] != 0 || dlq[id][stuck] != 1 {
			t.Errorf("%s to the stuck device: %d receipts, %d dead-lettered; want 0 and 1", id, delivered[id][stuck], dlq[id][stuck])
		}
	}
	t.Logf("outcomes over %d targets (the stuck device's dead-lettered %d not included): %v", users*messages, messages, outcomes)
	if outcomes["delivered"] == 0 || outcomes["invalid_or_unbound"] == 0 || outcomes["dead_lettered"] == 0 {
		t.Errorf("outcomes %v: want deliveries, invalid tokens and dead letters among them", outcomes)
	}
}
