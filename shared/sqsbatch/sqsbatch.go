// Package sqsbatch turns an SQS event into calls of a per-record function
// and reports the records that failed as a partial batch response
// (ReportBatchItemFailures), so one bad record never makes Lambda redeliver
// the records that succeeded. It also holds Poller, which feeds a queue to
// such a handler the way Lambda's event source mapping does, for the local
// stack and the tests.
//
// The package knows nothing of what a record means: it is generic over the
// record type, and the dispatch engine, or any other consumer, supplies the
// per-record work.
package sqsbatch

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"

	"github.com/aws/aws-lambda-go/events"
)

// DefaultConcurrency is how many records of one batch run at once when
// Options leave it unset. An SQS batch holds at most 10 records unless a
// batching window is configured, so this runs a usual batch fully parallel.
const DefaultConcurrency = 10

// Options tune Process and Handler.
type Options struct {
	// Concurrency bounds the records processed at once; 0 means
	// DefaultConcurrency, 1 processes them in order.
	Concurrency int
	// OnError, when set, is told about each record that failed, with the
	// invocation's context (for the request id of its log line), the
	// record's id and its error (a panic arrives as a *PanicError). The
	// handler itself returns no error for a failed record, so this is the
	// place to log it.
	OnError func(ctx context.Context, id string, err error)
}

// PanicError is the error of a record whose function panicked. Only that
// record fails; the others of the batch go on.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("record function panicked: %v", e.Value) }

// Process runs fn once for every record, with at most opt.Concurrency in
// flight, and returns a response naming the records whose fn returned an
// error or panicked, by id(record), in the order of records. A record whose
// id is empty cannot be reported alone: when one fails, Process returns
// ErrNoID as well, and the handler must fail the whole batch (Lambda then
// redelivers all of it, which is what it does with an empty item id too).
//
// Process waits for every started record before it returns, even when ctx
// ends: each fn is expected to honour ctx itself.
func Process[R any](ctx context.Context, records []R, id func(R) string, fn func(context.Context, R) error, opt Options) (events.SQSEventResponse, error) {
	limit := opt.Concurrency
	if limit <= 0 {
		limit = DefaultConcurrency
	}
	errs := make([]error, len(records))
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i, r := range records {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = call(ctx, fn, r)
		}()
	}
	wg.Wait()
	resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
	var noID error
	for i, err := range errs {
		if err == nil {
			continue
		}
		rid := id(records[i])
		if opt.OnError != nil {
			opt.OnError(ctx, rid, err)
		}
		if rid == "" {
			noID = fmt.Errorf("record %d failed: %w", i, ErrNoID)
			continue
		}
		resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rid})
	}
	return resp, noID
}

// ErrNoID reports a failed record without an id, which a partial batch
// response cannot name.
var ErrNoID = errors.New("a failed record has no id")

// call runs fn for one record, turning a panic into a *PanicError.
func call[R any](ctx context.Context, fn func(context.Context, R) error, r R) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &PanicError{Value: p, Stack: debug.Stack()}
		}
	}()
	return fn(ctx, r)
}

// MessageID is the id Lambda expects in a batch item failure of an SQS
// record.
func MessageID(m events.SQSMessage) string { return m.MessageId }

// Handler returns a Lambda handler for SQS events that runs fn for each
// record through Process. A failed record is reported in the response, which the event source mapping honours when
// FunctionResponseTypes holds ReportBatchItemFailures. Its error is
// non-nil only when a failed record has no id (ErrNoID), which fails the
// whole batch.
func Handler(fn func(context.Context, events.SQSMessage) error, opt Options) func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		return Process(ctx, ev.Records, MessageID, fn, opt)
	}
}
