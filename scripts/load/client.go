package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/offline-push/offline-push/shared/httpapi"
)

// Retry bounds of the API client. A caller of the service retries what
// API.md calls safe to retry (409 conflict, 5xx, 429, a lost connection)
// with the same body, so the idempotency of messageId is exercised as an
// IM platform would exercise it.
const (
	retryDeadline  = 90 * time.Second
	retryBaseDelay = 100 * time.Millisecond
	retryMaxDelay  = 3 * time.Second
	requestTimeout = 30 * time.Second
	maxAnswer      = 16 << 20
)

// client signs requests to the service (API.md §2).
type client struct {
	base   string
	secret string
	http   *http.Client
}

func newClient(base, secret string, conns int) *client {
	return &client{
		base:   base,
		secret: secret,
		http: &http.Client{
			Timeout: requestTimeout,
			Transport: &http.Transport{
				Proxy:               nil, // loopback only, never through a proxy
				MaxIdleConnsPerHost: conns,
			},
		},
	}
}

// answer is one HTTP exchange.
type answer struct {
	Status  int
	Body    []byte
	Latency time.Duration
	// At is when the answer arrived.
	At time.Time
}

// attempts is what it took to get a final answer.
type attempts struct {
	// Retried counts the answers that were retried, by status (0 for a
	// transport failure).
	Retried map[int]int
}

// do sends one signed request and reads the whole answer.
func (c *client) do(ctx context.Context, method, path string, body []byte) (answer, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return answer{}, err
	}
	nonce, err := newNonce()
	if err != nil {
		return answer{}, err
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Push-Timestamp", ts)
	req.Header.Set("X-Push-Nonce", nonce)
	req.Header.Set("X-Push-Signature", httpapi.Sign(c.secret, method, req.URL.EscapedPath(), req.URL.RawQuery, ts, nonce, body))
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return answer{}, fmt.Errorf("%s %s: read the answer: %w", method, path, err)
	}
	now := time.Now()
	return answer{Status: resp.StatusCode, Body: b, Latency: now.Sub(start), At: now}, nil
}

// retryable reports whether API.md calls an answer safe and useful to
// retry unchanged.
func retryable(status int) bool {
	switch status {
	case http.StatusConflict, http.StatusTooManyRequests,
		http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// doRetry sends a request until it gets an answer that is not retryable,
// or the retry deadline passes; each attempt is signed afresh, since a
// nonce is spent once seen. It returns the last answer and what was
// retried on the way.
func (c *client) doRetry(ctx context.Context, method, path string, body []byte) (answer, attempts, error) {
	ctx, cancel := context.WithTimeout(ctx, retryDeadline)
	defer cancel()
	tries := attempts{Retried: map[int]int{}}
	for n := 0; ; n++ {
		a, err := c.do(ctx, method, path, body)
		if err == nil && !retryable(a.Status) {
			return a, tries, nil
		}
		tries.Retried[a.Status]++
		delay := min(retryBaseDelay<<min(n, 10), retryMaxDelay)
		delay = delay/2 + time.Duration(rand.Int64N(int64(delay/2)+1))
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			if err == nil {
				return a, tries, fmt.Errorf("%s %s: still %d when the retries ran out: %s", method, path, a.Status, brief(a.Body))
			}
			return a, tries, fmt.Errorf("%s %s: %w", method, path, errors.Join(err, ctx.Err()))
		case <-t.C:
		}
	}
}

// brief returns the start of an answer body for an error message. Answers
// of the service never carry a token or a secret (API.md §1).
func brief(b []byte) string {
	const n = 200
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// newNonce returns 22 random characters of [A-Za-z0-9_-].
func newNonce() (string, error) {
	b := make([]byte, 16)
	if _, err := crand.Read(b); err != nil {
		return "", fmt.Errorf("random nonce: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
