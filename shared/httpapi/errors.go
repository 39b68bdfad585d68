package httpapi

import (
	"errors"
	"net/http"

	"github.com/offline-push/offline-push/shared/push"
)

// Error codes of the API.md §1 table. They are part of the public contract:
// callers switch on them, so they never change spelling.
const (
	CodeInvalidArgument  = "invalid_argument"
	CodeUnknownCert      = "unknown_cert"
	CodeUnauthenticated  = "unauthenticated"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeConflict         = "conflict"
	CodePayloadTooLarge  = "payload_too_large"
	CodeInternal         = "internal"
)

// unauthenticatedMessage is the one message every authentication failure
// answers with, so a caller cannot tell a wrong secret from an unknown app or
// a replayed nonce (API.md §2).
const unauthenticatedMessage = "request is not authenticated: missing, expired or invalid signature, or a reused nonce"

// ErrorBody is the shape of every error response (API.md §1). Clients such as
// pushctl decode it; the router is the only code that produces it.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail carries the code, a human-readable message and, for
// invalid_argument and unknown_cert, the JSON path of the culprit.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// apiError is an error response decided before or after the handler runs.
type apiError struct {
	status int
	detail ErrorDetail
}

// classify maps an error to its status and body. It is the only place in the
// service that does so (STYLE.md, Errors). internal reports whether the error
// is a fault of ours whose detail must be logged and hidden from the caller.
func classify(err error, requestID string) (e apiError, internal bool) {
	var ia *push.InvalidArgumentError
	switch {
	case errors.As(err, &ia):
		msg := ia.Message
		if msg == "" {
			msg = "invalid argument"
		}
		return apiError{http.StatusBadRequest, ErrorDetail{Code: CodeInvalidArgument, Message: msg, Field: ia.Field}}, false
	case errors.Is(err, push.ErrUnknownCert):
		return apiError{http.StatusBadRequest, ErrorDetail{
			Code:    CodeUnknownCert,
			Message: "certName names no credentials of that vendor for this app",
			Field:   "certName",
		}}, false
	case errors.Is(err, push.ErrUnauthenticated):
		return unauthenticated(), false
	case errors.Is(err, push.ErrNotFound):
		return apiError{http.StatusNotFound, ErrorDetail{Code: CodeNotFound, Message: "not found"}}, false
	case errors.Is(err, push.ErrConflict):
		return apiError{http.StatusConflict, ErrorDetail{
			Code:    CodeConflict,
			Message: "the request conflicts with one still in progress; retrying is safe",
		}}, false
	default:
		return internalError(requestID), true
	}
}

func unauthenticated() apiError {
	return apiError{http.StatusUnauthorized, ErrorDetail{Code: CodeUnauthenticated, Message: unauthenticatedMessage}}
}

// internalError hides every detail of a fault of ours: the caller gets only
// the request id to quote when asking the operator, who finds the detail in
// the log line carrying the same id.
func internalError(requestID string) apiError {
	return apiError{http.StatusInternalServerError, ErrorDetail{
		Code:    CodeInternal,
		Message: "internal error, request id " + requestID,
	}}
}

func notFound() apiError {
	return apiError{http.StatusNotFound, ErrorDetail{Code: CodeNotFound, Message: "no such route"}}
}

func invalid(field, msg string) apiError {
	return apiError{http.StatusBadRequest, ErrorDetail{Code: CodeInvalidArgument, Message: msg, Field: field}}
}
