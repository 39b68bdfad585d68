package settings

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/offline-push/offline-push/shared/push"
)

// Op says what a patch does to one setting. A merge patch has to tell a
// member it leaves out from one it sets to null, so every setting of a Patch
// carries its own Op.
type Op int

// Operations on one setting.
const (
	Keep   Op = iota // the patch does not name the setting
	Set              // store Value
	Remove           // forget the setting, so it reads as its default
)

// Change is what a patch does to one setting of type T.
type Change[T any] struct {
	Op    Op
	Value T // meaningful only with Set
}

func set[T any](v T) Change[T] { return Change[T]{Op: Set, Value: v} }

func remove[T any]() Change[T] { return Change[T]{Op: Remove} }

// Patch is a validated app-level settings patch. A DND duration arrives as
// its end instant: the patch was validated at one clock reading, and that
// reading decides the instant.
type Patch struct {
	RemindType                  Change[push.RemindType]
	Window                      Change[push.DNDWindow]
	DNDUntil                    Change[time.Time]
	Language                    Change[string]
	ShowPreview                 Change[bool]
	MultiDevicePolicy           Change[push.MultiDevicePolicy]
	MobilePushWhenDesktopOnline Change[bool]
}

// Empty reports whether the patch changes nothing.
func (p Patch) Empty() bool {
	return p.RemindType.Op == Keep && p.Window.Op == Keep && p.DNDUntil.Op == Keep &&
		p.Language.Op == Keep && p.ShowPreview.Op == Keep && p.MultiDevicePolicy.Op == Keep &&
		p.MobilePushWhenDesktopOnline.Op == Keep
}

// ConversationPatch is a validated conversation settings patch.
type ConversationPatch struct {
	RemindType Change[push.RemindType]
	DNDUntil   Change[time.Time]
}

// Empty reports whether the patch changes nothing.
func (p ConversationPatch) Empty() bool {
	return p.RemindType.Op == Keep && p.DNDUntil.Op == Keep
}

// ParsePatch validates an app-level merge patch in full (API.md §5) and
// returns what it changes. Errors are *push.InvalidArgumentError naming the
// JSON path of the first culprit; unknown members are reported first.
func ParsePatch(body []byte, now time.Time) (Patch, error) {
	var p Patch
	m, err := object(body, "")
	if err != nil {
		return p, err
	}
	if m == nil {
		return p, push.Invalid("", "the body must be a JSON object")
	}
	if err := unknown(m, "", "remindType", "dnd", "language", "showPreview", "multiDevicePolicy", "mobilePushWhenDesktopOnline"); err != nil {
		return p, err
	}
	if raw, ok := m["remindType"]; ok {
		if p.RemindType, err = remindType(raw, "remindType"); err != nil {
			return p, err
		}
	}
	if raw, ok := m["dnd"]; ok {
		d, err := object(raw, "dnd")
		if err != nil {
			return p, err
		}
		if d == nil {
			p.Window, p.DNDUntil = remove[push.DNDWindow](), remove[time.Time]()
		} else {
			if err := unknown(d, "dnd", "window", "durationMs", "until"); err != nil {
				return p, err
			}
			if err := noUntil(d); err != nil {
				return p, err
			}
			if raw, ok := d["window"]; ok {
				if p.Window, err = window(raw, "dnd.window"); err != nil {
					return p, err
				}
			}
			if raw, ok := d["durationMs"]; ok {
				if p.DNDUntil, err = duration(raw, "dnd.durationMs", now); err != nil {
					return p, err
				}
			}
		}
	}
	if raw, ok := m["language"]; ok {
		if p.Language, err = language(raw, "language"); err != nil {
			return p, err
		}
	}
	if raw, ok := m["showPreview"]; ok {
		if p.ShowPreview, err = boolean(raw, "showPreview"); err != nil {
			return p, err
		}
	}
	if raw, ok := m["multiDevicePolicy"]; ok {
		if p.MultiDevicePolicy, err = multiDevicePolicy(raw, "multiDevicePolicy"); err != nil {
			return p, err
		}
	}
	if raw, ok := m["mobilePushWhenDesktopOnline"]; ok {
		if p.MobilePushWhenDesktopOnline, err = boolean(raw, "mobilePushWhenDesktopOnline"); err != nil {
			return p, err
		}
	}
	return p, nil
}

// ParseConversationPatch validates a conversation-level merge patch: only
// remindType and dnd.durationMs exist at this level.
func ParseConversationPatch(body []byte, now time.Time) (ConversationPatch, error) {
	var p ConversationPatch
	m, err := object(body, "")
	if err != nil {
		return p, err
	}
	if m == nil {
		return p, push.Invalid("", "the body must be a JSON object")
	}
	if err := unknown(m, "", "remindType", "dnd"); err != nil {
		return p, err
	}
	if raw, ok := m["remindType"]; ok {
		if p.RemindType, err = remindType(raw, "remindType"); err != nil {
			return p, err
		}
	}
	if raw, ok := m["dnd"]; ok {
		d, err := object(raw, "dnd")
		if err != nil {
			return p, err
		}
		if d == nil {
			p.DNDUntil = remove[time.Time]()
			return p, nil
		}
		if _, ok := d["window"]; ok {
			return p, push.Invalid("dnd.window", "a conversation has no DND window; only dnd.durationMs")
		}
		if err := unknown(d, "dnd", "durationMs", "until"); err != nil {
			return p, err
		}
		if err := noUntil(d); err != nil {
			return p, err
		}
		if raw, ok := d["durationMs"]; ok {
			if p.DNDUntil, err = duration(raw, "dnd.durationMs", now); err != nil {
				return p, err
			}
		}
	}
	return p, nil
}

// ParseBatch validates a batch-get body and returns the conversations it
// names, duplicates dropped, in the order first named.
func ParseBatch(body []byte) ([]Conversation, error) {
	m, err := object(body, "")
	if err != nil {
		return nil, err
	}
	if m == nil {
		return nil, push.Invalid("", "the body must be a JSON object")
	}
	if err := unknown(m, "", "conversations"); err != nil {
		return nil, err
	}
	raw, ok := m["conversations"]
	if !ok || isNull(raw) {
		return nil, push.Invalid("conversations", "is required")
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, push.Invalid("conversations", "must be an array")
	}
	if len(items) < 1 || len(items) > MaxBatch {
		return nil, push.Invalid("conversations", "must hold 1 to %d conversations, not %d", MaxBatch, len(items))
	}
	out := make([]Conversation, 0, len(items))
	seen := make(map[Conversation]bool, len(items))
	for i, item := range items {
		c, err := batchItem(item)
		if err != nil {
			return nil, push.Prefix("conversations["+strconv.Itoa(i)+"]", err)
		}
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out, nil
}

// batchItem validates one {"type", "id"} of a batch-get, naming fields
// relative to the item.
func batchItem(raw json.RawMessage) (Conversation, error) {
	m, err := object(raw, "")
	if err != nil {
		return Conversation{}, err
	}
	if m == nil {
		return Conversation{}, push.Invalid("", "must be an object")
	}
	if err := unknown(m, "", "type", "id"); err != nil {
		return Conversation{}, err
	}
	typ, err := requiredString(m, "type")
	if err != nil {
		return Conversation{}, err
	}
	t, ok := push.ParseConversationType(typ)
	if !ok {
		return Conversation{}, push.Invalid("type", "must be one of peer, group, chatroom")
	}
	id, err := requiredString(m, "id")
	if err != nil {
		return Conversation{}, err
	}
	if !push.ValidID(id) {
		return Conversation{}, push.Invalid("id", "must match ^[A-Za-z0-9_.@:+=~-]{1,128}$")
	}
	return Conversation{Type: t, ID: id}, nil
}

func requiredString(m map[string]json.RawMessage, name string) (string, error) {
	raw, ok := m[name]
	if !ok || isNull(raw) {
		return "", push.Invalid(name, "is required")
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", push.Invalid(name, "must be a string")
	}
	return s, nil
}

// object decodes raw as a JSON object, refusing a member given twice (a
// merge patch naming one setting twice would be ambiguous). It returns a nil
// map for null, so that callers can give null its merge patch meaning.
func object(raw []byte, field string) (map[string]json.RawMessage, error) {
	t := bytes.TrimSpace(raw)
	switch {
	case len(t) == 0:
		return nil, push.Invalid(field, "a JSON object is required")
	case !utf8.Valid(t):
		return nil, push.Invalid(field, "is not valid UTF-8")
	case !json.Valid(t):
		return nil, push.Invalid(field, "malformed JSON")
	case string(t) == "null":
		return nil, nil
	case t[0] != '{':
		return nil, push.Invalid(field, "must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(t))
	if _, err := dec.Token(); err != nil { // '{'
		return nil, push.Invalid(field, "malformed JSON")
	}
	m := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, push.Invalid(field, "malformed JSON")
		}
		name, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, push.Invalid(field, "malformed JSON")
		}
		if _, dup := m[name]; dup {
			return nil, push.Invalid(join(field, name), "duplicate member")
		}
		m[name] = v
	}
	return m, nil
}

// join appends a member name to a JSON path.
func join(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// unknown returns an error naming the first member of m, in sorted order,
// that is not one of known.
func unknown(m map[string]json.RawMessage, parent string, known ...string) error {
	var bad []string
	for k := range m {
		if !slices.Contains(known, k) {
			bad = append(bad, k)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	slices.Sort(bad)
	return push.Invalid(join(parent, bad[0]), "unknown member")
}

// noUntil refuses any dnd.until member: the end of a duration is derived
// from durationMs and cannot be written.
func noUntil(d map[string]json.RawMessage) error {
	if _, ok := d["until"]; ok {
		return push.Invalid("dnd.until", "cannot be patched; set dnd.durationMs instead")
	}
	return nil
}

func isNull(raw []byte) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}

func remindType(raw json.RawMessage, field string) (Change[push.RemindType], error) {
	if isNull(raw) {
		return remove[push.RemindType](), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return Change[push.RemindType]{}, push.Invalid(field, "must be a string")
	}
	r, ok := push.ParseRemindType(s)
	if !ok {
		return Change[push.RemindType]{}, push.Invalid(field, "must be one of ALL, AT, NONE")
	}
	return set(r), nil
}

func multiDevicePolicy(raw json.RawMessage, field string) (Change[push.MultiDevicePolicy], error) {
	if isNull(raw) {
		return remove[push.MultiDevicePolicy](), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return Change[push.MultiDevicePolicy]{}, push.Invalid(field, "must be a string")
	}
	switch p := push.MultiDevicePolicy(s); p {
	case push.AnyOffline, push.AllOffline:
		return set(p), nil
	}
	return Change[push.MultiDevicePolicy]{}, push.Invalid(field, "must be one of any_offline, all_offline")
}

func boolean(raw json.RawMessage, field string) (Change[bool], error) {
	if isNull(raw) {
		return remove[bool](), nil
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil {
		return Change[bool]{}, push.Invalid(field, "must be a boolean")
	}
	return set(b), nil
}

func language(raw json.RawMessage, field string) (Change[string], error) {
	if isNull(raw) {
		return remove[string](), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return Change[string]{}, push.Invalid(field, "must be a string")
	}
	if !ValidLanguage(s) {
		return Change[string]{}, push.Invalid(field, "must be a BCP 47 language tag")
	}
	return set(s), nil
}

// duration turns dnd.durationMs into the end instant it sets. Zero and null
// clear a running duration.
func duration(raw json.RawMessage, field string, now time.Time) (Change[time.Time], error) {
	if isNull(raw) {
		return remove[time.Time](), nil
	}
	var n json.Number
	// encoding/json also fills a json.Number from a JSON string holding a
	// number; "5000" is still the wrong type.
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] == '"' || json.Unmarshal(t, &n) != nil {
		return Change[time.Time]{}, push.Invalid(field, "must be an integer")
	}
	ms, err := integer(n)
	if err != nil {
		return Change[time.Time]{}, push.Invalid(field, "must be an integer")
	}
	max := push.MaxDNDDuration.Milliseconds()
	if ms < 0 || ms > max {
		return Change[time.Time]{}, push.Invalid(field, "must be between 0 and %d", max)
	}
	if ms == 0 {
		return remove[time.Time](), nil
	}
	return set(now.Add(time.Duration(ms) * time.Millisecond).Truncate(time.Millisecond)), nil
}

// integer accepts any JSON number with an integral value (so 1e3 is 1000)
// that fits in an int64.
func integer(n json.Number) (int64, error) {
	if i, err := n.Int64(); err == nil {
		return i, nil
	}
	f, err := n.Float64()
	if err != nil || f != math.Trunc(f) || math.Abs(f) >= 1<<62 {
		return 0, errors.New("not an integer")
	}
	return int64(f), nil
}

// window validates a DND window, which a patch replaces whole.
func window(raw json.RawMessage, field string) (Change[push.DNDWindow], error) {
	w, err := object(raw, field)
	if err != nil {
		return Change[push.DNDWindow]{}, err
	}
	if w == nil {
		return remove[push.DNDWindow](), nil
	}
	if err := unknown(w, field, "start", "end", "timezone"); err != nil {
		return Change[push.DNDWindow]{}, err
	}
	var out push.DNDWindow
	for _, p := range []struct {
		name string
		dst  *int
	}{{"start", &out.Start}, {"end", &out.End}} {
		s, err := requiredString(w, p.name)
		if err != nil {
			return Change[push.DNDWindow]{}, push.Prefix(field, err)
		}
		if *p.dst, err = clock(s); err != nil {
			return Change[push.DNDWindow]{}, push.Invalid(field+"."+p.name, "must be HH:MM from 00:00 to 23:59")
		}
	}
	out.TimeZone = "UTC"
	if raw, ok := w["timezone"]; ok && !isNull(raw) {
		var z string
		if err := json.Unmarshal(raw, &z); err != nil {
			return Change[push.DNDWindow]{}, push.Invalid(field+".timezone", "must be a string")
		}
		if !ValidTimeZone(z) {
			return Change[push.DNDWindow]{}, push.Invalid(field+".timezone", "must be an IANA time zone name such as Asia/Shanghai")
		}
		out.TimeZone = z
	}
	return set(out), nil
}

// clock parses a 24-hour HH:MM into minutes after midnight. Exactly two
// digits each: 7:00, 24:00 and 12:60 are refused.
func clock(s string) (int, error) {
	if len(s) != 5 || s[2] != ':' {
		return 0, errors.New("not HH:MM")
	}
	digits := func(a, b byte) (int, bool) {
		if a < '0' || a > '9' || b < '0' || b > '9' {
			return 0, false
		}
		return int(a-'0')*10 + int(b-'0'), true
	}
	h, ok1 := digits(s[0], s[1])
	m, ok2 := digits(s[3], s[4])
	if !ok1 || !ok2 || h > 23 || m > 59 {
		return 0, errors.New("not HH:MM")
	}
	return h*60 + m, nil
}

// ValidTimeZone reports whether z names a zone of the IANA database.
// time.LoadLocation also takes "" and "Local", which name no fixed zone and
// are refused here; callers must link time/tzdata where the host may lack a
// zone database.
func ValidTimeZone(z string) bool {
	if z == "" || z == "Local" || len(z) > 64 || strings.Contains(z, "..") {
		return false
	}
	for _, c := range z {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '/', c == '_', c == '-', c == '+':
		default:
			return false
		}
	}
	_, err := time.LoadLocation(z)
	return err == nil
}
