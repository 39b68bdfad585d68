package meizuemu

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// Meizu's documented limits (VENDORS.md §9, MEIZUPUSH/PushAPI README).
const (
	sendPath      = "/garcia/api/server/push/varnished/pushByPushId"
	maxPushIDs    = 1000
	maxTitle      = 32
	maxContent    = 100
	maxValidHours = 72
	// defaultValidHours is what Meizu applies to an offline push without
	// validTime.
	defaultValidHours  = 24
	maxCustomAttribute = 1000 // bytes
	maxCallback        = 128  // bytes
	maxCallbackParam   = 64   // bytes
)

// formParams are the parameters of a push by pushId; all are required.
var formParams = []string{"appId", "pushIds", "messageJson", "sign"}

var notifyKeyRE = regexp.MustCompile(`^[0-9A-Za-z_-]{0,8}$`)

// Message is a notification's messageJson as the emulator understood it,
// Meizu's defaults applied to members the request left out.
type Message struct {
	NoticeBarInfo struct {
		NoticeBarType int
		Title         string
		Content       string
	}
	NoticeExpandInfo struct {
		NoticeExpandType    int
		NoticeExpandContent string
	}
	ClickTypeInfo struct {
		ClickType       int
		URL             string
		Activity        string
		CustomAttribute string
		// Parameters is the custom data the app gets on a tap.
		Parameters map[string]any
	}
	PushTimeInfo struct {
		OffLine   int
		ValidTime int // hours; 0 when OffLine is 0
	}
	AdvanceInfo struct {
		Suspend          int
		ClearNoticeBar   int
		FixDisplay       int
		Vibrate          int
		Lights           int
		Sound            int
		NotifyKey        string
		NotificationType bool // whether notificationType was given
	}
	Extra map[string]string
}

// wire is messageJson as sent: pointers tell a member left out from zero.
type wire struct {
	NoticeBarInfo *struct {
		NoticeBarType *int    `json:"noticeBarType"`
		Title         *string `json:"title"`
		Content       *string `json:"content"`
	} `json:"noticeBarInfo"`
	NoticeExpandInfo *struct {
		NoticeExpandType    *int   `json:"noticeExpandType"`
		NoticeExpandContent string `json:"noticeExpandContent"`
	} `json:"noticeExpandInfo"`
	ClickTypeInfo *struct {
		ClickType       *int            `json:"clickType"`
		URL             string          `json:"url"`
		Parameters      json.RawMessage `json:"parameters"`
		Activity        string          `json:"activity"`
		CustomAttribute string          `json:"customAttribute"`
	} `json:"clickTypeInfo"`
	PushTimeInfo *struct {
		OffLine   *int `json:"offLine"`
		ValidTime *int `json:"validTime"`
	} `json:"pushTimeInfo"`
	AdvanceInfo *struct {
		Suspend             *int   `json:"suspend"`
		ClearNoticeBar      *int   `json:"clearNoticeBar"`
		FixDisplay          *int   `json:"fixDisplay"`
		FixStartDisplayTime string `json:"fixStartDisplayTime"`
		FixEndDisplayTime   string `json:"fixEndDisplayTime"`
		NotificationType    *struct {
			Vibrate *int `json:"vibrate"`
			Lights  *int `json:"lights"`
			Sound   *int `json:"sound"`
		} `json:"notificationType"`
		NotifyKey string `json:"notifyKey"`
	} `json:"advanceInfo"`
	Extra map[string]string `json:"extra"`
}

// check judges a request as Meizu would. It returns the push, whether the
// request named a known app, and the first rule the request breaks.
func (s *Server) check(r *http.Request, body []byte) (*Push, bool, *merror) {
	if r.Method != http.MethodPost {
		return nil, false, &merror{status: http.StatusMethodNotAllowed}
	}
	if r.URL.Path != sendPath {
		return nil, false, &merror{status: http.StatusNotFound}
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, false, fail("1005", "Content-Type must be application/x-www-form-urlencoded")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, false, fail("1005", "body is not a URL-encoded form")
	}
	for k, v := range form {
		if !slices.Contains(formParams, k) {
			return nil, false, fail("1005", "unknown parameter "+k)
		}
		if len(v) != 1 {
			return nil, false, fail("1005", "parameter "+k+" given more than once")
		}
	}
	for _, k := range formParams {
		if form.Get(k) == "" {
			return nil, false, fail("110004", k)
		}
	}
	s.mu.Lock()
	app, ok := s.apps[form.Get("appId")]
	s.mu.Unlock()
	if !ok {
		return nil, false, fail("110000", "")
	}
	if form.Get("sign") != signature(form, app.Secret) {
		return nil, true, fail("1006", "")
	}
	p := &Push{AppID: app.ID, Form: form, Body: body, Received: s.now(), MessageJSON: form.Get("messageJson")}
	p.PushIDs = strings.Split(form.Get("pushIds"), ",")
	for _, id := range p.PushIDs {
		if strings.TrimSpace(id) == "" || id != strings.TrimSpace(id) {
			return nil, true, fail("1005", "pushIds holds an empty or padded pushId")
		}
	}
	if len(p.PushIDs) > maxPushIDs {
		return nil, true, fail("1005", fmt.Sprintf("%d pushIds, at most %d", len(p.PushIDs), maxPushIDs))
	}
	m, detail := parseMessage(p.MessageJSON)
	if detail != "" {
		return nil, true, fail("1005", "messageJson: "+detail)
	}
	p.Message = *m
	return p, true, nil
}

// signature computes Meizu's sign for form: every parameter but sign,
// sorted by name, as name=value with the raw (decoded) values and no
// separator, then the app secret; the lower-case hex MD5 of that.
func signature(form url.Values, secret string) string {
	names := make([]string, 0, len(form))
	for k := range form {
		if k != "sign" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	var b bytes.Buffer
	for _, k := range names {
		fmt.Fprintf(&b, "%s=%s", k, form.Get(k))
	}
	b.WriteString(secret)
	sum := md5.Sum(b.Bytes())
	return hex.EncodeToString(sum[:])
}

// parseMessage decodes and checks a notification's messageJson; detail
// names the first rule it breaks.
func parseMessage(raw string) (*Message, string) {
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.DisallowUnknownFields()
	var w wire
	if err := dec.Decode(&w); err != nil {
		return nil, "not a notification message: " + err.Error()
	}
	if dec.More() {
		return nil, "trailing data"
	}
	m := &Message{}
	nb := w.NoticeBarInfo
	if nb == nil || nb.Title == nil || nb.Content == nil {
		return nil, "noticeBarInfo with title and content is required"
	}
	if nb.NoticeBarType != nil && *nb.NoticeBarType != 0 && *nb.NoticeBarType != 2 {
		return nil, "noticeBarType must be 0 or 2"
	}
	if n := units(*nb.Title); n < 1 || n > maxTitle || strings.TrimSpace(*nb.Title) == "" {
		return nil, fmt.Sprintf("title has %d characters, must have 1 to %d", n, maxTitle)
	}
	if n := units(*nb.Content); n < 1 || n > maxContent || strings.TrimSpace(*nb.Content) == "" {
		return nil, fmt.Sprintf("content has %d characters, must have 1 to %d", n, maxContent)
	}
	m.NoticeBarInfo.NoticeBarType = deref(nb.NoticeBarType, 0)
	m.NoticeBarInfo.Title, m.NoticeBarInfo.Content = *nb.Title, *nb.Content

	if ne := w.NoticeExpandInfo; ne != nil {
		m.NoticeExpandInfo.NoticeExpandType = deref(ne.NoticeExpandType, 0)
		m.NoticeExpandInfo.NoticeExpandContent = ne.NoticeExpandContent
		switch m.NoticeExpandInfo.NoticeExpandType {
		case 0:
		case 1:
			if ne.NoticeExpandContent == "" {
				return nil, "noticeExpandType 1 needs noticeExpandContent"
			}
		default:
			return nil, "noticeExpandType must be 0 or 1"
		}
	}

	if ct := w.ClickTypeInfo; ct != nil {
		c := &m.ClickTypeInfo
		c.ClickType, c.URL, c.Activity, c.CustomAttribute = deref(ct.ClickType, 0), ct.URL, ct.Activity, ct.CustomAttribute
		switch c.ClickType {
		case 0:
		case 1:
			if c.Activity == "" {
				return nil, "clickType 1 needs activity"
			}
		case 2:
			if c.URL == "" {
				return nil, "clickType 2 needs url"
			}
		case 3:
			if c.CustomAttribute == "" || len(c.CustomAttribute) > maxCustomAttribute {
				return nil, fmt.Sprintf("clickType 3 needs customAttribute of at most %d bytes", maxCustomAttribute)
			}
		default:
			return nil, "clickType must be 0 to 3"
		}
		if len(ct.Parameters) > 0 && string(ct.Parameters) != "null" {
			if err := json.Unmarshal(ct.Parameters, &c.Parameters); err != nil {
				return nil, "parameters must be a JSON object"
			}
		}
	}

	m.PushTimeInfo.OffLine, m.PushTimeInfo.ValidTime = 1, defaultValidHours
	if pt := w.PushTimeInfo; pt != nil {
		m.PushTimeInfo.OffLine = deref(pt.OffLine, 1)
		switch m.PushTimeInfo.OffLine {
		case 0:
			m.PushTimeInfo.ValidTime = 0
		case 1:
			if pt.ValidTime != nil {
				if *pt.ValidTime < 1 || *pt.ValidTime > maxValidHours {
					return nil, fmt.Sprintf("validTime %d, must be 1 to %d hours", *pt.ValidTime, maxValidHours)
				}
				m.PushTimeInfo.ValidTime = *pt.ValidTime
			}
		default:
			return nil, "offLine must be 0 or 1"
		}
	}

	a := &m.AdvanceInfo
	a.Suspend, a.ClearNoticeBar, a.Vibrate, a.Lights, a.Sound = 1, 1, 1, 1, 1
	if ai := w.AdvanceInfo; ai != nil {
		a.Suspend, a.ClearNoticeBar, a.FixDisplay = deref(ai.Suspend, 1), deref(ai.ClearNoticeBar, 1), deref(ai.FixDisplay, 0)
		if nt := ai.NotificationType; nt != nil {
			a.NotificationType = true
			a.Vibrate, a.Lights, a.Sound = deref(nt.Vibrate, 1), deref(nt.Lights, 1), deref(nt.Sound, 1)
		}
		for _, f := range []struct {
			name string
			v    int
		}{{"suspend", a.Suspend}, {"clearNoticeBar", a.ClearNoticeBar}, {"fixDisplay", a.FixDisplay},
			{"vibrate", a.Vibrate}, {"lights", a.Lights}, {"sound", a.Sound}} {
			if f.v != 0 && f.v != 1 {
				return nil, f.name + " must be 0 or 1"
			}
		}
		if a.FixDisplay == 1 && (ai.FixStartDisplayTime == "" || ai.FixEndDisplayTime == "") {
			return nil, "fixDisplay 1 needs fixStartDisplayTime and fixEndDisplayTime"
		}
		if !notifyKeyRE.MatchString(ai.NotifyKey) {
			return nil, "notifyKey must be at most 8 of [0-9A-Za-z_-]"
		}
		a.NotifyKey = ai.NotifyKey
	}

	for k, v := range w.Extra {
		switch k {
		case "callback":
			if len(v) > maxCallback {
				return nil, fmt.Sprintf("callback longer than %d bytes", maxCallback)
			}
		case "callback.param":
			if len(v) > maxCallbackParam {
				return nil, fmt.Sprintf("callback.param longer than %d bytes", maxCallbackParam)
			}
		case "callback.type":
			if v != "1" && v != "2" && v != "3" {
				return nil, "callback.type must be 1, 2 or 3"
			}
		default:
			return nil, "unknown extra " + k
		}
	}
	if len(w.Extra) > 0 && w.Extra["callback"] == "" {
		return nil, "extra needs callback"
	}
	m.Extra = w.Extra
	return m, ""
}

func deref(p *int, def int) int {
	if p == nil {
		return def
	}
	return *p
}

// units counts s as Java counts String length.
func units(s string) int {
	n := 0
	for _, r := range s {
		n++
		if r >= 0x10000 {
			n++
		}
	}
	return n
}
