package sqsbatch

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// QueueAPI is the part of the SQS client a Poller uses. *sqs.Client
// satisfies it.
type QueueAPI interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
	ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
}

var _ QueueAPI = (*sqs.Client)(nil)

// SQS limits the poller works within.
const (
	// maxReceive is the most messages one ReceiveMessage call returns.
	maxReceive = 10
	// maxWait is the longest long poll SQS allows, and what Lambda's event
	// source mapping uses.
	maxWait = 20 * time.Second
)

// Poller feeds one queue to an SQS handler as Lambda's event source mapping
// does: it long-polls ReceiveMessage, invokes the handler with up to
// BatchSize records within the function's timeout, deletes the records that
// succeeded and leaves the failed ones, which the queue delivers again once
// their visibility timeout ends (and moves to its dead-letter queue after
// its redrive policy's maxReceiveCount). Only the local stack and the tests
// use it; in AWS, Lambda does this.
type Poller struct {
	Client QueueAPI
	// QueueURL and QueueARN name the queue; the ARN and Region go into each
	// record as Lambda would put them.
	QueueURL string
	QueueARN string
	Region   string
	// BatchSize is the most records of one invocation (the event's
	// BatchSize); 0 means 10.
	BatchSize int
	// BatchingWindow is MaximumBatchingWindowInSeconds: how long to gather
	// records toward BatchSize when it exceeds one receive's 10.
	BatchingWindow time.Duration
	// Concurrency is how many invocations may run at once
	// (ScalingConfig.MaximumConcurrency); 0 means 1.
	Concurrency int
	// Timeout is the function's timeout, given to each invocation as its
	// deadline; 0 means 30 s.
	Timeout time.Duration
	// ReportBatchItemFailures says the function reports partial batch
	// failures (FunctionResponseTypes); without it only a handler error
	// keeps records in the queue.
	ReportBatchItemFailures bool
	// Wait is the long poll of each receive; 0 means 20 s, SQS's maximum.
	Wait time.Duration
	// RedeliverAfter, when set, makes the records an invocation left in the
	// queue visible again after this long (whole seconds), instead of after
	// the queue's visibility timeout. Lambda never does this; tests use it
	// to retry failed records quickly while the visibility timeout stays
	// far above the function's timeout, as it must. Zero leaves them alone.
	RedeliverAfter time.Duration
	// FunctionARN names the function in each invocation's Lambda context.
	FunctionARN string
	Handler     func(context.Context, events.SQSEvent) (events.SQSEventResponse, error)
	Log         *slog.Logger

	// receiving serializes the workers' ReceiveMessage calls. moto's
	// ReceiveMessage is not atomic: two long polls woken by one new message
	// can both return it, which SQS never does. One receive at a time per
	// queue costs nothing that matters locally; invocations still overlap.
	receiving sync.Mutex
}

// Run polls until ctx ends, then waits for the invocations in flight to
// finish and their records to be deleted, and returns. An invocation is not
// cut short by ctx: like a Lambda invocation it runs until it returns or its
// timeout passes, so shutting down never turns finished work into
// redeliveries.
func (p *Poller) Run(ctx context.Context) error {
	if p.Client == nil || p.QueueURL == "" || p.Handler == nil {
		return errors.New("poller: Client, QueueURL and Handler are required")
	}
	workers := max(p.Concurrency, 1)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.loop(ctx)
		}()
	}
	wg.Wait()
	return nil
}

func (p *Poller) log() *slog.Logger {
	if p.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Log
}

// loop is one worker: receive, invoke, delete, until ctx ends.
func (p *Poller) loop(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		msgs, err := p.receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			p.log().Warn("receive failed", "queue", p.QueueURL, "err", err)
			if !sleep(ctx, rand.N(backoff)+backoff/2) {
				return
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		if len(msgs) == 0 {
			continue
		}
		p.invoke(context.WithoutCancel(ctx), msgs)
	}
}

// receive long-polls for the first records of a batch and, when BatchSize
// exceeds one receive and a batching window is set, gathers more within it.
func (p *Poller) receive(ctx context.Context) ([]types.Message, error) {
	size := p.BatchSize
	if size <= 0 {
		size = maxReceive
	}
	wait := p.Wait
	if wait <= 0 {
		wait = maxWait
	}
	msgs, err := p.receiveOnce(ctx, min(size, maxReceive), wait)
	if err != nil || len(msgs) == 0 || p.BatchingWindow <= 0 {
		return msgs, err
	}
	deadline := time.Now().Add(p.BatchingWindow)
	for len(msgs) < size {
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		more, err := p.receiveOnce(ctx, min(size-len(msgs), maxReceive), min(left, maxWait))
		if err != nil {
			// What was received stays in flight until its visibility
			// timeout; better to invoke with it than to drop it.
			p.log().Warn("receive failed while batching", "queue", p.QueueURL, "err", err)
			break
		}
		msgs = append(msgs, more...)
	}
	return msgs, nil
}

func (p *Poller) receiveOnce(ctx context.Context, n int, wait time.Duration) ([]types.Message, error) {
	p.receiving.Lock()
	defer p.receiving.Unlock()
	out, err := p.Client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(p.QueueURL),
		MaxNumberOfMessages:         int32(n),
		WaitTimeSeconds:             int32(wait / time.Second),
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		MessageAttributeNames:       []string{"All"},
	})
	if err != nil {
		return nil, fmt.Errorf("receive from %s: %w", p.QueueURL, err)
	}
	return out.Messages, nil
}

// invoke runs the handler on msgs as one Lambda invocation and deletes the
// records it did not report as failed.
func (p *Poller) invoke(ctx context.Context, msgs []types.Message) {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ev := events.SQSEvent{Records: make([]events.SQSMessage, len(msgs))}
	for i, m := range msgs {
		ev.Records[i] = p.record(m)
	}
	id := requestID()
	ictx, cancel := context.WithTimeout(ctx, timeout)
	ictx = lambdacontext.NewContext(ictx, &lambdacontext.LambdaContext{AwsRequestID: id, InvokedFunctionArn: p.FunctionARN})
	resp, err := safeInvoke(ictx, p.Handler, ev)
	cancel()
	log := p.log().With("queue", p.QueueURL, "requestId", id, "records", len(msgs))
	keep, err := p.kept(ev, resp, err)
	if err != nil {
		log.Warn("invocation failed; its records stay in the queue", "err", err)
		keep = map[string]bool{}
		for _, m := range msgs {
			keep[aws.ToString(m.MessageId)] = true
		}
	}
	var done []types.DeleteMessageBatchRequestEntry
	var left []types.ChangeMessageVisibilityBatchRequestEntry
	for i, m := range msgs {
		if keep[aws.ToString(m.MessageId)] {
			left = append(left, types.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String(strconv.Itoa(i)),
				ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: int32(p.RedeliverAfter / time.Second)})
			continue
		}
		done = append(done, types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
	}
	if err == nil && len(keep) > 0 {
		log.Info("records failed; they stay in the queue", "failed", len(keep))
	}
	p.delete(ctx, log, done)
	if p.RedeliverAfter > 0 {
		p.redeliver(ctx, log, left)
	}
}

// redeliver shortens the visibility timeout of records left in the queue
// (RedeliverAfter). A failure only delays them to the queue's own timeout.
func (p *Poller) redeliver(ctx context.Context, log *slog.Logger, entries []types.ChangeMessageVisibilityBatchRequestEntry) {
	for len(entries) > 0 {
		n := min(len(entries), maxReceive)
		if _, err := p.Client.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(p.QueueURL), Entries: entries[:n]}); err != nil {
			log.Warn("shortening the visibility of failed records failed", "err", err)
		}
		entries = entries[n:]
	}
}

// kept returns the ids of the records to leave in the queue, as Lambda
// reads a handler's answer: an error (or a panic, or a timeout) keeps the
// whole batch; with ReportBatchItemFailures the listed records stay, and a
// listed id that names no record of the batch (or is empty) keeps them all.
func (p *Poller) kept(ev events.SQSEvent, resp events.SQSEventResponse, err error) (map[string]bool, error) {
	if err != nil {
		return nil, err
	}
	keep := map[string]bool{}
	if !p.ReportBatchItemFailures {
		return keep, nil
	}
	ids := make(map[string]bool, len(ev.Records))
	for _, r := range ev.Records {
		ids[r.MessageId] = true
	}
	for _, f := range resp.BatchItemFailures {
		if !ids[f.ItemIdentifier] {
			return nil, fmt.Errorf("batch item failure %q names no record of the batch", f.ItemIdentifier)
		}
		keep[f.ItemIdentifier] = true
	}
	return keep, nil
}

// delete removes finished records, ten per call. A record whose delete
// fails is delivered again later, as it would be in AWS.
func (p *Poller) delete(ctx context.Context, log *slog.Logger, entries []types.DeleteMessageBatchRequestEntry) {
	for len(entries) > 0 {
		n := min(len(entries), maxReceive)
		out, err := p.Client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(p.QueueURL), Entries: entries[:n]})
		switch {
		case err != nil:
			log.Warn("delete failed; the records will be delivered again", "err", err, "records", n)
		case len(out.Failed) > 0:
			log.Warn("delete failed for some records; they will be delivered again", "failed", len(out.Failed))
		}
		entries = entries[n:]
	}
}

// record converts a received message into the record of a Lambda SQS event.
func (p *Poller) record(m types.Message) events.SQSMessage {
	attrs := make(map[string]string, len(m.Attributes))
	for k, v := range m.Attributes {
		attrs[k] = v
	}
	mattrs := make(map[string]events.SQSMessageAttribute, len(m.MessageAttributes))
	for k, v := range m.MessageAttributes {
		mattrs[k] = events.SQSMessageAttribute{
			StringValue:      v.StringValue,
			BinaryValue:      v.BinaryValue,
			StringListValues: v.StringListValues,
			BinaryListValues: v.BinaryListValues,
			DataType:         aws.ToString(v.DataType),
		}
	}
	return events.SQSMessage{
		MessageId:              aws.ToString(m.MessageId),
		ReceiptHandle:          aws.ToString(m.ReceiptHandle),
		Body:                   aws.ToString(m.Body),
		Md5OfBody:              aws.ToString(m.MD5OfBody),
		Md5OfMessageAttributes: aws.ToString(m.MD5OfMessageAttributes),
		Attributes:             attrs,
		MessageAttributes:      mattrs,
		EventSourceARN:         p.QueueARN,
		EventSource:            "aws:sqs",
		AWSRegion:              p.Region,
	}
}

func safeInvoke(ctx context.Context, h func(context.Context, events.SQSEvent) (events.SQSEventResponse, error), ev events.SQSEvent) (resp events.SQSEventResponse, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	resp, err = h(ctx, ev)
	if err == nil && ctx.Err() != nil {
		// Lambda ends an invocation at its timeout and reports a failure,
		// whatever the handler would have answered.
		err = fmt.Errorf("invocation timed out: %w", ctx.Err())
	}
	return resp, err
}

// requestID returns a random id shaped like Lambda's request ids.
func requestID() string {
	var b [16]byte
	crand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// sleep waits d or until ctx ends, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
