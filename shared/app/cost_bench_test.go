//go:build unix

package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/offline-push/offline-push/shared/dynamo"
	"github.com/offline-push/offline-push/shared/push"
	"github.com/offline-push/offline-push/shared/testenv"
)

// The cost benchmarks measure what scripts/benchreport prices (DESIGN.md,
// Data and cost): per message of a mix, the AWS requests, items and bytes
// of the ingest function and of the dispatch functions that deliver its
// pushes, their CPU time and their log bytes. Both functions are built by
// their production constructors. Requests are counted by the fault proxy
// (forwarding only) on one message after a warm-up; CPU time and log bytes
// come from a second copy of the functions that talks to moto directly, so
// that the proxy's own work is not in the figure. The vendor is a sender
// that accepts everything: what a provider costs per send is measured by
// the providers' BenchmarkSend. They report; they assert no timing.

// BenchmarkIngestGroup50 is a message to a 50-member group of the same mix
// as BenchmarkIngestGroup (half APNs, half FCM, 30% offline).
func BenchmarkIngestGroup50(b *testing.B) {
	members := group("bf", 50)
	benchIngest(b, members, func(id string) string { return groupMessage(id, members, nil) })
}

// costMix is one kind of traffic: the members it reaches and its message.
type costMix struct {
	name    string
	members []seedMember
	body    func(id string) string
}

// costMixes are the three mixes of the bench report: 1:1 chat to an
// offline phone, and messages to groups of 50 and 1,000 members.
func costMixes() []costMix {
	peer := []seedMember{{user: "cp-bob", vendor: push.FCM, locale: "en-US"}}
	g50 := group("cm", 50)
	g1000 := group("cl", 1000)
	return []costMix{
		{name: "peer", members: peer, body: func(id string) string {
			return msg(map[string]string{
				"messageId": `"` + id + `"`, "type": `"message"`, "sender": `{"userId": "alice", "nickname": "Alice"}`,
				"conversation": `{"type": "peer"}`, "recipients": `["cp-bob"]`, "push": `{"content": "hi"}`,
			})
		}},
		{name: "group50", members: g50, body: func(id string) string { return groupMessage(id, g50, nil) }},
		{name: "group1000", members: g1000, body: func(id string) string { return groupMessage(id, g1000, nil) }},
	}
}

// BenchmarkCost reports, per message of each mix, the measurements of the
// bench report's cost model.
func BenchmarkCost(b *testing.B) {
	if testing.Short() {
		b.Skip("needs moto_server")
	}
	for _, mix := range costMixes() {
		b.Run(mix.name, func(b *testing.B) { benchCost(b, mix) })
	}
}

func benchCost(b *testing.B, mix costMix) {
	e := newIngEnv(b)
	bindMembers(b, e, mix.members)
	vendors := mixVendors(mix.members)
	proxy := testenv.NewProxy(b, e.endpoint, testenv.ProxyOptions{})
	counted := newCostStack(b, e, proxy.URL, vendors)
	direct := newCostStack(b, e, e.endpoint, vendors)

	// The first message of a container pays for what then lives as long as
	// the container (cached secrets, connections), and the model prices
	// warm invocations: a message to the first members (offline phones of
	// every vendor of the mix) warms each function up.
	warm := mix.members[:min(3, len(mix.members))]
	for i, s := range []*costStack{counted, direct} {
		costPost(b, e, s, groupMessage("warm-"+strconv.Itoa(i), warm, nil))
		costDispatch(b, e, s)
	}

	proxy.Reset()
	r, _ := costPost(b, e, counted, mix.body("counted"))
	ing := sumCosts(b, proxy.Counts())
	proxy.Reset()
	counted.sender.reset()
	costDispatch(b, e, counted)
	disp := sumCosts(b, proxy.Counts())
	if got := counted.sender.total(); got != r.Pushes {
		b.Fatalf("dispatch handed %d targets to the vendor, want the %d pushes ingest made: a target was dropped", got, r.Pushes)
	}
	if r.Pushes == 0 {
		b.Fatal("the message made no push")
	}

	direct.ingestLog.reset()
	direct.dispatchLog.reset()
	direct.sender.reset()
	var (
		ingCPU time.Duration
		ds     dispatchStats
		msgs   int
		pushes int
		body   int
	)
	for b.Loop() {
		msgs++
		m := mix.body(fmt.Sprintf("bench-%d", msgs))
		body += len(m)
		res, cpu := costPost(b, e, direct, m)
		ingCPU += cpu
		pushes += res.Pushes
		ds.add(costDispatch(b, e, direct))
	}
	b.StopTimer()
	if direct.sender.total() != pushes {
		b.Fatalf("dispatch handed %d targets to the vendor, want the %d pushes ingest made", direct.sender.total(), pushes)
	}
	sizes := itemSizes(b, e)
	n := float64(msgs)
	perMsg := func(v int) float64 { return float64(v) / n }

	b.ReportMetric(float64(r.Pushes), "pushes/msg")
	b.ReportMetric(float64(len(mix.members)), "recipients/msg")
	b.ReportMetric(perMsg(body), "body-bytes/msg")
	for _, v := range vendors {
		b.ReportMetric(perMsg(direct.sender.count(v)), "targets-"+string(v)+"/msg")
	}
	ing.report(b, "ingest")
	b.ReportMetric(ms(ingCPU)/n, "ingest-cpu-ms/msg")
	b.ReportMetric(perMsg(direct.ingestLog.bytes()), "ingest-log-bytes/msg")
	b.ReportMetric(perMsg(direct.ingestLog.lines()), "ingest-log-lines/msg")

	b.ReportMetric(perMsg(ds.envelopes), "envelopes/msg")
	b.ReportMetric(perMsg(ds.bytes), "envelope-bytes/msg")
	b.ReportMetric(float64(ds.maxBytes), "envelope-max-bytes")
	disp.report(b, "dispatch")
	b.ReportMetric(ms(ds.cpu)/n, "dispatch-cpu-ms/msg")
	b.ReportMetric(perMsg(direct.dispatchLog.bytes()), "dispatch-log-bytes/msg")
	b.ReportMetric(perMsg(direct.dispatchLog.lines()), "dispatch-log-lines/msg")

	// Item sizes decide the units of each read (4 KB) and write (1 KB).
	b.ReportMetric(float64(max(sizes["profile"], sizes["presence"], sizes["conv"], sizes["call"])), "recipient-item-max-bytes")
	b.ReportMetric(float64(sizes["owner"]), "token-item-max-bytes")
	b.ReportMetric(float64(sizes["badge"]), "badge-item-max-bytes")
	b.ReportMetric(float64(sizes["request"]), "request-item-max-bytes")

	b.ReportMetric(float64(e.stack.Functions["IngestFunction"].MemorySize), "ingest-memory-mb")
	mem := 0
	for _, v := range vendors {
		mem = max(mem, e.stack.Functions[DispatchFunctionID(v)].MemorySize)
	}
	b.ReportMetric(float64(mem), "dispatch-memory-mb")
}

// BenchmarkCostFixed measures what the stack costs whatever the traffic: a
// run of the scheduled cleanup when nothing is due (its steady state), and
// the template's schedule, memory sizes and SQS event source mappings.
func BenchmarkCostFixed(b *testing.B) {
	if testing.Short() {
		b.Skip("needs moto_server")
	}
	ctx := context.Background()
	srv := testenv.Moto(b)
	stack := testenv.Stack(b, srv.Endpoint)
	fn, ok := stack.Functions["CleanupFunction"]
	if !ok {
		b.Fatal("template.yaml declares no CleanupFunction")
	}
	if len(fn.Schedules) != 1 {
		b.Fatalf("CleanupFunction has schedules %q, want one", fn.Schedules)
	}
	perMonth, err := runsPerMonth(fn.Schedules[0])
	if err != nil {
		b.Fatal(err)
	}
	proxy := testenv.NewProxy(b, srv.Endpoint, testenv.ProxyOptions{})
	build := func(endpoint string, w *countingWriter) func(context.Context, events.EventBridgeEvent) (any, error) {
		h, err := Cleanup(ctx, testenv.Env(endpoint, stack.FunctionEnv("CleanupFunction")), infoLogger(w))
		if err != nil {
			b.Fatalf("Cleanup: %v", err)
		}
		return h
	}
	countedLog, directLog := &countingWriter{}, &countingWriter{}
	counted, direct := build(proxy.URL, countedLog), build(srv.Endpoint, directLog)
	run := func(h func(context.Context, events.EventBridgeEvent) (any, error)) time.Duration {
		start := cpuNow(b)
		if _, err := h(ctx, events.EventBridgeEvent{}); err != nil {
			b.Fatalf("cleanup run: %v", err)
		}
		return cpuNow(b) - start
	}
	run(counted)
	run(direct)
	proxy.Reset()
	run(counted)
	c := sumCosts(b, proxy.Counts())
	directLog.reset()
	var cpu time.Duration
	runs := 0
	for b.Loop() {
		runs++
		cpu += run(direct)
	}
	b.StopTimer()
	c.report(b, "cleanup")
	b.ReportMetric(ms(cpu)/float64(runs), "cleanup-cpu-ms/run")
	b.ReportMetric(float64(directLog.bytes())/float64(runs), "cleanup-log-bytes/run")
	b.ReportMetric(float64(directLog.lines())/float64(runs), "cleanup-log-lines/run")
	b.ReportMetric(perMonth, "cleanup-runs/month")
	b.ReportMetric(float64(fn.MemorySize), "cleanup-memory-mb")
	mappings, http := 0, 0
	for _, f := range stack.Functions {
		mappings += len(f.SQS)
		if len(f.HTTPRoutes) > 0 {
			http++
		}
	}
	b.ReportMetric(float64(mappings), "sqs-event-sources")
	b.ReportMetric(float64(http), "http-functions")
}

// runsPerMonth turns a rate() schedule expression into runs per 30-day
// month.
func runsPerMonth(expr string) (float64, error) {
	inner, ok := strings.CutPrefix(expr, "rate(")
	inner, ok2 := strings.CutSuffix(inner, ")")
	fields := strings.Fields(inner)
	if !ok || !ok2 || len(fields) != 2 {
		return 0, fmt.Errorf("schedule %q: only rate(N unit) expressions are priced", expr)
	}
	n, err := strconv.Atoi(fields[0])
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("schedule %q: rate value is not a positive whole number", expr)
	}
	per := map[string]float64{"minute": 30 * 24 * 60, "hour": 30 * 24, "day": 30}[strings.TrimSuffix(fields[1], "s")]
	if per == 0 {
		return 0, fmt.Errorf("schedule %q: unknown unit %q", expr, fields[1])
	}
	return per / float64(n), nil
}

// mixVendors returns the vendors of members, sorted.
func mixVendors(members []seedMember) []push.Vendor {
	seen := map[push.Vendor]bool{}
	var out []push.Vendor
	for _, m := range members {
		if !seen[m.vendor] {
			seen[m.vendor] = true
			out = append(out, m.vendor)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// costCert is the certName of the test app's credentials of vendor v
// (ingCerts).
func costCert(v push.Vendor) string {
	for cert, cv := range ingCerts {
		if cv == v {
			return cert
		}
	}
	return ""
}

// bindMembers seeds the members' profiles and leases with seed, then
// writes the token index item of each binding it reads back (the record of
// the one-owner rule, which dispatch re-reads before sending) with
// BatchWriteItem, in the layout of shared/dynamo/doc.go. Registering a
// thousand members through TransactWriteItems takes many minutes on moto,
// whose transactions slow down as the table grows. The codec itself is
// checked by shared/dynamo's tests, and the cost benchmark fails if
// dispatch finds a target unbound.
func bindMembers(tb testing.TB, e *ingEnv, members []seedMember) {
	tb.Helper()
	ctx := context.Background()
	start := time.Now()
	e.seed(tb, members)
	table := e.env[EnvStateTable]
	users := make([]string, len(members))
	for i, m := range members {
		users[i] = m.user
	}
	snap, err := dynamo.NewDeviceStore(e.db, table).Load(ctx, ingApp, users, nil)
	if err != nil {
		tb.Fatalf("read the seeded bindings: %v", err)
	}
	s := func(v string) ddbtypes.AttributeValue { return &ddbtypes.AttributeValueMemberS{Value: v} }
	var writes []ddbtypes.WriteRequest
	for _, user := range users {
		for device, b := range snap.Profiles[user] {
			sum := sha256.Sum256([]byte(b.Token))
			pk := "t#" + ingApp + "#" + string(b.Vendor) + "#" + hex.EncodeToString(sum[:])
			h := fnv.New32a()
			h.Write([]byte(pk))
			r := &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(b.RegisteredAt.UnixMilli(), 10)}
			writes = append(writes, ddbtypes.WriteRequest{PutRequest: &ddbtypes.PutRequest{Item: map[string]ddbtypes.AttributeValue{
				"pk": s(pk), "sk": s("owner"), "tok": s(b.Token), "uid": s(user), "did": s(device),
				"k": s(string(push.TokenAlert)), "vn": s(string(b.Vendor)), "r": r,
				"xs": s("tok#" + strconv.Itoa(int(h.Sum32()%dynamo.Shards))), "xu": r,
			}}})
		}
	}
	if len(writes) != len(members) {
		tb.Fatalf("read back %d bindings of %d seeded members", len(writes), len(members))
	}
	for len(writes) > 0 {
		batch := writes[:min(25, len(writes))]
		writes = writes[len(batch):]
		for len(batch) > 0 {
			out, err := e.db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]ddbtypes.WriteRequest{table: batch}})
			if err != nil {
				tb.Fatalf("write token index items: %v", err)
			}
			batch = out.UnprocessedItems[table]
		}
	}
	tb.Logf("seeded %d members in %v", len(members), time.Since(start).Round(time.Millisecond))
}

// costStack is the ingest function and the dispatch functions of a mix's
// vendors, built by their production constructors against one endpoint,
// with their log and metric lines counted.
type costStack struct {
	ingest      HTTPHandler
	dispatch    map[push.Vendor]SQSHandler
	vendors     []push.Vendor
	sender      *acceptingSender
	ingestLog   *countingWriter
	dispatchLog *countingWriter
}

func newCostStack(tb testing.TB, e *ingEnv, endpoint string, vendors []push.Vendor) *costStack {
	tb.Helper()
	ctx := context.Background()
	s := &costStack{
		dispatch: map[push.Vendor]SQSHandler{}, vendors: vendors,
		sender: &acceptingSender{}, ingestLog: &countingWriter{}, dispatchLog: &countingWriter{},
	}
	env := e.stack.FunctionEnv("IngestFunction")
	if env == nil {
		tb.Fatal("template.yaml declares no IngestFunction")
	}
	var err error
	if s.ingest, err = Ingest(ctx, testenv.Env(endpoint, env), infoLogger(s.ingestLog)); err != nil {
		tb.Fatalf("Ingest: %v", err)
	}
	for _, v := range vendors {
		env := e.stack.FunctionEnv(DispatchFunctionID(v))
		if env == nil {
			tb.Fatalf("template.yaml declares no %s", DispatchFunctionID(v))
		}
		// Production writes the metric lines to standard output, where they
		// are log lines like any other.
		if s.dispatch[v], err = newDispatch(ctx, testenv.Env(endpoint, env), infoLogger(s.dispatchLog), v, s.sender, s.dispatchLog); err != nil {
			tb.Fatalf("dispatch of %s: %v", v, err)
		}
	}
	return s
}

// infoLogger logs JSON at the template's default LogLevel, INFO.
func infoLogger(w *countingWriter) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// costPost posts one message through s's ingest function and returns its
// result and the CPU time the handler took.
func costPost(tb testing.TB, e *ingEnv, s *costStack, body string) (ingResult, time.Duration) {
	tb.Helper()
	start := cpuNow(tb)
	status, raw := e.send(s.ingest, time.Now(), http.MethodPost, ingPath, body)
	cpu := cpuNow(tb) - start
	if status != http.StatusAccepted {
		tb.Fatalf("POST messages: status %d, want 202 (body %.400s)", status, raw)
	}
	var r ingResult
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		tb.Fatalf("decode %.400s: %v", raw, err)
	}
	return r, cpu
}

// dispatchStats is what delivering the queued envelopes took.
type dispatchStats struct {
	envelopes, bytes, maxBytes int
	cpu                        time.Duration
}

func (d *dispatchStats) add(o dispatchStats) {
	d.envelopes += o.envelopes
	d.bytes += o.bytes
	d.maxBytes = max(d.maxBytes, o.maxBytes)
	d.cpu += o.cpu
}

// costDispatch receives every envelope on the queues of s's vendors and
// hands each to its dispatch function as a batch of one record, as the
// event source mapping does when messages arrive one at a time, then
// deletes it, as the mapping does after a batch without failures.
func costDispatch(tb testing.TB, e *ingEnv, s *costStack) dispatchStats {
	tb.Helper()
	ctx := context.Background()
	var st dispatchStats
	deadline := time.Now().Add(2 * time.Minute)
	for _, v := range s.vendors {
		for {
			if time.Now().After(deadline) {
				tb.Fatal("the queues did not drain within two minutes")
			}
			out, err := e.sq.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
				QueueUrl: aws.String(e.urls[v]), MaxNumberOfMessages: 10, VisibilityTimeout: 900,
				MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
			})
			if err != nil {
				tb.Fatalf("ReceiveMessage %s: %v", v, err)
			}
			if len(out.Messages) == 0 {
				break
			}
			for _, m := range out.Messages {
				body := aws.ToString(m.Body)
				st.envelopes++
				st.bytes += len(body)
				st.maxBytes = max(st.maxBytes, len(body))
				rec := events.SQSMessage{
					MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle),
					Body: body, Attributes: m.Attributes, EventSource: "aws:sqs",
				}
				start := cpuNow(tb)
				resp, err := s.dispatch[v](ctx, events.SQSEvent{Records: []events.SQSMessage{rec}})
				st.cpu += cpuNow(tb) - start
				if err != nil || len(resp.BatchItemFailures) > 0 {
					tb.Fatalf("dispatch of %s: %v, failures %v", v, err, resp.BatchItemFailures)
				}
				if _, err := e.sq.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(e.urls[v]), ReceiptHandle: m.ReceiptHandle}); err != nil {
					tb.Fatalf("DeleteMessage: %v", err)
				}
			}
		}
	}
	return st
}

// acceptingSender is a vendor that accepts every push, counting targets by
// vendor.
type acceptingSender struct {
	mu      sync.Mutex
	targets map[push.Vendor]int
}

func (s *acceptingSender) Send(_ context.Context, job *push.SendJob) []push.SendResult {
	s.mu.Lock()
	if s.targets == nil {
		s.targets = map[push.Vendor]int{}
	}
	s.targets[job.Envelope.Vendor] += len(job.Targets)
	s.mu.Unlock()
	out := make([]push.SendResult, len(job.Targets))
	for i := range out {
		out[i] = push.SendResult{Class: push.SendOK}
	}
	return out
}

func (s *acceptingSender) count(v push.Vendor) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.targets[v]
}

func (s *acceptingSender) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.targets {
		n += c
	}
	return n
}

func (s *acceptingSender) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.targets = nil
}

// countingWriter counts the bytes and lines written to it, as CloudWatch
// Logs would ingest them.
type countingWriter struct {
	n, lineCount atomic.Int64
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n.Add(int64(len(p)))
	w.lineCount.Add(int64(strings.Count(string(p), "\n")))
	return len(p), nil
}

func (w *countingWriter) bytes() int { return int(w.n.Load()) }
func (w *countingWriter) lines() int { return int(w.lineCount.Load()) }

func (w *countingWriter) reset() {
	w.n.Store(0)
	w.lineCount.Store(0)
}

// costCounts sums the proxy's counts into the classes the model prices.
type costCounts struct {
	batchGets    int // BatchGetItem requests (run concurrently, up to a bound)
	otherDDB     int // every other DynamoDB request
	itemsRead    int // items returned by non-transactional reads
	itemsWritten int // items written by non-transactional writes
	txItems      int // items of TransactGetItems and TransactWriteItems, billed twice
	sqsRequests  int // SendMessage and SendMessageBatch requests
	sqsMessages  int // messages those requests sent
	secrets      int // Secrets Manager requests
}

// sumCosts classifies every operation the proxy saw; one the model does
// not know fails the benchmark rather than going unpriced.
func sumCosts(tb testing.TB, counts map[string]testenv.OpCount) costCounts {
	tb.Helper()
	var c costCounts
	for op, n := range counts {
		switch op {
		case "BatchGetItem":
			c.batchGets += n.Requests
			c.itemsRead += n.ItemsRead
		case "GetItem", "Query", "Scan":
			c.otherDDB += n.Requests
			c.itemsRead += n.ItemsRead
		case "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem":
			c.otherDDB += n.Requests
			c.itemsWritten += n.ItemsWritten
		case "TransactGetItems":
			c.otherDDB += n.Requests
			c.txItems += n.ItemsRead
		case "TransactWriteItems":
			c.otherDDB += n.Requests
			c.txItems += n.ItemsWritten
		case "SendMessage", "SendMessageBatch":
			c.sqsRequests += n.Requests
			c.sqsMessages += n.ItemsWritten
		case "GetSecretValue", "DescribeSecret":
			c.secrets += n.Requests
		default:
			tb.Fatalf("operation %s (%d requests) is not in the cost model", op, n.Requests)
		}
	}
	return c
}

// report reports c for one message (or run) under prefix.
func (c costCounts) report(b *testing.B, prefix string) {
	per := "/msg"
	if prefix == "cleanup" {
		per = "/run"
	}
	b.ReportMetric(float64(c.batchGets), prefix+"-batchget-req"+per)
	b.ReportMetric(float64(c.otherDDB), prefix+"-ddb-other-req"+per)
	b.ReportMetric(float64(c.itemsRead), prefix+"-items-read"+per)
	b.ReportMetric(float64(c.itemsWritten), prefix+"-items-written"+per)
	b.ReportMetric(float64(c.txItems), prefix+"-tx-items"+per)
	b.ReportMetric(float64(c.sqsRequests), prefix+"-sqs-req"+per)
	b.ReportMetric(float64(c.sqsMessages), prefix+"-sqs-msgs"+per)
	b.ReportMetric(float64(c.secrets), prefix+"-secrets-req"+per)
}

// itemSizes returns the largest item of each kind in the stack's tables,
// in DynamoDB's billing bytes: StateTable items by sort key (conversation
// settings as "conv"), RequestTable items as "request".
func itemSizes(tb testing.TB, e *ingEnv) map[string]int {
	tb.Helper()
	out := map[string]int{}
	scan := func(table string, kind func(map[string]ddbtypes.AttributeValue) string) {
		p := dynamodb.NewScanPaginator(e.db, &dynamodb.ScanInput{TableName: aws.String(table)})
		for p.HasMorePages() {
			page, err := p.NextPage(context.Background())
			if err != nil {
				tb.Fatalf("scan %s: %v", table, err)
			}
			for _, item := range page.Items {
				k := kind(item)
				out[k] = max(out[k], itemBytes(item))
			}
		}
	}
	scan(e.env[EnvStateTable], func(item map[string]ddbtypes.AttributeValue) string {
		sk, _ := item["sk"].(*ddbtypes.AttributeValueMemberS)
		if sk == nil {
			return "unknown"
		}
		if strings.HasPrefix(sk.Value, "conv#") {
			return "conv"
		}
		return sk.Value
	})
	scan(e.env[EnvRequestTable], func(map[string]ddbtypes.AttributeValue) string { return "request" })
	return out
}

// itemBytes is an item's size as DynamoDB bills it: each attribute's name
// plus its value, where a string or binary counts its bytes, a number
// about one byte per two significant digits plus one, a boolean or null
// one byte, and a map or list three bytes plus one per element on top of
// its elements.
func itemBytes(item map[string]ddbtypes.AttributeValue) int {
	n := 0
	for name, v := range item {
		n += len(name) + valueBytes(v)
	}
	return n
}

func valueBytes(v ddbtypes.AttributeValue) int {
	switch v := v.(type) {
	case *ddbtypes.AttributeValueMemberS:
		return len(v.Value)
	case *ddbtypes.AttributeValueMemberN:
		return numberBytes(v.Value)
	case *ddbtypes.AttributeValueMemberB:
		return len(v.Value)
	case *ddbtypes.AttributeValueMemberBOOL, *ddbtypes.AttributeValueMemberNULL:
		return 1
	case *ddbtypes.AttributeValueMemberSS:
		n := 0
		for _, s := range v.Value {
			n += len(s)
		}
		return n
	case *ddbtypes.AttributeValueMemberNS:
		n := 0
		for _, s := range v.Value {
			n += numberBytes(s)
		}
		return n
	case *ddbtypes.AttributeValueMemberBS:
		n := 0
		for _, b := range v.Value {
			n += len(b)
		}
		return n
	case *ddbtypes.AttributeValueMemberM:
		n := 3
		for name, e := range v.Value {
			n += len(name) + valueBytes(e) + 1
		}
		return n
	case *ddbtypes.AttributeValueMemberL:
		n := 3
		for _, e := range v.Value {
			n += valueBytes(e) + 1
		}
		return n
	}
	return 0
}

func numberBytes(s string) int {
	digits := 0
	for _, r := range strings.TrimLeft(strings.TrimLeft(s, "-"), "0.") {
		if r >= '0' && r <= '9' {
			digits++
		}
	}
	return (digits+1)/2 + 1
}

// cpuNow is the CPU time (user and system) this process has used so far.
func cpuNow(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func TestRunsPerMonth(t *testing.T) {
	for _, c := range []struct {
		expr string
		want float64
	}{
		{"rate(1 minute)", 43200},
		{"rate(5 minutes)", 8640},
		{"rate(2 hours)", 360},
		{"rate(1 day)", 30},
	} {
		if got, err := runsPerMonth(c.expr); err != nil || got != c.want {
			t.Errorf("runsPerMonth(%q) = %v, %v, want %v", c.expr, got, err, c.want)
		}
	}
	for _, expr := range []string{"cron(0 * * * ? *)", "rate(0 minutes)", "rate(1 fortnight)", "rate(minute)"} {
		if got, err := runsPerMonth(expr); err == nil {
			t.Errorf("runsPerMonth(%q) = %v, want an error", expr, got)
		}
	}
}

func TestItemBytes(t *testing.T) {
	item := map[string]ddbtypes.AttributeValue{
		"pk": &ddbtypes.AttributeValueMemberS{Value: "u#a#b"},         // 2 + 5
		"n":  &ddbtypes.AttributeValueMemberN{Value: "1234567890123"}, // 1 + 13 digits: 7 + 1
		"m": &ddbtypes.AttributeValueMemberM{Value: map[string]ddbtypes.AttributeValue{ // 1 + 3 + (1 + 3 + 1)
			"t": &ddbtypes.AttributeValueMemberS{Value: "abc"},
		}},
		"ok": &ddbtypes.AttributeValueMemberBOOL{Value: true}, // 2 + 1
	}
	if got, want := itemBytes(item), 7+9+9+3; got != want {
		t.Errorf("itemBytes = %d, want %d", got, want)
	}
}
