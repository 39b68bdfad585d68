package vivo

import (
	"encoding/json"
	"time"
	"unicode"
	"unicode/utf16"

	"github.com/offline-push/offline-push/shared/push"
)

// message is the body of /message/send and, without regId,
// /message/saveListPayload.
type message struct {
	AppID int64  `json:"appId"`
	RegID string `json:"regId,omitempty"`
	// NotifyType 4 rings and vibrates.
	NotifyType int    `json:"notifyType"`
	Title      string `json:"title"`
	Content    string `json:"content"`
	TimeToLive int    `json:"timeToLive"`
	// SkipType 1 opens the app's home page, which receives ClientCustomMap.
	SkipType        int               `json:"skipType"`
	NetworkType     int               `json:"networkType"`
	Classification  int               `json:"classification"`
	Category        string            `json:"category,omitempty"`
	ClientCustomMap map[string]string `json:"clientCustomMap,omitempty"`
	RequestID       string            `json:"requestId"`
	PushMode        int               `json:"pushMode"`
	NotifyID        int32             `json:"notifyId,omitempty"`
}

// listPush is the body of /message/pushToList.
type listPush struct {
	AppID     int64    `json:"appId"`
	RegIDs    []string `json:"regIds"`
	TaskID    string   `json:"taskId"`
	RequestID string   `json:"requestId"`
}

// Ellipsis ends a text cut to fit (POLICY.md rule 22).
const Ellipsis = "…"

// baseMessage renders what every request for job shares, or a result for
// every target when the push cannot be sent.
func baseMessage(job *push.SendJob, p *parsed) (message, *push.SendResult) {
	e := job.Envelope
	custom, ok := customMap(e)
	if !ok {
		return message{}, &push.SendResult{Class: push.SendBadMessage, Code: "payload_too_large"}
	}
	res := p.resource(e.ResourceID)
	category := p.creds.Category
	if res.Category != "" {
		category = res.Category
	}
	notifyType := 4
	if res.NotifyType >= 1 && res.NotifyType <= 4 {
		notifyType = res.NotifyType
	}
	m := message{
		AppID:           p.appID,
		NotifyType:      notifyType,
		TimeToLive:      ttlSeconds(job.TTL, e.NowOrNever),
		SkipType:        1,
		NetworkType:     -1,
		Category:        category,
		ClientCustomMap: custom,
	}
	if systemCategories[category] {
		m.Classification = 1
	}
	return m, nil
}

// ttlSeconds is d in whole seconds, rounded up, within MinTTL and MaxTTL;
// NowOrNever pushes get MinTTL, vivo's shortest.
func ttlSeconds(d time.Duration, nowOrNever bool) int {
	if nowOrNever {
		return int(MinTTL / time.Second)
	}
	s := int((d + time.Second - 1) / time.Second)
	return max(int(MinTTL/time.Second), min(s, int(MaxTTL/time.Second)))
}

// group is the targets that share one notification.
type group struct {
	title, content string
	notifyID       int32
	idx            []int
}

// groupTargets groups the targets of job by text and notify id, in the
// order of their first target.
func groupTargets(job *push.SendJob) []*group {
	e := job.Envelope
	type key struct {
		text     int
		notifyID int32
	}
	byKey := map[key]*group{}
	var out []*group
	for i := range job.Targets {
		t := &job.Targets[i]
		_, n := e.Collapse(t)
		k := key{t.Text, n}
		g, ok := byKey[k]
		if !ok {
			g = &group{notifyID: n}
			if t.Text >= 0 && t.Text < len(e.Texts) {
				g.title = Fit(e.Texts[t.Text].Title, TitleWidth)
				g.content = Fit(e.Texts[t.Text].Body, ContentWidth)
			}
			byKey[k] = g
			out = append(out, g)
		}
		g.idx = append(g.idx, i)
	}
	return out
}

// Data returns our keys of the custom data of e: type (the message kind,
// "call_cancel" ending a call as POLICY.md rule 27 says), messageId,
// senderId, conversationType, conversationId when known, and for calls
// callId and media, plus callExpiresAt on invites (RFC 3339 UTC with
// milliseconds; POLICY.md rule 25).
func Data(e *push.Envelope) map[string]string {
	m := map[string]string{
		"type":             string(e.Kind),
		"messageId":        e.MessageID,
		"senderId":         e.SenderID,
		"conversationType": string(e.ConversationType),
	}
	if e.ConversationID != "" {
		m["conversationId"] = e.ConversationID
	}
	if e.Kind == push.KindCallInvite || e.Kind == push.KindCallCancel {
		m["callId"] = e.CallID
		if e.Media != "" {
			m["media"] = string(e.Media)
		}
	}
	if e.Kind == push.KindCallInvite {
		m["callExpiresAt"] = e.Expiry().Format("2006-01-02T15:04:05.000Z07:00")
	}
	return m
}

// optionalKeys are left out, in this order, when the data does not fit:
// the app can look them up by messageId.
var optionalKeys = []string{"senderId", "conversationId", "conversationType"}

// customMap builds clientCustomMap within vivo's limits (see the package
// comment), and false when nothing fits.
func customMap(e *push.Envelope) (map[string]string, bool) {
	ours := Data(e)
	flat := make(map[string]string, len(ours)+len(e.Payload))
	for k, v := range e.Payload {
		flat[k] = v
	}
	for k, v := range ours {
		flat[k] = v
	}
	if fits(flat) {
		return flat, true
	}
	packed := ours
	if len(e.Payload) > 0 {
		b, err := json.Marshal(e.Payload)
		if err != nil {
			return nil, false
		}
		packed["payload"] = string(b)
	}
	for _, k := range optionalKeys {
		if fits(packed) {
			return packed, true
		}
		delete(packed, k)
	}
	return packed, fits(packed)
}

// fits reports whether m is within vivo's pair count and total length,
// counted in UTF-16 units as a Java server counts characters.
func fits(m map[string]string) bool {
	if len(m) > MaxCustomPairs {
		return false
	}
	n := 0
	for k, v := range m {
		n += units(k) + units(v)
	}
	return n <= MaxCustomChars
}

func units(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// width is how much r counts toward vivo's title and content limits. vivo
// counts a Chinese character as two English ones and an emoji as one; every
// character outside ASCII counts two here, which is never less.
func width(r rune) int {
	if r < 0x80 {
		return 1
	}
	return 2
}

// Width is s measured as vivo measures titles and contents (at least).
func Width(s string) int {
	n := 0
	for _, r := range s {
		n += width(r)
	}
	return n
}

// Fit returns s cut to at most limit by Width, ellipsis included, or s
// itself when it fits. The cut falls on a character boundary and never
// leaves a joiner, variation selector or combining mark dangling, nor strips
// one from the character it belongs to.
func Fit(s string, limit int) string {
	if Width(s) <= limit {
		return s
	}
	rs := []rune(s)
	budget := limit - Width(Ellipsis)
	keep, used := 0, 0
	for keep < len(rs) && used+width(rs[keep]) <= budget {
		used += width(rs[keep])
		keep++
	}
	for keep > 0 && keep < len(rs) && (attached(rs[keep]) || rs[keep-1] == '\u200d') {
		keep--
	}
	return string(rs[:keep]) + Ellipsis
}

// attached reports whether r belongs to the character before it: a
// combining mark, a zero-width joiner or a variation selector.
func attached(r rune) bool {
	return unicode.In(r, unicode.Mn, unicode.Me) || r == '\u200d' || (r >= '\ufe00' && r <= '\ufe0f')
}
