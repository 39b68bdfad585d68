package huaweiemu

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Request is the body of POST /v1/{appId}/messages:send as Huawei documents
// it (VENDORS.md §4, HMS Core "Sending Downlink Messages"). Decoding is
// strict: a member Huawei does not document is refused, so a misspelt or
// camelCased field fails here instead of being ignored on the phone.
type Request struct {
	ValidateOnly bool     `json:"validate_only"`
	Message      *Message `json:"message"`
}

// Message is the message object. Apns and Webpush are accepted unchecked:
// this service never sends them.
type Message struct {
	Data         *string          `json:"data"`
	Notification *Notification    `json:"notification"`
	Android      *AndroidConfig   `json:"android"`
	Apns         json.RawMessage  `json:"apns"`
	Webpush      json.RawMessage  `json:"webpush"`
	Review       []map[string]any `json:"review"`
	Token        []string         `json:"token"`
	Topic        string           `json:"topic"`
	Condition    string           `json:"condition"`
}

// Notification is message.notification.
type Notification struct {
	Title string `json:"title"`
	Body  string `json:"body"`
	Image string `json:"image"`
}

// AndroidConfig is message.android.
type AndroidConfig struct {
	CollapseKey    *int                 `json:"collapse_key"`
	Urgency        string               `json:"urgency"`
	Category       string               `json:"category"`
	TTL            string               `json:"ttl"`
	BiTag          string               `json:"bi_tag"`
	ReceiptID      string               `json:"receipt_id"`
	TargetUserType int                  `json:"target_user_type"`
	FastAppTarget  int                  `json:"fast_app_target"`
	Data           *string              `json:"data"`
	Notification   *AndroidNotification `json:"notification"`
}

// AndroidNotification is message.android.notification.
type AndroidNotification struct {
	Title             string          `json:"title"`
	Body              string          `json:"body"`
	Icon              string          `json:"icon"`
	Color             string          `json:"color"`
	Sound             string          `json:"sound"`
	DefaultSound      bool            `json:"default_sound"`
	Tag               string          `json:"tag"`
	ClickAction       *ClickAction    `json:"click_action"`
	BodyLocKey        string          `json:"body_loc_key"`
	BodyLocArgs       []string        `json:"body_loc_args"`
	TitleLocKey       string          `json:"title_loc_key"`
	TitleLocArgs      []string        `json:"title_loc_args"`
	MultiLangKey      json.RawMessage `json:"multi_lang_key"`
	ChannelID         string          `json:"channel_id"`
	NotifySummary     string          `json:"notify_summary"`
	Image             string          `json:"image"`
	Style             int             `json:"style"`
	BigTitle          string          `json:"big_title"`
	BigBody           string          `json:"big_body"`
	AutoClear         int             `json:"auto_clear"`
	NotifyID          *json.Number    `json:"notify_id"`
	Group             string          `json:"group"`
	Badge             *Badge          `json:"badge"`
	Ticker            string          `json:"ticker"`
	When              string          `json:"when"`
	LocalOnly         bool            `json:"local_only"`
	Importance        string          `json:"importance"`
	UseDefaultVibrate bool            `json:"use_default_vibrate"`
	UseDefaultLight   bool            `json:"use_default_light"`
	VibrateConfig     []string        `json:"vibrate_config"`
	Visibility        string          `json:"visibility"`
	LightSettings     json.RawMessage `json:"light_settings"`
	ForegroundShow    *bool           `json:"foreground_show"`
	InboxContent      []string        `json:"inbox_content"`
	Buttons           json.RawMessage `json:"buttons"`
	ProfileID         string          `json:"profile_id"`
}

// ClickAction is android.notification.click_action.
type ClickAction struct {
	Type         int    `json:"type"`
	Intent       string `json:"intent"`
	Action       string `json:"action"`
	URL          string `json:"url"`
	RichResource string `json:"rich_resource"`
}

// Badge is android.notification.badge.
type Badge struct {
	AddNum *int   `json:"add_num"`
	SetNum *int   `json:"set_num"`
	Class  string `json:"class"`
}

// Huawei's limits and vocabularies.
const (
	maxTokens       = 1000
	maxMessageBytes = 4096
	maxTTLSeconds   = 1296000 // 15 days
)

var (
	categories = map[string]bool{
		"IM": true, "VOIP": true, "SUBSCRIPTION": true, "TRAVEL": true, "HEALTH": true,
		"WORK": true, "ACCOUNT": true, "EXPRESS": true, "FINANCE": true,
		"DEVICE_REMINDER": true, "SYSTEM_REMINDER": true, "MAIL": true,
		"PLAY_VOICE": true, "MARKETING": true,
	}
	// ttlPattern is a duration in seconds with up to nine decimals and an
	// optional "s", as Huawei's server SDKs check it.
	ttlPattern = regexp.MustCompile(`^\d+(\.\d{1,9})?s?$`)
)

// rejection is a refusal with Huawei's HTTP status, business code and msg.
type rejection struct {
	status     int
	code       string
	msg        string
	retryAfter time.Duration
}

func reject(status int, code, format string, args ...any) *rejection {
	return &rejection{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

// decode parses and checks a send request body. Body size counts the
// message as it would reach a phone, so the token list is left out.
func decode(body []byte) (*Request, *rejection) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	var r Request
	if err := dec.Decode(&r); err != nil {
		return nil, reject(400, "80100003", "Illegal payload, %v", err)
	}
	if dec.More() {
		return nil, reject(400, "80100003", "Illegal payload, trailing data")
	}
	if r.Message == nil {
		return nil, reject(400, "80100003", "Illegal payload, message is required")
	}
	m := r.Message
	targets := 0
	if m.Token != nil {
		targets++
	}
	if m.Topic != "" {
		targets++
	}
	if m.Condition != "" {
		targets++
	}
	if targets != 1 {
		return nil, reject(400, "80100001", "Check Parameter Error, exactly one of token, topic and condition is required")
	}
	if m.Token != nil && (len(m.Token) < 1 || len(m.Token) > maxTokens) {
		return nil, reject(400, "80300010", "The number of tokens in the message body exceeds the default value")
	}
	for i, t := range m.Token {
		if t == "" || strings.TrimSpace(t) != t {
			return nil, reject(400, "80100001", "Check Parameter Error, token[%d] is empty or padded", i)
		}
	}
	if n := messageSize(body); n > maxMessageBytes {
		return nil, reject(400, "80300008", "The message body size exceeds the default value, %d > %d bytes", n, maxMessageBytes)
	}
	if rej := checkMessage(m); rej != nil {
		return nil, rej
	}
	return &r, nil
}

// messageSize is the size of the request's message object, compacted and
// without its token member.
func messageSize(body []byte) int {
	var outer struct {
		Message map[string]json.RawMessage `json:"message"`
	}
	if json.Unmarshal(body, &outer) != nil {
		return 0
	}
	delete(outer.Message, "token")
	var buf bytes.Buffer
	for k, v := range outer.Message {
		buf.WriteString(strconv.Quote(k))
		if err := json.Compact(&buf, v); err != nil {
			buf.Write(v)
		}
	}
	// Braces, colons and commas.
	return buf.Len() + 2 + 2*len(outer.Message) - 1
}

func checkMessage(m *Message) *rejection {
	a := m.Android
	notified := m.Notification != nil && (m.Notification.Title != "" || m.Notification.Body != "")
	if a != nil {
		if a.CollapseKey != nil && (*a.CollapseKey < -1 || *a.CollapseKey > 100) {
			return reject(400, "80100013", "collapse_key is illegal, it must be in [-1, 100]")
		}
		if a.Urgency != "" && a.Urgency != "HIGH" && a.Urgency != "NORMAL" {
			return reject(400, "80100001", "Check Parameter Error, urgency must be HIGH or NORMAL")
		}
		if a.Category != "" && !categories[a.Category] {
			return reject(400, "80100001", "Check Parameter Error, category %q is not supported", a.Category)
		}
		if a.TTL != "" {
			if !ttlPattern.MatchString(a.TTL) {
				return reject(400, "80100004", "The message ttl is illegal, %q", a.TTL)
			}
			secs, _ := new(big.Float).SetString(strings.TrimSuffix(a.TTL, "s"))
			if secs == nil || secs.Cmp(big.NewFloat(maxTTLSeconds)) > 0 {
				return reject(400, "80100004", "The message ttl is illegal, at most %ds", maxTTLSeconds)
			}
		}
		if a.TargetUserType != 0 && a.TargetUserType != 1 {
			return reject(400, "80100001", "Check Parameter Error, target_user_type must be 0 or 1")
		}
		if n := a.Notification; n != nil {
			if rej := checkAndroidNotification(n); rej != nil {
				return rej
			}
			notified = notified || n.Title != "" || n.Body != ""
		}
	}
	isNotification := m.Notification != nil || (a != nil && a.Notification != nil)
	if isNotification && !notified {
		return reject(400, "80100003", "Illegal payload, a notification needs a title or body")
	}
	for _, d := range []*string{m.Data, dataOf(a)} {
		if d == nil || !isNotification {
			continue
		}
		// A notification message carries its data as a JSON string.
		var obj map[string]any
		if json.Unmarshal([]byte(*d), &obj) != nil {
			return reject(400, "80100003", "Illegal payload, data of a notification message must be a JSON object string")
		}
	}
	return nil
}

func dataOf(a *AndroidConfig) *string {
	if a == nil {
		return nil
	}
	return a.Data
}

func checkAndroidNotification(n *AndroidNotification) *rejection {
	c := n.ClickAction
	if c == nil {
		return reject(400, "80100003", "Illegal payload, click_action is required in android.notification")
	}
	switch c.Type {
	case 1:
		if c.Intent == "" && c.Action == "" {
			return reject(400, "80100003", "Illegal payload, click_action type 1 needs intent or action")
		}
	case 2:
		if !strings.HasPrefix(c.URL, "https://") {
			return reject(400, "80100003", "Illegal payload, click_action type 2 needs an https url")
		}
	case 3:
	case 4:
		if c.RichResource == "" {
			return reject(400, "80100003", "Illegal payload, click_action type 4 needs rich_resource")
		}
	default:
		return reject(400, "80100003", "Illegal payload, click_action type must be 1 to 4")
	}
	if n.Importance != "" && n.Importance != "LOW" && n.Importance != "NORMAL" && n.Importance != "HIGH" {
		return reject(400, "80100001", "Check Parameter Error, importance must be LOW, NORMAL or HIGH")
	}
	if n.Style == 1 && (n.BigTitle == "" || n.BigBody == "") {
		return reject(400, "80100003", "Illegal payload, style 1 needs big_title and big_body")
	}
	if n.Sound != "" && !strings.HasPrefix(n.Sound, "/raw/") {
		return reject(400, "80100001", "Check Parameter Error, sound must be a file under /raw/")
	}
	if n.NotifyID != nil {
		id, err := n.NotifyID.Int64()
		if err != nil || id < -1 || id > 2147483647 {
			return reject(400, "80100001", "Check Parameter Error, notify_id must be an int32")
		}
	}
	if b := n.Badge; b != nil {
		if b.Class == "" {
			return reject(400, "80100003", "Illegal payload, badge class is required")
		}
		if b.AddNum != nil && (*b.AddNum < 1 || *b.AddNum > 99) {
			return reject(400, "80100003", "Illegal payload, badge add_num value ranges from 1 to 99")
		}
		if b.SetNum != nil && (*b.SetNum < 0 || *b.SetNum > 99) {
			return reject(400, "80100003", "Illegal payload, badge set_num value ranges from 0 to 99")
		}
		if b.AddNum == nil && b.SetNum == nil {
			return reject(400, "80100003", "Illegal payload, badge needs add_num or set_num")
		}
	}
	return nil
}
