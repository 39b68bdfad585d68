package dynamo_test

import (
	"context"
	"errors"
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

// presenceEnv is one emulator with the template's tables, shared by the
// subtests of TestPresenceStore; each subtest uses its own users.
type presenceEnv struct {
	client *dynamodb.Client
	table  string
	store  *dynamo.PresenceStore
}

func newPresenceEnv(t *testing.T) *presenceEnv {
	t.Helper()
	srv := testenv.Moto(t)
	stack := testenv.Stack(t, srv.Endpoint)
	client := dynamodb.NewFromConfig(testenv.AWSConfig(srv.Endpoint))
	table := stack.Tables["StateTable"]
	return &presenceEnv{client: client, table: table, store: dynamo.NewPresenceStore(client, table)}
}

// item reads a raw item of StateTable, nil when there is none.
func (e *presenceEnv) item(t *testing.T, pk, sk string) map[string]types.AttributeValue {
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

func TestPresenceStore(t *testing.T) {
	env := newPresenceEnv(t)
	t.Run("EpochOrder", env.testEpochOrder)
	t.Run("KeepPlatform", env.testKeepPlatform)
	t.Run("Badge", env.testBadge)
	t.Run("TTL", env.testTTL)
	t.Run("ItemSize", env.testItemSize)
	t.Run("UnknownUser", env.testUnknownUser)
}

// presenceT0 is an arbitrary server clock at millisecond precision.
var presenceT0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func presenceLease(device string, platform push.Platform, epoch int64, until time.Time) push.Lease {
	return push.Lease{DeviceID: device, Platform: platform, Epoch: epoch, Until: until}
}

func (e *presenceEnv) testEpochOrder(t *testing.T) {
	ctx := context.Background()
	until := presenceT0.Add(5 * time.Minute)
	later := presenceT0.Add(10 * time.Minute)
	steps := []struct {
		name        string
		put         push.Lease
		wantApplied bool
		wantStored  push.Lease
	}{
		{"first lease", presenceLease("pc", push.PlatformPC, 5, until), true, presenceLease("pc", push.PlatformPC, 5, until)},
		{"lower epoch", presenceLease("pc", push.PlatformPC, 4, later), false, presenceLease("pc", push.PlatformPC, 5, until)},
		{"late offline of an old connection", presenceLease("pc", push.PlatformPC, 3, time.Time{}), false, presenceLease("pc", push.PlatformPC, 5, until)},
		{"equal epoch renews", presenceLease("pc", push.PlatformPC, 5, later), true, presenceLease("pc", push.PlatformPC, 5, later)},
		{"higher epoch offline", presenceLease("pc", push.PlatformPC, 6, time.Time{}), true, presenceLease("pc", push.PlatformPC, 6, time.Time{})},
		{"offline answers stored offline", presenceLease("pc", push.PlatformWeb, 1, later), false, presenceLease("pc", push.PlatformPC, 6, time.Time{})},
	}
	for _, s := range steps {
		stored, applied, err := e.store.PutLease(ctx, "demo", "order", s.put, nil, presenceT0)
		if err != nil {
			t.Fatalf("%s: PutLease: %v", s.name, err)
		}
		if applied != s.wantApplied {
			t.Errorf("%s: applied = %v, want %v", s.name, applied, s.wantApplied)
		}
		if diff := cmp.Diff(s.wantStored, stored); diff != "" {
			t.Errorf("%s: stored lease (-want +got):\n%s", s.name, diff)
		}
		leases, err := e.store.Leases(ctx, "demo", "order")
		if err != nil {
			t.Fatalf("%s: Leases: %v", s.name, err)
		}
		if diff := cmp.Diff([]push.Lease{s.wantStored}, leases); diff != "" {
			t.Errorf("%s: Leases (-want +got):\n%s", s.name, diff)
		}
	}
}

func (e *presenceEnv) testKeepPlatform(t *testing.T) {
	ctx := context.Background()
	until := presenceT0.Add(time.Minute)
	steps := []struct {
		name        string
		device      string
		put         push.Lease
		wantApplied bool
		want        []push.Lease
	}{
		{"offline without platform creates a lease without one", "web",
			presenceLease("web", "", 2, time.Time{}), true,
			[]push.Lease{presenceLease("web", "", 2, time.Time{})}},
		{"a lower epoch cannot take it online", "web",
			presenceLease("web", push.PlatformWeb, 1, until), false,
			[]push.Lease{presenceLease("web", "", 2, time.Time{})}},
		{"online sets the platform", "mac",
			presenceLease("mac", push.PlatformMac, 1, until), true,
			[]push.Lease{presenceLease("mac", push.PlatformMac, 1, until), presenceLease("web", "", 2, time.Time{})}},
		{"offline without platform keeps it", "mac",
			presenceLease("mac", "", 2, time.Time{}), true,
			[]push.Lease{presenceLease("mac", push.PlatformMac, 2, time.Time{}), presenceLease("web", "", 2, time.Time{})}},
		{"a lower offline without platform applies nothing", "mac",
			presenceLease("mac", "", 1, time.Time{}), false,
			[]push.Lease{presenceLease("mac", push.PlatformMac, 2, time.Time{}), presenceLease("web", "", 2, time.Time{})}},
	}
	for _, s := range steps {
		_, applied, err := e.store.PutLease(ctx, "demo", "keep", s.put, nil, presenceT0)
		if err != nil {
			t.Fatalf("%s: PutLease: %v", s.name, err)
		}
		if applied != s.wantApplied {
			t.Errorf("%s: applied = %v, want %v", s.name, applied, s.wantApplied)
		}
		got, err := e.store.Leases(ctx, "demo", "keep")
		if err != nil {
			t.Fatalf("%s: Leases: %v", s.name, err)
		}
		if diff := cmp.Diff(s.want, got); diff != "" {
			t.Errorf("%s: Leases (-want +got):\n%s", s.name, diff)
		}
	}
}

func (e *presenceEnv) testBadge(t *testing.T) {
	ctx := context.Background()
	if _, err := e.store.Badge(ctx, "demo", "badge"); !errors.Is(err, push.ErrNotFound) {
		t.Fatalf("Badge of a user without one: err = %v, want push.ErrNotFound", err)
	}
	n := func(v int64) *int64 { return &v }
	until := presenceT0.Add(time.Minute)
	steps := []struct {
		name        string
		put         push.Lease
		badge       *int64 // nil: SetBadge is not part of the step
		set         *int64 // SetBadge before the step
		wantApplied bool
		wantBadge   int64
	}{
		{"badge with the first lease", presenceLease("ios", push.PlatformIOS, 3, until), n(7), nil, true, 7},
		{"badge with a lower epoch is not applied", presenceLease("ios", push.PlatformIOS, 2, until), n(1), nil, false, 7},
		{"badge with an equal epoch applies", presenceLease("ios", push.PlatformIOS, 3, until), n(4), nil, true, 4},
		{"offline keeping the platform with a badge", presenceLease("ios", "", 4, time.Time{}), n(0), nil, true, 0},
		{"new device offline without platform with a badge", presenceLease("pad", "", 1, time.Time{}), n(9), nil, true, 9},
		{"heartbeat without badge leaves the base", presenceLease("ios", push.PlatformIOS, 5, until), nil, n(12), true, 12},
	}
	for _, s := range steps {
		if s.set != nil {
			if err := e.store.SetBadge(ctx, "demo", "badge", *s.set); err != nil {
				t.Fatalf("%s: SetBadge: %v", s.name, err)
			}
		}
		_, applied, err := e.store.PutLease(ctx, "demo", "badge", s.put, s.badge, presenceT0)
		if err != nil {
			t.Fatalf("%s: PutLease: %v", s.name, err)
		}
		if applied != s.wantApplied {
			t.Errorf("%s: applied = %v, want %v", s.name, applied, s.wantApplied)
		}
		got, err := e.store.Badge(ctx, "demo", "badge")
		if err != nil {
			t.Fatalf("%s: Badge: %v", s.name, err)
		}
		if got != s.wantBadge {
			t.Errorf("%s: badge = %d, want %d", s.name, got, s.wantBadge)
		}
	}
	leases, err := e.store.Leases(ctx, "demo", "badge")
	if err != nil {
		t.Fatal(err)
	}
	want := []push.Lease{presenceLease("ios", push.PlatformIOS, 5, until), presenceLease("pad", "", 1, time.Time{})}
	if diff := cmp.Diff(want, leases); diff != "" {
		t.Errorf("Leases after the badge steps (-want +got):\n%s", diff)
	}
}

// testTTL checks that every applied write sets the item's TTL to a week
// after the longest lease the write could have granted, and that a write
// that does not apply leaves it alone.
func (e *presenceEnv) testTTL(t *testing.T) {
	ctx := context.Background()
	steps := []struct {
		name string
		now  time.Time
		put  push.Lease
		want time.Time
	}{
		{"online", presenceT0, presenceLease("a", push.PlatformPC, 1, presenceT0.Add(30*time.Second)), presenceT0.Add(8 * 24 * time.Hour)},
		{"offline a minute later", presenceT0.Add(time.Minute), presenceLease("a", push.PlatformPC, 2, time.Time{}), presenceT0.Add(time.Minute + 8*24*time.Hour)},
		{"ignored update", presenceT0.Add(time.Hour), presenceLease("a", push.PlatformPC, 1, time.Time{}), presenceT0.Add(time.Minute + 8*24*time.Hour)},
	}
	for _, s := range steps {
		if _, _, err := e.store.PutLease(ctx, "demo", "ttl", s.put, nil, s.now); err != nil {
			t.Fatalf("%s: PutLease: %v", s.name, err)
		}
		item := e.item(t, "u#demo#ttl", "presence")
		n, ok := item["ttl"].(*types.AttributeValueMemberN)
		if !ok {
			t.Fatalf("%s: item has no numeric ttl: %v", s.name, item)
		}
		if want := strconv.FormatInt(s.want.Unix(), 10); n.Value != want {
			t.Errorf("%s: ttl = %s, want %s", s.name, n.Value, want)
		}
	}
}

// testItemSize measures the presence item of a user with five devices whose
// ids have the longest allowed length, as DynamoDB bills it, and checks that
// a heartbeat stays a write of under 1 KB (DESIGN.md, Data and cost).
func (e *presenceEnv) testItemSize(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name  string
		app   string
		user  string
		epoch int64
	}{
		{"short app and user, small epochs", "demo", "u1", 17},
		{"32-char app, 128-char user, largest epochs", strings.Repeat("a", 32), strings.Repeat("u", 128), 1<<63 - 1},
	}
	for _, c := range cases {
		for i := range 5 {
			device := strings.Repeat(strconv.Itoa(i), 128)
			l := presenceLease(device, push.PlatformAndroid, c.epoch, presenceT0.Add(24*time.Hour+999*time.Millisecond))
			if _, applied, err := e.store.PutLease(ctx, c.app, c.user, l, nil, presenceT0); err != nil || !applied {
				t.Fatalf("%s: PutLease of device %d: applied %v, err %v", c.name, i, applied, err)
			}
		}
		item := e.item(t, "u#"+c.app+"#"+c.user, "presence")
		size := presenceItemSize(item)
		t.Logf("%s: presence item of 5 devices with 128-char ids: %d bytes", c.name, size)
		if size >= 1024 {
			t.Errorf("%s: presence item is %d bytes, want < 1024", c.name, size)
		}
	}
}

func (e *presenceEnv) testUnknownUser(t *testing.T) {
	leases, err := e.store.Leases(context.Background(), "demo", "nobody")
	if err != nil {
		t.Fatal(err)
	}
	if leases == nil || len(leases) != 0 {
		t.Errorf("Leases of an unknown user = %#v, want an empty list", leases)
	}
}

// presenceItemSize computes an item's size the way DynamoDB bills it: the
// UTF-8 bytes of each attribute name plus its value's size, where a number
// takes one byte per two significant digits plus one, and a map three bytes
// plus one per element on top of its elements.
func presenceItemSize(item map[string]types.AttributeValue) int {
	n := 0
	for name, v := range item {
		n += len(name) + presenceValueSize(v)
	}
	return n
}

func presenceValueSize(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		digits := strings.Trim(strings.NewReplacer("-", "", ".", "").Replace(v.Value), "0")
		return (max(len(digits), 1)+1)/2 + 1
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return 1
	case *types.AttributeValueMemberM:
		n := 3
		for k, e := range v.Value {
			n += len(k) + presenceValueSize(e) + 1
		}
		return n
	case *types.AttributeValueMemberL:
		n := 3
		for _, e := range v.Value {
			n += presenceValueSize(e) + 1
		}
		return n
	case *types.AttributeValueMemberB:
		return len(v.Value)
	}
	panic("unexpected attribute value type")
}
