package dynamo_test

import (
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/go-cmp/cmp"

	"github.com/offline-push/offline-push/shared/dynamo"
	"github.com/offline-push/offline-push/shared/push"
	"github.com/offline-push/offline-push/shared/testenv"
)

func TestMessageStore(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto_server")
	}
	ctx := context.Background()
	srv := testenv.Moto(t)
	stack := testenv.Stack(t, srv.Endpoint)
	// Concurrent claims need a serializing proxy: moto does not isolate
	// conditional writes from each other.
	proxy := testenv.NewProxy(t, srv.Endpoint, testenv.ProxyOptions{Serialize: true})
	s := dynamo.NewMessageStore(dynamodb.NewFromConfig(testenv.AWSConfig(proxy.URL)), stack.Tables["RequestTable"])
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	const lease = 50 * time.Second

	t.Run("lifecycle", func(t *testing.T) {
		c, err := s.Claim(ctx, "demo", "m-1", t0, lease)
		if err != nil {
			t.Fatalf("first claim: %v", err)
		}
		if c.Owner == "" || c.Resumed || !c.AcceptedAt.Equal(t0) || c.Result != nil {
			t.Fatalf("first claim = %+v, want a fresh claim accepted at %v", c, t0)
		}
		if _, err := s.Claim(ctx, "demo", "m-1", t0.Add(time.Second), lease); !errors.Is(err, push.ErrConflict) {
			t.Fatalf("claim while leased = %v, want ErrConflict", err)
		}
		if err := s.MarkSent(ctx, "demo", "m-1", c.Owner, []string{"c0-apns-0", "c0-fcm-0"}); err != nil {
			t.Fatalf("MarkSent: %v", err)
		}
		if err := s.MarkSent(ctx, "demo", "m-1", c.Owner, []string{"c1-apns-0"}); err != nil {
			t.Fatalf("MarkSent: %v", err)
		}
		if err := s.Release(ctx, "demo", "m-1", c.Owner); err != nil {
			t.Fatalf("Release: %v", err)
		}
		// Released: a retry takes over at once, with the progress and the
		// first acceptance instant.
		r, err := s.Claim(ctx, "demo", "m-1", t0.Add(2*time.Second), lease)
		if err != nil {
			t.Fatalf("claim after release: %v", err)
		}
		sort.Strings(r.Sent)
		if diff := cmp.Diff([]string{"c0-apns-0", "c0-fcm-0", "c1-apns-0"}, r.Sent); diff != "" {
			t.Errorf("progress after takeover (-want +got):\n%s", diff)
		}
		if !r.Resumed || !r.AcceptedAt.Equal(t0) || r.Owner == c.Owner {
			t.Errorf("takeover = %+v, want resumed, accepted at %v, a new owner", r, t0)
		}
		// The old owner lost the claim.
		if err := s.MarkSent(ctx, "demo", "m-1", c.Owner, []string{"x"}); !errors.Is(err, push.ErrConflict) {
			t.Errorf("MarkSent by the old owner = %v, want ErrConflict", err)
		}
		if err := s.Finish(ctx, "demo", "m-1", c.Owner, []byte("old")); !errors.Is(err, push.ErrConflict) {
			t.Errorf("Finish by the old owner = %v, want ErrConflict", err)
		}
		if err := s.Finish(ctx, "demo", "m-1", r.Owner, []byte(`{"pushes":3}`)); err != nil {
			t.Fatalf("Finish: %v", err)
		}
		d, err := s.Claim(ctx, "demo", "m-1", t0.Add(time.Hour), lease)
		if err != nil {
			t.Fatalf("claim when done: %v", err)
		}
		if string(d.Result) != `{"pushes":3}` || d.Owner != "" {
			t.Errorf("claim when done = %+v, want the stored result and no owner", d)
		}
		// Past the retention the id is free again.
		f, err := s.Claim(ctx, "demo", "m-1", t0.Add(dynamo.MessageRetention+time.Minute), lease)
		if err != nil {
			t.Fatalf("claim after retention: %v", err)
		}
		if f.Resumed || f.Result != nil || len(f.Sent) != 0 {
			t.Errorf("claim after retention = %+v, want a fresh claim", f)
		}
	})

	t.Run("expired lease is taken over", func(t *testing.T) {
		c, err := s.Claim(ctx, "demo", "m-2", t0, lease)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Claim(ctx, "demo", "m-2", t0.Add(lease-time.Millisecond), lease); !errors.Is(err, push.ErrConflict) {
			t.Errorf("claim a millisecond before the lease ends = %v, want ErrConflict", err)
		}
		r, err := s.Claim(ctx, "demo", "m-2", t0.Add(lease), lease)
		if err != nil {
			t.Fatalf("claim when the lease ends: %v", err)
		}
		if !r.Resumed || r.Owner == c.Owner {
			t.Errorf("claim when the lease ends = %+v, want a takeover", r)
		}
		// Releasing by a stale owner does nothing.
		if err := s.Release(ctx, "demo", "m-2", c.Owner); err != nil {
			t.Errorf("Release by a stale owner = %v, want nil", err)
		}
		if _, err := s.Claim(ctx, "demo", "m-2", t0.Add(lease+time.Second), lease); !errors.Is(err, push.ErrConflict) {
			t.Errorf("claim while the new owner holds it = %v, want ErrConflict", err)
		}
	})

	t.Run("concurrent claims: exactly one wins", func(t *testing.T) {
		for _, id := range []string{"m-3", "m-4"} {
			if id == "m-4" {
				// The same race over an expired lease: exactly one takes over.
				if _, err := s.Claim(ctx, "demo", id, t0, lease); err != nil {
					t.Fatal(err)
				}
			}
			at := t0.Add(2 * lease)
			var wg sync.WaitGroup
			var mu sync.Mutex
			wins, conflicts := 0, 0
			for range 10 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := s.Claim(ctx, "demo", id, at, lease)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						wins++
					case errors.Is(err, push.ErrConflict):
						conflicts++
					default:
						t.Errorf("claim %s: %v", id, err)
					}
				}()
			}
			wg.Wait()
			if wins != 1 || conflicts != 9 {
				t.Errorf("%s: %d claims won and %d conflicted, want 1 and 9", id, wins, conflicts)
			}
		}
	})

	t.Run("oversize result is refused", func(t *testing.T) {
		c, err := s.Claim(ctx, "demo", "m-5", t0, lease)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Finish(ctx, "demo", "m-5", c.Owner, make([]byte, dynamo.MaxMessageResult+1)); err == nil {
			t.Error("Finish with an oversize result = nil, want an error")
		}
	})
}
