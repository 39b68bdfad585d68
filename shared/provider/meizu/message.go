package meizu

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/offline-push/offline-push/shared/push"
)

// Meizu's limits (VENDORS.md §9, MEIZUPUSH/PushAPI README).
const (
	// Titles take 1 to 32 characters, contents 1 to 100, counted as
	// Meizu's Java servers count String length (UTF-16 units).
	maxTitleUnits   = 32
	maxContentUnits = 100
	// validTime is in whole hours, from 1 to 72 (POLICY.md rule 25: a
	// call's few seconds become the one-hour minimum, and callExpiresAt in
	// the parameters lets the app ignore a late ring).
	minValidHours = 1
	maxValidHours = 72
	// maxMessageBytes bounds messageJson. Meizu documents no number; 4096
	// bytes is the figure given for every Android vendor and the budget
	// ingest renders within (policy.BudgetFor).
	maxMessageBytes = 4096
)

// notifyKeyRE is what Meizu allows in notifyKey: at most 8 of [0-9A-Za-z_-].
var notifyKeyRE = regexp.MustCompile(`^[0-9A-Za-z_-]{1,8}$`)

// message is Meizu's messageJson of a notification-bar push. Field order
// is fixed, so the same notification always encodes (and signs) the same.
type message struct {
	NoticeBarInfo    noticeBarInfo    `json:"noticeBarInfo"`
	NoticeExpandInfo noticeExpandInfo `json:"noticeExpandInfo"`
	ClickTypeInfo    clickTypeInfo    `json:"clickTypeInfo"`
	PushTimeInfo     pushTimeInfo     `json:"pushTimeInfo"`
	AdvanceInfo      advanceInfo      `json:"advanceInfo"`
}

type noticeBarInfo struct {
	NoticeBarType int    `json:"noticeBarType"` // 0: Flyme's standard style
	Title         string `json:"title"`
	Content       string `json:"content"`
}

type noticeExpandInfo struct {
	NoticeExpandType int `json:"noticeExpandType"` // 0: standard
}

type clickTypeInfo struct {
	// ClickType 0 opens the app, which reads Parameters.
	ClickType  int               `json:"clickType"`
	Parameters map[string]string `json:"parameters,omitempty"`
}

type pushTimeInfo struct {
	// OffLine 1 keeps the push for an offline device ValidTime hours; 0
	// delivers now or never.
	OffLine   int `json:"offLine"`
	ValidTime int `json:"validTime,omitempty"`
}

type advanceInfo struct {
	// Suspend 1 shows the notification as a heads-up banner, Flyme's
	// default; Meizu has no delivery priority to map Envelope.Priority to.
	Suspend          int              `json:"suspend"`
	ClearNoticeBar   int              `json:"clearNoticeBar"`
	NotificationType notificationType `json:"notificationType"`
	NotifyKey        string           `json:"notifyKey,omitempty"`
}

// notificationType switches the default vibration, light and sound on;
// Meizu offers no custom sound.
type notificationType struct {
	Vibrate int `json:"vibrate"`
	Lights  int `json:"lights"`
	Sound   int `json:"sound"`
}

// notifyKey returns the notifyKey of target t: the envelope's or the
// target's collapse id, which ingest derives to fit Meizu (push.CollapseFor).
// One that does not fit is derived again here, and a push without one gets
// its message's own key, so a retried push replaces itself.
func notifyKey(env *push.Envelope, t *push.Target) string {
	id, _ := env.Collapse(t)
	if notifyKeyRE.MatchString(id) {
		return id
	}
	if id == "" {
		id = push.MessageCollapseKey(env.MessageID)
	}
	key, _ := push.CollapseFor(push.Meizu, id)
	return key
}

// messageJSON builds the messageJson of one notification, or a verdict
// when it cannot be sent.
func messageJSON(job *push.SendJob, text int, key string) (string, *push.SendResult) {
	env := job.Envelope
	tx := env.Texts[text]
	title, content := fit(tx.Title, maxTitleUnits), fit(tx.Body, maxContentUnits)
	if blank(title) || blank(content) {
		return "", &push.SendResult{Class: push.SendBadMessage, Code: "blank_text"}
	}
	m := message{
		NoticeBarInfo: noticeBarInfo{Title: title, Content: content},
		ClickTypeInfo: clickTypeInfo{Parameters: appData(env)},
		PushTimeInfo:  pushTimeInfo{OffLine: 1, ValidTime: validHours(job.TTL)},
		AdvanceInfo: advanceInfo{
			Suspend: 1, ClearNoticeBar: 1,
			NotificationType: notificationType{Vibrate: 1, Lights: 1, Sound: 1},
			NotifyKey:        key,
		},
	}
	if env.NowOrNever {
		m.PushTimeInfo = pushTimeInfo{OffLine: 0}
	}
	b, err := json.Marshal(m)
	if err != nil || len(b) > maxMessageBytes {
		return "", &push.SendResult{Class: push.SendBadMessage, Code: "payload_too_large"}
	}
	return string(b), nil
}

// validHours is ttl in whole hours, rounded down so that Meizu never keeps
// a push past its expiry, within Meizu's 1 to 72.
func validHours(ttl time.Duration) int {
	return min(max(int(ttl/time.Hour), minValidHours), maxValidHours)
}

// appData is what the app receives when the notification is tapped
// (clickTypeInfo.parameters): the caller's payload and the ids the app
// needs to open the right chat or call screen; our keys win over the
// caller's of the same name. Meizu documents no badge field: Flyme counts
// the app's notifications itself, so no increment is sent.
func appData(env *push.Envelope) map[string]string {
	d := make(map[string]string, len(env.Payload)+8)
	for k, v := range env.Payload {
		d[k] = v
	}
	d["messageId"] = env.MessageID
	d["kind"] = string(env.Kind)
	d["senderId"] = env.SenderID
	d["conversationType"] = string(env.ConversationType)
	if env.ConversationID != "" {
		d["conversationId"] = env.ConversationID
	}
	if env.CallID != "" {
		d["callId"] = env.CallID
	}
	if env.Media != "" {
		d["media"] = string(env.Media)
	}
	if env.Kind == push.KindCallInvite {
		d["callExpiresAt"] = strconv.FormatInt(env.ExpiresAt, 10)
	}
	return d
}

// sign is Meizu's request signature: the parameters sorted by name, joined
// as name=value with no separator, the app secret appended, and the
// lower-case hex MD5 of that raw (not URL-encoded) string.
func sign(params map[string]string, secret string) string {
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	// Byte order is the documented dictionary order for the ASCII
	// parameter names Meizu uses.
	slices.Sort(names)
	var b strings.Builder
	for _, k := range names {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(params[k])
	}
	b.WriteString(secret)
	sum := md5.Sum([]byte(b.String()))
	return hex.EncodeToString(sum[:])
}

// ellipsis ends a text that had to be cut (POLICY.md rule 22).
const ellipsis = "…"

// fit returns s if it has at most max UTF-16 units, else its longest prefix
// of whole runes that leaves room for the ellipsis, with trailing spaces
// dropped, and the ellipsis. Ingest has already fitted the texts to
// Meizu's budget; this re-check keeps a text that crossed the queue from
// ever being refused for length, and never splits a character.
func fit(s string, max int) string {
	units := 0
	for _, r := range s {
		units += utf16Len(r)
	}
	if units <= max {
		return s
	}
	cut, used := 0, 0
	for i, r := range s {
		if used+utf16Len(r)+1 > max {
			break
		}
		used += utf16Len(r)
		cut = i + utf8.RuneLen(r)
	}
	return strings.TrimRightFunc(s[:cut], unicode.IsSpace) + ellipsis
}

func utf16Len(r rune) int {
	if r >= 0x10000 {
		return 2
	}
	return 1
}

// blank reports whether s has no visible character; Meizu needs at least
// one in a title and a content.
func blank(s string) bool {
	return strings.TrimFunc(s, unicode.IsSpace) == ""
}
