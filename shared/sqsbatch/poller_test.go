package sqsbatch_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/offline-push/offline-push/shared/sqsbatch"
	"github.com/offline-push/offline-push/shared/testenv"
)

// queuePair is a queue with a dead-letter queue and a redrive policy.
type queuePair struct {
	url, arn, dlq string
}

func newQueuePair(t *testing.T, client *sqs.Client, name string, maxReceives int) queuePair {
	t.Helper()
	ctx := context.Background()
	dlq, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name + "-dlq")})
	if err != nil {
		t.Fatal(err)
	}
	dlqARN := queueARN(t, client, aws.ToString(dlq.QueueUrl))
	q, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: map[string]string{
		"VisibilityTimeout": "1",
		"RedrivePolicy":     fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":%d}`, dlqARN, maxReceives),
	}})
	if err != nil {
		t.Fatal(err)
	}
	url := aws.ToString(q.QueueUrl)
	return queuePair{url: url, arn: queueARN(t, client, url), dlq: aws.ToString(dlq.QueueUrl)}
}

func queueARN(t *testing.T, client *sqs.Client, url string) string {
	t.Helper()
	out, err := client.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	return out.Attributes["QueueArn"]
}

// depth is the number of messages a queue holds: visible, in flight and
// delayed.
func depth(t *testing.T, client *sqs.Client, url string) int {
	t.Helper()
	out, err := client.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll}})
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

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not a wait for an event
	}
}

func send(t *testing.T, client *sqs.Client, url string, bodies ...string) {
	t.Helper()
	for _, b := range bodies {
		if _, err := client.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPoller feeds a queue through the poller to a handler that succeeds,
// fails a record once, or fails it always: the first two are deleted, the
// last is moved to the dead-letter queue by the queue's redrive policy.
func TestPoller(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto_server")
	}
	srv := testenv.Moto(t)
	client := sqs.NewFromConfig(testenv.AWSConfig(srv.Endpoint))
	q := newQueuePair(t, client, "poller", 2)

	var mu sync.Mutex
	receives := map[string][]string{} // body → ApproximateReceiveCount of each delivery
	var bad []string
	handler := func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		lc, ok := lambdacontext.FromContext(ctx)
		_, hasDeadline := ctx.Deadline()
		mu.Lock()
		defer mu.Unlock()
		if !ok || lc.AwsRequestID == "" || lc.InvokedFunctionArn != "arn:fn" || !hasDeadline {
			bad = append(bad, "invocation lacks its Lambda context or deadline")
		}
		var resp events.SQSEventResponse
		for _, r := range ev.Records {
			if r.EventSource != "aws:sqs" || r.EventSourceARN != q.arn || r.AWSRegion != "us-east-1" || r.ReceiptHandle == "" || r.Attributes["SentTimestamp"] == "" {
				bad = append(bad, fmt.Sprintf("record %+v lacks what Lambda sets", r))
			}
			n := r.Attributes["ApproximateReceiveCount"]
			receives[r.Body] = append(receives[r.Body], n)
			if r.Body == "always" || (r.Body == "once" && n == "1") {
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
			}
		}
		return resp, nil
	}
	p := &sqsbatch.Poller{Client: client, QueueURL: q.url, QueueARN: q.arn, Region: "us-east-1", BatchSize: 10,
		Concurrency: 2, Timeout: 10 * time.Second, ReportBatchItemFailures: true, Wait: time.Second,
		FunctionARN: "arn:fn", Handler: handler}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	send(t, client, q.url, "ok-1", "once", "always", "ok-2")
	waitFor(t, "the queue to drain into its dead-letter queue", func() bool {
		return depth(t, client, q.url) == 0 && depth(t, client, q.dlq) == 1
	})
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := map[string][]string{"ok-1": {"1"}, "ok-2": {"1"}, "once": {"1", "2"}, "always": {"1", "2"}}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff(want, receives); diff != "" {
		t.Errorf("deliveries by body (-want +got):\n%s", diff)
	}
	for _, b := range bad {
		t.Error(b)
	}
}

// TestPollerFailedInvocations keeps every record of an invocation that
// failed as a whole: an error, a panic, an answer naming an unknown record,
// and a timeout.
func TestPollerFailedInvocations(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto_server")
	}
	srv := testenv.Moto(t)
	client := sqs.NewFromConfig(testenv.AWSConfig(srv.Endpoint))
	tests := []struct {
		name    string
		handler func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error)
	}{
		{"error", func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
			return events.SQSEventResponse{}, errors.New("boom")
		}},
		{"panic", func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) { panic("boom") }},
		{"unknown id", func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
			return events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{{ItemIdentifier: "nope"}}}, nil
		}},
		{"timeout", func(ctx context.Context, _ events.SQSEvent) (events.SQSEventResponse, error) {
			<-ctx.Done()
			return events.SQSEventResponse{}, nil
		}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := newQueuePair(t, client, "failed-"+strconv.Itoa(i), 1)
			var mu sync.Mutex
			calls := 0
			p := &sqsbatch.Poller{Client: client, QueueURL: q.url, QueueARN: q.arn, BatchSize: 10,
				Timeout: 200 * time.Millisecond, ReportBatchItemFailures: true, Wait: time.Second,
				Handler: func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
					mu.Lock()
					calls++
					mu.Unlock()
					return tc.handler(ctx, ev)
				}}
			ctx, stop := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- p.Run(ctx) }()
			send(t, client, q.url, "a", "b")
			// With maxReceiveCount 1 a kept record goes to the dead-letter
			// queue at its next receive; a deleted one never would.
			waitFor(t, "both records in the dead-letter queue", func() bool { return depth(t, client, q.dlq) == 2 })
			stop()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if calls == 0 {
				t.Error("the handler was never invoked")
			}
		})
	}
}

// TestPollerRedeliverAfter makes a failed record visible again at once while
// the queue's visibility timeout is ten minutes.
func TestPollerRedeliverAfter(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto_server")
	}
	srv := testenv.Moto(t)
	client := sqs.NewFromConfig(testenv.AWSConfig(srv.Endpoint))
	q := newQueuePair(t, client, "redeliver", 5)
	if _, err := client.SetQueueAttributes(context.Background(), &sqs.SetQueueAttributesInput{QueueUrl: aws.String(q.url),
		Attributes: map[string]string{"VisibilityTimeout": "600"}}); err != nil {
		t.Fatal(err)
	}
	invoked := make(chan struct{})
	var once sync.Once
	p := &sqsbatch.Poller{Client: client, QueueURL: q.url, QueueARN: q.arn, BatchSize: 10, Timeout: 10 * time.Second,
		ReportBatchItemFailures: true, Wait: time.Second, RedeliverAfter: time.Second,
		Handler: func(_ context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
			defer once.Do(func() { close(invoked) })
			return events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{{ItemIdentifier: ev.Records[0].MessageId}}}, nil
		}}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	send(t, client, q.url, "fails")
	<-invoked
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// With the queue's own timeout the record would stay hidden for ten
	// minutes; this receive waits at most 20 s.
	out, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.url), WaitTimeSeconds: 20,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 1 || out.Messages[0].Attributes["ApproximateReceiveCount"] != "2" {
		t.Errorf("received %d messages (%v), want the failed record on its second receive", len(out.Messages), out.Messages)
	}
}
