package fcmemu

import (
	"net/http"
	"time"
)

// FCM error codes (google.firebase.fcm.v1.FcmError.errorCode) the emulator
// can answer with, and the HTTP status FCM pairs with each.
const (
	Unregistered        = "UNREGISTERED"           // 404: the token is dead
	InvalidArgument     = "INVALID_ARGUMENT"       // 400: a bad token or field
	SenderIDMismatch    = "SENDER_ID_MISMATCH"     // 403: the token belongs to another project
	QuotaExceeded       = "QUOTA_EXCEEDED"         // 429: slow down, honour Retry-After
	Unavailable         = "UNAVAILABLE"            // 503: overloaded, retry with backoff
	Internal            = "INTERNAL"               // 500: unknown server error
	ThirdPartyAuthError = "THIRD_PARTY_AUTH_ERROR" // 401: the APNs or web push credential in the console is bad
)

// Fault is a failure the emulator answers for one token.
type Fault struct {
	// Code is one of the FCM error codes above.
	Code string
	// Field is the field an INVALID_ARGUMENT blames: empty blames the
	// registration token ("message.token", with FCM's "not a valid FCM
	// registration token" message); any other path, such as
	// "message.android.notification.tag", makes it a payload error.
	Field string
	// Times limits the fault to the first Times requests for the token
	// (the SDK's own retries included); 0 means every request.
	Times int
	// RetryAfter, when positive, is sent as a Retry-After header.
	RetryAfter time.Duration
}

// Faults are the failures in effect. Each request that passes
// authentication and validation first meets its token's Fault, if any;
// otherwise one seeded draw decides whether it is throttled (429
// QUOTA_EXCEEDED), fails (500 INTERNAL) or is unavailable (503 UNAVAILABLE),
// by the shares given. Draws follow Seed, so a run that sends one request at
// a time meets the same answers every time; concurrent senders meet the
// same sequence in a different order.
type Faults struct {
	Tokens           map[string]Fault
	ThrottleShare    float64
	InternalShare    float64
	UnavailableShare float64
	// RetryAfter is sent as Retry-After on share-drawn 429 and 503
	// answers; zero leaves the header out.
	RetryAfter time.Duration
	// Delay holds every authenticated, valid send this long before it is
	// answered (or until the client gives up).
	Delay time.Duration
	Seed  int64
}

// fault decides a valid request's fault, or nil to accept it, after the
// configured delay.
func (s *Server) fault(r *http.Request, token string) *apiError {
	s.mu.Lock()
	f := s.faults
	var e *apiError
	if tf, ok := f.Tokens[token]; ok && (tf.Times == 0 || s.hits[token] < tf.Times) {
		s.hits[token]++
		e = faultError(tf.Code, tf.Field, tf.RetryAfter)
	} else if share := f.ThrottleShare + f.InternalShare + f.UnavailableShare; share > 0 {
		u := s.rng.Float64()
		switch {
		case u < f.ThrottleShare:
			e = faultError(QuotaExceeded, "", f.RetryAfter)
		case u < f.ThrottleShare+f.InternalShare:
			e = faultError(Internal, "", 0)
		case u < share:
			e = faultError(Unavailable, "", f.RetryAfter)
		}
	}
	s.mu.Unlock()
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
		}
		t.Stop()
	}
	return e
}

// faultError builds FCM's answer for an error code, with the HTTP status
// and message FCM sends with it.
func faultError(code, field string, retryAfter time.Duration) *apiError {
	e := &apiError{fcmCode: code, retryAfter: retryAfter}
	switch code {
	case Unregistered:
		e.status, e.statusText, e.message = http.StatusNotFound, "NOT_FOUND", "Requested entity was not found."
	case InvalidArgument:
		e.status, e.statusText = http.StatusBadRequest, "INVALID_ARGUMENT"
		if field == "" || field == "message.token" {
			e.field, e.message = "message.token", "The registration token is not a valid FCM registration token"
		} else {
			e.field, e.message = field, "Invalid value at '"+field+"'"
		}
	case SenderIDMismatch:
		e.status, e.statusText, e.message = http.StatusForbidden, "PERMISSION_DENIED", "SenderId mismatch"
	case QuotaExceeded:
		e.status, e.statusText, e.message = http.StatusTooManyRequests, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Messages sent per minute'."
	case Unavailable:
		e.status, e.statusText, e.message = http.StatusServiceUnavailable, "UNAVAILABLE", "The service is currently unavailable."
	case ThirdPartyAuthError:
		e.status, e.statusText, e.message = http.StatusUnauthorized, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service"
	default: // Internal and codes the emulator does not know
		e.status, e.statusText, e.message = http.StatusInternalServerError, "INTERNAL", "Internal error encountered."
	}
	return e
}
