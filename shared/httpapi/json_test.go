package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/offline-push/offline-push/shared/push"
)

// Shapes like the API's, exercising every kind of member the walk handles.
type probeWindow struct {
	Start    string `json:"start"`
	End      string `json:"end"`
	Timezone string `json:"timezone,omitempty"`
}

type probeDND struct {
	Window     *probeWindow `json:"window"`
	DurationMs *int64       `json:"durationMs"`
}

type probeUpdate struct {
	UserID string `json:"userId"`
	Epoch  int64  `json:"epoch"`
	Badge  *uint8 `json:"badge"`
}

type probeInner struct {
	Q int `json:"q"`
}

type probeEmbedded struct {
	EmbeddedField int `json:"embeddedField"`
}

type probeLevel string

// UnmarshalText accepts only "low" and "high", as an enum type would.
func (l *probeLevel) UnmarshalText(b []byte) error {
	if s := string(b); s != "low" && s != "high" {
		return push.Invalid("", "must be low or high")
	}
	*l = probeLevel(b)
	return nil
}

type probe struct {
	probeEmbedded
	RemindType   *string               `json:"remindType"`
	DND          *probeDND             `json:"dnd"`
	ShowPreview  *bool                 `json:"showPreview"`
	Ignored      string                `json:"-"`
	Dash         string                `json:"-,"`
	Raw          json.RawMessage       `json:"raw"`
	Translations map[string]string     `json:"translations"`
	Updates      []probeUpdate         `json:"updates"`
	Nested       map[string]probeInner `json:"nested"`
	Any          any                   `json:"any"`
	Ratio        float32               `json:"ratio"`
	At           time.Time             `json:"at"`
	Str          int                   `json:"str,string"`
	Bytes        []byte                `json:"bytes"`
	Arr          [2]probeInner         `json:"arr"`
	Level        probeLevel            `json:"level"`
	Number       json.Number           `json:"number"`
	Untagged     int
	hidden       int //nolint:unused // must not be a member
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantErr   bool
		wantField string
		wantMsg   string // substring of the message, when set
	}{
		{name: "empty", body: "", wantErr: true, wantMsg: "request body required"},
		{name: "whitespace", body: " \n\t", wantErr: true, wantMsg: "request body required"},
		{name: "invalid UTF-8", body: "{\"remindType\": \"\xff\"}", wantErr: true, wantMsg: "UTF-8"},
		{name: "truncated", body: `{"remindType":`, wantErr: true, wantMsg: "malformed JSON"},
		{name: "syntax after unknown member", body: `{"bogus": 1,}`, wantErr: true, wantMsg: "malformed JSON"},
		{name: "trailing object", body: `{} {}`, wantErr: true, wantMsg: "after the JSON object"},
		{name: "trailing garbage", body: `{}x`, wantErr: true, wantMsg: "after the JSON object"},
		{name: "trailing whitespace ok", body: "{}\n "},
		{name: "array", body: `[]`, wantErr: true, wantMsg: "JSON object"},
		{name: "null", body: `null`, wantErr: true, wantMsg: "JSON object"},
		{name: "string", body: `"x"`, wantErr: true, wantMsg: "JSON object"},

		{name: "unknown at root", body: `{"bogus": 1}`, wantErr: true, wantField: "bogus", wantMsg: "unknown member"},
		{name: "unknown at depth 2", body: `{"dnd": {"bogus": true}}`, wantErr: true, wantField: "dnd.bogus"},
		{name: "unknown at depth 3", body: `{"dnd": {"window": {"start": "22:00", "x": 1}}}`, wantErr: true, wantField: "dnd.window.x"},
		{name: "unknown in array element", body: `{"updates": [{}, {"userId": "a"}, {"foo": 1}]}`, wantErr: true, wantField: "updates[2].foo"},
		{name: "unknown in map value", body: `{"nested": {"k": {"zz": 1}}}`, wantErr: true, wantField: "nested.k.zz"},
		{name: "unknown in fixed array", body: `{"arr": [{}, {"q": 1, "r": 2}]}`, wantErr: true, wantField: "arr[1].r"},
		{name: "dash-tagged field is not a member", body: `{"Ignored": "x"}`, wantErr: true, wantField: "Ignored"},
		{name: "unexported field is not a member", body: `{"hidden": 1}`, wantErr: true, wantField: "hidden"},
		{name: "member names are case-sensitive", body: `{"RemindType": "ALL"}`, wantErr: true, wantField: "RemindType"},
		{name: "duplicate member", body: `{"showPreview": true, "showPreview": false}`, wantErr: true, wantField: "showPreview", wantMsg: "duplicate"},

		{name: "map keys are free", body: `{"translations": {"x": "y", "zh-Hans": "z"}}`},
		{name: "raw message takes anything", body: `{"raw": {"anything": [1, {"deep": null}]}}`},
		{name: "any takes anything", body: `{"any": {"x": [1]}}`},
		{name: "member named dash", body: `{"-": "x"}`},
		{name: "promoted embedded field", body: `{"embeddedField": 3}`},
		{name: "untagged field by Go name", body: `{"Untagged": 3}`},
		{name: "nulls everywhere", body: `{"dnd": null, "updates": null, "nested": {"k": null}, "ratio": null, "at": null}`},
		{name: "string option", body: `{"str": "12"}`},
		{name: "bytes as base64", body: `{"bytes": "aGk="}`},
		{name: "bytes as array", body: `{"bytes": [104, 105]}`},
		{name: "time", body: `{"at": "2026-11-22T10:00:00.000Z"}`},
		{name: "number member", body: `{"number": 1.5e3}`},

		{name: "bool wanted", body: `{"showPreview": "yes"}`, wantErr: true, wantField: "showPreview", wantMsg: "true or false"},
		{name: "string wanted", body: `{"remindType": 1}`, wantErr: true, wantField: "remindType", wantMsg: "a string"},
		{name: "integer wanted in array", body: `{"updates": [{"epoch": "x"}]}`, wantErr: true, wantField: "updates[0].epoch", wantMsg: "an integer"},
		{name: "fraction for integer", body: `{"updates": [{"epoch": 1.5}]}`, wantErr: true, wantField: "updates[0].epoch"},
		{name: "int64 overflow", body: `{"updates": [{"epoch": 9223372036854775808}]}`, wantErr: true, wantField: "updates[0].epoch", wantMsg: "out of range"},
		{name: "uint8 overflow", body: `{"updates": [{}, {"badge": 256}]}`, wantErr: true, wantField: "updates[1].badge", wantMsg: "out of range"},
		{name: "negative unsigned", body: `{"updates": [{"badge": -1}]}`, wantErr: true, wantField: "updates[0].badge"},
		{name: "float32 overflow", body: `{"ratio": 1e39}`, wantErr: true, wantField: "ratio", wantMsg: "out of range"},
		{name: "object wanted", body: `{"dnd": []}`, wantErr: true, wantField: "dnd", wantMsg: "an object"},
		{name: "array wanted", body: `{"updates": {"0": {}}}`, wantErr: true, wantField: "updates", wantMsg: "an array"},
		{name: "map value type", body: `{"translations": {"en": 5}}`, wantErr: true, wantField: "translations.en"},
		{name: "bad time", body: `{"at": "yesterday"}`, wantErr: true, wantField: "at"},
		{name: "text unmarshaler accepts", body: `{"level": "high"}`},
		{name: "text unmarshaler rejects", body: `{"level": "medium"}`, wantErr: true, wantField: "level", wantMsg: "low or high"},
		{name: "bad string option", body: `{"str": "twelve"}`, wantErr: true, wantField: "str"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode[probe]([]byte(tt.body))
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("Decode(%s) = %v, want no error", tt.body, err)
				}
				if got == nil {
					t.Fatal("Decode returned nil value and nil error")
				}
				return
			}
			var ia *push.InvalidArgumentError
			if !errors.As(err, &ia) {
				t.Fatalf("Decode(%s) error = %v, want *push.InvalidArgumentError", tt.body, err)
			}
			if ia.Field != tt.wantField {
				t.Errorf("field = %q, want %q (message %q)", ia.Field, tt.wantField, ia.Message)
			}
			if !strings.Contains(ia.Message, tt.wantMsg) {
				t.Errorf("message = %q, want it to contain %q", ia.Message, tt.wantMsg)
			}
		})
	}
}

func TestDecodeValues(t *testing.T) {
	got, err := Decode[probe]([]byte(`{"remindType": "AT", "dnd": {"window": {"start": "22:00", "end": "07:30"}},
		"updates": [{"userId": "u1", "epoch": 3, "badge": 7}], "translations": {"zh": "吃饭吗?"},
		"embeddedField": 9, "-": "dash", "str": "12", "level": "low", "raw": {"a": 1}}`))
	if err != nil {
		t.Fatal(err)
	}
	at, badge := "AT", uint8(7)
	want := &probe{
		probeEmbedded: probeEmbedded{EmbeddedField: 9},
		RemindType:    &at,
		DND:           &probeDND{Window: &probeWindow{Start: "22:00", End: "07:30"}},
		Updates:       []probeUpdate{{UserID: "u1", Epoch: 3, Badge: &badge}},
		Translations:  map[string]string{"zh": "吃饭吗?"},
		Dash:          "dash",
		Str:           12,
		Level:         "low",
		Raw:           json.RawMessage(`{"a": 1}`),
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(probe{})); diff != "" {
		t.Errorf("Decode (-want +got):\n%s", diff)
	}
}

// TestDecodeRootTypes checks Decode with root types other than a struct.
func TestDecodeRootTypes(t *testing.T) {
	m, err := Decode[map[string]int]([]byte(`{"a": 1}`))
	if err != nil || (*m)["a"] != 1 {
		t.Errorf("map root = %v, %v", m, err)
	}
	if _, err := Decode[map[string]int]([]byte(`{"a": "x"}`)); !push.IsInvalid(err) {
		t.Errorf("map root bad value: err = %v, want invalid", err)
	}
	if _, err := Decode[any]([]byte(`{"a": [1]}`)); err != nil {
		t.Errorf("any root: %v", err)
	}
	if _, err := Decode[json.RawMessage]([]byte(`{"a": [1]}`)); err != nil {
		t.Errorf("raw root: %v", err)
	}
	type recursive struct {
		Children []*recursive `json:"children"`
	}
	if _, err := Decode[recursive]([]byte(`{"children": [{"children": [{"bad": 1}]}]}`)); err == nil ||
		err.(*push.InvalidArgumentError).Field != "children[0].children[0].bad" {
		t.Errorf("recursive type: err = %v, want children[0].children[0].bad", err)
	}
}

// TestJSONHandler checks that JSON[T] calls the handler only with a valid
// body, through the router, with the API.md error shape.
func TestJSONHandler(t *testing.T) {
	var called int
	h := JSON(func(_ context.Context, _ *Request, in *probeUpdate) (Response, error) {
		called++
		return Response{Status: 200, Body: in}, nil
	})
	r := newTestRouter(t, allHandlers(h))
	resp := r.do(t, req{method: "PUT", path: devicePath, body: `{"userId": "u", "epoch": 2}`}.sign().event())
	if resp.StatusCode != 200 || resp.Body != `{"userId":"u","epoch":2,"badge":null}` {
		t.Errorf("good body: %d %s", resp.StatusCode, resp.Body)
	}
	resp = r.do(t, req{method: "PUT", path: devicePath, body: `{"userId": "u", "epoch": 2, "x": {}}`}.sign().event())
	if e := errorOf(t, resp.Body); resp.StatusCode != 400 || e.Code != "invalid_argument" || e.Field != "x" {
		t.Errorf("unknown member: %d %+v", resp.StatusCode, e)
	}
	resp = r.do(t, req{method: "PUT", path: devicePath}.sign().event())
	if e := errorOf(t, resp.Body); resp.StatusCode != 400 || e.Message != "request body required" || e.Field != "" {
		t.Errorf("no body: %d %+v", resp.StatusCode, e)
	}
	if called != 1 {
		t.Errorf("handler called %d times, want 1", called)
	}
}

// BenchmarkDecodeLargeBody measures the strict decoder on a body near the
// 5 MiB ingest limit: 100000 recipient ids.
func BenchmarkDecodeLargeBody(b *testing.B) {
	type message struct {
		MessageID  string   `json:"messageId"`
		Recipients []string `json:"recipients"`
	}
	var sb strings.Builder
	sb.WriteString(`{"messageId": "m-1", "recipients": [`)
	for i := range 100000 {
		if i > 0 {
			sb.WriteString(",")
		}
		fmt.Fprintf(&sb, `"user-%040d"`, i)
	}
	sb.WriteString("]}")
	body := []byte(sb.String())
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := Decode[message](body); err != nil {
			b.Fatal(err)
		}
	}
}
