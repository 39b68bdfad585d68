package dynamo_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/offline-push/offline-push/shared/dynamo"
	"github.com/offline-push/offline-push/shared/push"
)

// cleanupEnv extends settingsEnv with the stores cleanup works with.
type cleanupEnv struct {
	*settingsEnv
	cleanup *dynamo.CleanupStore
	devices *dynamo.DeviceStore
}

func TestCleanupStore(t *testing.T) {
	se := newSettingsEnv(t)
	env := &cleanupEnv{
		settingsEnv: se,
		cleanup:     dynamo.NewCleanupStore(se.client, se.table),
		devices:     dynamo.NewDeviceStore(se.client, se.table),
	}
	// Subtests share one table and sweep every shard, so they run one after
	// the other and each leaves nothing expired behind.
	t.Run("DND", env.testDND)
	t.Run("DNDConflict", env.testDNDConflict)
	t.Run("DNDPages", env.testDNDPages)
	t.Run("Tokens", env.testTokens)
	t.Run("TokenConflict", env.testTokenConflict)
}

// allExpiredDND reads every page of every shard.
func (e *cleanupEnv) allExpiredDND(t *testing.T, before time.Time) []dynamo.DNDExpiry {
	t.Helper()
	var all []dynamo.DNDExpiry
	for shard := range e.cleanup.Shards() {
		cursor := ""
		for {
			recs, next, err := e.cleanup.ExpiredDND(context.Background(), shard, before, cursor)
			if err != nil {
				t.Fatalf("ExpiredDND(shard %d): %v", shard, err)
			}
			all = append(all, recs...)
			if next == "" {
				break
			}
			cursor = next
		}
	}
	slices.SortFunc(all, func(a, b dynamo.DNDExpiry) int {
		if a.PK+a.SK < b.PK+b.SK {
			return -1
		}
		return 1
	})
	return all
}

func (e *cleanupEnv) allStaleTokens(t *testing.T, before time.Time) []dynamo.StaleToken {
	t.Helper()
	var all []dynamo.StaleToken
	for shard := range e.cleanup.Shards() {
		cursor := ""
		for {
			recs, next, err := e.cleanup.StaleTokens(context.Background(), shard, before, cursor)
			if err != nil {
				t.Fatalf("StaleTokens(shard %d): %v", shard, err)
			}
			all = append(all, recs...)
			if next == "" {
				break
			}
			cursor = next
		}
	}
	slices.SortFunc(all, func(a, b dynamo.StaleToken) int {
		if a.Token < b.Token {
			return -1
		}
		return 1
	})
	return all
}

func (e *cleanupEnv) testDND(t *testing.T) {
	ctx := context.Background()
	expired, running := settingsT0.Add(-time.Minute), settingsT0.Add(time.Hour)
	e.put(t, map[string]types.AttributeValue{"pk": settingsS("u#clean#ann"), "sk": settingsS("profile"),
		"d#phone": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"t": settingsS("tok")}}})
	patches := []struct {
		user string
		conv *dynamo.ConversationKey
		p    dynamo.ConversationPatch
	}{
		{"ann", nil, dynamo.ConversationPatch{DNDUntil: settingSet(expired)}},
		{"ann", &dynamo.ConversationKey{Type: push.Group, ID: "g1"}, dynamo.ConversationPatch{DNDUntil: settingSet(expired)}},
		{"ann", &dynamo.ConversationKey{Type: push.Group, ID: "g2"}, dynamo.ConversationPatch{DNDUntil: settingSet(expired), RemindType: settingSet(push.RemindAt)}},
		{"ann", &dynamo.ConversationKey{Type: push.Peer, ID: "bo"}, dynamo.ConversationPatch{DNDUntil: settingSet(running)}},
		{"ben", nil, dynamo.ConversationPatch{DNDUntil: settingSet(running)}},
	}
	for _, p := range patches {
		var err error
		if p.conv == nil {
			_, err = e.store.PatchAppSettings(ctx, "clean", p.user, dynamo.SettingsPatch{DNDUntil: p.p.DNDUntil})
		} else {
			_, err = e.store.PatchConversationSettings(ctx, "clean", p.user, *p.conv, p.p, settingsT0.Add(-time.Hour))
		}
		if err != nil {
			t.Fatalf("seed: %v", err)
		}
	}

	got := e.allExpiredDND(t, settingsT0)
	want := []dynamo.DNDExpiry{
		{PK: "u#clean#ann", SK: "conv#group#g1", Until: expired.UnixMilli()},
		{PK: "u#clean#ann", SK: "conv#group#g2", Until: expired.UnixMilli()},
		{PK: "u#clean#ann", SK: "profile", Until: expired.UnixMilli()},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("ExpiredDND mismatch (-want +got):\n%s", diff)
	}
	wantDeleted := []bool{true, false, false}
	for i, r := range got {
		deleted, err := e.cleanup.ClearDND(ctx, r)
		if err != nil {
			t.Fatalf("ClearDND(%v): %v", r, err)
		}
		if deleted != wantDeleted[i] {
			t.Errorf("ClearDND(%v) deleted = %v, want %v", r, deleted, wantDeleted[i])
		}
	}
	if item := e.item(t, "u#clean#ann", "conv#group#g1"); item != nil {
		t.Errorf("conversation g1 left with nothing still exists: %v", item)
	}
	g2 := e.item(t, "u#clean#ann", "conv#group#g2")
	if _, ok := g2["rt"]; !ok {
		t.Errorf("conversation g2 lost its remind type: %v", g2)
	}
	profile := e.item(t, "u#clean#ann", "profile")
	if _, ok := profile["d#phone"]; !ok {
		t.Errorf("profile lost its device binding: %v", profile)
	}
	for _, it := range []map[string]types.AttributeValue{g2, profile} {
		for _, a := range []string{"du", "xs", "xu"} {
			if _, ok := it[a]; ok {
				t.Errorf("item %v still has %s", it["sk"], a)
			}
		}
	}
	if left := e.allExpiredDND(t, settingsT0); len(left) != 0 {
		t.Errorf("expired DND left after clearing: %v", left)
	}
	cs, err := e.store.ConversationSettings(ctx, "clean", "ann", dynamo.ConversationKey{Type: push.Peer, ID: "bo"})
	if err != nil || !cs.DNDUntil.Equal(running) {
		t.Errorf("running conversation duration = %v, %v; want %v", cs.DNDUntil, err, running)
	}
}

func (e *cleanupEnv) testDNDConflict(t *testing.T) {
	ctx := context.Background()
	expired, renewed := settingsT0.Add(-time.Minute), settingsT0.Add(time.Hour)
	g := dynamo.ConversationKey{Type: push.Group, ID: "race"}
	if _, err := e.store.PatchConversationSettings(ctx, "clean", "cat", g, dynamo.ConversationPatch{DNDUntil: settingSet(expired)}, settingsT0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.PatchAppSettings(ctx, "clean", "cat", dynamo.SettingsPatch{DNDUntil: settingSet(expired)}); err != nil {
		t.Fatal(err)
	}
	recs := e.allExpiredDND(t, settingsT0)
	if len(recs) != 2 {
		t.Fatalf("ExpiredDND = %v, want 2 records", recs)
	}
	// Between the read and the removal, the user sets new durations.
	if _, err := e.store.PatchConversationSettings(ctx, "clean", "cat", g, dynamo.ConversationPatch{DNDUntil: settingSet(renewed)}, settingsT0); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.PatchAppSettings(ctx, "clean", "cat", dynamo.SettingsPatch{DNDUntil: settingSet(renewed)}); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if _, err := e.cleanup.ClearDND(ctx, r); !errors.Is(err, push.ErrConflict) {
			t.Errorf("ClearDND(%v) after a new duration = %v, want push.ErrConflict", r, err)
		}
	}
	cs, err := e.store.ConversationSettings(ctx, "clean", "cat", g)
	if err != nil || !cs.DNDUntil.Equal(renewed) {
		t.Errorf("conversation duration = %v, %v; want %v", cs.DNDUntil, err, renewed)
	}
	st, err := e.store.AppSettings(ctx, "clean", "cat")
	if err != nil || !st.DNDUntil.Equal(renewed) {
		t.Errorf("app duration = %v, %v; want %v", st.DNDUntil, err, renewed)
	}
	// Clear them for the next subtest.
	if _, err := e.store.PatchAppSettings(ctx, "clean", "cat", dynamo.SettingsPatch{DNDUntil: settingRemove[time.Time]()}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.DeleteConversationSettings(ctx, "clean", "cat", g); err != nil {
		t.Fatal(err)
	}
}

// testDNDPages puts more expired entries in one shard than a page holds, so
// the cursor is exercised.
func (e *cleanupEnv) testDNDPages(t *testing.T) {
	ctx := context.Background()
	const n = dynamo.CleanupPageSize*2 + 30
	var writes []types.WriteRequest
	for i := range n {
		writes = append(writes, types.WriteRequest{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{
			"pk": settingsS("u#clean#p" + strconv.Itoa(i)), "sk": settingsS("conv#group#g"),
			"du": settingsN(settingsT0.Add(-time.Duration(i+1) * time.Second).UnixMilli()),
			"xs": settingsS("dnd#3"),
			"xu": settingsN(settingsT0.Add(-time.Duration(i+1) * time.Second).UnixMilli()),
		}}})
	}
	for len(writes) > 0 {
		k := min(25, len(writes))
		if _, err := e.client.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{e.table: writes[:k]}}); err != nil {
			t.Fatalf("BatchWriteItem: %v", err)
		}
		writes = writes[k:]
	}
	pages := 0
	seen := map[string]bool{}
	cursor := ""
	for {
		recs, next, err := e.cleanup.ExpiredDND(ctx, 3, settingsT0, cursor)
		if err != nil {
			t.Fatalf("ExpiredDND: %v", err)
		}
		pages++
		if len(recs) > dynamo.CleanupPageSize {
			t.Errorf("page of %d records, want at most %d", len(recs), dynamo.CleanupPageSize)
		}
		for _, r := range recs {
			if seen[r.PK] {
				t.Errorf("record %s served twice", r.PK)
			}
			seen[r.PK] = true
			if _, err := e.cleanup.ClearDND(ctx, r); err != nil {
				t.Fatalf("ClearDND: %v", err)
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(seen) != n || pages < 3 {
		t.Errorf("read %d records in %d pages, want %d in at least 3", len(seen), pages, n)
	}
}

func settingsN(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

// cleanupDevice registers a device through the devices store as a PUT at
// registered would: its binding and an index item per token.
func (e *cleanupEnv) cleanupDevice(t *testing.T, user, device string, vendor push.Vendor, token, voip string, registered time.Time) {
	t.Helper()
	b := push.Binding{DeviceID: device, Vendor: vendor, Token: token, VoIPToken: voip, CertName: "c",
		Platform: push.DefaultPlatform(vendor), RegisteredAt: registered}
	if vendor == push.APNs {
		b.Environment = push.Production
	}
	change := dynamo.BindingChange{
		Profiles: []dynamo.ProfileChange{{UserID: user, Set: []push.Binding{b}}},
		Tokens: []dynamo.TokenChange{{Key: dynamo.TokenKey{Vendor: vendor, Token: token},
			Put: &dynamo.TokenOwner{Owner: push.Owner{UserID: user, DeviceID: device}, Kind: push.TokenAlert, Refreshed: registered}}},
	}
	if voip != "" {
		change.Tokens = append(change.Tokens, dynamo.TokenChange{Key: dynamo.TokenKey{Vendor: vendor, Token: voip},
			Put: &dynamo.TokenOwner{Owner: push.Owner{UserID: user, DeviceID: device}, Kind: push.TokenVoIP, Refreshed: registered}})
	}
	if err := e.devices.Commit(context.Background(), "clean", change); err != nil {
		t.Fatalf("register %s/%s: %v", user, device, err)
	}
}

// cleanupState reads the bindings of users and the owners of tokens.
func (e *cleanupEnv) cleanupState(t *testing.T, users []string, tokens []dynamo.TokenKey) dynamo.DeviceSnapshot {
	t.Helper()
	snap, err := e.devices.Load(context.Background(), "clean", users, tokens)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return snap
}

// hex64 returns a 64-digit APNs token ending in tail.
func hex64(tail string) string {
	const zeros = "0000000000000000000000000000000000000000000000000000000000000000"
	return zeros[:64-len(tail)] + tail
}

func (e *cleanupEnv) testTokens(t *testing.T) {
	ctx := context.Background()
	old, fresh := settingsT0.Add(-300*24*time.Hour), settingsT0.Add(-time.Hour)
	before := settingsT0.Add(-270 * 24 * time.Hour)
	alertA, voipA := hex64("a1"), hex64("a2")
	alertB, voipB := hex64("b1"), hex64("b2")
	e.cleanupDevice(t, "ivy", "phone", push.APNs, alertA, voipA, old)     // stale with its VoIP token
	e.cleanupDevice(t, "ivy", "tablet", push.FCM, "fcm-fresh", "", fresh) // fresh
	e.cleanupDevice(t, "joe", "phone", push.APNs, alertB, voipB, old)     // the VoIP token alone goes stale, below
	e.cleanupDevice(t, "kim", "phone", push.FCM, "fcm-orphan", "", old)   // orphaned, below
	// joe refreshes the alert token's record only; kim's binding moves on
	// to another token while the old record stays (an inconsistency cleanup
	// must tidy).
	if err := e.devices.Commit(ctx, "clean", dynamo.BindingChange{Tokens: []dynamo.TokenChange{{
		Key:    dynamo.TokenKey{Vendor: push.APNs, Token: alertB},
		Expect: &dynamo.TokenOwner{Owner: push.Owner{UserID: "joe", DeviceID: "phone"}, Kind: push.TokenAlert},
		Put:    &dynamo.TokenOwner{Owner: push.Owner{UserID: "joe", DeviceID: "phone"}, Kind: push.TokenAlert, Refreshed: fresh},
	}}}); err != nil {
		t.Fatal(err)
	}
	if err := e.devices.Commit(ctx, "clean", dynamo.BindingChange{Profiles: []dynamo.ProfileChange{{UserID: "kim", Set: []push.Binding{{
		DeviceID: "phone", Vendor: push.FCM, Token: "fcm-new", CertName: "c", Platform: push.PlatformAndroid, RegisteredAt: fresh,
	}}}}}); err != nil {
		t.Fatal(err)
	}

	got := e.allStaleTokens(t, before)
	for i := range got {
		got[i].PK = "" // a hash; the other fields identify the record
	}
	want := []dynamo.StaleToken{
		{App: "clean", Vendor: push.APNs, Kind: push.TokenAlert, Token: alertA, UserID: "ivy", DeviceID: "phone", Refreshed: old.UnixMilli(), Bound: true, BoundVoIP: voipA},
		{App: "clean", Vendor: push.APNs, Kind: push.TokenVoIP, Token: voipA, UserID: "ivy", DeviceID: "phone", Refreshed: old.UnixMilli(), Bound: true},
		{App: "clean", Vendor: push.APNs, Kind: push.TokenVoIP, Token: voipB, UserID: "joe", DeviceID: "phone", Refreshed: old.UnixMilli(), Bound: true},
		{App: "clean", Vendor: push.FCM, Kind: push.TokenAlert, Token: "fcm-orphan", UserID: "kim", DeviceID: "phone", Refreshed: old.UnixMilli()},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("StaleTokens mismatch (-want +got):\n%s", diff)
	}
	recs := e.allStaleTokens(t, before)
	for _, r := range recs {
		if r.Token == voipA {
			continue // goes with ivy's alert token
		}
		orphan, err := e.cleanup.RemoveStaleToken(ctx, r)
		if err != nil {
			t.Fatalf("RemoveStaleToken(…%s): %v", push.Redact(r.Token), err)
		}
		if want := r.Token == "fcm-orphan"; orphan != want {
			t.Errorf("RemoveStaleToken(…%s) orphan = %v, want %v", push.Redact(r.Token), orphan, want)
		}
	}

	keys := []dynamo.TokenKey{{push.APNs, alertA}, {push.APNs, voipA}, {push.FCM, "fcm-fresh"}, {push.APNs, alertB}, {push.APNs, voipB}, {push.FCM, "fcm-orphan"}, {push.FCM, "fcm-new"}}
	snap := e.cleanupState(t, []string{"ivy", "joe", "kim"}, keys)
	present := map[string]bool{}
	for k, o := range snap.Tokens {
		present[k.Token] = o != nil
	}
	wantPresent := map[string]bool{alertA: false, voipA: false, "fcm-fresh": true, alertB: true, voipB: false, "fcm-orphan": false, "fcm-new": false}
	if diff := cmp.Diff(wantPresent, present); diff != "" {
		t.Errorf("token records present mismatch (-want +got):\n%s", diff)
	}
	devices := map[string]string{}
	for user, bs := range snap.Profiles {
		for d, b := range bs {
			devices[user+"/"+d] = push.Redact(b.Token) + "+" + push.Redact(b.VoIPToken)
		}
	}
	wantDevices := map[string]string{
		"ivy/tablet": "-fresh+",                 // untouched
		"joe/phone":  push.Redact(alertB) + "+", // VoIP token gone, alert token kept
		"kim/phone":  "cm-new+",                 // the binding that moved on stays
	}
	if diff := cmp.Diff(wantDevices, devices); diff != "" {
		t.Errorf("bindings mismatch (-want +got):\n%s", diff)
	}
	if left := e.allStaleTokens(t, before); len(left) != 0 {
		t.Errorf("stale tokens left: %v", left)
	}
}

func (e *cleanupEnv) testTokenConflict(t *testing.T) {
	ctx := context.Background()
	old, now := settingsT0.Add(-300*24*time.Hour), settingsT0
	before := settingsT0.Add(-270 * 24 * time.Hour)
	e.cleanupDevice(t, "liz", "phone", push.FCM, "fcm-liz", "", old)
	recs := e.allStaleTokens(t, before)
	if len(recs) != 1 {
		t.Fatalf("StaleTokens = %v, want one record", recs)
	}
	// The app starts between the read and the removal: a PUT refreshes the
	// binding and the record.
	if err := e.devices.Commit(ctx, "clean", dynamo.BindingChange{
		Profiles: []dynamo.ProfileChange{{UserID: "liz", Set: []push.Binding{{DeviceID: "phone", Vendor: push.FCM, Token: "fcm-liz", CertName: "c", Platform: push.PlatformAndroid, RegisteredAt: now}}}},
		Tokens: []dynamo.TokenChange{{Key: dynamo.TokenKey{Vendor: push.FCM, Token: "fcm-liz"},
			Expect: &dynamo.TokenOwner{Owner: push.Owner{UserID: "liz", DeviceID: "phone"}, Kind: push.TokenAlert},
			Put:    &dynamo.TokenOwner{Owner: push.Owner{UserID: "liz", DeviceID: "phone"}, Kind: push.TokenAlert, Refreshed: now}}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cleanup.RemoveStaleToken(ctx, recs[0]); !errors.Is(err, push.ErrConflict) {
		t.Fatalf("RemoveStaleToken after a refresh = %v, want push.ErrConflict", err)
	}
	snap := e.cleanupState(t, []string{"liz"}, []dynamo.TokenKey{{Vendor: push.FCM, Token: "fcm-liz"}})
	if o := snap.Tokens[dynamo.TokenKey{Vendor: push.FCM, Token: "fcm-liz"}]; o == nil || !o.Refreshed.Equal(now) {
		t.Errorf("token record after the conflict = %+v, want refreshed at %v", o, now)
	}
	if _, ok := snap.Profiles["liz"]["phone"]; !ok {
		t.Errorf("binding removed despite the refresh: %v", snap.Profiles["liz"])
	}
}
