package meizu

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/offline-push/offline-push/shared/push"
)

// maxResponseBytes bounds how much of an answer is read; an answer lists
// at most the 1000 pushIds of its request.
const maxResponseBytes = 1 << 20

// answer is Meizu's JSON answer (VENDORS.md §9): code is a string ("200")
// in the documentation and read as a number too; value is a map from error
// code to the pushIds that failed with it when code is 200, and an empty
// string otherwise.
type answer struct {
	Code  json.RawMessage `json:"code"`
	Value json.RawMessage `json:"value"`
}

// deliver sends r and returns one result per pushId of r.
func (s *Sender) deliver(ctx context.Context, cfg *config, r *request) []push.SendResult {
	out := make([]push.SendResult, len(r.pushIDs))
	if r.err != nil {
		for i := range out {
			out[i] = *r.err
		}
		return out
	}
	whole, failed := s.post(ctx, cfg, r)
	for i, id := range r.pushIDs {
		out[i] = whole
		if code, ok := failed[id]; ok {
			out[i] = s.classifyID(code)
		}
	}
	return out
}

// post sends one request and classifies the answer for the request as a
// whole, with the per-pushId failure codes Meizu listed.
func (s *Sender) post(ctx context.Context, cfg *config, r *request) (push.SendResult, map[string]string) {
	params := map[string]string{
		"appId":       cfg.appID,
		"pushIds":     strings.Join(r.pushIDs, ","),
		"messageJson": r.messageJSON,
	}
	form := url.Values{}
	for k, v := range params {
		form.Set(k, v)
	}
	form.Set("sign", sign(params, cfg.secret))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.sendURL, bytes.NewReader([]byte(form.Encode())))
	if err != nil {
		return push.SendResult{Class: push.SendAuth, Code: "bad_endpoint"}, nil
	}
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
	code := jsonText(a.Code)
	if code != "200" {
		return s.classify(code), nil
	}
	var byCode map[string][]string
	if len(a.Value) > 0 && a.Value[0] == '{' {
		if err := json.Unmarshal(a.Value, &byCode); err != nil {
			return push.SendResult{Class: push.SendTransient, Code: "bad_answer"}, nil
		}
	}
	failed := map[string]string{}
	for c, ids := range byCode {
		for _, id := range ids {
			failed[id] = c
		}
	}
	return push.SendResult{Class: push.SendOK}, failed
}

// byStatus classifies an answer other than HTTP 200. Meizu answers its own
// errors with 200 and a code; other statuses come from its gateways.
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

// classify maps a top-level Meizu code (MEIZUPUSH/PushAPI README, the Java
// SDK's ErrorCode) to a class for every pushId of the request. Codes not
// listed are transient: an unknown answer is retried with backoff, never
// used to unbind a token or drop a message, and logged so the table can
// grow.
func (s *Sender) classify(code string) push.SendResult {
	switch code {
	case "110010":
		// The app's request rate is over its limit (200/s by default).
		return push.SendResult{Class: push.SendThrottled, Code: code}
	case "110019":
		// The app's pushes for today are spent: wait for the reset at
		// midnight China time instead of hammering.
		return push.SendResult{Class: push.SendThrottled, Code: code, RetryAfter: untilChinaMidnight(s.now())}
	case "1006", "110000", "110001", "110009":
		// A wrong signature (the secret), an unknown app id or key, or a
		// blacklisted app: only the operator can fix these.
		return push.SendResult{Class: push.SendAuth, Code: code}
	case "1005", "110004":
		// Bad or missing parameters: the request itself is refused.
		return push.SendResult{Class: push.SendBadMessage, Code: code}
	case "500", "1001", "1003":
		return push.SendResult{Class: push.SendTransient, Code: code}
	}
	s.log.Warn("meizu answered an unknown code; retrying as transient", "code", code)
	return push.SendResult{Class: push.SendTransient, Code: code}
}

// classifyID maps the code Meizu gives one pushId of an accepted request.
func (s *Sender) classifyID(code string) push.SendResult {
	switch code {
	case "110002", "110003", "110005":
		// Unsubscribed or notifications switched off, an illegal pushId,
		// an invalid alias: the token is dead.
		return push.SendResult{Class: push.SendInvalidToken, Code: code}
	case "518", "519":
		// Over the configured rate; the service is overloaded.
		return push.SendResult{Class: push.SendThrottled, Code: code}
	case "520":
		// Folded: the device got several pushes of the app within a
		// minute and Meizu shows them as one. The push reached the device
		// folded on purpose; sending it again would only fold again.
		return push.SendResult{Class: push.SendOK, Code: code}
	case "201":
		// No permission, refused by the server: a matter of the app's
		// account, not of this message or device.
		return push.SendResult{Class: push.SendAuth, Code: code}
	case "501", "513":
		return push.SendResult{Class: push.SendTransient, Code: code}
	}
	s.log.Warn("meizu answered an unknown pushId code; retrying as transient", "code", code)
	return push.SendResult{Class: push.SendTransient, Code: code}
}

// chinaTime is UTC+8, where Meizu's daily limits reset at midnight.
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
