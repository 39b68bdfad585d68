package ingest_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/offline-push/offline-push/shared/httpapi"
	"github.com/offline-push/offline-push/shared/ingest"
	"github.com/offline-push/offline-push/shared/push"
)

func parse(t *testing.T, body string) (*ingest.Input, error) {
	t.Helper()
	req, err := httpapi.Decode[ingest.Request]([]byte(body))
	if err != nil {
		return nil, err
	}
	return ingest.Parse(req)
}

func TestParseDefaults(t *testing.T) {
	in, err := parse(t, `{"messageId": "m-1", "type": "message", "sender": {"userId": "alice"},
		"conversation": {"type": "group", "id": "g1"},
		"recipients": ["bob", "alice", "carol", "bob", "dave"],
		"push": {"content": "hi \uffff"}}`)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := &ingest.Input{
		Message: push.Message{
			ID: "m-1", Kind: push.KindMessage,
			Sender:       push.Sender{UserID: "alice"},
			Conversation: push.Conversation{Type: push.Group, ID: "g1"},
			Content: push.Content{
				Body: "hi \ufffd", NicknamePrefix: true, Badge: true, Placeholder: push.DefaultPlaceholder,
			},
			TTL: push.DefaultTTL,
		},
		Recipients: []string{"bob", "carol", "dave"},
	}
	if diff := cmp.Diff(want, in); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}
}

func TestParseCalls(t *testing.T) {
	in, err := parse(t, `{"messageId": "m-2", "type": "call_invite", "sender": {"userId": "alice", "nickname": "Alice"},
		"conversation": {"type": "peer"}, "recipients": ["bob"], "push": {"content": "Incoming call"},
		"call": {"callId": "c-9", "media": "video", "timeoutSeconds": 30}}`)
	if err != nil {
		t.Fatalf("Parse invite: %v", err)
	}
	if diff := cmp.Diff(&push.Call{ID: "c-9", Media: push.MediaVideo, Timeout: 30 * time.Second}, in.Message.Call); diff != "" {
		t.Errorf("invite call (-want +got):\n%s", diff)
	}
	in, err = parse(t, `{"messageId": "m-3", "type": "call_cancel", "sender": {"userId": "alice"},
		"conversation": {"type": "peer"}, "recipients": ["bob"], "call": {"callId": "c-9"}, "ttlSeconds": 0}`)
	if err != nil {
		t.Fatalf("Parse cancel: %v", err)
	}
	if in.Message.Content.Body != push.DefaultCancelContent || in.Message.Call.Media != push.MediaAudio ||
		in.Message.Call.Timeout != push.DefaultCallTimeout || in.Message.TTL != 0 {
		t.Errorf("cancel defaults: body %q, call %+v, ttl %v", in.Message.Content.Body, in.Message.Call, in.Message.TTL)
	}
}

// TestParseRejects has one case per field and rule of API.md §6, each
// naming the JSON path the error must carry.
func TestParseRejects(t *testing.T) {
	valid := map[string]string{
		"messageId":    `"m-1"`,
		"type":         `"message"`,
		"sender":       `{"userId": "alice"}`,
		"conversation": `{"type": "group", "id": "g1"}`,
		"recipients":   `["bob", "carol"]`,
		"push":         `{"content": "hi"}`,
	}
	body := func(over map[string]string) string {
		m := map[string]string{}
		for k, v := range valid {
			m[k] = v
		}
		for k, v := range over {
			m[k] = v
		}
		var parts []string
		for _, k := range []string{"messageId", "type", "sender", "conversation", "recipients", "mentions", "push", "forcePush", "call", "ttlSeconds", "dryRun", "explain", "evaluateAt", "bogus"} {
			if v, ok := m[k]; ok && v != "" {
				parts = append(parts, `"`+k+`": `+v)
			}
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	many := func(n int, prefix string) string {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = `"` + prefix + strconv.Itoa(i) + `"`
		}
		return "[" + strings.Join(ids, ",") + "]"
	}
	long := func(n int) string { return `"` + strings.Repeat("é", n) + `"` }
	tests := []struct {
		name  string
		over  map[string]string
		field string
	}{
		{"messageId missing", map[string]string{"messageId": ""}, "messageId"},
		{"messageId bad", map[string]string{"messageId": `"m 1"`}, "messageId"},
		{"type missing", map[string]string{"type": ""}, "type"},
		{"type unknown", map[string]string{"type": `"notice"`}, "type"},
		{"sender missing", map[string]string{"sender": ""}, "sender.userId"},
		{"sender id bad", map[string]string{"sender": `{"userId": "a/b"}`}, "sender.userId"},
		{"nickname too long", map[string]string{"sender": `{"userId": "alice", "nickname": ` + long(65) + `}`}, "sender.nickname"},
		{"sender unknown member", map[string]string{"sender": `{"userId": "alice", "name": "A"}`}, "sender.name"},
		{"conversation missing", map[string]string{"conversation": ""}, "conversation.type"},
		{"conversation type bad", map[string]string{"conversation": `{"type": "channel", "id": "g1"}`}, "conversation.type"},
		{"conversation id missing for group", map[string]string{"conversation": `{"type": "group"}`}, "conversation.id"},
		{"conversation id bad", map[string]string{"conversation": `{"type": "peer", "id": "x y"}`}, "conversation.id"},
		{"recipients missing", map[string]string{"recipients": ""}, "recipients"},
		{"recipients empty", map[string]string{"recipients": `[]`}, "recipients"},
		{"recipients too many", map[string]string{"recipients": many(100001, "u")}, "recipients"},
		{"recipient bad", map[string]string{"recipients": `["bob", "c d"]`}, "recipients[1]"},
		{"recipient not a string", map[string]string{"recipients": `["bob", 7]`}, "recipients[1]"},
		{"mention bad", map[string]string{"mentions": `{"userIds": ["bob", ""]}`}, "mentions.userIds[1]"},
		{"mentions all not bool", map[string]string{"mentions": `{"all": "yes"}`}, "mentions.all"},
		{"content missing", map[string]string{"push": `{"title": "T"}`}, "push.content"},
		{"push missing", map[string]string{"push": ""}, "push.content"},
		{"content empty", map[string]string{"push": `{"content": ""}`}, "push.content"},
		{"content too long", map[string]string{"push": `{"content": ` + long(2001) + `}`}, "push.content"},
		{"title too long", map[string]string{"push": `{"content": "hi", "title": ` + long(101) + `}`}, "push.title"},
		{"placeholder too long", map[string]string{"push": `{"content": "hi", "placeholder": ` + long(101) + `}`}, "push.placeholder"},
		{"translation tag bad", map[string]string{"push": `{"content": "hi", "translations": {"e n": "x"}}`}, "push.translations.e n"},
		{"translation empty", map[string]string{"push": `{"content": "hi", "translations": {"en": ""}}`}, "push.translations.en"},
		{"translation too long", map[string]string{"push": `{"content": "hi", "translations": {"zh-CN": ` + long(2001) + `}}`}, "push.translations.zh-CN"},
		{"translation twice in other case", map[string]string{"push": `{"content": "hi", "translations": {"en-GB": "a", "en_gb": "b"}}`}, "push.translations.en_gb"},
		{"too many translations", map[string]string{"push": `{"content": "hi", "translations": {` + languages(21) + `}}`}, "push.translations"},
		{"payload too big", map[string]string{"push": `{"content": "hi", "payload": {"k": ` + long(600) + `}}`}, "push.payload"},
		{"payload not strings", map[string]string{"push": `{"content": "hi", "payload": {"k": 1}}`}, "push.payload.k"},
		{"sound too long", map[string]string{"push": `{"content": "hi", "sound": ` + long(65) + `}`}, "push.sound"},
		{"resourceId too long", map[string]string{"push": `{"content": "hi", "resourceId": ` + long(33) + `}`}, "push.resourceId"},
		{"badge not bool", map[string]string{"push": `{"content": "hi", "badge": 1}`}, "push.badge"},
		{"push unknown member", map[string]string{"push": `{"content": "hi", "body": "x"}`}, "push.body"},
		{"force too many", map[string]string{"forcePush": `{"userIds": ` + many(1001, "f") + `}`}, "forcePush.userIds"},
		{"force not a recipient", map[string]string{"forcePush": `{"userIds": ["bob", "zed"]}`}, "forcePush.userIds[1]"},
		{"force id bad", map[string]string{"forcePush": `{"userIds": ["b b"]}`}, "forcePush.userIds[0]"},
		{"force content too long", map[string]string{"forcePush": `{"all": true, "content": ` + long(2001) + `}`}, "forcePush.content"},
		{"call on a message", map[string]string{"call": `{"callId": "c"}`}, "call"},
		{"call missing on invite", map[string]string{"type": `"call_invite"`}, "call"},
		{"callId missing", map[string]string{"type": `"call_invite"`, "call": `{"media": "audio"}`}, "call.callId"},
		{"callId bad", map[string]string{"type": `"call_cancel"`, "call": `{"callId": "c#1"}`}, "call.callId"},
		{"media bad", map[string]string{"type": `"call_invite"`, "call": `{"callId": "c", "media": "hologram"}`}, "call.media"},
		{"timeout zero", map[string]string{"type": `"call_invite"`, "call": `{"callId": "c", "timeoutSeconds": 0}`}, "call.timeoutSeconds"},
		{"timeout too long", map[string]string{"type": `"call_invite"`, "call": `{"callId": "c", "timeoutSeconds": 601}`}, "call.timeoutSeconds"},
		{"invite without content", map[string]string{"type": `"call_invite"`, "push": `{}`, "call": `{"callId": "c"}`}, "push.content"},
		{"ttl negative", map[string]string{"ttlSeconds": `-1`}, "ttlSeconds"},
		{"ttl too long", map[string]string{"ttlSeconds": `2419201`}, "ttlSeconds"},
		{"ttl fractional", map[string]string{"ttlSeconds": `1.5`}, "ttlSeconds"},
		{"dryRun not bool", map[string]string{"dryRun": `"yes"`}, "dryRun"},
		{"evaluateAt without dryRun", map[string]string{"evaluateAt": `"2026-11-22T10:00:00.000Z"`}, "evaluateAt"},
		{"evaluateAt malformed", map[string]string{"dryRun": "true", "evaluateAt": `"tomorrow"`}, "evaluateAt"},
		{"explain with too many recipients", map[string]string{"explain": "true", "recipients": many(1001, "e")}, "explain"},
		{"unknown member", map[string]string{"bogus": "1"}, "bogus"},
	}
	for _, tt := range tests {
		_, err := parse(t, body(tt.over))
		var ia *push.InvalidArgumentError
		if !errors.As(err, &ia) || ia.Field != tt.field {
			t.Errorf("%s: got %v, want an invalid argument at %q", tt.name, err, tt.field)
		}
	}

	// The limits themselves are accepted.
	ok := []map[string]string{
		{"recipients": many(1000, "e"), "explain": "true", "forcePush": `{"userIds": ` + many(1000, "e") + `}`},
		{"push": `{"content": ` + long(2000) + `, "title": ` + long(100) + `, "sound": ` + long(64) + `, "resourceId": ` + long(32) + `, "translations": {` + languages(20) + `}}`},
		{"type": `"call_invite"`, "call": `{"callId": "c", "timeoutSeconds": 600}`, "ttlSeconds": "2419200"},
		{"conversation": `{"type": "peer"}`, "dryRun": "true", "evaluateAt": `"2026-11-22T10:00:00+08:00"`},
		{"recipients": `["alice"]`},
	}
	for i, over := range ok {
		if _, err := parse(t, body(over)); err != nil {
			t.Errorf("accepted case %d: %v", i, err)
		}
	}
}

func languages(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = `"l` + string(rune('a'+i%26)) + string(rune('a'+i/26)) + `": "x"`
	}
	return strings.Join(parts, ", ")
}

// FuzzParse feeds arbitrary bodies to the message parser: each must give an
// input or an invalid-argument error, never a panic or another error.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"messageId": "m-1", "type": "message", "sender": {"userId": "alice", "nickname": "Alice"}, "conversation": {"type": "group", "id": "g1"}, "recipients": ["bob", "carol"], "mentions": {"userIds": ["bob"], "all": false}, "push": {"title": "Team", "content": "lunch?", "translations": {"en": "lunch?", "zh": "吃饭吗?"}, "payload": {"k": "v"}, "nicknamePrefix": true, "hideContent": false, "placeholder": "New message", "badge": true, "sound": "default", "resourceId": "chat"}, "forcePush": {"userIds": ["carol"], "all": false, "content": "urgent"}, "ttlSeconds": 86400, "dryRun": false, "explain": false, "evaluateAt": null}`,
		`{"messageId": "m-2", "type": "call_invite", "sender": {"userId": "a"}, "conversation": {"type": "peer"}, "recipients": ["b"], "push": {"content": "x"}, "call": {"callId": "c-9", "media": "video", "timeoutSeconds": 30}}`,
		`{"messageId": "m-3", "type": "call_cancel", "sender": {"userId": "a"}, "conversation": {"type": "peer"}, "recipients": ["b"], "call": {"callId": "c-9"}, "dryRun": true, "evaluateAt": "2026-11-22T10:00:00.000Z"}`,
		`{"recipients": [1, 2]}`,
		`[]`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req, err := httpapi.Decode[ingest.Request]([]byte(body))
		if err != nil {
			if !push.IsInvalid(err) {
				t.Fatalf("Decode(%q) = %v, want an invalid argument", body, err)
			}
			return
		}
		in, err := ingest.Parse(req)
		if err != nil {
			if !push.IsInvalid(err) {
				t.Fatalf("Parse(%q) = %v, want an invalid argument", body, err)
			}
			return
		}
		if len(in.Recipients) > ingest.MaxRecipients || in.Message.ID == "" {
			t.Fatalf("Parse(%q) accepted %d recipients, id %q", body, len(in.Recipients), in.Message.ID)
		}
	})
}

// BenchmarkParse100k decodes and validates a message to 100,000 recipients,
// the largest the contract allows.
func BenchmarkParse100k(b *testing.B) {
	ids := make([]string, ingest.MaxRecipients)
	for i := range ids {
		ids[i] = `"user-` + strconv.Itoa(i) + `@example"`
	}
	body := []byte(`{"messageId": "m-1", "type": "message", "sender": {"userId": "alice"}, "conversation": {"type": "group", "id": "g"}, "push": {"content": "hi"}, "recipients": [` + strings.Join(ids, ",") + `]}`)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		req, err := httpapi.Decode[ingest.Request](body)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ingest.Parse(req); err != nil {
			b.Fatal(err)
		}
	}
}
