// Package policy decides, for each recipient of a message and each of their
// devices, whether a push goes out, why, and with what text (POLICY.md). It
// is pure: it imports only push and the standard library, reads no clock (the
// instant to judge at is an argument), does no I/O and logs nothing. Every
// decision carries a reason code instead of a log line.
//
// Ingest calls Prepare once per message and then Prepared.Evaluate once per
// recipient; a Prepared is immutable, so recipients may be judged from
// several goroutines at once. Evaluate allocates nothing per device: decisions
// are appended to the caller's slice and their texts are rendered once per
// message in Prepare.
package policy

import (
	"time"

	"github.com/offline-push/offline-push/shared/push"
)

// Recipient is everything ingest read about one recipient.
type Recipient struct {
	UserID string
	// Bindings are the user's devices with a push token, in the order their
	// decisions should appear (ingest sorts them by device id). A binding
	// without an alert token is ignored, except by a call invite when it
	// holds a VoIP token.
	Bindings []push.Binding
	// Leases are the user's presence leases, token-less devices (pc, web)
	// included; expired ones are judged offline here.
	Leases []push.Lease
	// Settings are the effective app-level settings: start from
	// push.DefaultSettings and overlay what is stored. DNDUntil may already
	// have passed; the engine checks it against now.
	Settings push.Settings
	// Conversation is this user's own setting for the message's conversation
	// (for peer messages, the conversation with the sender); zero when none.
	// Its DNDUntil may have passed.
	Conversation push.ConversationSettings
	// CurrentCall is the callee's stored current call, read for call
	// invites only; nil when none.
	CurrentCall *push.CallRecord
}

// Prepared is a message ready to be judged against many recipients: its
// texts are rendered and its translations indexed once. It is immutable and
// safe for concurrent use.
type Prepared struct {
	m           *push.Message
	title       string     // the title before privacy
	original    string     // the original text, prefixed
	langs       []langText // translations, prefixed, sorted by tag
	forced      string     // Force.Content; empty when the forced get the normal text
	placeholder string
}

// langText is one translation of the message text, ready to send.
type langText struct {
	tag  string
	text string
}

// Evaluate judges one recipient of m at now and appends the decisions to
// out. It is Prepare(m).Evaluate(r, now, out): convenient for one recipient,
// but it renders the message's texts on every call, so ingest, which judges
// up to 100,000 recipients, should Prepare once instead.
func Evaluate(m *push.Message, r *Recipient, now time.Time, out []push.Decision) []push.Decision {
	return Prepare(m).Evaluate(r, now, out)
}

// Evaluate judges one recipient at now and appends the decisions to out, in
// the order of r.Bindings. The rules apply in the order of POLICY.md §8 and
// the first that applies is the decision's reason:
//
//	chatroom → no_devices → device_online → user_online → desktop_online →
//	call_superseded / call_expired → forced → remind_none → not_mentioned →
//	dnd_duration → dnd_window → dnd_conversation →
//	push: call, mentioned, mentioned_all or remind_all.
//
// A chatroom message and a recipient without usable bindings give one
// decision with an empty DeviceID; otherwise each usable binding gets one.
// Evaluate appends nothing for the sender (ingest drops the sender before
// evaluation; this makes the sender rule hold even if it did not), for a
// nil recipient, and for a call_cancel, which is not judged against settings
// (API.md §6): ingest answers a cancel from the call's record instead.
func (p *Prepared) Evaluate(r *Recipient, now time.Time, out []push.Decision) []push.Decision {
	m := p.m
	if r == nil || m.Kind == push.KindCallCancel || r.UserID == m.Sender.UserID {
		return out
	}
	if m.Conversation.Type == push.Chatroom {
		return append(out, push.Decision{UserID: r.UserID, Reason: push.ReasonChatroom})
	}
	isCall := m.Kind == push.KindCallInvite
	if !hasUsable(r.Bindings, isCall) {
		return append(out, push.Decision{UserID: r.UserID, Reason: push.ReasonNoDevices})
	}

	var anyOnline, desktopOnline bool
	for i := range r.Leases {
		if r.Leases[i].Online(now) {
			anyOnline = true
			if r.Leases[i].Platform.Desktop() {
				desktopOnline = true
			}
		}
	}
	userOnline := anyOnline && r.Settings.MultiDevicePolicy == push.AllOffline
	desktopBlocks := desktopOnline && !r.Settings.MobilePushWhenDesktopOnline

	var verdict push.Reason // the user-level rules, judged once for all devices
	for i := range r.Bindings {
		b := &r.Bindings[i]
		if !usable(b, isCall) {
			continue
		}
		d := push.Decision{UserID: r.UserID, DeviceID: b.DeviceID, Vendor: b.Vendor, Binding: b}
		switch {
		case deviceOnline(r.Leases, b.DeviceID, now):
			d.Reason = push.ReasonDeviceOnline
		case userOnline:
			d.Reason = push.ReasonUserOnline
		case desktopBlocks:
			d.Reason = push.ReasonDesktopOnline
		default:
			if verdict == "" {
				verdict = p.judge(r, now)
			}
			d.Reason = verdict
		}
		if d.Reason.Pushes() {
			t := p.Render(Viewer{
				Language:    r.Settings.Language,
				Locale:      b.Locale,
				ShowPreview: r.Settings.ShowPreview,
				Forced:      d.Reason == push.ReasonForced,
			})
			d.Push = true
			d.Title, d.Content, d.Language = t.Title, t.Body, t.Language
			d.VoIP = isCall && b.Vendor == push.APNs && b.VoIPToken != ""
		}
		out = append(out, d)
	}
	return out
}

// judge applies the rules that depend on the user and not on the device,
// from call_superseded on, and returns the first reason that applies.
func (p *Prepared) judge(r *Recipient, now time.Time) push.Reason {
	m := p.m
	isCall := m.Kind == push.KindCallInvite
	if isCall && m.Call != nil {
		if superseded(r.CurrentCall, m.Call) {
			return push.ReasonCallSuperseded
		}
		if exp := m.Call.ExpiresAt(); !exp.IsZero() && !now.Before(exp) {
			return push.ReasonCallExpired
		}
	}
	if m.Forced(r.UserID) {
		return push.ReasonForced
	}

	remind := r.Conversation.RemindType
	if remind == "" {
		remind = r.Settings.RemindType
	}
	if remind == push.RemindNone {
		return push.ReasonRemindNone
	}
	var mention push.Reason
	switch {
	case isCall:
		mention = push.ReasonCall
	case m.Mentions.UserIDs.Has(r.UserID):
		mention = push.ReasonMentioned
	case m.Mentions.All && m.Conversation.Type != push.Peer:
		mention = push.ReasonMentionedAll
	}
	if remind == push.RemindAt && mention == "" {
		return push.ReasonNotMentioned
	}

	if now.Before(r.Settings.DNDUntil) {
		return push.ReasonDNDDuration
	}
	if w := r.Settings.Window; w != nil && InWindow(*w, now) {
		return push.ReasonDNDWindow
	}
	if now.Before(r.Conversation.DNDUntil) {
		return push.ReasonDNDConversation
	}
	if mention != "" {
		return mention
	}
	return push.ReasonRemindAll
}

// superseded reports whether the callee's current call is another, newer call
// than the invite's (POLICY.md rule 26): a different call id accepted later,
// or at the same instant with a greater call id, so that of two calls
// accepted in the same instant exactly one rings. A current call that is this
// very call (a retried invite), an older one, or one whose acceptance instant
// is unknown does not supersede. Cancellation is not judged here: dispatch
// drops a cancelled invite as call_cancelled.
func superseded(cur *push.CallRecord, c *push.Call) bool {
	if cur == nil || cur.CallID == c.ID || cur.AcceptedAt.IsZero() {
		return false
	}
	if c.AcceptedAt.IsZero() {
		return false
	}
	if cur.AcceptedAt.Equal(c.AcceptedAt) {
		return cur.CallID > c.ID
	}
	return cur.AcceptedAt.After(c.AcceptedAt)
}

// usable reports whether a binding holds a token this message can go to: an
// alert token, or for a call invite a VoIP token.
func usable(b *push.Binding, isCall bool) bool {
	return b.Token != "" || (isCall && b.VoIPToken != "")
}

// hasUsable reports whether any binding is usable for this message.
func hasUsable(bs []push.Binding, isCall bool) bool {
	for i := range bs {
		if usable(&bs[i], isCall) {
			return true
		}
	}
	return false
}

// deviceOnline reports whether the device's own lease is held at now
// (POLICY.md rule 4).
func deviceOnline(ls []push.Lease, deviceID string, now time.Time) bool {
	for i := range ls {
		if ls[i].DeviceID == deviceID && ls[i].Online(now) {
			return true
		}
	}
	return false
}
