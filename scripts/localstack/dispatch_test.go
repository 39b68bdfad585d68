//go:build unix

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/offline-push/offline-push/shared/app"
	"github.com/offline-push/offline-push/shared/cfn"
	"github.com/offline-push/offline-push/shared/push"
	"github.com/offline-push/offline-push/shared/testenv"
)

// TestDispatchRegistry checks that every vendor's dispatch function can be
// built by the local stack.
func TestDispatchRegistry(t *testing.T) {
	for _, v := range push.Vendors {
		if _, ok := app.DispatchFunctions[app.DispatchFunctionID(v)]; !ok {
			t.Errorf("%s is not registered in app.DispatchFunctions", app.DispatchFunctionID(v))
		}
	}
}

// feedQueue creates a queue with a dead-letter queue that takes a record
// after two receives, as the template's queues do after five.
func feedQueue(t *testing.T, client *sqs.Client, name string) (cfn.Queue, string) {
	t.Helper()
	ctx := t.Context()
	dlq, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name + "-dlq")})
	if err != nil {
		t.Fatal(err)
	}
	dlqAttrs, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: dlq.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	q, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: map[string]string{
		"VisibilityTimeout": "1",
		"RedrivePolicy":     fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":2}`, dlqAttrs.Attributes["QueueArn"]),
	}})
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	return cfn.Queue{Name: name, URL: aws.ToString(q.QueueUrl), ARN: attrs.Attributes["QueueArn"]}, aws.ToString(dlq.QueueUrl)
}

func queueDepth(t *testing.T, client *sqs.Client, url string) int {
	t.Helper()
	out, err := client.GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
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

// TestFeeder runs a registered function on its template event source: the
// batches respect BatchSize, the function sees its environment, a record it
// reports as failed comes again and lands in the dead-letter queue, and stop
// returns once the pollers are done.
func TestFeeder(t *testing.T) {
	client := sqs.NewFromConfig(testenv.AWSConfig(moto.Endpoint))
	q, dlq := feedQueue(t, client, "feeder-test")
	st := &cfn.Stack{Name: "s", Region: testenv.Region, AccountID: "123456789012",
		Queues: map[string]cfn.Queue{"TestQueue": q},
		Functions: map[string]cfn.Function{
			"TestQueueFunction": {LogicalID: "TestQueueFunction", Env: map[string]string{"QUEUE_URL": q.URL}, Timeout: 5 * time.Second,
				SQS: []cfn.SQSEvent{{Queue: "TestQueue", BatchSize: 3, FunctionResponseTypes: []string{"ReportBatchItemFailures"}}}},
			"UnregisteredFunction": {LogicalID: "UnregisteredFunction", SQS: []cfn.SQSEvent{{Queue: "TestQueue"}}},
		}}
	var mu sync.Mutex
	var batches []int
	seen := map[string]int{}
	var env string
	app.DispatchFunctions["TestQueueFunction"] = func(_ context.Context, getenv func(string) string, _ *slog.Logger) (app.SQSHandler, error) {
		env = getenv("QUEUE_URL")
		return func(_ context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
			mu.Lock()
			defer mu.Unlock()
			batches = append(batches, len(ev.Records))
			var resp events.SQSEventResponse
			for _, r := range ev.Records {
				seen[r.Body]++
				if r.Body == "poison" {
					resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
				}
			}
			return resp, nil
		}, nil
	}
	t.Cleanup(func() { delete(app.DispatchFunctions, "TestQueueFunction") })

	f, err := newFeeder(t.Context(), discardLog(), st, readSettings(func(string) string { return "" }).functionEnv(st), client)
	if err != nil {
		t.Fatal(err)
	}
	if env != q.URL {
		t.Errorf("the function saw QUEUE_URL %q, want %q", env, q.URL)
	}
	if len(f.pollers) != 1 {
		t.Fatalf("%d pollers, want one (the unregistered function is skipped)", len(f.pollers))
	}
	for _, p := range f.pollers {
		p.Wait = time.Second // keeps stop quick; the local stack polls for 20 s
	}
	f.start()
	for i := range 7 {
		if _, err := client.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: aws.String(q.URL), MessageBody: aws.String("m" + strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := client.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: aws.String(q.URL), MessageBody: aws.String("poison")}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for queueDepth(t, client, q.URL) > 0 || queueDepth(t, client, dlq) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the queue did not drain into its dead-letter queue")
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
	f.stop()
	mu.Lock()
	defer mu.Unlock()
	if slices.Max(batches) > 3 {
		t.Errorf("batch sizes %v, want at most 3", batches)
	}
	for i := range 7 {
		if n := seen["m"+strconv.Itoa(i)]; n != 1 {
			t.Errorf("m%d delivered %d times, want once", i, n)
		}
	}
	if seen["poison"] != 2 {
		t.Errorf("the failing record was delivered %d times, want 2 (maxReceiveCount)", seen["poison"])
	}
}

// TestFeederColdStartFailure names the function whose constructor failed.
func TestFeederColdStartFailure(t *testing.T) {
	boom := errors.New("boom")
	app.DispatchFunctions["BrokenFunction"] = func(context.Context, func(string) string, *slog.Logger) (app.SQSHandler, error) {
		return nil, boom
	}
	t.Cleanup(func() { delete(app.DispatchFunctions, "BrokenFunction") })
	st := &cfn.Stack{Functions: map[string]cfn.Function{"BrokenFunction": {LogicalID: "BrokenFunction", SQS: []cfn.SQSEvent{{Queue: "Q"}}}}}
	_, err := newFeeder(t.Context(), discardLog(), st, readSettings(func(string) string { return "" }).functionEnv(st), nil)
	if !errors.Is(err, boom) {
		t.Errorf("newFeeder = %v, want the constructor's error", err)
	}
}
