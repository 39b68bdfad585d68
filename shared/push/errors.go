package push

import (
	"errors"
	"fmt"
)

// Sentinel errors shared by every layer. Adapters translate foreign errors
// into these at their boundary; httpapi maps them to statuses in one place.
var (
	// ErrNotFound means the thing asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a write lost a race it could not resolve, or the same
	// message is still being processed. Retrying is safe.
	ErrConflict = errors.New("conflict")
	// ErrUnauthenticated covers every authentication failure; callers are told
	// nothing more specific.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrUnknownCert means a certName names no credentials of that vendor.
	ErrUnknownCert = errors.New("unknown_cert")
	// ErrThrottled means a dependency kept refusing the request for load and
	// retries ran out.
	ErrThrottled = errors.New("throttled")
)

// InvalidArgumentError is a caller error naming the JSON path of the culprit.
type InvalidArgumentError struct {
	Field   string // JSON path, e.g. "updates[3].epoch"; empty when no single field is at fault
	Message string
}

func (e *InvalidArgumentError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// Invalid returns an *InvalidArgumentError for field.
func Invalid(field, format string, args ...any) error {
	return &InvalidArgumentError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// IsInvalid reports whether err is or wraps an *InvalidArgumentError.
func IsInvalid(err error) bool {
	var ia *InvalidArgumentError
	return errors.As(err, &ia)
}

// Prefix returns err with its field prefixed by parent (for nested objects and
// arrays), or err unchanged when it is not an *InvalidArgumentError.
func Prefix(parent string, err error) error {
	var ia *InvalidArgumentError
	if !errors.As(err, &ia) {
		return err
	}
	f := parent
	switch {
	case ia.Field == "":
	case ia.Field[0] == '[':
		f = parent + ia.Field
	default:
		f = parent + "." + ia.Field
	}
	return &InvalidArgumentError{Field: f, Message: ia.Message}
}
