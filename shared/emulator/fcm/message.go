package fcmemu

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The schema below is FCM HTTP v1's projects.messages resource, written
// from its REST reference, with the snake_case member names the Admin SDK
// sends. Google APIs refuse members they do not know, so decoding is
// strict.

type sendRequest struct {
	ValidateOnly bool            `json:"validate_only"`
	RawMessage   json.RawMessage `json:"message"`

	Message *v1Message      `json:"-"`
	raw     json.RawMessage // RawMessage, compacted
}

func (r *sendRequest) token() string {
	if r == nil || r.Message == nil {
		return ""
	}
	return r.Message.Token
}

type v1Message struct {
	Name         string            `json:"name"`
	Data         map[string]string `json:"data"`
	Notification *v1Notification   `json:"notification"`
	Android      *v1Android        `json:"android"`
	Webpush      map[string]any    `json:"webpush"`
	APNs         *v1APNs           `json:"apns"`
	FCMOptions   *v1FCMOptions     `json:"fcm_options"`
	Token        string            `json:"token"`
	Topic        string            `json:"topic"`
	Condition    string            `json:"condition"`
}

type v1Notification struct {
	Title string `json:"title"`
	Body  string `json:"body"`
	Image string `json:"image"`
}

type v1Android struct {
	CollapseKey           string                 `json:"collapse_key"`
	Priority              string                 `json:"priority"`
	TTL                   *string                `json:"ttl"`
	RestrictedPackageName string                 `json:"restricted_package_name"`
	Data                  map[string]string      `json:"data"`
	Notification          *v1AndroidNotification `json:"notification"`
	FCMOptions            *v1FCMOptions          `json:"fcm_options"`
	DirectBootOK          bool                   `json:"direct_boot_ok"`
}

type v1AndroidNotification struct {
	Title                 string          `json:"title"`
	Body                  string          `json:"body"`
	Icon                  string          `json:"icon"`
	Color                 string          `json:"color"`
	Sound                 string          `json:"sound"`
	Tag                   string          `json:"tag"`
	ClickAction           string          `json:"click_action"`
	BodyLocKey            string          `json:"body_loc_key"`
	BodyLocArgs           []string        `json:"body_loc_args"`
	TitleLocKey           string          `json:"title_loc_key"`
	TitleLocArgs          []string        `json:"title_loc_args"`
	ChannelID             string          `json:"channel_id"`
	Image                 string          `json:"image"`
	Ticker                string          `json:"ticker"`
	Sticky                bool            `json:"sticky"`
	EventTime             string          `json:"event_time"`
	LocalOnly             bool            `json:"local_only"`
	NotificationPriority  string          `json:"notification_priority"`
	DefaultSound          bool            `json:"default_sound"`
	DefaultVibrateTimings bool            `json:"default_vibrate_timings"`
	DefaultLightSettings  bool            `json:"default_light_settings"`
	VibrateTimings        []string        `json:"vibrate_timings"`
	Visibility            string          `json:"visibility"`
	NotificationCount     *int            `json:"notification_count"`
	LightSettings         json.RawMessage `json:"light_settings"`
	Proxy                 string          `json:"proxy"`
}

type v1APNs struct {
	Headers           map[string]string `json:"headers"`
	Payload           json.RawMessage   `json:"payload"`
	FCMOptions        *v1APNsOptions    `json:"fcm_options"`
	LiveActivityToken string            `json:"live_activity_token"`
}

type v1APNsOptions struct {
	AnalyticsLabel string `json:"analytics_label"`
	Image          string `json:"image"`
}

type v1FCMOptions struct {
	AnalyticsLabel string `json:"analytics_label"`
}

// MaxPayloadBytes is FCM's limit on a message's payload. The emulator
// counts, as the FCM documentation describes it ("keys and values
// included"), the data keys and values plus the notification title and body
// (top-level and Android) for Android delivery, and the data plus the APNs
// payload JSON for APNs delivery; each must fit.
const MaxPayloadBytes = 4096

// maxTTL is FCM's longest (and default) Android TTL: 4 weeks.
const maxTTL = 28 * 24 * time.Hour

var (
	// tokenRE accepts FCM registration tokens (Base64url text with ':'
	// separating the instance id); FCM answers anything else with
	// INVALID_ARGUMENT on message.token.
	tokenRE    = regexp.MustCompile(`^[A-Za-z0-9_:-]+$`)
	topicRE    = regexp.MustCompile(`^[a-zA-Z0-9-_.~%]+$`)
	ttlRE      = regexp.MustCompile(`^(\d+)(\.\d{1,9})?s$`)
	colorRE    = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)
	durationRE = regexp.MustCompile(`^\d+(\.\d{1,9})?s$`)
)

var (
	androidPriorities      = set("normal", "high", "NORMAL", "HIGH")
	notificationPriorities = set("PRIORITY_UNSPECIFIED", "PRIORITY_MIN", "PRIORITY_LOW", "PRIORITY_DEFAULT", "PRIORITY_HIGH", "PRIORITY_MAX")
	visibilities           = set("VISIBILITY_UNSPECIFIED", "PRIVATE", "PUBLIC", "SECRET")
	proxies                = set("PROXY_UNSPECIFIED", "ALLOW", "DENY", "IF_PRIORITY_LOWERED")
	apnsPriorities         = set("10", "5", "1")
	apnsPushTypes          = set("alert", "background", "location", "voip", "complication", "fileprovider", "mdm", "liveactivity", "pushtotalk")
)

func set(vs ...string) map[string]bool {
	m := make(map[string]bool, len(vs))
	for _, v := range vs {
		m[v] = true
	}
	return m
}

// parseSend decodes and checks a messages:send body. It returns the request
// it could decode even with an error, so that the answer can be accounted to
// the token.
func parseSend(body []byte) (*sendRequest, *apiError) {
	var req sendRequest
	if e := decodeStrict(body, &req, ""); e != nil {
		return nil, e
	}
	if len(req.RawMessage) == 0 || string(req.RawMessage) == "null" {
		return &req, invalidArgument("message", "Missing required field: message")
	}
	var m v1Message
	if e := decodeStrict(req.RawMessage, &m, "message"); e != nil {
		return &req, e
	}
	req.Message = &m
	var buf bytes.Buffer
	json.Compact(&buf, req.RawMessage)
	req.raw = buf.Bytes()
	return &req, m.validate()
}

// decodeStrict decodes one JSON value, refusing unknown members and
// trailing data, and words a type error as Google does.
func decodeStrict(data []byte, v any, root string) *apiError {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("trailing data after the JSON value")
	}
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := strings.TrimPrefix(root+"."+te.Field, ".")
		return invalidArgument(field, fmt.Sprintf("Invalid value at '%s' (%s), %s", field, protoType(te.Type.String()), te.Value))
	}
	return invalidArgument(root, "Invalid JSON payload received. "+err.Error())
}

// protoType names a Go type as the proto field type Google's error
// messages quote.
func protoType(goType string) string {
	switch goType {
	case "string":
		return "TYPE_STRING"
	case "bool":
		return "TYPE_BOOL"
	case "int", "*int":
		return "TYPE_INT32"
	}
	return "type " + goType
}

// validate checks what the schema alone cannot.
func (m *v1Message) validate() *apiError {
	targets := 0
	for _, t := range []string{m.Token, m.Topic, m.Condition} {
		if t != "" {
			targets++
		}
	}
	if targets != 1 {
		return invalidArgument("message", "Exactly one of message.token, message.topic or message.condition must be set")
	}
	if m.Token != "" && (len(m.Token) > 4096 || !tokenRE.MatchString(m.Token)) {
		return faultError(InvalidArgument, "message.token", 0)
	}
	if m.Topic != "" && !topicRE.MatchString(strings.TrimPrefix(m.Topic, "/topics/")) {
		return invalidArgument("message.topic", "Invalid topic name: "+m.Topic)
	}
	if e := checkDataKeys("message.data", m.Data); e != nil {
		return e
	}
	if a := m.Android; a != nil {
		if e := a.validate(); e != nil {
			return e
		}
	}
	if a := m.APNs; a != nil {
		if e := a.validate(); e != nil {
			return e
		}
	}
	return m.checkSize()
}

// checkDataKeys refuses the keys FCM reserves: "from", "message_type" and
// anything starting with "google" or "gcm".
func checkDataKeys(field string, data map[string]string) *apiError {
	for k := range data {
		if k == "" || k == "from" || k == "message_type" || strings.HasPrefix(k, "google") || strings.HasPrefix(k, "gcm") {
			return invalidArgument(field, "Invalid data payload key: "+k)
		}
	}
	return nil
}

func (a *v1Android) validate() *apiError {
	if a.Priority != "" && !androidPriorities[a.Priority] {
		return invalidArgument("message.android.priority", fmt.Sprintf("Invalid value at 'message.android.priority' (type.googleapis.com/google.firebase.fcm.v1.AndroidMessagePriority), %q", a.Priority))
	}
	if a.TTL != nil {
		g := ttlRE.FindStringSubmatch(*a.TTL)
		if g == nil {
			return invalidArgument("message.android.ttl", fmt.Sprintf("Invalid value at 'message.android.ttl' (type.googleapis.com/google.protobuf.Duration), %q", *a.TTL))
		}
		secs, err := strconv.ParseInt(g[1], 10, 64)
		frac := strings.Trim(g[2], ".0")
		if err != nil || secs > int64(maxTTL/time.Second) || (secs == int64(maxTTL/time.Second) && frac != "") {
			return invalidArgument("message.android.ttl", "TTL must be at most 4 weeks (2419200s): "+*a.TTL)
		}
	}
	if e := checkDataKeys("message.android.data", a.Data); e != nil {
		return e
	}
	n := a.Notification
	if n == nil {
		return nil
	}
	const f = "message.android.notification."
	switch {
	case n.Color != "" && !colorRE.MatchString(n.Color):
		return invalidArgument(f+"color", "Invalid color: "+n.Color+"; want #rrggbb")
	case n.NotificationPriority != "" && !notificationPriorities[n.NotificationPriority]:
		return invalidArgument(f+"notification_priority", "Invalid notification_priority: "+n.NotificationPriority)
	case n.Visibility != "" && !visibilities[n.Visibility]:
		return invalidArgument(f+"visibility", "Invalid visibility: "+n.Visibility)
	case n.Proxy != "" && !proxies[n.Proxy]:
		return invalidArgument(f+"proxy", "Invalid proxy: "+n.Proxy)
	case n.NotificationCount != nil && *n.NotificationCount < 0:
		return invalidArgument(f+"notification_count", "notification_count must not be negative")
	case len(n.TitleLocArgs) > 0 && n.TitleLocKey == "":
		return invalidArgument(f+"title_loc_key", "title_loc_key is required with title_loc_args")
	case len(n.BodyLocArgs) > 0 && n.BodyLocKey == "":
		return invalidArgument(f+"body_loc_key", "body_loc_key is required with body_loc_args")
	}
	if n.EventTime != "" {
		if _, err := time.Parse(time.RFC3339Nano, n.EventTime); err != nil {
			return invalidArgument(f+"event_time", "Invalid timestamp: "+n.EventTime)
		}
	}
	for i, d := range n.VibrateTimings {
		if !durationRE.MatchString(d) {
			return invalidArgument(fmt.Sprintf("%svibrate_timings[%d]", f, i), "Invalid duration: "+d)
		}
	}
	return nil
}

func (a *v1APNs) validate() *apiError {
	const f = "message.apns."
	for k, v := range a.Headers {
		switch strings.ToLower(k) {
		case "apns-priority":
			if !apnsPriorities[v] {
				return invalidArgument(f+"headers", "Invalid apns-priority: "+v)
			}
		case "apns-expiration":
			if _, err := strconv.ParseUint(v, 10, 63); err != nil {
				return invalidArgument(f+"headers", "Invalid apns-expiration: "+v)
			}
		case "apns-push-type":
			if !apnsPushTypes[v] {
				return invalidArgument(f+"headers", "Invalid apns-push-type: "+v)
			}
		case "apns-collapse-id":
			if len(v) > 64 {
				return invalidArgument(f+"headers", "apns-collapse-id exceeds 64 bytes")
			}
		}
	}
	if len(a.Payload) == 0 {
		return nil
	}
	var payload map[string]json.RawMessage
	if err := json.Unmarshal(a.Payload, &payload); err != nil || payload == nil {
		return invalidArgument(f+"payload", "apns.payload must be a JSON object")
	}
	if aps, ok := payload["aps"]; ok {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(aps, &obj); err != nil || obj == nil {
			return invalidArgument(f+"payload.aps", "aps must be a JSON object")
		}
		if b, ok := obj["badge"]; ok {
			var n int
			if err := json.Unmarshal(b, &n); err != nil || n < 0 {
				return invalidArgument(f+"payload.aps.badge", "badge must be a non-negative integer")
			}
		}
	}
	return nil
}

// checkSize applies MaxPayloadBytes to the Android and the APNs delivery.
func (m *v1Message) checkSize() *apiError {
	data := dataSize(m.Data)
	android := data
	if m.Android != nil && m.Android.Data != nil {
		android = dataSize(m.Android.Data)
	}
	if n := m.Notification; n != nil {
		android += len(n.Title) + len(n.Body)
	}
	if m.Android != nil && m.Android.Notification != nil {
		android += len(m.Android.Notification.Title) + len(m.Android.Notification.Body)
	}
	apns := data
	if m.APNs != nil && len(m.APNs.Payload) > 0 {
		var buf bytes.Buffer
		json.Compact(&buf, m.APNs.Payload)
		apns += buf.Len()
	}
	if size := max(android, apns); size > MaxPayloadBytes {
		return invalidArgument("message", fmt.Sprintf("Message is too big: %d bytes, limit %d", size, MaxPayloadBytes))
	}
	return nil
}

func dataSize(data map[string]string) int {
	n := 0
	for k, v := range data {
		n += len(k) + len(v)
	}
	return n
}

// texts returns the title and body a device would show.
func (m *v1Message) texts() (string, string) {
	if a := m.Android; a != nil && a.Notification != nil && (a.Notification.Title != "" || a.Notification.Body != "") {
		return a.Notification.Title, a.Notification.Body
	}
	if n := m.Notification; n != nil {
		return n.Title, n.Body
	}
	if m.APNs != nil && len(m.APNs.Payload) > 0 {
		var p struct {
			Aps struct {
				Alert json.RawMessage `json:"alert"`
			} `json:"aps"`
		}
		var alert struct{ Title, Body string }
		if json.Unmarshal(m.APNs.Payload, &p) == nil && json.Unmarshal(p.Aps.Alert, &alert) == nil {
			return alert.Title, alert.Body
		}
	}
	return m.Data["title"], m.Data["body"]
}

// priority returns the Android priority, else the APNs one.
func (m *v1Message) priority() string {
	if m.Android != nil && m.Android.Priority != "" {
		return m.Android.Priority
	}
	if m.APNs != nil {
		if p := m.APNs.Headers["apns-priority"]; p != "" {
			return "apns-" + p
		}
	}
	return ""
}
