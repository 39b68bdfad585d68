package vivo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/offline-push/offline-push/shared/push"
)

// vivo's result codes (VENDORS.md §8).
const (
	codeOK = 0
	// codeAuthFailed is taken to be vivo's answer to a refused authToken
	// ("权限认证失败"); unverified, see the package comment.
	codeAuthFailed = 10000
	// codeDailyTotal: the day's total is spent; vivo asks callers not to
	// call /message/send (or the list APIs) again that day.
	codeDailyTotal = 10070
	// codeAppIDMismatch: the body's appId is not the token's.
	codeAppIDMismatch = 10094
	codeBadCategory   = 10096
	codeCategoryClass = 10097
	// codeListPayloadLimit: the day's list payloads are spent.
	codeListPayloadLimit = 10252
	// codeInvalidUser: the target is unreachable; invalidUser says why.
	codeInvalidUser = 10302
)

const (
	maxAnswerBytes      = 4 << 20
	maxRetryAfterHeader = 24 * time.Hour
)

// answer is the body of every vivo API.
type answer struct {
	Result       int           `json:"result"`
	Desc         string        `json:"desc"`
	AuthToken    string        `json:"authToken,omitempty"`
	TaskID       string        `json:"taskId,omitempty"`
	InvalidUser  *invalidUser  `json:"invalidUser,omitempty"`
	InvalidUsers []invalidUser `json:"invalidUsers,omitempty"`
}

// invalidUser names an unreachable target: userid is the regId sent.
type invalidUser struct {
	UserID string `json:"userid"`
	Status int    `json:"status"`
}

// apiError is an answer vivo gave with a result other than success, or an
// HTTP status other than 200.
type apiError struct {
	Status     int // HTTP status; 0 when vivo answered 200 with a result
	Code       int
	Desc       string
	RetryAfter time.Duration
	minting    bool
}

func (e *apiError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("HTTP %d", e.Status)
	}
	return fmt.Sprintf("result %d %s", e.Code, e.Desc)
}

// sendGroup delivers one notification to the targets at idx (at most
// MaxList) and sets their results.
func (s *Sender) sendGroup(ctx context.Context, p *parsed, msg message, targets []push.Target, idx []int, results []push.SendResult) {
	if len(idx) == 1 || s.listRefused(p) {
		for _, i := range idx {
			results[i] = s.sendSingle(ctx, p, msg, targets[i].Token)
		}
		return
	}
	regIDs := make([]string, len(idx))
	for j, i := range idx {
		regIDs[j] = targets[i].Token
	}
	res, refused := s.sendList(ctx, p, msg, regIDs)
	if refused {
		// vivo refuses list payloads for today: go one by one until its
		// reset rather than make the whole group wait.
		s.refuseLists(p)
		for _, i := range idx {
			results[i] = s.sendSingle(ctx, p, msg, targets[i].Token)
		}
		return
	}
	for j, i := range idx {
		results[i] = res[j]
	}
}

// listRefused reports whether vivo refused this app's list payloads today.
func (s *Sender) listRefused(p *parsed) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	until, ok := s.noListTo[p.cacheKey()]
	return ok && s.now().Before(until)
}

func (s *Sender) refuseLists(p *parsed) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noListTo[p.cacheKey()] = s.now().Add(untilChinaMidnight(s.now()))
}

// sendSingle sends msg to one regId through /message/send.
func (s *Sender) sendSingle(ctx context.Context, p *parsed, msg message, regID string) push.SendResult {
	msg.RegID = regID
	msg.RequestID = s.requestID()
	var a answer
	if err := s.call(ctx, p, sendPath, msg, &a); err != nil {
		return s.classifyErr(err)
	}
	switch a.Result {
	case codeOK:
		return push.SendResult{Class: push.SendOK}
	case codeInvalidUser:
		status := 0
		if a.InvalidUser != nil {
			status = a.InvalidUser.Status
		}
		return invalidUserResult(status)
	}
	return s.classify(a.Result)
}

// sendList sends msg to 2 to MaxList regIds through saveListPayload and
// pushToList. refused reports that vivo refuses list payloads for today.
func (s *Sender) sendList(ctx context.Context, p *parsed, msg message, regIDs []string) (results []push.SendResult, refused bool) {
	all := func(r push.SendResult) []push.SendResult {
		out := make([]push.SendResult, len(regIDs))
		fill(out, nil, r)
		return out
	}
	msg.RequestID = s.requestID()
	var saved answer
	if err := s.call(ctx, p, savePath, msg, &saved); err != nil {
		return all(s.classifyErr(err)), false
	}
	switch {
	case saved.Result == codeListPayloadLimit:
		return nil, true
	case saved.Result != codeOK:
		return all(s.classify(saved.Result)), false
	case saved.TaskID == "":
		return all(push.SendResult{Class: push.SendTransient, Code: "no_task_id"}), false
	}
	var pushed answer
	req := listPush{AppID: p.appID, RegIDs: regIDs, TaskID: saved.TaskID, RequestID: s.requestID()}
	if err := s.call(ctx, p, pushListPath, req, &pushed); err != nil {
		return all(s.classifyErr(err)), false
	}
	if pushed.Result != codeOK {
		return all(s.classify(pushed.Result)), false
	}
	bad := make(map[string]int, len(pushed.InvalidUsers))
	for _, u := range pushed.InvalidUsers {
		bad[u.UserID] = u.Status
	}
	out := make([]push.SendResult, len(regIDs))
	for j, id := range regIDs {
		if status, ok := bad[id]; ok {
			out[j] = invalidUserResult(status)
		} else {
			out[j] = push.SendResult{Class: push.SendOK}
		}
	}
	return out, false
}

// invalidUserResult maps invalidUser.status: 1 regId unknown to this app,
// 2 uninstalled, unsubscribed or cleared, 3 inactive for 90 days: dead
// tokens; 4 not a test user: a test push, which we never send.
func invalidUserResult(status int) push.SendResult {
	code := strconv.Itoa(codeInvalidUser) + "/" + strconv.Itoa(status)
	if status == 4 {
		return push.SendResult{Class: push.SendBadMessage, Code: code}
	}
	return push.SendResult{Class: push.SendInvalidToken, Code: code}
}

// call posts body to path with the app's token and decodes the answer into
// out. When vivo refuses the token, it is refreshed once and the request
// sent again; a second refusal stays in out for the caller to classify.
func (s *Sender) call(ctx context.Context, p *parsed, path string, body any, out *answer) error {
	tok, err := s.token(ctx, p)
	if err != nil {
		return err
	}
	if err := s.post(ctx, p.pushHost+path, tok.Value, body, out); err != nil {
		return err
	}
	if out.Result != codeAuthFailed && out.Result != codeAppIDMismatch {
		return nil
	}
	tok, err = s.tokenOtherThan(ctx, p, tok.Value)
	if err != nil {
		return err
	}
	*out = answer{}
	return s.post(ctx, p.pushHost+path, tok.Value, body, out)
}

// post sends body as JSON, with the authToken header when tok is set, and
// decodes vivo's JSON answer into out. A status other than 200 is an
// *apiError.
func (s *Sender) post(ctx context.Context, endpoint, tok string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("vivo request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("vivo request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("authToken", tok)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("vivo request: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return fmt.Errorf("vivo answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return &apiError{Status: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After"), s.now())}
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("vivo answer: %w", err)
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

// classifyErr maps a failed request to the result of each of its targets.
func (s *Sender) classifyErr(err error) push.SendResult {
	if errors.Is(err, errTokenCache) {
		return push.SendResult{Class: push.SendTransient, Code: "token_cache"}
	}
	var ae *apiError
	if !errors.As(err, &ae) {
		return push.SendResult{Class: push.SendTransient, Code: "network"}
	}
	if ae.Status != 0 {
		code := "http_" + strconv.Itoa(ae.Status)
		if ae.Status == http.StatusTooManyRequests {
			return push.SendResult{Class: push.SendThrottled, RetryAfter: ae.RetryAfter, Code: code}
		}
		return push.SendResult{Class: push.SendTransient, Code: code}
	}
	if ae.minting {
		// vivo refused our keys, or minting too often: either way the
		// credentials need an operator's eye, as the auth class says.
		return push.SendResult{Class: push.SendAuth, Code: "auth/" + strconv.Itoa(ae.Code)}
	}
	return s.classify(ae.Code)
}

// classify maps one of vivo's result codes to a send class. Codes this
// table does not know are transient: a retry with backoff costs little, and
// a code vivo adds later should not drop pushes unseen.
func (s *Sender) classify(code int) push.SendResult {
	c := strconv.Itoa(code)
	switch code {
	case codeOK:
		return push.SendResult{Class: push.SendOK}
	case codeDailyTotal, codeListPayloadLimit:
		return push.SendResult{Class: push.SendThrottled, RetryAfter: untilChinaMidnight(s.now()), Code: c}
	case codeAuthFailed, codeAppIDMismatch:
		return push.SendResult{Class: push.SendAuth, Code: c}
	case codeBadCategory, codeCategoryClass:
		return push.SendResult{Class: push.SendBadMessage, Code: c}
	case codeInvalidUser:
		return push.SendResult{Class: push.SendInvalidToken, Code: c}
	}
	return push.SendResult{Class: push.SendTransient, Code: c}
}

// china is the time zone of vivo's daily quotas.
var china = time.FixedZone("UTC+8", 8*60*60)

// untilChinaMidnight is the time from now to the next midnight in China,
// when vivo's daily quotas reset.
func untilChinaMidnight(now time.Time) time.Duration {
	t := now.In(china)
	next := time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, china)
	return next.Sub(now)
}
