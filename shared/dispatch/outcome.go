package dispatch

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/offline-push/offline-push/shared/push"
)

// Outcome is the final fate of one target of an envelope. Every target
// dispatch receives ends in exactly one of these (DESIGN.md §Dispatch), or is
// handed on for a later try (see Requeued and Retried), so nothing is lost
// silently.
type Outcome string

// Final outcomes.
const (
	// Delivered: the vendor accepted the push.
	Delivered Outcome = "delivered"
	// InvalidToken: the vendor called the token dead; its binding was removed.
	InvalidToken Outcome = "invalid_token"
	// BadMessage: the vendor refused the request itself, or the envelope
	// could not be read; never retried.
	BadMessage Outcome = "bad_message"
	// Expired: the push's lifetime ended before it could be sent.
	Expired Outcome = "expired"
	// Unbound: the token no longer belongs to the target's device (a logout
	// or a move happened after ingest), so the push was dropped.
	Unbound Outcome = "unbound"
	// CallCancelled: an invite dropped because its call was cancelled, or a
	// cancel with nothing to cancel because the invite was never sent.
	CallCancelled Outcome = "call_cancelled"
	// CallSuperseded: the callee has a newer call; the older call's push
	// is dropped.
	CallSuperseded Outcome = "call_superseded"
	// CallExpired: the call stopped ringing before its invite could go out.
	CallExpired Outcome = "call_expired"
	// DeadLettered: retries ran out; the target was written to the vendor's
	// dead-letter queue for an operator.
	DeadLettered Outcome = "dead_lettered"
)

// Outcomes lists the final outcomes in a stable order.
var Outcomes = []Outcome{Delivered, InvalidToken, BadMessage, Expired, Unbound, CallCancelled, CallSuperseded, CallExpired, DeadLettered}

// Counts of targets that are not final yet. A requeued target was written
// to the queue again as part of a new message; a retried one belongs to a
// record that failed whole and that SQS delivers again. Either is counted
// once more when it reaches its final outcome.
const (
	Requeued = "requeued"
	Retried  = "retried"
)

// Tally counts targets by outcome over one SQS batch. It is safe for
// concurrent use by the records of the batch.
type Tally struct {
	mu     sync.Mutex
	counts map[string]int
}

// NewTally returns an empty tally.
func NewTally() *Tally { return &Tally{counts: map[string]int{}} }

// Add counts n targets under name (an Outcome, Requeued or Retried).
func (t *Tally) Add(name string, n int) {
	if n == 0 {
		return
	}
	t.mu.Lock()
	t.counts[name] += n
	t.mu.Unlock()
}

// merge adds every count of o.
func (t *Tally) merge(o map[string]int) {
	t.mu.Lock()
	for k, n := range o {
		if n != 0 {
			t.counts[k] += n
		}
	}
	t.mu.Unlock()
}

// Counts returns a copy of the counts; names never counted are absent.
func (t *Tally) Counts() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.counts)
}

// Namespace is the CloudWatch namespace of the dispatch metrics.
const Namespace = "OfflinePush"

// EMF returns one CloudWatch Embedded Metric Format line (without its
// newline) with the batch's counts: one metric per final outcome, plus
// Requeued and Retried, all with the dimension Vendor, every final outcome
// present even at zero so that alarms on a ratio always have both terms.
// Outcome is a metric name rather than a dimension because one EMF document
// holds one value per dimension, and one line per batch keeps the log
// volume (billed per byte) small.
func (t *Tally) EMF(v push.Vendor, at time.Time) ([]byte, error) {
	counts := t.Counts()
	names := make([]string, 0, len(Outcomes)+2)
	for _, o := range Outcomes {
		names = append(names, string(o))
	}
	names = append(names, Requeued, Retried)
	for k := range counts {
		if !slices.Contains(names, k) {
			names = append(names, k)
		}
	}
	type metric struct {
		Name string `json:"Name"`
		Unit string `json:"Unit"`
	}
	metrics := make([]metric, len(names))
	doc := map[string]any{"Vendor": string(v)}
	for i, n := range names {
		metrics[i] = metric{Name: n, Unit: "Count"}
		doc[n] = counts[n]
	}
	doc["_aws"] = map[string]any{
		"Timestamp": at.UnixMilli(),
		"CloudWatchMetrics": []any{map[string]any{
			"Namespace":  Namespace,
			"Dimensions": [][]string{{"Vendor"}},
			"Metrics":    metrics,
		}},
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode metrics: %w", err)
	}
	return b, nil
}
