package presence_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/offline-push/offline-push/shared/presence"
	"github.com/offline-push/offline-push/shared/push"
)

// orderRecorder is a Store that applies every lease and records, per user,
// the epochs in the order they were written, and the most writes it saw at
// once. It fails every write of the user named failUser.
type orderRecorder struct {
	failUser string

	mu       sync.Mutex
	inFlight int
	maxIn    int
	order    map[string][]int64
}

var errRecorder = errors.New("recorder: write refused")

func (r *orderRecorder) PutLease(_ context.Context, _, user string, l push.Lease, _ *int64, _ time.Time) (push.Lease, bool, error) {
	r.mu.Lock()
	r.inFlight++
	r.maxIn = max(r.maxIn, r.inFlight)
	r.mu.Unlock()
	runtime.Gosched() // let other writers in, so that overlap happens
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inFlight--
	if user == r.failUser {
		return push.Lease{}, false, errRecorder
	}
	if r.order == nil {
		r.order = map[string][]int64{}
	}
	r.order[user] = append(r.order[user], l.Epoch)
	return l, true, nil
}

func (r *orderRecorder) SetBadge(context.Context, string, string, int64) error { return nil }

func TestBatchOrderAndBound(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	var updates []presence.Update
	want := map[string][]int64{}
	var wantResults []presence.Result
	for i := range 500 {
		user := fmt.Sprint("u", i%40)
		epoch := int64(i)
		updates = append(updates, presence.Update{UserID: user, DeviceID: "d", State: presence.Online, Platform: push.PlatformPC, Lease: time.Minute, Epoch: epoch})
		want[user] = append(want[user], epoch)
		wantResults = append(wantResults, presence.Result{UserID: user, DeviceID: "d", Applied: true, Online: true, LeaseUntil: now.Add(time.Minute)})
	}
	rec := &orderRecorder{}
	got, err := presence.New(rec).Batch(context.Background(), "demo", updates, now)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantResults, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, rec.order); diff != "" {
		t.Errorf("per-user write order (-want +got):\n%s", diff)
	}
	if rec.maxIn > 16 {
		t.Errorf("%d writes ran at once, want at most 16", rec.maxIn)
	}
	t.Logf("at most %d writes ran at once", rec.maxIn)
}

func TestBatchFailure(t *testing.T) {
	updates := []presence.Update{
		{UserID: "a", DeviceID: "d", State: presence.Offline},
		{UserID: "b", DeviceID: "d", State: presence.Offline},
	}
	got, err := presence.New(&orderRecorder{failUser: "b"}).Batch(context.Background(), "demo", updates, time.Now())
	if !errors.Is(err, errRecorder) || got != nil {
		t.Errorf("Batch with a failing write = %v, %v; want nil, the write's error", got, err)
	}
}
