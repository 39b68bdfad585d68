package push

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"time"
)

// EnvelopeVersion is the version of the envelope layout that ingest writes.
// A dispatcher refuses an envelope of another version rather than guess at
// its meaning; a change that old dispatchers cannot read bumps it.
const EnvelopeVersion = 1

// Packing limits of one envelope (DESIGN.md, Dispatch). SQS bills a request
// per 64 KB chunk of payload, so an envelope of at most 64 KB costs exactly
// one billed request; 500 targets keeps the work of one SQS record well
// inside a dispatch invocation.
const (
	MaxEnvelopeTargets = 500
	MaxEnvelopeBytes   = 64 * 1024
)

// Priority tells dispatch how urgently a vendor should deliver.
//
// Ingest sets PriorityHigh on call invites and cancels (a ringing phone
// cannot wait, POLICY.md rule 24) and on forced pushes (the sender marked
// them urgent), and PriorityNormal on every other message. Dispatch maps
// high to the vendor's immediate delivery (APNs 10, FCM "high", Huawei and
// Honor urgency HIGH) and normal to the vendor's regular delivery of
// user-visible notifications; IM messages still go in the vendor's IM class
// either way, so they are not throttled as marketing.
type Priority string

// Priorities.
const (
	PriorityNormal Priority = "normal"
	PriorityHigh   Priority = "high"
)

// Envelope is one SQS message from ingest to a vendor's dispatch function:
// up to MaxEnvelopeTargets devices of one app, vendor and credential that
// share one notification. Texts are deduplicated in a table that targets
// index into, so a group whose members read three languages still packs
// hundreds of targets into one envelope.
//
// Member names on the wire are short where they repeat per target, since
// every byte counts toward the 64 KB an envelope may take.
type Envelope struct {
	Version   int         `json:"v"`
	App       string      `json:"app"`
	Vendor    Vendor      `json:"vendor"`
	CertName  string      `json:"certName"`
	MessageID string      `json:"messageId"`
	Kind      MessageKind `json:"kind"`
	// SenderID and the conversation let the app open the right chat when
	// the notification is tapped. ConversationID is empty for a peer
	// message whose caller did not give one; the app's peer is the sender.
	SenderID         string           `json:"senderId"`
	ConversationType ConversationType `json:"conversationType"`
	ConversationID   string           `json:"conversationId,omitempty"`
	// CallID and Media are set on call_invite and call_cancel only.
	CallID string    `json:"callId,omitempty"`
	Media  CallMedia `json:"media,omitempty"`
	// ExpiresAt is the absolute instant, in Unix milliseconds, after which
	// dispatch must not send (outcome "expired", or "call_expired" for an
	// invite): the acceptance instant plus ttlSeconds for messages and
	// cancels, the call's expiry for invites (POLICY.md rule 25). Dispatch
	// passes the time left to the vendor as its TTL.
	ExpiresAt int64 `json:"expiresAt"`
	// NowOrNever is set when the caller asked for ttlSeconds 0: the vendor
	// must not store the push for an offline device (APNs expiration 0, FCM
	// ttl "0s"). ExpiresAt then leaves NowOrNeverGrace for the queue.
	NowOrNever bool `json:"nowOrNever,omitempty"`
	// CollapseID and NotifyID replace an earlier notification with the same
	// value on the device; see CollapseFor. Targets may override them (calls
	// collapse per callee).
	CollapseID string   `json:"collapseId,omitempty"`
	NotifyID   int32    `json:"notifyId,omitempty"`
	Priority   Priority `json:"priority"`
	// Texts are the rendered title and body variants, already fitted to the
	// vendor's budget (policy.BudgetFor); Target.Text indexes them.
	Texts      []EnvelopeText    `json:"texts"`
	Payload    map[string]string `json:"payload,omitempty"`
	Badge      bool              `json:"badge,omitempty"`
	Sound      string            `json:"sound,omitempty"`
	ResourceID string            `json:"resourceId,omitempty"`
	// Attempt counts how often dispatch re-enqueued these targets after a
	// partial failure. A re-enqueued target is a new SQS message whose
	// receive count starts again, so dispatch dead-letters explicitly once
	// Attempt reaches its limit. Ingest writes 0.
	Attempt int      `json:"attempt"`
	Targets []Target `json:"targets"`
}

// EnvelopeText is one rendered notification text.
type EnvelopeText struct {
	Title string `json:"t"`
	Body  string `json:"b"`
	// Lang is the translation key the text was chosen by, as the message
	// spelled it; empty for the original text, forced content and the
	// placeholder.
	Lang string `json:"l,omitempty"`
}

// Target is one device to push to.
type Target struct {
	UserID   string `json:"u"`
	DeviceID string `json:"d"`
	// Token is the token to send to: the device's VoIP token when Kind is
	// TokenVoIP, else its alert token.
	Token string `json:"tk"`
	// Kind is TokenVoIP for a VoIP push and empty for an alert token (the
	// common case, left out to save bytes); read it with TokenKind.
	Kind TokenKind `json:"k,omitempty"`
	// Environment is Sandbox for an APNs sandbox token and empty otherwise
	// (production, or not APNs); read it with APNsEnvironment.
	Environment Environment `json:"e,omitempty"`
	Platform    Platform    `json:"p,omitempty"`
	// Text indexes Envelope.Texts.
	Text int `json:"x"`
	// CollapseID and NotifyID, when set, replace the envelope's for this
	// target.
	CollapseID string `json:"c,omitempty"`
	NotifyID   int32  `json:"n,omitempty"`
}

// TokenKind returns the kind of t's token: TokenAlert when Kind is empty.
func (t *Target) TokenKind() TokenKind {
	if t.Kind == "" {
		return TokenAlert
	}
	return t.Kind
}

// APNsEnvironment returns the APNs environment of t's token: Production
// when Environment is empty.
func (t *Target) APNsEnvironment() Environment {
	if t.Environment == "" {
		return Production
	}
	return t.Environment
}

// Expiry returns ExpiresAt as a time.
func (e *Envelope) Expiry() time.Time {
	return time.UnixMilli(e.ExpiresAt).UTC()
}

// Collapse returns the collapse id and notify id that apply to target t of e.
func (e *Envelope) Collapse(t *Target) (string, int32) {
	id, n := e.CollapseID, e.NotifyID
	if t.CollapseID != "" {
		id = t.CollapseID
	}
	if t.NotifyID != 0 {
		n = t.NotifyID
	}
	return id, n
}

// NowOrNeverGrace is how long a push with ttlSeconds 0 may spend between
// ingest and the vendor: the queue and dispatch need a moment, and "now"
// cannot mean an instant already past when dispatch receives it.
const NowOrNeverGrace = 30 * time.Second

// EncodeEnvelope returns the wire form of e: exactly json.Marshal(e), so a
// packer can add up the encoded sizes of texts and targets to know the size
// of the whole envelope without encoding it again.
func EncodeEnvelope(e *Envelope) ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode envelope of message %s: %w", e.MessageID, err)
	}
	return b, nil
}

// DecodeEnvelope parses an envelope, refusing one of another version, one
// whose targets index texts it lacks, and one without targets.
func DecodeEnvelope(b []byte) (*Envelope, error) {
	var e Envelope
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("decode envelope: %w", err)
	}
	if e.Version != EnvelopeVersion {
		return nil, fmt.Errorf("decode envelope: version %d, want %d", e.Version, EnvelopeVersion)
	}
	if len(e.Targets) == 0 {
		return nil, fmt.Errorf("decode envelope of message %s: no targets", e.MessageID)
	}
	for i := range e.Targets {
		if x := e.Targets[i].Text; x < 0 || x >= len(e.Texts) {
			return nil, fmt.Errorf("decode envelope of message %s: target %d names text %d of %d", e.MessageID, i, x, len(e.Texts))
		}
	}
	return &e, nil
}

// CallDevice is a device a call invite was decided to go to, as the callee's
// call record keeps it: a later call_cancel is sent to exactly these devices,
// by the same kind of token.
type CallDevice struct {
	DeviceID string
	Vendor   Vendor
	CertName string
	Kind     TokenKind
}

// MessageCollapseKey is the collapse key of a chat message: its own id, so
// that every message shows as its own notification and a push delivered
// twice (say, a retry after a crash) replaces itself instead of showing twice.
func MessageCollapseKey(messageID string) string { return "m:" + messageID }

// CallCollapseKey is the collapse key of every call push to a callee
// (POLICY.md rule 26): the newest call's invite replaces an older call's
// ringing notification, and a cancel replaces the invite.
func CallCollapseKey(callee string) string { return "c:" + callee }

// CollapseFor derives the collapse identifiers of key for vendor v, each
// fitting what that vendor accepts (VENDORS.md):
//
//   - id, a string: key itself when it has at most 64 bytes, else the first
//     32 hex digits of its SHA-256 (APNs apns-collapse-id takes 64 bytes; FCM
//     and Huawei/Honor tags take the same string). For Meizu, whose
//     notifyKey takes at most 8 characters, always the first 8 hex digits of
//     the SHA-256. Dispatch uses it for FCM as android.notification.tag,
//     never as collapse_key, of which an offline device keeps only four.
//   - notifyID, for Xiaomi, vivo, OPPO, Huawei and Honor, whose notify ids
//     are integers from 1 to 2147483647: the FNV-1a hash of key reduced to
//     that range; 0 for the other vendors.
//
// Keys are ASCII ids with a short prefix, so the same key always gives the
// same identifiers; two keys sharing one integer id (1 in 2^31) would let
// one notification replace the other.
func CollapseFor(v Vendor, key string) (id string, notifyID int32) {
	switch v {
	case Meizu:
		sum := sha256.Sum256([]byte(key))
		id = hex.EncodeToString(sum[:4])
	default:
		id = key
		if len(id) > 64 {
			sum := sha256.Sum256([]byte(key))
			id = hex.EncodeToString(sum[:16])
		}
	}
	switch v {
	case Xiaomi, Vivo, OPPO, Huawei, Honor:
		h := fnv.New32a()
		h.Write([]byte(key))
		notifyID = int32(h.Sum32() & 0x7fffffff)
		if notifyID == 0 {
			notifyID = 1
		}
	}
	return id, notifyID
}
