package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/offline-push/offline-push/shared/dynamo"
	"github.com/offline-push/offline-push/shared/httpapi"
	"github.com/offline-push/offline-push/shared/ingest"
	"github.com/offline-push/offline-push/shared/push"
	"github.com/offline-push/offline-push/shared/queue"
	"github.com/offline-push/offline-push/shared/secrets"
)

var (
	_ ingest.RecipientReader = ingestReader{}
	_ ingest.Ledger          = ingestLedger{}
	_ ingest.CallStore       = (*dynamo.CallStore)(nil)
	_ ingest.Enqueuer        = ingestQueue{}
)

// QueueURLEnv names the environment variable holding the URL of vendor v's
// queue: APNS_QUEUE_URL, FCM_QUEUE_URL, … The template sets one per vendor
// on the ingest function.
func QueueURLEnv(v push.Vendor) string {
	return strings.ToUpper(string(v)) + "_QUEUE_URL"
}

// Ingest builds the handler of the ingest function: POST
// /v1/apps/{app}/messages (API.md §6). It needs every vendor's queue URL,
// since any message may reach any vendor. Clients, caches and the router
// are built once here, per cold start, and reused by every invocation. The
// function judges DND windows in IANA time zones, so its binary must embed
// time/tzdata.
func Ingest(ctx context.Context, getenv func(string) string, log *slog.Logger) (HTTPHandler, error) {
	stateTable, err := require(getenv, EnvStateTable)
	if err != nil {
		return nil, err
	}
	requestTable, err := require(getenv, EnvRequestTable)
	if err != nil {
		return nil, err
	}
	prefix, err := require(getenv, EnvSecretPrefix)
	if err != nil {
		return nil, err
	}
	urls := make(map[push.Vendor]string, len(push.Vendors))
	for _, v := range push.Vendors {
		if urls[v], err = require(getenv, QueueURLEnv(v)); err != nil {
			return nil, err
		}
	}
	cfg, err := awsConfig(ctx, getenv)
	if err != nil {
		return nil, fmt.Errorf("ingest function: %w", err)
	}
	db := dynamodb.NewFromConfig(cfg)
	sec := secrets.New(secretsmanager.NewFromConfig(cfg), prefix, time.Now)
	svc := newIngestService(db, sqs.NewFromConfig(cfg), stateTable, requestTable, urls, log)
	router := httpapi.New(httpapi.Config{
		Handlers: ingestHandlers(svc),
		Verifier: httpapi.NewVerifier(sec, dynamo.NewNonceStore(db, requestTable)),
		Log:      log,
	})
	return router.Lambda, nil
}

// newIngestService returns the message use case over StateTable,
// RequestTable and the vendor queues.
func newIngestService(db dynamo.Client, q queue.Client, stateTable, requestTable string, urls map[push.Vendor]string, log *slog.Logger) *ingest.Service {
	return ingest.New(
		ingestReader{dynamo.NewRecipientReader(db, stateTable)},
		ingestLedger{dynamo.NewMessageStore(db, requestTable)},
		dynamo.NewCallStore(db, stateTable),
		ingestQueue{queue.NewPublisher(q, urls)},
		log,
	)
}

// ingestHandlers returns the handler of the message route. It answers 202
// when the message was accepted for delivery, and 200 for a dry run and for
// a duplicate, whose pushes were not (again) enqueued.
func ingestHandlers(svc *ingest.Service) map[string]httpapi.HandlerFunc {
	return map[string]httpapi.HandlerFunc{
		"PostMessage": httpapi.JSON(func(ctx context.Context, r *httpapi.Request, in *ingest.Request) (httpapi.Response, error) {
			res, err := svc.Post(ctx, r.App, in, r.Now)
			if err != nil {
				return httpapi.Response{}, err
			}
			status := http.StatusAccepted
			if res.DryRun || res.Duplicate {
				status = http.StatusOK
			}
			return httpapi.Response{Status: status, Body: res}, nil
		}),
	}
}

// ingestReader adapts *dynamo.RecipientReader to the use case.
type ingestReader struct{ r *dynamo.RecipientReader }

func (a ingestReader) ReadRecipients(ctx context.Context, app string, users []string, q ingest.Query, now time.Time) ([]ingest.Recipient, error) {
	dq := dynamo.RecipientQuery{Presence: q.Presence, Call: q.Call}
	if q.Conversation != nil {
		dq.Conversation = &dynamo.ConversationKey{Type: q.Conversation.Type, ID: q.Conversation.ID}
	}
	states, err := a.r.Read(ctx, app, users, dq, now)
	if err != nil {
		return nil, err
	}
	out := make([]ingest.Recipient, len(states))
	for i := range states {
		s := &states[i]
		r := &out[i]
		r.UserID = s.UserID
		r.Bindings = s.Bindings
		r.Leases = s.Leases
		r.Settings = s.Settings
		r.Conversation = s.Conversation
		if s.Call != nil {
			rec := s.Call.Record
			r.CurrentCall = &rec
			r.CallCancelledBy = s.Call.CancelledBy
			r.CallDevices = s.Call.Devices
		}
	}
	return out, nil
}

// ingestLedger adapts *dynamo.MessageStore to the use case.
type ingestLedger struct{ s *dynamo.MessageStore }

func (a ingestLedger) Claim(ctx context.Context, app, id string, now time.Time, lease time.Duration) (ingest.Claim, error) {
	c, err := a.s.Claim(ctx, app, id, now, lease)
	if err != nil {
		return ingest.Claim{}, err
	}
	return ingest.Claim{Owner: c.Owner, AcceptedAt: c.AcceptedAt, Sent: c.Sent, Result: c.Result}, nil
}

func (a ingestLedger) MarkSent(ctx context.Context, app, id, owner string, ids []string) error {
	return a.s.MarkSent(ctx, app, id, owner, ids)
}

func (a ingestLedger) Finish(ctx context.Context, app, id, owner string, result []byte) error {
	return a.s.Finish(ctx, app, id, owner, result)
}

func (a ingestLedger) Release(ctx context.Context, app, id, owner string) error {
	return a.s.Release(ctx, app, id, owner)
}

// ingestQueue adapts *queue.Publisher to the use case.
type ingestQueue struct{ p *queue.Publisher }

func (a ingestQueue) Enqueue(ctx context.Context, v push.Vendor, out []ingest.Outgoing, sent func(ids []string) error) error {
	msgs := make([]queue.Message, len(out))
	for i, o := range out {
		msgs[i] = queue.Message{ID: o.ID, Envelope: o.Envelope}
	}
	return a.p.Publish(ctx, v, msgs, sent)
}
