package fcm

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"firebase.google.com/go/v4/messaging"

	"github.com/offline-push/offline-push/shared/push"
)

// Keys of the data map the app reads, besides the caller's push.payload.
// Ours win over payload keys of the same name.
const (
	keyMessageID        = "messageId"
	keyType             = "type" // message, call_invite or call_cancel
	keySenderID         = "senderId"
	keyConversationType = "conversationType"
	keyConversationID   = "conversationId" // absent for a peer message without one: the peer is senderId
	keyCallID           = "callId"
	keyMedia            = "media"
	keyCallExpiresAt    = "callExpiresAt" // invites: Unix ms after which the app must not ring (POLICY.md rule 25)
	// On call pushes to Android, which are data messages, the app draws the
	// notification itself from these.
	keyTitle     = "title"
	keyBody      = "body"
	keyTag       = "tag"       // the collapse id: the app tags its call notification with it
	keyChannelID = "channelId" // callChannelId of the credentials, when set
)

// MaxPayloadBytes is FCM's limit on a message (VENDORS.md §3). The sender
// measures it conservatively: the whole message JSON without the token,
// which is more than FCM counts (data keys and values plus the
// notification), so a message that passes here passes at FCM.
const MaxPayloadBytes = 4096

// maxTTL is the longest Android TTL FCM accepts: 4 weeks.
const maxTTL = 28 * 24 * time.Hour

// ellipsis ends a shortened text (POLICY.md rule 22).
const ellipsis = "…"

// reservedKey reports whether FCM refuses k as a data key: "from",
// "message_type", and anything starting with "google" or "gcm".
func reservedKey(k string) bool {
	return k == "" || k == "from" || k == "message_type" || strings.HasPrefix(k, "google") || strings.HasPrefix(k, "gcm")
}

// isCall reports whether kind is a call push.
func isCall(kind push.MessageKind) bool {
	return kind == push.KindCallInvite || kind == push.KindCallCancel
}

// shared is what every target of one job has in common.
type shared struct {
	env      *push.Envelope
	creds    *credentials
	data     map[string]string // without title and body
	priority string            // android: "high" or "normal"
	ttl      time.Duration
	expiry   string // apns-expiration
	res      resource
	sound    string
	fitted   map[fitKey]fitted
}

// newShared derives the per-job parts of the messages, and returns the
// payload keys it had to drop because FCM reserves them.
func newShared(job *push.SendJob, creds *credentials, now time.Time) (*shared, []string) {
	env := job.Envelope
	sh := &shared{env: env, creds: creds, data: make(map[string]string, len(env.Payload)+8)}
	var dropped []string
	for k, v := range env.Payload {
		if reservedKey(k) {
			dropped = append(dropped, k)
			continue
		}
		sh.data[k] = v
	}
	sh.data[keyMessageID] = env.MessageID
	sh.data[keyType] = string(env.Kind)
	sh.data[keySenderID] = env.SenderID
	sh.data[keyConversationType] = string(env.ConversationType)
	if env.ConversationID != "" {
		sh.data[keyConversationID] = env.ConversationID
	}
	if isCall(env.Kind) {
		sh.data[keyCallID] = env.CallID
		if env.Media != "" {
			sh.data[keyMedia] = string(env.Media)
		}
		if creds.CallChannelID != "" {
			sh.data[keyChannelID] = creds.CallChannelID
		}
	}
	if env.Kind == push.KindCallInvite {
		sh.data[keyCallExpiresAt] = strconv.FormatInt(env.ExpiresAt, 10)
	}

	// Every push we send is a visible chat notification or a ringing call,
	// so it goes high: Android defers normal-priority messages in Doze,
	// which an IM user reads as a lost message (VENDORS.md §10).
	sh.priority = "high"
	// Whole seconds, rounded down, so the vendor never keeps a push
	// past its expiry.
	sh.ttl = min(max(job.TTL, 0), maxTTL).Truncate(time.Second)
	sh.expiry = strconv.FormatInt(now.Add(sh.ttl).Unix(), 10)
	if env.NowOrNever {
		sh.ttl, sh.expiry = 0, "0"
	}
	sh.res = creds.Resources[env.ResourceID]
	sh.sound = env.Sound
	if sh.sound == "" {
		sh.sound = sh.res.Sound
	}
	return sh, dropped
}

// message builds the message of target t with the given texts, without its
// token.
//
// Android devices get chat messages as notification messages
// (android.notification, shown by the system even when the app is not
// running), tagged with the collapse id, never collapse_key, of which an
// offline device keeps only four (envelope.go, CollapseFor). Call invites
// and cancels go to Android as high-priority data messages: the app is
// woken to show a full-screen ringing notification, or to stop ringing and
// post "missed call", which a system-drawn notification could not do.
//
// iOS devices registered through FCM get an apns block: an alert with the
// texts, the absolute badge, sound and thread id, and the APNs headers
// (priority, expiration, collapse id, push type). FCM copies the data map
// into the APNs payload as custom keys.
func (sh *shared) message(t *push.Target, title, body string, badge *int) *messaging.Message {
	env := sh.env
	collapse, _ := env.Collapse(t)
	m := &messaging.Message{Data: sh.data}
	if t.Platform == push.PlatformIOS {
		prio := "5"
		if sh.priority == "high" {
			prio = "10"
		}
		headers := map[string]string{
			"apns-priority":   prio,
			"apns-expiration": sh.expiry,
			"apns-push-type":  "alert",
		}
		if collapse != "" {
			headers["apns-collapse-id"] = collapse
		}
		sound := sh.sound
		if sound == "" {
			sound = "default"
		}
		m.APNS = &messaging.APNSConfig{Headers: headers, Payload: &messaging.APNSPayload{Aps: &messaging.Aps{
			Alert:    &messaging.ApsAlert{Title: title, Body: body},
			Badge:    badge,
			Sound:    sound,
			ThreadID: threadID(env),
		}}}
		return m
	}
	ttl := sh.ttl
	m.Android = &messaging.AndroidConfig{Priority: sh.priority, TTL: &ttl}
	if isCall(env.Kind) {
		data := make(map[string]string, len(sh.data)+3)
		for k, v := range sh.data {
			data[k] = v
		}
		data[keyTitle], data[keyBody] = title, body
		if collapse != "" {
			data[keyTag] = collapse
		}
		m.Data = data
		return m
	}
	channel := sh.res.ChannelID
	if channel == "" {
		channel = sh.creds.ChannelID
	}
	n := &messaging.AndroidNotification{
		Title:     title,
		Body:      body,
		Tag:       collapse,
		ChannelID: channel,
		Sound:     sh.sound,
		Icon:      sh.res.Icon,
		Color:     sh.res.Color,
	}
	if env.Badge {
		// Android launchers add notification_count to the app's badge:
		// an increment of one per message (POLICY.md rule 23).
		one := 1
		n.NotificationCount = &one
	}
	m.Android.Notification = n
	return m
}

// threadID groups an iOS device's notifications by conversation.
func threadID(env *push.Envelope) string {
	id := env.ConversationID
	if id == "" {
		id = env.SenderID
	}
	return string(env.ConversationType) + ":" + id
}

// size is the conservative payload measure of MaxPayloadBytes.
func size(m *messaging.Message) int {
	b, err := json.Marshal(m)
	if err != nil {
		return MaxPayloadBytes + 1
	}
	return len(b)
}

// fitKey is what, besides the texts, makes the size of a target's
// message: targets alike in these share one fitting.
type fitKey struct {
	text     int
	ios      bool
	collapse string
	badge    int // -1: none
}

// fitted are the texts of a fitKey after fitting; ok is false when even
// empty texts do not fit.
type fitted struct {
	title, body string
	ok          bool
}

// fit returns the message of target t, with its texts shortened on a
// character boundary, body first, if the whole would exceed
// MaxPayloadBytes; ok is false when even empty texts do not fit. The
// fitting is measured once per fitKey of the job, not once per target.
func (sh *shared) fit(t *push.Target, title, body string, badge *int) (*messaging.Message, bool) {
	collapse, _ := sh.env.Collapse(t)
	k := fitKey{text: t.Text, ios: t.Platform == push.PlatformIOS, collapse: collapse, badge: -1}
	if badge != nil {
		k.badge = *badge
	}
	f, seen := sh.fitted[k]
	if !seen {
		f = sh.fitTexts(t, title, body, badge)
		if sh.fitted == nil {
			sh.fitted = make(map[fitKey]fitted)
		}
		sh.fitted[k] = f
	}
	if !f.ok {
		return nil, false
	}
	return sh.message(t, f.title, f.body, badge), true
}

func (sh *shared) fitTexts(t *push.Target, title, body string, badge *int) fitted {
	if size(sh.message(t, title, body, badge)) <= MaxPayloadBytes {
		return fitted{title, body, true}
	}
	if b, ok := shorten(body, func(b string) bool { return size(sh.message(t, title, b, badge)) <= MaxPayloadBytes }); ok {
		return fitted{title, b, true}
	}
	if ti, ok := shorten(title, func(ti string) bool { return size(sh.message(t, ti, "", badge)) <= MaxPayloadBytes }); ok {
		return fitted{ti, "", true}
	}
	return fitted{}
}

// shorten returns the longest prefix of s, cut on a rune boundary and
// ended with an ellipsis, that fits; "" when only the empty text fits; and
// false when nothing does.
func shorten(s string, fits func(string) bool) (string, bool) {
	runes := utf8.RuneCountInString(s)
	cut := func(n int) string {
		if n >= runes {
			return s
		}
		if n == 0 {
			return ""
		}
		i := 0
		for range n {
			_, w := utf8.DecodeRuneInString(s[i:])
			i += w
		}
		return s[:i] + ellipsis
	}
	// The longest n whose cut fits; the cut grows with n.
	lo, hi := -1, runes
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if fits(cut(mid)) {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	if lo < 0 {
		return "", false
	}
	return cut(lo), true
}
