package policy_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/offline-push/offline-push/shared/policy"
	"github.com/offline-push/offline-push/shared/push"
)

// now is the instant most cases are judged at: a Sunday, 10:00 UTC
// (18:00 in Asia/Shanghai).
var now = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// baseMessage is a group message from alice, defaults applied as the parser
// would.
func baseMessage() *push.Message {
	return &push.Message{
		ID:           "m-1",
		Kind:         push.KindMessage,
		Sender:       push.Sender{UserID: "alice", Nickname: "Alice"},
		Conversation: push.Conversation{Type: push.Group, ID: "g1"},
		Content: push.Content{
			Body:           "lunch?",
			NicknamePrefix: true,
			Placeholder:    push.DefaultPlaceholder,
			Badge:          true,
		},
		TTL: push.DefaultTTL,
	}
}

// callMessage is a call invite from alice accepted one second before now,
// ringing for 60 s.
func callMessage() *push.Message {
	m := baseMessage()
	m.Kind = push.KindCallInvite
	m.Content.Body = "Incoming call"
	m.Call = &push.Call{ID: "c-9", Media: push.MediaVideo, Timeout: push.DefaultCallTimeout,
		AcceptedAt: now.Add(-time.Second)}
	return m
}

func iphone(id string) push.Binding {
	return push.Binding{DeviceID: id, Vendor: push.APNs, Token: "aa11bb22cc33dd44ee55ff66", CertName: "ios-prod",
		Platform: push.PlatformIOS, Environment: push.Production, Locale: "en-US"}
}

func iphoneVoIP(id string) push.Binding {
	b := iphone(id)
	b.VoIPToken = "99887766554433221100ffee"
	return b
}

func android(id string, v push.Vendor) push.Binding {
	return push.Binding{DeviceID: id, Vendor: v, Token: "tok-" + id + "-123456", CertName: "android",
		Platform: push.PlatformAndroid, Locale: "zh-CN"}
}

func online(id string, p push.Platform) push.Lease {
	return push.Lease{DeviceID: id, Platform: p, Epoch: 1, Until: now.Add(time.Minute)}
}

func expired(id string, p push.Platform) push.Lease {
	return push.Lease{DeviceID: id, Platform: p, Epoch: 1, Until: now}
}

// bob is a recipient with one iPhone and default settings.
func bob() *policy.Recipient {
	return &policy.Recipient{UserID: "bob", Bindings: []push.Binding{iphone("phone-1")}, Settings: push.DefaultSettings()}
}

// summary renders decisions compactly: "device reason[ voip]", "-" for no
// device.
func summary(ds []push.Decision) []string {
	var out []string
	for _, d := range ds {
		dev := d.DeviceID
		if dev == "" {
			dev = "-"
		}
		s := dev + " " + string(d.Reason)
		if d.VoIP {
			s += " voip"
		}
		out = append(out, s)
	}
	return out
}

func window(start, end string, zone string) *push.DNDWindow {
	return &push.DNDWindow{Start: hm(start), End: hm(end), TimeZone: zone}
}

func hm(s string) int {
	var h, m int
	if _, err := fmt.Sscanf(s, "%d:%d", &h, &m); err != nil {
		panic(err)
	}
	return h*60 + m
}

func TestEvaluate(t *testing.T) {
	tests := []struct {
		name string
		msg  func(m *push.Message)     // changes to baseMessage
		call bool                      // start from callMessage instead
		rcpt func(r *policy.Recipient) // changes to bob
		at   time.Time                 // zero: now
		want []string
	}{
		// §1 Who can get a push.
		{name: "rule 1: a user without bindings gets one no_devices decision",
			rcpt: func(r *policy.Recipient) { r.Bindings = nil },
			want: []string{"- no_devices"}},
		{name: "rule 1: a presence-only pc user gets no_devices",
			rcpt: func(r *policy.Recipient) { r.Bindings = nil; r.Leases = []push.Lease{online("pc-1", push.PlatformPC)} },
			want: []string{"- no_devices"}},
		{name: "rule 1: a binding without a token is no device",
			rcpt: func(r *policy.Recipient) { r.Bindings[0].Token = "" },
			want: []string{"- no_devices"}},
		{name: "rule 1: a VoIP-only binding is no device for a message",
			rcpt: func(r *policy.Recipient) { r.Bindings[0] = iphoneVoIP("phone-1"); r.Bindings[0].Token = "" },
			want: []string{"- no_devices"}},
		{name: "rule 1: an offline device with a token gets a push",
			want: []string{"phone-1 remind_all"}},
		{name: "rule 2: the sender gets nothing, not even on other devices",
			rcpt: func(r *policy.Recipient) { r.UserID = "alice" },
			want: nil},
		{name: "rule 2: the sender gets nothing even when forced",
			msg:  func(m *push.Message) { m.Force.All = true },
			rcpt: func(r *policy.Recipient) { r.UserID = "alice" },
			want: nil},
		{name: "rule 3: chatroom messages give one chatroom decision",
			msg: func(m *push.Message) { m.Conversation = push.Conversation{Type: push.Chatroom, ID: "r1"} },
			rcpt: func(r *policy.Recipient) {
				r.Bindings = append(r.Bindings, android("pad-1", push.Huawei))
			},
			want: []string{"- chatroom"}},
		{name: "rule 3: chatroom comes before no_devices",
			msg:  func(m *push.Message) { m.Conversation = push.Conversation{Type: push.Chatroom, ID: "r1"} },
			rcpt: func(r *policy.Recipient) { r.Bindings = nil },
			want: []string{"- chatroom"}},
		{name: "rule 3: force never bypasses chatroom",
			msg: func(m *push.Message) {
				m.Conversation = push.Conversation{Type: push.Chatroom, ID: "r1"}
				m.Force.UserIDs = push.NewUserSet("bob")
			},
			want: []string{"- chatroom"}},
		{name: "rule 4: a device holding an unexpired lease is online",
			rcpt: func(r *policy.Recipient) { r.Leases = []push.Lease{online("phone-1", push.PlatformIOS)} },
			want: []string{"phone-1 device_online"}},
		{name: "rule 4: a lease ending exactly now has expired",
			rcpt: func(r *policy.Recipient) { r.Leases = []push.Lease{expired("phone-1", push.PlatformIOS)} },
			want: []string{"phone-1 remind_all"}},
		{name: "rule 4: a lease ending 1 ms after now still holds",
			rcpt: func(r *policy.Recipient) {
				r.Leases = []push.Lease{{DeviceID: "phone-1", Platform: push.PlatformIOS, Until: now.Add(time.Millisecond)}}
			},
			want: []string{"phone-1 device_online"}},
		{name: "rule 4: an offline lease (zero until) is offline",
			rcpt: func(r *policy.Recipient) { r.Leases = []push.Lease{{DeviceID: "phone-1", Platform: push.PlatformIOS}} },
			want: []string{"phone-1 remind_all"}},
		{name: "rule 4: force never bypasses presence",
			msg:  func(m *push.Message) { m.Force.All = true },
			rcpt: func(r *policy.Recipient) { r.Leases = []push.Lease{online("phone-1", push.PlatformIOS)} },
			want: []string{"phone-1 device_online"}},

		// §2 Several devices.
		{name: "rule 5: any_offline pushes to the offline device while another is online",
			rcpt: func(r *policy.Recipient) {
				r.Bindings = append(r.Bindings, android("pad-1", push.Xiaomi))
				r.Leases = []push.Lease{online("phone-1", push.PlatformIOS), online("pc-1", push.PlatformPC)}
			},
			want: []string{"phone-1 device_online", "pad-1 remind_all"}},
		{name: "rule 6: all_offline with a pc online skips every device",
			rcpt: func(r *policy.Recipient) {
				r.Settings.MultiDevicePolicy = push.AllOffline
				r.Bindings = append(r.Bindings, android("pad-1", push.Xiaomi))
				r.Leases = []push.Lease{online("pc-1", push.PlatformPC)}
			},
			want: []string{"phone-1 user_online", "pad-1 user_online"}},
		{name: "rule 6: all_offline reports device_online first for the online device",
			rcpt: func(r *policy.Recipient) {
				r.Settings.MultiDevicePolicy = push.AllOffline
				r.Bindings = append(r.Bindings, android("pad-1", push.Xiaomi))
				r.Leases = []push.Lease{online("phone-1", push.PlatformIOS)}
			},
			want: []string{"phone-1 device_online", "pad-1 user_online"}},
		{name: "rule 6: all_offline with only expired leases pushes",
			rcpt: func(r *policy.Recipient) {
				r.Settings.MultiDevicePolicy = push.AllOffline
				r.Leases = []push.Lease{expired("pc-1", push.PlatformPC), expired("phone-1", push.PlatformIOS)}
			},
			want: []string{"phone-1 remind_all"}},
		{name: "rule 6: force never bypasses all_offline",
			msg: func(m *push.Message) { m.Force.UserIDs = push.NewUserSet("bob") },
			rcpt: func(r *policy.Recipient) {
				r.Settings.MultiDevicePolicy = push.AllOffline
				r.Leases = []push.Lease{online("web-1", push.PlatformWeb)}
			},
			want: []string{"phone-1 user_online"}},
		{name: "rule 7: desktop online with mobilePushWhenDesktopOnline false",
			rcpt: func(r *policy.Recipient) {
				r.Settings.MobilePushWhenDesktopOnline = false
				r.Bindings = append(r.Bindings, android("pad-1", push.OPPO))
				r.Leases = []push.Lease{online("mac-1", push.PlatformMac)}
			},
			want: []string{"phone-1 desktop_online", "pad-1 desktop_online"}},
		{name: "rule 7: web counts as desktop",
			rcpt: func(r *policy.Recipient) {
				r.Settings.MobilePushWhenDesktopOnline = false
				r.Leases = []push.Lease{online("web-1", push.PlatformWeb)}
			},
			want: []string{"phone-1 desktop_online"}},
		{name: "rule 7: an expired desktop lease does not block",
			rcpt: func(r *policy.Recipient) {
				r.Settings.MobilePushWhenDesktopOnline = false
				r.Leases = []push.Lease{expired("pc-1", push.PlatformPC)}
			},
			want: []string{"phone-1 remind_all"}},
		{name: "rule 7: another phone online is not a desktop",
			rcpt: func(r *policy.Recipient) {
				r.Settings.MobilePushWhenDesktopOnline = false
				r.Bindings = append(r.Bindings, android("pad-1", push.Vivo))
				r.Leases = []push.Lease{online("pad-1", push.PlatformAndroid), online("tv-1", push.PlatformOther)}
			},
			want: []string{"phone-1 remind_all", "pad-1 device_online"}},
		{name: "rule 7: desktop online is allowed by default",
			rcpt: func(r *policy.Recipient) { r.Leases = []push.Lease{online("pc-1", push.PlatformPC)} },
			want: []string{"phone-1 remind_all"}},
		{name: "rule 7: user_online comes before desktop_online",
			rcpt: func(r *policy.Recipient) {
				r.Settings.MultiDevicePolicy = push.AllOffline
				r.Settings.MobilePushWhenDesktopOnline = false
				r.Leases = []push.Lease{online("pc-1", push.PlatformPC)}
			},
			want: []string{"phone-1 user_online"}},
		{name: "rule 7: force never bypasses desktop_online",
			msg: func(m *push.Message) { m.Force.All = true },
			rcpt: func(r *policy.Recipient) {
				r.Settings.MobilePushWhenDesktopOnline = false
				r.Leases = []push.Lease{online("pc-1", push.PlatformPC)}
			},
			want: []string{"phone-1 desktop_online"}},
		{name: "rule 8: a kicked device with presence but no binding gets nothing",
			rcpt: func(r *policy.Recipient) {
				r.Leases = []push.Lease{expired("phone-2", push.PlatformIOS)}
			},
			want: []string{"phone-1 remind_all"}},
		{name: "rule 5: each device is decided on its own, in binding order",
			rcpt: func(r *policy.Recipient) {
				r.Bindings = []push.Binding{android("a", push.FCM), iphone("b"), android("c", push.Meizu), android("d", push.Honor)}
				r.Leases = []push.Lease{online("c", push.PlatformAndroid), expired("a", push.PlatformAndroid)}
			},
			want: []string{"a remind_all", "b remind_all", "c device_online", "d remind_all"}},

		// §3 Remind type.
		{name: "rule 9: ALL pushes every message",
			want: []string{"phone-1 remind_all"}},
		{name: "rule 9: AT skips a message that does not mention the user",
			rcpt: func(r *policy.Recipient) { r.Settings.RemindType = push.RemindAt },
			want: []string{"phone-1 not_mentioned"}},
		{name: "rule 9: AT pushes a message that mentions the user",
			msg:  func(m *push.Message) { m.Mentions.UserIDs = push.NewUserSet("carol", "bob") },
			rcpt: func(r *policy.Recipient) { r.Settings.RemindType = push.RemindAt },
			want: []string{"phone-1 mentioned"}},
		{name: "rule 9: NONE pushes nothing",
			rcpt: func(r *policy.Recipient) { r.Settings.RemindType = push.RemindNone },
			want: []string{"phone-1 remind_none"}},
		{name: "rule 10: the conversation's AT overrides app-level ALL",
			rcpt: func(r *policy.Recipient) { r.Conversation.RemindType = push.RemindAt },
			want: []string{"phone-1 not_mentioned"}},
		{name: "rule 10: the conversation's ALL overrides app-level NONE",
			rcpt: func(r *policy.Recipient) {
				r.Settings.RemindType = push.RemindNone
				r.Conversation.RemindType = push.RemindAll
			},
			want: []string{"phone-1 remind_all"}},
		{name: "rule 10: a conversation without its own remind type inherits NONE",
			rcpt: func(r *policy.Recipient) {
				r.Settings.RemindType = push.RemindNone
				r.Conversation = push.ConversationSettings{DNDUntil: now.Add(-time.Hour)}
			},
			want: []string{"phone-1 remind_none"}},
		{name: "rule 11: @all in a group passes AT",
			msg:  func(m *push.Message) { m.Mentions.All = true },
			rcpt: func(r *policy.Recipient) { r.Settings.RemindType = push.RemindAt },
			want: []string{"phone-1 mentioned_all"}},
		{name: "rule 11: an explicit mention beats @all as the reason",
			msg: func(m *push.Message) {
				m.Mentions.All = true
				m.Mentions.UserIDs = push.NewUserSet("bob")
			},
			want: []string{"phone-1 mentioned"}},
		{name: "rule 11: @all under ALL reports mentioned_all",
			msg:  func(m *push.Message) { m.Mentions.All = true },
			want: []string{"phone-1 mentioned_all"}},
		{name: "rule 11: @all means nothing in a peer chat under AT",
			msg: func(m *push.Message) {
				m.Conversation = push.Conversation{Type: push.Peer, ID: "bob"}
				m.Mentions.All = true
			},
			rcpt: func(r *policy.Recipient) { r.Settings.RemindType = push.RemindAt },
			want: []string{"phone-1 not_mentioned"}},
		{name: "rule 11: @all in a peer chat under ALL is a plain remind_all",
			msg: func(m *push.Message) {
				m.Conversation = push.Conversation{Type: push.Peer}
				m.Mentions.All = true
			},
			want: []string{"phone-1 remind_all"}},
		{name: "rule 11: an explicit mention passes AT in a peer chat",
			msg: func(m *push.Message) {
				m.Conversation = push.Conversation{Type: push.Peer}
				m.Mentions.UserIDs = push.NewUserSet("bob")
			},
			rcpt: func(r *policy.Recipient) { r.Conversation.RemindType = push.RemindAt },
			want: []string{"phone-1 mentioned"}},
		{name: "rule 11: user ids match exactly, case included",
			msg:  func(m *push.Message) { m.Mentions.UserIDs = push.NewUserSet("Bob", "bob2") },
			rcpt: func(r *policy.Recipient) { r.Settings.RemindType = push.RemindAt },
			want: []string{"phone-1 not_mentioned"}},
		{name: "rule 12: a mention never beats NONE",
			msg:  func(m *push.Message) { m.Mentions.UserIDs = push.NewUserSet("bob") },
			rcpt: func(r *policy.Recipient) { r.Conversation.RemindType = push.RemindNone },
			want: []string{"phone-1 remind_none"}},
		{name: "rule 12: @all never beats NONE",
			msg:  func(m *push.Message) { m.Mentions.All = true },
			rcpt: func(r *policy.Recipient) { r.Settings.RemindType = push.RemindNone },
			want: []string{"phone-1 remind_none"}},

		// §4 Do not disturb.
		{name: "rule 13: the app-level window silences",
			rcpt: func(r *policy.Recipient) { r.Settings.Window = window("09:00", "11:00", "UTC") },
			want: []string{"phone-1 dnd_window"}},
		{name: "rule 14: the window is judged in its own zone (18:00 in Shanghai is outside 22:00-07:30)",
			rcpt: func(r *policy.Recipient) { r.Settings.Window = window("22:00", "07:30", "Asia/Shanghai") },
			want: []string{"phone-1 remind_all"}},
		{name: "rule 14: the window is judged in its own zone (18:00 in Shanghai is inside 17:00-19:00)",
			rcpt: func(r *policy.Recipient) { r.Settings.Window = window("17:00", "19:00", "Asia/Shanghai") },
			want: []string{"phone-1 dnd_window"}},
		{name: "rule 14: window end is exclusive",
			rcpt: func(r *policy.Recipient) { r.Settings.Window = window("08:00", "10:00", "UTC") },
			want: []string{"phone-1 remind_all"}},
		{name: "rule 14: start equal to end is all day",
			rcpt: func(r *policy.Recipient) { r.Settings.Window = window("03:00", "03:00", "UTC") },
			want: []string{"phone-1 dnd_window"}},
		{name: "rule 15: a running duration silences",
			rcpt: func(r *policy.Recipient) { r.Settings.DNDUntil = now.Add(time.Millisecond) },
			want: []string{"phone-1 dnd_duration"}},
		{name: "rule 15: a duration ends at until",
			rcpt: func(r *policy.Recipient) { r.Settings.DNDUntil = now },
			want: []string{"phone-1 remind_all"}},
		{name: "rule 15: an expired duration is ignored, whether or not cleanup ran",
			rcpt: func(r *policy.Recipient) { r.Settings.DNDUntil = now.Add(-24 * time.Hour) },
			want: []string{"phone-1 remind_all"}},
		{name: "rule 16: window and duration combine; the duration is reported first",
			rcpt: func(r *policy.Recipient) {
				r.Settings.DNDUntil = now.Add(time.Hour)
				r.Settings.Window = window("00:00", "00:00", "UTC")
			},
			want: []string{"phone-1 dnd_duration"}},
		{name: "rule 16: an expired duration leaves the window",
			rcpt: func(r *policy.Recipient) {
				r.Settings.DNDUntil = now.Add(-time.Hour)
				r.Settings.Window = window("09:59", "10:01", "UTC")
			},
			want: []string{"phone-1 dnd_window"}},
		{name: "rule 16: DND beats ALL on the conversation",
			rcpt: func(r *policy.Recipient) {
				r.Settings.RemindType = push.RemindNone
				r.Conversation.RemindType = push.RemindAll
				r.Settings.DNDUntil = now.Add(time.Hour)
			},
			want: []string{"phone-1 dnd_duration"}},
		{name: "rule 16: a mention never pierces DND",
			msg: func(m *push.Message) { m.Mentions.UserIDs = push.NewUserSet("bob") },
			rcpt: func(r *policy.Recipient) {
				r.Settings.Window = window("09:00", "11:00", "UTC")
			},
			want: []string{"phone-1 dnd_window"}},
		{name: "rule 16: @all never pierces a conversation's DND",
			msg:  func(m *push.Message) { m.Mentions.All = true },
			rcpt: func(r *policy.Recipient) { r.Conversation.DNDUntil = now.Add(time.Minute) },
			want: []string{"phone-1 dnd_conversation"}},
		{name: "rule 16: the conversation's duration silences this conversation",
			rcpt: func(r *policy.Recipient) { r.Conversation.DNDUntil = now.Add(time.Minute) },
			want: []string{"phone-1 dnd_conversation"}},
		{name: "rule 16: an expired conversation duration is ignored",
			rcpt: func(r *policy.Recipient) {
				r.Conversation = push.ConversationSettings{RemindType: push.RemindAll, DNDUntil: now.Add(-time.Minute)}
			},
			want: []string{"phone-1 remind_all"}},
		{name: "rule 16: the app-level window is reported before the conversation's duration",
			rcpt: func(r *policy.Recipient) {
				r.Conversation.DNDUntil = now.Add(time.Minute)
				r.Settings.Window = window("10:00", "10:01", "UTC")
			},
			want: []string{"phone-1 dnd_window"}},
		{name: "rule 16: not_mentioned is reported before DND",
			rcpt: func(r *policy.Recipient) {
				r.Settings.RemindType = push.RemindAt
				r.Settings.DNDUntil = now.Add(time.Hour)
			},
			want: []string{"phone-1 not_mentioned"}},

		// §5 Forced push.
		{name: "rule 17: a listed recipient bypasses NONE",
			msg:  func(m *push.Message) { m.Force.UserIDs = push.NewUserSet("bob") },
			rcpt: func(r *policy.Recipient) { r.Settings.RemindType = push.RemindNone },
			want: []string{"phone-1 forced"}},
		{name: "rule 17: forcePush.all bypasses AT",
			msg:  func(m *push.Message) { m.Force.All = true },
			rcpt: func(r *policy.Recipient) { r.Conversation.RemindType = push.RemindAt },
			want: []string{"phone-1 forced"}},
		{name: "rule 17: force bypasses the app-level duration and window",
			msg: func(m *push.Message) { m.Force.UserIDs = push.NewUserSet("bob") },
			rcpt: func(r *policy.Recipient) {
				r.Settings.DNDUntil = now.Add(time.Hour)
				r.Settings.Window = window("00:00", "00:00", "UTC")
			},
			want: []string{"phone-1 forced"}},
		{name: "rule 17: force bypasses the conversation's NONE and duration",
			msg: func(m *push.Message) { m.Force.All = true },
			rcpt: func(r *policy.Recipient) {
				r.Conversation = push.ConversationSettings{RemindType: push.RemindNone, DNDUntil: now.Add(time.Hour)}
			},
			want: []string{"phone-1 forced"}},
		{name: "rule 17: forced is reported even when the user would be pushed anyway",
			msg:  func(m *push.Message) { m.Force.UserIDs = push.NewUserSet("bob"); m.Mentions.All = true },
			want: []string{"phone-1 forced"}},
		{name: "rule 17: force for another user does not apply",
			msg:  func(m *push.Message) { m.Force.UserIDs = push.NewUserSet("carol") },
			rcpt: func(r *policy.Recipient) { r.Settings.RemindType = push.RemindNone },
			want: []string{"phone-1 remind_none"}},
		{name: "rule 17: force applies per device after presence",
			msg: func(m *push.Message) { m.Force.All = true },
			rcpt: func(r *policy.Recipient) {
				r.Settings.RemindType = push.RemindNone
				r.Bindings = append(r.Bindings, android("pad-1", push.Huawei))
				r.Leases = []push.Lease{online("pad-1", push.PlatformAndroid)}
			},
			want: []string{"phone-1 forced", "pad-1 device_online"}},

		// §7 Calls.
		{name: "rule 24: a call invite passes AT as a mention",
			call: true,
			rcpt: func(r *policy.Recipient) { r.Settings.RemindType = push.RemindAt },
			want: []string{"phone-1 call"}},
		{name: "rule 24: a call invite under ALL reports call",
			call: true,
			msg:  func(m *push.Message) { m.Mentions.UserIDs = push.NewUserSet("bob") },
			want: []string{"phone-1 call"}},
		{name: "rule 24: a call invite obeys NONE",
			call: true,
			rcpt: func(r *policy.Recipient) { r.Conversation.RemindType = push.RemindNone },
			want: []string{"phone-1 remind_none"}},
		{name: "rule 24: a call invite obeys DND",
			call: true,
			rcpt: func(r *policy.Recipient) { r.Settings.Window = window("22:00", "11:00", "UTC") },
			want: []string{"phone-1 dnd_window"}},
		{name: "rule 24: a forced call invite bypasses DND and reports forced",
			call: true,
			msg:  func(m *push.Message) { m.Force.All = true },
			rcpt: func(r *policy.Recipient) {
				r.Bindings[0] = iphoneVoIP("phone-1")
				r.Settings.DNDUntil = now.Add(time.Hour)
			},
			want: []string{"phone-1 forced voip"}},
		{name: "rule 24: iOS devices with a voipToken get a VoIP push, others an alert",
			call: true,
			rcpt: func(r *policy.Recipient) {
				r.Bindings = []push.Binding{iphoneVoIP("phone-1"), iphone("phone-2"), android("pad-1", push.FCM)}
			},
			want: []string{"phone-1 call voip", "phone-2 call", "pad-1 call"}},
		{name: "rule 24: a VoIP-only binding rings for a call",
			call: true,
			rcpt: func(r *policy.Recipient) { r.Bindings[0] = iphoneVoIP("phone-1"); r.Bindings[0].Token = "" },
			want: []string{"phone-1 call voip"}},
		{name: "rule 24: a plain message never goes as VoIP",
			rcpt: func(r *policy.Recipient) { r.Bindings[0] = iphoneVoIP("phone-1") },
			want: []string{"phone-1 remind_all"}},
		{name: "rule 24: a call in a peer chat passes AT",
			call: true,
			msg:  func(m *push.Message) { m.Conversation = push.Conversation{Type: push.Peer} },
			rcpt: func(r *policy.Recipient) { r.Settings.RemindType = push.RemindAt },
			want: []string{"phone-1 call"}},
		{name: "rule 25: a call expires timeout after its acceptance",
			call: true,
			at:   now.Add(59 * time.Second),
			want: []string{"phone-1 call_expired"}},
		{name: "rule 25: a call rings until just before its expiry",
			call: true,
			at:   now.Add(59*time.Second - time.Millisecond),
			want: []string{"phone-1 call"}},
		{name: "rule 25: force does not revive an expired call",
			call: true,
			msg:  func(m *push.Message) { m.Force.All = true },
			at:   now.Add(time.Hour),
			want: []string{"phone-1 call_expired"}},
		{name: "rule 25: presence is reported before expiry",
			call: true,
			rcpt: func(r *policy.Recipient) { r.Leases = []push.Lease{online("phone-1", push.PlatformIOS)} },
			at:   now.Add(59 * time.Second),
			want: []string{"phone-1 device_online"}},
		{name: "rule 25: an unknown acceptance instant leaves expiry to dispatch",
			call: true,
			msg:  func(m *push.Message) { m.Call.AcceptedAt = time.Time{} },
			at:   now.Add(time.Hour),
			want: []string{"phone-1 call"}},
		{name: "rule 26: a newer current call supersedes the invite",
			call: true,
			rcpt: func(r *policy.Recipient) {
				r.CurrentCall = &push.CallRecord{CallID: "c-10", AcceptedAt: now, ExpiresAt: now.Add(time.Minute)}
			},
			want: []string{"phone-1 call_superseded"}},
		{name: "rule 26: superseded is reported before expired",
			call: true,
			rcpt: func(r *policy.Recipient) {
				r.CurrentCall = &push.CallRecord{CallID: "c-10", AcceptedAt: now, ExpiresAt: now.Add(time.Minute)}
			},
			at:   now.Add(time.Hour),
			want: []string{"phone-1 call_superseded"}},
		{name: "rule 26: the invite's own call record does not supersede it",
			call: true,
			rcpt: func(r *policy.Recipient) {
				r.CurrentCall = &push.CallRecord{CallID: "c-9", AcceptedAt: now.Add(-time.Second), ExpiresAt: now.Add(59 * time.Second)}
			},
			want: []string{"phone-1 call"}},
		{name: "rule 26: an older current call does not supersede the invite",
			call: true,
			rcpt: func(r *policy.Recipient) {
				r.CurrentCall = &push.CallRecord{CallID: "c-8", AcceptedAt: now.Add(-time.Minute), ExpiresAt: now}
			},
			want: []string{"phone-1 call"}},
		{name: "rule 26: of two calls accepted in the same instant the greater id is current",
			call: true,
			rcpt: func(r *policy.Recipient) {
				r.CurrentCall = &push.CallRecord{CallID: "c-99", AcceptedAt: now.Add(-time.Second)}
			},
			want: []string{"phone-1 call_superseded"}},
		{name: "rule 26: of two calls accepted in the same instant the smaller id is superseded",
			call: true,
			rcpt: func(r *policy.Recipient) {
				r.CurrentCall = &push.CallRecord{CallID: "c-1", AcceptedAt: now.Add(-time.Second)}
			},
			want: []string{"phone-1 call"}},
		{name: "rule 26: force does not ring a superseded call",
			call: true,
			msg:  func(m *push.Message) { m.Force.UserIDs = push.NewUserSet("bob") },
			rcpt: func(r *policy.Recipient) {
				r.CurrentCall = &push.CallRecord{CallID: "c-10", AcceptedAt: now}
			},
			want: []string{"phone-1 call_superseded"}},
		{name: "rule 26: a plain message ignores the current call",
			rcpt: func(r *policy.Recipient) {
				r.CurrentCall = &push.CallRecord{CallID: "c-10", AcceptedAt: now}
			},
			want: []string{"phone-1 remind_all"}},
		{name: "rule 27: a call_cancel is not judged here",
			call: true,
			msg:  func(m *push.Message) { m.Kind = push.KindCallCancel },
			want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := baseMessage()
			if tt.call {
				m = callMessage()
			}
			if tt.msg != nil {
				tt.msg(m)
			}
			r := bob()
			if tt.rcpt != nil {
				tt.rcpt(r)
			}
			at := tt.at
			if at.IsZero() {
				at = now
			}
			got := policy.Evaluate(m, r, at, nil)
			if diff := cmp.Diff(tt.want, summary(got)); diff != "" {
				t.Errorf("Evaluate decisions mismatch (-want +got):\n%s", diff)
			}
			checkInvariants(t, r, got)
		})
	}
}

// checkInvariants holds for every decision whatever the case: Push agrees
// with the reason, texts appear on pushes only, a device decision points at
// its binding and a no-device decision at none.
func checkInvariants(t *testing.T, r *policy.Recipient, ds []push.Decision) {
	t.Helper()
	for i, d := range ds {
		if d.UserID != r.UserID {
			t.Errorf("decision %d: got user %q, want %q", i, d.UserID, r.UserID)
		}
		if d.Push != d.Reason.Pushes() {
			t.Errorf("decision %d: got push %v with reason %s", i, d.Push, d.Reason)
		}
		if d.Push != (d.Content != "") || d.Push != (d.Title != "") {
			t.Errorf("decision %d: push %v but title %q content %q", i, d.Push, d.Title, d.Content)
		}
		if d.DeviceID == "" {
			if d.Binding != nil || d.Vendor != "" || d.Push {
				t.Errorf("decision %d: no device but binding %v vendor %q push %v", i, d.Binding, d.Vendor, d.Push)
			}
			continue
		}
		if d.Binding == nil || d.Binding.DeviceID != d.DeviceID || d.Binding.Vendor != d.Vendor {
			t.Errorf("decision %d: device %q vendor %q but binding %+v", i, d.DeviceID, d.Vendor, d.Binding)
		}
		if d.VoIP && (d.Binding.VoIPToken == "" || d.Vendor != push.APNs) {
			t.Errorf("decision %d: VoIP without an APNs VoIP token", i)
		}
	}
}

func TestEvaluateContent(t *testing.T) {
	tests := []struct {
		name      string
		msg       func(m *push.Message)
		rcpt      func(r *policy.Recipient)
		wantTitle string
		wantBody  string
		wantLang  string
	}{
		{name: "rule 20: nickname prefix and nickname title",
			wantTitle: "Alice", wantBody: "Alice: lunch?"},
		{name: "rule 18: forced content replaces the text, without prefix",
			msg: func(m *push.Message) {
				m.Force = push.Force{UserIDs: push.NewUserSet("bob"), Content: "urgent: lunch?"}
			},
			wantTitle: "Alice", wantBody: "urgent: lunch?"},
		{name: "rule 18: force content reaches only forced recipients",
			msg: func(m *push.Message) {
				m.Force = push.Force{UserIDs: push.NewUserSet("carol"), Content: "urgent: lunch?"}
			},
			wantTitle: "Alice", wantBody: "Alice: lunch?"},
		{name: "rule 18: forced without content gets the normal, translated text",
			msg: func(m *push.Message) {
				m.Force.All = true
				m.Content.Translations = map[string]string{"en": "lunch? (en)"}
			},
			wantTitle: "Alice", wantBody: "Alice: lunch? (en)", wantLang: "en"},
		{name: "rule 18: privacy still applies to forced recipients",
			msg: func(m *push.Message) {
				m.Force = push.Force{All: true, Content: "urgent"}
			},
			rcpt:      func(r *policy.Recipient) { r.Settings.ShowPreview = false },
			wantTitle: push.DefaultPlaceholder, wantBody: push.DefaultPlaceholder},
		{name: "rule 19: the device locale picks the translation by primary subtag",
			msg: func(m *push.Message) {
				m.Content.Translations = map[string]string{"en": "lunch? (en)", "zh": "吃饭吗?"}
			},
			wantTitle: "Alice", wantBody: "Alice: lunch? (en)", wantLang: "en"},
		{name: "rule 19: the language setting wins over the device locale",
			msg: func(m *push.Message) {
				m.Content.Translations = map[string]string{"en": "lunch? (en)", "zh": "吃饭吗?"}
			},
			rcpt:      func(r *policy.Recipient) { r.Settings.Language = "ZH-cn" },
			wantTitle: "Alice", wantBody: "Alice: 吃饭吗?", wantLang: "zh"},
		{name: "rule 21: the sender's hideContent uses the message placeholder",
			msg: func(m *push.Message) {
				m.Content.HideContent = true
				m.Content.Placeholder = "New message"
				m.Content.Title = "Team"
			},
			wantTitle: "New message", wantBody: "New message"},
		{name: "rule 24: a call invite's text is rendered like a message",
			msg: func(m *push.Message) {
				m.Kind = push.KindCallInvite
				m.Content.Body = "Incoming video call"
				m.Call = &push.Call{ID: "c-1", Timeout: time.Minute, AcceptedAt: now}
			},
			wantTitle: "Alice", wantBody: "Alice: Incoming video call"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := baseMessage()
			if tt.msg != nil {
				tt.msg(m)
			}
			r := bob()
			if tt.rcpt != nil {
				tt.rcpt(r)
			}
			got := policy.Evaluate(m, r, now, nil)
			if len(got) != 1 || !got[0].Push {
				t.Fatalf("got decisions %v, want one push", summary(got))
			}
			d := got[0]
			if d.Title != tt.wantTitle || d.Content != tt.wantBody || d.Language != tt.wantLang {
				t.Errorf("got title %q body %q language %q, want %q %q %q",
					d.Title, d.Content, d.Language, tt.wantTitle, tt.wantBody, tt.wantLang)
			}
		})
	}
}

func TestEvaluateAppends(t *testing.T) {
	m := baseMessage()
	p := policy.Prepare(m)
	out := p.Evaluate(bob(), now, nil)
	carol := &policy.Recipient{UserID: "carol", Settings: push.DefaultSettings()}
	out = p.Evaluate(carol, now, out)
	want := []string{"phone-1 remind_all", "- no_devices"}
	if diff := cmp.Diff(want, summary(out)); diff != "" {
		t.Errorf("decisions across recipients mismatch (-want +got):\n%s", diff)
	}
	if out[0].UserID != "bob" || out[1].UserID != "carol" {
		t.Errorf("got users %q, %q, want bob, carol", out[0].UserID, out[1].UserID)
	}
}

func TestEvaluateNilInputs(t *testing.T) {
	if got := policy.Evaluate(nil, bob(), now, nil); len(got) != 0 {
		t.Errorf("nil message: got %v, want no decisions", summary(got))
	}
	if got := policy.Evaluate(baseMessage(), nil, now, nil); len(got) != 0 {
		t.Errorf("nil recipient: got %v, want no decisions", summary(got))
	}
	m := callMessage()
	m.Call = nil
	if got := summary(policy.Evaluate(m, bob(), now, nil)); !cmp.Equal(got, []string{"phone-1 call"}) {
		t.Errorf("call invite without call: got %v, want [phone-1 call]", got)
	}
}

// TestEvaluateCoversEveryReason keeps the table above honest: each reason of
// the closed set is produced by at least one input.
func TestEvaluateCoversEveryReason(t *testing.T) {
	seen := map[push.Reason]bool{}
	inputs := []struct {
		m *push.Message
		r *policy.Recipient
	}{}
	add := func(msg func(*push.Message), call bool, rcpt func(*policy.Recipient)) {
		m := baseMessage()
		if call {
			m = callMessage()
		}
		if msg != nil {
			msg(m)
		}
		r := bob()
		if rcpt != nil {
			rcpt(r)
		}
		inputs = append(inputs, struct {
			m *push.Message
			r *policy.Recipient
		}{m, r})
	}
	add(func(m *push.Message) { m.Force.All = true }, false, nil)
	add(nil, true, nil)
	add(func(m *push.Message) { m.Mentions.UserIDs = push.NewUserSet("bob") }, false, nil)
	add(func(m *push.Message) { m.Mentions.All = true }, false, nil)
	add(nil, false, nil)
	add(func(m *push.Message) { m.Conversation.Type = push.Chatroom }, false, nil)
	add(nil, false, func(r *policy.Recipient) { r.Bindings = nil })
	add(nil, false, func(r *policy.Recipient) { r.Leases = []push.Lease{online("phone-1", push.PlatformIOS)} })
	add(nil, false, func(r *policy.Recipient) {
		r.Settings.MultiDevicePolicy = push.AllOffline
		r.Leases = []push.Lease{online("x", push.PlatformOther)}
	})
	add(nil, false, func(r *policy.Recipient) {
		r.Settings.MobilePushWhenDesktopOnline = false
		r.Leases = []push.Lease{online("x", push.PlatformPC)}
	})
	add(nil, false, func(r *policy.Recipient) { r.Settings.RemindType = push.RemindNone })
	add(nil, false, func(r *policy.Recipient) { r.Settings.RemindType = push.RemindAt })
	add(nil, false, func(r *policy.Recipient) { r.Settings.DNDUntil = now.Add(time.Second) })
	add(nil, false, func(r *policy.Recipient) { r.Settings.Window = window("00:00", "00:00", "UTC") })
	add(nil, false, func(r *policy.Recipient) { r.Conversation.DNDUntil = now.Add(time.Second) })
	add(nil, true, func(r *policy.Recipient) { r.CurrentCall = &push.CallRecord{CallID: "c-10", AcceptedAt: now} })
	add(func(m *push.Message) { m.Call.AcceptedAt = now.Add(-time.Hour) }, true, nil)
	for _, in := range inputs {
		for _, d := range policy.Evaluate(in.m, in.r, now, nil) {
			seen[d.Reason] = true
		}
	}
	for _, r := range push.Reasons {
		if !seen[r] {
			t.Errorf("no input produced reason %s", r)
		}
	}
	if len(seen) != len(push.Reasons) {
		t.Errorf("got %d distinct reasons, want %d", len(seen), len(push.Reasons))
	}
}

// TestEvaluateAllocations checks the promise made to ingest: with a
// prepared message and room in out, judging a recipient allocates nothing,
// whatever the reason or the number of devices.
func TestEvaluateAllocations(t *testing.T) {
	m := baseMessage()
	m.Mentions = push.Mentions{UserIDs: push.NewUserSet("bob"), All: true}
	m.Content.Translations = map[string]string{"en": "lunch?", "zh": "吃饭吗?", "ja": "ランチ?"}
	p := policy.Prepare(m)
	r := bob()
	r.Bindings = append(r.Bindings, android("pad-1", push.Xiaomi), iphoneVoIP("phone-2"))
	r.Leases = []push.Lease{online("pad-1", push.PlatformAndroid), expired("pc-1", push.PlatformPC)}
	r.Settings.Window = window("22:00", "07:00", "America/New_York")
	r.Conversation.DNDUntil = now.Add(-time.Hour)
	out := make([]push.Decision, 0, 16)
	allocs := testing.AllocsPerRun(100, func() {
		out = p.Evaluate(r, now, out[:0])
	})
	if allocs != 0 {
		t.Errorf("got %v allocations per recipient, want 0", allocs)
	}
}

// TestPreparedConcurrent judges recipients from several goroutines at once,
// as ingest does, loading time zones for the first time concurrently; run
// it with -race.
func TestPreparedConcurrent(t *testing.T) {
	// At 10:00 UTC it is 11:00 in Paris, 21:00 in Sydney, 07:00 in São
	// Paulo and 13:00 in Nairobi; the window is 00:00–12:00 local.
	zones := []string{"Europe/Paris", "Australia/Sydney", "America/Sao_Paulo", "Africa/Nairobi"}
	want := [][]string{{"phone-1 dnd_window"}, {"phone-1 remind_all"}, {"phone-1 dnd_window"}, {"phone-1 remind_all"}}
	p := policy.Prepare(baseMessage())
	done := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func() {
			for i, z := range zones {
				r := bob()
				r.Settings.Window = window("00:00", "12:00", z)
				if got := summary(p.Evaluate(r, now, nil)); !cmp.Equal(got, want[i]) {
					done <- fmt.Errorf("zone %s: got %v, want %v", z, got, want[i])
					return
				}
			}
			done <- nil
		}()
	}
	for g := 0; g < 8; g++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
