package honor

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/offline-push/offline-push/shared/push"
)

// Limits of the send API (VENDORS.md §5, §11.3).
const (
	// MaxTokens is how many tokens one request carries. Honor documents a
	// token array without a limit we could find; its API descends from
	// Huawei's (the same members, camelCased), whose limit is 1000, so
	// that is assumed. The emulator enforces the same.
	MaxTokens = 1000
	// MaxMessageBytes is assumed from Huawei's 4096-byte message limit, as
	// the text budget (policy.BudgetFor) assumes it; the token list is left
	// out of the measure, since it never reaches a phone.
	MaxMessageBytes = 4096
	// MaxTTL is the longest android.ttl Honor keeps a push (15 days,
	// "1296000s", from the field's documentation).
	MaxTTL = 1296000 * time.Second
)

// The request body of POST /api/v1/{appId}/sendMessage, with Honor's
// camelCase names (unlike Huawei's snake_case). Only what this service
// sends is declared.
type message struct {
	// Data is the app's payload: a JSON object of strings, which a
	// notification message hands to the app when the user taps it.
	Data    string        `json:"data,omitempty"`
	Android androidConfig `json:"android"`
	Token   []string      `json:"token,omitempty"`
}

type androidConfig struct {
	TTL          string              `json:"ttl"`
	Notification androidNotification `json:"notification"`
}

type androidNotification struct {
	Title       string      `json:"title"`
	Body        string      `json:"body"`
	ClickAction clickAction `json:"clickAction"`
	Importance  string      `json:"importance"`
	Tag         string      `json:"tag,omitempty"`
	NotifyID    int32       `json:"notifyId,omitempty"`
	Badge       *badge      `json:"badge,omitempty"`
}

// clickAction type 3 opens the app; Honor requires a click action on
// every Android notification.
type clickAction struct {
	Type int `json:"type"`
}

type badge struct {
	AddNum     int    `json:"addNum"`
	BadgeClass string `json:"badgeClass"`
}

// errTooLarge means the message cannot fit MaxMessageBytes even with its
// texts cut to an ellipsis: the payload alone is too big.
var errTooLarge = errors.New("honor message larger than 4096 bytes")

// group is the targets of a job that share one notification: one text and
// one collapse tag and notify id. One Honor request carries one
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
//   - importance: the resource's, else the credential's (default NORMAL,
//     service and communication), for messages and calls alike: Honor has
//     no call class (VENDORS.md §10);
//   - no priority field: Honor's API has none (no urgency, unlike Huawei);
//   - ttl: SendJob.TTL in whole seconds, rounded up, from 1 s to MaxTTL.
//     Honor documents no minimum above a call's time left, so invites get
//     their time left (rule 25), and callExpiresAt besides;
//   - tag and notifyId: the collapse id and notify id (Envelope.Collapse),
//     so a newer notification replaces an older one on the phone;
//   - badge addNum 1 when the envelope asks for a badge and the
//     credentials name the launcher activity Honor requires (rule 23);
//   - no sound: Honor plays the system sound and offers no choice;
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
	res := c.Resources[env.ResourceID]
	data, err := json.Marshal(appData(env))
	if err != nil {
		return message{}, fmt.Errorf("encode data: %w", err)
	}
	body := text.Body
	if env.Kind == push.KindCallCancel && body == "" {
		body = push.DefaultCancelContent
	}
	m := message{
		Data: string(data),
		Android: androidConfig{
			TTL: ttl(job.TTL),
			Notification: androidNotification{
				Title:       text.Title,
				Body:        body,
				ClickAction: clickAction{Type: 3},
				Importance:  firstOf(res.Importance, c.Importance),
				Tag:         g.tag,
				NotifyID:    g.notifyID,
			},
		},
	}
	if env.Badge && c.BadgeClass != "" {
		m.Android.Notification.Badge = &badge{AddNum: 1, BadgeClass: c.BadgeClass}
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

// ttl renders d as Honor's "<seconds>s", rounded up, within 1 s to MaxTTL.
func ttl(d time.Duration) string {
	s := int64(math.Ceil(d.Seconds()))
	s = max(1, min(s, int64(MaxTTL/time.Second)))
	return strconv.FormatInt(s, 10) + "s"
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
	b, err := json.Marshal(m)
	if err != nil {
		return math.MaxInt // strings and numbers only; cannot happen
	}
	return len(b)
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
