package dynamo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/offline-push/offline-push/shared/push"
)

// Members of a device binding map "d#{deviceId}" and attributes of a token
// index item (doc.go).
const (
	bindToken      = "t"
	bindVoIP       = "v"
	bindVendor     = "vn"
	bindCert       = "c"
	bindPlatform   = "pl"
	bindEnv        = "e"
	bindLocale     = "l"
	bindAppVersion = "av"
	bindRegistered = "r"

	ownerToken     = "tok"
	ownerUser      = "uid"
	ownerDevice    = "did"
	ownerKind      = "k"
	ownerVendor    = "vn"
	ownerRefreshed = "r"

	deviceTokenShard = "tok"
)

// deviceBatchAttempts bounds the BatchGetItem rounds spent on keys DynamoDB
// leaves unprocessed under load before the read gives up as throttled.
const deviceBatchAttempts = 8

// DeviceStore keeps device bindings in the profile items of StateTable and
// the token index that enforces the one-owner rule. Every change of bindings
// goes through Commit, one conditional transaction, so the bindings and the
// index never disagree.
type DeviceStore struct {
	client Client
	table  string
}

// NewDeviceStore returns a store over the StateTable named table.
func NewDeviceStore(client Client, table string) *DeviceStore {
	return &DeviceStore{client: client, table: table}
}

// TokenKey names a token index item within an app.
type TokenKey struct {
	Vendor push.Vendor
	Token  string
}

// TokenOwner is the content of a token index item.
type TokenOwner struct {
	Owner     push.Owner
	Kind      push.TokenKind
	Refreshed time.Time
}

// DeviceSnapshot is what Load read: bindings by user and device (a user read
// without a profile maps to an empty map) and index items by token (nil when
// the item does not exist).
type DeviceSnapshot struct {
	Profiles map[string]map[string]push.Binding
	Tokens   map[TokenKey]*TokenOwner
}

// HeldTokens is a condition on one device binding: that it exists with
// exactly these tokens, or (Bound false) that it does not exist.
type HeldTokens struct {
	DeviceID  string
	Bound     bool
	Token     string
	VoIPToken string
}

// ProfileChange is one conditional update of a user's profile item. Without
// anything to set or remove it is a pure condition check. A device may appear
// in at most one of Set, Remove and RemoveVoIP.
type ProfileChange struct {
	UserID     string
	Expect     []HeldTokens
	Set        []push.Binding
	Remove     []string
	RemoveVoIP []string
}

// TokenChange is one conditional write of a token index item: Expect is its
// content as read (nil: absent); Put replaces it, Delete removes it, and
// neither makes it a pure condition check.
type TokenChange struct {
	Key    TokenKey
	Expect *TokenOwner
	Put    *TokenOwner
	Delete bool
}

// BindingChange is applied by Commit as one transaction. Each profile and
// each token may appear once.
type BindingChange struct {
	Profiles []ProfileChange
	Tokens   []TokenChange
}

// Load reads the profiles of users and the index items of tokens with one
// strongly consistent BatchGetItem (more only for keys left unprocessed).
func (s *DeviceStore) Load(ctx context.Context, app string, users []string, tokens []TokenKey) (DeviceSnapshot, error) {
	snap := DeviceSnapshot{
		Profiles: make(map[string]map[string]push.Binding, len(users)),
		Tokens:   make(map[TokenKey]*TokenOwner, len(tokens)),
	}
	var keys []map[string]types.AttributeValue
	seen := map[string]bool{}
	add := func(pk, sk string) {
		if !seen[pk+"\x00"+sk] {
			seen[pk+"\x00"+sk] = true
			keys = append(keys, deviceKey(pk, sk))
		}
	}
	byPK := map[string]TokenKey{}
	for _, u := range users {
		add(userPK(app, u), skProfile)
		snap.Profiles[u] = map[string]push.Binding{}
	}
	for _, t := range tokens {
		pk := tokenPK(app, t.Vendor, t.Token)
		add(pk, skOwner)
		byPK[pk] = t
		snap.Tokens[t] = nil
	}
	items, err := s.batchGet(ctx, keys)
	if err != nil {
		return DeviceSnapshot{}, err
	}
	prefix := userPK(app, "")
	for _, item := range items {
		pk, sk := deviceString(item[attrPK]), deviceString(item[attrSK])
		switch {
		case sk == skProfile && strings.HasPrefix(pk, prefix):
			user := pk[len(prefix):]
			bs, err := decodeBindings(item)
			if err != nil {
				return DeviceSnapshot{}, fmt.Errorf("profile of user %s: %w", user, err)
			}
			snap.Profiles[user] = bs
		case sk == skOwner:
			t, ok := byPK[pk]
			if !ok {
				continue
			}
			o, err := decodeTokenOwner(item)
			if err != nil {
				return DeviceSnapshot{}, fmt.Errorf("token index item of %s token %s: %w", t.Vendor, push.Redact(t.Token), err)
			}
			snap.Tokens[t] = o
		}
	}
	return snap, nil
}

// Devices returns a user's bindings, ordered by device id, and presence
// leases, read together in one BatchGetItem.
func (s *DeviceStore) Devices(ctx context.Context, app, user string) ([]push.Binding, []push.Lease, error) {
	pk := userPK(app, user)
	items, err := s.batchGet(ctx, []map[string]types.AttributeValue{deviceKey(pk, skProfile), deviceKey(pk, skPresence)})
	if err != nil {
		return nil, nil, err
	}
	var bindings []push.Binding
	var leases []push.Lease
	for _, item := range items {
		switch deviceString(item[attrSK]) {
		case skProfile:
			bs, err := decodeBindings(item)
			if err != nil {
				return nil, nil, fmt.Errorf("profile of user %s: %w", user, err)
			}
			for _, b := range bs {
				bindings = append(bindings, b)
			}
		case skPresence:
			if leases, err = DecodeLeases(item); err != nil {
				return nil, nil, fmt.Errorf("presence of user %s: %w", user, err)
			}
		}
	}
	sortBindings(bindings)
	return bindings, leases, nil
}

// Commit applies c as one TransactWriteItems. It returns an error wrapping
// push.ErrConflict when a condition failed or a concurrent transaction got
// in the way (re-read and plan again), and push.ErrThrottled when DynamoDB
// kept refusing it for load.
func (s *DeviceStore) Commit(ctx context.Context, app string, c BindingChange) error {
	items := make([]types.TransactWriteItem, 0, len(c.Profiles)+len(c.Tokens))
	for _, p := range c.Profiles {
		item, err := s.profileItem(app, p)
		if err != nil {
			return err
		}
		items = append(items, item)
	}
	for _, t := range c.Tokens {
		items = append(items, s.tokenItem(app, t))
	}
	if len(items) == 0 {
		return nil
	}
	_, err := s.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	if err != nil {
		return fmt.Errorf("commit binding change: %w", deviceError(err))
	}
	return nil
}

// profileItem translates one profile change into an Update, or into a
// ConditionCheck when it changes nothing.
func (s *DeviceStore) profileItem(app string, p ProfileChange) (types.TransactWriteItem, error) {
	e := newDeviceExpr()
	var conds, sets, removes []string
	for _, h := range p.Expect {
		d := e.name(devicePrefix + h.DeviceID)
		if !h.Bound {
			conds = append(conds, "attribute_not_exists("+d+")")
			continue
		}
		c := d + "." + e.name(bindToken) + " = " + e.value(deviceS(h.Token))
		if h.VoIPToken == "" {
			c += " AND attribute_not_exists(" + d + "." + e.name(bindVoIP) + ")"
		} else {
			c += " AND " + d + "." + e.name(bindVoIP) + " = " + e.value(deviceS(h.VoIPToken))
		}
		conds = append(conds, "("+c+")")
	}
	for _, b := range p.Set {
		if b.DeviceID == "" || b.Token == "" {
			return types.TransactWriteItem{}, fmt.Errorf("binding of user %s lacks a device id or token", p.UserID)
		}
		sets = append(sets, e.name(devicePrefix+b.DeviceID)+" = "+e.value(encodeBinding(b)))
	}
	for _, d := range p.Remove {
		removes = append(removes, e.name(devicePrefix+d))
	}
	for _, d := range p.RemoveVoIP {
		removes = append(removes, e.name(devicePrefix+d)+"."+e.name(bindVoIP))
	}
	key := deviceKey(userPK(app, p.UserID), skProfile)
	var cond *string
	if len(conds) > 0 {
		cond = aws.String(strings.Join(conds, " AND "))
	}
	if len(sets) == 0 && len(removes) == 0 {
		if cond == nil {
			return types.TransactWriteItem{}, fmt.Errorf("profile change of user %s neither writes nor checks", p.UserID)
		}
		return types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
			TableName:                 aws.String(s.table),
			Key:                       key,
			ConditionExpression:       cond,
			ExpressionAttributeNames:  e.names,
			ExpressionAttributeValues: e.valuesOrNil(),
		}}, nil
	}
	var upd []string
	if len(sets) > 0 {
		upd = append(upd, "SET "+strings.Join(sets, ", "))
	}
	if len(removes) > 0 {
		upd = append(upd, "REMOVE "+strings.Join(removes, ", "))
	}
	return types.TransactWriteItem{Update: &types.Update{
		TableName:                 aws.String(s.table),
		Key:                       key,
		UpdateExpression:          aws.String(strings.Join(upd, " ")),
		ConditionExpression:       cond,
		ExpressionAttributeNames:  e.names,
		ExpressionAttributeValues: e.valuesOrNil(),
	}}, nil
}

// tokenItem translates one index change into a Put, Delete or
// ConditionCheck, conditioned on the item being as read.
func (s *DeviceStore) tokenItem(app string, t TokenChange) types.TransactWriteItem {
	pk := tokenPK(app, t.Key.Vendor, t.Key.Token)
	e := newDeviceExpr()
	var cond string
	if t.Expect == nil {
		cond = "attribute_not_exists(" + e.name(attrPK) + ")"
	} else {
		cond = e.name(ownerUser) + " = " + e.value(deviceS(t.Expect.Owner.UserID)) +
			" AND " + e.name(ownerDevice) + " = " + e.value(deviceS(t.Expect.Owner.DeviceID)) +
			" AND " + e.name(ownerKind) + " = " + e.value(deviceS(string(t.Expect.Kind)))
	}
	switch {
	case t.Put != nil:
		return types.TransactWriteItem{Put: &types.Put{
			TableName:                 aws.String(s.table),
			Item:                      encodeTokenOwner(pk, t.Key, *t.Put),
			ConditionExpression:       aws.String(cond),
			ExpressionAttributeNames:  e.names,
			ExpressionAttributeValues: e.valuesOrNil(),
		}}
	case t.Delete:
		return types.TransactWriteItem{Delete: &types.Delete{
			TableName:                 aws.String(s.table),
			Key:                       deviceKey(pk, skOwner),
			ConditionExpression:       aws.String(cond),
			ExpressionAttributeNames:  e.names,
			ExpressionAttributeValues: e.valuesOrNil(),
		}}
	default:
		return types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
			TableName:                 aws.String(s.table),
			Key:                       deviceKey(pk, skOwner),
			ConditionExpression:       aws.String(cond),
			ExpressionAttributeNames:  e.names,
			ExpressionAttributeValues: e.valuesOrNil(),
		}}
	}
}

// batchGet reads keys of StateTable, strongly consistent, in batches of 100,
// retrying unprocessed keys with jittered exponential backoff.
func (s *DeviceStore) batchGet(ctx context.Context, keys []map[string]types.AttributeValue) ([]map[string]types.AttributeValue, error) {
	var items []map[string]types.AttributeValue
	for len(keys) > 0 {
		n := min(len(keys), 100)
		chunk := keys[:n]
		keys = keys[n:]
		wait := 10 * time.Millisecond
		for attempt := 1; len(chunk) > 0; attempt++ {
			out, err := s.client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{
				RequestItems: map[string]types.KeysAndAttributes{
					s.table: {Keys: chunk, ConsistentRead: aws.Bool(true)},
				},
			})
			if err != nil {
				return nil, fmt.Errorf("read bindings: %w", deviceError(err))
			}
			items = append(items, out.Responses[s.table]...)
			chunk = out.UnprocessedKeys[s.table].Keys
			if len(chunk) == 0 {
				break
			}
			if attempt >= deviceBatchAttempts {
				return nil, fmt.Errorf("read bindings: keys still unprocessed after %d rounds: %w", attempt, push.ErrThrottled)
			}
			t := time.NewTimer(rand.N(wait) + 1)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, fmt.Errorf("read bindings: %w", ctx.Err())
			case <-t.C:
			}
			wait = min(2*wait, time.Second)
		}
	}
	return items, nil
}

// encodeBinding is the map stored under "d#{deviceId}" (doc.go); optional
// members are left out when empty, since every byte is billed on every write.
func encodeBinding(b push.Binding) types.AttributeValue {
	m := map[string]types.AttributeValue{
		bindToken:      deviceS(b.Token),
		bindVendor:     deviceS(string(b.Vendor)),
		bindCert:       deviceS(b.CertName),
		bindPlatform:   deviceS(string(b.Platform)),
		bindRegistered: deviceN(b.RegisteredAt.UnixMilli()),
	}
	opt := func(name, v string) {
		if v != "" {
			m[name] = deviceS(v)
		}
	}
	opt(bindVoIP, b.VoIPToken)
	opt(bindEnv, string(b.Environment))
	opt(bindLocale, b.Locale)
	opt(bindAppVersion, b.AppVersion)
	return &types.AttributeValueMemberM{Value: m}
}

// decodeBindings decodes every "d#{deviceId}" attribute of a profile item.
func decodeBindings(item map[string]types.AttributeValue) (map[string]push.Binding, error) {
	out := map[string]push.Binding{}
	for name, av := range item {
		dev, ok := strings.CutPrefix(name, devicePrefix)
		if !ok {
			continue
		}
		m, ok := av.(*types.AttributeValueMemberM)
		if !ok {
			return nil, fmt.Errorf("binding of device %s is not a map", dev)
		}
		b := push.Binding{
			DeviceID:    dev,
			Token:       deviceString(m.Value[bindToken]),
			VoIPToken:   deviceString(m.Value[bindVoIP]),
			Vendor:      push.Vendor(deviceString(m.Value[bindVendor])),
			CertName:    deviceString(m.Value[bindCert]),
			Platform:    push.Platform(deviceString(m.Value[bindPlatform])),
			Environment: push.Environment(deviceString(m.Value[bindEnv])),
			Locale:      deviceString(m.Value[bindLocale]),
			AppVersion:  deviceString(m.Value[bindAppVersion]),
		}
		if b.Token == "" || b.Vendor == "" {
			return nil, fmt.Errorf("binding of device %s lacks its token or vendor", dev)
		}
		r, err := deviceNumber(m.Value[bindRegistered])
		if err != nil {
			return nil, fmt.Errorf("binding of device %s: registeredAt: %w", dev, err)
		}
		b.RegisteredAt = time.UnixMilli(r).UTC()
		out[dev] = b
	}
	return out, nil
}

// encodeTokenOwner is a whole token index item, with the sparse ExpiryIndex
// attributes that let cleanup find tokens not refreshed for long.
func encodeTokenOwner(pk string, k TokenKey, o TokenOwner) map[string]types.AttributeValue {
	r := deviceN(o.Refreshed.UnixMilli())
	return map[string]types.AttributeValue{
		attrPK:         deviceS(pk),
		attrSK:         deviceS(skOwner),
		ownerToken:     deviceS(k.Token),
		ownerUser:      deviceS(o.Owner.UserID),
		ownerDevice:    deviceS(o.Owner.DeviceID),
		ownerKind:      deviceS(string(o.Kind)),
		ownerVendor:    deviceS(string(k.Vendor)),
		ownerRefreshed: r,
		attrShard:      deviceS(shard(deviceTokenShard, pk)),
		attrExpiry:     r,
	}
}

func decodeTokenOwner(item map[string]types.AttributeValue) (*TokenOwner, error) {
	o := &TokenOwner{
		Owner: push.Owner{UserID: deviceString(item[ownerUser]), DeviceID: deviceString(item[ownerDevice])},
		Kind:  push.TokenKind(deviceString(item[ownerKind])),
	}
	if o.Owner.UserID == "" || o.Owner.DeviceID == "" || o.Kind == "" {
		return nil, errors.New("owner or kind missing")
	}
	r, err := deviceNumber(item[ownerRefreshed])
	if err != nil {
		return nil, fmt.Errorf("refresh time: %w", err)
	}
	o.Refreshed = time.UnixMilli(r).UTC()
	return o, nil
}

// deviceExpr hands out expression placeholders, so that attribute names
// holding '#' (every "d#{deviceId}") and reserved words are always safe.
type deviceExpr struct {
	names  map[string]string
	byName map[string]string
	values map[string]types.AttributeValue
}

func newDeviceExpr() *deviceExpr {
	return &deviceExpr{names: map[string]string{}, byName: map[string]string{}, values: map[string]types.AttributeValue{}}
}

func (e *deviceExpr) name(attr string) string {
	if p, ok := e.byName[attr]; ok {
		return p
	}
	p := "#n" + strconv.Itoa(len(e.names))
	e.names[p] = attr
	e.byName[attr] = p
	return p
}

func (e *deviceExpr) value(v types.AttributeValue) string {
	p := ":v" + strconv.Itoa(len(e.values))
	e.values[p] = v
	return p
}

func (e *deviceExpr) valuesOrNil() map[string]types.AttributeValue {
	if len(e.values) == 0 {
		return nil
	}
	return e.values
}

// deviceError translates the SDK errors of a binding read or write into push
// errors at the boundary: a cancelled transaction whose conditions failed or
// that met a concurrent one is push.ErrConflict, a refusal for load is
// push.ErrThrottled. Both keep the SDK error, which names no token, for the
// log.
func deviceError(err error) error {
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) {
		throttled := false
		for _, r := range tce.CancellationReasons {
			switch aws.ToString(r.Code) {
			case "ConditionalCheckFailed", "TransactionConflict":
				return fmt.Errorf("%w: %w", push.ErrConflict, err)
			case "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded":
				throttled = true
			}
		}
		if throttled {
			return fmt.Errorf("%w: %w", push.ErrThrottled, err)
		}
		return err
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "TransactionConflictException", "TransactionInProgressException":
			return fmt.Errorf("%w: %w", push.ErrConflict, err)
		case "ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded":
			return fmt.Errorf("%w: %w", push.ErrThrottled, err)
		}
	}
	return err
}

// sortBindings orders bindings by device id, the order every listing uses.
func sortBindings(bs []push.Binding) {
	slices.SortFunc(bs, func(a, b push.Binding) int { return strings.Compare(a.DeviceID, b.DeviceID) })
}

func deviceKey(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: deviceS(pk), attrSK: deviceS(sk)}
}

func deviceS(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func deviceN(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

// deviceString returns the value of a string attribute, "" for any other.
func deviceString(av types.AttributeValue) string {
	if s, ok := av.(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

func deviceNumber(av types.AttributeValue) (int64, error) {
	n, ok := av.(*types.AttributeValueMemberN)
	if !ok {
		return 0, errors.New("not a number")
	}
	return strconv.ParseInt(n.Value, 10, 64)
}
