package dynamo

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/offline-push/offline-push/shared/push"
)

// Lease map members of a presence attribute "p#{deviceId}" (doc.go).
const (
	leaseEpoch    = "e"
	leaseUntil    = "u"
	leasePlatform = "pl"
	badgeCount    = "c"
)

// presenceRetention is how long a presence item outlives the newest lease
// it holds. An offline device's epoch must survive long enough that a late
// update of an old connection still meets it; a week covers any retry or
// queue delay a caller can produce.
const presenceRetention = 7 * 24 * time.Hour

// presenceMaxLease is the longest lease API.md §4 allows (leaseSeconds
// 86400). The item TTL is computed from it, see PresenceStore.PutLease.
const presenceMaxLease = 86400 * time.Second

// presenceWriteAttempts bounds the rounds of PutLease when its write races
// with another one (a lease created between two conditional writes, or a
// transaction conflict). Each round is a fresh conditional write, so giving
// up early never leaves a half-applied update.
const presenceWriteAttempts = 5

// PresenceStore keeps device presence leases and the badge base of users in
// StateTable: one presence item per user holding a lease map per device
// (so a heartbeat is one write of one small item) and one badge item.
type PresenceStore struct {
	client Client
	table  string
}

// NewPresenceStore returns a store over the StateTable named table.
func NewPresenceStore(client Client, table string) *PresenceStore {
	return &PresenceStore{client: client, table: table}
}

// PutLease writes the lease l of one device of a user if l.Epoch is not
// lower than the epoch stored for that device, and reports whether it did.
// It answers the device's lease as stored after the call: l itself when
// applied (its Platform still empty when the stored one was kept, since the
// write does not read it back), the newer stored lease otherwise.
//
// l.Until is the lease end; zero means offline. An empty l.Platform keeps
// the platform of the stored lease (an offline update may omit it). When
// badge is not nil the badge base is set to *badge in the same transaction,
// so the epoch rule covers it too: both apply or neither does. Without a
// badge the update is one UpdateItem of the presence item.
//
// The item's TTL is set to now + 8 days (the longest lease plus a week of
// retention) on every applied write. DynamoDB cannot take a maximum inside
// one update expression, but no stored lease can end later than its write
// plus the longest lease, so this value, monotonic in time, is always at
// least a week after the newest lease end, and at most a day more: the item
// disappears between 7 and 8 days after its last lease ended.
func (s *PresenceStore) PutLease(ctx context.Context, app, user string, l push.Lease, badge *int64, now time.Time) (push.Lease, bool, error) {
	key := presenceKey(app, user)
	ttl := now.Add(presenceRetention + presenceMaxLease).Unix()
	// fresh selects the write that creates the lease map; otherwise an update
	// that keeps the platform edits the stored map in place.
	fresh := false
	for range presenceWriteAttempts {
		upd := presenceWrite(l, ttl, fresh)
		var (
			old      map[string]types.AttributeValue
			failed   bool
			conflict bool
			err      error
		)
		if badge == nil {
			old, failed, err = s.update(ctx, key, upd)
		} else {
			old, failed, conflict, err = s.transact(ctx, app, user, key, upd, *badge)
		}
		if err != nil {
			return push.Lease{}, false, fmt.Errorf("put presence of device %s of user %s: %w", l.DeviceID, user, err)
		}
		if conflict {
			continue
		}
		if !failed {
			return l, true, nil
		}
		stored, ok, err := decodeLease(l.DeviceID, old)
		if err != nil {
			return push.Lease{}, false, fmt.Errorf("put presence of device %s of user %s: %w", l.DeviceID, user, err)
		}
		switch {
		case ok && stored.Epoch > l.Epoch:
			return stored, false, nil
		case !ok && !fresh:
			// The in-place edit found no lease map: create it.
			fresh = true
		case ok && fresh:
			// A lease map appeared since the last round: edit it in place.
			fresh = false
		}
	}
	return push.Lease{}, false, fmt.Errorf("put presence of device %s of user %s: write kept racing: %w", l.DeviceID, user, push.ErrConflict)
}

// presenceUpdate is one conditional update of a presence item.
type presenceUpdate struct {
	expr   string
	cond   string
	names  map[string]string
	values map[string]types.AttributeValue
}

// presenceWrite builds the update of the lease l. Three shapes exist:
//   - l names a platform: replace the lease map whole, on condition that the
//     device has no lease yet or an epoch not above l's;
//   - l keeps the platform and fresh is false: set e and u inside the stored
//     map, on condition that its epoch is not above l's (which fails when the
//     map is missing, since an update cannot set a member of a missing map);
//   - l keeps the platform and fresh is true: create the map without a
//     platform, on condition that it still does not exist.
func presenceWrite(l push.Lease, ttl int64, fresh bool) presenceUpdate {
	var until int64
	if !l.Until.IsZero() {
		until = l.Until.UnixMilli()
	}
	u := presenceUpdate{
		names: map[string]string{
			"#p":   presencePrefix + l.DeviceID,
			"#e":   leaseEpoch,
			"#ttl": attrTTL,
		},
		values: map[string]types.AttributeValue{
			":e":   presenceN(l.Epoch),
			":ttl": presenceN(ttl),
		},
	}
	lease := map[string]types.AttributeValue{
		leaseEpoch: presenceN(l.Epoch),
		leaseUntil: presenceN(until),
	}
	switch {
	case l.Platform != "":
		lease[leasePlatform] = &types.AttributeValueMemberS{Value: string(l.Platform)}
		u.values[":m"] = &types.AttributeValueMemberM{Value: lease}
		u.expr = "SET #p = :m, #ttl = :ttl"
		u.cond = "attribute_not_exists(#p) OR #p.#e <= :e"
	case fresh:
		u.values[":m"] = &types.AttributeValueMemberM{Value: lease}
		delete(u.values, ":e")
		delete(u.names, "#e")
		u.expr = "SET #p = :m, #ttl = :ttl"
		u.cond = "attribute_not_exists(#p)"
	default:
		u.names["#u"] = leaseUntil
		u.values[":u"] = presenceN(until)
		u.expr = "SET #p.#e = :e, #p.#u = :u, #ttl = :ttl"
		u.cond = "#p.#e <= :e"
	}
	return u
}

// update applies upd in one UpdateItem. failed reports a failed condition,
// with the item as it was (nil when there was none).
func (s *PresenceStore) update(ctx context.Context, key map[string]types.AttributeValue, upd presenceUpdate) (old map[string]types.AttributeValue, failed bool, err error) {
	_, err = s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           aws.String(s.table),
		Key:                                 key,
		UpdateExpression:                    aws.String(upd.expr),
		ConditionExpression:                 aws.String(upd.cond),
		ExpressionAttributeNames:            upd.names,
		ExpressionAttributeValues:           upd.values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		return nil, false, nil
	case errors.As(err, &ccf):
		return ccf.Item, true, nil
	default:
		return nil, false, presenceError(err)
	}
}

// transact applies upd and sets the badge base in one TransactWriteItems.
// failed reports a failed condition on the presence item, with the item as
// it was; conflict reports a transaction cancelled by a concurrent one,
// which is safe to try again.
func (s *PresenceStore) transact(ctx context.Context, app, user string, key map[string]types.AttributeValue, upd presenceUpdate, badge int64) (old map[string]types.AttributeValue, failed, conflict bool, err error) {
	_, err = s.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems: []types.TransactWriteItem{
			{Update: &types.Update{
				TableName:                           aws.String(s.table),
				Key:                                 key,
				UpdateExpression:                    aws.String(upd.expr),
				ConditionExpression:                 aws.String(upd.cond),
				ExpressionAttributeNames:            upd.names,
				ExpressionAttributeValues:           upd.values,
				ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
			}},
			{Put: &types.Put{
				TableName: aws.String(s.table),
				Item:      badgeItem(app, user, badge),
			}},
		},
	})
	if err == nil {
		return nil, false, false, nil
	}
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return nil, false, false, presenceError(err)
	}
	for i, r := range tce.CancellationReasons {
		switch aws.ToString(r.Code) {
		case "ConditionalCheckFailed":
			if i == 0 {
				return r.Item, true, false, nil
			}
		case "TransactionConflict":
			conflict = true
		case "ThrottlingError", "ProvisionedThroughputExceeded":
			return nil, false, false, fmt.Errorf("%w: %w", push.ErrThrottled, err)
		}
	}
	if conflict {
		return nil, false, true, nil
	}
	return nil, false, false, presenceError(err)
}

// SetBadge sets the badge base of a user to count: the unread count the
// client shows now, from which later pushes count up.
func (s *PresenceStore) SetBadge(ctx context.Context, app, user string, count int64) error {
	_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table),
		Item:      badgeItem(app, user, count),
	})
	if err != nil {
		return fmt.Errorf("set badge of user %s: %w", user, presenceError(err))
	}
	return nil
}

// Badge returns the badge count of a user, and push.ErrNotFound when none
// was ever set.
func (s *PresenceStore) Badge(ctx context.Context, app, user string) (int64, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            map[string]types.AttributeValue{attrPK: presenceS(userPK(app, user)), attrSK: presenceS(skBadge)},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return 0, fmt.Errorf("get badge of user %s: %w", user, presenceError(err))
	}
	if out.Item == nil {
		return 0, fmt.Errorf("badge of user %s: %w", user, push.ErrNotFound)
	}
	n, ok := out.Item[badgeCount].(*types.AttributeValueMemberN)
	if !ok {
		return 0, fmt.Errorf("badge of user %s: attribute %s is not a number", user, badgeCount)
	}
	c, err := strconv.ParseInt(n.Value, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("badge of user %s: %w", user, err)
	}
	return c, nil
}

// Leases returns every lease stored for a user, expired or not, ordered by
// device id; none for an unknown user. The read is strongly consistent, so
// it sees every update that was answered before it.
func (s *PresenceStore) Leases(ctx context.Context, app, user string) ([]push.Lease, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            presenceKey(app, user),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("get presence of user %s: %w", user, presenceError(err))
	}
	leases, err := DecodeLeases(out.Item)
	if err != nil {
		return nil, fmt.Errorf("presence of user %s: %w", user, err)
	}
	return leases, nil
}

// DecodeLeases decodes every lease of a presence item (as read by GetItem
// or BatchGetItem), ordered by device id. A nil item has none.
func DecodeLeases(item map[string]types.AttributeValue) ([]push.Lease, error) {
	leases := []push.Lease{}
	for name := range item {
		dev, ok := strings.CutPrefix(name, presencePrefix)
		if !ok {
			continue
		}
		l, _, err := decodeLease(dev, item)
		if err != nil {
			return nil, err
		}
		leases = append(leases, l)
	}
	sort.Slice(leases, func(i, j int) bool { return leases[i].DeviceID < leases[j].DeviceID })
	return leases, nil
}

// decodeLease decodes the lease of device from a presence item; ok is false
// when the item holds none.
func decodeLease(device string, item map[string]types.AttributeValue) (l push.Lease, ok bool, err error) {
	av, found := item[presencePrefix+device]
	if !found {
		return push.Lease{}, false, nil
	}
	m, isMap := av.(*types.AttributeValueMemberM)
	if !isMap {
		return push.Lease{}, false, fmt.Errorf("lease of device %s is not a map", device)
	}
	l.DeviceID = device
	if l.Epoch, err = leaseNumber(m.Value, leaseEpoch); err != nil {
		return push.Lease{}, false, fmt.Errorf("lease of device %s: %w", device, err)
	}
	until, err := leaseNumber(m.Value, leaseUntil)
	if err != nil {
		return push.Lease{}, false, fmt.Errorf("lease of device %s: %w", device, err)
	}
	if until > 0 {
		l.Until = time.UnixMilli(until).UTC()
	}
	if p, isStr := m.Value[leasePlatform].(*types.AttributeValueMemberS); isStr {
		l.Platform = push.Platform(p.Value)
	}
	return l, true, nil
}

// leaseNumber reads the integer member name of a lease map; absent reads 0.
func leaseNumber(m map[string]types.AttributeValue, name string) (int64, error) {
	av, found := m[name]
	if !found {
		return 0, nil
	}
	n, ok := av.(*types.AttributeValueMemberN)
	if !ok {
		return 0, fmt.Errorf("member %s is not a number", name)
	}
	v, err := strconv.ParseInt(n.Value, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("member %s: %w", name, err)
	}
	return v, nil
}

func presenceKey(app, user string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: presenceS(userPK(app, user)), attrSK: presenceS(skPresence)}
}

func badgeItem(app, user string, count int64) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrPK:     presenceS(userPK(app, user)),
		attrSK:     presenceS(skBadge),
		badgeCount: presenceN(count),
	}
}

func presenceS(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func presenceN(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

// presenceError marks an SDK error that means DynamoDB kept refusing the
// request for load (after the SDK's own retries) as push.ErrThrottled, so
// that the caller is told to retry rather than shown a fault of ours.
func presenceError(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded":
			return fmt.Errorf("%w: %w", push.ErrThrottled, err)
		}
	}
	return err
}
