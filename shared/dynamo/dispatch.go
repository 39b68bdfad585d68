package dynamo

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/offline-push/offline-push/shared/push"
)

// Attributes the dispatch engine adds to items of StateTable (doc.go):
//
// Call item (pk "u#{app}#{user}", sk "call"), one map per device that an
// invite of the current call was handed to:
//
//	iv#{deviceId}  M {c S call id, s S "sending" | "sent" | "unsent",
//	               u N epoch ms: while sending, the deadline of the
//	               invocation that sends it; else when the state was set}
//
// A mark names its call, so marks left from an earlier call of the callee
// (the item is reused by each new call) never count for the current one.
//
// Badge item (pk "u#{app}#{user}", sk "badge"), next to the count c:
//
//	m0 … m7  S  the message id last counted in that slot
//	n0 … n7  N  the count that message got
//
// A message id hashes to one of the badgeSlots slots. Counting a message
// whose id already sits in its slot returns the count stored with it instead
// of counting again, so a retried dispatch or a second vendor for the same
// user reuses the count. A retry counts twice only when another message
// hashing to the same slot was counted in between. Setting the badge base
// (PresenceStore.SetBadge) replaces the item and so clears the slots.
const (
	inviteMarkPrefix = "iv#"
	inviteCall       = "c"
	inviteState      = "s"
	inviteAt         = "u"

	badgeSlots     = 8
	badgeSlotMsg   = "m"
	badgeSlotCount = "n"
)

// unbindAttempts bounds the rounds of Unbind when its transaction races
// with another change of the same binding.
const unbindAttempts = 4

// Invite mark states (the "s" member of an invite mark).
const (
	InviteSending = "sending"
	InviteSent    = "sent"
	InviteUnsent  = "unsent"
)

// DispatchStore holds what the dispatch engine reads and writes in
// StateTable: the token index re-read before sending, the conditional unbind
// of dead tokens, the badge count and the invite marks on call items.
type DispatchStore struct {
	client  Client
	table   string
	devices *DeviceStore
}

// NewDispatchStore returns a store over the StateTable named table.
func NewDispatchStore(client Client, table string) *DispatchStore {
	return &DispatchStore{client: client, table: table, devices: NewDeviceStore(client, table)}
}

// Bound reports, for each target, whether the token index item of its token
// names the target's user and device with the target's token kind. It reads
// one key per distinct token, with strongly consistent BatchGetItem calls of
// up to 100 keys (retrying keys left unprocessed), so an unbind or a move
// answered before the read is always seen.
func (s *DispatchStore) Bound(ctx context.Context, app string, v push.Vendor, targets []push.Target) ([]bool, error) {
	byPK := make(map[string]*TokenOwner, len(targets))
	var keys []map[string]types.AttributeValue
	for i := range targets {
		pk := tokenPK(app, v, targets[i].Token)
		if _, dup := byPK[pk]; dup {
			continue
		}
		byPK[pk] = nil
		keys = append(keys, deviceKey(pk, skOwner))
	}
	items, err := s.devices.batchGet(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("re-read token index: %w", err)
	}
	for _, item := range items {
		pk := deviceString(item[attrPK])
		o, err := decodeTokenOwner(item)
		if err != nil {
			return nil, fmt.Errorf("token index item: %w", err)
		}
		byPK[pk] = o
	}
	out := make([]bool, len(targets))
	for i := range targets {
		t := &targets[i]
		o := byPK[tokenPK(app, v, t.Token)]
		out[i] = o != nil && o.Owner == push.Owner{UserID: t.UserID, DeviceID: t.DeviceID} && o.Kind == t.TokenKind()
	}
	return out, nil
}

// Unbind removes a dead token from the target's device, in one transaction
// with its token index item, if the device's binding still holds that
// token: for an alert token the whole binding goes (with the index item of
// its VoIP token, if any), for a VoIP token only the VoIP token. A binding
// that no longer holds the token (re-registered, moved, removed) is left
// alone. A transaction that loses a race is planned again from a fresh
// read, a few times, before Unbind gives up with push.ErrConflict.
func (s *DispatchStore) Unbind(ctx context.Context, app string, v push.Vendor, t push.Target) error {
	voip := t.TokenKind() == push.TokenVoIP
	owner := push.Owner{UserID: t.UserID, DeviceID: t.DeviceID}
	key := TokenKey{Vendor: v, Token: t.Token}
	for range unbindAttempts {
		snap, err := s.devices.Load(ctx, app, []string{t.UserID}, []TokenKey{key})
		if err != nil {
			return fmt.Errorf("unbind: %w", err)
		}
		b, ok := snap.Profiles[t.UserID][t.DeviceID]
		if !ok || b.Vendor != v || (voip && b.VoIPToken != t.Token) || (!voip && b.Token != t.Token) {
			return nil
		}
		pc := ProfileChange{
			UserID: t.UserID,
			Expect: []HeldTokens{{DeviceID: t.DeviceID, Bound: true, Token: b.Token, VoIPToken: b.VoIPToken}},
		}
		var change BindingChange
		if o := snap.Tokens[key]; o != nil && o.Owner == owner && o.Kind == t.TokenKind() {
			change.Tokens = append(change.Tokens, TokenChange{Key: key, Expect: o, Delete: true})
		}
		if voip {
			pc.RemoveVoIP = []string{t.DeviceID}
		} else {
			pc.Remove = []string{t.DeviceID}
			if b.VoIPToken != "" {
				vkey := TokenKey{Vendor: v, Token: b.VoIPToken}
				vsnap, err := s.devices.Load(ctx, app, nil, []TokenKey{vkey})
				if err != nil {
					return fmt.Errorf("unbind: %w", err)
				}
				if o := vsnap.Tokens[vkey]; o != nil && o.Owner == owner && o.Kind == push.TokenVoIP {
					change.Tokens = append(change.Tokens, TokenChange{Key: vkey, Expect: o, Delete: true})
				}
			}
		}
		change.Profiles = []ProfileChange{pc}
		err = s.devices.Commit(ctx, app, change)
		if errors.Is(err, push.ErrConflict) {
			continue
		}
		if err != nil {
			return fmt.Errorf("unbind: %w", err)
		}
		return nil
	}
	return fmt.Errorf("unbind %s token %s of device %s: kept racing: %w", t.TokenKind(), push.Redact(t.Token), t.DeviceID, push.ErrConflict)
}

// CountBadge adds one to a user's badge count for messageID with one
// conditional UpdateItem, and returns the count. Asked again for the same
// message (while its slot still holds it), it changes nothing and returns
// the count that message got (see the attribute comment above).
func (s *DispatchStore) CountBadge(ctx context.Context, app, user, messageID string) (int, error) {
	h := fnv.New32a()
	h.Write([]byte(messageID))
	slot := strconv.Itoa(int(h.Sum32() % badgeSlots))
	names := map[string]string{"#c": badgeCount, "#m": badgeSlotMsg + slot, "#n": badgeSlotCount + slot}
	out, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(s.table),
		Key:                      deviceKey(userPK(app, user), skBadge),
		UpdateExpression:         aws.String("SET #c = if_not_exists(#c, :zero) + :one, #n = if_not_exists(#c, :zero) + :one, #m = :mid"),
		ConditionExpression:      aws.String("attribute_not_exists(#m) OR #m <> :mid"),
		ExpressionAttributeNames: names,
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":zero": deviceN(0), ":one": deviceN(1), ":mid": deviceS(messageID),
		},
		ReturnValues:                        types.ReturnValueUpdatedNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &ccf):
		n, err := deviceNumber(ccf.Item[names["#n"]])
		if err != nil {
			return 0, fmt.Errorf("badge of user %s: slot %s: %w", user, slot, err)
		}
		return int(n), nil
	case err != nil:
		return 0, fmt.Errorf("count badge of user %s: %w", user, msgError(err))
	}
	n, err := deviceNumber(out.Attributes[badgeCount])
	if err != nil {
		return 0, fmt.Errorf("badge of user %s: %w", user, err)
	}
	return int(n), nil
}

// InviteMark is what dispatch recorded about the current call's invite to
// one device.
type InviteMark struct {
	// State is InviteSending, InviteSent or InviteUnsent.
	State string
	// At is, while sending, the deadline of the invocation that sends the
	// invite; otherwise when the state was recorded.
	At time.Time
}

// CallStatus is a callee's call record with the invite marks of its
// current call, by device id.
type CallStatus struct {
	CallState
	Invites map[string]InviteMark
}

// Calls returns the call records of users (strongly consistent, one
// BatchGetItem per 100 users); a user without a call record, or whose
// record is past its TTL at now, is absent.
func (s *DispatchStore) Calls(ctx context.Context, app string, users []string, now time.Time) (map[string]*CallStatus, error) {
	keys := make([]map[string]types.AttributeValue, 0, len(users))
	seen := map[string]bool{}
	for _, u := range users {
		if !seen[u] {
			seen[u] = true
			keys = append(keys, callKey(app, u))
		}
	}
	items, err := s.devices.batchGet(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("read calls: %w", err)
	}
	prefix := userPK(app, "")
	out := make(map[string]*CallStatus, len(items))
	for _, item := range items {
		user, ok := strings.CutPrefix(deviceString(item[attrPK]), prefix)
		if !ok {
			continue
		}
		c, err := decodeCall(item, now)
		if err != nil {
			return nil, fmt.Errorf("call of user %s: %w", user, err)
		}
		if c == nil {
			continue
		}
		st := &CallStatus{CallState: *c, Invites: map[string]InviteMark{}}
		for name, av := range item {
			dev, ok := strings.CutPrefix(name, inviteMarkPrefix)
			if !ok {
				continue
			}
			m, ok := av.(*types.AttributeValueMemberM)
			if !ok || deviceString(m.Value[inviteCall]) != c.Record.CallID {
				continue
			}
			at, err := deviceNumber(m.Value[inviteAt])
			if err != nil {
				return nil, fmt.Errorf("call of user %s: invite mark of device %s: %w", user, dev, err)
			}
			st.Invites[dev] = InviteMark{State: deviceString(m.Value[inviteState]), At: time.UnixMilli(at).UTC()}
		}
		out[user] = st
	}
	return out, nil
}

// MarkSending marks devices as being sent call's invite until until, in one
// UpdateItem on condition that call is the user's current call and is not
// cancelled. It reports whether the condition held.
func (s *DispatchStore) MarkSending(ctx context.Context, app, user, call string, devices []string, until time.Time) (bool, error) {
	states := make(map[string]string, len(devices))
	for _, d := range devices {
		states[d] = InviteSending
	}
	ok, err := s.mark(ctx, app, user, call, states, until, "#cid = :cid AND attribute_not_exists(#cc)")
	if err != nil {
		return false, fmt.Errorf("mark invites of call %s sending for user %s: %w", call, user, err)
	}
	return ok, nil
}

// MarkDone records, by device, how sending call's invite ended
// (InviteSent or InviteUnsent), if call is still the user's current call; a
// call replaced in the meantime is left alone. A cancelled call is marked
// too: its cancel needs to know what was sent.
func (s *DispatchStore) MarkDone(ctx context.Context, app, user, call string, done map[string]string, now time.Time) error {
	for d, st := range done {
		if st != InviteSent && st != InviteUnsent {
			return fmt.Errorf("mark invite of device %s: state %q", d, st)
		}
	}
	if _, err := s.mark(ctx, app, user, call, done, now, "#cid = :cid"); err != nil {
		return fmt.Errorf("mark invites of call %s done for user %s: %w", call, user, err)
	}
	return nil
}

// mark sets the invite marks of states on the user's call item under cond,
// and reports whether cond held.
func (s *DispatchStore) mark(ctx context.Context, app, user, call string, states map[string]string, at time.Time, cond string) (bool, error) {
	if len(states) == 0 {
		return true, nil
	}
	e := newDeviceExpr()
	sets := make([]string, 0, len(states))
	for d, st := range states {
		sets = append(sets, e.name(inviteMarkPrefix+d)+" = "+e.value(&types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
			inviteCall:  deviceS(call),
			inviteState: deviceS(st),
			inviteAt:    deviceN(at.UnixMilli()),
		}}))
	}
	e.names["#cid"] = callAttrID
	e.names["#cc"] = callCancelled
	e.values[":cid"] = deviceS(call)
	if !strings.Contains(cond, "#cc") {
		delete(e.names, "#cc")
	}
	_, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       callKey(app, user),
		UpdateExpression:          aws.String("SET " + strings.Join(sets, ", ")),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  e.names,
		ExpressionAttributeValues: e.values,
	})
	var ccf *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &ccf):
		return false, nil
	case err != nil:
		return false, msgError(err)
	}
	return true, nil
}
