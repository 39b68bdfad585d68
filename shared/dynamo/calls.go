package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/offline-push/offline-push/shared/push"
)

// Attributes of a call item (pk "u#{app}#{user}", sk "call"):
//
//	cid  the current call's id (S)
//	at   when its invite was accepted, epoch ms (N)
//	ex   when it stops ringing, epoch ms (N)
//	cc   the message id of the call_cancel that cancelled it (S); absent
//	     while the call stands
//	dv   the devices the invite was decided to go to (L of M {d, vn, c, k}:
//	     device id, vendor, certName, token kind)
//	ttl  ex + callRetention, epoch seconds
const (
	callAttrID    = "cid"
	callAccepted  = "at"
	callExpires   = "ex"
	callCancelled = "cc"
	callDevices   = "dv"

	callDevice = "d"
	callVendor = "vn"
	callCert   = "c"
	callKind   = "k"
)

// callRetention is how long a call record outlives its call: a cancel or a
// late dispatch of the invite still finds it for a day, then DynamoDB TTL
// removes it. Readers treat a record past its TTL as absent at once.
const callRetention = 24 * time.Hour

// CallState is a callee's call record as stored.
type CallState struct {
	Record push.CallRecord
	// CancelledBy is the message id of the call_cancel that cancelled the
	// call; empty while it stands. Record.Cancelled is CancelledBy != "".
	CancelledBy string
	// Devices are the devices the invite was decided to go to.
	Devices []push.CallDevice
}

// CallStore keeps each callee's current call (POLICY.md rule 26) in the
// "call" item of StateTable: one conditional UpdateItem per callee and
// signal, so concurrent invites of different calls settle on the newest.
type CallStore struct {
	client Client
	table  string
}

// NewCallStore returns a store over the StateTable named table.
func NewCallStore(client Client, table string) *CallStore {
	return &CallStore{client: client, table: table}
}

// Ring makes rec the callee's current call, storing devices as the devices
// its invite goes to, unless a newer call is stored: one accepted later, or
// at the same instant with a greater call id (the order policy uses). It
// reports whether rec is the current call afterwards. Ringing the current
// call again (a retried invite) replaces its devices and keeps a
// cancellation: a cancelled call is not revived by its own late invite, and
// dispatch drops that invite as call_cancelled. A record past its TTL counts
// as none.
func (s *CallStore) Ring(ctx context.Context, app, user string, rec push.CallRecord, devices []push.CallDevice, now time.Time) (bool, error) {
	ttl := rec.ExpiresAt.Add(callRetention).Unix()
	dv := make([]types.AttributeValue, len(devices))
	for i, d := range devices {
		dv[i] = &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
			callDevice: callS(d.DeviceID),
			callVendor: callS(string(d.Vendor)),
			callCert:   callS(d.CertName),
			callKind:   callS(string(d.Kind)),
		}}
	}
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:        aws.String(s.table),
		Key:              callKey(app, user),
		UpdateExpression: aws.String("SET #cid = :cid, #at = :at, #ex = :ex, #dv = :dv, #ttl = :ttl REMOVE #cc"),
		ConditionExpression: aws.String("attribute_not_exists(#cid) OR #ttl < :now" +
			" OR #at < :at OR (#at = :at AND #cid < :cid)" +
			" OR (#cid = :cid AND attribute_not_exists(#cc))"),
		ExpressionAttributeNames: map[string]string{
			"#cid": callAttrID, "#at": callAccepted, "#ex": callExpires, "#dv": callDevices,
			"#cc": callCancelled, "#ttl": attrTTL,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":cid": callS(rec.CallID),
			":at":  callN(rec.AcceptedAt.UnixMilli()),
			":ex":  callN(rec.ExpiresAt.UnixMilli()),
			":dv":  &types.AttributeValueMemberL{Value: dv},
			":ttl": callN(ttl),
			":now": callN(now.Unix()),
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &ccf):
		// Either a newer call is stored, or this very call was cancelled
		// already; in the second case it is still the current call.
		return recipientString(ccf.Item[callAttrID]) == rec.CallID, nil
	default:
		return false, fmt.Errorf("ring call %s for user %s: %w", rec.CallID, user, msgError(err))
	}
}

// Cancel marks call cancelled by the call_cancel messageID if it is the
// callee's current call, and returns the devices its invite went to; ok is
// false when another call (or none) is current, or when a different cancel
// message cancelled it before. A retry of the same cancel message finds its
// own mark and gets the devices again, so a cancel that crashed mid-way can
// finish.
func (s *CallStore) Cancel(ctx context.Context, app, user, call, messageID string) ([]push.CallDevice, bool, error) {
	out, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(s.table),
		Key:                 callKey(app, user),
		UpdateExpression:    aws.String("SET #cc = :mid"),
		ConditionExpression: aws.String("#cid = :cid AND (attribute_not_exists(#cc) OR #cc = :mid)"),
		ExpressionAttributeNames: map[string]string{
			"#cid": callAttrID, "#cc": callCancelled,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":cid": callS(call),
			":mid": callS(messageID),
		},
		ReturnValues: types.ReturnValueAllNew,
	})
	var ccf *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &ccf):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("cancel call %s for user %s: %w", call, user, msgError(err))
	}
	devices, err := decodeCallDevices(out.Attributes)
	if err != nil {
		return nil, false, fmt.Errorf("cancel call %s for user %s: %w", call, user, err)
	}
	return devices, true, nil
}

// Call returns a callee's call record, strongly consistent; nil when there
// is none or its TTL has passed at now.
func (s *CallStore) Call(ctx context.Context, app, user string, now time.Time) (*CallState, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            callKey(app, user),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("read call of user %s: %w", user, msgError(err))
	}
	c, err := decodeCall(out.Item, now)
	if err != nil {
		return nil, fmt.Errorf("call of user %s: %w", user, err)
	}
	return c, nil
}

// decodeCall decodes a call item; nil for a missing item or one past its TTL.
func decodeCall(item map[string]types.AttributeValue, now time.Time) (*CallState, error) {
	if item == nil {
		return nil, nil
	}
	if ttl, err := callNumber(item, attrTTL); err == nil && ttl > 0 && ttl < now.Unix() {
		return nil, nil
	}
	id := recipientString(item[callAttrID])
	if id == "" {
		return nil, errors.New("call item without a call id")
	}
	at, err := callNumber(item, callAccepted)
	if err != nil {
		return nil, err
	}
	ex, err := callNumber(item, callExpires)
	if err != nil {
		return nil, err
	}
	devices, err := decodeCallDevices(item)
	if err != nil {
		return nil, err
	}
	cc := recipientString(item[callCancelled])
	return &CallState{
		Record: push.CallRecord{
			CallID:     id,
			AcceptedAt: time.UnixMilli(at).UTC(),
			ExpiresAt:  time.UnixMilli(ex).UTC(),
			Cancelled:  cc != "",
		},
		CancelledBy: cc,
		Devices:     devices,
	}, nil
}

func decodeCallDevices(item map[string]types.AttributeValue) ([]push.CallDevice, error) {
	l, ok := item[callDevices].(*types.AttributeValueMemberL)
	if !ok {
		return nil, nil
	}
	out := make([]push.CallDevice, 0, len(l.Value))
	for i, av := range l.Value {
		m, ok := av.(*types.AttributeValueMemberM)
		if !ok {
			return nil, fmt.Errorf("call device %d is not a map", i)
		}
		d := push.CallDevice{
			DeviceID: recipientString(m.Value[callDevice]),
			Vendor:   push.Vendor(recipientString(m.Value[callVendor])),
			CertName: recipientString(m.Value[callCert]),
			Kind:     push.TokenKind(recipientString(m.Value[callKind])),
		}
		if d.DeviceID == "" || d.Vendor == "" {
			return nil, fmt.Errorf("call device %d lacks its device id or vendor", i)
		}
		out = append(out, d)
	}
	return out, nil
}

func callNumber(item map[string]types.AttributeValue, name string) (int64, error) {
	n, ok := item[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, fmt.Errorf("attribute %s is not a number", name)
	}
	v, err := strconv.ParseInt(n.Value, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("attribute %s: %w", name, err)
	}
	return v, nil
}

func callKey(app, user string) map[string]types.AttributeValue {
	return recipientKey(userPK(app, user), skCall)
}

func callS(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func callN(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}
