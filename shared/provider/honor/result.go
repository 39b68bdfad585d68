package honor

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/offline-push/offline-push/shared/push"
)

// Honor's answer codes. Only code 200 with data.failTokens and
// data.expireTokens is confirmed (VENDORS.md §5, §11.3: Honor's full
// business-code table was not found). Honor's push API descends from
// Huawei's, so Huawei's OAuth and parameter codes are read as well; an
// answer matching none of them is transient.
const (
	codeSuccess      = "200"
	codeAuthError    = "80200001"
	codeTokenExpired = "80200003"
)

// badMessage are the parameter codes of Huawei's lineage: our request is
// wrong and the same request would fail again.
var badMessage = map[string]bool{
	"80100001": true, // bad parameter
	"80100003": true, // bad structure
	"80100004": true, // bad ttl
	"80100013": true, // bad collapse key
	"80100016": true, // sensitive content
	"80300008": true, // message too large
	"80300010": true, // token count
}

// answer is Honor's reply to one send request.
type answer struct {
	status  int
	header  http.Header
	code    string
	message string
	result  *sendResult
	err     error // the request got no answer
}

// response is the body of every answer: code is a number (200 on success),
// read leniently in case it comes as a string.
type response struct {
	Code    json.RawMessage `json:"code"`
	Message string          `json:"message"`
	Data    *sendResult     `json:"data"`
}

type sendResult struct {
	SendResult   bool     `json:"sendResult"`
	RequestID    string   `json:"requestId"`
	FailTokens   []string `json:"failTokens"`
	ExpireTokens []string `json:"expireTokens"`
}

// authRejected reports whether Honor refused our access token, which one
// refresh may cure.
func (a *answer) authRejected() bool {
	if a.err != nil {
		return false
	}
	return a.status == http.StatusUnauthorized || a.code == codeAuthError || a.code == codeTokenExpired
}

// classify maps an answer to one result per token, in order (VENDORS.md
// §5, DESIGN.md §Dispatch):
//
//	no answer (network, timeout)          transient
//	HTTP 503 or 429 (flow control)        throttled, with Retry-After if given
//	code 200                              expireTokens invalid_token, failTokens transient, the rest ok
//	code 200, sendResult false, no lists  transient
//	HTTP 401, 80200001, 80200003          auth (after one refresh)
//	Huawei's parameter codes (80100001…)  bad_message
//	HTTP 5xx, anything else               transient
func classify(a *answer, tokens []string, now time.Time) []push.SendResult {
	all := func(r push.SendResult) []push.SendResult {
		out := make([]push.SendResult, len(tokens))
		for i := range out {
			out[i] = r
		}
		return out
	}
	if a.err != nil {
		return all(push.SendResult{Class: push.SendTransient, Code: "network"})
	}
	if a.status == http.StatusServiceUnavailable || a.status == http.StatusTooManyRequests {
		return all(push.SendResult{Class: push.SendThrottled, RetryAfter: retryAfter(a.header, now), Code: "http_" + strconv.Itoa(a.status)})
	}
	if a.authRejected() {
		code := a.code
		if code == "" {
			code = "http_401"
		}
		return all(push.SendResult{Class: push.SendAuth, Code: code})
	}
	switch {
	case a.code == codeSuccess && a.status == http.StatusOK:
		r := a.result
		if r == nil || (!r.SendResult && len(r.FailTokens) == 0 && len(r.ExpireTokens) == 0) {
			return all(push.SendResult{Class: push.SendTransient, Code: "not_sent"})
		}
		expired := set(r.ExpireTokens)
		failed := set(r.FailTokens)
		out := make([]push.SendResult, len(tokens))
		for i, t := range tokens {
			switch {
			case expired[t]:
				out[i] = push.SendResult{Class: push.SendInvalidToken, Code: "expireTokens"}
			case failed[t]:
				out[i] = push.SendResult{Class: push.SendTransient, Code: "failTokens"}
			default:
				out[i] = push.SendResult{Class: push.SendOK, Code: codeSuccess}
			}
		}
		return out
	case badMessage[a.code]:
		return all(push.SendResult{Class: push.SendBadMessage, Code: a.code})
	case a.code == "":
		return all(push.SendResult{Class: push.SendTransient, Code: "http_" + strconv.Itoa(a.status)})
	}
	return all(push.SendResult{Class: push.SendTransient, Code: a.code})
}

func set(ss []string) map[string]bool {
	m := make(map[string]bool, len(ss))
	for _, s := range ss {
		m[s] = true
	}
	return m
}

// parseCode returns a response's code as a string of digits.
func parseCode(raw json.RawMessage) string {
	return strings.Trim(strings.TrimSpace(string(raw)), `"`)
}

// retryAfter reads a Retry-After header (seconds or an HTTP date); zero
// when absent, letting the engine choose its backoff.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
