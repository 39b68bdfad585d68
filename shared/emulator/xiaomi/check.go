package xiaomiemu

import (
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Xiaomi's documented limits (VENDORS.md §6, dev.mi.com pId=1559).
const (
	maxRegIDs = 1000
	// Titles must be shorter than 50 characters, descriptions shorter
	// than 128, counted as Java counts String length.
	maxTitleUnits       = 49
	maxDescriptionUnits = 127
	maxTimeToLive       = 14 * 24 * time.Hour
	maxTimeToSendAhead  = 7 * 24 * time.Hour
	// maxPayloadBytes bounds the URL-decoded payload: Xiaomi documents only
	// error 65009 "content too long"; 4096 bytes is the figure given for
	// every Android vendor.
	maxPayloadBytes = 4096
	// Custom extra.<key> pairs: at most 10, at most 1024 characters.
	maxCustomExtras     = 10
	maxCustomExtraChars = 1024
)

// Paths of the send-by-regId API: v3 accepts several packages, v2 one.
var sendPaths = map[string]bool{"/v3/message/regid": true, "/v2/message/regid": true}

// params are the top-level form parameters of an Android push by regId.
var params = map[string]bool{
	"payload": true, "restricted_package_name": true, "pass_through": true, "title": true,
	"description": true, "notify_type": true, "time_to_live": true, "time_to_send": true,
	"notify_id": true, "registration_id": true,
}

// extras are the extra.* keys Xiaomi defines; any other extra.<key> is a
// custom pair delivered to the app and counts toward the custom limits.
var extras = map[string]bool{
	"channel_id": true, "channel_name": true, "channel_description": true,
	"notify_effect": true, "intent_uri": true, "web_uri": true, "notify_foreground": true,
	"sound_uri": true, "ticker": true, "only_send_once": true, "jobkey": true,
	"callback": true, "callback.param": true, "callback.type": true,
	"locale": true, "locale_not_in": true, "model": true, "model_not_in": true,
	"app_version": true, "app_version_not_in": true, "connpt": true, "flow_control": true,
	"layout_name": true, "layout_value": true,
}

// check judges a request as Xiaomi would. It returns the push, the app of
// an authenticated request, and the first rule the request breaks.
func (s *Server) check(r *http.Request, body []byte) (*Push, *App, *xerror) {
	if r.Method != http.MethodPost {
		return nil, nil, &xerror{status: http.StatusMethodNotAllowed}
	}
	if !sendPaths[r.URL.Path] {
		return nil, nil, &xerror{status: http.StatusNotFound}
	}
	// "key" must be lower case (dev.mi.com pId=1559).
	secret, ok := strings.CutPrefix(r.Header.Get("Authorization"), "key=")
	s.mu.Lock()
	app, known := s.apps[secret]
	s.mu.Unlock()
	if !ok || secret == "" || !known {
		return nil, nil, fail(CodeAuthFailed, "Authentication failed")
	}
	p, xe := s.checkForm(r, body, &app)
	return p, &app, xe
}

func (s *Server) checkForm(r *http.Request, body []byte, app *App) (*Push, *xerror) {
	bad := func(format string, args ...any) *xerror { return fail(10017, fmt.Sprintf(format, args...)) }
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, fail(10008, "Content-Type must be application/x-www-form-urlencoded")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fail(10008, "body is not a URL-encoded form")
	}
	push := &Push{Path: r.URL.Path, Form: form, Body: body, Received: s.now(), NotifyID: -1, Extra: map[string]string{}}
	custom, customChars := 0, 0
	for k, v := range form {
		if len(v) != 1 {
			return nil, bad("parameter %s given %d times", k, len(v))
		}
		if name, ok := strings.CutPrefix(k, "extra."); ok {
			push.Extra[name] = v[0]
			if !extras[name] {
				custom++
				customChars += len([]rune(name)) + len([]rune(v[0]))
			}
			continue
		}
		if !params[k] {
			return nil, bad("unknown parameter %s", k)
		}
	}
	if custom > maxCustomExtras {
		return nil, fail(65014, fmt.Sprintf("%d custom extras, at most %d", custom, maxCustomExtras))
	}
	if customChars > maxCustomExtraChars {
		return nil, fail(65015, fmt.Sprintf("custom extras take %d characters, at most %d", customChars, maxCustomExtraChars))
	}

	pkgs := form.Get("restricted_package_name")
	if pkgs == "" {
		return nil, fail(21305, "Must input restricted_package_name")
	}
	for _, pkg := range strings.Split(pkgs, ",") {
		if !slices.Contains(app.Packages, pkg) {
			return nil, fail(22022, "Invalid package name: "+pkg)
		}
	}
	if r.URL.Path == "/v2/message/regid" && strings.Contains(pkgs, ",") {
		return nil, bad("v2 takes one package")
	}
	push.PackageName = pkgs

	ids := form.Get("registration_id")
	if ids == "" {
		return nil, fail(21305, "Must input one of: regid/topic/alias/userAccount")
	}
	push.RegIDs = splitComma(ids)
	for _, id := range push.RegIDs {
		if id == "" || strings.ContainsFunc(id, unicode.IsSpace) {
			return nil, bad("registration_id holds an empty or blank regId")
		}
	}
	if len(push.RegIDs) > maxRegIDs {
		return nil, bad("registration_id holds %d regIds, at most %d", len(push.RegIDs), maxRegIDs)
	}

	switch form.Get("pass_through") {
	case "", "0":
	case "1":
		push.PassThrough = 1
	default:
		return nil, bad("pass_through must be 0 or 1")
	}
	push.Title, push.Description = form.Get("title"), form.Get("description")
	if push.PassThrough == 0 {
		for _, f := range []struct {
			name, value string
			max         int
		}{{"title", push.Title, maxTitleUnits}, {"description", push.Description, maxDescriptionUnits}} {
			if f.value == "" {
				return nil, fail(21305, "Must input "+f.name+" for a notification")
			}
			if strings.TrimFunc(f.value, unicode.IsSpace) == "" {
				return nil, bad("%s is all white space", f.name)
			}
			if n := utf16Units(f.value); n > f.max {
				return nil, bad("%s has %d characters, must be fewer than %d", f.name, n, f.max+1)
			}
		}
	}

	if raw, ok := form["payload"]; ok {
		dec, err := url.QueryUnescape(raw[0])
		if err != nil {
			return nil, bad("payload is not URL-encoded")
		}
		if len(dec) > maxPayloadBytes {
			return nil, fail(CodeTooLong, fmt.Sprintf("payload has %d bytes, at most %d", len(dec), maxPayloadBytes))
		}
		push.Payload = dec
	}

	if v := form.Get("notify_type"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < -1 || n > 7 {
			return nil, bad("notify_type must be -1 or a combination of 1, 2 and 4")
		}
		push.NotifyType = n
	}
	if v := form.Get("time_to_live"); v != "" {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms <= 0 || ms > maxTimeToLive.Milliseconds() {
			return nil, bad("time_to_live must be milliseconds from 1 to %d", maxTimeToLive.Milliseconds())
		}
		push.TimeToLive = time.Duration(ms) * time.Millisecond
	}
	if v := form.Get("time_to_send"); v != "" {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || time.UnixMilli(ms).After(s.now().Add(maxTimeToSendAhead)) {
			return nil, bad("time_to_send must be Unix milliseconds at most 7 days ahead")
		}
	}
	if v := form.Get("notify_id"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > 2147483647 {
			return nil, bad("notify_id must be from 0 to 2147483647")
		}
		push.NotifyID = n
	}

	if xe := checkExtras(push); xe != nil {
		return nil, xe
	}
	push.ChannelID = push.Extra["channel_id"]
	if len(app.Channels) > 0 && !slices.Contains(app.Channels, push.ChannelID) {
		return nil, fail(CodeChannel, fmt.Sprintf("channel_id %q is not a channel of this app", push.ChannelID))
	}
	return push, nil
}

// checkExtras checks the extra.* values Xiaomi gives a meaning.
func checkExtras(p *Push) *xerror {
	bad := func(format string, args ...any) *xerror { return fail(10017, fmt.Sprintf(format, args...)) }
	switch p.Extra["notify_effect"] {
	case "", "1":
	case "2":
		if p.Extra["intent_uri"] == "" {
			return bad("notify_effect 2 needs extra.intent_uri")
		}
	case "3":
		if p.Extra["web_uri"] == "" {
			return bad("notify_effect 3 needs extra.web_uri")
		}
	default:
		return bad("notify_effect must be 1, 2 or 3")
	}
	switch p.Extra["notify_foreground"] {
	case "", "0", "1":
	default:
		return bad("notify_foreground must be 0 or 1")
	}
	if uri, ok := p.Extra["sound_uri"]; ok {
		fine := false
		for _, pkg := range strings.Split(p.PackageName, ",") {
			if name, ok := strings.CutPrefix(uri, "android.resource://"+pkg+"/raw/"); ok && name != "" && !strings.Contains(name, "/") {
				fine = true
			}
		}
		if !fine {
			return bad("sound_uri must be android.resource://<package>/raw/<name>")
		}
	}
	return nil
}

func utf16Units(s string) int {
	n := 0
	for _, r := range s {
		n++
		if r >= 0x10000 {
			n++
		}
	}
	return n
}

func splitComma(s string) []string {
	return strings.Split(s, ",")
}

func joinComma(ids []string) string {
	return strings.Join(ids, ",")
}
