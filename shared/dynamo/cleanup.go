package dynamo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/offline-push/offline-push/shared/push"
)

// Token index and binding attribute names read by cleanup (doc.go).
const (
	cleanupIxToken   = "tok"
	cleanupIxUser    = "uid"
	cleanupIxDevice  = "did"
	cleanupIxKind    = "k"
	cleanupIxVendor  = "vn"
	cleanupIxRefresh = "r"
	cleanupBindToken = "t"
	cleanupBindVoIP  = "v"
	tokenShardKind   = "tok"
)

// CleanupPageSize is how many ExpiryIndex entries one Query page returns.
// It also bounds the keys of the follow-up BatchGetItem of token records,
// which DynamoDB caps at 100.
const CleanupPageSize = 100

// CleanupStore finds expired records through the sparse ExpiryIndex and
// removes them with conditional writes, so a record changed since it was
// read is left alone. Its cost grows with the expired records, never with
// the table.
type CleanupStore struct {
	client Client
	table  string
}

// NewCleanupStore returns a store over the StateTable named table.
func NewCleanupStore(client Client, table string) *CleanupStore {
	return &CleanupStore{client: client, table: table}
}

// DNDExpiry is one ExpiryIndex entry of a DND duration: the item that holds
// it and the end instant read from the index.
type DNDExpiry struct {
	PK, SK string
	Until  int64 // epoch ms, as read; the removal is conditioned on it
}

// StaleToken is a token index record whose refresh time is older than the
// bound, read together with the binding of its owner.
type StaleToken struct {
	PK        string // the index item's key
	App       string
	Vendor    push.Vendor
	Kind      push.TokenKind
	Token     string
	UserID    string
	DeviceID  string
	Refreshed int64 // epoch ms, as read; the removal is conditioned on it
	// Bound reports whether the owner's binding still holds Token. When it
	// does not, the index record is an orphan.
	Bound bool
	// BoundVoIP is the binding's VoIP token when Kind is alert and Bound:
	// removing the binding also removes that token's index record.
	BoundVoIP string
}

// Shards returns how many ExpiryIndex partitions each record kind has.
func (s *CleanupStore) Shards() int { return Shards }

// ExpiredDND returns one page of DND durations of shard that ended before
// before, and the cursor of the next page ("" after the last page).
func (s *CleanupStore) ExpiredDND(ctx context.Context, shard int, before time.Time, cursor string) ([]DNDExpiry, string, error) {
	items, next, err := s.query(ctx, dndShardKind, shard, before, cursor)
	if err != nil {
		return nil, "", fmt.Errorf("query expired DND of shard %d: %w", shard, err)
	}
	out := make([]DNDExpiry, 0, len(items))
	for _, it := range items {
		pk, sk := cleanupString(it, attrPK), cleanupString(it, attrSK)
		until, err := settingsNumber(it[attrExpiry], attrExpiry)
		if err != nil || pk == "" || sk == "" {
			return nil, "", fmt.Errorf("query expired DND of shard %d: malformed index entry %q/%q", shard, pk, sk)
		}
		out = append(out, DNDExpiry{PK: pk, SK: sk, Until: until})
	}
	return out, next, nil
}

// ClearDND removes an expired duration: du with its index keys, on the
// condition that du still holds the value read, so a duration set anew since
// then survives (push.ErrConflict). A conversation item left with no remind
// type is deleted instead, and deleted reports so.
func (s *CleanupStore) ClearDND(ctx context.Context, e DNDExpiry) (deleted bool, err error) {
	key := settingsKey(e.PK, e.SK)
	names := map[string]string{"#du": attrDNDUntil, "#xs": attrShard, "#xu": attrExpiry}
	values := map[string]types.AttributeValue{":du": settingsN(e.Until)}
	if strings.HasPrefix(e.SK, convSKPrefix) {
		_, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
			TableName:                 aws.String(s.table),
			Key:                       key,
			ConditionExpression:       aws.String("#du = :du AND attribute_not_exists(#rt)"),
			ExpressionAttributeNames:  map[string]string{"#du": attrDNDUntil, "#rt": attrRemindType},
			ExpressionAttributeValues: values,
		})
		if err == nil {
			return true, nil
		}
		if !cleanupConditionFailed(err) {
			return false, fmt.Errorf("delete expired conversation setting %s/%s: %w", e.PK, e.SK, settingsError(err))
		}
		// The item has a remind type to keep, or the duration changed; the
		// update below tells which.
	}
	_, err = s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       key,
		UpdateExpression:          aws.String("REMOVE #du, #xs, #xu"),
		ConditionExpression:       aws.String("#du = :du"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	if err != nil {
		return false, fmt.Errorf("clear expired DND of %s/%s: %w", e.PK, e.SK, settingsError(err))
	}
	return false, nil
}

// StaleTokens returns one page of token records of shard refreshed before
// before, each read with its owner's binding, and the cursor of the next
// page. Reads are bounded by the page: one Query, then one BatchGetItem of
// the index items and one of the owners' profiles (only the bindings
// concerned). Records refreshed or removed since the index was read are left
// out.
func (s *CleanupStore) StaleTokens(ctx context.Context, shard int, before time.Time, cursor string) ([]StaleToken, string, error) {
	entries, next, err := s.query(ctx, tokenShardKind, shard, before, cursor)
	if err != nil {
		return nil, "", fmt.Errorf("query stale tokens of shard %d: %w", shard, err)
	}
	if len(entries) == 0 {
		return nil, next, nil
	}
	keys := make([]map[string]types.AttributeValue, 0, len(entries))
	seen := map[string]bool{}
	for _, it := range entries {
		pk := cleanupString(it, attrPK)
		if pk == "" || seen[pk] {
			continue
		}
		seen[pk] = true
		keys = append(keys, settingsKey(pk, skOwner))
	}
	got, err := settingsBatchGet(ctx, s.client, map[string]types.KeysAndAttributes{s.table: {
		Keys:                 keys,
		ProjectionExpression: aws.String("#pk, #tok, #uid, #did, #k, #vn, #r"),
		ExpressionAttributeNames: map[string]string{
			"#pk": attrPK, "#tok": cleanupIxToken, "#uid": cleanupIxUser, "#did": cleanupIxDevice,
			"#k": cleanupIxKind, "#vn": cleanupIxVendor, "#r": cleanupIxRefresh,
		},
	}})
	if err != nil {
		return nil, "", fmt.Errorf("read stale token records of shard %d: %w", shard, err)
	}
	var recs []StaleToken
	for _, it := range got[s.table] {
		t, ok := decodeStaleToken(it)
		if !ok || t.Refreshed >= before.UnixMilli() {
			continue // malformed, or refreshed since the index was read
		}
		recs = append(recs, t)
	}
	if len(recs) == 0 {
		return nil, next, nil
	}
	if err := s.readBindings(ctx, recs); err != nil {
		return nil, "", fmt.Errorf("read bindings of stale tokens of shard %d: %w", shard, err)
	}
	return recs, next, nil
}

// readBindings fills Bound and BoundVoIP from the owners' profile items,
// projecting only the bindings of the devices concerned.
func (s *CleanupStore) readBindings(ctx context.Context, recs []StaleToken) error {
	names := map[string]string{"#pk": attrPK}
	proj := []string{"#pk"}
	devName := map[string]string{}
	var keys []map[string]types.AttributeValue
	seen := map[string]bool{}
	for _, r := range recs {
		attr := devicePrefix + r.DeviceID
		if _, ok := devName[attr]; !ok {
			n := "#d" + strconv.Itoa(len(devName))
			devName[attr] = n
			names[n] = attr
			proj = append(proj, n)
		}
		pk := userPK(r.App, r.UserID)
		if !seen[pk] {
			seen[pk] = true
			keys = append(keys, settingsKey(pk, skProfile))
		}
	}
	got, err := settingsBatchGet(ctx, s.client, map[string]types.KeysAndAttributes{s.table: {
		Keys:                     keys,
		ProjectionExpression:     aws.String(strings.Join(proj, ", ")),
		ExpressionAttributeNames: names,
	}})
	if err != nil {
		return err
	}
	profiles := make(map[string]map[string]types.AttributeValue, len(got[s.table]))
	for _, it := range got[s.table] {
		profiles[cleanupString(it, attrPK)] = it
	}
	for i := range recs {
		r := &recs[i]
		b, _ := profiles[userPK(r.App, r.UserID)][devicePrefix+r.DeviceID].(*types.AttributeValueMemberM)
		if b == nil {
			continue
		}
		switch r.Kind {
		case push.TokenAlert:
			r.Bound = cleanupString(b.Value, cleanupBindToken) == r.Token
			if r.Bound {
				r.BoundVoIP = cleanupString(b.Value, cleanupBindVoIP)
			}
		case push.TokenVoIP:
			r.Bound = cleanupString(b.Value, cleanupBindVoIP) == r.Token
		}
	}
	return nil
}

// RemoveStaleToken removes a stale token. When its binding still holds it,
// the binding (alert: the whole device binding and its VoIP token's record;
// voip: only the binding's VoIP token) and the index record go in one
// transaction, each write conditioned on what was read; otherwise only the
// orphan index record is deleted, and orphan reports so. A record changed
// since it was read is left alone with push.ErrConflict.
func (s *CleanupStore) RemoveStaleToken(ctx context.Context, t StaleToken) (orphan bool, err error) {
	ixDelete := &types.Delete{
		TableName:                 aws.String(s.table),
		Key:                       settingsKey(t.PK, skOwner),
		ConditionExpression:       aws.String("#r = :r"),
		ExpressionAttributeNames:  map[string]string{"#r": cleanupIxRefresh},
		ExpressionAttributeValues: map[string]types.AttributeValue{":r": settingsN(t.Refreshed)},
	}
	if !t.Bound {
		_, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
			TableName:                 ixDelete.TableName,
			Key:                       ixDelete.Key,
			ConditionExpression:       ixDelete.ConditionExpression,
			ExpressionAttributeNames:  ixDelete.ExpressionAttributeNames,
			ExpressionAttributeValues: ixDelete.ExpressionAttributeValues,
		})
		if err != nil {
			return false, fmt.Errorf("delete orphan token record …%s: %w", push.Redact(t.Token), settingsError(err))
		}
		return true, nil
	}
	bindNames := map[string]string{"#d": devicePrefix + t.DeviceID}
	var update, cond string
	switch t.Kind {
	case push.TokenAlert:
		bindNames["#t"] = cleanupBindToken
		update, cond = "REMOVE #d", "#d.#t = :tok"
	case push.TokenVoIP:
		bindNames["#t"] = cleanupBindVoIP
		update, cond = "REMOVE #d.#t", "#d.#t = :tok"
	default:
		return false, fmt.Errorf("remove stale token …%s: unknown kind %q", push.Redact(t.Token), t.Kind)
	}
	items := []types.TransactWriteItem{
		{Update: &types.Update{
			TableName:                 aws.String(s.table),
			Key:                       settingsKey(userPK(t.App, t.UserID), skProfile),
			UpdateExpression:          aws.String(update),
			ConditionExpression:       aws.String(cond),
			ExpressionAttributeNames:  bindNames,
			ExpressionAttributeValues: map[string]types.AttributeValue{":tok": settingsS(t.Token)},
		}},
		{Delete: ixDelete},
	}
	if t.Kind == push.TokenAlert && t.BoundVoIP != "" {
		// The VoIP token's record goes with the binding, unless it has
		// moved to another owner meanwhile.
		items = append(items, types.TransactWriteItem{Delete: &types.Delete{
			TableName:                aws.String(s.table),
			Key:                      settingsKey(tokenPK(t.App, t.Vendor, t.BoundVoIP), skOwner),
			ConditionExpression:      aws.String("attribute_not_exists(#pk) OR (#uid = :uid AND #did = :did)"),
			ExpressionAttributeNames: map[string]string{"#pk": attrPK, "#uid": cleanupIxUser, "#did": cleanupIxDevice},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":uid": settingsS(t.UserID), ":did": settingsS(t.DeviceID),
			},
		}})
	}
	if _, err := s.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items}); err != nil {
		return false, fmt.Errorf("remove stale token …%s of device %s of user %s: %w", push.Redact(t.Token), t.DeviceID, t.UserID, settingsError(err))
	}
	return false, nil
}

// query reads one page of the ExpiryIndex partition "{kind}#{shard}" for
// entries whose xu lies before the bound.
func (s *CleanupStore) query(ctx context.Context, kind string, shard int, before time.Time, cursor string) ([]map[string]types.AttributeValue, string, error) {
	start, err := decodeCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	out, err := s.client.Query(ctx, &dynamodb.QueryInput{
		TableName:                aws.String(s.table),
		IndexName:                aws.String(expiryIndex),
		KeyConditionExpression:   aws.String("#xs = :xs AND #xu < :before"),
		ExpressionAttributeNames: map[string]string{"#xs": attrShard, "#xu": attrExpiry},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":xs":     settingsS(kind + "#" + strconv.Itoa(shard)),
			":before": settingsN(before.UnixMilli()),
		},
		ExclusiveStartKey: start,
		Limit:             aws.Int32(CleanupPageSize),
	})
	if err != nil {
		return nil, "", settingsError(err)
	}
	next, err := encodeCursor(out.LastEvaluatedKey)
	if err != nil {
		return nil, "", err
	}
	return out.Items, next, nil
}

// encodeCursor turns a LastEvaluatedKey (string and number attributes only,
// as the key schema has) into an opaque string for the use case.
func encodeCursor(key map[string]types.AttributeValue) (string, error) {
	if len(key) == 0 {
		return "", nil
	}
	m := make(map[string][2]string, len(key))
	for k, v := range key {
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			m[k] = [2]string{"S", v.Value}
		case *types.AttributeValueMemberN:
			m[k] = [2]string{"N", v.Value}
		default:
			return "", fmt.Errorf("encode cursor: key attribute %s is neither S nor N", k)
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("encode cursor: %w", err)
	}
	return string(b), nil
}

func decodeCursor(c string) (map[string]types.AttributeValue, error) {
	if c == "" {
		return nil, nil
	}
	var m map[string][2]string
	if err := json.Unmarshal([]byte(c), &m); err != nil {
		return nil, fmt.Errorf("decode cursor: %w", err)
	}
	key := make(map[string]types.AttributeValue, len(m))
	for k, v := range m {
		switch v[0] {
		case "S":
			key[k] = settingsS(v[1])
		case "N":
			key[k] = &types.AttributeValueMemberN{Value: v[1]}
		default:
			return nil, fmt.Errorf("decode cursor: attribute %s has type %q", k, v[0])
		}
	}
	return key, nil
}

// decodeStaleToken reads a token index item; ok is false when it lacks a
// field cleanup needs.
func decodeStaleToken(it map[string]types.AttributeValue) (StaleToken, bool) {
	t := StaleToken{
		PK:       cleanupString(it, attrPK),
		Token:    cleanupString(it, cleanupIxToken),
		UserID:   cleanupString(it, cleanupIxUser),
		DeviceID: cleanupString(it, cleanupIxDevice),
		Kind:     push.TokenKind(cleanupString(it, cleanupIxKind)),
		Vendor:   push.Vendor(cleanupString(it, cleanupIxVendor)),
	}
	r, err := settingsNumber(it[cleanupIxRefresh], cleanupIxRefresh)
	if err != nil {
		return StaleToken{}, false
	}
	t.Refreshed = r
	// pk is "t#{app}#{vendor}#{hash}"; app ids hold no '#'.
	parts := strings.Split(t.PK, "#")
	if len(parts) != 4 || parts[0] != "t" || t.Token == "" || t.UserID == "" || t.DeviceID == "" {
		return StaleToken{}, false
	}
	t.App = parts[1]
	if t.Vendor == "" {
		t.Vendor = push.Vendor(parts[2])
	}
	if t.Kind != push.TokenAlert && t.Kind != push.TokenVoIP {
		return StaleToken{}, false
	}
	return t, true
}

func cleanupString(m map[string]types.AttributeValue, name string) string {
	if v, ok := m[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

// cleanupConditionFailed reports whether a write failed only on its
// condition.
func cleanupConditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}
