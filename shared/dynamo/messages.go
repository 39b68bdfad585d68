package dynamo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/offline-push/offline-push/shared/push"
)

// Attributes of a message record in RequestTable (pk "m#{app}#{messageId}"):
//
//	st   "p" while processing, "d" once done
//	own  the owner token of the request processing it (absent once done)
//	lu   until when the owner holds it, epoch ms; 0 once released
//	at   when the message was first accepted, epoch ms
//	sent the ids of the envelopes already sent (SS), the fan-out's progress
//	res  the result answered, opaque bytes (B), once done
//	ttl  at + MessageRetention, epoch seconds
const (
	msgState    = "st"
	msgOwner    = "own"
	msgLease    = "lu"
	msgAccepted = "at"
	msgSent     = "sent"
	msgResult   = "res"

	msgProcessing = "p"
	msgDone       = "d"
)

// MessageRetention is how long a message id stays an idempotency key
// (API.md §6): the record expires this long after the message was first
// accepted, and a record past it counts as absent even before DynamoDB TTL
// has removed it.
const MessageRetention = 24 * time.Hour

// MaxMessageResult is the largest result Finish stores. A DynamoDB item
// holds 400 KB; the rest of the record (progress ids) needs the remainder.
const MaxMessageResult = 300 << 10

// MessageClaim is the outcome of claiming a message id.
type MessageClaim struct {
	// Owner is the token that proves the claim to MarkSent, Finish and
	// Release. Empty when Result is set.
	Owner string
	// AcceptedAt is when the message was first accepted: now for a fresh
	// claim, the stored instant when a retry takes over.
	AcceptedAt time.Time
	// Sent are the envelope ids a previous attempt already sent.
	Sent []string
	// Resumed is true when the claim took over an earlier attempt.
	Resumed bool
	// Result is the stored result of a message already done; nil otherwise.
	Result []byte
}

// MessageStore keeps the idempotency records of messages in RequestTable.
// A record is claimed with a conditional write and held under a lease, so of
// concurrent requests with one message id exactly one proceeds; it records
// the fan-out's progress, so a retry after a crash resumes without sending
// twice; and it keeps the first result for 24 hours.
type MessageStore struct {
	client Client
	table  string
}

// NewMessageStore returns a store over the RequestTable named table.
func NewMessageStore(client Client, table string) *MessageStore {
	return &MessageStore{client: client, table: table}
}

// Claim claims message id of app for lease from now. It returns the stored
// result when the message is done; a fresh claim when there is no record
// (or only one older than MessageRetention); a resumed claim, with the
// progress of the earlier attempt, when that attempt's lease has run out or
// was released; and an error wrapping push.ErrConflict while another
// request holds an unexpired lease, or when another retry took over first.
func (s *MessageStore) Claim(ctx context.Context, app, id string, now time.Time, lease time.Duration) (MessageClaim, error) {
	owner, err := newOwner()
	if err != nil {
		return MessageClaim{}, err
	}
	pk := messagePK(app, id)
	_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table),
		Item: map[string]types.AttributeValue{
			attrPK:      msgS(pk),
			msgState:    msgS(msgProcessing),
			msgOwner:    msgS(owner),
			msgLease:    msgN(now.Add(lease).UnixMilli()),
			msgAccepted: msgN(now.UnixMilli()),
			attrTTL:     msgN(now.Add(MessageRetention).Unix()),
		},
		ConditionExpression:                 aws.String("attribute_not_exists(#pk) OR #ttl < :now"),
		ExpressionAttributeNames:            map[string]string{"#pk": attrPK, "#ttl": attrTTL},
		ExpressionAttributeValues:           map[string]types.AttributeValue{":now": msgN(now.Unix())},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		return MessageClaim{Owner: owner, AcceptedAt: now}, nil
	}
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		return MessageClaim{}, fmt.Errorf("claim message %s: %w", id, msgError(err))
	}
	old := ccf.Item
	switch recipientString(old[msgState]) {
	case msgDone:
		res, ok := old[msgResult].(*types.AttributeValueMemberB)
		if !ok {
			return MessageClaim{}, fmt.Errorf("claim message %s: done without a result", id)
		}
		return MessageClaim{Result: res.Value}, nil
	case msgProcessing:
	default:
		return MessageClaim{}, fmt.Errorf("claim message %s: record in unknown state %q", id, recipientString(old[msgState]))
	}
	lu, err := callNumber(old, msgLease)
	if err != nil {
		return MessageClaim{}, fmt.Errorf("claim message %s: %w", id, err)
	}
	if now.UnixMilli() < lu {
		return MessageClaim{}, fmt.Errorf("message %s is still being processed: %w", id, push.ErrConflict)
	}
	return s.takeOver(ctx, pk, id, recipientString(old[msgOwner]), lu, owner, now, lease)
}

// takeOver claims a record whose lease has run out, on condition that it is
// still the lease that was read, so of several retries only one takes over.
func (s *MessageStore) takeOver(ctx context.Context, pk, id, oldOwner string, oldLease int64, owner string, now time.Time, lease time.Duration) (MessageClaim, error) {
	out, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(s.table),
		Key:                 map[string]types.AttributeValue{attrPK: msgS(pk)},
		UpdateExpression:    aws.String("SET #own = :own, #lu = :lu"),
		ConditionExpression: aws.String("#st = :p AND #own = :old AND #lu = :oldlu"),
		ExpressionAttributeNames: map[string]string{
			"#st": msgState, "#own": msgOwner, "#lu": msgLease,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":own":   msgS(owner),
			":lu":    msgN(now.Add(lease).UnixMilli()),
			":p":     msgS(msgProcessing),
			":old":   msgS(oldOwner),
			":oldlu": msgN(oldLease),
		},
		ReturnValues: types.ReturnValueAllNew,
	})
	var ccf *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &ccf):
		return MessageClaim{}, fmt.Errorf("message %s was taken over by another request: %w", id, push.ErrConflict)
	case err != nil:
		return MessageClaim{}, fmt.Errorf("take over message %s: %w", id, msgError(err))
	}
	at, err := callNumber(out.Attributes, msgAccepted)
	if err != nil {
		return MessageClaim{}, fmt.Errorf("take over message %s: %w", id, err)
	}
	c := MessageClaim{Owner: owner, AcceptedAt: time.UnixMilli(at).UTC(), Resumed: true}
	if ss, ok := out.Attributes[msgSent].(*types.AttributeValueMemberSS); ok {
		c.Sent = ss.Value
	}
	return c, nil
}

// MarkSent adds the envelope ids to the record's progress, on condition
// that owner still holds the claim; it returns an error wrapping
// push.ErrConflict when another request took the message over.
func (s *MessageStore) MarkSent(ctx context.Context, app, id, owner string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       map[string]types.AttributeValue{attrPK: msgS(messagePK(app, id))},
		UpdateExpression:          aws.String("ADD #sent :ids"),
		ConditionExpression:       aws.String("#own = :own"),
		ExpressionAttributeNames:  map[string]string{"#sent": msgSent, "#own": msgOwner},
		ExpressionAttributeValues: map[string]types.AttributeValue{":ids": &types.AttributeValueMemberSS{Value: ids}, ":own": msgS(owner)},
	})
	if err != nil {
		return fmt.Errorf("record progress of message %s: %w", id, msgError(err))
	}
	return nil
}

// Finish marks the message done with result, which later claims return, on
// condition that owner still holds the claim (push.ErrConflict otherwise). A
// result larger than MaxMessageResult is refused.
func (s *MessageStore) Finish(ctx context.Context, app, id, owner string, result []byte) error {
	if len(result) > MaxMessageResult {
		return fmt.Errorf("finish message %s: result of %d bytes exceeds %d", id, len(result), MaxMessageResult)
	}
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(s.table),
		Key:                 map[string]types.AttributeValue{attrPK: msgS(messagePK(app, id))},
		UpdateExpression:    aws.String("SET #st = :d, #res = :res REMOVE #own, #lu"),
		ConditionExpression: aws.String("#own = :own"),
		ExpressionAttributeNames: map[string]string{
			"#st": msgState, "#res": msgResult, "#own": msgOwner, "#lu": msgLease,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":d":   msgS(msgDone),
			":res": &types.AttributeValueMemberB{Value: result},
			":own": msgS(owner),
		},
	})
	if err != nil {
		return fmt.Errorf("finish message %s: %w", id, msgError(err))
	}
	return nil
}

// Release gives the claim up at once, so that a retry need not wait for the
// lease to run out, keeping the progress recorded. It does nothing when
// owner no longer holds the claim.
func (s *MessageStore) Release(ctx context.Context, app, id, owner string) error {
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       map[string]types.AttributeValue{attrPK: msgS(messagePK(app, id))},
		UpdateExpression:          aws.String("SET #lu = :zero"),
		ConditionExpression:       aws.String("#own = :own AND #st = :p"),
		ExpressionAttributeNames:  map[string]string{"#lu": msgLease, "#own": msgOwner, "#st": msgState},
		ExpressionAttributeValues: map[string]types.AttributeValue{":zero": msgN(0), ":own": msgS(owner), ":p": msgS(msgProcessing)},
	})
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return fmt.Errorf("release message %s: %w", id, msgError(err))
	}
	return nil
}

// newOwner returns a random owner token.
func newOwner() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("owner token: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

func msgS(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func msgN(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

// msgError translates the SDK errors of the ingest stores (messages,
// recipients, calls) into push errors at the boundary: a failed condition
// is push.ErrConflict and a refusal for load, after the SDK's own retries,
// push.ErrThrottled. Both keep the SDK error, which names no token, for the
// log.
func msgError(err error) error {
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return fmt.Errorf("%w: %w", push.ErrConflict, err)
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded":
			return fmt.Errorf("%w: %w", push.ErrThrottled, err)
		}
	}
	return err
}
