package oppo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/offline-push/offline-push/shared/push"
)

// OPPO's codes (VENDORS.md §7; the documentation's table of public codes
// and the batch push's business code).
const (
	codeOK              = 0
	codeUnavailable     = -1
	codeFlowControl     = -2
	codeInvalidToken    = 11
	codeCallLimited     = 13
	codeMissingToken    = 29
	codeDailyLimit      = 33
	codeFrequencyLimit  = 55
	codeInvalidRegID    = 10000
	maxAnswerBytes      = 4 << 20
	maxRetryAfterHeader = 24 * time.Hour
)

// apiError is an answer OPPO gave with a code other than success, or an
// HTTP status other than 200.
type apiError struct {
	Status     int // HTTP status; 0 when OPPO answered 200 with a code
	Code       int
	Message    string
	RetryAfter time.Duration
}

func (e *apiError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("HTTP %d", e.Status)
	}
	return fmt.Sprintf("code %d %s", e.Code, e.Message)
}

// batchAnswer is the body of unicast_batch.
type batchAnswer struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
}

// itemResult is one element of a successful batch answer's data.
type itemResult struct {
	MessageID      string `json:"messageId"`
	RegistrationID string `json:"registrationId"`
	ErrorCode      int    `json:"errorCode"`
	ErrorMessage   string `json:"errorMessage"`
}

// sendBatch sends the messages at idx (at most MaxBatch, one region) and
// sets their results. An invalid auth_token is refreshed once and the batch
// sent again.
func (s *Sender) sendBatch(ctx context.Context, p *parsed, r region, idx []int, msgs []message, results []push.SendResult) {
	batch := make([]message, len(idx))
	for j, i := range idx {
		batch[j] = msgs[i]
	}
	encoded, err := json.Marshal(batch)
	if err != nil {
		fill(results, idx, push.SendResult{Class: push.SendBadMessage, Code: "encoding"})
		return
	}
	tok, err := s.token(ctx, p, r)
	if err != nil {
		fill(results, idx, s.classifyErr(err, true))
		return
	}
	items, err := s.postBatch(ctx, p, r, tok, encoded)
	if isTokenError(err) {
		tok, err = s.refresh(ctx, p, r, tok)
		if err != nil {
			fill(results, idx, s.classifyErr(err, true))
			return
		}
		items, err = s.postBatch(ctx, p, r, tok, encoded)
	}
	if err != nil {
		fill(results, idx, s.classifyErr(err, false))
		return
	}
	byRegID := make(map[string]itemResult, len(items))
	for _, it := range items {
		byRegID[it.RegistrationID] = it
	}
	for j, i := range idx {
		it, ok := byRegID[batch[j].TargetValue]
		if !ok && len(items) == len(batch) && items[j].RegistrationID == "" {
			it, ok = items[j], true // an answer without ids, in order
		}
		if !ok {
			results[i] = push.SendResult{Class: push.SendTransient, Code: "no_result"}
			continue
		}
		results[i] = s.classify(it.ErrorCode)
	}
}

// postBatch sends one unicast_batch request and returns its per-message
// results.
func (s *Sender) postBatch(ctx context.Context, p *parsed, r region, tok push.AccessToken, messages []byte) ([]itemResult, error) {
	form := url.Values{"auth_token": {tok.Value}, "messages": {string(messages)}}
	var a batchAnswer
	if err := s.post(ctx, p.pushHosts[r]+batchPath, form, &a); err != nil {
		return nil, err
	}
	if a.Code != codeOK {
		return nil, &apiError{Code: a.Code, Message: a.Message}
	}
	var items []itemResult
	if err := json.Unmarshal(a.Data, &items); err != nil {
		return nil, fmt.Errorf("oppo batch answer data: %w", err)
	}
	return items, nil
}

// post sends a form and decodes OPPO's JSON answer into out. A status other
// than 200 is an *apiError.
func (s *Sender) post(ctx context.Context, endpoint string, form url.Values, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("oppo request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded;charset=UTF-8")
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("oppo request: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return fmt.Errorf("oppo answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return &apiError{Status: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After"), s.now())}
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("oppo answer: %w", err)
	}
	return nil
}

// retryAfter reads a Retry-After header in seconds or as an HTTP date.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.Atoi(h); err == nil {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		d = t.Sub(now)
	}
	return max(0, min(d, maxRetryAfterHeader))
}

// isTokenError reports whether OPPO refused the auth_token itself.
func isTokenError(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Status == 0 && (ae.Code == codeInvalidToken || ae.Code == codeMissingToken)
}

// classifyErr maps a failed request to the result of each of its targets.
// minting tells an auth request from a push: OPPO refusing our keys while
// minting is an auth problem whatever the code.
func (s *Sender) classifyErr(err error, minting bool) push.SendResult {
	if errors.Is(err, errTokenCache) {
		return push.SendResult{Class: push.SendTransient, Code: "token_cache"}
	}
	var ae *apiError
	if !errors.As(err, &ae) {
		return push.SendResult{Class: push.SendTransient, Code: "network"}
	}
	if ae.Status != 0 {
		code := "http_" + strconv.Itoa(ae.Status)
		switch {
		case ae.Status == http.StatusTooManyRequests:
			return push.SendResult{Class: push.SendThrottled, RetryAfter: ae.RetryAfter, Code: code}
		default:
			return push.SendResult{Class: push.SendTransient, Code: code}
		}
	}
	r := s.classify(ae.Code)
	if minting && r.Class == push.SendBadMessage {
		// A parameter error while minting is ours or the keys', never the
		// message's.
		r.Class = push.SendAuth
	}
	return r
}

// classify maps one of OPPO's codes to a send class. Codes this table does
// not know are transient: a retry with backoff costs little, and a code
// OPPO adds later should not drop pushes unseen.
func (s *Sender) classify(code int) push.SendResult {
	c := strconv.Itoa(code)
	switch code {
	case codeOK:
		return push.SendResult{Class: push.SendOK}
	case codeInvalidRegID:
		return push.SendResult{Class: push.SendInvalidToken, Code: c}
	case codeFlowControl, codeCallLimited, codeFrequencyLimit:
		return push.SendResult{Class: push.SendThrottled, Code: c}
	case codeDailyLimit:
		return push.SendResult{Class: push.SendThrottled, RetryAfter: untilChinaMidnight(s.now()), Code: c}
	case codeUnavailable:
		return push.SendResult{Class: push.SendTransient, Code: c}
	case codeInvalidToken, codeMissingToken,
		14, // invalid app key
		15, // missing app key
		16, // invalid signature
		17, // missing signature
		18, // missing timestamp
		19, // invalid timestamp (our clock is off by more than 10 minutes)
		26, // IP black list
		27, // access denied
		28, // app disabled
		30: // no API push permission
		return push.SendResult{Class: push.SendAuth, Code: c}
	case 12, // HTTP method not allowed
		20, 21, 22, 23, 24, // method and version errors
		25, // invalid encoding
		40, // missing required arguments
		41, // invalid arguments
		51, // invalid picture
		59, // no permission for a secondary action
		67: // category or notify_level refused
		return push.SendResult{Class: push.SendBadMessage, Code: c}
	}
	return push.SendResult{Class: push.SendTransient, Code: c}
}

// china is the time zone of OPPO's daily limits.
var china = time.FixedZone("UTC+8", 8*60*60)

// untilChinaMidnight is the time from now to the next midnight in China,
// when OPPO's daily limits reset.
func untilChinaMidnight(now time.Time) time.Duration {
	t := now.In(china)
	next := time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, china)
	return next.Sub(now)
}
