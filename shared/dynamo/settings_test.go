package dynamo_test

import (
	"context"
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

// settingsEnv is one emulator with the template's tables, shared by the
// subtests of TestSettingsStore; each subtest uses its own users.
type settingsEnv struct {
	endpoint string
	client   *dynamodb.Client
	table    string
	store    *dynamo.SettingsStore
}

func newSettingsEnv(t *testing.T) *settingsEnv {
	t.Helper()
	srv := testenv.Moto(t)
	stack := testenv.Stack(t, srv.Endpoint)
	client := dynamodb.NewFromConfig(testenv.AWSConfig(srv.Endpoint))
	table := stack.Tables["StateTable"]
	return &settingsEnv{endpoint: srv.Endpoint, client: client, table: table, store: dynamo.NewSettingsStore(client, table)}
}

// item reads a raw item of StateTable, nil when there is none.
func (e *settingsEnv) item(t *testing.T, pk, sk string) map[string]types.AttributeValue {
	t.Helper()
	out, err := e.client.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName:      aws.String(e.table),
		Key:            map[string]types.AttributeValue{"pk": settingsS(pk), "sk": settingsS(sk)},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatalf("GetItem %s/%s: %v", pk, sk, err)
	}
	return out.Item
}

func (e *settingsEnv) put(t *testing.T, item map[string]types.AttributeValue) {
	t.Helper()
	if _, err := e.client.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(e.table), Item: item}); err != nil {
		t.Fatalf("PutItem: %v", err)
	}
}

func settingsS(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

// settingsT0 is an arbitrary clock reading at millisecond precision.
var settingsT0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func settingSet[T any](v T) dynamo.SettingChange[T] {
	return dynamo.SettingChange[T]{Op: dynamo.SettingSet, Value: v}
}

func settingRemove[T any]() dynamo.SettingChange[T] {
	return dynamo.SettingChange[T]{Op: dynamo.SettingRemove}
}

func TestSettingsStore(t *testing.T) {
	env := newSettingsEnv(t)
	t.Run("AppDefaults", env.testAppDefaults)
	t.Run("AppPatch", env.testAppPatch)
	t.Run("ConversationPatch", env.testConversationPatch)
	t.Run("ConversationBatch", env.testConversationBatch)
	t.Run("ConversationBatchUnprocessed", env.testConversationBatchUnprocessed)
}

func (e *settingsEnv) testAppDefaults(t *testing.T) {
	got, err := e.store.AppSettings(context.Background(), "demo", "nobody")
	if err != nil {
		t.Fatalf("AppSettings: %v", err)
	}
	if diff := cmp.Diff(push.DefaultSettings(), got); diff != "" {
		t.Errorf("AppSettings of an unknown user mismatch (-want +got):\n%s", diff)
	}
}

func (e *settingsEnv) testAppPatch(t *testing.T) {
	ctx := context.Background()
	// A device binding on the profile item must survive every settings write.
	binding := &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"t": settingsS("abc123"), "vn": settingsS("fcm")}}
	e.put(t, map[string]types.AttributeValue{"pk": settingsS("u#demo#alice"), "sk": settingsS("profile"), "d#phone": binding})

	until := settingsT0.Add(time.Hour)
	window := push.DNDWindow{Start: 22 * 60, End: 7*60 + 30, TimeZone: "Asia/Shanghai"}
	all := push.Settings{
		RemindType: push.RemindAt, Window: &window, DNDUntil: until, Language: "zh-CN",
		ShowPreview: false, MultiDevicePolicy: push.AllOffline, MobilePushWhenDesktopOnline: false,
	}
	steps := []struct {
		name      string
		patch     dynamo.SettingsPatch
		want      push.Settings
		wantIndex bool // the item carries xs/xu
	}{
		{"set everything", dynamo.SettingsPatch{
			RemindType: settingSet(push.RemindAt), Window: settingSet(window), DNDUntil: settingSet(until), Language: settingSet("zh-CN"),
			ShowPreview: settingSet(false), MultiDevicePolicy: settingSet(push.AllOffline), MobilePushWhenDesktopOnline: settingSet(false),
		}, all, true},
		{"keep all but the remind type", dynamo.SettingsPatch{RemindType: settingSet(push.RemindNone)},
			func() push.Settings { s := all; s.RemindType = push.RemindNone; return s }(), true},
		{"remove everything", dynamo.SettingsPatch{
			RemindType: settingRemove[push.RemindType](), Window: settingRemove[push.DNDWindow](), DNDUntil: settingRemove[time.Time](),
			Language: settingRemove[string](), ShowPreview: settingRemove[bool](), MultiDevicePolicy: settingRemove[push.MultiDevicePolicy](),
			MobilePushWhenDesktopOnline: settingRemove[bool](),
		}, push.DefaultSettings(), false},
	}
	for _, st := range steps {
		got, err := e.store.PatchAppSettings(ctx, "demo", "alice", st.patch)
		if err != nil {
			t.Fatalf("%s: PatchAppSettings: %v", st.name, err)
		}
		if diff := cmp.Diff(st.want, got); diff != "" {
			t.Errorf("%s: PatchAppSettings answer mismatch (-want +got):\n%s", st.name, diff)
		}
		read, err := e.store.AppSettings(ctx, "demo", "alice")
		if err != nil {
			t.Fatalf("%s: AppSettings: %v", st.name, err)
		}
		if diff := cmp.Diff(st.want, read); diff != "" {
			t.Errorf("%s: AppSettings after patch mismatch (-want +got):\n%s", st.name, diff)
		}
		item := e.item(t, "u#demo#alice", "profile")
		if diff := cmp.Diff(binding, item["d#phone"], cmp.AllowUnexported(types.AttributeValueMemberM{}, types.AttributeValueMemberS{})); diff != "" {
			t.Errorf("%s: device binding changed (-want +got):\n%s", st.name, diff)
		}
		_, hasXS := item["xs"]
		_, hasXU := item["xu"]
		if hasXS != st.wantIndex || hasXU != st.wantIndex {
			t.Errorf("%s: item has xs %v, xu %v; want both %v", st.name, hasXS, hasXU, st.wantIndex)
		}
		if st.wantIndex {
			if got, want := item["xu"].(*types.AttributeValueMemberN).Value, item["du"].(*types.AttributeValueMemberN).Value; got != want {
				t.Errorf("%s: xu = %s, want du = %s", st.name, got, want)
			}
		}
	}
}

func (e *settingsEnv) testConversationPatch(t *testing.T) {
	ctx := context.Background()
	g1 := dynamo.ConversationKey{Type: push.Group, ID: "g1"}
	until := settingsT0.Add(time.Hour)
	steps := []struct {
		name     string
		patch    dynamo.ConversationPatch
		now      time.Time
		want     push.ConversationSettings
		wantItem bool
	}{
		{"remind type", dynamo.ConversationPatch{RemindType: settingSet(push.RemindNone)}, settingsT0,
			push.ConversationSettings{RemindType: push.RemindNone}, true},
		{"add a duration", dynamo.ConversationPatch{DNDUntil: settingSet(until)}, settingsT0,
			push.ConversationSettings{RemindType: push.RemindNone, DNDUntil: until}, true},
		{"remove the remind type: the duration keeps the item", dynamo.ConversationPatch{RemindType: settingRemove[push.RemindType]()}, settingsT0,
			push.ConversationSettings{DNDUntil: until}, true},
		{"remove the duration: the empty item goes", dynamo.ConversationPatch{DNDUntil: settingRemove[time.Time]()}, settingsT0,
			push.ConversationSettings{}, false},
		{"a duration again", dynamo.ConversationPatch{DNDUntil: settingSet(until)}, settingsT0,
			push.ConversationSettings{DNDUntil: until}, true},
		{"an expired duration and no remind type: the item goes", dynamo.ConversationPatch{RemindType: settingRemove[push.RemindType]()}, until,
			push.ConversationSettings{DNDUntil: until}, false},
		{"removing from nothing leaves nothing", dynamo.ConversationPatch{RemindType: settingRemove[push.RemindType]()}, settingsT0,
			push.ConversationSettings{}, false},
	}
	for _, st := range steps {
		got, err := e.store.PatchConversationSettings(ctx, "demo", "bob", g1, st.patch, st.now)
		if err != nil {
			t.Fatalf("%s: PatchConversationSettings: %v", st.name, err)
		}
		if diff := cmp.Diff(st.want, got); diff != "" {
			t.Errorf("%s: answer mismatch (-want +got):\n%s", st.name, diff)
		}
		item := e.item(t, "u#demo#bob", "conv#group#g1")
		if (item != nil) != st.wantItem {
			t.Errorf("%s: item present = %v, want %v (%v)", st.name, item != nil, st.wantItem, item)
		}
	}

	if _, err := e.store.PatchConversationSettings(ctx, "demo", "bob", g1, dynamo.ConversationPatch{RemindType: settingSet(push.RemindAt)}, settingsT0); err != nil {
		t.Fatalf("PatchConversationSettings: %v", err)
	}
	for range 2 { // deleting twice is fine
		if err := e.store.DeleteConversationSettings(ctx, "demo", "bob", g1); err != nil {
			t.Fatalf("DeleteConversationSettings: %v", err)
		}
	}
	got, err := e.store.ConversationSettings(ctx, "demo", "bob", g1)
	if err != nil {
		t.Fatalf("ConversationSettings: %v", err)
	}
	if diff := cmp.Diff(push.ConversationSettings{}, got); diff != "" {
		t.Errorf("ConversationSettings after delete mismatch (-want +got):\n%s", diff)
	}
}

// seedConversations gives user carol settings on conversations g0..g(n-1):
// even ones a remind type, odd ones a duration.
func (e *settingsEnv) seedConversations(t *testing.T, store *dynamo.SettingsStore, user string, n int) map[dynamo.ConversationKey]push.ConversationSettings {
	t.Helper()
	want := map[dynamo.ConversationKey]push.ConversationSettings{}
	for i := range n {
		c := dynamo.ConversationKey{Type: push.Group, ID: "g" + string(rune('a'+i))}
		var p dynamo.ConversationPatch
		var cs push.ConversationSettings
		if i%2 == 0 {
			p.RemindType, cs.RemindType = settingSet(push.RemindAt), push.RemindAt
		} else {
			until := settingsT0.Add(time.Duration(i) * time.Minute)
			p.DNDUntil, cs.DNDUntil = settingSet(until), until
		}
		if _, err := store.PatchConversationSettings(context.Background(), "demo", user, c, p, settingsT0); err != nil {
			t.Fatalf("seed %v: %v", c, err)
		}
		want[c] = cs
	}
	return want
}

func (e *settingsEnv) testConversationBatch(t *testing.T) {
	want := e.seedConversations(t, e.store, "carol", 6)
	keys := []dynamo.ConversationKey{{Type: push.Peer, ID: "nobody"}}
	for c := range want {
		keys = append(keys, c)
	}
	got, err := e.store.ConversationSettingsBatch(context.Background(), "demo", "carol", keys)
	if err != nil {
		t.Fatalf("ConversationSettingsBatch: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ConversationSettingsBatch mismatch (-want +got):\n%s", diff)
	}
}

func (e *settingsEnv) testConversationBatchUnprocessed(t *testing.T) {
	want := e.seedConversations(t, e.store, "dave", 20)
	proxy := testenv.NewProxy(t, e.endpoint, testenv.ProxyOptions{Seed: 7, UnprocessedRate: 0.5, ThrottleRate: 0.2})
	store := dynamo.NewSettingsStore(dynamodb.NewFromConfig(testenv.AWSConfig(proxy.URL)), e.table)
	var keys []dynamo.ConversationKey
	for c := range want {
		keys = append(keys, c)
	}
	got, err := store.ConversationSettingsBatch(context.Background(), "demo", "dave", keys)
	if err != nil {
		t.Fatalf("ConversationSettingsBatch: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ConversationSettingsBatch through faults mismatch (-want +got):\n%s", diff)
	}
	if c := proxy.Counts()["BatchGetItem"]; c.Faults == 0 {
		t.Errorf("proxy injected no faults into BatchGetItem (%+v); the retry path went untested", c)
	}
}
