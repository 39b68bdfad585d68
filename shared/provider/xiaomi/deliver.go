package xiaomi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/offline-push/offline-push/shared/push"
)

// maxResponseBytes bounds how much of an answer is read; Xiaomi's answers
// are a few hundred bytes even when they list bad regIds.
const maxResponseBytes = 1 << 20

// codeNoValidTargets is Xiaomi's 20301. Its documented meaning is only
// "sending the message failed" (dev.mi.com pId=1560); production clients
// read it as "no regId of the request is valid" and unbind them all
// (VENDORS.md §6). Because the documented meaning is broader, a request of
// several regIds answered 20301 is retried one regId at a time before any
// is unbound, so a failure of another kind cannot unbind a whole group; a
// single regId answered 20301 is invalid.
const codeNoValidTargets = 20301

// deliver sends r and returns one result per token of r.
func (s *Sender) deliver(ctx context.Context, cfg *config, r *request) []push.SendResult {
	out := make([]push.SendResult, len(r.tokens))
	if r.err != nil {
		for i := range out {
			out[i] = *r.err
		}
		return out
	}
	res, bad := s.post(ctx, cfg, r.form, r.tokens)
	switch {
	case res.Code == strconv.Itoa(codeNoValidTargets) && len(r.tokens) > 1:
		var wg sync.WaitGroup
		sem := make(chan struct{}, concurrency)
		for i, tk := range r.tokens {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				one, oneBad := s.post(ctx, cfg, r.form, []string{tk})
				out[i] = verdict(one, oneBad, tk)
			}()
		}
		wg.Wait()
	default:
		for i, tk := range r.tokens {
			out[i] = verdict(res, bad, tk)
		}
	}
	return out
}

// verdict is token's result from a request's answer: invalid when Xiaomi
// listed it in bad_regids, else the answer's own result.
func verdict(res push.SendResult, bad map[string]bool, token string) push.SendResult {
	if bad[token] {
		return push.SendResult{Class: push.SendInvalidToken, Code: "bad_regids"}
	}
	return res
}

// answer is Xiaomi's JSON answer, success or error (VENDORS.md §6). Code
// and the data members are kept raw: clients disagree on whether Xiaomi
// sends numbers or strings, and either is read.
type answer struct {
	Result string                     `json:"result"`
	Code   json.RawMessage            `json:"code"`
	Data   map[string]json.RawMessage `json:"data"`
}

// post sends one request for tokens and classifies the answer for the
// request as a whole, with the set of regIds Xiaomi called bad.
func (s *Sender) post(ctx context.Context, cfg *config, form url.Values, tokens []string) (push.SendResult, map[string]bool) {
	body := encodeForm(form, tokens)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.sendURL, bytes.NewReader(body))
	if err != nil {
		return push.SendResult{Class: push.SendAuth, Code: "bad_endpoint"}, nil
	}
	req.Header.Set("Authorization", cfg.auth)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded;charset=UTF-8")
	resp, err := s.client.Do(req)
	if err != nil {
		// The error may quote the URL but never a token (they travel in
		// the body); it is still not logged, only classified.
		return push.SendResult{Class: push.SendTransient, Code: "network"}, nil
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return push.SendResult{Class: push.SendTransient, Code: "network"}, nil
	}
	if resp.StatusCode != http.StatusOK {
		return byStatus(resp), nil
	}
	var a answer
	if err := json.Unmarshal(raw, &a); err != nil {
		return push.SendResult{Class: push.SendTransient, Code: "bad_answer"}, nil
	}
	code, ok := number(a.Code)
	if !ok {
		return push.SendResult{Class: push.SendTransient, Code: "bad_answer"}, nil
	}
	if code != 0 {
		return s.classify(code), nil
	}
	var bad map[string]bool
	if list := text(a.Data["bad_regids"]); list != "" {
		bad = map[string]bool{}
		for _, id := range strings.Split(list, ",") {
			bad[strings.TrimSpace(id)] = true
		}
	}
	return push.SendResult{Class: push.SendOK}, bad
}

// encodeForm encodes form plus registration_id. url.Values.Encode sorts the
// keys, so a request's body is the same bytes every time.
func encodeForm(form url.Values, tokens []string) []byte {
	v := make(url.Values, len(form)+1)
	for k, x := range form {
		v[k] = x
	}
	v.Set("registration_id", strings.Join(tokens, ","))
	return []byte(v.Encode())
}

// byStatus classifies an answer other than HTTP 200. Xiaomi answers its
// own errors with 200 and a code; other statuses come from its gateways.
func byStatus(resp *http.Response) push.SendResult {
	code := "http_" + strconv.Itoa(resp.StatusCode)
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return push.SendResult{Class: push.SendAuth, Code: code}
	case http.StatusTooManyRequests:
		return push.SendResult{Class: push.SendThrottled, Code: code, RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		return push.SendResult{Class: push.SendBadMessage, Code: code}
	}
	return push.SendResult{Class: push.SendTransient, Code: code}
}

// classify maps a Xiaomi error code (dev.mi.com pId=1560, VENDORS.md §6) to
// a class. Codes not listed are transient: an unknown answer is retried
// with backoff, never used to unbind a token or drop a message, and logged
// so that the table can grow.
func (s *Sender) classify(code int) push.SendResult {
	c := strconv.Itoa(code)
	switch code {
	case codeNoValidTargets:
		return push.SendResult{Class: push.SendInvalidToken, Code: c}
	case 10034, 200001:
		// The app's messages for today are used up (10034 in the official
		// table, 200001 in production clients): wait for the reset at
		// midnight China time instead of hammering, which Xiaomi punishes.
		return push.SendResult{Class: push.SendThrottled, Code: c, RetryAfter: untilChinaMidnight(s.now())}
	case 10027, 21303:
		// API called too often; a restricted request.
		return push.SendResult{Class: push.SendThrottled, Code: c}
	case 21301, 21302, 22000, 22006, 22007, 22022, 10031, 10036:
		// Authentication failed, an unknown app, key or package, or an app
		// that Xiaomi has blocked: only the operator can fix these.
		return push.SendResult{Class: push.SendAuth, Code: c}
	case 10008, 10012, 10016, 10017, 21305, 27001, 65009, 65011, 65014, 65015:
		// The request itself is refused: bad or missing parameters, a
		// channel that does not match the app, content too long.
		return push.SendResult{Class: push.SendBadMessage, Code: c}
	case -1, 1, 10001, 10002, 10003, 10037, 20607, 22102, 26003, 65029, 65030:
		return push.SendResult{Class: push.SendTransient, Code: c}
	}
	s.log.Warn("xiaomi answered an unknown code; retrying as transient", "code", code)
	return push.SendResult{Class: push.SendTransient, Code: c}
}

// chinaTime is UTC+8, where Xiaomi's daily quotas reset at midnight.
var chinaTime = time.FixedZone("CST", 8*3600)

// untilChinaMidnight is the time from now to the next midnight in China.
func untilChinaMidnight(now time.Time) time.Duration {
	t := now.In(chinaTime)
	next := time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, chinaTime)
	return next.Sub(now)
}

// retryAfter reads a Retry-After header in seconds; anything else is zero,
// which lets the engine choose its backoff.
func retryAfter(h string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(h))
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}

// number reads a JSON number or a string holding one.
func number(raw json.RawMessage) (int, bool) {
	s := text(raw)
	if s == "" {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// text reads a JSON string, or the literal of a number.
func text(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}
