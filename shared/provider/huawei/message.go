package huawei

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/offline-push/offline-push/shared/push"
)

// Limits of the v1 send API (VENDORS.md §4).
const (
	// MaxTokens is how many tokens one request may carry (80300010 outside
	// 1–1000).
	MaxTokens = 1000
	// MaxMessageBytes is Huawei's limit on the message body (80300008). It
	// counts the message as the app receives it, so the token list, which
	// never reaches a phone, is left out of the measure.
	MaxMessageBytes = 4096
	// MaxTTL is the longest android.ttl Huawei keeps a push (15 days).
	MaxTTL = 1296000 * time.Second
)

// The request body of POST /v1/{appId}/messages:send, with Huawei's
// snake_case names. Only what this service sends is declared.
type sendRequest struct {
	ValidateOnly bool    `json:"validate_only"`
	Message      message `json:"message"`
}

type message struct {
	// Data is the app's payload: a JSON object of strings, which a
	// notification message hands to the app when the user taps it.
	Data    string        `json:"data,omitempty"`
	Android androidConfig `json:"android"`
	Token   []string      `json:"token,omitempty"`
}

type androidConfig struct {
	Urgency      string              `json:"urgency"`
	Category     string              `json:"category"`
	TTL          string              `json:"ttl"`
	Notification androidNotification `json:"notification"`
}

type androidNotification struct {
	Title        string      `json:"title"`
	Body         string      `json:"body"`
	ClickAction  clickAction `json:"click_action"`
	ChannelID    string      `json:"channel_id,omitempty"`
	Sound        string      `json:"sound,omitempty"`
	DefaultSound bool        `json:"default_sound"`
	Importance   string      `json:"importance"`
	Tag          string      `json:"tag,omitempty"`
	NotifyID     int32       `json:"notify_id,omitempty"`
	Badge        *badge      `json:"badge,omitempty"`
}

// clickAction type 3 opens the app; Huawei requires a click action on
// every Android notification.
type clickAction struct {
	Type int `json:"type"`
}

type badge struct {
	AddNum int    `json:"add_num"`
	Class  string `json:"class"`
}

// errTooLarge means the message cannot fit MaxMessageBytes even with its
// texts cut to an ellipsis: the payload alone is too big.
var errTooLarge = errors.New("huawei message larger than 4096 bytes")

// group is the targets of a job that share one notification: one text and
// one collapse tag and notify id. One Huawei request carries one
// notification to up to MaxTokens of them.
type group struct {
	text     int
	tag      string
	notifyID int32
	idx      []int // indexes into job.Targets, in order
}

// groups splits the targets of job by what their notification says.
func groups(job *push.SendJob) []*group {
	type key struct {
		text     int
		tag      string
		notifyID int32
	}
	var out []*group
	byKey := map[key]*group{}
	for i := range job.Targets {
		t := &job.Targets[i]
		tag, n := job.Envelope.Collapse(t)
		k := key{t.Text, tag, n}
		g, ok := byKey[k]
		if !ok {
			g = &group{text: t.Text, tag: tag, notifyID: n}
			byKey[k] = g
			out = append(out, g)
		}
		g.idx = append(g.idx, i)
	}
	return out
}

// build renders the notification of group g (API.md §6, POLICY.md §6–7):
//
//   - android.category: the credential's Category for messages, its
//     CallCategory for call invites and cancels, either replaced by the
//     selected resource's (VENDORS.md §10);
//   - urgency HIGH for high-priority envelopes (calls, forced pushes), else
//     NORMAL;
//   - ttl: SendJob.TTL in whole seconds, rounded up, from 1 s to MaxTTL.
//     Huawei documents no minimum above a call's time left, so invites get
//     their time left too (rule 25), and callExpiresAt besides, since the
//     rounding may add up to a second. A now-or-never push gets the few
//     seconds its grace leaves: Huawei has no "do not store" switch;
//   - tag and notify_id: the collapse id and notify id (Envelope.Collapse),
//     so a newer notification replaces an older one on the phone;
//   - badge add_num 1 when the envelope asks for a badge and the
//     credentials name the launcher activity Huawei requires (rule 23);
//   - sound: the message's, else the resource's, as a file of the app's
//     res/raw (Huawei's "/raw/name"); "default" or none plays the system
//     sound;
//   - data: the message's payload, then our keys, which win a clash: type,
//     messageId, senderId, conversationType, conversationId, and for calls
//     callId, media and (invites) callExpiresAt in Unix milliseconds.
//
// Title and body arrive fitted to the vendor's budget; if the payload still
// pushes the message over MaxMessageBytes, the body (then the title) is
// cut on a character boundary and ends in an ellipsis.
func build(job *push.SendJob, c *Credentials, g *group) (message, error) {
	env := job.Envelope
	if g.text < 0 || g.text >= len(env.Texts) {
		return message{}, fmt.Errorf("target names text %d of %d", g.text, len(env.Texts))
	}
	text := env.Texts[g.text]
	isCall := env.Kind == push.KindCallInvite || env.Kind == push.KindCallCancel
	res := c.Resources[env.ResourceID]

	data, err := json.Marshal(appData(env))
	if err != nil {
		return message{}, fmt.Errorf("encode data: %w", err)
	}
	category := c.Category
	if isCall {
		category = c.CallCategory
	}
	if res.Category != "" {
		category = res.Category
	}
	urgency := "NORMAL"
	if env.Priority == push.PriorityHigh {
		urgency = "HIGH"
	}
	body := text.Body
	if env.Kind == push.KindCallCancel && body == "" {
		body = push.DefaultCancelContent
	}
	m := message{
		Data: string(data),
		Android: androidConfig{
			Urgency:  urgency,
			Category: category,
			TTL:      ttl(job.TTL),
			Notification: androidNotification{
				Title:       text.Title,
				Body:        body,
				ClickAction: clickAction{Type: 3},
				ChannelID:   res.ChannelID,
				Importance:  firstOf(res.Importance, "NORMAL"),
				Tag:         g.tag,
				NotifyID:    g.notifyID,
			},
		},
	}
	n := &m.Android.Notification
	n.Sound, n.DefaultSound = sound(firstOf(env.Sound, res.Sound))
	if env.Badge && c.BadgeClass != "" {
		n.Badge = &badge{AddNum: 1, Class: c.BadgeClass}
	}
	if err := fit(&m); err != nil {
		return message{}, err
	}
	return m, nil
}

// appData is what the app receives with the notification.
func appData(env *push.Envelope) map[string]string {
	d := make(map[string]string, len(env.Payload)+8)
	for k, v := range env.Payload {
		d[k] = v
	}
	d["type"] = string(env.Kind)
	d["messageId"] = env.MessageID
	d["senderId"] = env.SenderID
	d["conversationType"] = string(env.ConversationType)
	if env.ConversationID != "" {
		d["conversationId"] = env.ConversationID
	}
	if env.Kind == push.KindCallInvite || env.Kind == push.KindCallCancel {
		d["callId"] = env.CallID
		if env.Media != "" {
			d["media"] = string(env.Media)
		}
		if env.Kind == push.KindCallInvite {
			d["callExpiresAt"] = strconv.FormatInt(env.ExpiresAt, 10)
		}
	}
	return d
}

// ttl renders d as Huawei's "<seconds>s", rounded up, within 1 s to MaxTTL.
func ttl(d time.Duration) string {
	s := int64(math.Ceil(d.Seconds()))
	s = max(1, min(s, int64(MaxTTL/time.Second)))
	return strconv.FormatInt(s, 10) + "s"
}

// sound maps a sound name to Huawei's fields: the system sound for "" and
// "default", else the file's resource path under res/raw, without its
// extension, as Android names raw resources.
func sound(name string) (file string, useDefault bool) {
	if name == "" || name == "default" {
		return "", true
	}
	if strings.HasPrefix(name, "/raw/") {
		return name, false
	}
	base := path.Base(name)
	return "/raw/" + strings.TrimSuffix(base, path.Ext(base)), false
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// size is the encoded size of m without its tokens, the measure of
// MaxMessageBytes.
func size(m message) int {
	m.Token = nil
	b, err := json.Marshal(sendRequest{Message: m})
	if err != nil {
		return math.MaxInt // strings and numbers only; cannot happen
	}
	// The limit is on the message; the envelope around it is not counted.
	return len(b) - len(`{"validate_only":false,"message":}`)
}

// fit shortens m's body, then its title, until m fits MaxMessageBytes.
func fit(m *message) error {
	n := &m.Android.Notification
	for _, field := range []*string{&n.Body, &n.Title} {
		if size(*m) <= MaxMessageBytes {
			return nil
		}
		full := *field
		if full == "" {
			continue
		}
		runes := utf8.RuneCountInString(full)
		// The largest prefix of k runes, plus an ellipsis, that fits.
		lo, hi := -1, runes-1
		for lo < hi {
			mid := (lo + hi + 1) / 2
			*field = cut(full, mid)
			if size(*m) <= MaxMessageBytes {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		if lo >= 0 {
			*field = cut(full, lo)
			return nil
		}
		*field = cut(full, 0)
	}
	if size(*m) <= MaxMessageBytes {
		return nil
	}
	return errTooLarge
}

// cut returns the first k runes of s followed by an ellipsis. It never
// splits a character, and it drops what a cut would leave dangling: a
// zero-width joiner or variation selector at the end, or half of a flag.
func cut(s string, k int) string {
	i := 0
	for n := 0; n < k && i < len(s); n++ {
		_, w := utf8.DecodeRuneInString(s[i:])
		i += w
	}
	out := s[:i]
	for out != "" {
		r, w := utf8.DecodeLastRuneInString(out)
		if r == '\u200d' || unicode.Is(unicode.Variation_Selector, r) {
			out = out[:len(out)-w]
			continue
		}
		break
	}
	// Regional indicators pair into flags; an odd run ends with half a flag.
	ri := 0
	for j := len(out); j > 0; {
		r, w := utf8.DecodeLastRuneInString(out[:j])
		if r < 0x1F1E6 || r > 0x1F1FF {
			break
		}
		ri++
		j -= w
	}
	if ri%2 == 1 {
		_, w := utf8.DecodeLastRuneInString(out)
		out = out[:len(out)-w]
	}
	return out + "…"
}
