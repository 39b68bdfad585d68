package apns

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/sideshow/apns2"

	"github.com/offline-push/offline-push/shared/push"
)

// Payload limits in bytes (VENDORS.md §1).
const (
	maxPayload     = 4096
	maxVoIPPayload = 5120
	maxCollapseID  = 64
)

// Priorities (VENDORS.md §1): 10 delivers at once and must produce an alert,
// sound or badge, which every push here does; 5 lets the device save power.
const (
	priorityNow = 10
)

// ellipsis ends a body that had to be shortened (POLICY.md rule 22).
const ellipsis = "…"

// errTooLarge means a payload does not fit even with title and body cut
// to nothing: the custom payload alone is too big.
var errTooLarge = errors.New("payload too large")

// errNotACall means a VoIP token was asked to carry a chat message. iOS
// kills an app that does not report a VoIP push to CallKit as a call, so
// such a push must never go out.
var errNotACall = errors.New("voip push for a message that is not a call")

// outgoing is one push ready to send.
type outgoing struct {
	n *apns2.Notification
	// expirationNow asks for apns-expiration 0 (store nothing), which
	// apns2 cannot express.
	expirationNow bool
}

// aps is Apple's dictionary in the payload.
type aps struct {
	Alert          *alert `json:"alert,omitempty"`
	Badge          *int   `json:"badge,omitempty"`
	Sound          string `json:"sound,omitempty"`
	ThreadID       string `json:"thread-id,omitempty"`
	Category       string `json:"category,omitempty"`
	MutableContent int    `json:"mutable-content,omitempty"`
}

type alert struct {
	Title string `json:"title,omitempty"`
	Body  string `json:"body"`
}

// build renders the push of target t of job (API.md §6, POLICY.md §6–7):
//
//   - messages, and call pushes to an alert token: push type alert, topic
//     the bundle id, an alert with title and body, the badge, sound,
//     thread-id (the conversation, or the resource's), category and
//     mutable-content (so a notification service extension may rewrite it);
//   - call invites to a VoIP token: push type voip, topic <bundle>.voip, no
//     aps; the app reads type, callId, media, callExpiresAt, title and body
//     and reports the call to CallKit;
//   - call cancels to a VoIP token: the same with "type": "call_cancel",
//     so the app ends the call (POLICY.md rule 27). Cancels to an alert
//     token are alerts with the cancel's text ("Missed call" by default)
//     and the invite's collapse id, so they replace the ringing one.
//
// Custom keys: the message's payload first, then ours, which win a clash:
// type, messageId, senderId, conversationType, conversationId, and for calls
// callId, media and (invites) callExpiresAt in Unix milliseconds.
//
// Headers: apns-priority 10 for every push. Each one carries a visible alert
// (or rings), and priority 5 lets iOS hold a chat notification back to save
// power, which an IM user reads as a lost message (VENDORS.md §10);
// apns-expiration now + TTL, or 0 when the caller asked for
// now-or-never. A VoIP invite gets the call's expiry too, rather than 0: a
// phone that is between networks for a few seconds still rings while the
// call lasts, and never after (the app also checks callExpiresAt).
// apns-collapse-id is the target's or envelope's collapse id, at most 64
// bytes; apns-id is derived from app, message, user, device and token
// kind, so a retried push carries the same id.
func build(job *push.SendJob, t *push.Target, p *parsed, now time.Time) (*outgoing, error) {
	env := job.Envelope
	if t.Text < 0 || t.Text >= len(env.Texts) {
		return nil, fmt.Errorf("target names text %d of %d", t.Text, len(env.Texts))
	}
	text := env.Texts[t.Text]
	voip := t.TokenKind() == push.TokenVoIP
	isCall := env.Kind == push.KindCallInvite || env.Kind == push.KindCallCancel
	if voip && !isCall {
		return nil, errNotACall
	}
	res := p.creds.Resources[env.ResourceID]

	custom := make(map[string]any, len(env.Payload)+8)
	for k, v := range env.Payload {
		custom[k] = v
	}
	delete(custom, "aps") // Apple's dictionary is ours to write
	custom["type"] = string(env.Kind)
	custom["messageId"] = env.MessageID
	custom["senderId"] = env.SenderID
	custom["conversationType"] = string(env.ConversationType)
	if env.ConversationID != "" {
		custom["conversationId"] = env.ConversationID
	}
	if isCall {
		custom["callId"] = env.CallID
		if env.Media != "" {
			custom["media"] = string(env.Media)
		}
		if env.Kind == push.KindCallInvite {
			custom["callExpiresAt"] = env.ExpiresAt
		}
	}

	n := &apns2.Notification{
		DeviceToken: t.Token,
		Topic:       p.creds.BundleID,
		PushType:    apns2.PushTypeAlert,
		Priority:    priorityNow,
		ApnsID:      apnsID(env.App, env.MessageID, t),
	}
	out := &outgoing{n: n, expirationNow: env.NowOrNever}
	if !env.NowOrNever {
		n.Expiration = now.Add(job.TTL)
	}
	collapse, _ := env.Collapse(t)
	if len(collapse) > maxCollapseID {
		collapse, _ = push.CollapseFor(push.APNs, collapse)
	}
	n.CollapseID = collapse

	title, body := text.Title, text.Body
	limit := maxPayload
	var render func(title, body string) ([]byte, error)
	if voip {
		n.PushType, n.Topic, limit = apns2.PushTypeVOIP, p.creds.BundleID+".voip", maxVoIPPayload
		if env.Kind == push.KindCallCancel {
			title, body = "", ""
		}
		render = func(title, body string) ([]byte, error) {
			m := cloneMap(custom)
			if title != "" {
				m["title"] = title
			}
			if body != "" {
				m["body"] = body
			}
			return encode(m)
		}
	} else {
		if env.Kind == push.KindCallCancel && body == "" {
			body = push.DefaultCancelContent
		}
		a := aps{
			Sound:          firstOf(env.Sound, res.Sound, "default"),
			ThreadID:       firstOf(res.ThreadID, threadOf(env)),
			Category:       res.Category,
			MutableContent: 1,
		}
		if badge, ok := job.Badges[t.UserID]; env.Badge && ok {
			a.Badge = &badge
		}
		render = func(title, body string) ([]byte, error) {
			m := cloneMap(custom)
			withAlert := a
			withAlert.Alert = &alert{Title: title, Body: body}
			m["aps"] = withAlert
			return encode(m)
		}
	}
	payload, err := fit(render, title, body, limit)
	if err != nil {
		return nil, err
	}
	n.Payload = payload
	return out, nil
}

// fit renders title and body and, while the payload exceeds limit bytes,
// shortens the body (then the title) on a character boundary, ending it in
// an ellipsis. Ingest already fitted the texts to the vendor's budget, so
// this only bites when the custom keys ran over their reserve.
func fit(render func(title, body string) ([]byte, error), title, body string, limit int) ([]byte, error) {
	for {
		b, err := render(title, body)
		if err != nil {
			return nil, err
		}
		excess := len(b) - limit
		if excess <= 0 {
			return b, nil
		}
		switch {
		case body != "":
			body = shorten(body, excess)
		case title != "":
			title = shorten(title, excess)
		default:
			return nil, fmt.Errorf("%w: %d bytes over %d without any text", errTooLarge, excess, limit)
		}
	}
}

// shorten cuts whole characters off the end of s until its JSON encoding
// is at least excess bytes shorter, counting the ellipsis it then appends;
// it returns "" when nothing of s would be left beside the ellipsis.
func shorten(s string, excess int) string {
	need := excess + jsonLen(ellipsis)
	if trimmed := trimEllipsis(s); trimmed != s {
		s, need = trimmed, excess // the old ellipsis makes room for the new
	}
	cut := len(s)
	for cut > 0 && need > 0 {
		r, size := utf8.DecodeLastRuneInString(s[:cut])
		need -= jsonLen(string(r))
		cut -= size
	}
	if cut == 0 {
		return ""
	}
	return s[:cut] + ellipsis
}

func trimEllipsis(s string) string {
	if len(s) >= len(ellipsis) && s[len(s)-len(ellipsis):] == ellipsis {
		return s[:len(s)-len(ellipsis)]
	}
	return s
}

// jsonLen is the length of s encoded as JSON string contents.
func jsonLen(s string) int {
	b, _ := encode(s) // a string always encodes
	return len(b) - 2
}

// encode marshals v as JSON without HTML escaping: APNs reads plain UTF-8,
// and "<" escaped as \u003c would cost six bytes of the payload limit.
func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	e := json.NewEncoder(&buf)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func cloneMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m)+2)
	for k, v := range m {
		out[k] = v
	}
	return out
}

func firstOf(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// threadOf groups a conversation's notifications on the lock screen: its
// type and id, and for a peer chat without an id the sender.
func threadOf(env *push.Envelope) string {
	id := env.ConversationID
	if id == "" {
		id = env.SenderID
	}
	return string(env.ConversationType) + ":" + id
}

// apnsID derives the push's apns-id from what identifies it, as a UUID of
// RFC 9562 version 8 (custom) built from a SHA-256: the same push to the
// same device always gets the same id, so a retry can be recognised in
// Apple's delivery logs and ours.
func apnsID(app, messageID string, t *push.Target) string {
	h := sha256.New()
	for _, part := range []string{app, messageID, t.UserID, t.DeviceID, string(t.TokenKind())} {
		h.Write([]byte(strconv.Itoa(len(part))))
		h.Write([]byte{':'})
		h.Write([]byte(part))
	}
	var b [16]byte
	copy(b[:], h.Sum(nil))
	b[6] = b[6]&0x0f | 0x80
	b[8] = b[8]&0x3f | 0x80
	x := hex.EncodeToString(b[:])
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}
