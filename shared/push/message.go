package push

import "time"

// MessageKind says what a message is for: chat text, or one of the two call
// signals (POLICY.md §7).
type MessageKind string

// Message kinds, spelled as on the wire (API.md §6).
const (
	KindMessage    MessageKind = "message"
	KindCallInvite MessageKind = "call_invite"
	KindCallCancel MessageKind = "call_cancel"
)

// ParseMessageKind returns the kind named s, and false when s names none.
func ParseMessageKind(s string) (MessageKind, bool) {
	switch k := MessageKind(s); k {
	case KindMessage, KindCallInvite, KindCallCancel:
		return k, true
	}
	return "", false
}

// CallMedia is what a call carries, so the app can show the right screen.
type CallMedia string

// Call media.
const (
	MediaAudio CallMedia = "audio"
	MediaVideo CallMedia = "video"
)

// ParseCallMedia returns the media named s, and false when s names none.
func ParseCallMedia(s string) (CallMedia, bool) {
	switch c := CallMedia(s); c {
	case MediaAudio, MediaVideo:
		return c, true
	}
	return "", false
}

// Defaults the ingest parser applies before a message reaches the policy
// engine (API.md §6). The engine never fills an absent field itself, except
// that an empty placeholder still renders as DefaultPlaceholder, because a
// push with an empty body would be refused by most vendors.
const (
	// DefaultPlaceholder replaces title and text under privacy (POLICY.md rule 21).
	DefaultPlaceholder = "You have a new message"
	// DefaultCancelContent is the text of a call_cancel alert (POLICY.md rule 27).
	DefaultCancelContent = "Missed call"
	// DefaultTTL is how long a message push may wait for its device.
	DefaultTTL = 86400 * time.Second
	// MaxTTL is the longest ttlSeconds a caller may ask for (28 days).
	MaxTTL = 2419200 * time.Second
	// DefaultCallTimeout is how long an invite rings when the caller names no
	// timeoutSeconds.
	DefaultCallTimeout = 60 * time.Second
	// MaxCallTimeout is the longest timeoutSeconds a caller may ask for.
	MaxCallTimeout = 600 * time.Second
)

// UserSet is a set of user ids. Messages keep mentions and forced recipients
// as sets so that deciding for each of up to 100,000 recipients costs one map
// probe, not a scan of a 1000-entry list. A nil UserSet is empty.
type UserSet map[string]struct{}

// NewUserSet returns a set holding ids; duplicates collapse.
func NewUserSet(ids ...string) UserSet {
	s := make(UserSet, len(ids))
	for _, id := range ids {
		s[id] = struct{}{}
	}
	return s
}

// Has reports whether id is in the set. User ids match exactly.
func (s UserSet) Has(id string) bool {
	_, ok := s[id]
	return ok
}

// Sender is who sent a message. The sender never gets a push for it.
type Sender struct {
	UserID   string
	Nickname string // empty when the caller gave none; titles and prefixes then use UserID
}

// Conversation names where a message was sent. For peer messages ingest sets
// each recipient's conversation settings key to the sender (peer/{sender}),
// whatever ID holds.
type Conversation struct {
	Type ConversationType
	ID   string
}

// Mentions names who a message mentions (POLICY.md rule 11).
type Mentions struct {
	UserIDs UserSet
	All     bool // @all; means nothing in peer chats
}

// Content is the push text and presentation of a message (API.md §6 "push").
// The parser has applied its defaults: NicknamePrefix and Badge true unless
// the caller said false, Placeholder DefaultPlaceholder unless given.
type Content struct {
	Title          string            // empty: the title is the sender's nickname, else the sender's id
	Body           string            // push.content, the original text
	Translations   map[string]string // BCP 47 tag → text, tags as the caller spelled them
	Payload        map[string]string // custom data, delivered unchanged
	NicknamePrefix bool
	HideContent    bool // the sender asks for the placeholder on every recipient
	Placeholder    string
	Badge          bool
	Sound          string
	ResourceID     string
}

// Force lists who gets the message whatever their remind type and DND
// (POLICY.md §5). Force never bypasses presence, the sender rule, chatrooms,
// missing bindings or the multi-device rules.
type Force struct {
	UserIDs UserSet
	All     bool
	Content string // replaces the text for forced recipients, without nickname prefix; empty: the normal text
}

// Call describes the call of a call_invite or call_cancel.
type Call struct {
	ID      string
	Media   CallMedia
	Timeout time.Duration // DefaultCallTimeout when the caller gave none
	// AcceptedAt is when the service accepted the invite: the request's clock
	// on first receipt, and on a retry of the same invite the instant stored
	// with the call record, so every attempt agrees on the expiry. A zero
	// AcceptedAt means unknown; the engine then cannot judge expiry and leaves
	// that to dispatch.
	AcceptedAt time.Time
}

// ExpiresAt is when the call stops ringing: AcceptedAt + Timeout (POLICY.md
// rule 25). It is zero when AcceptedAt is unknown.
func (c *Call) ExpiresAt() time.Time {
	if c == nil || c.AcceptedAt.IsZero() {
		return time.Time{}
	}
	return c.AcceptedAt.Add(c.Timeout)
}

// Message is one message, call invite or call cancel as ingest parsed it,
// defaults applied (see Content, Call and the Default constants). The
// recipients list is not part of it: each recipient is judged on its own.
type Message struct {
	ID           string
	Kind         MessageKind
	Sender       Sender
	Conversation Conversation
	Mentions     Mentions
	Content      Content
	Force        Force
	Call         *Call         // set exactly for the two call kinds
	TTL          time.Duration // DefaultTTL when the caller gave none; calls live for the call's time left instead
}

// Forced reports whether userID is a forced recipient of m.
func (m *Message) Forced(userID string) bool {
	return m.Force.All || m.Force.UserIDs.Has(userID)
}

// CallRecord is a callee's current call as stored (POLICY.md rule 26). Each
// accepted invite becomes its callee's current call, so an invite of an older
// call that is still queued can be recognised and dropped.
type CallRecord struct {
	CallID     string
	AcceptedAt time.Time // when the service accepted that call's invite
	ExpiresAt  time.Time // AcceptedAt + the call's timeout
	Cancelled  bool      // a call_cancel arrived; dispatch drops the invite or sends the cancel
}
