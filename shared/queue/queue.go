// Package queue is the SQS adapter: it encodes dispatch envelopes and sends
// them to the vendor queues with SendMessageBatch, packing up to ten
// messages and 256 KiB into each call and resending the entries SQS failed.
// It imports the AWS SDK and push, never a use case.
package queue

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/offline-push/offline-push/shared/push"
)

// SQS limits of one SendMessageBatch call.
const (
	// MaxBatchEntries is the most messages one call may carry.
	MaxBatchEntries = 10
	// MaxBatchBytes is the most message body bytes one call may carry, all
	// entries together (262,144 bytes).
	MaxBatchBytes = 256 * 1024
)

// Client is the part of the SQS SDK client the publisher uses.
// *sqs.Client satisfies it.
type Client interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

var _ Client = (*sqs.Client)(nil)

// Message is one envelope to send, with the caller's id for it. The id
// becomes the batch entry id, so it must be unique within one Publish call,
// 1 to 80 characters of [A-Za-z0-9_-].
type Message struct {
	ID       string
	Envelope *push.Envelope
}

// defaultAttempts bounds the rounds spent on entries SQS failed on its side
// (SenderFault false) before Publish gives up as throttled. The SDK already
// retries whole calls that fail; this covers the partial failures it cannot
// see.
const defaultAttempts = 8

// Publisher sends envelopes to the vendor queues.
type Publisher struct {
	client Client
	urls   map[push.Vendor]string
	// Attempts bounds the rounds of a failed entry; 0 means 8.
	Attempts int
	// Backoff is the first wait before resending failed entries, doubled
	// each round up to one second, with full jitter; 0 means 20 ms.
	Backoff time.Duration
}

// NewPublisher returns a publisher sending to the queue URL of each vendor
// in urls.
func NewPublisher(client Client, urls map[push.Vendor]string) *Publisher {
	m := make(map[push.Vendor]string, len(urls))
	for v, u := range urls {
		m[v] = u
	}
	return &Publisher{client: client, urls: m}
}

// Publish sends msgs to vendor v's queue in as few SendMessageBatch calls as
// the SQS limits allow, in order. After every call that SQS accepted, sent
// is called with the ids of the messages that call delivered, before any
// other call is made: the caller records its progress there, and an error
// from sent stops Publish at once and is returned. Entries SQS failed on its
// side are sent again, with backoff, up to Attempts rounds; an entry SQS
// refuses as the sender's fault (too large, malformed) fails Publish. A
// message is never sent again once a call reported it delivered.
func (p *Publisher) Publish(ctx context.Context, v push.Vendor, msgs []Message, sent func(ids []string) error) error {
	if len(msgs) == 0 {
		return nil
	}
	url := p.urls[v]
	if url == "" {
		return fmt.Errorf("publish to %s: no queue URL configured", v)
	}
	entries := make([]types.SendMessageBatchRequestEntry, len(msgs))
	for i, m := range msgs {
		if !validID(m.ID) {
			return fmt.Errorf("publish to %s: message id %q is not a valid batch entry id", v, m.ID)
		}
		body, err := Encode(m.Envelope)
		if err != nil {
			return fmt.Errorf("publish to %s: %w", v, err)
		}
		entries[i] = types.SendMessageBatchRequestEntry{Id: aws.String(m.ID), MessageBody: aws.String(string(body))}
	}
	for _, batch := range Pack(entries) {
		if err := p.send(ctx, v, url, batch, sent); err != nil {
			return err
		}
	}
	return nil
}

// send delivers one batch, resending the entries SQS failed on its side.
func (p *Publisher) send(ctx context.Context, v push.Vendor, url string, batch []types.SendMessageBatchRequestEntry, sent func([]string) error) error {
	attempts := p.Attempts
	if attempts <= 0 {
		attempts = defaultAttempts
	}
	wait := p.Backoff
	if wait <= 0 {
		wait = 20 * time.Millisecond
	}
	for round := 1; ; round++ {
		out, err := p.client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: batch})
		if err != nil {
			return fmt.Errorf("publish to %s: %w", v, sqsError(err))
		}
		if len(out.Successful) > 0 {
			ids := make([]string, len(out.Successful))
			for i, s := range out.Successful {
				ids[i] = aws.ToString(s.Id)
			}
			if err := sent(ids); err != nil {
				return err
			}
		}
		if len(out.Failed) == 0 {
			return nil
		}
		failed := make(map[string]bool, len(out.Failed))
		for _, f := range out.Failed {
			if f.SenderFault {
				return fmt.Errorf("publish to %s: SQS refused message %s: %s: %s",
					v, aws.ToString(f.Id), aws.ToString(f.Code), aws.ToString(f.Message))
			}
			failed[aws.ToString(f.Id)] = true
		}
		if round >= attempts {
			return fmt.Errorf("publish to %s: %d messages still failing after %d rounds: %w", v, len(failed), round, push.ErrThrottled)
		}
		retry := batch[:0:0]
		for _, e := range batch {
			if failed[aws.ToString(e.Id)] {
				retry = append(retry, e)
			}
		}
		batch = retry
		t := time.NewTimer(rand.N(wait) + 1)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("publish to %s: %w", v, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, time.Second)
	}
}

// Pack splits entries, in order, into batches that each fit one
// SendMessageBatch call: at most MaxBatchEntries entries and MaxBatchBytes
// of bodies. Each entry must fit alone (Encode sees to that).
func Pack(entries []types.SendMessageBatchRequestEntry) [][]types.SendMessageBatchRequestEntry {
	var out [][]types.SendMessageBatchRequestEntry
	var cur []types.SendMessageBatchRequestEntry
	size := 0
	for _, e := range entries {
		n := len(aws.ToString(e.MessageBody))
		if len(cur) > 0 && (len(cur) == MaxBatchEntries || size+n > MaxBatchBytes) {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, e)
		size += n
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// Encode returns the message body of e: its wire form (push.EncodeEnvelope),
// checked against what SQS accepts. A body must fit one SQS message
// (MaxBatchBytes) and hold only the characters SQS allows; JSON escapes
// every control character, so only the noncharacters U+FFFE and U+FFFF can
// offend, and ingest replaces those in the texts it accepts.
func Encode(e *push.Envelope) ([]byte, error) {
	b, err := push.EncodeEnvelope(e)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxBatchBytes {
		return nil, fmt.Errorf("envelope of message %s takes %d bytes, more than one SQS message holds", e.MessageID, len(b))
	}
	for i := 0; i < len(b); {
		r, w := utf8.DecodeRune(b[i:])
		if r == 0xfffe || r == 0xffff || (r == utf8.RuneError && w == 1) {
			return nil, fmt.Errorf("envelope of message %s holds a character SQS refuses at byte %d", e.MessageID, i)
		}
		i += w
	}
	return b, nil
}

// validID reports whether s is a valid batch entry id.
func validID(s string) bool {
	if len(s) == 0 || len(s) > 80 {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) < 0
}

// sqsError marks an SDK error that means SQS kept refusing the call for
// load (after the SDK's own retries) as push.ErrThrottled.
func sqsError(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "ThrottlingException", "RequestThrottled", "AWS.SimpleQueueService.RequestThrottled":
			return fmt.Errorf("%w: %w", push.ErrThrottled, err)
		}
	}
	return err
}
