package fcm

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"firebase.google.com/go/v4/errorutils"
	"firebase.google.com/go/v4/messaging"

	"github.com/offline-push/offline-push/shared/push"
)

// classify maps an error of the SDK for one message to its push class
// (DESIGN.md §Dispatch, VENDORS.md §3). Code is FCM's error code
// (google.firebase.fcm.v1.FcmError.errorCode) when the answer carries one,
// else the Google API status, else UNKNOWN. refresh is true for a 401
// UNAUTHENTICATED without an FCM code: FCM refused our access token, and a
// new one may be accepted.
//
//	UNREGISTERED (404)              invalid_token
//	SENDER_ID_MISMATCH (403)        invalid_token: the token belongs to another project
//	INVALID_ARGUMENT (400)          invalid_token if it names the registration token, else bad_message
//	QUOTA_EXCEEDED (429)            throttled, with Retry-After
//	UNAVAILABLE (503), INTERNAL     transient (the SDK has already retried 503s)
//	THIRD_PARTY_AUTH_ERROR (401)    auth: the APNs key in the Firebase console is bad
//	401 without an FCM code         auth, after one retry with a new token
//	403 without an FCM code         auth: wrong project, missing scope or API disabled
//	404 without an FCM code         auth: the endpoint or project does not exist
//	429 without an FCM code         throttled
//	anything else                   transient
//
// An INVALID_ARGUMENT names the token when FCM's BadRequest detail blames
// the field message.token, or its message speaks of the "registration
// token" ("The registration token is not a valid FCM registration token"):
// both are FCM's own wording, as the error-codes page documents it, and a
// token that FCM calls invalid will never become valid.
func classify(err error, now time.Time) (r push.SendResult, refresh bool) {
	if code, ok := errContext(err); ok {
		return push.SendResult{Class: push.SendTransient, Code: code}, false
	}
	body := readError(err)
	r.Code = body.code()
	if r.Code == "UNKNOWN" {
		// No answer: the SDK's own code of the network failure.
		switch {
		case errorutils.IsDeadlineExceeded(err):
			r.Code = "DEADLINE_EXCEEDED"
		case errorutils.IsUnavailable(err):
			r.Code = "UNAVAILABLE"
		}
	}
	switch {
	case messaging.IsUnregistered(err), messaging.IsSenderIDMismatch(err):
		r.Class = push.SendInvalidToken
	case messaging.IsInvalidArgument(err), errorutils.IsInvalidArgument(err):
		r.Class = push.SendBadMessage
		if body.namesToken() {
			r.Class = push.SendInvalidToken
		}
	case messaging.IsQuotaExceeded(err), errorutils.IsResourceExhausted(err):
		r.Class, r.RetryAfter = push.SendThrottled, retryAfter(err, now)
	case messaging.IsUnavailable(err), messaging.IsInternal(err):
		r.Class, r.RetryAfter = push.SendTransient, retryAfter(err, now)
	case messaging.IsThirdPartyAuthError(err):
		r.Class = push.SendAuth
	case errorutils.IsUnauthenticated(err):
		r.Class, refresh = push.SendAuth, true
	case errorutils.IsPermissionDenied(err), errorutils.IsNotFound(err):
		r.Class = push.SendAuth
	default:
		r.Class, r.RetryAfter = push.SendTransient, retryAfter(err, now)
	}
	return r, refresh
}

// errorBody is Google's error answer, with FCM's details.
type errorBody struct {
	Error struct {
		Message string `json:"message"`
		Status  string `json:"status"`
		Details []struct {
			Type            string `json:"@type"`
			ErrorCode       string `json:"errorCode"`
			FieldViolations []struct {
				Field string `json:"field"`
			} `json:"fieldViolations"`
		} `json:"details"`
	} `json:"error"`
}

// readError reads the error answer behind err; an error without an HTTP
// answer (a network failure) gives an empty body.
func readError(err error) *errorBody {
	var b errorBody
	resp := errorutils.HTTPResponse(err)
	if resp == nil || resp.Body == nil {
		return &b
	}
	// The SDK hands out a buffered copy of the answer.
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	json.Unmarshal(data, &b)
	return &b
}

func (b *errorBody) code() string {
	for _, d := range b.Error.Details {
		if d.Type == "type.googleapis.com/google.firebase.fcm.v1.FcmError" && d.ErrorCode != "" {
			return d.ErrorCode
		}
	}
	if b.Error.Status != "" {
		return b.Error.Status
	}
	return "UNKNOWN"
}

// namesToken reports whether an INVALID_ARGUMENT blames the registration
// token rather than the payload.
func (b *errorBody) namesToken() bool {
	for _, d := range b.Error.Details {
		for _, v := range d.FieldViolations {
			if v.Field == "message.token" {
				return true
			}
		}
	}
	return strings.Contains(strings.ToLower(b.Error.Message), "registration token")
}

// retryAfter reads the Retry-After header of the answer behind err: delay
// seconds or an HTTP date; zero when absent.
func retryAfter(err error, now time.Time) time.Duration {
	resp := errorutils.HTTPResponse(err)
	if resp == nil {
		return 0
	}
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil && secs > 0 {
		return time.Duration(secs) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil && at.After(now) {
		return at.Sub(now)
	}
	return 0
}
