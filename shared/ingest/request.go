package ingest

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/offline-push/offline-push/shared/push"
)

// Limits of a message request (API.md §6). Text limits count Unicode code
// points.
const (
	MaxRecipients     = 100000
	MaxForced         = 1000
	MaxExplained      = 1000
	MaxContent        = 2000
	MaxTitle          = 100
	MaxPlaceholder    = 100
	MaxNickname       = 64
	MaxTranslations   = 20
	MaxPayloadBytes   = 1024
	MaxSound          = 64
	MaxResourceID     = 32
	MaxMentions       = MaxRecipients
	maxLanguageSubtag = 8
)

// Request is the body of POST /v1/apps/{app}/messages, as decoded strictly
// by httpapi.JSON (unknown members are refused there). Optional members are
// pointers so that an absent member can be told from a zero one.
type Request struct {
	MessageID    *string            `json:"messageId"`
	Type         *string            `json:"type"`
	Sender       *SenderInput       `json:"sender"`
	Conversation *ConversationInput `json:"conversation"`
	Recipients   []string           `json:"recipients"`
	Mentions     *MentionsInput     `json:"mentions"`
	Push         *ContentInput      `json:"push"`
	ForcePush    *ForceInput        `json:"forcePush"`
	Call         *CallInput         `json:"call"`
	TTLSeconds   *int64             `json:"ttlSeconds"`
	DryRun       bool               `json:"dryRun"`
	Explain      bool               `json:"explain"`
	EvaluateAt   *string            `json:"evaluateAt"`
}

// SenderInput is the request's "sender".
type SenderInput struct {
	UserID   *string `json:"userId"`
	Nickname *string `json:"nickname"`
}

// ConversationInput is the request's "conversation".
type ConversationInput struct {
	Type *string `json:"type"`
	ID   *string `json:"id"`
}

// MentionsInput is the request's "mentions".
type MentionsInput struct {
	UserIDs []string `json:"userIds"`
	All     bool     `json:"all"`
}

// ContentInput is the request's "push".
type ContentInput struct {
	Title          *string           `json:"title"`
	Content        *string           `json:"content"`
	Translations   map[string]string `json:"translations"`
	Payload        map[string]string `json:"payload"`
	NicknamePrefix *bool             `json:"nicknamePrefix"`
	HideContent    *bool             `json:"hideContent"`
	Placeholder    *string           `json:"placeholder"`
	Badge          *bool             `json:"badge"`
	Sound          *string           `json:"sound"`
	ResourceID     *string           `json:"resourceId"`
}

// ForceInput is the request's "forcePush".
type ForceInput struct {
	UserIDs []string `json:"userIds"`
	All     bool     `json:"all"`
	Content *string  `json:"content"`
}

// CallInput is the request's "call".
type CallInput struct {
	CallID         *string `json:"callId"`
	Media          *string `json:"media"`
	TimeoutSeconds *int64  `json:"timeoutSeconds"`
}

// Input is a validated request, defaults applied.
type Input struct {
	Message push.Message
	// Recipients are the recipients in request order, duplicates and the
	// sender removed.
	Recipients []string
	DryRun     bool
	Explain    bool
	// EvaluateAt replaces the clock of a dry run; zero when not given.
	EvaluateAt time.Time
}

// idPattern is what push.ValidID accepts, for error messages.
const idPattern = "must match ^[A-Za-z0-9_.@:+=~-]{1,128}$"

// Parse validates r field by field, in the order API.md §6 lists them, and
// returns the first fault as a *push.InvalidArgumentError naming its JSON
// path. Texts have the noncharacters U+FFFE and U+FFFF replaced by U+FFFD:
// SQS refuses them, and they never carry meaning in a notification.
func Parse(r *Request) (*Input, error) {
	if r == nil {
		return nil, push.Invalid("", "request body required")
	}
	in := &Input{}
	m := &in.Message

	// messageId, type.
	switch {
	case r.MessageID == nil:
		return nil, push.Invalid("messageId", "required")
	case !push.ValidID(*r.MessageID):
		return nil, push.Invalid("messageId", idPattern)
	}
	m.ID = *r.MessageID
	if r.Type == nil {
		return nil, push.Invalid("type", "required")
	}
	kind, ok := push.ParseMessageKind(*r.Type)
	if !ok {
		return nil, push.Invalid("type", "must be message, call_invite or call_cancel")
	}
	m.Kind = kind

	// sender.
	if r.Sender == nil || r.Sender.UserID == nil {
		return nil, push.Invalid("sender.userId", "required")
	}
	if !push.ValidID(*r.Sender.UserID) {
		return nil, push.Invalid("sender.userId", idPattern)
	}
	m.Sender.UserID = *r.Sender.UserID
	if r.Sender.Nickname != nil {
		if err := text("sender.nickname", *r.Sender.Nickname, 0, MaxNickname); err != nil {
			return nil, err
		}
		m.Sender.Nickname = clean(*r.Sender.Nickname)
	}

	// conversation.
	if r.Conversation == nil || r.Conversation.Type == nil {
		return nil, push.Invalid("conversation.type", "required")
	}
	ct, ok := push.ParseConversationType(*r.Conversation.Type)
	if !ok {
		return nil, push.Invalid("conversation.type", "must be peer, group or chatroom")
	}
	m.Conversation.Type = ct
	switch {
	case r.Conversation.ID != nil && !push.ValidID(*r.Conversation.ID):
		return nil, push.Invalid("conversation.id", idPattern)
	case r.Conversation.ID != nil:
		m.Conversation.ID = *r.Conversation.ID
	case ct != push.Peer:
		return nil, push.Invalid("conversation.id", "required for %s conversations", ct)
	}

	// recipients.
	if r.Recipients == nil {
		return nil, push.Invalid("recipients", "required")
	}
	if len(r.Recipients) == 0 || len(r.Recipients) > MaxRecipients {
		return nil, push.Invalid("recipients", "must hold 1 to %d user ids", MaxRecipients)
	}
	listed := make(map[string]struct{}, len(r.Recipients))
	in.Recipients = make([]string, 0, len(r.Recipients))
	for i, u := range r.Recipients {
		if !push.ValidID(u) {
			return nil, push.Invalid("recipients["+strconv.Itoa(i)+"]", idPattern)
		}
		if _, dup := listed[u]; dup {
			continue
		}
		listed[u] = struct{}{}
		if u != m.Sender.UserID {
			in.Recipients = append(in.Recipients, u)
		}
	}

	// mentions.
	if r.Mentions != nil {
		if len(r.Mentions.UserIDs) > MaxMentions {
			return nil, push.Invalid("mentions.userIds", "must hold at most %d user ids", MaxMentions)
		}
		for i, u := range r.Mentions.UserIDs {
			if !push.ValidID(u) {
				return nil, push.Invalid("mentions.userIds["+strconv.Itoa(i)+"]", idPattern)
			}
		}
		m.Mentions = push.Mentions{UserIDs: push.NewUserSet(r.Mentions.UserIDs...), All: r.Mentions.All}
	}

	// push.
	if err := parseContent(r.Push, m); err != nil {
		return nil, err
	}

	// forcePush.
	if f := r.ForcePush; f != nil {
		if len(f.UserIDs) > MaxForced {
			return nil, push.Invalid("forcePush.userIds", "must hold at most %d user ids", MaxForced)
		}
		for i, u := range f.UserIDs {
			field := "forcePush.userIds[" + strconv.Itoa(i) + "]"
			if !push.ValidID(u) {
				return nil, push.Invalid(field, idPattern)
			}
			if _, ok := listed[u]; !ok {
				return nil, push.Invalid(field, "must also be a recipient")
			}
		}
		m.Force = push.Force{UserIDs: push.NewUserSet(f.UserIDs...), All: f.All}
		if f.Content != nil {
			if err := text("forcePush.content", *f.Content, 0, MaxContent); err != nil {
				return nil, err
			}
			m.Force.Content = clean(*f.Content)
		}
	}

	// call.
	isCall := kind == push.KindCallInvite || kind == push.KindCallCancel
	switch {
	case isCall && r.Call == nil:
		return nil, push.Invalid("call", "required for %s", kind)
	case !isCall && r.Call != nil:
		return nil, push.Invalid("call", "only allowed with call_invite and call_cancel")
	case isCall:
		c, err := parseCall(r.Call)
		if err != nil {
			return nil, err
		}
		m.Call = c
	}

	// ttlSeconds.
	m.TTL = push.DefaultTTL
	if r.TTLSeconds != nil {
		n := *r.TTLSeconds
		if n < 0 || time.Duration(n)*time.Second > push.MaxTTL {
			return nil, push.Invalid("ttlSeconds", "must be 0 to %d", int64(push.MaxTTL/time.Second))
		}
		m.TTL = time.Duration(n) * time.Second
	}

	// dryRun, explain, evaluateAt.
	in.DryRun, in.Explain = r.DryRun, r.Explain
	if r.EvaluateAt != nil {
		t, err := time.Parse(time.RFC3339Nano, *r.EvaluateAt)
		if err != nil {
			return nil, push.Invalid("evaluateAt", "must be an RFC 3339 instant such as 2026-11-22T10:00:00.000Z")
		}
		if !in.DryRun {
			return nil, push.Invalid("evaluateAt", "only allowed with dryRun")
		}
		in.EvaluateAt = t.UTC().Truncate(time.Millisecond)
	}
	if in.Explain && len(in.Recipients) > MaxExplained {
		return nil, push.Invalid("explain", "only allowed with up to %d recipients, this message has %d", MaxExplained, len(in.Recipients))
	}
	return in, nil
}

// parseContent validates the "push" member into m.Content, with defaults.
func parseContent(p *ContentInput, m *push.Message) error {
	c := &m.Content
	c.NicknamePrefix, c.Badge, c.Placeholder = true, true, push.DefaultPlaceholder
	if p == nil {
		p = &ContentInput{}
	}
	switch {
	case p.Content != nil:
		if err := text("push.content", *p.Content, 1, MaxContent); err != nil {
			return err
		}
		c.Body = clean(*p.Content)
	case m.Kind == push.KindCallCancel:
		c.Body = push.DefaultCancelContent
	default:
		return push.Invalid("push.content", "required for %s", m.Kind)
	}
	if p.Title != nil {
		if err := text("push.title", *p.Title, 0, MaxTitle); err != nil {
			return err
		}
		c.Title = clean(*p.Title)
	}
	if len(p.Translations) > MaxTranslations {
		return push.Invalid("push.translations", "must hold at most %d languages", MaxTranslations)
	}
	if len(p.Translations) > 0 {
		tags := make([]string, 0, len(p.Translations))
		for tag := range p.Translations {
			tags = append(tags, tag)
		}
		sort.Strings(tags)
		seen := make(map[string]string, len(tags))
		c.Translations = make(map[string]string, len(tags))
		for _, tag := range tags {
			field := "push.translations." + tag
			if !languageTag(tag) {
				return push.Invalid(field, "must be a language tag such as en, zh-CN or pt-BR")
			}
			norm := strings.ToLower(strings.ReplaceAll(tag, "_", "-"))
			if other, dup := seen[norm]; dup {
				return push.Invalid(field, "names the same language as %s", other)
			}
			seen[norm] = tag
			if err := text(field, p.Translations[tag], 1, MaxContent); err != nil {
				return err
			}
			c.Translations[tag] = clean(p.Translations[tag])
		}
	}
	if p.Payload != nil {
		b, err := json.Marshal(p.Payload)
		if err != nil || len(b) > MaxPayloadBytes {
			return push.Invalid("push.payload", "must take at most %d bytes as JSON", MaxPayloadBytes)
		}
		c.Payload = make(map[string]string, len(p.Payload))
		for k, v := range p.Payload {
			c.Payload[clean(k)] = clean(v)
		}
	}
	if p.NicknamePrefix != nil {
		c.NicknamePrefix = *p.NicknamePrefix
	}
	if p.HideContent != nil {
		c.HideContent = *p.HideContent
	}
	if p.Placeholder != nil {
		if err := text("push.placeholder", *p.Placeholder, 0, MaxPlaceholder); err != nil {
			return err
		}
		if *p.Placeholder != "" {
			c.Placeholder = clean(*p.Placeholder)
		}
	}
	if p.Badge != nil {
		c.Badge = *p.Badge
	}
	if p.Sound != nil {
		if err := text("push.sound", *p.Sound, 0, MaxSound); err != nil {
			return err
		}
		c.Sound = clean(*p.Sound)
	}
	if p.ResourceID != nil {
		if err := text("push.resourceId", *p.ResourceID, 0, MaxResourceID); err != nil {
			return err
		}
		c.ResourceID = clean(*p.ResourceID)
	}
	return nil
}

// parseCall validates the "call" member, with defaults.
func parseCall(ci *CallInput) (*push.Call, error) {
	c := &push.Call{Media: push.MediaAudio, Timeout: push.DefaultCallTimeout}
	switch {
	case ci.CallID == nil:
		return nil, push.Invalid("call.callId", "required")
	case !push.ValidID(*ci.CallID):
		return nil, push.Invalid("call.callId", idPattern)
	}
	c.ID = *ci.CallID
	if ci.Media != nil {
		media, ok := push.ParseCallMedia(*ci.Media)
		if !ok {
			return nil, push.Invalid("call.media", "must be audio or video")
		}
		c.Media = media
	}
	if ci.TimeoutSeconds != nil {
		n := *ci.TimeoutSeconds
		if n < 1 || time.Duration(n)*time.Second > push.MaxCallTimeout {
			return nil, push.Invalid("call.timeoutSeconds", "must be 1 to %d", int64(push.MaxCallTimeout/time.Second))
		}
		c.Timeout = time.Duration(n) * time.Second
	}
	return c, nil
}

// text checks that s has between lo and hi code points.
func text(field, s string, lo, hi int) error {
	n := utf8.RuneCountInString(s)
	if n < lo || n > hi {
		if lo == 0 {
			return push.Invalid(field, "must be at most %d characters", hi)
		}
		return push.Invalid(field, "must be %d to %d characters", lo, hi)
	}
	return nil
}

// clean replaces the noncharacters U+FFFE and U+FFFF, which SQS refuses in
// a message body, by U+FFFD.
func clean(s string) string {
	if !strings.ContainsRune(s, 0xfffe) && !strings.ContainsRune(s, 0xffff) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r == 0xfffe || r == 0xffff {
			return utf8.RuneError
		}
		return r
	}, s)
}

// languageTag reports whether s looks like a BCP 47 language tag: a primary
// language subtag of 2 to 8 letters, then subtags of 1 to 8 letters or
// digits separated by "-" (or "_", as Android spells locales).
func languageTag(s string) bool {
	parts := strings.FieldsFunc(s, func(r rune) bool { return r == '-' || r == '_' })
	if len(parts) == 0 || strings.Count(s, "-")+strings.Count(s, "_") != len(parts)-1 {
		return false
	}
	for i, p := range parts {
		if len(p) == 0 || len(p) > maxLanguageSubtag || (i == 0 && len(p) < 2) {
			return false
		}
		for j := 0; j < len(p); j++ {
			c := p[j]
			letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
			if !letter && (i == 0 || c < '0' || c > '9') {
				return false
			}
		}
	}
	return true
}
