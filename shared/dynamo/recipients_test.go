package dynamo_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/go-cmp/cmp"

	"github.com/offline-push/offline-push/shared/dynamo"
	"github.com/offline-push/offline-push/shared/push"
	"github.com/offline-push/offline-push/shared/testenv"
)

// recipientsT0 is the clock of the recipient tests, at millisecond precision
// and in the future of any TTL the emulator could act on.
var recipientsT0 = time.Now().UTC().Truncate(time.Millisecond).Add(time.Hour)

// recipientFixture is the state written for user i of the read tests,
// through the real stores, and what Read must return for it.
func recipientFixture(t *testing.T, ctx context.Context, db *dynamodb.Client, table string, i int) dynamo.RecipientState {
	t.Helper()
	user := fmt.Sprintf("r%03d", i)
	want := dynamo.RecipientState{UserID: user, Settings: push.DefaultSettings()}
	devices := dynamo.NewDeviceStore(db, table)
	presence := dynamo.NewPresenceStore(db, table)
	settings := dynamo.NewSettingsStore(db, table)
	calls := dynamo.NewCallStore(db, table)
	conv := dynamo.ConversationKey{Type: push.Group, ID: "g1"}

	if i%5 != 0 { // every fifth user has no device
		b := push.Binding{
			DeviceID: "phone", Vendor: push.APNs, Token: fmt.Sprintf("%064x", i), CertName: "ios",
			Platform: push.PlatformIOS, Environment: push.Production, Locale: "en-GB",
			RegisteredAt: recipientsT0.Add(-time.Hour),
		}
		c := push.Binding{
			DeviceID: "android", Vendor: push.FCM, Token: fmt.Sprintf("fcm-%d", i), CertName: "fcm",
			Platform: push.PlatformAndroid, RegisteredAt: recipientsT0.Add(-time.Hour),
		}
		if err := devices.Commit(ctx, "demo", dynamo.BindingChange{Profiles: []dynamo.ProfileChange{{UserID: user, Set: []push.Binding{b, c}}}}); err != nil {
			t.Fatalf("commit bindings of %s: %v", user, err)
		}
		want.Bindings = []push.Binding{c, b} // by device id
	}
	if i%3 == 0 {
		l := push.Lease{DeviceID: "phone", Platform: push.PlatformIOS, Epoch: 1, Until: recipientsT0.Add(time.Minute)}
		if _, _, err := presence.PutLease(ctx, "demo", user, l, nil, recipientsT0); err != nil {
			t.Fatalf("put lease of %s: %v", user, err)
		}
		want.Leases = []push.Lease{l}
	}
	if i%4 == 0 {
		st, err := settings.PatchAppSettings(ctx, "demo", user, dynamo.SettingsPatch{
			RemindType: dynamo.SettingChange[push.RemindType]{Op: dynamo.SettingSet, Value: push.RemindAt},
			Language:   dynamo.SettingChange[string]{Op: dynamo.SettingSet, Value: "zh"},
		})
		if err != nil {
			t.Fatalf("patch settings of %s: %v", user, err)
		}
		want.Settings = st
	}
	if i%7 == 0 {
		cs, err := settings.PatchConversationSettings(ctx, "demo", user, conv, dynamo.ConversationPatch{
			RemindType: dynamo.SettingChange[push.RemindType]{Op: dynamo.SettingSet, Value: push.RemindNone},
		}, recipientsT0)
		if err != nil {
			t.Fatalf("patch conversation of %s: %v", user, err)
		}
		want.Conversation = cs
	}
	if i%6 == 0 {
		rec := push.CallRecord{CallID: "call-1", AcceptedAt: recipientsT0, ExpiresAt: recipientsT0.Add(time.Minute)}
		devs := []push.CallDevice{{DeviceID: "phone", Vendor: push.APNs, CertName: "ios", Kind: push.TokenAlert}}
		if _, err := calls.Ring(ctx, "demo", user, rec, devs, recipientsT0); err != nil {
			t.Fatalf("ring %s: %v", user, err)
		}
		want.Call = &dynamo.CallState{Record: rec, Devices: devs}
	}
	return want
}

func TestRecipientReader(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto_server")
	}
	ctx := context.Background()
	srv := testenv.Moto(t)
	stack := testenv.Stack(t, srv.Endpoint)
	table := stack.Tables["StateTable"]
	db := dynamodb.NewFromConfig(testenv.AWSConfig(srv.Endpoint))

	const n = 250
	users := make([]string, n)
	want := make([]dynamo.RecipientState, n)
	for i := range n {
		want[i] = recipientFixture(t, ctx, db, table, i)
		users[i] = want[i].UserID
	}
	full := dynamo.RecipientQuery{Presence: true, Conversation: &dynamo.ConversationKey{Type: push.Group, ID: "g1"}, Call: true}
	noCall := dynamo.RecipientQuery{Presence: true, Conversation: full.Conversation}
	strip := func(in []dynamo.RecipientState, q dynamo.RecipientQuery) []dynamo.RecipientState {
		out := make([]dynamo.RecipientState, len(in))
		for i, s := range in {
			if !q.Call {
				s.Call = nil
			}
			if !q.Presence {
				s.Leases = nil
			}
			if q.Conversation == nil {
				s.Conversation = push.ConversationSettings{}
			}
			out[i] = s
		}
		return out
	}

	tests := []struct {
		name string
		opt  testenv.ProxyOptions
		q    dynamo.RecipientQuery
		// wantRequests is the exact number of BatchGetItem calls without
		// faults: ceil(keys per recipient * n / 100).
		wantRequests int
	}{
		{"four keys per recipient", testenv.ProxyOptions{}, full, 10},
		{"three keys per recipient", testenv.ProxyOptions{}, noCall, 8},
		{"profile only", testenv.ProxyOptions{}, dynamo.RecipientQuery{}, 3},
		{"unprocessed keys and throttling are retried", testenv.ProxyOptions{Seed: 11, UnprocessedRate: 0.3, ThrottleRate: 0.2}, full, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proxy := testenv.NewProxy(t, srv.Endpoint, tt.opt)
			r := dynamo.NewRecipientReader(dynamodb.NewFromConfig(testenv.AWSConfig(proxy.URL)), table)
			got, err := r.Read(ctx, "demo", users, tt.q, recipientsT0)
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if diff := cmp.Diff(strip(want, tt.q), got); diff != "" {
				t.Errorf("Read (-want +got):\n%s", diff)
			}
			c := proxy.Counts()["BatchGetItem"]
			if tt.wantRequests >= 0 && c.Requests != tt.wantRequests {
				t.Errorf("BatchGetItem requests = %d, want %d", c.Requests, tt.wantRequests)
			}
			if tt.wantRequests < 0 && c.Faults == 0 {
				t.Errorf("BatchGetItem faults = 0, want some injected")
			}
			for op, oc := range proxy.Counts() {
				if op != "BatchGetItem" && oc.Requests > 0 {
					t.Errorf("Read made %d %s requests, want BatchGetItem only", oc.Requests, op)
				}
			}
		})
	}

	t.Run("expired call record reads as none", func(t *testing.T) {
		got, err := dynamo.NewRecipientReader(db, table).Read(ctx, "demo", []string{"r000"}, full, recipientsT0.Add(48*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if got[0].Call != nil {
			t.Errorf("call two days after its expiry = %+v, want nil", got[0].Call)
		}
	})
	t.Run("duplicate users are refused", func(t *testing.T) {
		if _, err := dynamo.NewRecipientReader(db, table).Read(ctx, "demo", []string{"r001", "r001"}, full, recipientsT0); err == nil {
			t.Error("Read with a duplicate user = nil error, want one")
		}
	})
	t.Run("unknown users have defaults", func(t *testing.T) {
		got, err := dynamo.NewRecipientReader(db, table).Read(ctx, "other-app", []string{"r001"}, full, recipientsT0)
		if err != nil {
			t.Fatal(err)
		}
		want := []dynamo.RecipientState{{UserID: "r001", Settings: push.DefaultSettings()}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Read of an unknown user (-want +got):\n%s", diff)
		}
	})
}
