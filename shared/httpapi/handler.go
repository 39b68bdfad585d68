package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// Request is what a route handler sees once routing, size limits, path id
// validation and authentication have passed (API.md §1 order of checks).
type Request struct {
	Route     Route
	App       string            // the {app} path parameter; empty on public routes
	Params    map[string]string // decoded path parameters by name
	Query     url.Values
	Header    http.Header
	Body      []byte // decoded (base64 undone)
	RequestID string
	Now       time.Time // the server clock at receipt, one value per request
}

// Response is a handler's answer. A nil Body sends no body (204).
type Response struct {
	Status int
	Body   any
}

// HandlerFunc serves one route. A returned error is mapped to a status and
// the API.md error shape by the router, the only place that does so.
type HandlerFunc func(ctx context.Context, r *Request) (Response, error)
