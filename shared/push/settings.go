package push

import "time"

// RemindType says which messages a user wants pushed (POLICY.md §3).
type RemindType string

// Remind types. Anything else, "DEFAULT" included, is invalid.
const (
	RemindAll  RemindType = "ALL"
	RemindAt   RemindType = "AT"
	RemindNone RemindType = "NONE"
)

// ParseRemindType returns the remind type named s, and false when s names none.
func ParseRemindType(s string) (RemindType, bool) {
	switch r := RemindType(s); r {
	case RemindAll, RemindAt, RemindNone:
		return r, true
	}
	return "", false
}

// MultiDevicePolicy decides pushes while another device of the user is online.
type MultiDevicePolicy string

// Multi-device policies (POLICY.md §2).
const (
	AnyOffline MultiDevicePolicy = "any_offline"
	AllOffline MultiDevicePolicy = "all_offline"
)

// ConversationType is the kind of conversation a message belongs to.
type ConversationType string

// Conversation types. Another type matches no route.
const (
	Peer     ConversationType = "peer"
	Group    ConversationType = "group"
	Chatroom ConversationType = "chatroom"
)

// ParseConversationType returns the type named s, and false when s names none.
func ParseConversationType(s string) (ConversationType, bool) {
	switch c := ConversationType(s); c {
	case Peer, Group, Chatroom:
		return c, true
	}
	return "", false
}

// DNDWindow is a daily quiet period in a time zone (POLICY.md rule 14).
// Start and End are minutes after local midnight, 0 to 1439.
type DNDWindow struct {
	Start    int
	End      int
	TimeZone string // IANA name; "UTC" when the caller gave none
}

// MaxDNDDuration is the longest one-shot DND duration (API.md §5).
const MaxDNDDuration = 604800000 * time.Millisecond

// Settings are a user's effective app-level push settings, defaults applied.
type Settings struct {
	RemindType                  RemindType
	Window                      *DNDWindow // nil when none
	DNDUntil                    time.Time  // zero when no duration is running
	Language                    string     // empty when none
	ShowPreview                 bool
	MultiDevicePolicy           MultiDevicePolicy
	MobilePushWhenDesktopOnline bool
}

// DefaultSettings are the settings of a user who never set any.
func DefaultSettings() Settings {
	return Settings{
		RemindType:                  RemindAll,
		ShowPreview:                 true,
		MultiDevicePolicy:           AnyOffline,
		MobilePushWhenDesktopOnline: true,
	}
}

// ConversationSettings are a user's own settings for one conversation. An
// empty RemindType and a zero DNDUntil mean the conversation inherits.
type ConversationSettings struct {
	RemindType RemindType
	DNDUntil   time.Time
}

// Inherits reports whether the conversation has neither its own remind type
// nor a DND duration running at now.
func (c ConversationSettings) Inherits(now time.Time) bool {
	return c.RemindType == "" && !now.Before(c.DNDUntil)
}
