package push

// Reason says why a device does or does not get a push. Every decision
// carries exactly one, the first that applies in the order of POLICY.md §8,
// so the same input always gives the same reason. Reasons are a closed set
// (API.md §6); the README and openapi.yaml list them from Reasons.
type Reason string

// Reasons to push, in the precedence the policy engine applies them.
const (
	ReasonForced       Reason = "forced"
	ReasonCall         Reason = "call"
	ReasonMentioned    Reason = "mentioned"
	ReasonMentionedAll Reason = "mentioned_all"
	ReasonRemindAll    Reason = "remind_all"
)

// Reasons to skip.
const (
	ReasonChatroom        Reason = "chatroom"
	ReasonNoDevices       Reason = "no_devices"
	ReasonDeviceOnline    Reason = "device_online"
	ReasonUserOnline      Reason = "user_online"
	ReasonDesktopOnline   Reason = "desktop_online"
	ReasonRemindNone      Reason = "remind_none"
	ReasonNotMentioned    Reason = "not_mentioned"
	ReasonDNDDuration     Reason = "dnd_duration"
	ReasonDNDWindow       Reason = "dnd_window"
	ReasonDNDConversation Reason = "dnd_conversation"
	ReasonCallSuperseded  Reason = "call_superseded"
	ReasonCallExpired     Reason = "call_expired"
)

// Reasons lists every reason in the order API.md §6 documents them: the
// reasons to push in precedence, then the reasons to skip.
var Reasons = []Reason{
	ReasonForced, ReasonCall, ReasonMentioned, ReasonMentionedAll, ReasonRemindAll,
	ReasonChatroom, ReasonNoDevices, ReasonDeviceOnline, ReasonUserOnline, ReasonDesktopOnline,
	ReasonRemindNone, ReasonNotMentioned, ReasonDNDDuration, ReasonDNDWindow,
	ReasonDNDConversation, ReasonCallSuperseded, ReasonCallExpired,
}

// Pushes reports whether r is a reason to push.
func (r Reason) Pushes() bool {
	switch r {
	case ReasonForced, ReasonCall, ReasonMentioned, ReasonMentionedAll, ReasonRemindAll:
		return true
	}
	return false
}

// Describe returns one sentence telling an operator what r means; it is
// empty for a string outside the closed set.
func (r Reason) Describe() string {
	switch r {
	case ReasonForced:
		return "The sender forced the push to this recipient, bypassing remind type and do-not-disturb."
	case ReasonCall:
		return "A call invitation rings every offline device of a callee who accepts pushes."
	case ReasonMentioned:
		return "The message mentions the recipient by user id."
	case ReasonMentionedAll:
		return "The message mentions everyone (@all) in a group."
	case ReasonRemindAll:
		return "The recipient's remind type ALL asks for a push on every message."
	case ReasonChatroom:
		return "Chatroom messages are never pushed."
	case ReasonNoDevices:
		return "The recipient has no device with a push token."
	case ReasonDeviceOnline:
		return "The device holds an unexpired presence lease, so it is online and gets the message directly."
	case ReasonUserOnline:
		return "Under multiDevicePolicy all_offline another device of the recipient is online."
	case ReasonDesktopOnline:
		return "A pc, mac or web device of the recipient is online and mobilePushWhenDesktopOnline is false."
	case ReasonRemindNone:
		return "The recipient's remind type for this conversation is NONE."
	case ReasonNotMentioned:
		return "The recipient's remind type is AT and the message does not mention them."
	case ReasonDNDDuration:
		return "The recipient's app-level do-not-disturb duration is running."
	case ReasonDNDWindow:
		return "The recipient's daily do-not-disturb window covers this moment in its time zone."
	case ReasonDNDConversation:
		return "The recipient's do-not-disturb duration for this conversation is running."
	case ReasonCallSuperseded:
		return "A newer call has become the callee's current call, so this invite no longer rings."
	case ReasonCallExpired:
		return "The call's timeout after its invite was accepted has passed."
	}
	return ""
}

// Decision is the policy engine's verdict for one device of one recipient,
// or for a recipient as a whole (chatroom, no_devices), and everything
// fan-out needs to build the push.
type Decision struct {
	UserID   string
	DeviceID string // empty (JSON null) for chatroom and no_devices
	Vendor   Vendor // empty when DeviceID is
	Push     bool
	Reason   Reason
	// Title and Content are the rendered text before any vendor's
	// truncation, set on push decisions only. Under privacy both are the
	// placeholder.
	Title   string
	Content string
	// Language is the translation key chosen, as the message spelled it;
	// empty for the original text, forced content and the placeholder.
	Language string
	// Binding is the device's binding, the push target. It points into the
	// recipient's bindings passed to the engine; nil when DeviceID is empty.
	Binding *Binding
	// VoIP is true when the push goes to the binding's VoIP token as a VoIP
	// push (a call invite to an APNs device holding a voipToken).
	VoIP bool
}
