// Package presence is the presence use case (API.md §4): devices take, renew
// and end leases, ordered by the caller's connection epoch, and clients set
// the badge base that later pushes count up from.
//
// A lease is an expiry instant, never a flag: a device is online while the
// instant is in the future, checked inline on every read, so a device that
// vanishes without saying goodbye goes offline on time without any cleanup.
package presence

import (
	"context"
	"sync"
	"time"

	"github.com/offline-push/offline-push/shared/push"
)

// Store keeps leases and badge bases. The DynamoDB adapter implements it.
type Store interface {
	// PutLease writes lease l of a device of user unless the stored lease of
	// that device has a higher epoch, and sets the user's badge base to
	// *badge in the same atomic write when badge is not nil. An empty
	// l.Platform keeps the stored one; a zero l.Until means offline. It
	// returns the device's lease as stored after the call and whether the
	// write applied. now is the server clock of the request.
	PutLease(ctx context.Context, app, user string, l push.Lease, badge *int64, now time.Time) (stored push.Lease, applied bool, err error)
	// SetBadge sets the user's badge base to count.
	SetBadge(ctx context.Context, app, user string, count int64) error
}

// Result is the outcome of one presence update: whether it applied, and the
// device's presence as stored afterwards.
type Result struct {
	UserID   string
	DeviceID string
	Applied  bool
	Online   bool
	// LeaseUntil is the end of the lease the device holds, zero when it is
	// offline (explicitly or because its lease expired).
	LeaseUntil time.Time
}

// batchInFlight bounds the writes one batch runs at once. Sixteen keeps a
// 500-update batch within a few round trips while leaving the container's
// connection pool and the table's partitions plenty of headroom.
const batchInFlight = 16

// Service applies presence updates to a Store.
type Service struct {
	store Store
}

// New returns a Service over store.
func New(store Store) *Service {
	return &Service{store: store}
}

// Put applies one validated update at server time now.
func (s *Service) Put(ctx context.Context, app string, u Update, now time.Time) (Result, error) {
	now = now.Truncate(time.Millisecond)
	l := push.Lease{DeviceID: u.DeviceID, Platform: u.Platform, Epoch: u.Epoch}
	if u.State == Online {
		l.Until = now.Add(u.Lease)
	}
	stored, applied, err := s.store.PutLease(ctx, app, u.UserID, l, u.Badge, now)
	if err != nil {
		return Result{}, err
	}
	r := Result{UserID: u.UserID, DeviceID: u.DeviceID, Applied: applied, Online: stored.Online(now)}
	if r.Online {
		r.LeaseUntil = stored.Until
	}
	return r, nil
}

// Batch applies validated updates at server time now and answers their
// results in the order given. Updates of different users run concurrently
// (at most batchInFlight writes at once); updates of one user run one after
// the other in the order given, so two updates of one device with the same
// epoch end in the later one, as they would if sent one by one.
//
// On the first failure Batch stops and returns the error; updates already
// written stay written. Retrying the whole batch is safe: an update that was
// applied applies again (equal epochs apply), which changes nothing but the
// lease end.
func (s *Service) Batch(ctx context.Context, app string, updates []Update, now time.Time) ([]Result, error) {
	results := make([]Result, len(updates))
	byUser := map[string][]int{}
	var users []string
	for i, u := range updates {
		if _, ok := byUser[u.UserID]; !ok {
			users = append(users, u.UserID)
		}
		byUser[u.UserID] = append(byUser[u.UserID], i)
	}

	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
		slots    = make(chan struct{}, batchInFlight)
	)
	for _, user := range users {
		wg.Add(1)
		go func(idx []int) {
			defer wg.Done()
			for _, i := range idx {
				select {
				case slots <- struct{}{}:
				case <-ctx.Done():
					return
				}
				r, err := s.Put(ctx, app, updates[i], now)
				<-slots
				if err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
				results[i] = r
			}
		}(byUser[user])
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := parent.Err(); err != nil {
		return nil, err
	}
	return results, nil
}

// SetBadge sets the badge base of a user.
func (s *Service) SetBadge(ctx context.Context, app, user string, count int64) error {
	return s.store.SetBadge(ctx, app, user, count)
}
