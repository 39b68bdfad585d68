package oppo

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/offline-push/offline-push/shared/push"
)

// message is one element of unicast_batch's messages array.
type message struct {
	// TargetType 2 addresses a registration id.
	TargetType  int    `json:"target_type"`
	TargetValue string `json:"target_value"`
	// VerifyRegistrationID makes the phone drop a push whose registration
	// id is no longer the app's own (the app was reinstalled): a stale
	// binding then shows nothing rather than a stranger's message.
	VerifyRegistrationID bool         `json:"verify_registration_id"`
	Notification         notification `json:"notification"`
}

// notification is OPPO's notification body, in the snake_case of the
// documentation's parameter table.
type notification struct {
	AppMessageID string `json:"app_message_id,omitempty"`
	// Style 1 is the standard style (title and content ≤ 50 characters).
	Style   int    `json:"style"`
	Title   string `json:"title"`
	Content string `json:"content"`
	// ClickActionType 0 opens the app's launch activity, which receives
	// ActionParameters as extras.
	ClickActionType  int    `json:"click_action_type"`
	ActionParameters string `json:"action_parameters,omitempty"`
	OffLine          bool   `json:"off_line"`
	OffLineTTL       int    `json:"off_line_ttl,omitempty"`
	ChannelID        string `json:"channel_id,omitempty"`
	NotifyID         int32  `json:"notify_id,omitempty"`
	Category         string `json:"category,omitempty"`
	NotifyLevel      int    `json:"notify_level,omitempty"`
}

// Ellipsis ends a text cut to fit (POLICY.md rule 22).
const Ellipsis = "…"

// build renders one message per target of job. It returns a result for
// every target instead when the push cannot be sent at all.
func build(job *push.SendJob, p *parsed, now time.Time) ([]message, *push.SendResult) {
	e := job.Envelope
	params, err := actionParameters(e)
	if err != nil {
		return nil, &push.SendResult{Class: push.SendBadMessage, Code: "payload_encoding"}
	}
	if units(params) > ActionParametersLimit {
		return nil, &push.SendResult{Class: push.SendBadMessage, Code: "payload_too_large"}
	}
	res := p.resource(e.ResourceID)
	channel, category := p.creds.ChannelID, p.creds.Category
	if res.ChannelID != "" {
		channel = res.ChannelID
	}
	if res.Category != "" {
		category = res.Category
	}
	base := notification{
		AppMessageID:     appMessageID(e),
		Style:            1,
		ClickActionType:  0,
		ActionParameters: params,
		ChannelID:        channel,
		Category:         category,
		NotifyLevel:      res.NotifyLevel,
	}
	if e.NowOrNever {
		base.OffLine = false
	} else {
		base.OffLine = true
		base.OffLineTTL = ttlSeconds(job.TTL)
	}
	msgs := make([]message, len(job.Targets))
	for i := range job.Targets {
		t := &job.Targets[i]
		n := base
		if t.Text >= 0 && t.Text < len(e.Texts) {
			n.Title = Fit(e.Texts[t.Text].Title, TitleLimit)
			n.Content = Fit(e.Texts[t.Text].Body, ContentLimit)
		}
		_, n.NotifyID = e.Collapse(t)
		msgs[i] = message{TargetType: 2, TargetValue: t.Token, VerifyRegistrationID: true, Notification: n}
	}
	return msgs, nil
}

// ttlSeconds is d in whole seconds, rounded up, within 1 s and MaxTTL.
func ttlSeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(1, min(s, int(MaxTTL/time.Second)))
}

// appMessageID is the same for every try of one message, and short whatever
// the message id's length.
func appMessageID(e *push.Envelope) string {
	sum := sha256.Sum256([]byte(e.App + "\x00" + e.MessageID + "\x00" + string(e.Kind)))
	return hex.EncodeToString(sum[:16])
}

// Data returns the custom data every push of e carries to the app: the
// caller's payload, and our keys, which win on a clash: type (the message
// kind, "call_cancel" ending a call as POLICY.md rule 27 says), messageId,
// senderId, conversationType, conversationId when known, and for calls
// callId and media, plus callExpiresAt on invites (RFC 3339 UTC with
// milliseconds; POLICY.md rule 25), so the app ignores a ring that comes
// late.
func Data(e *push.Envelope) map[string]string {
	m := make(map[string]string, len(e.Payload)+8)
	for k, v := range e.Payload {
		m[k] = v
	}
	m["type"] = string(e.Kind)
	m["messageId"] = e.MessageID
	m["senderId"] = e.SenderID
	m["conversationType"] = string(e.ConversationType)
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

// actionParameters is Data as the JSON object string OPPO passes on.
// encoding/json sorts the keys, so the same push always encodes the same.
func actionParameters(e *push.Envelope) (string, error) {
	b, err := json.Marshal(Data(e))
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// units counts s in UTF-16 code units, as a Java server's String.length.
func units(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// Fit returns s cut to at most limit characters (code points), ellipsis
// included, or s itself when it fits. The cut falls on a character
// boundary and never leaves a joiner, variation selector or combining mark
// dangling, nor strips one from the character it belongs to.
func Fit(s string, limit int) string {
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	rs := []rune(s)
	keep := max(limit-1, 0)
	for keep > 0 && (attached(rs[keep]) || rs[keep-1] == '\u200d') {
		keep--
	}
	return string(rs[:keep]) + Ellipsis
}

// attached reports whether r belongs to the character before it: a
// combining mark, a zero-width joiner or a variation selector.
func attached(r rune) bool {
	return unicode.In(r, unicode.Mn, unicode.Me) || r == '\u200d' || (r >= '\ufe00' && r <= '\ufe0f')
}
