package cleanup_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/offline-push/offline-push/shared/cleanup"
	"github.com/offline-push/offline-push/shared/dynamo"
	"github.com/offline-push/offline-push/shared/push"
	"github.com/offline-push/offline-push/shared/testenv"
)

// The cleaner's clock in these tests. Seeded records are placed relative to
// it, far from any bound, so no assertion depends on timing.
var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

const (
	app    = "demo"
	maxAge = 270 * 24 * time.Hour
)

// world is one provisioned stack in the shared emulator: a direct client for
// seeding and checking, and the stores the code under test uses.
type world struct {
	endpoint string
	table    string
	direct   *dynamodb.Client
	settings *dynamo.SettingsStore
	devices  *dynamo.DeviceStore
}

func newWorld(t *testing.T, endpoint string) *world {
	t.Helper()
	stack := testenv.Stack(t, endpoint)
	db := dynamodb.NewFromConfig(testenv.AWSConfig(endpoint))
	table := stack.Tables["StateTable"]
	return &world{
		endpoint: endpoint, table: table, direct: db,
		settings: dynamo.NewSettingsStore(db, table),
		devices:  dynamo.NewDeviceStore(db, table),
	}
}

// cleaner returns a cleaner whose requests go through proxy.
func (w *world) cleaner(proxy *testenv.Proxy, wrap func(*dynamo.CleanupStore) (cleanup.DNDStore[dynamo.DNDExpiry], cleanup.TokenStore[dynamo.StaleToken])) *cleanup.Cleaner[dynamo.DNDExpiry, dynamo.StaleToken] {
	store := dynamo.NewCleanupStore(dynamodb.NewFromConfig(testenv.AWSConfig(proxy.URL)), w.table)
	var dnd cleanup.DNDStore[dynamo.DNDExpiry] = store
	var tok cleanup.TokenStore[dynamo.StaleToken] = store
	if wrap != nil {
		dnd, tok = wrap(store)
	}
	return cleanup.New(dnd, tok, cleanup.Config{
		Shards: store.Shards(), TokenMaxAge: maxAge, Now: func() time.Time { return t0 },
	})
}

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

func n(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

// dndItem is a settings record as the settings store writes it: a profile
// item (conv "") or a conversation item with a DND duration until until,
// and a remind type when rt is set.
func dndItem(user, conv, rt string, until time.Time, shard int) map[string]types.AttributeValue {
	sk := "profile"
	if conv != "" {
		sk = "conv#group#" + conv
	}
	item := map[string]types.AttributeValue{
		"pk": s("u#" + app + "#" + user), "sk": s(sk),
		"du": n(until.UnixMilli()), "xs": s("dnd#" + strconv.Itoa(shard)), "xu": n(until.UnixMilli()),
	}
	if rt != "" {
		item["rt"] = s(rt)
	}
	return item
}

// seed writes items with BatchWriteItem, a few batches at a time.
func (w *world) seed(t *testing.T, items []map[string]types.AttributeValue) {
	t.Helper()
	var batches [][]types.WriteRequest
	for i := 0; i < len(items); i += 25 {
		var b []types.WriteRequest
		for _, it := range items[i:min(i+25, len(items))] {
			b = append(b, types.WriteRequest{PutRequest: &types.PutRequest{Item: it}})
		}
		batches = append(batches, b)
	}
	work := make(chan []types.WriteRequest)
	errs := make(chan error, len(batches))
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range work {
				req := map[string][]types.WriteRequest{w.table: b}
				for len(req) > 0 {
					out, err := w.direct.BatchWriteItem(context.Background(), &dynamodb.BatchWriteItemInput{RequestItems: req})
					if err != nil {
						errs <- err
						break
					}
					req = out.UnprocessedItems
				}
			}
		}()
	}
	for _, b := range batches {
		work <- b
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("seed: %v", err)
	}
}

// indexCount counts the ExpiryIndex entries of kind ("dnd" or "tok") that
// expire before bound, over every shard.
func (w *world) indexCount(t *testing.T, kind string, bound time.Time) int {
	t.Helper()
	total := 0
	for shard := range dynamo.Shards {
		var start map[string]types.AttributeValue
		for {
			out, err := w.direct.Query(context.Background(), &dynamodb.QueryInput{
				TableName: aws.String(w.table), IndexName: aws.String("ExpiryIndex"),
				KeyConditionExpression:    aws.String("xs = :xs AND xu < :b"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":xs": s(kind + "#" + strconv.Itoa(shard)), ":b": n(bound.UnixMilli())},
				Select:                    types.SelectCount,
				ExclusiveStartKey:         start,
			})
			if err != nil {
				t.Fatalf("count index: %v", err)
			}
			total += int(out.Count)
			if len(out.LastEvaluatedKey) == 0 {
				break
			}
			start = out.LastEvaluatedKey
		}
	}
	return total
}

func (w *world) item(t *testing.T, pk, sk string) map[string]types.AttributeValue {
	t.Helper()
	out, err := w.direct.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(w.table), Key: map[string]types.AttributeValue{"pk": s(pk), "sk": s(sk)}, ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatalf("GetItem: %v", err)
	}
	return out.Item
}

// register binds a device through the devices store as a PUT at registered
// would, with an index record per token.
func (w *world) register(t *testing.T, user, device string, vendor push.Vendor, token, voip string, registered time.Time) {
	t.Helper()
	b := push.Binding{DeviceID: device, Vendor: vendor, Token: token, VoIPToken: voip, CertName: "c",
		Platform: push.DefaultPlatform(vendor), RegisteredAt: registered}
	owner := push.Owner{UserID: user, DeviceID: device}
	change := dynamo.BindingChange{
		Profiles: []dynamo.ProfileChange{{UserID: user, Set: []push.Binding{b}}},
	}
	for _, tk := range []struct {
		token string
		kind  push.TokenKind
	}{{token, push.TokenAlert}, {voip, push.TokenVoIP}} {
		if tk.token == "" {
			continue
		}
		key := dynamo.TokenKey{Vendor: vendor, Token: tk.token}
		snap, err := w.devices.Load(context.Background(), app, nil, []dynamo.TokenKey{key})
		if err != nil {
			t.Fatal(err)
		}
		change.Tokens = append(change.Tokens, dynamo.TokenChange{Key: key, Expect: snap.Tokens[key],
			Put: &dynamo.TokenOwner{Owner: owner, Kind: tk.kind, Refreshed: registered}})
	}
	if err := w.devices.Commit(context.Background(), app, change); err != nil {
		t.Fatalf("register %s/%s: %v", user, device, err)
	}
}

func apnsToken(i int) string { return fmt.Sprintf("%064x", i) }

func TestRun(t *testing.T) {
	srv := testenv.Moto(t)
	t.Run("CostGrowsWithExpiredRecords", func(t *testing.T) { testCost(t, srv.Endpoint) })
	t.Run("Throttled", func(t *testing.T) { testThrottled(t, srv.Endpoint) })
	t.Run("LeavesRecordsSetAnew", func(t *testing.T) { testSetAnew(t, srv.Endpoint) })
}

// testCost seeds 10,000 settings records with a DND duration, 50 of them
// expired, and checks that one run reads at most 100 items, counted by the
// proxy from outside the code under test.
func testCost(t *testing.T, endpoint string) {
	w := newWorld(t, endpoint)
	const total, expired = 10000, 50
	items := make([]map[string]types.AttributeValue, 0, total)
	for i := range total {
		until := t0.Add(time.Duration(1+i%600) * time.Minute)
		// One in 200 has expired, of every kind below in turn.
		if i%(total/expired) == (i/(total/expired))%4 {
			until = t0.Add(-time.Duration(1+i%600) * time.Minute)
		}
		conv, rt := "", ""
		if i%2 == 1 {
			conv = "g" + strconv.Itoa(i)
			if i%4 == 1 {
				rt = "AT"
			}
		}
		items = append(items, dndItem("u"+strconv.Itoa(i), conv, rt, until, i%dynamo.Shards))
	}
	w.seed(t, items)
	if got := w.indexCount(t, "dnd", t0.Add(24*time.Hour)); got != total {
		t.Fatalf("seeded %d index entries, want %d", got, total)
	}

	proxy := testenv.NewProxy(t, endpoint, testenv.ProxyOptions{})
	got, err := w.cleaner(proxy, nil).Run(context.Background())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got.DNDExpired != expired || !got.Complete || got.Conflicts != 0 {
		t.Errorf("Run counts = %+v, want %d expired, complete, no conflicts", got, expired)
	}
	read, requests := 0, 0
	for _, c := range proxy.Counts() {
		read += c.ItemsRead
		requests += c.Requests
	}
	t.Logf("one run over %d records, %d expired: %d items read, %d requests, counts %+v", total, expired, read, requests, got)
	if read > 100 {
		t.Errorf("one run read %d items, want at most 100 (%v)", read, proxy.Counts())
	}
	if left := w.indexCount(t, "dnd", t0); left != 0 {
		t.Errorf("%d expired index entries left, want 0", left)
	}
	if kept := w.indexCount(t, "dnd", t0.Add(24*time.Hour)); kept != total-expired {
		t.Errorf("%d running durations left, want %d", kept, total-expired)
	}
}

// mixedWorld seeds expired and running durations and stale and fresh tokens,
// and returns what a complete cleanup must leave.
type mixedWorld struct {
	*world
	expiredDND, runningDND int
	// conversations left with nothing once their duration goes
	emptyConvs int
	staleAlert []string // users whose stale alert binding must go
	freshAlert []string // users whose binding must stay
	orphans    int
}

func newMixedWorld(t *testing.T, endpoint string) *mixedWorld {
	w := &mixedWorld{world: newWorld(t, endpoint)}
	var items []map[string]types.AttributeValue
	for i := range 40 {
		user := "d" + strconv.Itoa(i)
		until := t0.Add(-time.Duration(i+1) * time.Minute)
		if i%4 == 3 {
			until = t0.Add(time.Hour)
			w.runningDND++
		} else {
			w.expiredDND++
		}
		switch i % 3 {
		case 0:
			items = append(items, dndItem(user, "", "", until, i%dynamo.Shards))
		case 1:
			items = append(items, dndItem(user, "g", "", until, i%dynamo.Shards))
			if until.Before(t0) {
				w.emptyConvs++
			}
		case 2:
			items = append(items, dndItem(user, "g", "NONE", until, i%dynamo.Shards))
		}
	}
	w.seed(t, items)
	old, fresh := t0.Add(-maxAge-24*time.Hour), t0.Add(-24*time.Hour)
	for i := range 12 {
		user := "t" + strconv.Itoa(i)
		switch i % 3 {
		case 0: // stale, with a VoIP token
			w.register(t, user, "phone", push.APNs, apnsToken(1000+i), apnsToken(2000+i), old)
			w.staleAlert = append(w.staleAlert, user)
		case 1: // stale
			w.register(t, user, "phone", push.FCM, "fcm-"+user, "", old)
			w.staleAlert = append(w.staleAlert, user)
		case 2: // fresh
			w.register(t, user, "phone", push.FCM, "fcm-"+user, "", fresh)
			w.freshAlert = append(w.freshAlert, user)
		}
	}
	// Two orphans: the index records of tokens whose device moved on to
	// another token without the old record going.
	for i := range 2 {
		user := "o" + strconv.Itoa(i)
		w.register(t, user, "phone", push.FCM, "fcm-old-"+user, "", old)
		if err := w.devices.Commit(context.Background(), app, dynamo.BindingChange{Profiles: []dynamo.ProfileChange{{UserID: user, Set: []push.Binding{{
			DeviceID: "phone", Vendor: push.FCM, Token: "fcm-new-" + user, CertName: "c", Platform: push.PlatformAndroid, RegisteredAt: fresh,
		}}}}}); err != nil {
			t.Fatal(err)
		}
		w.freshAlert = append(w.freshAlert, user)
		w.orphans++
	}
	return w
}

// check compares the table with what a complete cleanup leaves.
func (w *mixedWorld) check(t *testing.T) {
	t.Helper()
	if left := w.indexCount(t, "dnd", t0); left != 0 {
		t.Errorf("%d expired durations left, want 0", left)
	}
	if kept := w.indexCount(t, "dnd", t0.Add(24*time.Hour)); kept != w.runningDND {
		t.Errorf("%d running durations left, want %d", kept, w.runningDND)
	}
	if left := w.indexCount(t, "tok", t0.Add(-maxAge)); left != 0 {
		t.Errorf("%d stale token records left, want 0", left)
	}
	// One record per fresh binding (the orphans' new tokens have none: they
	// were set without one).
	if kept := w.indexCount(t, "tok", t0); kept != len(w.freshAlert)-w.orphans {
		t.Errorf("%d fresh token records left, want %d", kept, len(w.freshAlert)-w.orphans)
	}
	snap, err := w.devices.Load(context.Background(), app, append(append([]string{}, w.staleAlert...), w.freshAlert...), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range w.staleAlert {
		if len(snap.Profiles[u]) != 0 {
			t.Errorf("user %s keeps stale bindings %v", u, snap.Profiles[u])
		}
	}
	for _, u := range w.freshAlert {
		if len(snap.Profiles[u]) != 1 {
			t.Errorf("user %s has bindings %v, want its one fresh binding", u, snap.Profiles[u])
		}
	}
	for i := range 40 {
		if i%3 != 2 {
			continue
		}
		if it := w.item(t, "u#"+app+"#d"+strconv.Itoa(i), "conv#group#g"); it["rt"] == nil {
			t.Errorf("conversation of d%d lost its remind type: %v", i, it)
		}
	}
}

// testThrottled runs cleanup with a fifth of all requests throttled and a
// third of batch keys left unprocessed: the outcome must be exactly that of
// a run without faults.
func testThrottled(t *testing.T, endpoint string) {
	w := newMixedWorld(t, endpoint)
	proxy := testenv.NewProxy(t, endpoint, testenv.ProxyOptions{Seed: 42, ThrottleRate: 0.2, UnprocessedRate: 0.3})
	got, err := w.cleaner(proxy, nil).Run(context.Background())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	faults := 0
	for _, c := range proxy.Counts() {
		faults += c.Faults
	}
	if faults == 0 {
		t.Fatal("the proxy injected no faults")
	}
	want := cleanup.Counts{
		DNDExpired: w.expiredDND, ConversationsDeleted: w.emptyConvs, OrphanIndexRemoved: w.orphans, Complete: true,
		// A stale VoIP record either goes with its alert token's binding
		// (its own removal then conflicts, or it is no longer listed) or
		// is removed on its own first, which counts one more removal.
		// Both are right; check's look at the table decides.
		TokensRemoved: got.TokensRemoved, Conflicts: got.Conflicts,
		PagesRead: got.PagesRead, RecordsRead: got.RecordsRead,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Run counts mismatch (-want +got):\n%s", diff)
	}
	if got.TokensRemoved < len(w.staleAlert) {
		t.Errorf("Run removed %d tokens, want at least the %d stale alert bindings", got.TokensRemoved, len(w.staleAlert))
	}
	t.Logf("with %d injected faults: %+v", faults, got)
	w.check(t)
}

// resetter re-sets chosen records just before cleanup writes them, as a
// user's PATCH or an app's token refresh racing with the run would.
type resetter struct {
	*dynamo.CleanupStore
	beforeClear  func(dynamo.DNDExpiry)
	beforeRemove func(dynamo.StaleToken)
}

func (r resetter) ClearDND(ctx context.Context, e dynamo.DNDExpiry) (bool, error) {
	r.beforeClear(e)
	return r.CleanupStore.ClearDND(ctx, e)
}

func (r resetter) RemoveStaleToken(ctx context.Context, t dynamo.StaleToken) (bool, error) {
	r.beforeRemove(t)
	return r.CleanupStore.RemoveStaleToken(ctx, t)
}

func testSetAnew(t *testing.T, endpoint string) {
	w := newWorld(t, endpoint)
	ctx := context.Background()
	expired, renewed := t0.Add(-time.Minute), t0.Add(time.Hour)
	w.seed(t, []map[string]types.AttributeValue{
		dndItem("amy", "g1", "", expired, 1),   // re-set below
		dndItem("amy", "", "", expired, 2),     // re-set below
		dndItem("bea", "g1", "", expired, 1),   // removed
		dndItem("bea", "", "", expired, 2),     // removed
		dndItem("cyd", "g1", "AT", expired, 3), // cleared, kept for its remind type
	})
	old := t0.Add(-maxAge - time.Hour)
	w.register(t, "amy", "phone", push.FCM, "fcm-amy", "", old) // refreshed below
	w.register(t, "bea", "phone", push.FCM, "fcm-bea", "", old) // removed

	wrap := func(st *dynamo.CleanupStore) (cleanup.DNDStore[dynamo.DNDExpiry], cleanup.TokenStore[dynamo.StaleToken]) {
		r := resetter{
			CleanupStore: st,
			beforeClear: func(e dynamo.DNDExpiry) {
				if e.PK != "u#"+app+"#amy" {
					return
				}
				var err error
				if e.SK == "profile" {
					_, err = w.settings.PatchAppSettings(ctx, app, "amy", dynamo.SettingsPatch{
						DNDUntil: dynamo.SettingChange[time.Time]{Op: dynamo.SettingSet, Value: renewed}})
				} else {
					_, err = w.settings.PatchConversationSettings(ctx, app, "amy", dynamo.ConversationKey{Type: push.Group, ID: "g1"}, dynamo.ConversationPatch{
						DNDUntil: dynamo.SettingChange[time.Time]{Op: dynamo.SettingSet, Value: renewed}}, t0)
				}
				if err != nil {
					t.Errorf("re-set %s: %v", e.SK, err)
				}
			},
			beforeRemove: func(tok dynamo.StaleToken) {
				if tok.UserID == "amy" {
					w.register(t, "amy", "phone", push.FCM, "fcm-amy", "", t0)
				}
			},
		}
		return r, r
	}
	proxy := testenv.NewProxy(t, endpoint, testenv.ProxyOptions{Serialize: true})
	got, err := w.cleaner(proxy, wrap).Run(ctx)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := cleanup.Counts{DNDExpired: 3, ConversationsDeleted: 1, TokensRemoved: 1, Conflicts: 3, Complete: true,
		PagesRead: got.PagesRead, RecordsRead: 7}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Run counts mismatch (-want +got):\n%s", diff)
	}
	for _, sk := range []string{"profile", "conv#group#g1"} {
		it := w.item(t, "u#"+app+"#amy", sk)
		if du, _ := it["du"].(*types.AttributeValueMemberN); du == nil || du.Value != strconv.FormatInt(renewed.UnixMilli(), 10) {
			t.Errorf("amy's %s after the race = %v, want du %d", sk, it, renewed.UnixMilli())
		}
	}
	if it := w.item(t, "u#"+app+"#bea", "conv#group#g1"); it != nil {
		t.Errorf("bea's empty conversation record survived: %v", it)
	}
	if it := w.item(t, "u#"+app+"#cyd", "conv#group#g1"); it["rt"] == nil || it["du"] != nil {
		t.Errorf("cyd's conversation = %v, want its remind type without a duration", it)
	}
	snap, err := w.devices.Load(ctx, app, []string{"amy", "bea"}, []dynamo.TokenKey{{Vendor: push.FCM, Token: "fcm-amy"}, {Vendor: push.FCM, Token: "fcm-bea"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Profiles["amy"]) != 1 || snap.Tokens[dynamo.TokenKey{Vendor: push.FCM, Token: "fcm-amy"}] == nil {
		t.Errorf("amy's refreshed token was removed: %+v", snap)
	}
	if len(snap.Profiles["bea"]) != 0 || snap.Tokens[dynamo.TokenKey{Vendor: push.FCM, Token: "fcm-bea"}] != nil {
		t.Errorf("bea's stale token survived: %+v", snap)
	}
}
