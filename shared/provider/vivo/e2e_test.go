package vivo_test

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
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/offline-push/offline-push/shared/app"
	vivoemu "github.com/offline-push/offline-push/shared/emulator/vivo"
	"github.com/offline-push/offline-push/shared/httpapi"
	"github.com/offline-push/offline-push/shared/provider/vivo"
	"github.com/offline-push/offline-push/shared/push"
	"github.com/offline-push/offline-push/shared/testenv"
)

const e2eSecret = "e2e-api-secret"

// e2e is the whole pipeline on one machine: the devices and ingest
// functions, the vivo queue on moto, the vivo dispatch function with the
// real provider and the DynamoDB token cache, and the vivo emulator.
type e2e struct {
	emu      *vivoemu.Server
	sqs      *sqs.Client
	queue    string
	dlq      string
	devices  app.HTTPHandler
	ingest   app.HTTPHandler
	dispatch app.SQSHandler
	nonce    atomic.Int64
}

func newE2E(t *testing.T) *e2e {
	t.Helper()
	ctx := context.Background()
	srv := testenv.Moto(t)
	st := testenv.Stack(t, srv.Endpoint)
	cfg := testenv.AWSConfig(srv.Endpoint)
	emu, err := vivoemu.New(vivoemu.Options{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Close)
	emu.AddApp(appID, appKey, appSecret)

	env := map[string]string{}
	for k, v := range st.FunctionEnv("DevicesFunction") {
		env[k] = v
	}
	queueID := func(v push.Vendor) string { return strings.ToUpper(string(v[:1])) + string(v[1:]) + "Queue" }
	for _, v := range push.Vendors {
		env[app.QueueURLEnv(v)] = st.Queues[queueID(v)].URL
	}
	e := &e2e{emu: emu, sqs: sqs.NewFromConfig(cfg), queue: st.Queues["VivoQueue"].URL, dlq: st.Queues["VivoDeadLetterQueue"].URL}
	env[app.EnvQueueURL], env[app.EnvDeadLetterQueueURL] = e.queue, e.dlq
	env[app.EnvDispatchBaseDelayMS] = "0"
	env[app.EnvMaxReceiveCount] = "5"
	getenv := testenv.Env(srv.Endpoint, env)

	sm := secretsmanager.NewFromConfig(cfg)
	creds := mustJSON(t, map[string]any{"vendor": "vivo", "appId": fmt.Sprint(appID), "appKey": appKey, "appSecret": appSecret, "endpoint": emu.URL})
	for _, s := range []struct{ name, value, vendor string }{
		{"api", `{"apiSecrets": ["` + e2eSecret + `"]}`, ""},
		{"vendors/android-vivo", string(creds), "vivo"},
	} {
		in := &secretsmanager.CreateSecretInput{Name: aws.String(env[app.EnvSecretPrefix] + "/demo/" + s.name), SecretString: aws.String(s.value)}
		if s.vendor != "" {
			in.Tags = []smtypes.Tag{{Key: aws.String("vendor"), Value: aws.String(s.vendor)}}
		}
		if _, err := sm.CreateSecret(ctx, in); err != nil {
			t.Fatalf("CreateSecret %s: %v", s.name, err)
		}
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	if e.devices, err = app.Devices(ctx, getenv, log); err != nil {
		t.Fatal(err)
	}
	if e.ingest, err = app.Ingest(ctx, getenv, log); err != nil {
		t.Fatal(err)
	}
	cache, err := app.TokenCache(ctx, getenv)
	if err != nil {
		t.Fatal(err)
	}
	if e.dispatch, err = app.Dispatch(ctx, getenv, log, push.Vivo, vivo.New(vivo.Options{Cache: cache, Log: log})); err != nil {
		t.Fatal(err)
	}
	return e
}

// call signs and serves one API request.
func (e *e2e) call(t *testing.T, h app.HTTPHandler, method, path, body string) (int, string) {
	t.Helper()
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	nonce := fmt.Sprintf("e2e-vivo-%08d", e.nonce.Add(1))
	resp, err := h(context.Background(), events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "$default", RawPath: path, Body: body,
		Headers: map[string]string{
			"content-type": "application/json", "x-push-timestamp": ts, "x-push-nonce": nonce,
			"x-push-signature": httpapi.Sign(e2eSecret, method, path, "", ts, nonce, []byte(body)),
		},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			Stage: "$default", RequestID: "req-" + nonce,
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path},
		},
	})
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode, resp.Body
}

func (e *e2e) register(t *testing.T, user, token string) {
	t.Helper()
	body := `{"vendor": "vivo", "token": "` + token + `", "certName": "android-vivo"}`
	if status, raw := e.call(t, e.devices, http.MethodPut, "/v1/apps/demo/users/"+user+"/devices/phone-1", body); status != http.StatusOK {
		t.Fatalf("register %s: %d %s", user, status, raw)
	}
}

// post sends a message to the ingest function; a route table without the
// message route (it lands with the template's IngestFunction) skips the
// test.
func (e *e2e) post(t *testing.T, body string) {
	t.Helper()
	status, raw := e.call(t, e.ingest, http.MethodPost, "/v1/apps/demo/messages", body)
	if status == http.StatusNotFound {
		t.Skipf("POST /v1/apps/{app}/messages is not in httpapi.Routes yet: %s", raw)
	}
	if status != http.StatusAccepted {
		t.Fatalf("post message: %d %s", status, raw)
	}
}

// drain feeds the vivo queue to the dispatch handler as Lambda does, until
// it is empty. A record the handler reports as failed is made visible again
// at once, standing for its visibility timeout.
func (e *e2e) drain(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		out, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(e.queue), MaxNumberOfMessages: 10, WaitTimeSeconds: 0,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			if e.count(t, e.queue) == 0 {
				return
			}
			continue
		}
		ev := events.SQSEvent{}
		for _, m := range out.Messages {
			ev.Records = append(ev.Records, events.SQSMessage{MessageId: aws.ToString(m.MessageId), Body: aws.ToString(m.Body), Attributes: m.Attributes, EventSource: "aws:sqs"})
		}
		resp, err := e.dispatch(ctx, ev)
		if err != nil {
			t.Fatalf("dispatch: %v", err)
		}
		failed := map[string]bool{}
		for _, f := range resp.BatchItemFailures {
			failed[f.ItemIdentifier] = true
		}
		for _, m := range out.Messages {
			if failed[aws.ToString(m.MessageId)] {
				e.sqs.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(e.queue), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0})
				continue
			}
			if _, err := e.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(e.queue), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Fatal("the queue did not drain within 60 s")
}

// count returns the messages in a queue, visible, in flight or delayed.
func (e *e2e) count(t *testing.T, url string) int {
	t.Helper()
	out, err := e.sqs.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible, sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed},
	})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, v := range out.Attributes {
		k, _ := strconv.Atoi(v)
		n += k
	}
	return n
}

// deadLettered returns the tokens of the targets in the dead-letter queue.
func (e *e2e) deadLettered(t *testing.T) []string {
	t.Helper()
	var out []string
	for {
		got, err := e.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(e.dlq), MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Messages) == 0 {
			return out
		}
		for _, m := range got.Messages {
			env, err := push.DecodeEnvelope([]byte(aws.ToString(m.Body)))
			if err != nil {
				t.Fatalf("dead letter: %v", err)
			}
			for _, tg := range env.Targets {
				out = append(out, tg.Token)
			}
		}
	}
}

// bound reports whether user still has a device with a token.
func (e *e2e) bound(t *testing.T, user string) bool {
	t.Helper()
	status, raw := e.call(t, e.devices, http.MethodGet, "/v1/apps/demo/users/"+user+"/devices", "")
	if status != http.StatusOK {
		t.Fatalf("list devices of %s: %d %s", user, status, raw)
	}
	var out struct {
		Devices []struct {
			TokenSuffix *string `json:"tokenSuffix"`
		} `json:"devices"`
	}
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		t.Fatal(err)
	}
	for _, d := range out.Devices {
		if d.TokenSuffix != nil {
			return true
		}
	}
	return false
}

// TestEndToEnd runs a message and a call through ingest, the vivo queue and
// dispatch to the emulator, with one dead token and a share of server
// errors, and accounts for every target from outside the code that counts:
// the emulator's receipts, the dead-letter queue and the bindings left.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto_server")
	}
	e := newE2E(t)
	tokens := map[string]string{
		"bob": "15e2e0000000000000000b0b", "carol": "15e2e000000000000000dead",
		"dave": "15e2e000000000000000da7e", "erin": "15e2e000000000000000e1a1",
	}
	for u, tk := range tokens {
		e.register(t, u, tk)
	}
	e.emu.FailToken(tokens["carol"], vivoemu.StatusUninstalled)
	e.emu.SetShares(vivoemu.Shares{ServerError: 0.3})

	e.post(t, `{"messageId": "e2e-m1", "type": "message", "sender": {"userId": "alice", "nickname": "Alice"},
		"conversation": {"type": "group", "id": "g1"}, "recipients": ["bob", "carol", "dave", "erin"],
		"push": {"content": "lunch?", "payload": {"k": "v"}}}`)
	e.drain(t)

	// Every target ends in exactly one outcome: a receipt at the emulator,
	// its binding removed (the dead token), or the dead-letter queue.
	outcomes := map[string]int{}
	for _, p := range e.emu.Received() {
		outcomes[p.Token]++
		m := p.Message
		if m.Content != "Alice: lunch?" || m.Category != "IM" || m.ClientCustomMap["messageId"] != "e2e-m1" || m.ClientCustomMap["k"] != "v" {
			t.Errorf("push to %s: %+v", push.Redact(p.Token), m)
		}
	}
	for _, tk := range e.deadLettered(t) {
		outcomes[tk]++
	}
	for u, tk := range tokens {
		if u == "carol" {
			// The emulator never accepts it: unbound, or dead-lettered.
			unbound := !e.bound(t, u)
			if outcomes[tk] > 1 || (outcomes[tk] == 1) == unbound {
				t.Errorf("carol's dead token: %d dead letters, unbound %v; want exactly one of the two", outcomes[tk], unbound)
			}
			continue
		}
		if outcomes[tk] != 1 {
			t.Errorf("%s's token ended in %d outcomes, want exactly 1", u, outcomes[tk])
		}
		if !e.bound(t, u) {
			t.Errorf("%s lost a live binding", u)
		}
	}

	// A call rings bob's phone with the call class and its expiry.
	e.emu.ClearFaults()
	e.emu.Reset()
	e.post(t, `{"messageId": "e2e-c1", "type": "call_invite", "sender": {"userId": "alice", "nickname": "Alice"},
		"conversation": {"type": "peer"}, "recipients": ["bob"], "push": {"content": "Incoming call"},
		"call": {"callId": "call-1", "timeoutSeconds": 30}}`)
	e.drain(t)
	rec := e.emu.Received()
	if len(rec) != 1 || rec[0].Token != tokens["bob"] {
		t.Fatalf("call pushes = %d, want 1 to bob", len(rec))
	}
	m := rec[0].Message
	if m.ClientCustomMap["type"] != "call_invite" || m.ClientCustomMap["callId"] != "call-1" || m.ClientCustomMap["callExpiresAt"] == "" {
		t.Errorf("call data = %v", m.ClientCustomMap)
	}
	// 30 s left is under vivo's minimum: rule 25 sends 60 s and the expiry.
	if m.TimeToLive == nil || *m.TimeToLive != 60 {
		t.Errorf("call timeToLive = %v, want 60", m.TimeToLive)
	}
	_, wantNotify := push.CollapseFor(push.Vivo, push.CallCollapseKey("bob"))
	if m.NotifyID != int64(wantNotify) {
		t.Errorf("call notifyId = %d, want %d", m.NotifyID, wantNotify)
	}
}
