// Package e2e is test support only: the harness of the end-to-end tests
// that follow a message from the HTTP routes through ingest, a vendor queue
// on moto and a dispatch function to a vendor emulator. No function (no
// package main, nothing under shared/ but tests) imports it; it lives in an
// importable package rather than a _test file only so that the tests of
// several provider packages can share it.
//
// The harness is generic over the vendor. A test supplies what differs: the
// vendor, its credentials JSON (pointing at the test's emulator) and the
// sender (the vendor's provider); it reads the emulator's receipts itself.
// Everything else runs the real wiring of shared/app on a stack provisioned
// from template.yaml: the devices and ingest handlers, the dispatch handler
// built by app.DispatchTo, and sqsbatch.Poller feeding the vendor queue to
// it as Lambda's event source mapping does.
//
// Outcomes are checked from outside the code that counts them: what the
// emulator accepted, what sits in the dead-letter queue and which bindings
// remain in DynamoDB. The dispatch handlers' own metrics lines are kept as
// well (Metrics), so that a test can compare both.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
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
	"github.com/offline-push/offline-push/shared/dispatch"
	"github.com/offline-push/offline-push/shared/dynamo"
	"github.com/offline-push/offline-push/shared/httpapi"
	"github.com/offline-push/offline-push/shared/push"
	"github.com/offline-push/offline-push/shared/sqsbatch"
	"github.com/offline-push/offline-push/shared/testenv"
)

// App is the app every harness registers, and APISecret its API secret.
const (
	App       = "demo"
	APISecret = "e2e-api-secret"
)

// DrainTimeout bounds one Drain: long enough for hundreds of retried
// targets on a loaded machine, short enough that a stuck queue fails the
// test instead of hanging it.
const DrainTimeout = 2 * time.Minute

// Options describe the vendor under test.
type Options struct {
	// Vendor is the vendor whose queue, dead-letter queue and dispatch
	// function are used.
	Vendor push.Vendor
	// CertName names the vendor credentials: the secret
	// {prefix}/demo/vendors/{CertName}, tagged with the vendor.
	CertName string
	// Credentials is that secret's JSON, pointing at the test's emulator.
	Credentials []byte
	// MaxReceiveCount, when positive, replaces the template's
	// MAX_RECEIVE_COUNT of the dispatch function, so that a test reaches
	// the dead-letter path in fewer receives.
	MaxReceiveCount int
	// Log receives the functions' logs; nil discards them.
	Log *slog.Logger
}

// Env is one provisioned pipeline for one vendor.
type Env struct {
	Endpoint string
	Stack    *cfn.Stack
	Vendor   push.Vendor
	CertName string
	// QueueURL and DeadLetterQueueURL are the vendor's queues.
	QueueURL           string
	DeadLetterQueueURL string
	// Devices and Ingest are the HTTP handlers of the devices and ingest
	// functions, built by their app constructors.
	Devices app.HTTPHandler
	Ingest  app.HTTPHandler
	// BatchSize is the most records of one invocation in Drain; 0 means
	// 10, as the template's event sources. 1 spreads records over
	// several containers.
	BatchSize int

	opts        Options
	log         *slog.Logger
	sqs         *sqs.Client
	devices     *dynamo.DeviceStore
	dispatchEnv map[string]string
	nonce       atomic.Int64
}

// New starts a moto for this test, provisions the template's stack in it,
// stores the app's API secret and the vendor credentials in Secrets Manager
// and builds the devices and ingest handlers. Everything stops at the
// test's cleanup.
func New(t testing.TB, o Options) *Env {
	t.Helper()
	ctx := context.Background()
	srv := testenv.Moto(t)
	st := testenv.Stack(t, srv.Endpoint)
	cfg := testenv.AWSConfig(srv.Endpoint)
	log := o.Log
	if log == nil {
		log = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	qid := queueID(o.Vendor)
	e := &Env{
		Endpoint: srv.Endpoint, Stack: st, Vendor: o.Vendor, CertName: o.CertName,
		QueueURL:           st.Queues[qid+"Queue"].URL,
		DeadLetterQueueURL: st.Queues[qid+"DeadLetterQueue"].URL,
		opts:               o, log: log,
		sqs:     sqs.NewFromConfig(cfg),
		devices: dynamo.NewDeviceStore(dynamodb.NewFromConfig(cfg), st.Tables["StateTable"]),
	}
	if e.QueueURL == "" || e.DeadLetterQueueURL == "" {
		t.Fatalf("e2e: the template has no %sQueue or %sDeadLetterQueue", qid, qid)
	}
	prefix := st.Parameters["SecretPrefix"]
	sm := secretsmanager.NewFromConfig(cfg)
	for _, s := range []struct{ name, value, vendor string }{
		{"api", `{"apiSecrets": ["` + APISecret + `"]}`, ""},
		{"vendors/" + o.CertName, string(o.Credentials), string(o.Vendor)},
	} {
		in := &secretsmanager.CreateSecretInput{Name: aws.String(prefix + "/" + App + "/" + s.name), SecretString: aws.String(s.value)}
		if s.vendor != "" {
			in.Tags = []smtypes.Tag{{Key: aws.String("vendor"), Value: aws.String(s.vendor)}}
		}
		if _, err := sm.CreateSecret(ctx, in); err != nil {
			t.Fatalf("e2e: create secret %s: %v", s.name, err)
		}
	}
	var err error
	if e.Devices, err = app.Devices(ctx, testenv.Env(srv.Endpoint, st.FunctionEnv("DevicesFunction")), log); err != nil {
		t.Fatalf("e2e: app.Devices: %v", err)
	}
	if e.Ingest, err = app.Ingest(ctx, testenv.Env(srv.Endpoint, st.FunctionEnv("IngestFunction")), log); err != nil {
		t.Fatalf("e2e: app.Ingest: %v", err)
	}
	env := st.FunctionEnv(app.DispatchFunctionID(o.Vendor))
	if env == nil {
		t.Fatalf("e2e: the template has no %s", app.DispatchFunctionID(o.Vendor))
	}
	// Retries go back to the queue at once: the tests need no pacing, and
	// a failed record is made visible again by the poller (RedeliverAfter).
	env[app.EnvDispatchBaseDelayMS] = "0"
	if o.MaxReceiveCount > 0 {
		env[app.EnvMaxReceiveCount] = strconv.Itoa(o.MaxReceiveCount)
	}
	e.dispatchEnv = env
	return e
}

// queueID is the logical id stem of v's queues: ApnsQueue, FcmQueue, …
func queueID(v push.Vendor) string {
	s := string(v)
	if s == "" {
		return ""
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// Getenv returns the environment of the vendor's dispatch function, pointed
// at this test's moto: for app.TokenCache and app.DispatchTo.
func (e *Env) Getenv() func(string) string { return testenv.Env(e.Endpoint, e.dispatchEnv) }

// Dispatch builds one dispatch function container: app.DispatchTo with
// sender, its metrics lines collected in the returned Metrics. Several
// calls stand for several containers of the function.
func (e *Env) Dispatch(t testing.TB, sender dispatch.Sender) (app.SQSHandler, *Metrics) {
	t.Helper()
	m := &Metrics{}
	h, err := app.DispatchTo(context.Background(), e.Getenv(), e.log, e.Vendor, sender, m)
	if err != nil {
		t.Fatalf("e2e: app.DispatchTo: %v", err)
	}
	return h, m
}

// TokenCache returns a new client of the shared DynamoDB token cache, as
// each container builds its own at cold start.
func (e *Env) TokenCache(t testing.TB) *dynamo.CredentialCache {
	t.Helper()
	c, err := app.TokenCache(context.Background(), e.Getenv())
	if err != nil {
		t.Fatalf("e2e: app.TokenCache: %v", err)
	}
	return c
}

// Call signs a request with the app's API secret, hands it to h as API
// Gateway would and returns the status and body.
func (e *Env) Call(t testing.TB, h app.HTTPHandler, method, path, body string) (int, string) {
	t.Helper()
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	nonce := fmt.Sprintf("e2e-nonce-%08d", e.nonce.Add(1))
	resp, err := h(context.Background(), events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "$default", RawPath: path, Body: body,
		Headers: map[string]string{
			"content-type":     "application/json",
			"x-push-timestamp": ts,
			"x-push-nonce":     nonce,
			"x-push-signature": httpapi.Sign(APISecret, method, path, "", ts, nonce, []byte(body)),
		},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			Stage: "$default", RequestID: "req-" + nonce,
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path},
		},
	})
	if err != nil {
		t.Fatalf("e2e: %s %s: %v", method, path, err)
	}
	return resp.StatusCode, resp.Body
}

// Device is the body of a device registration (API.md §3) for the
// harness's vendor and certificate; empty fields are left out.
type Device struct {
	Token       string `json:"token"`
	VoIPToken   string `json:"voipToken,omitempty"`
	Platform    string `json:"platform,omitempty"`
	Environment string `json:"environment,omitempty"`
}

// Register binds d to user's device through the devices route and fails
// the test unless it answers 200.
func (e *Env) Register(t testing.TB, user, device string, d Device) {
	t.Helper()
	body, err := json.Marshal(struct {
		Vendor   push.Vendor `json:"vendor"`
		CertName string      `json:"certName"`
		Device
	}{e.Vendor, e.CertName, d})
	if err != nil {
		t.Fatal(err)
	}
	path := "/v1/apps/" + App + "/users/" + user + "/devices/" + device
	if status, raw := e.Call(t, e.Devices, http.MethodPut, path, string(body)); status != http.StatusOK {
		t.Fatalf("e2e: register %s/%s: %d %s", user, device, status, raw)
	}
}

// Ingested is the part of the ingest answer the tests read.
type Ingested struct {
	Recipients int            `json:"recipients"`
	Devices    int            `json:"devices"`
	Pushes     int            `json:"pushes"`
	Skipped    map[string]int `json:"skipped"`
}

// Post sends body to the message route and fails the test unless it
// answers 202.
func (e *Env) Post(t testing.TB, body string) Ingested {
	t.Helper()
	status, raw := e.Call(t, e.Ingest, http.MethodPost, "/v1/apps/"+App+"/messages", body)
	if status != http.StatusAccepted {
		t.Fatalf("e2e: post message: %d %s", status, raw)
	}
	var out Ingested
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		t.Fatalf("e2e: ingest answer %s: %v", raw, err)
	}
	return out
}

// Drain feeds the vendor queue to the handlers, one poller per handler (so
// several handlers are several containers working the queue at once), until
// the queue is quiet: no message visible, in flight or delayed. Records a
// handler reports as failed are made visible again at once, standing for
// their visibility timeout; their receive count still grows, so the
// dead-letter path is reached as in AWS.
func (e *Env) Drain(t testing.TB, handlers ...app.SQSHandler) {
	t.Helper()
	if len(handlers) == 0 {
		t.Fatal("e2e: Drain needs a handler")
	}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, h := range handlers {
		p := &sqsbatch.Poller{
			Client: patientReceiver{e.sqs}, QueueURL: e.QueueURL,
			QueueARN: e.Stack.Queues[queueID(e.Vendor)+"Queue"].ARN, Region: e.Stack.Region,
			BatchSize: e.BatchSize, Concurrency: 1, Timeout: 30 * time.Second,
			ReportBatchItemFailures: true,
			// Below a second: a visibility timeout of 0, visible at once.
			RedeliverAfter: time.Millisecond,
			Wait:           time.Second,
			Handler:        h,
			Log:            e.log,
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.Run(ctx)
		}()
	}
	err := e.WaitQuiet(DrainTimeout)
	stop()
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
}

// patientReceiver lets each long poll run to its end even after the poller
// is told to stop. moto, like SQS, keeps serving a long poll whose client
// went away, and hands a message that arrives meanwhile to it: the message
// would stay invisible for the whole visibility timeout, and the next Drain
// would wait for it in vain. Letting the receive finish costs at most one
// poll (Wait) per Drain, and whatever it returns is still dispatched.
type patientReceiver struct{ *sqs.Client }

func (r patientReceiver) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	return r.Client.ReceiveMessage(context.WithoutCancel(ctx), in, opts...)
}

// WaitQuiet polls the vendor queue until it holds no message (visible, in
// flight or delayed), or returns an error after timeout.
func (e *Env) WaitQuiet(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		n, err := e.depth(e.QueueURL)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			out, _ := e.sqs.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(e.QueueURL), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll}})
			return fmt.Errorf("e2e: the %s queue still holds %d messages after %s: %v", e.Vendor, n, timeout, out.Attributes)
		}
		<-tick.C
	}
}

// Depth counts the messages of the vendor queue: visible, in flight and
// delayed.
func (e *Env) Depth(t testing.TB) int {
	t.Helper()
	n, err := e.depth(e.QueueURL)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (e *Env) depth(url string) (int, error) {
	out, err := e.sqs.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{
			sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed,
		},
	})
	if err != nil {
		return 0, fmt.Errorf("e2e: queue attributes: %w", err)
	}
	n := 0
	for _, v := range out.Attributes {
		k, err := strconv.Atoi(v)
		if err != nil {
			return 0, fmt.Errorf("e2e: queue attribute %q: %w", v, err)
		}
		n += k
	}
	return n, nil
}

// DeadLettered reads and deletes every message of the vendor's dead-letter
// queue and returns how often each token appears among their targets.
func (e *Env) DeadLettered(t testing.TB) map[string]int {
	t.Helper()
	ctx := context.Background()
	out := map[string]int{}
	for {
		res, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(e.DeadLetterQueueURL), MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatalf("e2e: receive dead letters: %v", err)
		}
		if len(res.Messages) == 0 {
			return out
		}
		for _, m := range res.Messages {
			env, err := push.DecodeEnvelope([]byte(aws.ToString(m.Body)))
			if err != nil {
				t.Fatalf("e2e: dead letter: %v", err)
			}
			for _, tg := range env.Targets {
				out[tg.Token]++
			}
			if _, err := e.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(e.DeadLetterQueueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatalf("e2e: delete dead letter: %v", err)
			}
		}
	}
}

// Bindings returns user's device bindings as stored in DynamoDB.
func (e *Env) Bindings(t testing.TB, user string) []push.Binding {
	t.Helper()
	bs, _, err := e.devices.Devices(context.Background(), App, user)
	if err != nil {
		t.Fatalf("e2e: devices of %s: %v", user, err)
	}
	return bs
}

// Bound reports whether user's device still holds token, as its alert or
// its VoIP token.
func (e *Env) Bound(t testing.TB, user, device, token string) bool {
	t.Helper()
	for _, b := range e.Bindings(t, user) {
		if b.DeviceID == device && (b.Token == token || b.VoIPToken == token) {
			return true
		}
	}
	return false
}

// WaitPast polls the clock until instant at has passed, for pushes that must
// expire before they are dispatched. It fails the test if that takes more
// than a minute (an instant that far ahead is a bug of the test).
func (e *Env) WaitPast(t testing.TB, at time.Time) {
	t.Helper()
	if time.Until(at) > time.Minute {
		t.Fatalf("e2e: WaitPast %s: more than a minute ahead", at)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !time.Now().After(at) {
		<-tick.C
	}
}

// Metrics collects the Embedded Metric Format lines of one dispatch
// container and sums them: the counts of the code under test, for
// comparison with what is observed from outside.
type Metrics struct {
	mu    sync.Mutex
	lines [][]byte
}

// Write takes one metrics line (DispatchTo writes a whole line per call).
func (m *Metrics) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lines = append(m.lines, append([]byte(nil), p...))
	return len(p), nil
}

// Counts sums the lines so far by metric name (the outcomes, requeued,
// retried), leaving out names whose sum is zero.
func (m *Metrics) Counts() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]int{}
	for _, l := range m.lines {
		var doc map[string]any
		if err := json.Unmarshal(l, &doc); err != nil {
			continue
		}
		for k, v := range doc {
			if n, ok := v.(float64); ok && n != 0 {
				out[k] += int(n)
			}
		}
	}
	return out
}

// Reset forgets the lines so far.
func (m *Metrics) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lines = nil
}

// Sum adds the counts of several containers.
func Sum(ms ...*Metrics) map[string]int {
	out := map[string]int{}
	for _, m := range ms {
		for k, v := range m.Counts() {
			out[k] += v
		}
	}
	return out
}

// Final keeps only the final outcomes of counts (dispatch.Outcomes), which
// must add up to the targets ingest queued.
func Final(counts map[string]int) map[string]int {
	out := map[string]int{}
	for _, o := range dispatch.Outcomes {
		if n := counts[string(o)]; n != 0 {
			out[string(o)] = n
		}
	}
	return out
}

// Message is an ingest request (API.md §6) in the shape the tests need:
// a message from alice to Recipients, a call invite or a call cancel.
type Message struct {
	ID   string
	Kind push.MessageKind
	// Group, when set, makes it a group message in that group; otherwise
	// it is a peer message.
	Group      string
	Recipients []string
	Content    string
	Payload    map[string]string
	// CallID and TimeoutSeconds make the call member of a call kind.
	CallID         string
	TimeoutSeconds int
	// TTLSeconds, when positive, is the push's lifetime.
	TTLSeconds int
}

// JSON encodes m as the body of POST /v1/apps/{app}/messages.
func (m Message) JSON() string {
	type conv struct {
		Type string `json:"type"`
		ID   string `json:"id,omitempty"`
	}
	type content struct {
		Content string            `json:"content,omitempty"`
		Payload map[string]string `json:"payload,omitempty"`
	}
	type call struct {
		CallID         string `json:"callId"`
		TimeoutSeconds int    `json:"timeoutSeconds,omitempty"`
	}
	body := struct {
		ID           string            `json:"messageId"`
		Type         push.MessageKind  `json:"type"`
		Sender       map[string]string `json:"sender"`
		Conversation conv              `json:"conversation"`
		Recipients   []string          `json:"recipients"`
		Push         *content          `json:"push,omitempty"`
		Call         *call             `json:"call,omitempty"`
		TTLSeconds   int               `json:"ttlSeconds,omitempty"`
	}{
		ID: m.ID, Type: m.Kind, Sender: map[string]string{"userId": "alice", "nickname": "Alice"},
		Conversation: conv{Type: "peer"}, Recipients: m.Recipients, TTLSeconds: m.TTLSeconds,
	}
	if m.Group != "" {
		body.Conversation = conv{Type: "group", ID: m.Group}
	}
	if m.Content != "" || m.Payload != nil {
		body.Push = &content{Content: m.Content, Payload: m.Payload}
	}
	if m.CallID != "" {
		body.Call = &call{CallID: m.CallID, TimeoutSeconds: m.TimeoutSeconds}
	}
	b, err := json.Marshal(body)
	if err != nil {
		panic(err) // only strings and ints: cannot fail
	}
	return string(b)
}
