package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/offline-push/offline-push/shared/dispatch"
	"github.com/offline-push/offline-push/shared/dynamo"
	"github.com/offline-push/offline-push/shared/push"
	"github.com/offline-push/offline-push/shared/queue"
	"github.com/offline-push/offline-push/shared/secrets"
	"github.com/offline-push/offline-push/shared/sqsbatch"
)

// Environment of the dispatch functions, besides STATE_TABLE, REQUEST_TABLE
// and SECRET_PREFIX.
const (
	// EnvQueueURL is the function's own vendor queue, where retries go.
	EnvQueueURL = "QUEUE_URL"
	// EnvDeadLetterQueueURL is that queue's dead-letter queue.
	EnvDeadLetterQueueURL = "DEAD_LETTER_QUEUE_URL"
	// EnvMaxReceiveCount is the queue's redrive maxReceiveCount (optional):
	// on that receive a failing record is dead-lettered by the function
	// itself, so that it is counted.
	EnvMaxReceiveCount = "MAX_RECEIVE_COUNT"
	// EnvDispatchMaxAttempts bounds Envelope.Attempt (optional, default 8).
	EnvDispatchMaxAttempts = "DISPATCH_MAX_ATTEMPTS"
	// EnvDispatchBaseDelayMS is the first retry's delay in milliseconds
	// (optional, default 2000; 0 retries at once, for the local stack and
	// the tests). SQS delays are whole seconds, so it is rounded up.
	EnvDispatchBaseDelayMS = "DISPATCH_BASE_DELAY_MS"
)

// SQSHandler is the Lambda handler of a function fed by an SQS queue.
type SQSHandler = func(context.Context, events.SQSEvent) (events.SQSEventResponse, error)

// DispatchConstructor builds a dispatch function's handler once per cold
// start.
type DispatchConstructor func(ctx context.Context, getenv func(string) string, log *slog.Logger) (SQSHandler, error)

// DispatchFunctions maps the logical ids of the dispatch functions
// (DispatchApnsFunction, …; see DispatchFunctionID) to their constructors,
// for the local stack and the end-to-end tests. The entries are added
// outside this package, by code that imports the vendor providers (the
// local stack does): importing every provider here would link every vendor
// SDK into every function's binary.
var DispatchFunctions = map[string]DispatchConstructor{}

// DispatchFunctionID returns the template's logical id of vendor v's
// dispatch function: DispatchApnsFunction, DispatchFcmFunction, …
func DispatchFunctionID(v push.Vendor) string {
	s := string(v)
	if s == "" {
		return ""
	}
	return "Dispatch" + strings.ToUpper(s[:1]) + s[1:] + "Function"
}

var (
	_ dispatch.BindingChecker   = (*dynamo.DispatchStore)(nil)
	_ dispatch.Unbinder         = (*dynamo.DispatchStore)(nil)
	_ dispatch.BadgeCounter     = (*dynamo.DispatchStore)(nil)
	_ dispatch.CallState        = dispatchCalls{}
	_ dispatch.Requeuer         = dispatchQueue{}
	_ dispatch.CredentialSource = (*secrets.Store)(nil)
)

// Dispatch builds the handler of vendor v's dispatch function, which drains
// v's queue and delivers through sender (the vendor's provider). Clients,
// caches and the engine are built here once per cold start and reused by
// every invocation. The handler answers each SQS batch with the records to
// deliver again (ReportBatchItemFailures) and writes one CloudWatch
// Embedded Metric Format line per batch to standard output.
func Dispatch(ctx context.Context, getenv func(string) string, log *slog.Logger, v push.Vendor, sender dispatch.Sender) (SQSHandler, error) {
	return DispatchTo(ctx, getenv, log, v, sender, os.Stdout)
}

// dispatchConfig is what the dispatch function reads from its environment.
type dispatchConfig struct {
	stateTable, prefix, queueURL, dlqURL string
	engine                               dispatch.Config
}

func readDispatchConfig(getenv func(string) string, v push.Vendor) (dispatchConfig, error) {
	var c dispatchConfig
	var err error
	if c.stateTable, err = require(getenv, EnvStateTable); err != nil {
		return c, err
	}
	if c.prefix, err = require(getenv, EnvSecretPrefix); err != nil {
		return c, err
	}
	if c.queueURL, err = require(getenv, EnvQueueURL); err != nil {
		return c, err
	}
	if c.dlqURL, err = require(getenv, EnvDeadLetterQueueURL); err != nil {
		return c, err
	}
	c.engine.Vendor = v
	optInt := func(name string, lo, hi int, dst *int) error {
		s := getenv(name)
		if s == "" {
			return nil
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("environment variable %s = %q: want a whole number from %d to %d", name, s, lo, hi)
		}
		*dst = n
		return nil
	}
	if err := optInt(EnvMaxReceiveCount, 1, 1000, &c.engine.MaxReceives); err != nil {
		return c, err
	}
	if err := optInt(EnvDispatchMaxAttempts, 1, 100, &c.engine.MaxAttempts); err != nil {
		return c, err
	}
	base := -1
	if err := optInt(EnvDispatchBaseDelayMS, 0, int(dispatch.MaxDelay/time.Millisecond), &base); err != nil {
		return c, err
	}
	switch {
	case base == 0:
		c.engine.BaseDelay = -1 // no delay
	case base > 0:
		c.engine.BaseDelay = time.Duration(base) * time.Millisecond
	}
	return c, nil
}

// DispatchTo is Dispatch with the metrics lines written to metrics instead
// of standard output, where CloudWatch picks them up in Lambda. The local
// stack keeps its standard output for "ready" and the vendor emulators'
// receipts (API.md §8), so it writes them with its logs.
func DispatchTo(ctx context.Context, getenv func(string) string, log *slog.Logger, v push.Vendor, sender dispatch.Sender, metrics io.Writer) (SQSHandler, error) {
	if sender == nil {
		return nil, fmt.Errorf("dispatch function of %s: no sender", v)
	}
	c, err := readDispatchConfig(getenv, v)
	if err != nil {
		return nil, err
	}
	cfg, err := awsConfig(ctx, getenv)
	if err != nil {
		return nil, fmt.Errorf("dispatch function of %s: %w", v, err)
	}
	store := dynamo.NewDispatchStore(dynamodb.NewFromConfig(cfg), c.stateTable)
	c.engine.Log = log
	eng, err := dispatch.New(dispatch.Deps{
		Sender:      sender,
		Bindings:    store,
		Unbinder:    store,
		Badges:      store,
		Calls:       dispatchCalls{store},
		Queue:       dispatchQueue{client: sqs.NewFromConfig(cfg), url: c.queueURL, dlq: c.dlqURL},
		Credentials: secrets.New(secretsmanager.NewFromConfig(cfg), c.prefix, time.Now),
	}, c.engine)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex // one metrics line at a time, never interleaved
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		tally := dispatch.NewTally()
		resp, err := sqsbatch.Process(ctx, ev.Records, sqsbatch.MessageID, func(ctx context.Context, m events.SQSMessage) error {
			n, _ := strconv.Atoi(m.Attributes["ApproximateReceiveCount"])
			return eng.Dispatch(ctx, dispatch.Record{ID: m.MessageId, Body: []byte(m.Body), ReceiveCount: n}, tally)
		}, sqsbatch.Options{OnError: func(ctx context.Context, id string, err error) {
			var p *sqsbatch.PanicError
			if errors.As(err, &p) {
				log.ErrorContext(ctx, "record panicked; it will be delivered again", "record", id, "err", err, "stack", string(p.Stack))
				return
			}
			log.WarnContext(ctx, "record will be delivered again", "record", id, "err", err)
		}})
		if line, mErr := tally.EMF(v, time.Now()); mErr == nil {
			mu.Lock()
			metrics.Write(append(line, '\n'))
			mu.Unlock()
		}
		return resp, err
	}, nil
}

// TokenCache returns the shared cache of vendor access tokens in
// RequestTable, for the providers that mint tokens (APNs provider JWTs,
// vendor OAuth tokens). A dispatch main builds its sender with it before it
// calls Dispatch.
func TokenCache(ctx context.Context, getenv func(string) string) (*dynamo.CredentialCache, error) {
	table, err := require(getenv, EnvRequestTable)
	if err != nil {
		return nil, err
	}
	cfg, err := awsConfig(ctx, getenv)
	if err != nil {
		return nil, fmt.Errorf("token cache: %w", err)
	}
	return dynamo.NewCredentialCache(dynamodb.NewFromConfig(cfg), table), nil
}

// dispatchCalls adapts *dynamo.DispatchStore to dispatch.CallState.
type dispatchCalls struct{ s *dynamo.DispatchStore }

func (a dispatchCalls) Calls(ctx context.Context, app string, users []string, now time.Time) (map[string]*dispatch.Call, error) {
	got, err := a.s.Calls(ctx, app, users, now)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*dispatch.Call, len(got))
	for u, c := range got {
		dc := &dispatch.Call{
			ID:        c.Record.CallID,
			ExpiresAt: c.Record.ExpiresAt,
			Cancelled: c.Record.Cancelled,
			Invites:   make(map[string]dispatch.Invite, len(c.Invites)),
		}
		for d, m := range c.Invites {
			dc.Invites[d] = dispatch.Invite{State: dispatch.InviteState(m.State), Until: m.At}
		}
		out[u] = dc
	}
	return out, nil
}

func (a dispatchCalls) MarkSending(ctx context.Context, app, user, call string, devices []string, until time.Time) (bool, error) {
	return a.s.MarkSending(ctx, app, user, call, devices, until)
}

func (a dispatchCalls) MarkDone(ctx context.Context, app, user, call string, done map[string]dispatch.InviteState, now time.Time) error {
	m := make(map[string]string, len(done))
	for d, st := range done {
		m[d] = string(st)
	}
	return a.s.MarkDone(ctx, app, user, call, m, now)
}

// dispatchSQS is the part of the SQS client the requeuer uses.
type dispatchSQS interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

// dispatchQueue writes retries to the function's own queue and given-up
// targets to its dead-letter queue, encoded as ingest encodes envelopes.
type dispatchQueue struct {
	client   dispatchSQS
	url, dlq string
}

func (q dispatchQueue) Requeue(ctx context.Context, e *push.Envelope, delay time.Duration) error {
	return q.send(ctx, q.url, e, int32(delay/time.Second))
}

func (q dispatchQueue) DeadLetter(ctx context.Context, e *push.Envelope) error {
	return q.send(ctx, q.dlq, e, 0)
}

func (q dispatchQueue) send(ctx context.Context, url string, e *push.Envelope, delay int32) error {
	body, err := queue.Encode(e)
	if err != nil {
		return err
	}
	_, err = q.client.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl:     aws.String(url),
		MessageBody:  aws.String(string(body)),
		DelaySeconds: min(max(delay, 0), int32(dispatch.MaxDelay/time.Second)),
	})
	if err != nil {
		return fmt.Errorf("send envelope of message %s: %w", e.MessageID, err)
	}
	return nil
}

// newDispatch is DispatchTo; the package's benchmarks build handlers with it.
func newDispatch(ctx context.Context, getenv func(string) string, log *slog.Logger, v push.Vendor, sender dispatch.Sender, metrics io.Writer) (SQSHandler, error) {
	return DispatchTo(ctx, getenv, log, v, sender, metrics)
}
