package dynamo_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/offline-push/offline-push/shared/dynamo"
	"github.com/offline-push/offline-push/shared/push"
	"github.com/offline-push/offline-push/shared/testenv"
)

// nonceT0 is an arbitrary server clock with a sub-second part, so rounding
// of the TTL shows.
var nonceT0 = time.Date(2026, 11, 22, 10, 0, 0, 123_000_000, time.UTC)

type nonceEnv struct {
	endpoint string
	client   *dynamodb.Client
	table    string
}

func TestNonceStore(t *testing.T) {
	srv := testenv.Moto(t)
	stack := testenv.Stack(t, srv.Endpoint)
	env := &nonceEnv{
		endpoint: srv.Endpoint,
		client:   dynamodb.NewFromConfig(testenv.AWSConfig(srv.Endpoint)),
		table:    stack.Tables["RequestTable"],
	}
	t.Run("SpendOnce", env.testSpendOnce)
	t.Run("Item", env.testItem)
	t.Run("Expiry", env.testExpiry)
	t.Run("Concurrent", env.testConcurrent)
	t.Run("Throttled", env.testThrottled)
	t.Run("LostAnswer", env.testLostAnswer)
	t.Run("MissingTable", env.testMissingTable)
}

// lostAnswerClient sends every PutItem twice, dropping the first answer, as
// the SDK does when a write succeeded but its answer never arrived.
type lostAnswerClient struct {
	dynamo.Client
}

func (c lostAnswerClient) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if _, err := c.Client.PutItem(ctx, in, opts...); err != nil {
		return nil, err
	}
	return c.Client.PutItem(ctx, in, opts...)
}

// testLostAnswer checks that a retried write of our own is not taken for a
// replay, while a real replay still is.
func (e *nonceEnv) testLostAnswer(t *testing.T) {
	store := dynamo.NewNonceStore(lostAnswerClient{e.client}, e.table)
	ctx := context.Background()
	if err := store.Spend(ctx, "demo", "lost-answer-1", nonceT0); err != nil {
		t.Fatalf("Spend with a retried write = %v, want nil", err)
	}
	if err := store.Spend(ctx, "demo", "lost-answer-1", nonceT0); !errors.Is(err, push.ErrConflict) {
		t.Fatalf("replay = %v, want ErrConflict", err)
	}
}

func (e *nonceEnv) testSpendOnce(t *testing.T) {
	ctx := context.Background()
	store := dynamo.NewNonceStore(e.client, e.table)
	steps := []struct {
		app, nonce string
		want       error
	}{
		{"demo", "once-aaaaaaaa", nil},
		{"demo", "once-aaaaaaaa", push.ErrConflict},
		{"other", "once-aaaaaaaa", nil}, // nonces are per app
		{"demo", "once-bbbbbbbb", nil},
		{"other", "once-aaaaaaaa", push.ErrConflict},
	}
	for i, s := range steps {
		err := store.Spend(ctx, s.app, s.nonce, nonceT0)
		if !errors.Is(err, s.want) || (s.want == nil && err != nil) {
			t.Errorf("step %d: Spend(%s, %s) = %v, want %v", i, s.app, s.nonce, err, s.want)
		}
	}
}

// testItem checks the stored item against the schema: pk, exp in ms, ttl in
// seconds rounded up.
func (e *nonceEnv) testItem(t *testing.T) {
	ctx := context.Background()
	store := dynamo.NewNonceStore(e.client, e.table)
	if err := store.Spend(ctx, "demo", "item-nonce-1", nonceT0); err != nil {
		t.Fatal(err)
	}
	out, err := e.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(e.table),
		Key:            map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "n#demo#item-nonce-1"}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	exp := nonceT0.Add(600 * time.Second).UnixMilli()
	for name, want := range map[string]string{
		"exp": strconv.FormatInt(exp, 10),
		"ttl": strconv.FormatInt(nonceT0.Add(600*time.Second).Unix()+1, 10),
	} {
		got, ok := out.Item[name].(*types.AttributeValueMemberN)
		if !ok || got.Value != want {
			t.Errorf("item %s = %v, want %s", name, out.Item[name], want)
		}
	}
}

// testExpiry checks the replay window and that an expired item that TTL has
// not deleted yet counts as free.
func (e *nonceEnv) testExpiry(t *testing.T) {
	ctx := context.Background()
	store := dynamo.NewNonceStore(e.client, e.table)
	steps := []struct {
		after time.Duration
		want  error
	}{
		{0, nil},
		{time.Second, push.ErrConflict},
		{599 * time.Second, push.ErrConflict},
		{600 * time.Second, push.ErrConflict}, // expiry is exclusive: still spent at exp
		{600*time.Second + time.Millisecond, nil},
		{600*time.Second + 2*time.Millisecond, push.ErrConflict}, // the reuse spent it again
		{1200*time.Second + time.Millisecond, push.ErrConflict},
		{1200*time.Second + 2*time.Millisecond, nil},
	}
	for _, s := range steps {
		err := store.Spend(ctx, "demo", "expiring-nonce", nonceT0.Add(s.after))
		if !errors.Is(err, s.want) || (s.want == nil && err != nil) {
			t.Errorf("Spend at +%v = %v, want %v", s.after, err, s.want)
		}
	}
}

// testConcurrent spends one nonce from 20 goroutines at once through a proxy
// that serves one request at a time, as DynamoDB isolates conditional
// writes: exactly one wins.
func (e *nonceEnv) testConcurrent(t *testing.T) {
	proxy := testenv.NewProxy(t, e.endpoint, testenv.ProxyOptions{Serialize: true})
	store := dynamo.NewNonceStore(dynamodb.NewFromConfig(testenv.AWSConfig(proxy.URL)), e.table)
	for round := range 3 {
		nonce := fmt.Sprintf("race-nonce-%d", round)
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			ok, dup  int
			unwanted []error
		)
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := store.Spend(context.Background(), "demo", nonce, nonceT0)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, push.ErrConflict):
					dup++
				default:
					unwanted = append(unwanted, err)
				}
			}()
		}
		wg.Wait()
		if ok != 1 || dup != 19 || len(unwanted) > 0 {
			t.Errorf("round %d: %d successes, %d conflicts, errors %v; want 1, 19, none", round, ok, dup, unwanted)
		}
	}
}

// testThrottled spends through a proxy that throttles a fifth of all
// requests: the SDK's retries hide it, and every answer stays right.
func (e *nonceEnv) testThrottled(t *testing.T) {
	proxy := testenv.NewProxy(t, e.endpoint, testenv.ProxyOptions{Serialize: true, Seed: 7, ThrottleRate: 0.2})
	store := dynamo.NewNonceStore(dynamodb.NewFromConfig(testenv.AWSConfig(proxy.URL)), e.table)
	ctx := context.Background()
	const n = 40
	for i := range n {
		if err := store.Spend(ctx, "demo", fmt.Sprintf("throttled-%03d", i), nonceT0); err != nil {
			t.Fatalf("first spend %d: %v", i, err)
		}
	}
	for i := range n {
		if err := store.Spend(ctx, "demo", fmt.Sprintf("throttled-%03d", i), nonceT0); !errors.Is(err, push.ErrConflict) {
			t.Fatalf("second spend %d = %v, want ErrConflict", i, err)
		}
	}
	put := proxy.Counts()["PutItem"]
	if put.Faults == 0 {
		t.Errorf("proxy throttled nothing (%+v); the test proves nothing", put)
	}
	if put.ItemsWritten != n {
		t.Errorf("items written = %d, want %d", put.ItemsWritten, n)
	}
}

// testMissingTable checks that a failure other than a replay is neither nil
// nor push.ErrConflict, so the router answers 500 instead of 401.
func (e *nonceEnv) testMissingTable(t *testing.T) {
	store := dynamo.NewNonceStore(e.client, "no-such-table")
	err := store.Spend(context.Background(), "demo", "missing-table", nonceT0)
	if err == nil || errors.Is(err, push.ErrConflict) {
		t.Errorf("Spend on a missing table = %v, want another error", err)
	}
}
