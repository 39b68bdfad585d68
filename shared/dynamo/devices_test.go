package dynamo_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/offline-push/offline-push/shared/dynamo"
	"github.com/offline-push/offline-push/shared/push"
	"github.com/offline-push/offline-push/shared/testenv"
)

// deviceEnv is one emulator with the template's tables, shared by the
// subtests of TestDeviceStore; each subtest uses its own app.
type deviceEnv struct {
	endpoint string
	client   *dynamodb.Client
	table    string
	store    *dynamo.DeviceStore
}

var deviceT0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func TestDeviceStore(t *testing.T) {
	srv := testenv.Moto(t)
	stack := testenv.Stack(t, srv.Endpoint)
	client := dynamodb.NewFromConfig(testenv.AWSConfig(srv.Endpoint))
	table := stack.Tables["StateTable"]
	env := &deviceEnv{endpoint: srv.Endpoint, client: client, table: table, store: dynamo.NewDeviceStore(client, table)}
	t.Run("RoundTrip", env.testRoundTrip)
	t.Run("IndexItem", env.testIndexItem)
	t.Run("MergedUpdate", env.testMergedUpdate)
	t.Run("Conditions", env.testConditions)
	t.Run("DevicesWithPresence", env.testDevicesWithPresence)
	t.Run("UnprocessedKeys", env.testUnprocessedKeys)
}

func deviceToken(c byte) string { return strings.Repeat(string(c), 64) }

func apnsBinding(device string, token, voip string) push.Binding {
	return push.Binding{DeviceID: device, Vendor: push.APNs, Token: token, VoIPToken: voip, CertName: "ios",
		Platform: push.PlatformIOS, Environment: push.Production, RegisteredAt: deviceT0}
}

func owner(user, device string, kind push.TokenKind) *dynamo.TokenOwner {
	return &dynamo.TokenOwner{Owner: push.Owner{UserID: user, DeviceID: device}, Kind: kind, Refreshed: deviceT0}
}

func apnsKey(token string) dynamo.TokenKey { return dynamo.TokenKey{Vendor: push.APNs, Token: token} }

// register commits a first registration of b for user, as the use case
// plans it, and fails the test on error.
func (e *deviceEnv) register(t *testing.T, app, user string, b push.Binding) {
	t.Helper()
	c := dynamo.BindingChange{
		Profiles: []dynamo.ProfileChange{{UserID: user, Expect: []dynamo.HeldTokens{{DeviceID: b.DeviceID}}, Set: []push.Binding{b}}},
		Tokens:   []dynamo.TokenChange{{Key: dynamo.TokenKey{Vendor: b.Vendor, Token: b.Token}, Put: owner(user, b.DeviceID, push.TokenAlert)}},
	}
	if b.VoIPToken != "" {
		c.Tokens = append(c.Tokens, dynamo.TokenChange{Key: apnsKey(b.VoIPToken), Put: owner(user, b.DeviceID, push.TokenVoIP)})
	}
	if err := e.store.Commit(context.Background(), app, c); err != nil {
		t.Fatalf("Commit registration of %s/%s: %v", user, b.DeviceID, err)
	}
}

func (e *deviceEnv) rawItem(t *testing.T, pk, sk string) map[string]types.AttributeValue {
	t.Helper()
	out, err := e.client.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(e.table),
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: pk},
			"sk": &types.AttributeValueMemberS{Value: sk},
		},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatalf("GetItem %s/%s: %v", pk, sk, err)
	}
	return out.Item
}

func (e *deviceEnv) testRoundTrip(t *testing.T) {
	ctx := context.Background()
	full := apnsBinding("phone", deviceToken('a'), deviceToken('b'))
	full.Environment, full.Locale, full.AppVersion = push.Sandbox, "zh-CN", "5.2.0"
	fcm := push.Binding{DeviceID: "pixel", Vendor: push.FCM, Token: "fcm:" + strings.Repeat("x", 3000), CertName: "fcm",
		Platform: push.PlatformAndroid, RegisteredAt: deviceT0.Add(time.Millisecond)}
	e.register(t, "rt", "bob", full)
	e.register(t, "rt", "bob2", fcm)

	got, err := e.store.Load(ctx, "rt", []string{"bob", "bob2", "nobody"},
		[]dynamo.TokenKey{apnsKey(full.Token), apnsKey(full.VoIPToken), {Vendor: push.FCM, Token: fcm.Token}, apnsKey(deviceToken('f')), apnsKey(full.Token)})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := dynamo.DeviceSnapshot{
		Profiles: map[string]map[string]push.Binding{
			"bob":    {"phone": full},
			"bob2":   {"pixel": fcm},
			"nobody": {},
		},
		Tokens: map[dynamo.TokenKey]*dynamo.TokenOwner{
			apnsKey(full.Token):                  owner("bob", "phone", push.TokenAlert),
			apnsKey(full.VoIPToken):              owner("bob", "phone", push.TokenVoIP),
			{Vendor: push.FCM, Token: fcm.Token}: owner("bob2", "pixel", push.TokenAlert),
			apnsKey(deviceToken('f')):            nil,
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Load mismatch (-want +got):\n%s", diff)
	}
	// The same token of another vendor is another owner key.
	other, err := e.store.Load(ctx, "rt", nil, []dynamo.TokenKey{{Vendor: push.FCM, Token: full.Token}})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if o := other.Tokens[dynamo.TokenKey{Vendor: push.FCM, Token: full.Token}]; o != nil {
		t.Errorf("fcm index entry of an apns token = %+v, want none", o)
	}
	// Apps are separate.
	sep, err := e.store.Load(ctx, "rt2", []string{"bob"}, []dynamo.TokenKey{apnsKey(full.Token)})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(sep.Profiles["bob"]) != 0 || sep.Tokens[apnsKey(full.Token)] != nil {
		t.Errorf("another app sees %+v", sep)
	}
}

func (e *deviceEnv) testIndexItem(t *testing.T) {
	tok := deviceToken('c')
	e.register(t, "ix", "bob", apnsBinding("phone", tok, ""))
	// The index key is the token's hash (FCM tokens outgrow a key).
	pk := "t#ix#apns#" + sha256Hex(tok)
	item := e.rawItem(t, pk, "owner")
	if item == nil {
		t.Fatalf("no index item under %s", pk)
	}
	str := func(name string) string {
		s, _ := item[name].(*types.AttributeValueMemberS)
		if s == nil {
			return ""
		}
		return s.Value
	}
	num := func(name string) string {
		n, _ := item[name].(*types.AttributeValueMemberN)
		if n == nil {
			return ""
		}
		return n.Value
	}
	ms := strconv.FormatInt(deviceT0.UnixMilli(), 10)
	got := map[string]string{"tok": str("tok"), "uid": str("uid"), "did": str("did"), "k": str("k"), "vn": str("vn"), "r": num("r"), "xu": num("xu")}
	want := map[string]string{"tok": tok, "uid": "bob", "did": "phone", "k": "alert", "vn": "apns", "r": ms, "xu": ms}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("index item mismatch (-want +got):\n%s", diff)
	}
	if xs := str("xs"); !strings.HasPrefix(xs, "tok#") {
		t.Errorf("xs = %q, want a tok#{shard} sparse index key", xs)
	} else if n, err := strconv.Atoi(strings.TrimPrefix(xs, "tok#")); err != nil || n < 0 || n >= dynamo.Shards {
		t.Errorf("xs = %q, want a shard below %d", xs, dynamo.Shards)
	}
}

func (e *deviceEnv) testMergedUpdate(t *testing.T) {
	ctx := context.Background()
	a, b, v := deviceToken('1'), deviceToken('2'), deviceToken('3')
	tablet := apnsBinding("tablet", a, "")
	watch := apnsBinding("watch", b, v)
	e.register(t, "mu", "bob", tablet)
	e.register(t, "mu", "bob", watch)

	// One update of bob's profile: the phone takes token a from the tablet
	// (removed) and the VoIP token from the watch (which keeps its alert
	// token), with every device conditioned.
	phone := apnsBinding("phone", a, v)
	phone.RegisteredAt = deviceT0.Add(time.Second)
	c := dynamo.BindingChange{
		Profiles: []dynamo.ProfileChange{{
			UserID: "bob",
			Expect: []dynamo.HeldTokens{
				{DeviceID: "phone"},
				{DeviceID: "tablet", Bound: true, Token: a},
				{DeviceID: "watch", Bound: true, Token: b, VoIPToken: v},
			},
			Set:        []push.Binding{phone},
			Remove:     []string{"tablet"},
			RemoveVoIP: []string{"watch"},
		}},
		Tokens: []dynamo.TokenChange{
			{Key: apnsKey(a), Expect: owner("bob", "tablet", push.TokenAlert), Put: owner("bob", "phone", push.TokenAlert)},
			{Key: apnsKey(v), Expect: owner("bob", "watch", push.TokenVoIP), Put: owner("bob", "phone", push.TokenVoIP)},
		},
	}
	if err := e.store.Commit(ctx, "mu", c); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	got, _, err := e.store.Devices(ctx, "mu", "bob")
	if err != nil {
		t.Fatalf("Devices: %v", err)
	}
	watchLeft := watch
	watchLeft.VoIPToken = ""
	if diff := cmp.Diff([]push.Binding{phone, watchLeft}, got); diff != "" {
		t.Errorf("bindings mismatch (-want +got):\n%s", diff)
	}
}

func (e *deviceEnv) testConditions(t *testing.T) {
	ctx := context.Background()
	tok, voip := deviceToken('d'), deviceToken('e')
	e.register(t, "cd", "bob", apnsBinding("phone", tok, voip))
	later := apnsBinding("phone", tok, voip)
	later.RegisteredAt = deviceT0.Add(time.Hour)
	setPhone := func(expect dynamo.HeldTokens) dynamo.ProfileChange {
		return dynamo.ProfileChange{UserID: "bob", Expect: []dynamo.HeldTokens{expect}, Set: []push.Binding{later}}
	}
	held := dynamo.HeldTokens{DeviceID: "phone", Bound: true, Token: tok, VoIPToken: voip}
	tests := []struct {
		name     string
		change   dynamo.BindingChange
		conflict bool
	}{
		{"binding expected absent", dynamo.BindingChange{Profiles: []dynamo.ProfileChange{setPhone(dynamo.HeldTokens{DeviceID: "phone"})}}, true},
		{"other alert token expected", dynamo.BindingChange{Profiles: []dynamo.ProfileChange{setPhone(dynamo.HeldTokens{DeviceID: "phone", Bound: true, Token: deviceToken('0'), VoIPToken: voip})}}, true},
		{"no VoIP token expected", dynamo.BindingChange{Profiles: []dynamo.ProfileChange{setPhone(dynamo.HeldTokens{DeviceID: "phone", Bound: true, Token: tok})}}, true},
		{"index expected absent", dynamo.BindingChange{Tokens: []dynamo.TokenChange{{Key: apnsKey(tok), Put: owner("zed", "z", push.TokenAlert)}}}, true},
		{"index expected elsewhere", dynamo.BindingChange{Tokens: []dynamo.TokenChange{{Key: apnsKey(tok), Expect: owner("bob", "tablet", push.TokenAlert), Delete: true}}}, true},
		{"index expected other kind", dynamo.BindingChange{Tokens: []dynamo.TokenChange{{Key: apnsKey(tok), Expect: owner("bob", "phone", push.TokenVoIP)}}}, true},
		{"failing profile check cancels a good write", dynamo.BindingChange{
			Profiles: []dynamo.ProfileChange{{UserID: "alice", Expect: []dynamo.HeldTokens{{DeviceID: "x", Bound: true, Token: tok}}}},
			Tokens:   []dynamo.TokenChange{{Key: apnsKey(deviceToken('9')), Put: owner("bob", "phone", push.TokenAlert)}},
		}, true},
		{"pure checks pass", dynamo.BindingChange{
			Profiles: []dynamo.ProfileChange{{UserID: "bob", Expect: []dynamo.HeldTokens{held, {DeviceID: "other"}}}},
			Tokens:   []dynamo.TokenChange{{Key: apnsKey(tok), Expect: owner("bob", "phone", push.TokenAlert)}, {Key: apnsKey(deviceToken('8'))}},
		}, false},
		{"refresh as read", dynamo.BindingChange{
			Profiles: []dynamo.ProfileChange{setPhone(held)},
			Tokens:   []dynamo.TokenChange{{Key: apnsKey(tok), Expect: owner("bob", "phone", push.TokenAlert), Put: owner("bob", "phone", push.TokenAlert)}},
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := e.store.Commit(ctx, "cd", tt.change)
			if got := errors.Is(err, push.ErrConflict); got != tt.conflict {
				t.Fatalf("Commit = %v, want conflict %v", err, tt.conflict)
			}
			if !tt.conflict && err != nil {
				t.Fatalf("Commit: %v", err)
			}
		})
	}
	// Nothing of the cancelled transactions was applied.
	snap, err := e.store.Load(ctx, "cd", []string{"bob"}, []dynamo.TokenKey{apnsKey(deviceToken('9'))})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if o := snap.Tokens[apnsKey(deviceToken('9'))]; o != nil {
		t.Errorf("a cancelled transaction left index entry %+v", o)
	}
	if diff := cmp.Diff(map[string]push.Binding{"phone": later}, snap.Profiles["bob"]); diff != "" {
		t.Errorf("bob's profile mismatch (-want +got):\n%s", diff)
	}
}

func (e *deviceEnv) testDevicesWithPresence(t *testing.T) {
	ctx := context.Background()
	e.register(t, "dp", "bob", apnsBinding("phone", deviceToken('p'), ""))
	// A presence item as doc.go lays it out: a PC with presence only, and
	// the phone online too.
	until := deviceT0.Add(5 * time.Minute)
	_, err := e.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(e.table),
		Item: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: "u#dp#bob"},
			"sk": &types.AttributeValueMemberS{Value: "presence"},
			"p#pc": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
				"e": &types.AttributeValueMemberN{Value: "3"}, "u": &types.AttributeValueMemberN{Value: strconv.FormatInt(until.UnixMilli(), 10)},
				"pl": &types.AttributeValueMemberS{Value: "pc"},
			}},
			"p#phone": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
				"e": &types.AttributeValueMemberN{Value: "1"}, "u": &types.AttributeValueMemberN{Value: "0"},
				"pl": &types.AttributeValueMemberS{Value: "ios"},
			}},
		},
	})
	if err != nil {
		t.Fatalf("PutItem presence: %v", err)
	}
	bindings, leases, err := e.store.Devices(ctx, "dp", "bob")
	if err != nil {
		t.Fatalf("Devices: %v", err)
	}
	if diff := cmp.Diff([]push.Binding{apnsBinding("phone", deviceToken('p'), "")}, bindings); diff != "" {
		t.Errorf("bindings mismatch (-want +got):\n%s", diff)
	}
	wantLeases := []push.Lease{
		{DeviceID: "pc", Platform: push.PlatformPC, Epoch: 3, Until: until},
		{DeviceID: "phone", Platform: push.PlatformIOS, Epoch: 1},
	}
	if diff := cmp.Diff(wantLeases, leases); diff != "" {
		t.Errorf("leases mismatch (-want +got):\n%s", diff)
	}
	b, l, err := e.store.Devices(ctx, "dp", "nobody")
	if err != nil || len(b) != 0 || len(l) != 0 {
		t.Errorf("Devices of an unknown user = %v, %v, %v; want nothing", b, l, err)
	}
}

func (e *deviceEnv) testUnprocessedKeys(t *testing.T) {
	ctx := context.Background()
	var keys []dynamo.TokenKey
	users := []string{}
	for i := range 20 {
		u := "u" + strconv.Itoa(i)
		tok := fmt.Sprintf("%064x", i+1)
		e.register(t, "up", u, apnsBinding("d", tok, ""))
		keys = append(keys, apnsKey(tok))
		users = append(users, u)
	}
	proxy := testenv.NewProxy(t, e.endpoint, testenv.ProxyOptions{Seed: 7, UnprocessedRate: 0.5, ThrottleRate: 0.2})
	client := dynamodb.NewFromConfig(testenv.AWSConfig(proxy.URL))
	store := dynamo.NewDeviceStore(client, e.table)
	snap, err := store.Load(ctx, "up", users, keys)
	if err != nil {
		t.Fatalf("Load through faults: %v", err)
	}
	for i, u := range users {
		if len(snap.Profiles[u]) != 1 {
			t.Errorf("profile of %s = %v, want one binding", u, snap.Profiles[u])
		}
		if o := snap.Tokens[keys[i]]; o == nil || o.Owner.UserID != u {
			t.Errorf("index entry of %s's token = %+v, want %s", u, o, u)
		}
	}
	if c := proxy.Counts()["BatchGetItem"]; c.Faults == 0 {
		t.Errorf("proxy injected no faults into BatchGetItem (%+v); the retry path went untested", c)
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
