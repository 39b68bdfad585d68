package oppoemu

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits from OPPO's documentation.
const (
	maxMessages      = 1000
	timestampWindow  = 10 * time.Minute
	maxTitle         = 50
	maxSubTitle      = 10
	maxContentStyle1 = 50 // standard style; one copy of the page says 200, the 2024 table 50: the stricter applies
	maxContentStyle2 = 128
	maxActionParams  = 4000
	maxActivity      = 500
	maxURL           = 2000
	maxCallbackParam = 100
	maxShowTTL       = 24 * 60 * 60
	maxBody          = 8 << 20
)

// categories are OPPO's message categories (developmentDoc id=13189):
// communication and service, then content and marketing.
var categories = map[string]bool{
	"IM": true, "ACCOUNT": true, "DEVICE_REMINDER": true, "ORDER": true, "TODO": true, "SUBSCRIPTION": true,
	"NEWS": true, "CONTENT": true, "MARKETING": true, "SOCIAL": true,
}

// Notification is the notification body of a message, with every member
// OPPO's parameter table names. A member outside this list is refused.
type Notification struct {
	AppMessageID        string `json:"app_message_id,omitempty"`
	Style               int    `json:"style,omitempty"`
	BigPictureID        string `json:"big_picture_id,omitempty"`
	SmallPictureID      string `json:"small_picture_id,omitempty"`
	Title               string `json:"title"`
	SubTitle            string `json:"sub_title,omitempty"`
	Content             string `json:"content"`
	ClickActionType     int    `json:"click_action_type,omitempty"`
	ClickActionActivity string `json:"click_action_activity,omitempty"`
	ClickActionURL      string `json:"click_action_url,omitempty"`
	ActionParameters    string `json:"action_parameters,omitempty"`
	ShowTimeType        int    `json:"show_time_type,omitempty"`
	ShowStartTime       int64  `json:"show_start_time,omitempty"`
	ShowEndTime         int64  `json:"show_end_time,omitempty"`
	// OffLine is nil when absent (OPPO then stores the push).
	OffLine              *bool  `json:"off_line,omitempty"`
	OffLineTTL           int64  `json:"off_line_ttl,omitempty"`
	PushTimeType         int    `json:"push_time_type,omitempty"`
	PushStartTime        int64  `json:"push_start_time,omitempty"`
	TimeZone             string `json:"time_zone,omitempty"`
	FixSpeed             bool   `json:"fix_speed,omitempty"`
	FixSpeedRate         int64  `json:"fix_speed_rate,omitempty"`
	NetworkType          int    `json:"network_type,omitempty"`
	CallBackURL          string `json:"call_back_url,omitempty"`
	CallBackParameter    string `json:"call_back_parameter,omitempty"`
	ChannelID            string `json:"channel_id,omitempty"`
	ShowTTL              int64  `json:"show_ttl,omitempty"`
	NotifyID             int64  `json:"notify_id,omitempty"`
	Category             string `json:"category,omitempty"`
	NotifyLevel          int    `json:"notify_level,omitempty"`
	PrivateMsgTemplateID string `json:"private_msg_template_id,omitempty"`
	PrivateTitleParams   string `json:"private_title_parameters,omitempty"`
	PrivateContentParams string `json:"private_content_parameters,omitempty"`
}

// wireMessage is one element of messages, with pointers to tell absent
// members from zero ones.
type wireMessage struct {
	TargetType           *int          `json:"target_type"`
	TargetValue          *string       `json:"target_value"`
	VerifyRegistrationID *bool         `json:"verify_registration_id"`
	Notification         *Notification `json:"notification"`
}

// readForm parses an application/x-www-form-urlencoded body in UTF-8.
func readForm(r *http.Request) (url.Values, *answer) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, &answer{Code: CodeMissingArgs, Message: "Missing Required Arguments: the body must be application/x-www-form-urlencoded"}
	}
	if cs := params["charset"]; cs != "" && !strings.EqualFold(cs, "utf-8") {
		return nil, &answer{Code: 25, Message: "Invalid Encoding"}
	}
	r.Body = http.MaxBytesReader(nil, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		return nil, &answer{Code: CodeInvalidArgs, Message: "Invalid Arguments: unreadable form"}
	}
	for _, vs := range r.PostForm {
		for _, v := range vs {
			if !utf8.ValidString(v) {
				return nil, &answer{Code: 25, Message: "Invalid Encoding"}
			}
		}
	}
	return r.PostForm, nil
}

// auth checks app_key, timestamp and sign, and issues an auth_token.
func (s *Server) auth(f url.Values) answer {
	appKey, ts, sign := f.Get("app_key"), f.Get("timestamp"), f.Get("sign")
	switch {
	case appKey == "":
		return answer{Code: CodeMissingAppKey, Message: "Missing App Key"}
	case ts == "":
		return answer{Code: CodeMissingTime, Message: "Missing Timestamp"}
	case sign == "":
		return answer{Code: CodeMissingSign, Message: "Missing Signature"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	secret, ok := s.apps[appKey]
	if !ok {
		return answer{Code: CodeInvalidAppKey, Message: "Invalid App Key"}
	}
	now := s.opts.Now()
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(ts) != 13 {
		return answer{Code: CodeInvalidTime, Message: "Invalid Timestamp: 13-digit milliseconds expected"}
	}
	if d := now.Sub(time.UnixMilli(ms)); d > timestampWindow || d < -timestampWindow {
		return answer{Code: CodeInvalidTime, Message: "Invalid Timestamp: more than 10 minutes away"}
	}
	// sign = hex(sha256(app_key + timestamp + master_secret)).
	h := sha256.New()
	h.Write([]byte(appKey))
	h.Write([]byte(ts))
	h.Write([]byte(secret))
	want := hex.EncodeToString(h.Sum(nil))
	if subtle.ConstantTimeCompare([]byte(strings.ToLower(sign)), []byte(want)) != 1 {
		return answer{Code: CodeInvalidSign, Message: "Invalid Signature"}
	}
	tok := newID(24)
	s.tokens[tok] = token{appKey: appKey, expires: now.Add(s.opts.TokenLifetime)}
	s.mints++
	return answer{Code: CodeOK, Message: "Success", Data: map[string]any{"auth_token": tok, "create_time": now.UnixMilli()}}
}

// itemAnswer is one element of a batch answer's data.
type itemAnswer struct {
	MessageID      string `json:"messageId"`
	RegistrationID string `json:"registrationId"`
	ErrorCode      int    `json:"errorCode,omitempty"`
	ErrorMessage   string `json:"errorMessage,omitempty"`
}

// batch checks and accepts a unicast_batch request.
func (s *Server) batch(f url.Values) answer {
	tok := f.Get("auth_token")
	if tok == "" {
		return answer{Code: CodeMissingToken, Message: "Missing Auth Token"}
	}
	s.mu.Lock()
	t, ok := s.tokens[tok]
	now := s.opts.Now()
	if !ok || !now.Before(t.expires) {
		s.mu.Unlock()
		return answer{Code: CodeInvalidToken, Message: "Invalid AuthToken"}
	}
	if len(s.failNext) > 0 {
		code := s.failNext[0]
		s.failNext = s.failNext[1:]
		if code != CodeOK {
			s.mu.Unlock()
			return answer{Code: code, Message: "emulated fault"}
		}
	}
	for _, fault := range []struct {
		share float64
		code  int
		msg   string
	}{
		{s.shares.FlowControl, CodeFlowControl, "Service in Flow Control"},
		{s.shares.Unavailable, CodeUnavailable, "Service Currently Unavailable"},
	} {
		if fault.share > 0 && s.rnd.Float64() < fault.share {
			s.mu.Unlock()
			return answer{Code: fault.code, Message: fault.msg}
		}
	}
	s.mu.Unlock()

	raw := f.Get("messages")
	if raw == "" {
		return answer{Code: CodeMissingArgs, Message: "Missing Required Arguments: messages"}
	}
	var elems []json.RawMessage
	if err := json.Unmarshal([]byte(raw), &elems); err != nil {
		return answer{Code: CodeInvalidArgs, Message: "Invalid Arguments: messages is not a JSON array"}
	}
	if len(elems) == 0 || len(elems) > maxMessages {
		return answer{Code: CodeInvalidArgs, Message: fmt.Sprintf("Invalid Arguments: messages holds %d elements, 1 to %d allowed", len(elems), maxMessages)}
	}
	msgs := make([]wireMessage, len(elems))
	for i, e := range elems {
		if a := checkMessage(e, &msgs[i]); a != nil {
			a.Message = fmt.Sprintf("%s (messages[%d])", a.Message, i)
			return *a
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	items := make([]itemAnswer, len(msgs))
	for i, m := range msgs {
		regID := *m.TargetValue
		items[i] = itemAnswer{MessageID: t.appKey + "-1-1-" + newID(12), RegistrationID: regID}
		if code, bad := s.failTok[regID]; bad {
			items[i].ErrorCode, items[i].ErrorMessage = code, errorMessage(code)
			continue
		}
		n := m.Notification
		if n.AppMessageID != "" {
			key := n.AppMessageID + "\x00" + regID
			if s.seen[key] {
				continue // OPPO pushes one app_message_id to a target once
			}
			s.seen[key] = true
		}
		p := Push{
			AppKey:       t.appKey,
			Token:        regID,
			TargetType:   *m.TargetType,
			Verify:       m.VerifyRegistrationID != nil && *m.VerifyRegistrationID,
			Notification: *n,
			Message:      elems[i],
			MessageID:    items[i].MessageID,
			Received:     now,
		}
		s.received = append(s.received, p)
		s.print(&p)
	}
	return answer{Code: CodeOK, Message: "success", Data: items}
}

func errorMessage(code int) string {
	if code == CodeInvalidRegID {
		return "Invalid Registration_id"
	}
	return "emulated fault"
}

// checkMessage decodes and checks one message element into m.
func checkMessage(raw json.RawMessage, m *wireMessage) *answer {
	invalid := func(format string, args ...any) *answer {
		return &answer{Code: CodeInvalidArgs, Message: "Invalid Arguments: " + fmt.Sprintf(format, args...)}
	}
	missing := func(name string) *answer {
		return &answer{Code: CodeMissingArgs, Message: "Missing Required Arguments: " + name}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(m); err != nil {
		return invalid("%v", err)
	}
	switch {
	case m.TargetType == nil:
		return missing("target_type")
	case *m.TargetType != 2 && *m.TargetType != 5:
		return invalid("target_type %d (2: registration_id, 5: alias)", *m.TargetType)
	case m.TargetValue == nil || *m.TargetValue == "":
		return missing("target_value")
	case strings.Contains(*m.TargetValue, ","):
		return invalid("target_value takes one target")
	case m.Notification == nil:
		return missing("notification")
	}
	n := m.Notification
	if n.Title == "" {
		return missing("notification.title")
	}
	if n.Content == "" {
		return missing("notification.content")
	}
	maxContent := maxContentStyle1
	switch n.Style {
	case 0, 1:
	case 2:
		maxContent = maxContentStyle2
	case 3:
		return invalid("style 3 (big picture) is for broadcasts only")
	default:
		return invalid("style %d", n.Style)
	}
	// OPPO counts every character as one, Chinese, Latin or emoji alike.
	for _, c := range []struct {
		name  string
		value string
		max   int
	}{
		{"title", n.Title, maxTitle},
		{"sub_title", n.SubTitle, maxSubTitle},
		{"content", n.Content, maxContent},
		{"click_action_activity", n.ClickActionActivity, maxActivity},
		{"click_action_url", n.ClickActionURL, maxURL},
		{"action_parameters", n.ActionParameters, maxActionParams},
		{"call_back_parameter", n.CallBackParameter, maxCallbackParam},
	} {
		if k := utf8.RuneCountInString(c.value); k > c.max {
			return invalid("notification.%s has %d characters, at most %d allowed", c.name, k, c.max)
		}
	}
	switch n.ClickActionType {
	case 0:
	case 1, 4:
		if n.ClickActionActivity == "" {
			return missing("notification.click_action_activity")
		}
	case 2, 5:
		if n.ClickActionURL == "" {
			return missing("notification.click_action_url")
		}
	default:
		return invalid("click_action_type %d", n.ClickActionType)
	}
	if n.ActionParameters != "" {
		var obj map[string]any
		if json.Unmarshal([]byte(n.ActionParameters), &obj) != nil {
			return invalid("action_parameters is not a JSON object")
		}
	}
	if n.OffLineTTL < 0 {
		return invalid("off_line_ttl %d", n.OffLineTTL)
	}
	if n.ShowTTL < 0 || n.ShowTTL > maxShowTTL {
		return invalid("show_ttl %d", n.ShowTTL)
	}
	if n.NotifyID < 0 || n.NotifyID > 1<<31-1 {
		return invalid("notify_id %d", n.NotifyID)
	}
	if n.NetworkType != 0 && n.NetworkType != 1 {
		return invalid("network_type %d", n.NetworkType)
	}
	if n.Category != "" && !categories[n.Category] {
		return &answer{Code: CodeCategory, Message: "Category error: " + n.Category}
	}
	switch n.NotifyLevel {
	case 0:
	case 1, 2, 16:
		if n.Category == "" {
			return &answer{Code: CodeCategory, Message: "notify_level needs category"}
		}
	default:
		return &answer{Code: CodeCategory, Message: fmt.Sprintf("notify_level %d", n.NotifyLevel)}
	}
	return nil
}
