package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/offline-push/offline-push/shared/push"
)

// Settings attribute names (doc.go). Short: every byte is billed on every
// write of the profile item, heartbeats excluded.
const (
	attrRemindType  = "rt"
	attrWindow      = "dw"
	attrDNDUntil    = "du"
	attrLanguage    = "lang"
	attrShowPreview = "sp"
	attrMultiDevice = "mdp"
	attrMobilePush  = "mpd"

	windowStart = "s"
	windowEnd   = "e"
	windowZone  = "z"

	convSKPrefix = "conv#"
	dndShardKind = "dnd"
)

// settingsAttrs are the app-level settings attributes of a profile item.
var settingsAttrs = []string{attrRemindType, attrWindow, attrDNDUntil, attrLanguage, attrShowPreview, attrMultiDevice, attrMobilePush}

// SettingOp says what a patch does to one stored setting.
type SettingOp int

// Operations on one stored setting.
const (
	SettingKeep   SettingOp = iota // leave the attribute as it is
	SettingSet                     // write Value
	SettingRemove                  // remove the attribute, so it reads as its default
)

// SettingChange is what a patch does to one setting of type T.
type SettingChange[T any] struct {
	Op    SettingOp
	Value T
}

// SettingsPatch is a validated change of app-level settings. A DND duration
// is given by its end instant; setting it also enters the item into
// ExpiryIndex, and removing it takes the item out.
type SettingsPatch struct {
	RemindType                  SettingChange[push.RemindType]
	Window                      SettingChange[push.DNDWindow]
	DNDUntil                    SettingChange[time.Time]
	Language                    SettingChange[string]
	ShowPreview                 SettingChange[bool]
	MultiDevicePolicy           SettingChange[push.MultiDevicePolicy]
	MobilePushWhenDesktopOnline SettingChange[bool]
}

// ConversationPatch is a validated change of a conversation's own settings.
type ConversationPatch struct {
	RemindType SettingChange[push.RemindType]
	DNDUntil   SettingChange[time.Time]
}

// ConversationKey names one conversation of a user.
type ConversationKey struct {
	Type push.ConversationType
	ID   string
}

// settingsBatchAttempts bounds the rounds of BatchGetItem spent on keys
// DynamoDB leaves unprocessed under load before the read gives up as
// throttled.
const settingsBatchAttempts = 8

// SettingsStore keeps push settings in StateTable: app-level settings as
// top-level attributes of the profile item, next to the device bindings it
// never touches, and one item per conversation with its own setting.
type SettingsStore struct {
	client Client
	table  string
}

// NewSettingsStore returns a store over the StateTable named table.
func NewSettingsStore(client Client, table string) *SettingsStore {
	return &SettingsStore{client: client, table: table}
}

// AppSettings returns a user's stored app-level settings with defaults
// applied. DNDUntil is as stored: the caller checks it against its clock.
func (s *SettingsStore) AppSettings(ctx context.Context, app, user string) (push.Settings, error) {
	names := map[string]string{}
	proj := make([]string, len(settingsAttrs))
	for i, a := range settingsAttrs {
		proj[i] = "#a" + strconv.Itoa(i)
		names[proj[i]] = a
	}
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:                aws.String(s.table),
		Key:                      settingsKey(userPK(app, user), skProfile),
		ProjectionExpression:     aws.String(strings.Join(proj, ", ")),
		ExpressionAttributeNames: names,
		ConsistentRead:           aws.Bool(true), // a GET right after a PATCH sees it
	})
	if err != nil {
		return push.Settings{}, fmt.Errorf("read settings of user %s: %w", user, settingsError(err))
	}
	return DecodeSettings(out.Item)
}

// PatchAppSettings applies p to the profile item in one UpdateItem, leaving
// its device bindings alone, and returns the settings as stored after it.
// An empty patch is refused: an update must name at least one attribute.
func (s *SettingsStore) PatchAppSettings(ctx context.Context, app, user string, p SettingsPatch) (push.Settings, error) {
	pk := userPK(app, user)
	var u settingsUpdate
	settingsApply(&u, attrRemindType, p.RemindType, func(v push.RemindType) types.AttributeValue { return settingsS(string(v)) })
	settingsApply(&u, attrWindow, p.Window, encodeWindow)
	settingsApplyDND(&u, pk, skProfile, p.DNDUntil)
	settingsApply(&u, attrLanguage, p.Language, settingsS)
	settingsApply(&u, attrShowPreview, p.ShowPreview, settingsBool)
	settingsApply(&u, attrMultiDevice, p.MultiDevicePolicy, func(v push.MultiDevicePolicy) types.AttributeValue { return settingsS(string(v)) })
	settingsApply(&u, attrMobilePush, p.MobilePushWhenDesktopOnline, settingsBool)
	if u.empty() {
		return push.Settings{}, errors.New("patch settings: the patch changes nothing")
	}
	out, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       settingsKey(pk, skProfile),
		UpdateExpression:          aws.String(u.expression()),
		ExpressionAttributeNames:  u.names,
		ExpressionAttributeValues: u.valuesOrNil(),
		ReturnValues:              types.ReturnValueAllNew,
	})
	if err != nil {
		return push.Settings{}, fmt.Errorf("patch settings of user %s: %w", user, settingsError(err))
	}
	return DecodeSettings(out.Attributes)
}

// ConversationSettings returns a conversation's own stored settings; the
// zero value when it has none. DNDUntil is as stored.
func (s *SettingsStore) ConversationSettings(ctx context.Context, app, user string, c ConversationKey) (push.ConversationSettings, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:                aws.String(s.table),
		Key:                      settingsKey(userPK(app, user), convSK(string(c.Type), c.ID)),
		ProjectionExpression:     aws.String("#rt, #du"),
		ExpressionAttributeNames: map[string]string{"#rt": attrRemindType, "#du": attrDNDUntil},
		ConsistentRead:           aws.Bool(true),
	})
	if err != nil {
		return push.ConversationSettings{}, fmt.Errorf("read settings of %s/%s for user %s: %w", c.Type, c.ID, user, settingsError(err))
	}
	return DecodeConversationSettings(out.Item)
}

// PatchConversationSettings applies p in one UpdateItem. When the item is
// left with nothing in force at now (no remind type, and no duration or an
// expired one), it is deleted, conditioned on still being so, so a
// concurrent PATCH that set something survives.
func (s *SettingsStore) PatchConversationSettings(ctx context.Context, app, user string, c ConversationKey, p ConversationPatch, now time.Time) (push.ConversationSettings, error) {
	pk, sk := userPK(app, user), convSK(string(c.Type), c.ID)
	var u settingsUpdate
	settingsApply(&u, attrRemindType, p.RemindType, func(v push.RemindType) types.AttributeValue { return settingsS(string(v)) })
	settingsApplyDND(&u, pk, sk, p.DNDUntil)
	if u.empty() {
		return push.ConversationSettings{}, errors.New("patch conversation settings: the patch changes nothing")
	}
	out, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       settingsKey(pk, sk),
		UpdateExpression:          aws.String(u.expression()),
		ExpressionAttributeNames:  u.names,
		ExpressionAttributeValues: u.valuesOrNil(),
		ReturnValues:              types.ReturnValueAllNew,
	})
	if err != nil {
		return push.ConversationSettings{}, fmt.Errorf("patch settings of %s/%s for user %s: %w", c.Type, c.ID, user, settingsError(err))
	}
	cs, err := DecodeConversationSettings(out.Attributes)
	if err != nil {
		return push.ConversationSettings{}, err
	}
	if !cs.Inherits(now) {
		return cs, nil
	}
	_, err = s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                aws.String(s.table),
		Key:                      settingsKey(pk, sk),
		ConditionExpression:      aws.String("attribute_not_exists(#rt) AND (attribute_not_exists(#du) OR #du <= :now)"),
		ExpressionAttributeNames: map[string]string{"#rt": attrRemindType, "#du": attrDNDUntil},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":now": settingsN(now.UnixMilli()),
		},
	})
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return push.ConversationSettings{}, fmt.Errorf("delete empty settings of %s/%s for user %s: %w", c.Type, c.ID, user, settingsError(err))
	}
	// A failed condition means a concurrent write set something since: that
	// write's answer is the one that tells its caller; this one stands as
	// applied.
	return cs, nil
}

// DeleteConversationSettings deletes a conversation's own settings; it
// succeeds when there were none.
func (s *SettingsStore) DeleteConversationSettings(ctx context.Context, app, user string, c ConversationKey) error {
	_, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(s.table),
		Key:       settingsKey(userPK(app, user), convSK(string(c.Type), c.ID)),
	})
	if err != nil {
		return fmt.Errorf("delete settings of %s/%s for user %s: %w", c.Type, c.ID, user, settingsError(err))
	}
	return nil
}

// ConversationSettingsBatch reads the settings of up to 100 conversations of
// one user with BatchGetItem, retrying unprocessed keys with backoff. The
// answer holds only conversations that have an item; cs must hold no
// duplicates (DynamoDB refuses them).
func (s *SettingsStore) ConversationSettingsBatch(ctx context.Context, app, user string, cs []ConversationKey) (map[ConversationKey]push.ConversationSettings, error) {
	out := make(map[ConversationKey]push.ConversationSettings, len(cs))
	if len(cs) == 0 {
		return out, nil
	}
	if len(cs) > 100 {
		return nil, fmt.Errorf("batch-get settings: %d conversations, at most 100", len(cs))
	}
	pk := userPK(app, user)
	keys := make([]map[string]types.AttributeValue, len(cs))
	bySK := make(map[string]ConversationKey, len(cs))
	for i, c := range cs {
		sk := convSK(string(c.Type), c.ID)
		keys[i] = settingsKey(pk, sk)
		bySK[sk] = c
	}
	items, err := settingsBatchGet(ctx, s.client, map[string]types.KeysAndAttributes{
		s.table: {
			Keys:                     keys,
			ProjectionExpression:     aws.String("#sk, #rt, #du"),
			ExpressionAttributeNames: map[string]string{"#sk": attrSK, "#rt": attrRemindType, "#du": attrDNDUntil},
			ConsistentRead:           aws.Bool(true),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("batch-get settings for user %s: %w", user, err)
	}
	for _, item := range items[s.table] {
		sk, ok := item[attrSK].(*types.AttributeValueMemberS)
		if !ok {
			return nil, fmt.Errorf("batch-get settings for user %s: item without sort key", user)
		}
		c, ok := bySK[sk.Value]
		if !ok {
			continue
		}
		st, err := DecodeConversationSettings(item)
		if err != nil {
			return nil, err
		}
		out[c] = st
	}
	return out, nil
}

// settingsBatchGet runs BatchGetItem until no key is left unprocessed, with
// exponential backoff between rounds, and returns the items per table.
func settingsBatchGet(ctx context.Context, client Client, req map[string]types.KeysAndAttributes) (map[string][]map[string]types.AttributeValue, error) {
	got := map[string][]map[string]types.AttributeValue{}
	wait := 20 * time.Millisecond
	for attempt := 0; ; attempt++ {
		out, err := client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
		if err != nil {
			return nil, settingsError(err)
		}
		for t, items := range out.Responses {
			got[t] = append(got[t], items...)
		}
		if len(out.UnprocessedKeys) == 0 {
			return got, nil
		}
		if attempt+1 >= settingsBatchAttempts {
			return nil, fmt.Errorf("keys still unprocessed after %d rounds: %w", settingsBatchAttempts, push.ErrThrottled)
		}
		req = out.UnprocessedKeys
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, time.Second)
	}
}

// DecodeSettings reads the app-level settings of a profile item, defaults
// applied for attributes that are absent. A nil item is a user who never set
// anything. DNDUntil is as stored; expiry is the reader's check.
func DecodeSettings(item map[string]types.AttributeValue) (push.Settings, error) {
	st := push.DefaultSettings()
	if v, ok := item[attrRemindType].(*types.AttributeValueMemberS); ok {
		if r, ok := push.ParseRemindType(v.Value); ok {
			st.RemindType = r
		}
	}
	if v, ok := item[attrWindow].(*types.AttributeValueMemberM); ok {
		w, err := decodeWindow(v.Value)
		if err != nil {
			return push.Settings{}, err
		}
		st.Window = &w
	}
	if v, ok := item[attrDNDUntil]; ok {
		ms, err := settingsNumber(v, attrDNDUntil)
		if err != nil {
			return push.Settings{}, err
		}
		st.DNDUntil = time.UnixMilli(ms).UTC()
	}
	if v, ok := item[attrLanguage].(*types.AttributeValueMemberS); ok {
		st.Language = v.Value
	}
	if v, ok := item[attrShowPreview].(*types.AttributeValueMemberBOOL); ok {
		st.ShowPreview = v.Value
	}
	if v, ok := item[attrMultiDevice].(*types.AttributeValueMemberS); ok {
		switch p := push.MultiDevicePolicy(v.Value); p {
		case push.AnyOffline, push.AllOffline:
			st.MultiDevicePolicy = p
		}
	}
	if v, ok := item[attrMobilePush].(*types.AttributeValueMemberBOOL); ok {
		st.MobilePushWhenDesktopOnline = v.Value
	}
	return st, nil
}

// DecodeConversationSettings reads a conversation settings item; a nil item
// is a conversation that inherits. DNDUntil is as stored.
func DecodeConversationSettings(item map[string]types.AttributeValue) (push.ConversationSettings, error) {
	var cs push.ConversationSettings
	if v, ok := item[attrRemindType].(*types.AttributeValueMemberS); ok {
		if r, ok := push.ParseRemindType(v.Value); ok {
			cs.RemindType = r
		}
	}
	if v, ok := item[attrDNDUntil]; ok {
		ms, err := settingsNumber(v, attrDNDUntil)
		if err != nil {
			return push.ConversationSettings{}, err
		}
		cs.DNDUntil = time.UnixMilli(ms).UTC()
	}
	return cs, nil
}

func encodeWindow(w push.DNDWindow) types.AttributeValue {
	return &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
		windowStart: settingsN(int64(w.Start)),
		windowEnd:   settingsN(int64(w.End)),
		windowZone:  settingsS(w.TimeZone),
	}}
}

func decodeWindow(m map[string]types.AttributeValue) (push.DNDWindow, error) {
	start, err := settingsNumber(m[windowStart], "dw.s")
	if err != nil {
		return push.DNDWindow{}, err
	}
	end, err := settingsNumber(m[windowEnd], "dw.e")
	if err != nil {
		return push.DNDWindow{}, err
	}
	w := push.DNDWindow{Start: int(start), End: int(end), TimeZone: "UTC"}
	if z, ok := m[windowZone].(*types.AttributeValueMemberS); ok && z.Value != "" {
		w.TimeZone = z.Value
	}
	if w.Start < 0 || w.Start > 1439 || w.End < 0 || w.End > 1439 {
		return push.DNDWindow{}, fmt.Errorf("decode settings: window %d-%d out of range", w.Start, w.End)
	}
	return w, nil
}

// settingsUpdate collects the SET and REMOVE clauses of one UpdateItem.
type settingsUpdate struct {
	sets    []string
	removes []string
	names   map[string]string
	values  map[string]types.AttributeValue
}

func (u *settingsUpdate) name(attr string) string {
	if u.names == nil {
		u.names = map[string]string{}
	}
	n := "#" + attr
	u.names[n] = attr
	return n
}

func (u *settingsUpdate) set(attr string, v types.AttributeValue) {
	if u.values == nil {
		u.values = map[string]types.AttributeValue{}
	}
	ph := ":" + attr
	u.values[ph] = v
	u.sets = append(u.sets, u.name(attr)+" = "+ph)
}

func (u *settingsUpdate) remove(attr string) {
	u.removes = append(u.removes, u.name(attr))
}

func (u *settingsUpdate) empty() bool { return len(u.sets) == 0 && len(u.removes) == 0 }

func (u *settingsUpdate) expression() string {
	var b strings.Builder
	if len(u.sets) > 0 {
		b.WriteString("SET " + strings.Join(u.sets, ", "))
	}
	if len(u.removes) > 0 {
		if b.Len() > 0 {
			b.WriteString(" ")
		}
		b.WriteString("REMOVE " + strings.Join(u.removes, ", "))
	}
	return b.String()
}

// valuesOrNil returns the placeholder values, or nil when there are none:
// DynamoDB refuses an empty ExpressionAttributeValues.
func (u *settingsUpdate) valuesOrNil() map[string]types.AttributeValue {
	if len(u.values) == 0 {
		return nil
	}
	return u.values
}

func settingsApply[T any](u *settingsUpdate, attr string, c SettingChange[T], enc func(T) types.AttributeValue) {
	switch c.Op {
	case SettingSet:
		u.set(attr, enc(c.Value))
	case SettingRemove:
		u.remove(attr)
	}
}

// settingsApplyDND writes or removes a DND duration together with its
// ExpiryIndex keys, so the item is in the index exactly while it has one.
func settingsApplyDND(u *settingsUpdate, pk, sk string, c SettingChange[time.Time]) {
	switch c.Op {
	case SettingSet:
		ms := settingsN(c.Value.UnixMilli())
		u.set(attrDNDUntil, ms)
		u.set(attrShard, settingsS(dndShard(pk, sk)))
		u.set(attrExpiry, ms)
	case SettingRemove:
		u.remove(attrDNDUntil)
		u.remove(attrShard)
		u.remove(attrExpiry)
	}
}

// dndShard spreads DND entries of ExpiryIndex by item, so the many
// conversations of one user do not all land in one index partition.
func dndShard(pk, sk string) string { return shard(dndShardKind, pk+"#"+sk) }

func settingsKey(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: settingsS(pk), attrSK: settingsS(sk)}
}

func settingsS(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func settingsN(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func settingsBool(b bool) types.AttributeValue { return &types.AttributeValueMemberBOOL{Value: b} }

func settingsNumber(v types.AttributeValue, name string) (int64, error) {
	n, ok := v.(*types.AttributeValueMemberN)
	if !ok {
		return 0, fmt.Errorf("decode settings: attribute %s is not a number", name)
	}
	i, err := strconv.ParseInt(n.Value, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("decode settings: attribute %s: %w", name, err)
	}
	return i, nil
}

// settingsError translates the SDK errors a settings call can meet into push
// errors: a refusal for load (after the SDK's own retries) is
// push.ErrThrottled and a failed condition push.ErrConflict; both keep the
// SDK error for the log.
func settingsError(err error) error {
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return fmt.Errorf("%w: %w", push.ErrConflict, err)
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded":
			return fmt.Errorf("%w: %w", push.ErrThrottled, err)
		case "TransactionCanceledException", "TransactionConflictException":
			return fmt.Errorf("%w: %w", push.ErrConflict, err)
		}
	}
	return err
}
