package huawei

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/offline-push/offline-push/shared/push"
)

// Huawei's business codes (VENDORS.md §4; HMS-Core's server demo; Huawei's
// response code table).
const (
	codeSuccess        = "80000000"
	codePartial        = "80100000" // msg lists the illegal tokens
	codeAllInvalid     = "80300007" // every token invalid, or a wrong app
	codeAuthError      = "80200001" // missing token, or another app's
	codeTokenExpired   = "80200003"
	codeInternal       = "81000001"
	codeParam          = "80100001"
	codeStructure      = "80100003"
	codeTTL            = "80100004"
	codeCollapseKey    = "80100013"
	codeSensitive      = "80100016"
	codeTooLarge       = "80300008"
	codeTokenCount     = "80300010"
	codeNoPermission   = "80300002"
	codeNoHighPriority = "80300011"
	codeOAuthFailed    = "80600003"
)

// classes maps the codes that decide every target of a request alike. The
// others are handled in classify: success, partial success, all-invalid,
// and the OAuth codes, which first cost one refresh. A code not listed is
// transient: an unknown answer is retried with backoff until the push
// expires, never dropped, and shows in the metrics by its code.
var classes = map[string]push.SendClass{
	// Our request is wrong; the same request would fail again.
	codeParam:       push.SendBadMessage,
	codeStructure:   push.SendBadMessage,
	codeTTL:         push.SendBadMessage,
	codeCollapseKey: push.SendBadMessage,
	codeSensitive:   push.SendBadMessage,
	codeTooLarge:    push.SendBadMessage,
	codeTokenCount:  push.SendBadMessage,
	// The app lacks a permission or its OAuth client is broken: an
	// operator must act, so dispatch retries and alarms.
	codeNoPermission:   push.SendAuth,
	codeNoHighPriority: push.SendAuth,
	codeOAuthFailed:    push.SendAuth,
	codeInternal:       push.SendTransient,
}

// answer is Huawei's reply to one send request.
type answer struct {
	status int
	header http.Header
	code   string
	msg    string
	err    error // the request got no answer
}

// response is the body of every answer: code is a string of digits
// ("80000000"), read leniently in case it comes as a number.
type response struct {
	Code      json.RawMessage `json:"code"`
	Msg       string          `json:"msg"`
	RequestID string          `json:"requestId"`
}

// authRejected reports whether Huawei refused our access token, which one
// refresh may cure.
func (a *answer) authRejected() bool {
	if a.err != nil {
		return false
	}
	switch a.code {
	case codeAuthError, codeTokenExpired:
		return true
	case "":
		return a.status == http.StatusUnauthorized
	}
	return false
}

// classify maps an answer to one result per token, in order (VENDORS.md
// §4, DESIGN.md §Dispatch):
//
//	no answer (network, timeout)          transient
//	HTTP 503 or 429 (flow control)        throttled, with Retry-After if given
//	80000000                              ok
//	80100000 partial success              the illegal_tokens invalid_token, the rest ok
//	80300007 for one token                invalid_token (several: each is retried alone first)
//	80200001, 80200003 after a refresh    auth
//	80100001/3/4/13/16, 80300008/10        bad_message
//	80300002, 80300011, 80600003          auth (permission or client: an operator must act)
//	81000001, HTTP 5xx                    transient
//	anything else                         transient
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
	switch a.code {
	case codeSuccess:
		return all(push.SendResult{Class: push.SendOK, Code: codeSuccess})
	case codePartial:
		illegal, ok := illegalTokens(a.msg)
		if !ok {
			// Without the list we cannot tell who failed. Resending would
			// repeat the pushes that went out, so all count as sent; a dead
			// token fails again next time and is unbound then.
			return all(push.SendResult{Class: push.SendOK, Code: codePartial})
		}
		out := make([]push.SendResult, len(tokens))
		for i, t := range tokens {
			if illegal[t] {
				out[i] = push.SendResult{Class: push.SendInvalidToken, Code: codePartial}
			} else {
				out[i] = push.SendResult{Class: push.SendOK, Code: codePartial}
			}
		}
		return out
	case codeAllInvalid:
		return all(push.SendResult{Class: push.SendInvalidToken, Code: codeAllInvalid})
	case codeAuthError, codeTokenExpired:
		return all(push.SendResult{Class: push.SendAuth, Code: a.code})
	case "":
		code := "http_" + strconv.Itoa(a.status)
		switch {
		case a.status == http.StatusUnauthorized:
			return all(push.SendResult{Class: push.SendAuth, Code: code})
		case a.status == http.StatusRequestEntityTooLarge:
			return all(push.SendResult{Class: push.SendBadMessage, Code: code})
		}
		return all(push.SendResult{Class: push.SendTransient, Code: code})
	}
	if c, ok := classes[a.code]; ok {
		return all(push.SendResult{Class: c, Code: a.code})
	}
	return all(push.SendResult{Class: push.SendTransient, Code: a.code})
}

// illegalTokens reads the tokens a partial success refused. Huawei puts
// them in msg, itself JSON text: {"success":1,"failure":1,
// "illegal_tokens":["…"]} in v1 and v2. The v3 API groups them by reason
// ({"illegalTokens":{"tokenFormatError":["…"]}}); both are read, so a
// credential pointed at a v3-style endpoint still unbinds the right tokens.
func illegalTokens(msg string) (map[string]bool, bool) {
	var m struct {
		Illegal  []string            `json:"illegal_tokens"`
		ByReason map[string][]string `json:"illegalTokens"`
	}
	if err := json.Unmarshal([]byte(msg), &m); err != nil {
		return nil, false
	}
	if m.Illegal == nil && m.ByReason == nil {
		return nil, false
	}
	out := make(map[string]bool, len(m.Illegal))
	for _, t := range m.Illegal {
		out[t] = true
	}
	for _, ts := range m.ByReason {
		for _, t := range ts {
			out[t] = true
		}
	}
	return out, true
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
