package ingest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"

	"github.com/offline-push/offline-push/shared/push"
)

// Result is the answer to a message (API.md §6). Its JSON form is the
// response body, and also what the idempotency record keeps, so that a
// duplicate answers exactly the first result.
type Result struct {
	MessageID  string
	Duplicate  bool
	Recipients int // after dedup and sender removal
	Devices    int // decisions that name a device
	Pushes     int // decisions to push
	Skipped    map[push.Reason]int
	// Decisions are listed only with explain; Explained tells an explained
	// result without decisions (an empty list) from one without explain
	// (no member at all).
	Decisions []Decision
	Explained bool
	// DryRun is true for a dry run, which answers 200 instead of 202. It is
	// not part of the body.
	DryRun bool
}

// Decision is one decision as explain shows it.
type Decision struct {
	UserID   string      `json:"userId"`
	DeviceID *string     `json:"deviceId"`
	Vendor   *string     `json:"vendor"`
	Push     bool        `json:"push"`
	Reason   push.Reason `json:"reason"`
	// Content is the rendered text before any vendor's truncation, on push
	// decisions only.
	Content *string `json:"content,omitempty"`
}

// resultJSON is Result on the wire.
type resultJSON struct {
	MessageID  string              `json:"messageId"`
	Duplicate  bool                `json:"duplicate"`
	Recipients int                 `json:"recipients"`
	Devices    int                 `json:"devices"`
	Pushes     int                 `json:"pushes"`
	Skipped    map[push.Reason]int `json:"skipped"`
	Decisions  *[]Decision         `json:"decisions,omitempty"`
}

// MarshalJSON writes the API.md §6 response body.
func (r *Result) MarshalJSON() ([]byte, error) {
	w := resultJSON{
		MessageID: r.MessageID, Duplicate: r.Duplicate, Recipients: r.Recipients,
		Devices: r.Devices, Pushes: r.Pushes, Skipped: r.Skipped,
	}
	if w.Skipped == nil {
		w.Skipped = map[push.Reason]int{}
	}
	if r.Explained {
		ds := r.Decisions
		if ds == nil {
			ds = []Decision{}
		}
		w.Decisions = &ds
	}
	// Not HTML-escaped, like every response of the router: a "<" in a
	// message text arrives as "<".
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (r *Result) UnmarshalJSON(b []byte) error {
	var w resultJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*r = Result{
		MessageID: w.MessageID, Duplicate: w.Duplicate, Recipients: w.Recipients,
		Devices: w.Devices, Pushes: w.Pushes, Skipped: w.Skipped,
	}
	if w.Decisions != nil {
		r.Decisions, r.Explained = *w.Decisions, true
	}
	return nil
}

// decision converts a policy decision for explain.
func decision(d *push.Decision) Decision {
	out := Decision{UserID: d.UserID, Push: d.Push, Reason: d.Reason}
	if d.DeviceID != "" {
		id, v := d.DeviceID, string(d.Vendor)
		out.DeviceID, out.Vendor = &id, &v
	}
	if d.Push {
		c := d.Content
		out.Content = &c
	}
	return out
}

// maxStoredResult bounds the compressed result kept for duplicates; the
// ledger must hold at least this much (dynamo.MaxMessageResult is larger).
const maxStoredResult = 280 << 10

// encodeStored returns the compressed JSON of r for the ledger. An explained
// result of up to 1000 recipients compresses well (its texts repeat), but
// one whose texts do not may still not fit: the contents of the decisions
// are dropped then, and if even that does not fit, the decisions, so that a
// duplicate still answers the counts.
func encodeStored(r *Result) ([]byte, error) {
	b, err := gzipJSON(r)
	if err != nil || len(b) <= maxStoredResult || !r.Explained {
		return b, err
	}
	lean := *r
	lean.Decisions = make([]Decision, len(r.Decisions))
	for i, d := range r.Decisions {
		d.Content = nil
		lean.Decisions[i] = d
	}
	if b, err = gzipJSON(&lean); err != nil || len(b) <= maxStoredResult {
		return b, err
	}
	lean.Decisions, lean.Explained = nil, false
	return gzipJSON(&lean)
}

// decodeStored reads what encodeStored wrote.
func decodeStored(b []byte) (*Result, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("stored result: %w", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("stored result: %w", err)
	}
	var r Result
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("stored result: %w", err)
	}
	return &r, nil
}

func gzipJSON(r *Result) ([]byte, error) {
	raw, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode result: %w", err)
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := zw.Write(raw); err != nil {
		return nil, fmt.Errorf("compress result: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compress result: %w", err)
	}
	return buf.Bytes(), nil
}
