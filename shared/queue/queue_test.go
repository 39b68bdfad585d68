package queue_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/offline-push/offline-push/shared/push"
	"github.com/offline-push/offline-push/shared/queue"
	"github.com/offline-push/offline-push/shared/testenv"
)

// moto is the emulator every test of the package shares; each test works on
// a stack of its own.
var moto *testenv.Server

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	srv, err := testenv.StartMoto()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	moto = srv
	code := m.Run()
	if err := srv.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

// envelope returns an envelope of message id with n targets whose tokens
// are pad bytes long, to make envelopes of a chosen size.
func envelope(id string, n, pad int) *push.Envelope {
	e := &push.Envelope{
		Version: push.EnvelopeVersion, App: "demo", Vendor: push.APNs, CertName: "ios",
		MessageID: id, Kind: push.KindMessage, SenderID: "alice", ConversationType: push.Group,
		ConversationID: "g1", ExpiresAt: 1_800_000_000_000, Priority: push.PriorityNormal,
		Texts: []push.EnvelopeText{{Title: "Alice", Body: "Alice: hi"}},
	}
	for i := range n {
		e.Targets = append(e.Targets, push.Target{
			UserID: fmt.Sprintf("u%d", i), DeviceID: "d", Token: strings.Repeat("a", pad),
			Kind: push.TokenAlert, Platform: push.PlatformIOS,
		})
	}
	return e
}

// drain receives every message of the queue at url and deletes it.
func drain(t *testing.T, client *sqs.Client, url string) []*push.Envelope {
	t.Helper()
	var out []*push.Envelope
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		res, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, VisibilityTimeout: 600,
		})
		if err != nil {
			t.Fatalf("ReceiveMessage: %v", err)
		}
		if len(res.Messages) == 0 {
			return out
		}
		for _, m := range res.Messages {
			e, err := push.DecodeEnvelope([]byte(aws.ToString(m.Body)))
			if err != nil {
				t.Fatalf("decode %q: %v", aws.ToString(m.Body), err)
			}
			out = append(out, e)
		}
	}
	t.Fatal("queue did not drain within 30 s")
	return nil
}

func TestPack(t *testing.T) {
	entry := func(n int) types.SendMessageBatchRequestEntry {
		return types.SendMessageBatchRequestEntry{Id: aws.String("x"), MessageBody: aws.String(strings.Repeat("a", n))}
	}
	tests := []struct {
		name  string
		sizes []int
		want  []int // entries per batch
	}{
		{"none", nil, nil},
		{"one", []int{10}, []int{1}},
		{"ten small fill one call", []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, []int{10}},
		{"eleven small need two", []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, []int{10, 1}},
		{"four of 64 KB fit, a fifth does not", []int{65536, 65536, 65536, 65536, 65536}, []int{4, 1}},
		{"exactly 256 KiB fits", []int{131072, 131072, 1}, []int{2, 1}},
	}
	for _, tt := range tests {
		var in []types.SendMessageBatchRequestEntry
		for _, n := range tt.sizes {
			in = append(in, entry(n))
		}
		var got []int
		for _, b := range queue.Pack(in) {
			got = append(got, len(b))
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: batch sizes (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestEncode(t *testing.T) {
	ok := envelope("m-1", 2, 64)
	if _, err := queue.Encode(ok); err != nil {
		t.Errorf("Encode(valid envelope) = %v, want nil", err)
	}
	bad := envelope("m-2", 1, 64)
	bad.Texts[0].Body = "x\uffffy"
	if _, err := queue.Encode(bad); err == nil {
		t.Error("Encode(envelope with U+FFFF) = nil, want an error")
	}
	huge := envelope("m-3", 1, queue.MaxBatchBytes)
	if _, err := queue.Encode(huge); err == nil {
		t.Error("Encode(envelope over 256 KiB) = nil, want an error")
	}
}

func TestPublish(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto_server")
	}
	stack := testenv.Stack(t, moto.Endpoint)
	url := stack.Queues["ApnsQueue"].URL
	reader := sqs.NewFromConfig(testenv.AWSConfig(moto.Endpoint))

	tests := []struct {
		name      string
		opt       testenv.ProxyOptions
		sizes     []int // targets per envelope, tokens of 100 bytes
		wantCalls int   // SendMessageBatch calls the proxy forwards
		atLeast   bool  // faults make more calls: wantCalls is a lower bound
	}{
		{"one envelope, one call", testenv.ProxyOptions{}, []int{1}, 1, false},
		{"25 small envelopes, three calls", testenv.ProxyOptions{}, repeat(25, 3), 3, false},
		{"big envelopes split by bytes", testenv.ProxyOptions{}, repeat(9, 450), 3, false},
		{"partial failures are resent", testenv.ProxyOptions{Seed: 7, PartialBatchRate: 0.3}, repeat(40, 2), 5, true},
		{"throttling is retried", testenv.ProxyOptions{Seed: 3, ThrottleRate: 0.3, PartialBatchRate: 0.2}, repeat(40, 2), 5, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proxy := testenv.NewProxy(t, moto.Endpoint, tt.opt)
			p := queue.NewPublisher(sqs.NewFromConfig(testenv.AWSConfig(proxy.URL)), map[push.Vendor]string{push.APNs: url})
			p.Backoff = time.Millisecond
			var msgs []queue.Message
			for j, n := range tt.sizes {
				id := fmt.Sprintf("t%d-apns-%d", i, j)
				msgs = append(msgs, queue.Message{ID: id, Envelope: envelope(id, n, 100)})
			}
			var reported []string
			err := p.Publish(context.Background(), push.APNs, msgs, func(ids []string) error {
				reported = append(reported, ids...)
				return nil
			})
			if err != nil {
				t.Fatalf("Publish: %v", err)
			}
			var want []string
			for _, m := range msgs {
				want = append(want, m.ID)
			}
			sort.Strings(reported)
			sort.Strings(want)
			if diff := cmp.Diff(want, reported); diff != "" {
				t.Errorf("ids reported sent (-want +got):\n%s", diff)
			}
			var got []string
			for _, e := range drain(t, reader, url) {
				got = append(got, e.MessageID)
			}
			sort.Strings(got)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("messages on the queue, each exactly once (-want +got):\n%s", diff)
			}
			c := proxy.Counts()["SendMessageBatch"]
			switch {
			case !tt.atLeast && c.Requests != tt.wantCalls:
				t.Errorf("SendMessageBatch calls = %d, want %d", c.Requests, tt.wantCalls)
			case tt.atLeast && (c.Requests < tt.wantCalls || c.Faults == 0):
				t.Errorf("SendMessageBatch calls = %d with %d faults, want at least %d with some faults", c.Requests, c.Faults, tt.wantCalls)
			}
		})
	}
}

func TestPublishStopsWhenProgressFails(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto_server")
	}
	stack := testenv.Stack(t, moto.Endpoint)
	url := stack.Queues["FcmQueue"].URL
	p := queue.NewPublisher(sqs.NewFromConfig(testenv.AWSConfig(moto.Endpoint)), map[push.Vendor]string{push.FCM: url})
	var msgs []queue.Message
	for j := range 15 {
		id := fmt.Sprintf("stop-%d", j)
		msgs = append(msgs, queue.Message{ID: id, Envelope: envelope(id, 1, 10)})
	}
	lost := errors.New("lost the claim")
	calls := 0
	err := p.Publish(context.Background(), push.FCM, msgs, func([]string) error {
		calls++
		return lost
	})
	if !errors.Is(err, lost) {
		t.Fatalf("Publish = %v, want the progress error", err)
	}
	if calls != 1 {
		t.Errorf("progress calls = %d, want 1: Publish must stop at the first failure", calls)
	}
	if got := len(drain(t, sqs.NewFromConfig(testenv.AWSConfig(moto.Endpoint)), url)); got != 10 {
		t.Errorf("messages on the queue = %d, want the first batch of 10 only", got)
	}
}

func TestPublishRefusesUnknownVendorAndBadIDs(t *testing.T) {
	p := queue.NewPublisher(nil, map[push.Vendor]string{push.APNs: "http://127.0.0.1:1/q"})
	nop := func([]string) error { return nil }
	if err := p.Publish(context.Background(), push.Meizu, []queue.Message{{ID: "a", Envelope: envelope("a", 1, 1)}}, nop); err == nil {
		t.Error("Publish to a vendor without a queue URL = nil, want an error")
	}
	if err := p.Publish(context.Background(), push.APNs, []queue.Message{{ID: "a.b", Envelope: envelope("a", 1, 1)}}, nop); err == nil {
		t.Error("Publish with an invalid entry id = nil, want an error")
	}
	if err := p.Publish(context.Background(), push.APNs, nil, nop); err != nil {
		t.Errorf("Publish of nothing = %v, want nil", err)
	}
}

func repeat(n, v int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = v
	}
	return out
}
