package sqsbatch_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"

	"github.com/offline-push/offline-push/shared/sqsbatch"
)

func event(bodies ...string) events.SQSEvent {
	var ev events.SQSEvent
	for i, b := range bodies {
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: "m" + strconv.Itoa(i), Body: b})
	}
	return ev
}

func failures(resp events.SQSEventResponse) []string {
	out := []string{}
	for _, f := range resp.BatchItemFailures {
		out = append(out, f.ItemIdentifier)
	}
	return out
}

func TestHandler(t *testing.T) {
	tests := []struct {
		name   string
		bodies []string
		want   []string
	}{
		{"all succeed", []string{"ok", "ok"}, []string{}},
		{"empty event", nil, []string{}},
		{"errors are reported by record", []string{"fail", "ok", "fail"}, []string{"m0", "m2"}},
		{"a panic fails its record only", []string{"ok", "panic", "ok"}, []string{"m1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var reported []string
			var mu sync.Mutex
			h := sqsbatch.Handler(func(_ context.Context, m events.SQSMessage) error {
				switch m.Body {
				case "fail":
					return errors.New("boom")
				case "panic":
					panic("kaboom")
				}
				return nil
			}, sqsbatch.Options{OnError: func(_ context.Context, id string, err error) {
				mu.Lock()
				defer mu.Unlock()
				reported = append(reported, id)
				var p *sqsbatch.PanicError
				if m := tc.bodies[id[1]-'0']; m == "panic" && (!errors.As(err, &p) || len(p.Stack) == 0) {
					t.Errorf("record %s: error %v, want a *PanicError with a stack", id, err)
				}
			}})
			resp, err := h(context.Background(), event(tc.bodies...))
			if err != nil {
				t.Fatalf("handler error: %v", err)
			}
			if diff := cmp.Diff(tc.want, failures(resp)); diff != "" {
				t.Errorf("batch item failures (-want +got):\n%s", diff)
			}
			if len(reported) != len(tc.want) {
				t.Errorf("OnError told of %v, want %v", reported, tc.want)
			}
		})
	}
}

// TestProcessConcurrency checks the bound on records in flight, with a
// record type of its own.
func TestProcessConcurrency(t *testing.T) {
	type rec struct{ id string }
	for _, limit := range []int{1, 3, 0} {
		recs := make([]rec, 25)
		for i := range recs {
			recs[i] = rec{strconv.Itoa(i)}
		}
		var cur, peak atomic.Int32
		gate := make(chan struct{})
		started := make(chan struct{}, len(recs))
		want := int32(limit)
		if limit == 0 {
			want = sqsbatch.DefaultConcurrency
		}
		go func() {
			// Let records through only once the bound is reached, so that
			// a missing bound would show as a higher peak.
			for range want {
				<-started
			}
			close(gate)
		}()
		resp, err := sqsbatch.Process(context.Background(), recs, func(r rec) string { return r.id }, func(_ context.Context, r rec) error {
			n := cur.Add(1)
			started <- struct{}{}
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			<-gate
			cur.Add(-1)
			if r.id == "7" {
				return errors.New("seven")
			}
			return nil
		}, sqsbatch.Options{Concurrency: limit})
		if err != nil {
			t.Fatal(err)
		}
		if got := peak.Load(); got != want {
			t.Errorf("limit %d: peak in flight = %d, want %d", limit, got, want)
		}
		if diff := cmp.Diff([]string{"7"}, failures(resp)); diff != "" {
			t.Errorf("limit %d: failures (-want +got):\n%s", limit, diff)
		}
	}
}

// TestProcessNoID fails the whole batch when a failed record has no id.
func TestProcessNoID(t *testing.T) {
	ev := event("fail", "ok", "fail")
	ev.Records[0].MessageId = ""
	resp, err := sqsbatch.Handler(func(_ context.Context, m events.SQSMessage) error {
		if m.Body == "fail" {
			return errors.New("boom")
		}
		return nil
	}, sqsbatch.Options{})(context.Background(), ev)
	if !errors.Is(err, sqsbatch.ErrNoID) {
		t.Errorf("err = %v, want ErrNoID", err)
	}
	if diff := cmp.Diff([]string{"m2"}, failures(resp)); diff != "" {
		t.Errorf("failures (-want +got):\n%s", diff)
	}
}
