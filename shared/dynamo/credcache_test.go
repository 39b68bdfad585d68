package dynamo_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/offline-push/offline-push/shared/dynamo"
	"github.com/offline-push/offline-push/shared/push"
	"github.com/offline-push/offline-push/shared/testenv"
)

func TestCredentialCache(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto_server")
	}
	srv := testenv.Moto(t)
	stack := testenv.Stack(t, srv.Endpoint)
	table := stack.Tables["RequestTable"]
	client := dynamodb.NewFromConfig(testenv.AWSConfig(srv.Endpoint))
	t.Run("LoadAndSwap", func(t *testing.T) { testCredentialSwap(t, client, table) })
	t.Run("SharedMinting", func(t *testing.T) { testSharedMinting(t, srv.Endpoint, table) })
}

func accessToken(v string, minted time.Time) push.AccessToken {
	return push.AccessToken{Value: v, MintedAt: minted, ExpiresAt: minted.Add(time.Hour)}
}

func testCredentialSwap(t *testing.T, client *dynamodb.Client, table string) {
	ctx := context.Background()
	c := dynamo.NewCredentialCache(client, table)
	const key = "apns/TEAM/KEY1"
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	a, b, cc, d := accessToken("a", t0), accessToken("b", t0), accessToken("c", t0.Add(time.Minute)), accessToken("d", t0)

	if _, ok, err := c.Load(ctx, key); err != nil || ok {
		t.Fatalf("Load of an empty cache = %v, %v; want not found", ok, err)
	}
	steps := []struct {
		name string
		prev *push.AccessToken
		next push.AccessToken
		want push.AccessToken // what Swap answers, and then Load
	}{
		{"the first token is stored", nil, a, a},
		{"a second first token loses to the stored one", nil, b, a},
		{"a swap from the stored token wins", &a, cc, cc},
		{"a swap from a stale token loses", &a, d, cc},
		{"a swap from a token of the same value but another minting instant loses", dispatchPtr(accessToken("c", t0)), d, cc},
	}
	for _, s := range steps {
		got, err := c.Swap(ctx, key, s.prev, s.next)
		if err != nil {
			t.Fatalf("%s: Swap: %v", s.name, err)
		}
		if diff := cmp.Diff(s.want, got); diff != "" {
			t.Errorf("%s: Swap (-want +got):\n%s", s.name, diff)
		}
		loaded, ok, err := c.Load(ctx, key)
		if err != nil || !ok {
			t.Fatalf("%s: Load = %v, %v", s.name, ok, err)
		}
		if diff := cmp.Diff(s.want, loaded); diff != "" {
			t.Errorf("%s: Load (-want +got):\n%s", s.name, diff)
		}
	}

	// The item expires with the token, through DynamoDB TTL.
	out, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "k#" + key}}})
	if err != nil {
		t.Fatal(err)
	}
	ttl, _ := out.Item["ttl"].(*types.AttributeValueMemberN)
	if want := strconv.FormatInt(cc.ExpiresAt.Unix(), 10); ttl == nil || ttl.Value != want {
		t.Errorf("ttl = %v, want %s", out.Item["ttl"], want)
	}

	// The stored token vanished (TTL): a swap from it still lands.
	if _, err := client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(table),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "k#" + key}}}); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Swap(ctx, key, &cc, d); err != nil || got != d {
		t.Errorf("Swap after the item vanished = %+v, %v; want d", got, err)
	}
	if _, err := c.Swap(ctx, key, nil, push.AccessToken{}); err == nil {
		t.Error("Swap of an empty token succeeded")
	}
}

// provider is how a token-minting provider uses the cache (the APNs rule of
// VENDORS.md §1: never renew more often than every 20 minutes, reuse for
// close to an hour): reuse the shared token while it is younger than reuse,
// otherwise mint one and let Swap pick the winner.
type provider struct {
	cache  *dynamo.CredentialCache
	minted *atomic.Int64
	reuse  time.Duration
}

func (p provider) token(ctx context.Context, key string, now time.Time) (push.AccessToken, error) {
	cur, ok, err := p.cache.Load(ctx, key)
	if err != nil {
		return push.AccessToken{}, err
	}
	if ok && now.Sub(cur.MintedAt) < p.reuse {
		return cur, nil
	}
	var prev *push.AccessToken
	if ok {
		prev = &cur
	}
	n := p.minted.Add(1)
	next := push.AccessToken{Value: fmt.Sprintf("jwt-%d", n), MintedAt: now, ExpiresAt: now.Add(time.Hour)}
	return p.cache.Swap(ctx, key, prev, next)
}

// testSharedMinting runs several containers (each its own client and cache
// instance) asking for a token at the same instants: at each instant they
// all end with one token, the one stored, and a token is replaced only once
// it is 50 minutes old.
func testSharedMinting(t *testing.T, endpoint, table string) {
	ctx := context.Background()
	// DynamoDB isolates conditional writes to one item; moto's concurrent
	// requests are not isolated, so the proxy serves one at a time.
	proxy := testenv.NewProxy(t, endpoint, testenv.ProxyOptions{Serialize: true})
	const containers = 6
	const key = "apns/TEAM/KEY2"
	var minted atomic.Int64
	ps := make([]provider, containers)
	for i := range ps {
		ps[i] = provider{cache: dynamo.NewCredentialCache(dynamodb.NewFromConfig(testenv.AWSConfig(proxy.URL)), table),
			minted: &minted, reuse: 50 * time.Minute}
	}
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	steps := []struct {
		at         time.Duration
		wantMinted time.Duration // MintedAt of the token all containers use
	}{
		{0, 0},                                   // first mint, one winner
		{19 * time.Minute, 0},                    // reused
		{49 * time.Minute, 0},                    // reused
		{50 * time.Minute, 50 * time.Minute},     // re-minted once
		{69 * time.Minute, 50 * time.Minute},     // reused
		{101 * time.Minute, 101 * time.Minute},   // re-minted once
		{101 * time.Minute, 101 * time.Minute},   // the same instant again: reused
		{150*time.Minute + 1, 101 * time.Minute}, // 49 min old: reused
	}
	for _, s := range steps {
		now := t0.Add(s.at)
		got := make([]push.AccessToken, containers)
		errs := make([]error, containers)
		var wg sync.WaitGroup
		for i := range ps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got[i], errs[i] = ps[i].token(ctx, key, now)
			}()
		}
		wg.Wait()
		if minted.Load() == 0 {
			t.Fatal("no container minted")
		}
		stored, _, err := ps[0].cache.Load(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if errs[i] != nil {
				t.Fatalf("at %v: container %d: %v", s.at, i, errs[i])
			}
			if got[i] != stored {
				t.Errorf("at %v: container %d uses %+v, but %+v is stored", s.at, i, got[i], stored)
			}
		}
		if want := t0.Add(s.wantMinted); !stored.MintedAt.Equal(want) {
			t.Errorf("at %v: the shared token was minted at %v, want %v", s.at, stored.MintedAt, want)
		}
	}
}
