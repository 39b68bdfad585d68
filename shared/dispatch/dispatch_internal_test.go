package dispatch

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/offline-push/offline-push/shared/push"
)

// The engine's behaviour against the real stores and queues is tested in
// shared/app (dispatch_test.go), through the same constructor the Lambda
// functions use. These tests cover the arithmetic.

func TestBackoff(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		jitter  time.Duration // what the jitter function answers, capped below its bound
		attempt int
		want    time.Duration
	}{
		{"first attempt, no jitter", Config{}, 0, 0, time.Second},
		{"first attempt, full jitter", Config{}, time.Hour, 0, 2 * time.Second},
		{"doubles per attempt", Config{}, 0, 3, 8 * time.Second},
		{"capped at 900 s", Config{}, time.Hour, 12, MaxDelay},
		{"a huge attempt stays capped", Config{}, 0, 1000, MaxDelay / 2},
		{"a lower cap", Config{MaxDelay: time.Minute}, time.Hour, 10, time.Minute},
		{"no delay", Config{BaseDelay: -1}, time.Hour, 5, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Vendor = push.APNs
			cfg.Jitter = func(d time.Duration) time.Duration { return min(tc.jitter, d-1) }
			e, err := New(fullDeps(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := e.backoff(tc.attempt); got != tc.want {
				t.Errorf("backoff(%d) = %v, want %v", tc.attempt, got, tc.want)
			}
		})
	}
}

func TestRoundDelay(t *testing.T) {
	for _, tc := range []struct{ in, want time.Duration }{
		{0, 0}, {-time.Second, 0}, {time.Nanosecond, time.Second}, {time.Second, time.Second},
		{1500 * time.Millisecond, 2 * time.Second}, {MaxDelay, MaxDelay},
	} {
		if got := roundDelay(tc.in); got != tc.want {
			t.Errorf("roundDelay(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestEMF(t *testing.T) {
	tally := NewTally()
	tally.Add(string(Delivered), 3)
	tally.Add(string(Unbound), 1)
	tally.Add(Requeued, 2)
	tally.Add(string(Expired), 0)
	at := time.UnixMilli(1795000000123)
	line, err := tally.EMF(push.FCM, at)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		AWS struct {
			Timestamp         int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
		Vendor string
	}
	if err := json.Unmarshal(line, &doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, line)
	}
	if doc.AWS.Timestamp != at.UnixMilli() || doc.Vendor != "fcm" || len(doc.AWS.CloudWatchMetrics) != 1 {
		t.Fatalf("EMF envelope = %+v", doc)
	}
	d := doc.AWS.CloudWatchMetrics[0]
	if d.Namespace != "OfflinePush" || !cmp.Equal(d.Dimensions, [][]string{{"Vendor"}}) {
		t.Errorf("directive = %+v", d)
	}
	var values map[string]any
	json.Unmarshal(line, &values)
	var names []string
	for _, m := range d.Metrics {
		names = append(names, m.Name)
		if m.Unit != "Count" {
			t.Errorf("metric %s has unit %q", m.Name, m.Unit)
		}
		if _, ok := values[m.Name].(float64); !ok {
			t.Errorf("metric %s has no value", m.Name)
		}
	}
	want := []string{"delivered", "invalid_token", "bad_message", "expired", "unbound", "call_cancelled",
		"call_superseded", "call_expired", "dead_lettered", "requeued", "retried"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("metric names (-want +got):\n%s", diff)
	}
	if values["delivered"] != 3.0 || values["unbound"] != 1.0 || values["requeued"] != 2.0 || values["expired"] != 0.0 {
		t.Errorf("values = %v", values)
	}
}

func TestNewRequiresEverything(t *testing.T) {
	d := fullDeps()
	d.Queue = nil
	if _, err := New(d, Config{Vendor: push.APNs}); err == nil {
		t.Error("New without a queue succeeded")
	}
	if _, err := New(fullDeps(), Config{Vendor: "nokia"}); err == nil {
		t.Error("New with an unknown vendor succeeded")
	}
}

// stub satisfies every dependency; these tests never call it.
type stub struct{}

func (stub) Send(context.Context, *push.SendJob) []push.SendResult { panic("not called") }
func (stub) Bound(context.Context, string, push.Vendor, []push.Target) ([]bool, error) {
	panic("not called")
}
func (stub) Unbind(context.Context, string, push.Vendor, push.Target) error  { panic("not called") }
func (stub) CountBadge(context.Context, string, string, string) (int, error) { panic("not called") }
func (stub) Calls(context.Context, string, []string, time.Time) (map[string]*Call, error) {
	panic("not called")
}
func (stub) MarkSending(context.Context, string, string, string, []string, time.Time) (bool, error) {
	panic("not called")
}
func (stub) MarkDone(context.Context, string, string, string, map[string]InviteState, time.Time) error {
	panic("not called")
}
func (stub) Requeue(context.Context, *push.Envelope, time.Duration) error { panic("not called") }
func (stub) DeadLetter(context.Context, *push.Envelope) error             { panic("not called") }
func (stub) VendorCredentials(context.Context, string, string) ([]byte, string, error) {
	panic("not called")
}

func fullDeps() Deps {
	return Deps{Sender: stub{}, Bindings: stub{}, Unbinder: stub{}, Badges: stub{}, Calls: stub{}, Queue: stub{}, Credentials: stub{}}
}
