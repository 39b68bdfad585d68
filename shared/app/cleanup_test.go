package app

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/go-cmp/cmp"

	"github.com/offline-push/offline-push/shared/cleanup"
	"github.com/offline-push/offline-push/shared/dynamo"
	"github.com/offline-push/offline-push/shared/push"
	"github.com/offline-push/offline-push/shared/testenv"
)

func TestCleanupConfig(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr bool
	}{
		{"defaults", map[string]string{EnvStateTable: "t"}, false},
		{"max age set", map[string]string{EnvStateTable: "t", EnvTokenMaxAgeDays: "30"}, false},
		{"no table", map[string]string{}, true},
		{"max age zero", map[string]string{EnvStateTable: "t", EnvTokenMaxAgeDays: "0"}, true},
		{"max age negative", map[string]string{EnvStateTable: "t", EnvTokenMaxAgeDays: "-5"}, true},
		{"max age not a number", map[string]string{EnvStateTable: "t", EnvTokenMaxAgeDays: "270d"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Cleanup(context.Background(), testenv.Env("http://127.0.0.1:1", tt.env), slog.New(slog.NewJSONHandler(io.Discard, nil)))
			if (err != nil) != tt.wantErr {
				t.Errorf("Cleanup() error = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

// TestCleanupFunction runs the cleanup function as Lambda would, with the
// sample scheduled event and the template's environment, against records
// placed around the real clock (a run's clock is the wall clock).
func TestCleanupFunction(t *testing.T) {
	srv := testenv.Moto(t)
	stack := testenv.Stack(t, srv.Endpoint)
	env := stack.FunctionEnv("CleanupFunction")
	table := env[EnvStateTable]
	db := dynamodb.NewFromConfig(testenv.AWSConfig(srv.Endpoint))
	ctx := context.Background()

	now := time.Now().UTC()
	st := dynamo.NewSettingsStore(db, table)
	for _, p := range []struct {
		user  string
		until time.Time
	}{{"ann", now.Add(-time.Hour)}, {"ben", now.Add(time.Hour)}} {
		if _, err := st.PatchAppSettings(ctx, "demo", p.user, dynamo.SettingsPatch{
			DNDUntil: dynamo.SettingChange[time.Time]{Op: dynamo.SettingSet, Value: p.until}}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.PatchConversationSettings(ctx, "demo", p.user, dynamo.ConversationKey{Type: push.Group, ID: "g"}, dynamo.ConversationPatch{
			DNDUntil: dynamo.SettingChange[time.Time]{Op: dynamo.SettingSet, Value: p.until}}, now.Add(-2*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	devs := dynamo.NewDeviceStore(db, table)
	for _, d := range []struct {
		user       string
		registered time.Time
	}{{"ann", now.Add(-271 * 24 * time.Hour)}, {"ben", now.Add(-269 * 24 * time.Hour)}} {
		token := "fcm-" + d.user
		if err := devs.Commit(ctx, "demo", dynamo.BindingChange{
			Profiles: []dynamo.ProfileChange{{UserID: d.user, Set: []push.Binding{{DeviceID: "phone", Vendor: push.FCM, Token: token,
				CertName: "c", Platform: push.PlatformAndroid, RegisteredAt: d.registered}}}},
			Tokens: []dynamo.TokenChange{{Key: dynamo.TokenKey{Vendor: push.FCM, Token: token},
				Put: &dynamo.TokenOwner{Owner: push.Owner{UserID: d.user, DeviceID: "phone"}, Kind: push.TokenAlert, Refreshed: d.registered}}},
		}); err != nil {
			t.Fatal(err)
		}
	}

	h, err := Cleanup(ctx, testenv.Env(srv.Endpoint, env), slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	raw, err := os.ReadFile(filepath.Join("..", "..", "events", "cleanup", "scheduled.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.EventBridgeEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatalf("events/cleanup/scheduled.json is not an EventBridge event: %v", err)
	}
	if ev.DetailType != "Scheduled Event" {
		t.Errorf("events/cleanup/scheduled.json detail-type = %q, want Scheduled Event", ev.DetailType)
	}
	// Lambda gives the function its timeout as the context deadline.
	runCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := h(runCtx, ev)
	if err != nil {
		t.Fatalf("cleanup run: %v", err)
	}
	want := cleanup.Counts{DNDExpired: 2, ConversationsDeleted: 1, TokensRemoved: 1, Complete: true,
		PagesRead: 2 * dynamo.Shards, RecordsRead: 3}
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("cleanup result mismatch (-want +got):\n%s", diff)
	}
	// A second run finds nothing: cleanup is idempotent.
	out, err = h(runCtx, ev)
	if err != nil {
		t.Fatalf("second cleanup run: %v", err)
	}
	want = cleanup.Counts{Complete: true, PagesRead: 2 * dynamo.Shards}
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("second cleanup result mismatch (-want +got):\n%s", diff)
	}

	for _, u := range []struct {
		user        string
		wantDND     bool
		wantDevices int
	}{{"ann", false, 0}, {"ben", true, 1}} {
		s, err := st.AppSettings(ctx, "demo", u.user)
		if err != nil {
			t.Fatal(err)
		}
		if got := !s.DNDUntil.IsZero(); got != u.wantDND {
			t.Errorf("%s keeps an app-level duration: %v, want %v", u.user, got, u.wantDND)
		}
		bs, _, err := devs.Devices(ctx, "demo", u.user)
		if err != nil {
			t.Fatal(err)
		}
		if len(bs) != u.wantDevices {
			t.Errorf("%s has %d devices, want %d", u.user, len(bs), u.wantDevices)
		}
	}
}
