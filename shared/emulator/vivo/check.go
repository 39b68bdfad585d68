package vivoemu

import (
	"bytes"
	"crypto/md5"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
)

// Limits from vivo's documentation.
const (
	maxBody         = 1 << 20
	timestampWindow = 10 * time.Minute
	maxTitleWidth   = 40
	maxContentWidth = 100
	// timeToLive: sources give 60 s or 900 s up to one or seven days; the
	// 2024 revision says 60 s to one day, the narrowest reading.
	minTTL          = 60
	maxTTL          = 24 * 60 * 60
	maxSkipContent  = 1024
	maxCustomPairs  = 10
	maxCustomChars  = 1024
	maxRequestID    = 64
	maxRegID        = 64
	minListRegIDs   = 2
	maxListRegIDs   = 1000
	maxNotifyID     = 1<<31 - 1
	maxCallback     = 128
	maxCallbackPara = 64
)

// systemCategories need classification 1; operational ones 0.
var (
	systemCategories      = map[string]bool{"IM": true, "ACCOUNT": true, "TODO": true, "DEVICE_REMINDER": true, "ORDER": true, "SUBSCRIPTION": true}
	operationalCategories = map[string]bool{"NEWS": true, "CONTENT": true, "MARKETING": true, "SOCIAL": true}
)

// Message is the body of /message/send and /message/saveListPayload, with
// every member vivo documents. A member outside this list is refused.
type Message struct {
	AppID           json.Number       `json:"appId"`
	RegID           string            `json:"regId,omitempty"`
	Alias           string            `json:"alias,omitempty"`
	NotifyType      int               `json:"notifyType"`
	Title           string            `json:"title"`
	Content         string            `json:"content"`
	TimeToLive      *int64            `json:"timeToLive,omitempty"`
	SkipType        int               `json:"skipType"`
	SkipContent     string            `json:"skipContent,omitempty"`
	NetworkType     *int              `json:"networkType,omitempty"`
	Classification  *int              `json:"classification,omitempty"`
	Category        string            `json:"category,omitempty"`
	ClientCustomMap map[string]string `json:"clientCustomMap,omitempty"`
	Extra           map[string]string `json:"extra,omitempty"`
	RequestID       string            `json:"requestId"`
	PushMode        int               `json:"pushMode,omitempty"`
	NotifyID        int64             `json:"notifyId,omitempty"`
	ProfileID       string            `json:"profileId,omitempty"`
	SendOnline      *bool             `json:"sendOnline,omitempty"`
	ForegroundShow  *bool             `json:"foregroundShow,omitempty"`
	AuditReview     json.RawMessage   `json:"auditReview,omitempty"`
}

// listRequest is the body of /message/pushToList.
type listRequest struct {
	AppID     json.Number `json:"appId"`
	RegIDs    []string    `json:"regIds"`
	Aliases   []string    `json:"aliases,omitempty"`
	TaskID    string      `json:"taskId"`
	RequestID string      `json:"requestId"`
	PushMode  int         `json:"pushMode,omitempty"`
}

// authRequest is the body of /message/auth.
type authRequest struct {
	AppID     json.Number `json:"appId"`
	AppKey    string      `json:"appKey"`
	Timestamp json.Number `json:"timestamp"`
	Sign      string      `json:"sign"`
}

// decode parses body into v, refusing unknown members and trailing data.
func decode(body []byte, v any) *answer {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		a := fail(CodeBadParam, "参数不合法: %v", err)
		return &a
	}
	if dec.More() {
		a := fail(CodeBadParam, "参数不合法: trailing data")
		return &a
	}
	return nil
}

// auth checks the signature and issues an authToken.
func (s *Server) auth(body []byte) answer {
	var req authRequest
	if a := decode(body, &req); a != nil {
		return *a
	}
	if req.AppID == "" {
		return fail(CodeNoAppID, "appId 不能为空")
	}
	if req.AppKey == "" {
		return fail(CodeNoAppKey, "appKey 不能为空")
	}
	appID, err := strconv.ParseInt(req.AppID.String(), 10, 64)
	if err != nil {
		return fail(CodeUnknownApp, "appId 不合法")
	}
	ts, err := strconv.ParseInt(req.Timestamp.String(), 10, 64)
	if err != nil {
		return fail(CodeBadTimestamp, "timestamp 不合法")
	}
	if req.Sign == "" {
		return fail(CodeBadSign, "sign 不能为空")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.apps[appID]
	if !ok || a.key != strings.TrimSpace(req.AppKey) {
		return fail(CodeUnknownApp, "appId 或 appKey 不存在")
	}
	now := s.opts.Now()
	if d := now.Sub(time.UnixMilli(ts)); d > timestampWindow || d < -timestampWindow {
		return fail(CodeBadTimestamp, "timestamp 不在十分钟区间内")
	}
	// sign = lowercase hex md5(appId + appKey + timestamp + appSecret), each
	// trimmed.
	h := md5.New()
	h.Write([]byte(strconv.FormatInt(appID, 10)))
	h.Write([]byte(a.key))
	h.Write([]byte(strconv.FormatInt(ts, 10)))
	h.Write([]byte(a.secret))
	want := hex.EncodeToString(h.Sum(nil))
	if subtle.ConstantTimeCompare([]byte(req.Sign), []byte(want)) != 1 {
		return fail(CodeBadSign, "sign 不合法")
	}
	tok := newID(20)
	s.tokens[tok] = token{appID: appID, expires: now.Add(s.opts.TokenLifetime)}
	s.mints++
	return answer{Result: CodeOK, Desc: "请求成功", AuthToken: tok}
}

// checkAppID answers CodeAppIDMismatch unless the body's appId is the
// token's.
func checkAppID(n json.Number, appID int64) *answer {
	if n == "" {
		a := fail(CodeNoAppID, "appId 不能为空")
		return &a
	}
	if id, err := strconv.ParseInt(n.String(), 10, 64); err != nil || id != appID {
		a := fail(CodeAppIDMismatch, "appId 与鉴权信息不一致")
		return &a
	}
	return nil
}

// checkMessage checks a notification body; list tells a saved list
// payload, which names no target, from a single send.
func checkMessage(m *Message, list bool) *answer {
	bad := func(format string, args ...any) *answer {
		a := fail(CodeBadParam, "参数不合法: "+format, args...)
		return &a
	}
	switch {
	case list && (m.RegID != "" || m.Alias != ""):
		return bad("a list payload names no regId or alias")
	case !list && m.RegID == "" && m.Alias == "":
		return bad("regId 和 alias 不能都为空")
	case len(m.RegID) > maxRegID:
		return bad("regId 过长")
	case m.NotifyType < 1 || m.NotifyType > 4:
		return bad("notifyType %d", m.NotifyType)
	case m.Title == "":
		return bad("title 不能为空")
	case m.Content == "":
		return bad("content 不能为空")
	case Width(m.Title) > maxTitleWidth:
		return bad("title 长度 %d 超过 %d", Width(m.Title), maxTitleWidth)
	case Width(m.Content) > maxContentWidth:
		return bad("content 长度 %d 超过 %d", Width(m.Content), maxContentWidth)
	case m.TimeToLive != nil && (*m.TimeToLive < minTTL || *m.TimeToLive > maxTTL):
		return bad("timeToLive %d 不在 %d 到 %d 之间", *m.TimeToLive, minTTL, maxTTL)
	case m.SkipType < 1 || m.SkipType > 4:
		return bad("skipType %d", m.SkipType)
	case m.SkipType != 1 && m.SkipContent == "":
		return bad("skipContent 不能为空")
	case utf16Len(m.SkipContent) > maxSkipContent:
		return bad("skipContent 过长")
	case m.NetworkType != nil && *m.NetworkType != -1 && *m.NetworkType != 1:
		return bad("networkType %d", *m.NetworkType)
	case m.Classification != nil && *m.Classification != 0 && *m.Classification != 1:
		return bad("classification %d", *m.Classification)
	case m.RequestID == "":
		return bad("requestId 不能为空")
	case len(m.RequestID) > maxRequestID:
		return bad("requestId 过长")
	case m.PushMode != 0 && m.PushMode != 1:
		return bad("pushMode %d", m.PushMode)
	case m.NotifyID < 0 || m.NotifyID > maxNotifyID:
		return bad("notifyId %d", m.NotifyID)
	case utf16Len(m.Extra["callback"]) > maxCallback || utf16Len(m.Extra["callback.param"]) > maxCallbackPara:
		return bad("extra 过长")
	}
	if len(m.ClientCustomMap) > maxCustomPairs {
		return bad("clientCustomMap 键值对超过 %d 个", maxCustomPairs)
	}
	n := 0
	for k, v := range m.ClientCustomMap {
		n += utf16Len(k) + utf16Len(v)
	}
	if n > maxCustomChars {
		return bad("clientCustomMap 总长度 %d 超过 %d", n, maxCustomChars)
	}
	if m.Category != "" {
		sys, op := systemCategories[m.Category], operationalCategories[m.Category]
		if !sys && !op {
			a := fail(CodeBadCategory, "category 不合法")
			return &a
		}
		class := 0
		if m.Classification != nil {
			class = *m.Classification
		}
		if (sys && class != 1) || (op && class != 0) {
			a := fail(CodeCategoryClass, "category 与 classification 不一致")
			return &a
		}
	}
	return nil
}

// send checks and accepts a single push.
func (s *Server) send(appID int64, body []byte) answer {
	var m Message
	if a := decode(body, &m); a != nil {
		return *a
	}
	if a := checkAppID(m.AppID, appID); a != nil {
		return *a
	}
	if a := checkMessage(&m, false); a != nil {
		return *a
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	taskID := newID(8)
	status, dead := s.failTok[m.RegID]
	if m.PushMode == 1 {
		status, dead = StatusNotTestUser, true
	}
	if dead {
		return answer{Result: CodeInvalidUser, Desc: "regId不合法", InvalidUser: &InvalidUser{UserID: m.RegID, Status: status}}
	}
	s.accept(Push{AppID: appID, Token: m.RegID, TaskID: taskID, Message: m, Body: json.RawMessage(body), Received: s.opts.Now()})
	return answer{Result: CodeOK, Desc: "请求成功", TaskID: taskID}
}

// save checks and stores a list payload.
func (s *Server) save(appID int64, body []byte) answer {
	var m Message
	if a := decode(body, &m); a != nil {
		return *a
	}
	if a := checkAppID(m.AppID, appID); a != nil {
		return *a
	}
	if a := checkMessage(&m, true); a != nil {
		return *a
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	taskID := newID(8)
	s.payloads[taskID] = payload{appID: appID, msg: m, body: json.RawMessage(body)}
	return answer{Result: CodeOK, Desc: "请求成功", TaskID: taskID}
}

// pushList checks and accepts a list push of a saved payload.
func (s *Server) pushList(appID int64, body []byte) answer {
	var req listRequest
	if a := decode(body, &req); a != nil {
		return *a
	}
	if a := checkAppID(req.AppID, appID); a != nil {
		return *a
	}
	bad := func(format string, args ...any) answer {
		return fail(CodeBadParam, "参数不合法: "+format, args...)
	}
	switch {
	case len(req.Aliases) > 0:
		return bad("the emulator serves regIds only")
	case len(req.RegIDs) < minListRegIDs || len(req.RegIDs) > maxListRegIDs:
		return bad("regIds 个数 %d 不在 %d 到 %d 之间", len(req.RegIDs), minListRegIDs, maxListRegIDs)
	case req.RequestID == "" || len(req.RequestID) > maxRequestID:
		return bad("requestId 不合法")
	}
	for _, id := range req.RegIDs {
		if id == "" || len(id) > maxRegID {
			return bad("regIds 含不合法的 regId")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.payloads[req.TaskID]
	if !ok || p.appID != appID {
		return bad("taskId 不存在")
	}
	var invalid []InvalidUser
	for _, id := range req.RegIDs {
		status, dead := s.failTok[id]
		if p.msg.PushMode == 1 || req.PushMode == 1 {
			status, dead = StatusNotTestUser, true
		}
		if dead {
			invalid = append(invalid, InvalidUser{UserID: id, Status: status})
			continue
		}
		s.accept(Push{AppID: appID, Token: id, List: true, TaskID: req.TaskID, Message: p.msg, Body: p.body, Received: s.opts.Now()})
	}
	return answer{Result: CodeOK, Desc: "请求成功", TaskID: req.TaskID, InvalidUsers: invalid}
}

// Width measures s as vivo measures titles and contents: a Chinese (or
// other East Asian wide) character counts two, anything else, an emoji
// included, one.
func Width(s string) int {
	n := 0
	for _, r := range s {
		if wide(r) {
			n += 2
		} else {
			n++
		}
	}
	return n
}

func wide(r rune) bool {
	return unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul) ||
		(r >= 0x3000 && r <= 0x303f) || // CJK punctuation
		(r >= 0xff00 && r <= 0xffef) // full-width forms
}

func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}
