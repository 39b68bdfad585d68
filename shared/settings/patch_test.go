package settings_test

import (
	"errors"
	"strings"
	"testing"
	"time"
	// Zones validate from the embedded database, as in the Lambda binary,
	// whatever the host has installed.
	_ "time/tzdata"

	"github.com/google/go-cmp/cmp"

	"github.com/offline-push/offline-push/shared/push"
	"github.com/offline-push/offline-push/shared/settings"
)

var now = time.Date(2026, 11, 22, 9, 0, 0, 123_456_789, time.UTC)

// field returns the JSON path an error names, or "<nil>" / "<not invalid>".
func field(err error) string {
	if err == nil {
		return "<nil>"
	}
	var ia *push.InvalidArgumentError
	if !errors.As(err, &ia) {
		return "<not invalid: " + err.Error() + ">"
	}
	return ia.Field
}

func TestParsePatchInvalid(t *testing.T) {
	tests := []struct {
		name, body, field string
	}{
		{"empty body", ``, ""},
		{"malformed", `{"remindType":`, ""},
		{"not an object", `[1]`, ""},
		{"null body", `null`, ""},
		{"trailing data", `{} {}`, ""},
		{"unknown top-level", `{"remind": "ALL"}`, "remind"},
		{"duplicate member", `{"remindType": "ALL", "remindType": "AT"}`, "remindType"},
		{"remindType DEFAULT", `{"remindType": "DEFAULT"}`, "remindType"},
		{"remindType lower case", `{"remindType": "all"}`, "remindType"},
		{"remindType number", `{"remindType": 1}`, "remindType"},
		{"dnd not an object", `{"dnd": "on"}`, "dnd"},
		{"dnd unknown member", `{"dnd": {"foo": 1}}`, "dnd.foo"},
		{"dnd.until set", `{"dnd": {"until": "2026-11-22T10:00:00.000Z"}}`, "dnd.until"},
		{"dnd.until null", `{"dnd": {"until": null}}`, "dnd.until"},
		{"window not an object", `{"dnd": {"window": "22:00-07:00"}}`, "dnd.window"},
		{"window unknown member", `{"dnd": {"window": {"start": "22:00", "end": "07:00", "tz": "UTC"}}}`, "dnd.window.tz"},
		{"window start missing", `{"dnd": {"window": {"end": "07:00"}}}`, "dnd.window.start"},
		{"window end missing", `{"dnd": {"window": {"start": "22:00"}}}`, "dnd.window.end"},
		{"window end null", `{"dnd": {"window": {"start": "22:00", "end": null}}}`, "dnd.window.end"},
		{"window 24:00", `{"dnd": {"window": {"start": "24:00", "end": "07:00"}}}`, "dnd.window.start"},
		{"window minute 60", `{"dnd": {"window": {"start": "22:00", "end": "12:60"}}}`, "dnd.window.end"},
		{"window one-digit hour", `{"dnd": {"window": {"start": "7:00", "end": "08:00"}}}`, "dnd.window.start"},
		{"window seconds", `{"dnd": {"window": {"start": "07:00:00", "end": "08:00"}}}`, "dnd.window.start"},
		{"window number", `{"dnd": {"window": {"start": 700, "end": "08:00"}}}`, "dnd.window.start"},
		{"zone Mars", `{"dnd": {"window": {"start": "22:00", "end": "07:00", "timezone": "Mars/Olympus"}}}`, "dnd.window.timezone"},
		{"zone Local", `{"dnd": {"window": {"start": "22:00", "end": "07:00", "timezone": "Local"}}}`, "dnd.window.timezone"},
		{"zone empty", `{"dnd": {"window": {"start": "22:00", "end": "07:00", "timezone": ""}}}`, "dnd.window.timezone"},
		{"zone path", `{"dnd": {"window": {"start": "22:00", "end": "07:00", "timezone": "../etc/passwd"}}}`, "dnd.window.timezone"},
		{"zone number", `{"dnd": {"window": {"start": "22:00", "end": "07:00", "timezone": 8}}}`, "dnd.window.timezone"},
		{"duration -1", `{"dnd": {"durationMs": -1}}`, "dnd.durationMs"},
		{"duration too long", `{"dnd": {"durationMs": 604800001}}`, "dnd.durationMs"},
		{"duration fraction", `{"dnd": {"durationMs": 1.5}}`, "dnd.durationMs"},
		{"duration string", `{"dnd": {"durationMs": "5000"}}`, "dnd.durationMs"},
		{"duration huge", `{"dnd": {"durationMs": 1e300}}`, "dnd.durationMs"},
		{"language empty", `{"language": ""}`, "language"},
		{"language malformed", `{"language": "en_US"}`, "language"},
		{"language number", `{"language": 5}`, "language"},
		{"showPreview string", `{"showPreview": "false"}`, "showPreview"},
		{"multiDevicePolicy unknown", `{"multiDevicePolicy": "some_offline"}`, "multiDevicePolicy"},
		{"mobilePush number", `{"mobilePushWhenDesktopOnline": 0}`, "mobilePushWhenDesktopOnline"},
		{"one bad among good", `{"remindType": "AT", "showPreview": false, "language": "??"}`, "language"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := settings.ParsePatch([]byte(tt.body), now)
			if got := field(err); got != tt.field || err == nil {
				t.Errorf("ParsePatch(%s) error field = %q (%v), want %q", tt.body, got, err, tt.field)
			}
		})
	}
}

func TestParsePatchValid(t *testing.T) {
	until := time.Date(2026, 11, 22, 10, 0, 0, 123_000_000, time.UTC)
	tests := []struct {
		name, body string
		want       settings.Patch
	}{
		{"empty", `{}`, settings.Patch{}},
		{"all set", `{"remindType": "AT", "dnd": {"window": {"start": "22:00", "end": "07:30", "timezone": "Asia/Shanghai"}, "durationMs": 3600000},
			"language": "zh-Hans-CN", "showPreview": false, "multiDevicePolicy": "all_offline", "mobilePushWhenDesktopOnline": false}`,
			settings.Patch{
				RemindType:                  settings.Change[push.RemindType]{Op: settings.Set, Value: push.RemindAt},
				Window:                      settings.Change[push.DNDWindow]{Op: settings.Set, Value: push.DNDWindow{Start: 22 * 60, End: 7*60 + 30, TimeZone: "Asia/Shanghai"}},
				DNDUntil:                    settings.Change[time.Time]{Op: settings.Set, Value: until},
				Language:                    settings.Change[string]{Op: settings.Set, Value: "zh-Hans-CN"},
				ShowPreview:                 settings.Change[bool]{Op: settings.Set, Value: false},
				MultiDevicePolicy:           settings.Change[push.MultiDevicePolicy]{Op: settings.Set, Value: push.AllOffline},
				MobilePushWhenDesktopOnline: settings.Change[bool]{Op: settings.Set, Value: false},
			}},
		{"all removed", `{"remindType": null, "dnd": null, "language": null, "showPreview": null, "multiDevicePolicy": null, "mobilePushWhenDesktopOnline": null}`,
			settings.Patch{
				RemindType:                  settings.Change[push.RemindType]{Op: settings.Remove},
				Window:                      settings.Change[push.DNDWindow]{Op: settings.Remove},
				DNDUntil:                    settings.Change[time.Time]{Op: settings.Remove},
				Language:                    settings.Change[string]{Op: settings.Remove},
				ShowPreview:                 settings.Change[bool]{Op: settings.Remove},
				MultiDevicePolicy:           settings.Change[push.MultiDevicePolicy]{Op: settings.Remove},
				MobilePushWhenDesktopOnline: settings.Change[bool]{Op: settings.Remove},
			}},
		{"window default zone, edges", `{"dnd": {"window": {"start": "00:00", "end": "23:59"}}}`,
			settings.Patch{Window: settings.Change[push.DNDWindow]{Op: settings.Set, Value: push.DNDWindow{Start: 0, End: 23*60 + 59, TimeZone: "UTC"}}}},
		{"window zone null is UTC", `{"dnd": {"window": {"start": "08:00", "end": "08:00", "timezone": null}}}`,
			settings.Patch{Window: settings.Change[push.DNDWindow]{Op: settings.Set, Value: push.DNDWindow{Start: 480, End: 480, TimeZone: "UTC"}}}},
		{"window removed, duration kept", `{"dnd": {"window": null}}`,
			settings.Patch{Window: settings.Change[push.DNDWindow]{Op: settings.Remove}}},
		{"duration 0 clears", `{"dnd": {"durationMs": 0}}`,
			settings.Patch{DNDUntil: settings.Change[time.Time]{Op: settings.Remove}}},
		{"duration null clears", `{"dnd": {"durationMs": null}}`,
			settings.Patch{DNDUntil: settings.Change[time.Time]{Op: settings.Remove}}},
		{"duration max", `{"dnd": {"durationMs": 604800000}}`,
			settings.Patch{DNDUntil: settings.Change[time.Time]{Op: settings.Set, Value: now.Add(7 * 24 * time.Hour).Truncate(time.Millisecond)}}},
		{"duration exponent", `{"dnd": {"durationMs": 1e3}}`,
			settings.Patch{DNDUntil: settings.Change[time.Time]{Op: settings.Set, Value: now.Add(time.Second).Truncate(time.Millisecond)}}},
		{"empty dnd", `{"dnd": {}}`, settings.Patch{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := settings.ParsePatch([]byte(tt.body), now)
			if err != nil {
				t.Fatalf("ParsePatch(%s) error: %v", tt.body, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParsePatch(%s) mismatch (-want +got):\n%s", tt.body, diff)
			}
		})
	}
}

func TestParseConversationPatch(t *testing.T) {
	tests := []struct {
		name, body, field string
		want              settings.ConversationPatch
	}{
		{"remind and duration", `{"remindType": "NONE", "dnd": {"durationMs": 60000}}`, "<nil>", settings.ConversationPatch{
			RemindType: settings.Change[push.RemindType]{Op: settings.Set, Value: push.RemindNone},
			DNDUntil:   settings.Change[time.Time]{Op: settings.Set, Value: now.Add(time.Minute).Truncate(time.Millisecond)},
		}},
		{"clear both", `{"remindType": null, "dnd": null}`, "<nil>", settings.ConversationPatch{
			RemindType: settings.Change[push.RemindType]{Op: settings.Remove},
			DNDUntil:   settings.Change[time.Time]{Op: settings.Remove},
		}},
		{"window refused", `{"dnd": {"window": {"start": "22:00", "end": "07:00"}}}`, "dnd.window", settings.ConversationPatch{}},
		{"window null refused", `{"dnd": {"window": null}}`, "dnd.window", settings.ConversationPatch{}},
		{"remindType DEFAULT", `{"remindType": "DEFAULT"}`, "remindType", settings.ConversationPatch{}},
		{"app-level member", `{"showPreview": false}`, "showPreview", settings.ConversationPatch{}},
		{"until", `{"dnd": {"until": null}}`, "dnd.until", settings.ConversationPatch{}},
		{"duration -1", `{"dnd": {"durationMs": -1}}`, "dnd.durationMs", settings.ConversationPatch{}},
		{"duration too long", `{"dnd": {"durationMs": 604800001}}`, "dnd.durationMs", settings.ConversationPatch{}},
		{"dnd unknown", `{"dnd": {"foo": true}}`, "dnd.foo", settings.ConversationPatch{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := settings.ParseConversationPatch([]byte(tt.body), now)
			if f := field(err); f != tt.field {
				t.Fatalf("ParseConversationPatch(%s) error field = %q (%v), want %q", tt.body, f, err, tt.field)
			}
			if diff := cmp.Diff(tt.want, got); err == nil && diff != "" {
				t.Errorf("ParseConversationPatch(%s) mismatch (-want +got):\n%s", tt.body, diff)
			}
		})
	}
}

func TestParseBatch(t *testing.T) {
	many := `{"conversations": [` + strings.TrimSuffix(strings.Repeat(`{"type": "group", "id": "g"},`, 21), ",") + `]}`
	tests := []struct {
		name, body, field string
		want              []settings.Conversation
	}{
		{"two and a duplicate", `{"conversations": [{"type": "group", "id": "g1"}, {"type": "peer", "id": "bob"}, {"type": "group", "id": "g1"}]}`, "<nil>",
			[]settings.Conversation{{Type: push.Group, ID: "g1"}, {Type: push.Peer, ID: "bob"}}},
		{"21", many, "conversations", nil},
		{"none", `{"conversations": []}`, "conversations", nil},
		{"missing", `{}`, "conversations", nil},
		{"not an array", `{"conversations": {"type": "group"}}`, "conversations", nil},
		{"bad type", `{"conversations": [{"type": "group", "id": "g1"}, {"type": "channel", "id": "c"}]}`, "conversations[1].type", nil},
		{"bad id", `{"conversations": [{"type": "group", "id": "g/1"}]}`, "conversations[0].id", nil},
		{"missing id", `{"conversations": [{"type": "group"}]}`, "conversations[0].id", nil},
		{"unknown item member", `{"conversations": [{"type": "group", "id": "g", "name": "x"}]}`, "conversations[0].name", nil},
		{"item not an object", `{"conversations": ["g1"]}`, "conversations[0]", nil},
		{"unknown top-level", `{"conversations": [{"type": "group", "id": "g"}], "user": "x"}`, "user", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := settings.ParseBatch([]byte(tt.body))
			if f := field(err); f != tt.field {
				t.Fatalf("ParseBatch error field = %q (%v), want %q", f, err, tt.field)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseBatch mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidLanguage(t *testing.T) {
	tests := []struct {
		tag  string
		want bool
	}{
		{"en", true}, {"EN-gb", true}, {"zh-Hans-CN", true}, {"zh-yue-HK", true},
		{"es-419", true}, {"de-CH-1901", true}, {"sl-rozaj-biske", true},
		{"en-US-u-ca-gregory", true}, {"en-x-private", true}, {"x-whatever", true},
		{"haw", true}, {"zh-min-nan", true},
		{"", false}, {"e", false}, {"en_US", false}, {"en-", false}, {"-en", false},
		{"en--US", false}, {"123", false}, {"en-a", false}, {"en-x", false},
		{"toolonglang", false}, {"en-US-u", false}, {"zh-Hans-Hant", false},
	}
	for _, tt := range tests {
		if got := settings.ValidLanguage(tt.tag); got != tt.want {
			t.Errorf("ValidLanguage(%q) = %v, want %v", tt.tag, got, tt.want)
		}
	}
}

func TestViews(t *testing.T) {
	st := push.DefaultSettings()
	st.Window = &push.DNDWindow{Start: 22 * 60, End: 7*60 + 30, TimeZone: "Asia/Shanghai"}
	st.DNDUntil = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	st.Language = "en"
	lang := "en"
	until := "2026-11-22T10:00:00.000Z"
	tests := []struct {
		name string
		at   time.Time
		want settings.AppView
	}{
		{"duration running", now, settings.AppView{
			RemindType: push.RemindAll, ShowPreview: true, MultiDevicePolicy: push.AnyOffline, MobilePushWhenDesktopOnline: true,
			Language: &lang,
			DND:      settings.DNDView{Window: &settings.WindowView{Start: "22:00", End: "07:30", TimeZone: "Asia/Shanghai"}, Until: &until},
		}},
		{"duration ended at until", st.DNDUntil, settings.AppView{
			RemindType: push.RemindAll, ShowPreview: true, MultiDevicePolicy: push.AnyOffline, MobilePushWhenDesktopOnline: true,
			Language: &lang,
			DND:      settings.DNDView{Window: &settings.WindowView{Start: "22:00", End: "07:30", TimeZone: "Asia/Shanghai"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, settings.NewAppView(st, tt.at)); diff != "" {
				t.Errorf("NewAppView mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
