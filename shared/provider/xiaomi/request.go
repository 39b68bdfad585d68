package xiaomi

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/offline-push/offline-push/shared/push"
)

// Xiaomi's limits on what a request carries.
const (
	// maxTTL is the longest time_to_live Xiaomi accepts (two weeks). Xiaomi
	// keeps a private message for an offline device at most 10 days
	// whatever is asked (dev.mi.com pId=1559), so a longer TTL is harmless.
	maxTTL = 14 * 24 * time.Hour
	// minTTL keeps time_to_live a whole second: Xiaomi documents no
	// minimum, and a push whose time is nearly up is sent for what is left.
	minTTL = time.Second
	// maxPayloadBytes bounds the payload field (the app's data) before URL
	// encoding. Xiaomi documents no number, only error 65009 "message content
	// too long"; 4096 bytes is the figure aggregators give for every Android
	// vendor and the budget ingest renders within (policy.BudgetFor).
	maxPayloadBytes = 4096
)

// notifyTypeAll is Xiaomi's DEFAULT_ALL: default sound, vibration and
// lights. With a custom sound_uri the default sound bit (1) is left out,
// else it would play instead of the custom one: vibration (2) | lights (4).
const (
	notifyTypeAll         = "-1"
	notifyTypeCustomSound = "6"
)

// request is one HTTP request to Xiaomi: a notification and up to
// MaxTargets distinct regIds. targets[i] lists the job's targets that
// share tokens[i] (a token registered twice gets one delivery and both
// targets its verdict).
type request struct {
	form    url.Values // everything but registration_id
	tokens  []string
	targets [][]int
	// err, when set, is the verdict for every target without sending.
	err *push.SendResult
}

// groupKey selects targets that one Xiaomi request can carry: one request
// holds one notification, so one text and one notify id.
type groupKey struct {
	text     int
	notifyID int32
}

// plan splits job into requests. Targets that cannot be sent at all (a
// malformed token, a text index out of range) get their verdict in results
// directly.
func plan(cfg *config, job *push.SendJob, results []push.SendResult) []*request {
	env := job.Envelope
	type group struct {
		key   groupKey
		order []string         // distinct tokens, first appearance first
		index map[string][]int // token → targets
	}
	var groups []*group
	byKey := map[groupKey]*group{}
	for i := range job.Targets {
		t := &job.Targets[i]
		if t.Text < 0 || t.Text >= len(env.Texts) {
			results[i] = push.SendResult{Class: push.SendBadMessage, Code: "no_text"}
			continue
		}
		if !wellFormed(t.Token) {
			// A regId is a single base64-like word; one holding a comma or
			// space can never be delivered and would corrupt the list.
			results[i] = push.SendResult{Class: push.SendInvalidToken, Code: "malformed_token"}
			continue
		}
		k := groupKey{text: t.Text, notifyID: notifyID(env, t)}
		g := byKey[k]
		if g == nil {
			g = &group{key: k, index: map[string][]int{}}
			byKey[k] = g
			groups = append(groups, g)
		}
		if _, seen := g.index[t.Token]; !seen {
			g.order = append(g.order, t.Token)
		}
		g.index[t.Token] = append(g.index[t.Token], i)
	}
	var reqs []*request
	for _, g := range groups {
		form, bad := notification(cfg, job, g.key)
		for start := 0; start < len(g.order); start += MaxTargets {
			tokens := g.order[start:min(start+MaxTargets, len(g.order))]
			r := &request{form: form, tokens: tokens, err: bad}
			for _, tk := range tokens {
				r.targets = append(r.targets, g.index[tk])
			}
			reqs = append(reqs, r)
		}
	}
	return reqs
}

func wellFormed(token string) bool {
	return token != "" && !strings.ContainsAny(token, ", \t\r\n")
}

// notifyID returns the notify_id of target t: the envelope's or the
// target's own (calls collapse per callee). Without one, the message's own
// collapse key gives it one, because Xiaomi shows a single notification per
// app when notify_id is absent and every new push would replace the last.
func notifyID(env *push.Envelope, t *push.Target) int32 {
	id, n := env.Collapse(t)
	if n > 0 {
		return n
	}
	key := id
	if key == "" {
		key = push.MessageCollapseKey(env.MessageID)
	}
	_, n = push.CollapseFor(push.Xiaomi, key)
	return n
}

// notification builds the form of one notification, without its targets.
// It returns a verdict instead when the notification cannot be sent.
func notification(cfg *config, job *push.SendJob, k groupKey) (url.Values, *push.SendResult) {
	env := job.Envelope
	text := env.Texts[k.text]
	title, body := fit(text.Title, maxTitleUnits), fit(text.Body, maxDescriptionUnits)
	if blank(title) || blank(body) {
		return nil, &push.SendResult{Class: push.SendBadMessage, Code: "blank_text"}
	}
	data, err := json.Marshal(appData(env))
	if err != nil || len(data) > maxPayloadBytes {
		return nil, &push.SendResult{Class: push.SendBadMessage, Code: "payload_too_large"}
	}
	var res Resource
	if env.ResourceID != "" {
		res = cfg.creds.Resources[env.ResourceID]
	}
	f := url.Values{}
	f.Set("restricted_package_name", cfg.creds.PackageName)
	f.Set("pass_through", "0")
	f.Set("title", title)
	f.Set("description", body)
	// Xiaomi asks for the payload URL-encoded before the form encodes it
	// again (dev.mi.com pId=1559); the client SDK decodes it for the app.
	f.Set("payload", url.QueryEscape(string(data)))
	f.Set("time_to_live", strconv.FormatInt(ttl(job).Milliseconds(), 10))
	f.Set("notify_id", strconv.FormatInt(int64(k.notifyID), 10))
	f.Set("extra.channel_id", cfg.channel(env.Kind == push.KindCallInvite, res))
	// Tapping opens the app's launcher activity, which reads the payload.
	f.Set("extra.notify_effect", "1")
	f.Set("extra.notify_foreground", "1")
	sound := res.Sound
	if sound == "" && env.Sound != "" && env.Sound != "default" {
		sound = env.Sound
	}
	if sound != "" {
		f.Set("extra.sound_uri", "android.resource://"+cfg.creds.PackageName+"/raw/"+sound)
		f.Set("notify_type", notifyTypeCustomSound)
	} else {
		f.Set("notify_type", notifyTypeAll)
	}
	return f, nil
}

// ttl is the time_to_live of job within Xiaomi's range. Xiaomi cannot be
// told "now or never", so such a push gets what is left of its short
// grace. Xiaomi has no minimum TTL, so a call invite is kept exactly for
// the time it still rings (POLICY.md rule 25); callExpiresAt in the payload
// lets the app ignore one that arrives late all the same.
func ttl(job *push.SendJob) time.Duration {
	d := job.TTL
	if job.Envelope.NowOrNever {
		d = min(d, push.NowOrNeverGrace)
	}
	return min(max(d, minTTL), maxTTL)
}

// appData is what the app receives with the notification (the payload
// field): the caller's payload and the ids the app needs to open the right
// chat or call screen. Our keys win over the caller's of the same name.
// Xiaomi documents no badge field for Android: MIUI counts the app's
// notifications on the launcher icon itself, so no increment is sent.
func appData(env *push.Envelope) map[string]string {
	d := make(map[string]string, len(env.Payload)+8)
	for k, v := range env.Payload {
		d[k] = v
	}
	d["messageId"] = env.MessageID
	d["kind"] = string(env.Kind)
	d["senderId"] = env.SenderID
	d["conversationType"] = string(env.ConversationType)
	if env.ConversationID != "" {
		d["conversationId"] = env.ConversationID
	}
	if env.CallID != "" {
		d["callId"] = env.CallID
	}
	if env.Media != "" {
		d["media"] = string(env.Media)
	}
	if env.Kind == push.KindCallInvite {
		d["callExpiresAt"] = strconv.FormatInt(env.ExpiresAt, 10)
	}
	return d
}
