package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/offline-push/offline-push/shared/cfn"
	"github.com/offline-push/offline-push/shared/dispatch"
	"github.com/offline-push/offline-push/shared/dynamo"
	"github.com/offline-push/offline-push/shared/push"
	"github.com/offline-push/offline-push/shared/secrets"
	"github.com/offline-push/offline-push/shared/sqsbatch"
	"github.com/offline-push/offline-push/shared/testenv"
)

// dispSender answers each target by its token through answer, and records
// every job it was given. n counts the earlier sends of the same token.
type dispSender struct {
	answer func(t push.Target, n int) push.SendResult

	mu    sync.Mutex
	jobs  []push.SendJob
	sends map[string]int
}

func newDispSender(answer func(t push.Target, n int) push.SendResult) *dispSender {
	return &dispSender{answer: answer, sends: map[string]int{}}
}

func (s *dispSender) Send(_ context.Context, job *push.SendJob) []push.SendResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := *job
	j.Targets = append([]push.Target(nil), job.Targets...)
	j.Badges = maps.Clone(job.Badges)
	s.jobs = append(s.jobs, j)
	out := make([]push.SendResult, len(job.Targets))
	for i, t := range job.Targets {
		out[i] = s.answer(t, s.sends[t.Token])
		s.sends[t.Token]++
	}
	return out
}

// sent returns the tokens given to the sender, in order.
func (s *dispSender) sent() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, j := range s.jobs {
		for _, t := range j.Targets {
			out = append(out, t.Token)
		}
	}
	return out
}

func (s *dispSender) jobCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.jobs)
}

// dispAnswer answers by a marker in the token: "ok" (default), "dead"
// (invalid_token), "badmsg", "transient", "throttle".
func dispAnswer(t push.Target, _ int) push.SendResult {
	switch {
	case strings.Contains(t.Token, "dead"):
		return push.SendResult{Class: push.SendInvalidToken, Code: "Unregistered"}
	case strings.Contains(t.Token, "badmsg"):
		return push.SendResult{Class: push.SendBadMessage, Code: "PayloadTooLarge"}
	case strings.Contains(t.Token, "transient"):
		return push.SendResult{Class: push.SendTransient, Code: "InternalServerError"}
	case strings.Contains(t.Token, "panic"):
		panic("the provider broke")
	}
	return push.SendResult{Class: push.SendOK}
}

// dispatchEnv is one provisioned copy of the template in a moto shared by
// the subtests of a test; each subtest provisions its own, so queues start
// empty.
type dispatchEnv struct {
	endpoint string
	stack    *cfn.Stack
	db       *dynamodb.Client
	sqs      *sqs.Client
	sm       *secretsmanager.Client
	devices  *dynamo.DeviceStore
	calls    *dynamo.CallStore
	store    *dynamo.DispatchStore
}

func newDispatchEnv(t *testing.T, endpoint string) *dispatchEnv {
	t.Helper()
	cfg := testenv.AWSConfig(endpoint)
	st := testenv.Stack(t, endpoint)
	db := dynamodb.NewFromConfig(cfg)
	table := st.Tables["StateTable"]
	return &dispatchEnv{endpoint: endpoint, stack: st, db: db, sqs: sqs.NewFromConfig(cfg), sm: secretsmanager.NewFromConfig(cfg),
		devices: dynamo.NewDeviceStore(db, table), calls: dynamo.NewCallStore(db, table), store: dynamo.NewDispatchStore(db, table)}
}

// dispQueueName is the logical id of vendor v's queue in the template.
func dispQueueName(v push.Vendor) string {
	id := DispatchFunctionID(v)
	return strings.TrimSuffix(strings.TrimPrefix(id, "Dispatch"), "Function") + "Queue"
}

func (e *dispatchEnv) queueURL(v push.Vendor) string { return e.stack.Queues[dispQueueName(v)].URL }

func (e *dispatchEnv) dlqURL(v push.Vendor) string {
	return e.stack.Queues[strings.TrimSuffix(dispQueueName(v), "Queue")+"DeadLetterQueue"].URL
}

// env is the environment of vendor v's dispatch function: the template's
// when it declares the function, with extra on top.
func (e *dispatchEnv) env(v push.Vendor, extra map[string]string) map[string]string {
	env := e.stack.FunctionEnv(DispatchFunctionID(v))
	if env == nil {
		env = map[string]string{
			EnvStateTable:         e.stack.Tables["StateTable"],
			EnvRequestTable:       e.stack.Tables["RequestTable"],
			EnvSecretPrefix:       e.stack.Parameters["SecretPrefix"],
			EnvQueueURL:           e.queueURL(v),
			EnvDeadLetterQueueURL: e.dlqURL(v),
			EnvMaxReceiveCount:    "5",
		}
	}
	env[EnvDispatchBaseDelayMS] = "0"
	maps.Copy(env, extra)
	return env
}

// handler builds vendor v's dispatch handler with sender; its metrics lines
// go to the returned buffer.
func (e *dispatchEnv) handler(t *testing.T, v push.Vendor, sender dispatch.Sender, extra map[string]string) (SQSHandler, *dispOutput) {
	t.Helper()
	return e.handlerAt(t, e.endpoint, v, sender, extra)
}

// handlerAt is handler with the function's AWS calls sent to endpoint.
func (e *dispatchEnv) handlerAt(t *testing.T, endpoint string, v push.Vendor, sender dispatch.Sender, extra map[string]string) (SQSHandler, *dispOutput) {
	t.Helper()
	metrics := &dispOutput{}
	log := slog.New(slog.NewJSONHandler(&metrics.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h, err := DispatchTo(context.Background(), testenv.Env(endpoint, e.env(v, extra)), log, v, sender, &metrics.emf)
	if err != nil {
		t.Fatalf("DispatchTo: %v", err)
	}
	return h, metrics
}

// dispOutput collects metrics lines and log lines.
type dispOutput struct {
	emf, log dispBuffer
}

type dispBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *dispBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *dispBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// counts adds up the metric values of every EMF line written so far, and
// checks each line's shape.
func (s *dispOutput) counts(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(s.emf.String()))
	for sc.Scan() {
		var doc map[string]any
		if err := json.Unmarshal(sc.Bytes(), &doc); err != nil {
			t.Fatalf("metrics line %q: %v", sc.Text(), err)
		}
		meta, _ := doc["_aws"].(map[string]any)
		cwm, _ := meta["CloudWatchMetrics"].([]any)
		if len(cwm) != 1 {
			t.Fatalf("metrics line without one CloudWatchMetrics directive: %s", sc.Text())
		}
		d, _ := cwm[0].(map[string]any)
		if d["Namespace"] != dispatch.Namespace {
			t.Errorf("namespace %v", d["Namespace"])
		}
		metrics, _ := d["Metrics"].([]any)
		for _, m := range metrics {
			name, _ := m.(map[string]any)["Name"].(string)
			v, ok := doc[name].(float64)
			if !ok {
				t.Fatalf("metric %s has no value in %s", name, sc.Text())
			}
			if v != 0 {
				out[name] += int(v)
			}
		}
	}
	return out
}

func (e *dispatchEnv) bind(t *testing.T, app, user string, b push.Binding) {
	t.Helper()
	c := dynamo.BindingChange{
		Profiles: []dynamo.ProfileChange{{UserID: user, Expect: []dynamo.HeldTokens{{DeviceID: b.DeviceID}}, Set: []push.Binding{b}}},
		Tokens: []dynamo.TokenChange{{Key: dynamo.TokenKey{Vendor: b.Vendor, Token: b.Token},
			Put: &dynamo.TokenOwner{Owner: push.Owner{UserID: user, DeviceID: b.DeviceID}, Kind: push.TokenAlert, Refreshed: time.Now()}}},
	}
	if b.VoIPToken != "" {
		c.Tokens = append(c.Tokens, dynamo.TokenChange{Key: dynamo.TokenKey{Vendor: b.Vendor, Token: b.VoIPToken},
			Put: &dynamo.TokenOwner{Owner: push.Owner{UserID: user, DeviceID: b.DeviceID}, Kind: push.TokenVoIP, Refreshed: time.Now()}})
	}
	if err := e.devices.Commit(context.Background(), app, c); err != nil {
		t.Fatalf("bind %s/%s: %v", user, b.DeviceID, err)
	}
}

// bindAll binds every binding to user in one transaction (at most 99), to
// keep the setup of large tests short.
func (e *dispatchEnv) bindAll(t *testing.T, app, user string, bs []push.Binding) {
	t.Helper()
	change := dynamo.BindingChange{Profiles: []dynamo.ProfileChange{{UserID: user, Set: bs}}}
	for _, b := range bs {
		change.Tokens = append(change.Tokens, dynamo.TokenChange{Key: dynamo.TokenKey{Vendor: b.Vendor, Token: b.Token},
			Put: &dynamo.TokenOwner{Owner: push.Owner{UserID: user, DeviceID: b.DeviceID}, Kind: push.TokenAlert, Refreshed: time.Now()}})
	}
	if err := e.devices.Commit(context.Background(), app, change); err != nil {
		t.Fatalf("bind %d devices of %s: %v", len(bs), user, err)
	}
}

// dispBinding is a device binding of vendor v with token (and VoIP token).
func dispBinding(v push.Vendor, device, token, voip string) push.Binding {
	return push.Binding{DeviceID: device, Vendor: v, Token: token, VoIPToken: voip, CertName: dispCert(v),
		Platform: push.DefaultPlatform(v), RegisteredAt: time.Now().UTC().Truncate(time.Millisecond)}
}

// bound reports whether user's device still holds token (as alert or VoIP
// token).
func (e *dispatchEnv) bound(t *testing.T, app, user, device, token string) bool {
	t.Helper()
	bs, _, err := e.devices.Devices(context.Background(), app, user)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if b.DeviceID == device && (b.Token == token || b.VoIPToken == token) {
			return true
		}
	}
	return false
}

// credentials stores the secret of app's credentials of vendor v, named
// "cert" for APNs and "cert-{vendor}" otherwise.
func (e *dispatchEnv) credentials(t *testing.T, app string, v push.Vendor) string {
	t.Helper()
	value := fmt.Sprintf(`{"vendor": %q, "key": "k-%s"}`, v, app)
	_, err := e.sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{
		Name:         aws.String(e.stack.Parameters["SecretPrefix"] + "/" + app + "/vendors/" + dispCert(v)),
		SecretString: aws.String(value),
		Tags:         []smtypes.Tag{{Key: aws.String(secrets.VendorTag), Value: aws.String(string(v))}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return value
}

// dispCert is the certName of the test credentials of vendor v.
func dispCert(v push.Vendor) string {
	if v == push.APNs {
		return "cert"
	}
	return "cert-" + string(v)
}

// dispEnvelope is a message envelope of vendor v for targets, living for ttl.
func dispEnvelope(app string, v push.Vendor, id string, ttl time.Duration, targets ...push.Target) *push.Envelope {
	return &push.Envelope{
		Version: push.EnvelopeVersion, App: app, Vendor: v, CertName: dispCert(v), MessageID: id, Kind: push.KindMessage,
		SenderID: "alice", ConversationType: push.Peer, ExpiresAt: time.Now().Add(ttl).UnixMilli(),
		Priority: push.PriorityNormal, Texts: []push.EnvelopeText{{Title: "Alice", Body: "hi"}}, Targets: targets,
	}
}

func dispTarget(user, device, token string) push.Target {
	return push.Target{UserID: user, DeviceID: device, Token: token}
}

// dispRecord is the SQS record of env, received n times.
func dispRecord(t *testing.T, id string, env *push.Envelope, n int) events.SQSMessage {
	t.Helper()
	body, err := push.EncodeEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	return events.SQSMessage{MessageId: id, Body: string(body), Attributes: map[string]string{"ApproximateReceiveCount": strconv.Itoa(n)}}
}

func dispInvoke(t *testing.T, h SQSHandler, recs ...events.SQSMessage) []string {
	t.Helper()
	resp, err := h(context.Background(), events.SQSEvent{Records: recs})
	if err != nil {
		t.Fatalf("handler: %v", err)
	}
	failed := []string{}
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	return failed
}

// queued receives every visible message of url and returns their envelopes,
// deleting them.
func (e *dispatchEnv) queued(t *testing.T, url string) []*push.Envelope {
	t.Helper()
	ctx := context.Background()
	var out []*push.Envelope
	for {
		res, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Messages) == 0 {
			return out
		}
		for _, m := range res.Messages {
			env, err := push.DecodeEnvelope([]byte(aws.ToString(m.Body)))
			if err != nil {
				t.Fatalf("queued message: %v", err)
			}
			out = append(out, env)
			if _, err := e.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// delayed is the number of delayed messages in url.
func (e *dispatchEnv) delayed(t *testing.T, url string) int {
	t.Helper()
	out, err := e.sqs.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed}})
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(out.Attributes["ApproximateNumberOfMessagesDelayed"])
	return n
}

func dispTokens(ts []push.Target) []string {
	out := []string{}
	for _, t := range ts {
		out = append(out, t.Token)
	}
	return out
}

func TestDispatch(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto_server")
	}
	srv := testenv.Moto(t)
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, e *dispatchEnv)
	}{
		{"Outcomes", testDispatchOutcomes},
		{"Expired", testDispatchExpired},
		{"WholeRecordFailure", testDispatchWholeRecordFailure},
		{"AttemptBound", testDispatchAttemptBound},
		{"LastReceive", testDispatchLastReceive},
		{"RetryDelay", testDispatchRetryDelay},
		{"QuotaWait", testDispatchQuotaWait},
		{"BadEnvelopes", testDispatchBadEnvelopes},
		{"PanicIsolated", testDispatchPanicIsolated},
		{"Invites", testDispatchInvites},
		{"Cancels", testDispatchCancels},
		{"Badge", testDispatchBadge},
		{"RequestCounts", testDispatchRequestCounts},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newDispatchEnv(t, srv.Endpoint)) })
	}
}

// testDispatchOutcomes dispatches one envelope whose targets meet every
// answer of the vendor, plus a token that moved to another user after
// ingest.
func testDispatchOutcomes(t *testing.T, e *dispatchEnv) {
	const app = "outcomes"
	secret := e.credentials(t, app, push.APNs)
	tok := func(s string) string { return fmt.Sprintf("%064s", s) }
	ok, dead, badmsg, transient, moved := tok("ok"), tok("dead"), tok("badmsg"), tok("transient"), tok("moved")
	e.bind(t, app, "bob", dispBinding(push.APNs, "phone", ok, ""))
	e.bind(t, app, "bob", dispBinding(push.APNs, "pad", dead, ""))
	e.bind(t, app, "carol", dispBinding(push.APNs, "phone", badmsg, ""))
	e.bind(t, app, "carol", dispBinding(push.APNs, "pad", transient, ""))
	// The token was bob's old phone's at ingest; it now belongs to dave.
	e.bind(t, app, "dave", dispBinding(push.APNs, "phone", moved, ""))

	sender := newDispSender(dispAnswer)
	h, m := e.handler(t, push.APNs, sender, nil)
	env := dispEnvelope(app, push.APNs, "m-1", time.Hour,
		dispTarget("bob", "phone", ok), dispTarget("bob", "pad", dead), dispTarget("carol", "phone", badmsg),
		dispTarget("carol", "pad", transient), dispTarget("bob", "old-phone", moved))
	start := time.Now()
	if failed := dispInvoke(t, h, dispRecord(t, "r1", env, 1)); len(failed) != 0 {
		t.Fatalf("failed records %v, want none", failed)
	}

	if diff := cmp.Diff([]string{ok, dead, badmsg, transient}, sender.sent()); diff != "" {
		t.Errorf("tokens sent (-want +got):\n%s", diff)
	}
	job := sender.jobs[0]
	if string(job.Credentials) != secret || !strings.HasPrefix(job.CredentialsKey, app+"/cert@") || job.Envelope.MessageID != "m-1" {
		t.Errorf("job credentials %q key %q, want the secret and a versioned key", job.Credentials, job.CredentialsKey)
	}
	if left := env.Expiry().Sub(start); job.TTL <= 0 || job.TTL > left {
		t.Errorf("TTL = %v, want in (0, %v]", job.TTL, left)
	}
	if job.Badges != nil {
		t.Errorf("Badges = %v for an envelope without badge", job.Badges)
	}
	want := map[string]int{"delivered": 1, "invalid_token": 1, "bad_message": 1, "unbound": 1, "requeued": 1}
	if diff := cmp.Diff(want, m.counts(t)); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	if e.bound(t, app, "bob", "pad", dead) {
		t.Error("the dead token is still bound")
	}
	for _, c := range []struct{ user, device, token string }{{"bob", "phone", ok}, {"carol", "phone", badmsg}, {"carol", "pad", transient}, {"dave", "phone", moved}} {
		if !e.bound(t, app, c.user, c.device, c.token) {
			t.Errorf("%s/%s lost its binding", c.user, c.device)
		}
	}
	requeued := e.queued(t, e.queueURL(push.APNs))
	if len(requeued) != 1 {
		t.Fatalf("%d messages requeued, want 1", len(requeued))
	}
	r := requeued[0]
	if diff := cmp.Diff([]string{transient}, dispTokens(r.Targets)); diff != "" || r.Attempt != 1 || r.MessageID != "m-1" || len(r.Texts) != 1 {
		t.Errorf("requeued envelope: message %s attempt %d targets %v, want m-1 attempt 1 with the transient target only", r.MessageID, r.Attempt, dispTokens(r.Targets))
	}
	if logs := m.log.String(); strings.Contains(logs, ok) || strings.Contains(logs, dead) || strings.Contains(logs, "k-"+app) {
		t.Errorf("a token or the secret was logged:\n%s", logs)
	}
}

func testDispatchExpired(t *testing.T, e *dispatchEnv) {
	const app = "expired"
	e.credentials(t, app, push.APNs)
	e.bind(t, app, "bob", dispBinding(push.APNs, "phone", "a1", ""))
	sender := newDispSender(dispAnswer)
	h, m := e.handler(t, push.APNs, sender, nil)
	env := dispEnvelope(app, push.APNs, "m-1", -time.Second, dispTarget("bob", "phone", "a1"), dispTarget("bob", "gone", "a2"))
	dispInvoke(t, h, dispRecord(t, "r1", env, 1))
	if n := sender.jobCount(); n != 0 {
		t.Errorf("%d jobs sent for an expired push", n)
	}
	// The binding check comes first (POLICY.md §8), so the target whose
	// binding is gone is unbound rather than expired.
	if diff := cmp.Diff(map[string]int{"expired": 1, "unbound": 1}, m.counts(t)); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
}

// testDispatchWholeRecordFailure fails every target transiently: the dispRecord
// is reported for redelivery and nothing is requeued.
func testDispatchWholeRecordFailure(t *testing.T, e *dispatchEnv) {
	const app = "whole"
	e.credentials(t, app, push.APNs)
	e.bind(t, app, "bob", dispBinding(push.APNs, "phone", "transient-1", ""))
	e.bind(t, app, "bob", dispBinding(push.APNs, "pad", "transient-2", ""))
	e.bind(t, app, "carol", dispBinding(push.APNs, "phone", "ok-1", ""))
	sender := newDispSender(dispAnswer)
	h, m := e.handler(t, push.APNs, sender, nil)
	failing := dispEnvelope(app, push.APNs, "m-1", time.Hour, dispTarget("bob", "phone", "transient-1"), dispTarget("bob", "pad", "transient-2"))
	fine := dispEnvelope(app, push.APNs, "m-2", time.Hour, dispTarget("carol", "phone", "ok-1"))
	failed := dispInvoke(t, h, dispRecord(t, "r1", failing, 1), dispRecord(t, "r2", fine, 1))
	if diff := cmp.Diff([]string{"r1"}, failed); diff != "" {
		t.Errorf("failed records (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{"retried": 2, "delivered": 1}, m.counts(t)); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	if got := e.queued(t, e.queueURL(push.APNs)); len(got) != 0 {
		t.Errorf("%d messages requeued, want none", len(got))
	}
	// A whole-record failure before sending (no credentials) is retried
	// the same way.
	nocreds := dispEnvelope("nocreds", push.APNs, "m-3", time.Hour, dispTarget("bob", "phone", "x"))
	e.bind(t, "nocreds", "bob", dispBinding(push.APNs, "phone", "x", ""))
	if failed := dispInvoke(t, h, dispRecord(t, "r3", nocreds, 1)); !cmp.Equal(failed, []string{"r3"}) {
		t.Errorf("failed records %v, want r3 (its credentials are missing)", failed)
	}
}

// testDispatchAttemptBound dead-letters the failed targets of a record at
// the last attempt, and keeps the others' outcomes.
func testDispatchAttemptBound(t *testing.T, e *dispatchEnv) {
	const app = "attempts"
	e.credentials(t, app, push.APNs)
	e.bind(t, app, "bob", dispBinding(push.APNs, "phone", "transient-1", ""))
	e.bind(t, app, "bob", dispBinding(push.APNs, "pad", "ok-1", ""))
	sender := newDispSender(dispAnswer)
	h, m := e.handler(t, push.APNs, sender, map[string]string{EnvDispatchMaxAttempts: "3"})
	env := dispEnvelope(app, push.APNs, "m-1", time.Hour, dispTarget("bob", "phone", "transient-1"), dispTarget("bob", "pad", "ok-1"))
	env.Attempt = 3
	if failed := dispInvoke(t, h, dispRecord(t, "r1", env, 1)); len(failed) != 0 {
		t.Fatalf("failed records %v", failed)
	}
	if diff := cmp.Diff(map[string]int{"dead_lettered": 1, "delivered": 1}, m.counts(t)); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	dl := e.queued(t, e.dlqURL(push.APNs))
	if len(dl) != 1 || !cmp.Equal(dispTokens(dl[0].Targets), []string{"transient-1"}) || dl[0].Attempt != 0 {
		t.Errorf("dead-letter queue holds %d envelopes, want one with the failed target at attempt 0", len(dl))
	}
	if got := e.queued(t, e.queueURL(push.APNs)); len(got) != 0 {
		t.Errorf("%d messages requeued, want none", len(got))
	}
}

// testDispatchLastReceive dead-letters a record that fails whole on the
// queue's last receive, instead of leaving that to the redrive policy.
func testDispatchLastReceive(t *testing.T, e *dispatchEnv) {
	const app = "last"
	e.credentials(t, app, push.APNs)
	e.bind(t, app, "bob", dispBinding(push.APNs, "phone", "transient-1", ""))
	e.bind(t, app, "bob", dispBinding(push.APNs, "pad", "gone", ""))
	sender := newDispSender(dispAnswer)
	h, m := e.handler(t, push.APNs, sender, map[string]string{EnvMaxReceiveCount: "5"})
	env := dispEnvelope(app, push.APNs, "m-1", time.Hour, dispTarget("bob", "phone", "transient-1"))
	if failed := dispInvoke(t, h, dispRecord(t, "r1", env, 4)); !cmp.Equal(failed, []string{"r1"}) {
		t.Errorf("receive 4: failed records %v, want r1", failed)
	}
	if failed := dispInvoke(t, h, dispRecord(t, "r1", env, 5)); len(failed) != 0 {
		t.Errorf("receive 5: failed records %v, want none", failed)
	}
	if diff := cmp.Diff(map[string]int{"retried": 1, "dead_lettered": 1}, m.counts(t)); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	if dl := e.queued(t, e.dlqURL(push.APNs)); len(dl) != 1 || !cmp.Equal(dispTokens(dl[0].Targets), []string{"transient-1"}) {
		t.Errorf("dead-letter queue holds %d envelopes, want the record's", len(dl))
	}
}

// testDispatchRetryDelay honours the vendor's RetryAfter, and ends a dispTarget
// whose retry would come after its expiry.
func testDispatchRetryDelay(t *testing.T, e *dispatchEnv) {
	const app = "delay"
	e.credentials(t, app, push.APNs)
	for _, tok := range []string{"slow", "late", "ok"} {
		e.bind(t, app, "bob", dispBinding(push.APNs, tok, tok, ""))
	}
	sender := newDispSender(func(t push.Target, _ int) push.SendResult {
		if t.Token == "ok" {
			return push.SendResult{Class: push.SendOK}
		}
		return push.SendResult{Class: push.SendThrottled, RetryAfter: 30 * time.Second, Code: "TooManyRequests"}
	})
	h, m := e.handler(t, push.APNs, sender, nil)
	slow := dispEnvelope(app, push.APNs, "m-1", time.Hour, dispTarget("bob", "slow", "slow"), dispTarget("bob", "ok", "ok"))
	late := dispEnvelope(app, push.APNs, "m-2", 10*time.Second, dispTarget("bob", "late", "late"), dispTarget("bob", "ok", "ok"))
	if failed := dispInvoke(t, h, dispRecord(t, "r1", slow, 1), dispRecord(t, "r2", late, 1)); len(failed) != 0 {
		t.Fatalf("failed records %v", failed)
	}
	if diff := cmp.Diff(map[string]int{"delivered": 2, "requeued": 1, "expired": 1}, m.counts(t)); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	if n := e.delayed(t, e.queueURL(push.APNs)); n != 1 {
		t.Errorf("%d delayed messages, want 1", n)
	}
	if got := e.queued(t, e.queueURL(push.APNs)); len(got) != 0 {
		t.Errorf("%d messages visible at once, want the retry delayed", len(got))
	}
	// Without a hint from the vendor, the backoff delays the retry.
	e.bind(t, app, "carol", dispBinding(push.APNs, "phone", "transient-1", ""))
	e.bind(t, app, "carol", dispBinding(push.APNs, "pad", "ok-2", ""))
	hb, _ := e.handler(t, push.APNs, newDispSender(dispAnswer), map[string]string{EnvDispatchBaseDelayMS: "2000"})
	env := dispEnvelope(app, push.APNs, "m-3", time.Hour, dispTarget("carol", "phone", "transient-1"), dispTarget("carol", "pad", "ok-2"))
	if failed := dispInvoke(t, hb, dispRecord(t, "r3", env, 1)); len(failed) != 0 {
		t.Fatalf("failed records %v", failed)
	}
	if n := e.delayed(t, e.queueURL(push.APNs)); n != 2 {
		t.Errorf("%d delayed messages, want 2", n)
	}
}

// testDispatchQuotaWait hops a target through the queue while the vendor's
// quota is spent, without sending anything more for those credentials.
func testDispatchQuotaWait(t *testing.T, e *dispatchEnv) {
	const app = "quota"
	e.credentials(t, app, push.APNs)
	e.bind(t, app, "bob", dispBinding(push.APNs, "phone", "a1", ""))
	e.bind(t, app, "carol", dispBinding(push.APNs, "phone", "a2", ""))
	sender := newDispSender(func(push.Target, int) push.SendResult {
		return push.SendResult{Class: push.SendThrottled, RetryAfter: 3 * time.Hour, Code: "QUOTA_EXCEEDED"}
	})
	h, m := e.handler(t, push.APNs, sender, nil)
	first := dispEnvelope(app, push.APNs, "m-1", 24*time.Hour, dispTarget("bob", "phone", "a1"))
	second := dispEnvelope(app, push.APNs, "m-2", 24*time.Hour, dispTarget("carol", "phone", "a2"))
	// The first answer is a quota wait: the record is requeued, not failed.
	if failed := dispInvoke(t, h, dispRecord(t, "r1", first, 1)); len(failed) != 0 {
		t.Errorf("failed records %v, want none", failed)
	}
	if failed := dispInvoke(t, h, dispRecord(t, "r2", second, 1)); len(failed) != 0 {
		t.Errorf("failed records %v, want none", failed)
	}
	if diff := cmp.Diff([]string{"a1"}, sender.sent()); diff != "" {
		t.Errorf("tokens sent (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{"requeued": 2}, m.counts(t)); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	if n := e.delayed(t, e.queueURL(push.APNs)); n != 2 {
		t.Errorf("%d delayed messages, want 2", n)
	}
	// A push that expires within the next hop ends as expired.
	short := dispEnvelope(app, push.APNs, "m-3", 10*time.Minute, dispTarget("carol", "phone", "a2"))
	dispInvoke(t, h, dispRecord(t, "r3", short, 1))
	if got := m.counts(t)["expired"]; got != 1 {
		t.Errorf("expired = %d, want 1: the next hop (900 s) comes after its expiry", got)
	}
}

func testDispatchBadEnvelopes(t *testing.T, e *dispatchEnv) {
	const app = "bad"
	sender := newDispSender(dispAnswer)
	h, m := e.handler(t, push.APNs, sender, nil)
	fcm := dispEnvelope(app, push.FCM, "m-1", time.Hour, dispTarget("bob", "phone", "f1"), dispTarget("bob", "pad", "f2"))
	badID := dispEnvelope(app, push.APNs, "m-2", time.Hour, dispTarget("bob", "phone", "a1"))
	badID.Targets = append(badID.Targets, push.Target{UserID: "bob", DeviceID: "with space", Token: "a2"})
	e.bind(t, app, "bob", dispBinding(push.APNs, "phone", "a1", ""))
	e.credentials(t, app, push.APNs)
	recs := []events.SQSMessage{
		{MessageId: "garbage", Body: "not json"},
		{MessageId: "version", Body: `{"v": 99, "targets": [{}, {}, {}]}`},
		{MessageId: "text", Body: `{"v": 1, "app": "bad", "vendor": "apns", "texts": [], "targets": [{"u": "bob", "d": "p", "tk": "t", "x": 0}]}`},
		dispRecord(t, "vendor", fcm, 1),
		dispRecord(t, "target", badID, 1),
	}
	if failed := dispInvoke(t, h, recs...); len(failed) != 0 {
		t.Errorf("failed records %v, want none: a bad envelope is never retried", failed)
	}
	// garbage 0 (no targets readable), version 3, text 1, vendor 2, target 1.
	if diff := cmp.Diff(map[string]int{"bad_message": 7, "delivered": 1}, m.counts(t)); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"a1"}, sender.sent()); diff != "" {
		t.Errorf("tokens sent (-want +got):\n%s", diff)
	}
}

// testDispatchPanicIsolated lets a provider panic on one record: that dispRecord
// is delivered again, the others of the batch are done.
func testDispatchPanicIsolated(t *testing.T, e *dispatchEnv) {
	const app = "panics"
	e.credentials(t, app, push.APNs)
	e.bind(t, app, "bob", dispBinding(push.APNs, "phone", "panic-1", ""))
	e.bind(t, app, "carol", dispBinding(push.APNs, "phone", "ok-1", ""))
	sender := newDispSender(dispAnswer)
	h, m := e.handler(t, push.APNs, sender, nil)
	failed := dispInvoke(t, h, dispRecord(t, "r1", dispEnvelope(app, push.APNs, "m-1", time.Hour, dispTarget("bob", "phone", "panic-1")), 1),
		dispRecord(t, "r2", dispEnvelope(app, push.APNs, "m-2", time.Hour, dispTarget("carol", "phone", "ok-1")), 1))
	if diff := cmp.Diff([]string{"r1"}, failed); diff != "" {
		t.Errorf("failed records (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{"delivered": 1}, m.counts(t)); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	if !strings.Contains(m.log.String(), "record panicked") {
		t.Error("the panic was not logged")
	}
}

// dispCallEnvelope is an invite or cancel of call to user's device.
func dispCallEnvelope(app string, kind push.MessageKind, id, call string, ttl time.Duration, targets ...push.Target) *push.Envelope {
	env := dispEnvelope(app, push.APNs, id, ttl, targets...)
	env.Kind, env.CallID, env.Media, env.Priority = kind, call, push.MediaAudio, push.PriorityHigh
	return env
}

func (e *dispatchEnv) ring(t *testing.T, app, user, call string, accepted time.Time, timeout time.Duration) {
	t.Helper()
	rec := push.CallRecord{CallID: call, AcceptedAt: accepted.UTC().Truncate(time.Millisecond), ExpiresAt: accepted.Add(timeout).UTC().Truncate(time.Millisecond)}
	devices := []push.CallDevice{{DeviceID: "phone", Vendor: push.APNs, CertName: "cert", Kind: push.TokenVoIP}}
	if ok, err := e.calls.Ring(context.Background(), app, user, rec, devices, time.Now()); err != nil || !ok {
		t.Fatalf("ring %s for %s: %v, %v", call, user, ok, err)
	}
}

func (e *dispatchEnv) cancel(t *testing.T, app, user, call string) {
	t.Helper()
	if _, ok, err := e.calls.Cancel(context.Background(), app, user, call, "cancel-"+call); err != nil || !ok {
		t.Fatalf("cancel %s for %s: %v, %v", call, user, ok, err)
	}
}

// invite returns what the call item records of user's phone for call.
func (e *dispatchEnv) invite(t *testing.T, app, user string) dynamo.InviteMark {
	t.Helper()
	calls, err := e.store.Calls(context.Background(), app, []string{user}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if calls[user] == nil {
		return dynamo.InviteMark{}
	}
	return calls[user].Invites["phone"]
}

func dispVoIPTarget(user, token string) push.Target {
	return push.Target{UserID: user, DeviceID: "phone", Token: token, Kind: push.TokenVoIP}
}

func testDispatchInvites(t *testing.T, e *dispatchEnv) {
	const app = "invites"
	e.credentials(t, app, push.APNs)
	now := time.Now()
	tests := []struct {
		name  string
		setup func(t *testing.T, user string)
		token string
		want  string // outcome
		mark  string // the invite mark afterwards
	}{
		{"the current call rings", func(t *testing.T, u string) { e.ring(t, app, u, "c-1", now, time.Minute) }, "v-ok", "delivered", dynamo.InviteSent},
		{"a refused invite is marked unsent", func(t *testing.T, u string) { e.ring(t, app, u, "c-1", now, time.Minute) }, "v-dead", "invalid_token", dynamo.InviteUnsent},
		{"a cancelled call is dropped", func(t *testing.T, u string) {
			e.ring(t, app, u, "c-1", now, time.Minute)
			e.cancel(t, app, u, "c-1")
		}, "v-ok", "call_cancelled", ""},
		{"a newer call supersedes", func(t *testing.T, u string) {
			e.ring(t, app, u, "c-1", now, time.Minute)
			e.ring(t, app, u, "c-2", now.Add(time.Second), time.Minute)
		}, "v-ok", "call_superseded", ""},
		{"a call past its timeout has expired", func(t *testing.T, u string) {
			e.ring(t, app, u, "c-1", now.Add(-2*time.Minute), time.Minute)
		}, "v-ok", "call_expired", ""},
		{"no call on record has expired", func(*testing.T, string) {}, "v-ok", "call_expired", ""},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			user := "callee-" + strconv.Itoa(i)
			tok := fmt.Sprintf("%s-%d", tc.token, i)
			e.bind(t, app, user, dispBinding(push.APNs, "phone", "alert-"+strconv.Itoa(i), tok))
			tc.setup(t, user)
			sender := newDispSender(dispAnswer)
			h, m := e.handler(t, push.APNs, sender, nil)
			inv := dispCallEnvelope(app, push.KindCallInvite, "m-"+strconv.Itoa(i), "c-1", time.Minute, dispVoIPTarget(user, tok))
			if failed := dispInvoke(t, h, dispRecord(t, "r", inv, 1)); len(failed) != 0 {
				t.Fatalf("failed records %v", failed)
			}
			if diff := cmp.Diff(map[string]int{tc.want: 1}, m.counts(t)); diff != "" {
				t.Errorf("counts (-want +got):\n%s", diff)
			}
			sentWant := tc.want == "delivered" || tc.want == "invalid_token"
			if got := len(sender.sent()) == 1; got != sentWant {
				t.Errorf("sent = %v, want %v", got, sentWant)
			}
			if got := e.invite(t, app, user).State; got != tc.mark {
				t.Errorf("invite mark = %q, want %q", got, tc.mark)
			}
			if tc.want == "invalid_token" && (e.bound(t, app, user, "phone", tok) || !e.bound(t, app, user, "phone", "alert-"+strconv.Itoa(i))) {
				t.Error("a dead VoIP token must go, and only it")
			}
		})
	}
}

func testDispatchCancels(t *testing.T, e *dispatchEnv) {
	const app = "cancels"
	e.credentials(t, app, push.APNs)
	now := time.Now()
	// sendInvite dispatches the invite of c-1 to user and checks its outcome.
	sendInvite := func(t *testing.T, user, tok, want string) {
		t.Helper()
		h, m := e.handler(t, push.APNs, newDispSender(dispAnswer), nil)
		inv := dispCallEnvelope(app, push.KindCallInvite, "invite-"+user, "c-1", time.Minute, dispVoIPTarget(user, tok))
		if failed := dispInvoke(t, h, dispRecord(t, "r", inv, 1)); len(failed) != 0 {
			t.Fatalf("invite failed: %v", failed)
		}
		if diff := cmp.Diff(map[string]int{want: 1}, m.counts(t)); diff != "" {
			t.Errorf("invite counts (-want +got):\n%s", diff)
		}
	}
	tests := []struct {
		name      string
		setup     func(t *testing.T, user, tok string)
		want      string
		wantSent  bool
		wantDelay bool // requeued, delayed
	}{
		{"after the invite was sent, the cancel is sent", func(t *testing.T, u, tok string) {
			e.ring(t, app, u, "c-1", now, time.Minute)
			sendInvite(t, u, tok, "delivered")
			e.cancel(t, app, u, "c-1")
		}, "delivered", true, false},
		{"before the invite was sent, nothing is sent, and the invite is dropped", func(t *testing.T, u, tok string) {
			e.ring(t, app, u, "c-1", now, time.Minute)
			e.cancel(t, app, u, "c-1")
			sendInvite(t, u, tok, "call_cancelled")
		}, "call_cancelled", false, false},
		{"while the invite is in flight, the cancel waits", func(t *testing.T, u, tok string) {
			e.ring(t, app, u, "c-1", now, time.Minute)
			if ok, err := e.store.MarkSending(context.Background(), app, u, "c-1", []string{"phone"}, time.Now().Add(20*time.Second)); err != nil || !ok {
				t.Fatalf("MarkSending = %v, %v", ok, err)
			}
			e.cancel(t, app, u, "c-1")
		}, "requeued", false, true},
		{"an invite whose sender died mid-way may have rung: the cancel is sent", func(t *testing.T, u, tok string) {
			e.ring(t, app, u, "c-1", now, time.Minute)
			if ok, err := e.store.MarkSending(context.Background(), app, u, "c-1", []string{"phone"}, time.Now().Add(-time.Second)); err != nil || !ok {
				t.Fatalf("MarkSending = %v, %v", ok, err)
			}
			e.cancel(t, app, u, "c-1")
		}, "delivered", true, false},
		{"a cancel of a superseded call is dropped", func(t *testing.T, u, tok string) {
			e.ring(t, app, u, "c-1", now, time.Minute)
			sendInvite(t, u, tok, "delivered")
			e.cancel(t, app, u, "c-1")
			e.ring(t, app, u, "c-2", now.Add(time.Second), time.Minute)
		}, "call_superseded", false, false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			user := "callee-" + strconv.Itoa(i)
			tok := fmt.Sprintf("v-%d", i)
			e.bind(t, app, user, dispBinding(push.APNs, "phone", "alert-"+strconv.Itoa(i), tok))
			tc.setup(t, user, tok)
			before := e.delayed(t, e.queueURL(push.APNs))
			sender := newDispSender(dispAnswer)
			h, m := e.handler(t, push.APNs, sender, nil)
			c := dispCallEnvelope(app, push.KindCallCancel, "cancel-"+user, "c-1", time.Hour, dispVoIPTarget(user, tok))
			if failed := dispInvoke(t, h, dispRecord(t, "r", c, 1)); len(failed) != 0 {
				t.Fatalf("failed records %v", failed)
			}
			if diff := cmp.Diff(map[string]int{tc.want: 1}, m.counts(t)); diff != "" {
				t.Errorf("counts (-want +got):\n%s", diff)
			}
			if got := len(sender.sent()) == 1; got != tc.wantSent {
				t.Errorf("cancel sent = %v, want %v", got, tc.wantSent)
			}
			if tc.wantSent && sender.jobs[0].Envelope.Kind != push.KindCallCancel {
				t.Errorf("sent a %s, want the cancel", sender.jobs[0].Envelope.Kind)
			}
			if got := e.delayed(t, e.queueURL(push.APNs)) > before; got != tc.wantDelay {
				t.Errorf("cancel delayed in the queue = %v, want %v", got, tc.wantDelay)
			}
		})
	}
}

// testDispatchBadge counts each user once per message: across a retry of
// the same envelope and across vendors.
func testDispatchBadge(t *testing.T, e *dispatchEnv) {
	const app = "badges"
	e.credentials(t, app, push.APNs)
	e.credentials(t, app, push.FCM)
	e.bind(t, app, "bob", dispBinding(push.APNs, "phone", "b-phone", ""))
	e.bind(t, app, "bob", dispBinding(push.APNs, "pad", "b-pad", ""))
	e.bind(t, app, "bob", dispBinding(push.FCM, "android", "b-android", ""))
	e.bind(t, app, "carol", dispBinding(push.APNs, "phone", "c-phone", ""))
	if err := dynamo.NewPresenceStore(e.db, e.stack.Tables["StateTable"]).SetBadge(context.Background(), app, "bob", 3); err != nil {
		t.Fatal(err)
	}
	apns := newDispSender(dispAnswer)
	h, _ := e.handler(t, push.APNs, apns, nil)
	env := dispEnvelope(app, push.APNs, "m-1", time.Hour, dispTarget("bob", "phone", "b-phone"), dispTarget("bob", "pad", "b-pad"), dispTarget("carol", "phone", "c-phone"))
	env.Badge = true
	dispInvoke(t, h, dispRecord(t, "r1", env, 1))
	dispInvoke(t, h, dispRecord(t, "r1", env, 2)) // delivered twice, as SQS may
	fcm := newDispSender(dispAnswer)
	hf, _ := e.handler(t, push.FCM, fcm, nil)
	fenv := dispEnvelope(app, push.FCM, "m-1", time.Hour, dispTarget("bob", "android", "b-android"))
	fenv.Badge = true
	dispInvoke(t, hf, dispRecord(t, "f1", fenv, 1))
	next := dispEnvelope(app, push.APNs, "m-2", time.Hour, dispTarget("bob", "phone", "b-phone"))
	next.Badge = true
	dispInvoke(t, h, dispRecord(t, "r2", next, 1))

	want := []map[string]int{{"bob": 4, "carol": 1}, {"bob": 4, "carol": 1}, {"bob": 5}}
	var got []map[string]int
	for _, j := range apns.jobs {
		got = append(got, j.Badges)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("APNs badges by job (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{"bob": 4}, fcm.jobs[0].Badges); diff != "" {
		t.Errorf("FCM badges (-want +got):\n%s", diff)
	}
}

// faultSender fails a share of sends at random (seeded), always refuses the
// tokens in dead and always fails those in doomed transiently, and keeps
// what it accepted: the account that the engine's counts are checked
// against from outside.
type faultSender struct {
	dead, doomed map[string]bool

	mu       sync.Mutex
	rng      *rand.Rand
	accepted map[string]int // token → times accepted
	answered map[push.SendClass]int
}

func (s *faultSender) Send(_ context.Context, job *push.SendJob) []push.SendResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]push.SendResult, len(job.Targets))
	for i, t := range job.Targets {
		r := s.rng.Float64()
		switch {
		case s.dead[t.Token]:
			out[i] = push.SendResult{Class: push.SendInvalidToken, Code: "Unregistered"}
		case s.doomed[t.Token] || r < 0.30:
			out[i] = push.SendResult{Class: push.SendTransient, Code: "ServiceUnavailable"}
		case r < 0.40:
			out[i] = push.SendResult{Class: push.SendThrottled, Code: "TooManyRequests"}
		default:
			out[i] = push.SendResult{Class: push.SendOK}
			s.accepted[t.Token]++
		}
		s.answered[out[i].Class]++
	}
	return out
}

// TestDispatchFaultAccounting drains many envelopes through the local
// stack's poller while the vendor fails 30% of sends transiently, throttles
// 10%, calls 5% of the tokens dead and never takes another 3%, and DynamoDB
// and SQS throttle and leave keys unprocessed. Once the queue is quiet, every target must have
// exactly one fate, seen from outside the engine: accepted once by the
// vendor, or in the dead-letter queue, or dead with its binding gone; and
// the engine's metrics must agree.
func TestDispatchFaultAccounting(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto_server")
	}
	ctx := context.Background()
	srv := testenv.Moto(t)
	e := newDispatchEnv(t, srv.Endpoint)
	const app = "faults"
	e.credentials(t, app, push.APNs)
	queue := e.stack.Queues[dispQueueName(push.APNs)]
	rng := rand.New(rand.NewPCG(7, 11))
	sender := &faultSender{dead: map[string]bool{}, doomed: map[string]bool{}, rng: rand.New(rand.NewPCG(1, 2)), accepted: map[string]int{}, answered: map[push.SendClass]int{}}
	type owner struct{ user, device string }
	holders := map[string]owner{}
	var envs []*push.Envelope
	for i := range 40 {
		n := 1 + rng.IntN(15)
		if i%4 == 0 {
			n = 1 // single-target records fail whole often
		}
		var targets []push.Target
		var bs []push.Binding
		user := fmt.Sprintf("u%d", i)
		for j := range n {
			device := fmt.Sprintf("d%d", j)
			tok := fmt.Sprintf("%032x%032x", i, j)
			bs = append(bs, dispBinding(push.APNs, device, tok, ""))
			holders[tok] = owner{user, device}
			switch r := rng.Float64(); {
			case i == 0 || r < 0.03:
				// The first envelope, a single doomed target, fails whole on
				// every receive until the last one dead-letters it.
				sender.doomed[tok] = true
			case r < 0.08:
				sender.dead[tok] = true
			}
			targets = append(targets, dispTarget(user, device, tok))
		}
		e.bindAll(t, app, user, bs)
		envs = append(envs, dispEnvelope(app, push.APNs, fmt.Sprintf("m-%d", i), time.Hour, targets...))
	}
	for _, env := range envs {
		body, err := push.EncodeEnvelope(env)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(queue.URL), MessageBody: aws.String(string(body))}); err != nil {
			t.Fatal(err)
		}
	}

	proxy := testenv.NewProxy(t, srv.Endpoint, testenv.ProxyOptions{Seed: 5, ThrottleRate: 0.05, UnprocessedRate: 0.3})
	out := &dispOutput{}
	log := slog.New(slog.NewJSONHandler(&out.log, nil))
	env := e.env(push.APNs, map[string]string{EnvDispatchMaxAttempts: "2"})
	getenv := testenv.Env(proxy.URL, env)
	h, err := DispatchTo(ctx, getenv, log, push.APNs, sender, &out.emf)
	if err != nil {
		t.Fatal(err)
	}
	// The longest invocation is logged: it must stay below the function's
	// timeout, or the poller would count it failed while it still sends.
	var longest time.Duration
	var longestMu sync.Mutex
	handler := h
	h = func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		start := time.Now()
		defer func() {
			longestMu.Lock()
			longest = max(longest, time.Since(start))
			longestMu.Unlock()
		}()
		return handler(ctx, ev)
	}
	poller := &sqsbatch.Poller{Client: e.sqs, QueueURL: queue.URL, QueueARN: queue.ARN, Region: testenv.Region,
		BatchSize: 10, Concurrency: 2, Timeout: 30 * time.Second, ReportBatchItemFailures: true, Wait: time.Second, Handler: h,
		// The template's visibility timeout (six function timeouts) keeps a
		// record hidden while it is worked on; records that failed are made
		// visible again after a second instead of three minutes, to keep
		// the test short.
		RedeliverAfter: time.Second}
	pctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- poller.Run(pctx) }()
	quietSince := time.Time{}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if e.depth(t, queue.URL) > 0 {
			quietSince = time.Time{}
		} else if quietSince.IsZero() {
			quietSince = time.Now()
		} else if time.Since(quietSince) > 2*time.Second {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the queue never went quiet; %d messages left", e.depth(t, queue.URL))
		}
		time.Sleep(100 * time.Millisecond) // polling interval
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	dead := map[string]int{}
	for _, d := range e.queued(t, e.dlqURL(push.APNs)) {
		for _, tg := range d.Targets {
			dead[tg.Token]++
		}
	}
	var wantDelivered, wantInvalid, wantDeadLettered int
	for tok, o := range holders {
		acc, dl, invalid := sender.accepted[tok], dead[tok], sender.dead[tok]
		stillBound := e.bound(t, app, o.user, o.device, tok)
		fates := 0
		if acc > 0 {
			fates++
			wantDelivered++
		}
		if dl > 0 {
			fates++
			wantDeadLettered++
		} else if sender.doomed[tok] {
			t.Errorf("token %s never went through but is not in the dead-letter queue", push.Redact(tok))
		}
		if invalid {
			fates++
			wantInvalid++
			if stillBound {
				t.Errorf("token %s was dead but is still bound", push.Redact(tok))
			}
		} else if !stillBound {
			t.Errorf("token %s lost its binding", push.Redact(tok))
		}
		if fates != 1 || acc > 1 || dl > 1 {
			t.Errorf("token %s: accepted %d times, dead-lettered %d times, dead %v; want exactly one fate, once", push.Redact(tok), acc, dl, invalid)
		}
	}
	got := out.counts(t)
	want := map[string]int{"delivered": wantDelivered, "invalid_token": wantInvalid, "dead_lettered": wantDeadLettered}
	final := map[string]int{}
	for _, o := range dispatch.Outcomes {
		if got[string(o)] != 0 {
			final[string(o)] = got[string(o)]
		}
	}
	if diff := cmp.Diff(want, final); diff != "" {
		t.Errorf("final outcomes counted (-want +got):\n%s", diff)
	}
	t.Logf("%d targets in %d envelopes; vendor answers %v; counted %v; DynamoDB/SQS faults injected: %d; longest invocation %v",
		len(holders), len(envs), sender.answered, got, faults(proxy), longest)
	if wantDeadLettered == 0 || got["retried"] == 0 || got["requeued"] == 0 {
		t.Errorf("the run took no dead-letter, whole-record or requeue path (counts %v); the test proves less than it claims", got)
	}
}

// faults adds up the faults the proxy injected.
func faults(p *testenv.Proxy) int {
	n := 0
	for _, c := range p.Counts() {
		n += c.Faults
	}
	return n
}

// depth is the number of messages url holds: visible, in flight and delayed.
func (e *dispatchEnv) depth(t *testing.T, url string) int {
	t.Helper()
	out, err := e.sqs.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, a := range []string{"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"} {
		v, _ := strconv.Atoi(out.Attributes[a])
		n += v
	}
	return n
}

func TestDispatchFunctionID(t *testing.T) {
	want := map[push.Vendor]string{push.APNs: "DispatchApnsFunction", push.FCM: "DispatchFcmFunction", push.OPPO: "DispatchOppoFunction",
		push.Huawei: "DispatchHuaweiFunction", push.Vivo: "DispatchVivoFunction"}
	for v, id := range want {
		if got := DispatchFunctionID(v); got != id {
			t.Errorf("DispatchFunctionID(%s) = %q, want %q", v, got, id)
		}
	}
}

// TestDispatchConfig checks the environment a dispatch function needs, with
// no AWS call: every failure here happens before any client is built.
func TestDispatchConfig(t *testing.T) {
	base := map[string]string{EnvStateTable: "s", EnvRequestTable: "r", EnvSecretPrefix: "p", EnvQueueURL: "q", EnvDeadLetterQueueURL: "d"}
	with := func(k, v string) map[string]string {
		m := maps.Clone(base)
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
		want    dispatch.Config
	}{
		{name: "defaults", env: base, want: dispatch.Config{Vendor: push.APNs}},
		{name: "all set", env: func() map[string]string {
			m := with(EnvMaxReceiveCount, "5")
			m[EnvDispatchMaxAttempts] = "4"
			m[EnvDispatchBaseDelayMS] = "1500"
			return m
		}(), want: dispatch.Config{Vendor: push.APNs, MaxReceives: 5, MaxAttempts: 4, BaseDelay: 1500 * time.Millisecond}},
		{name: "no delay", env: with(EnvDispatchBaseDelayMS, "0"), want: dispatch.Config{Vendor: push.APNs, BaseDelay: -1}},
		{name: "no state table", env: with(EnvStateTable, ""), wantErr: EnvStateTable},
		{name: "no queue", env: with(EnvQueueURL, ""), wantErr: EnvQueueURL},
		{name: "no dead-letter queue", env: with(EnvDeadLetterQueueURL, ""), wantErr: EnvDeadLetterQueueURL},
		{name: "no secret prefix", env: with(EnvSecretPrefix, ""), wantErr: EnvSecretPrefix},
		{name: "bad receive count", env: with(EnvMaxReceiveCount, "0"), wantErr: EnvMaxReceiveCount},
		{name: "bad attempts", env: with(EnvDispatchMaxAttempts, "many"), wantErr: EnvDispatchMaxAttempts},
		{name: "delay too long", env: with(EnvDispatchBaseDelayMS, "900001"), wantErr: EnvDispatchBaseDelayMS},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := readDispatchConfig(func(k string) string { return tc.env[k] }, push.APNs)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("err = %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, c.engine, cmpopts.IgnoreFields(dispatch.Config{}, "Now", "Jitter", "Log")); diff != "" {
				t.Errorf("engine config (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := DispatchTo(context.Background(), func(k string) string { return base[k] }, slog.Default(), push.APNs, nil, nil); err == nil {
		t.Error("DispatchTo without a sender succeeded")
	}
}

// TestDispatchTemplate checks what the template gives each vendor's dispatch
// function: its own queue and dead-letter queue, the queue's
// maxReceiveCount, the dispatch timeout, and an event source that reports
// partial batch failures.
func TestDispatchTemplate(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto_server")
	}
	srv := testenv.Moto(t)
	e := newDispatchEnv(t, srv.Endpoint)
	for _, v := range push.Vendors {
		id := DispatchFunctionID(v)
		f, ok := e.stack.Functions[id]
		if !ok {
			t.Errorf("the template has no %s", id)
			continue
		}
		env := e.stack.FunctionEnv(id)
		if _, err := readDispatchConfig(func(k string) string { return env[k] }, v); err != nil {
			t.Errorf("%s: %v", id, err)
		}
		if env[EnvQueueURL] != e.queueURL(v) || env[EnvDeadLetterQueueURL] != e.dlqURL(v) || env[EnvRequestTable] == "" {
			t.Errorf("%s: env %v does not name its own queues and tables", id, env)
		}
		attrs, err := e.sqs.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(e.queueURL(v)),
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameRedrivePolicy, sqstypes.QueueAttributeNameVisibilityTimeout}})
		if err != nil {
			t.Fatal(err)
		}
		var redrive struct {
			MaxReceiveCount json.Number `json:"maxReceiveCount"`
		}
		if err := json.Unmarshal([]byte(attrs.Attributes["RedrivePolicy"]), &redrive); err != nil {
			t.Fatal(err)
		}
		if env[EnvMaxReceiveCount] != redrive.MaxReceiveCount.String() {
			t.Errorf("%s: %s = %q, but the queue's maxReceiveCount is %s", id, EnvMaxReceiveCount, env[EnvMaxReceiveCount], redrive.MaxReceiveCount)
		}
		if vis, _ := strconv.Atoi(attrs.Attributes["VisibilityTimeout"]); time.Duration(vis)*time.Second < 6*f.Timeout {
			t.Errorf("%s: visibility timeout %d s is less than 6 × the function's %v", id, vis, f.Timeout)
		}
		if f.Timeout.String() != e.stack.Parameters["DispatchTimeoutSeconds"]+"s" {
			t.Errorf("%s: timeout %v, want DispatchTimeoutSeconds", id, f.Timeout)
		}
		if len(f.SQS) != 1 || f.SQS[0].Queue != dispQueueName(v) || !slices.Contains(f.SQS[0].FunctionResponseTypes, "ReportBatchItemFailures") ||
			f.SQS[0].BatchSize < 1 || f.SQS[0].BatchSize > 10 || f.SQS[0].MaximumConcurrency < 2 {
			t.Errorf("%s: event sources %+v, want its queue with partial batch responses, a batch size and a concurrency cap", id, f.SQS)
		}
	}
}

// testDispatchRequestCounts counts the AWS requests of dispatching, from
// outside, through the proxy: an envelope of 250 targets of 5 users with a
// badge, all delivered, costs three BatchGetItem calls (100 keys each at
// most), one badge UpdateItem per user, one GetSecretValue per container
// and five minutes, and no SQS request.
func testDispatchRequestCounts(t *testing.T, e *dispatchEnv) {
	const app = "counts"
	e.credentials(t, app, push.APNs)
	var targets []push.Target
	for u := range 5 {
		user := fmt.Sprintf("u%d", u)
		var bs []push.Binding
		for d := range 50 {
			device, tok := fmt.Sprintf("d%d", d), fmt.Sprintf("%062x%02d", u, d)
			bs = append(bs, dispBinding(push.APNs, device, tok, ""))
			targets = append(targets, dispTarget(user, device, tok))
		}
		e.bindAll(t, app, user, bs)
	}
	proxy := testenv.NewProxy(t, e.endpoint, testenv.ProxyOptions{})
	sender := newDispSender(dispAnswer)
	h, m := e.handlerAt(t, proxy.URL, push.APNs, sender, nil)
	env := dispEnvelope(app, push.APNs, "m-1", time.Hour, targets...)
	env.Badge = true
	if failed := dispInvoke(t, h, dispRecord(t, "r1", env, 1)); len(failed) != 0 {
		t.Fatalf("failed records %v", failed)
	}
	got := map[string]testenv.OpCount{}
	for op, c := range proxy.Counts() {
		got[op] = testenv.OpCount{Requests: c.Requests, ItemsRead: c.ItemsRead, ItemsWritten: c.ItemsWritten}
	}
	want := map[string]testenv.OpCount{
		"BatchGetItem":   {Requests: 3, ItemsRead: 250},
		"UpdateItem":     {Requests: 5, ItemsWritten: 5},
		"GetSecretValue": {Requests: 1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{"delivered": 250}, m.counts(t)); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	if n := sender.jobCount(); n != 1 {
		t.Errorf("%d jobs, want one for the whole envelope", n)
	}
}
