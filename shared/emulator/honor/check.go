package honoremu

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

// Request is the body of POST /api/v1/{appId}/sendMessage as Honor
// documents it (VENDORS.md §5): Huawei's structure with camelCase names.
// Decoding is strict: a member Honor does not document is refused, so a
// snake_case name copied from Huawei fails here instead of being ignored on
// the phone.
type Request struct {
	Data         *string        `json:"data"`
	Notification *Notification  `json:"notification"`
	Android      *AndroidConfig `json:"android"`
	Token        []string       `json:"token"`
}

// Notification is the top-level notification.
type Notification struct {
	Title string `json:"title"`
	Body  string `json:"body"`
	Image string `json:"image"`
}

// AndroidConfig is android.
type AndroidConfig struct {
	TTL            string               `json:"ttl"`
	BiTag          string               `json:"biTag"`
	Data           *string              `json:"data"`
	TargetUserType int                  `json:"targetUserType"`
	Notification   *AndroidNotification `json:"notification"`
}

// AndroidNotification is android.notification.
type AndroidNotification struct {
	Title       string          `json:"title"`
	Body        string          `json:"body"`
	ClickAction *ClickAction    `json:"clickAction"`
	Image       string          `json:"image"`
	Style       int             `json:"style"`
	BigTitle    string          `json:"bigTitle"`
	BigBody     string          `json:"bigBody"`
	Importance  string          `json:"importance"`
	When        string          `json:"when"`
	Buttons     json.RawMessage `json:"buttons"`
	Badge       *Badge          `json:"badge"`
	NotifyID    *json.Number    `json:"notifyId"`
	Tag         string          `json:"tag"`
	Group       string          `json:"group"`
}

// ClickAction is android.notification.clickAction.
type ClickAction struct {
	Type   int    `json:"type"`
	Intent string `json:"intent"`
	URL    string `json:"url"`
	Action string `json:"action"`
}

// Badge is android.notification.badge.
type Badge struct {
	AddNum     *int   `json:"addNum"`
	SetNum     *int   `json:"setNum"`
	BadgeClass string `json:"badgeClass"`
}

// Honor's limits. The token count and the message size are not documented
// by Honor; Huawei's (1000 tokens, 4096 bytes), from which Honor's API
// descends, are assumed, as the provider assumes them.
const (
	maxTokens       = 1000
	maxMessageBytes = 4096
	maxTTLSeconds   = 1296000 // 15 days
)

// ttlPattern is a duration in seconds with up to nine decimals and an
// optional "s", as in Huawei's lineage.
var ttlPattern = regexp.MustCompile(`^\d+(\.\d{1,9})?s?$`)

// rejection is a refusal with an HTTP status, Honor's code and message.
type rejection struct {
	status     int
	code       int
	msg        string
	retryAfter time.Duration
}

func reject(status, code int, format string, args ...any) *rejection {
	return &rejection{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

// Codes the emulator answers besides 200. Honor's table was not found; the
// codes of Huawei's lineage are used (VENDORS.md §11.3).
const (
	codeAuth       = 80200001
	codeExpired    = 80200003
	codeParam      = 80100001
	codeStructure  = 80100003
	codeTTL        = 80100004
	codeTooLarge   = 80300008
	codeTokenCount = 80300010
)

// decode parses and checks a send request body.
func decode(body []byte) (*Request, *rejection) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	var r Request
	if err := dec.Decode(&r); err != nil {
		return nil, reject(400, codeStructure, "illegal payload: %v", err)
	}
	if dec.More() {
		return nil, reject(400, codeStructure, "illegal payload: trailing data")
	}
	if len(r.Token) < 1 || len(r.Token) > maxTokens {
		return nil, reject(400, codeTokenCount, "token count must be 1 to %d", maxTokens)
	}
	for i, t := range r.Token {
		if t == "" || strings.TrimSpace(t) != t {
			return nil, reject(400, codeParam, "token[%d] is empty or padded", i)
		}
	}
	if n := messageSize(body); n > maxMessageBytes {
		return nil, reject(400, codeTooLarge, "message body is %d bytes, over %d", n, maxMessageBytes)
	}
	if rej := check(&r); rej != nil {
		return nil, rej
	}
	return &r, nil
}

// messageSize is the size of the request compacted and without its token
// member.
func messageSize(body []byte) int {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return 0
	}
	delete(m, "token")
	var buf bytes.Buffer
	for k, v := range m {
		buf.WriteString(strconv.Quote(k))
		if err := json.Compact(&buf, v); err != nil {
			buf.Write(v)
		}
	}
	// Braces, colons and commas.
	return buf.Len() + 2 + 2*len(m) - 1
}

func check(r *Request) *rejection {
	a := r.Android
	notified := r.Notification != nil && (r.Notification.Title != "" || r.Notification.Body != "")
	if a != nil {
		if a.TTL != "" {
			if !ttlPattern.MatchString(a.TTL) {
				return reject(400, codeTTL, "ttl %q is illegal", a.TTL)
			}
			secs, _ := new(big.Float).SetString(strings.TrimSuffix(a.TTL, "s"))
			if secs == nil || secs.Cmp(big.NewFloat(maxTTLSeconds)) > 0 {
				return reject(400, codeTTL, "ttl is at most %ds", maxTTLSeconds)
			}
		}
		if a.TargetUserType != 0 && a.TargetUserType != 1 {
			return reject(400, codeParam, "targetUserType must be 0 or 1")
		}
		if n := a.Notification; n != nil {
			if rej := checkAndroidNotification(n); rej != nil {
				return rej
			}
			notified = notified || n.Title != "" || n.Body != ""
		}
	}
	isNotification := r.Notification != nil || (a != nil && a.Notification != nil)
	if isNotification && !notified {
		return reject(400, codeStructure, "a notification needs a title or body")
	}
	data := []*string{r.Data}
	if a != nil {
		data = append(data, a.Data)
	}
	for _, d := range data {
		if d == nil || !isNotification {
			continue
		}
		// A notification message carries its data as a JSON string.
		var obj map[string]any
		if json.Unmarshal([]byte(*d), &obj) != nil {
			return reject(400, codeStructure, "data of a notification message must be a JSON object string")
		}
	}
	return nil
}

func checkAndroidNotification(n *AndroidNotification) *rejection {
	c := n.ClickAction
	if c == nil {
		return reject(400, codeStructure, "clickAction is required in android.notification")
	}
	switch c.Type {
	case 1:
		if c.Intent == "" && c.Action == "" {
			return reject(400, codeStructure, "clickAction type 1 needs intent or action")
		}
	case 2:
		if !strings.HasPrefix(c.URL, "https://") {
			return reject(400, codeStructure, "clickAction type 2 needs an https url")
		}
	case 3:
	default:
		return reject(400, codeStructure, "clickAction type must be 1, 2 or 3")
	}
	if n.Importance != "" && n.Importance != "LOW" && n.Importance != "NORMAL" {
		return reject(400, codeParam, "importance must be LOW or NORMAL")
	}
	if n.Style == 1 && (n.BigTitle == "" || n.BigBody == "") {
		return reject(400, codeStructure, "style 1 needs bigTitle and bigBody")
	}
	if n.NotifyID != nil {
		id, err := n.NotifyID.Int64()
		if err != nil || id < -1 || id > 2147483647 {
			return reject(400, codeParam, "notifyId must be an int32")
		}
	}
	if b := n.Badge; b != nil {
		if b.BadgeClass == "" {
			return reject(400, codeStructure, "badge badgeClass is required")
		}
		if b.AddNum != nil && (*b.AddNum < 1 || *b.AddNum > 99) {
			return reject(400, codeStructure, "badge addNum ranges from 1 to 99")
		}
		if b.SetNum != nil && (*b.SetNum < 0 || *b.SetNum > 99) {
			return reject(400, codeStructure, "badge setNum ranges from 0 to 99")
		}
		if b.AddNum == nil && b.SetNum == nil {
			return reject(400, codeStructure, "badge needs addNum or setNum")
		}
	}
	return nil
}
