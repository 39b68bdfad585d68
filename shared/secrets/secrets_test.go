package secrets_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go/middleware"
	"github.com/google/go-cmp/cmp"

	"github.com/offline-push/offline-push/shared/push"
	"github.com/offline-push/offline-push/shared/secrets"
	"github.com/offline-push/offline-push/shared/testenv"
)

// clock is a settable clock, safe for the store's concurrent reads.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is one emulator shared by the subtests of TestStore. Each subtest gets
// its own prefix, so secrets never collide, and its own counting proxy.
type env struct {
	endpoint string
	admin    *secretsmanager.Client // talks to moto directly, to set up
}

func TestStore(t *testing.T) {
	srv := testenv.Moto(t)
	e := &env{endpoint: srv.Endpoint, admin: secretsmanager.NewFromConfig(testenv.AWSConfig(srv.Endpoint))}
	t.Run("APISecrets", e.testAPISecrets)
	t.Run("Rotation", e.testRotation)
	t.Run("NotFound", e.testNotFound)
	t.Run("Misconfigured", e.testMisconfigured)
	t.Run("CertVendor", e.testCertVendor)
	t.Run("ConcurrentMisses", e.testConcurrentMisses)
	t.Run("CancelledCaller", e.testCancelledCaller)
}

// fixture is a store under test with its clock and the proxy that counts
// its calls.
type fixture struct {
	store  *secrets.Store
	clock  *clock
	proxy  *testenv.Proxy
	prefix string
}

func (e *env) fixture(t *testing.T) *fixture {
	t.Helper()
	proxy := testenv.NewProxy(t, e.endpoint, testenv.ProxyOptions{})
	c := &clock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	prefix := "test-" + strings.ReplaceAll(t.Name(), "/", "-")
	client := secretsmanager.NewFromConfig(testenv.AWSConfig(proxy.URL))
	return &fixture{store: secrets.New(client, prefix, c.now), clock: c, proxy: proxy, prefix: prefix}
}

func (f *fixture) calls(op string) int { return f.proxy.Counts()[op].Requests }

func (e *env) create(t *testing.T, name, value string, tags map[string]string) {
	t.Helper()
	in := &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)}
	for k, v := range tags {
		in.Tags = append(in.Tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	if _, err := e.admin.CreateSecret(context.Background(), in); err != nil {
		t.Fatalf("create secret %s: %v", name, err)
	}
}

func (e *env) put(t *testing.T, name, value string) {
	t.Helper()
	_, err := e.admin.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(name), SecretString: aws.String(value),
	})
	if err != nil {
		t.Fatalf("put secret %s: %v", name, err)
	}
}

func (e *env) testAPISecrets(t *testing.T) {
	f := e.fixture(t)
	ctx := context.Background()
	e.create(t, f.prefix+"/demo/api", `{"apiSecrets": ["s1"]}`, nil)
	for i := range 3 {
		got, err := f.store.APISecrets(ctx, "demo")
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if diff := cmp.Diff([]string{"s1"}, got); diff != "" {
			t.Errorf("call %d (-want +got):\n%s", i, diff)
		}
		got[0] = "mutated by the caller"
	}
	if n := f.calls("GetSecretValue"); n != 1 {
		t.Errorf("GetSecretValue calls = %d, want 1 (cached)", n)
	}
}

// testRotation lists two secrets, then replaces the list: the cache keeps the
// old list for at most HitTTL.
func (e *env) testRotation(t *testing.T) {
	f := e.fixture(t)
	ctx := context.Background()
	name := f.prefix + "/demo/api"
	e.create(t, name, `{"apiSecrets": ["old", "new"]}`, nil)
	steps := []struct {
		advance   time.Duration
		put       string
		want      []string
		wantCalls int
	}{
		{0, "", []string{"old", "new"}, 1},
		{0, `{"apiSecrets": ["new"]}`, []string{"old", "new"}, 1},
		{secrets.HitTTL - time.Second, "", []string{"old", "new"}, 1},
		{time.Second, "", []string{"new"}, 2},
		{time.Minute, "", []string{"new"}, 2},
	}
	for i, s := range steps {
		f.clock.advance(s.advance)
		if s.put != "" {
			e.put(t, name, s.put)
		}
		got, err := f.store.APISecrets(ctx, "demo")
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if diff := cmp.Diff(s.want, got); diff != "" {
			t.Errorf("step %d (-want +got):\n%s", i, diff)
		}
		if n := f.calls("GetSecretValue"); n != s.wantCalls {
			t.Errorf("step %d: GetSecretValue calls = %d, want %d", i, n, s.wantCalls)
		}
	}
}

// testNotFound checks that an unknown app is push.ErrNotFound, remembered for
// MissTTL and no longer.
func (e *env) testNotFound(t *testing.T) {
	f := e.fixture(t)
	ctx := context.Background()
	if _, err := f.store.APISecrets(ctx, "ghost"); !errors.Is(err, push.ErrNotFound) {
		t.Fatalf("unknown app: err = %v, want ErrNotFound", err)
	}
	e.create(t, f.prefix+"/ghost/api", `{"apiSecrets": ["late"]}`, nil)
	f.clock.advance(secrets.MissTTL - time.Second)
	if _, err := f.store.APISecrets(ctx, "ghost"); !errors.Is(err, push.ErrNotFound) {
		t.Fatalf("within MissTTL: err = %v, want the cached ErrNotFound", err)
	}
	if n := f.calls("GetSecretValue"); n != 1 {
		t.Errorf("GetSecretValue calls = %d, want 1", n)
	}
	f.clock.advance(time.Second)
	got, err := f.store.APISecrets(ctx, "ghost")
	if err != nil || len(got) != 1 || got[0] != "late" {
		t.Fatalf("after MissTTL: %v, %v; want [late]", got, err)
	}
	if _, err := f.store.APISecrets(ctx, "Not_An_App"); !errors.Is(err, push.ErrNotFound) {
		t.Errorf("malformed app: err = %v, want ErrNotFound", err)
	}
	if n := f.calls("GetSecretValue"); n != 2 {
		t.Errorf("GetSecretValue calls = %d, want 2 (a malformed app costs no call)", n)
	}
}

// testMisconfigured checks that a secret without usable secrets is an error
// that is neither a miss nor quotes the secret's content.
func (e *env) testMisconfigured(t *testing.T) {
	f := e.fixture(t)
	tests := []struct{ app, value string }{
		{"empty-list", `{"apiSecrets": []}`},
		{"no-member", `{"secrets": ["hunter2"]}`},
		{"not-json", `hunter2`},
		{"wrong-type", `{"apiSecrets": "hunter2"}`},
		{"empty-secret", `{"apiSecrets": ["hunter2", ""]}`},
	}
	for _, tt := range tests {
		e.create(t, f.prefix+"/"+tt.app+"/api", tt.value, nil)
		_, err := f.store.APISecrets(context.Background(), tt.app)
		if err == nil || errors.Is(err, push.ErrNotFound) {
			t.Errorf("%s: err = %v, want a configuration error", tt.app, err)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: error %q quotes the secret", tt.app, err)
		}
	}
}

func (e *env) testCertVendor(t *testing.T) {
	f := e.fixture(t)
	ctx := context.Background()
	vendors := f.prefix + "/demo/vendors/"
	e.create(t, vendors+"ios-prod", `{"vendor": "apns", "keyId": "K"}`, map[string]string{"vendor": "apns"})
	e.create(t, vendors+"mi", `{"vendor": "xiaomi"}`, map[string]string{"vendor": "xiaomi", "team": "android"})
	e.create(t, vendors+"untagged", `{"vendor": "fcm"}`, nil)
	e.create(t, vendors+"nokia", `{"vendor": "nokia"}`, map[string]string{"vendor": "nokia"})
	tests := []struct {
		app, cert string
		want      push.Vendor
		wantErr   error
	}{
		{"demo", "ios-prod", push.APNs, nil},
		{"demo", "mi", push.Xiaomi, nil},
		{"demo", "missing", "", push.ErrNotFound},
		{"demo", "untagged", "", push.ErrNotFound},
		{"demo", "nokia", "", push.ErrNotFound},
		{"other", "ios-prod", "", push.ErrNotFound},
		{"demo", "../api", "", push.ErrNotFound},
	}
	for round := range 2 { // the second round is served from the cache
		for _, tt := range tests {
			got, err := f.store.CertVendor(ctx, tt.app, tt.cert)
			if got != tt.want || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Errorf("round %d: CertVendor(%s, %s) = %q, %v; want %q, %v", round, tt.app, tt.cert, got, err, tt.want, tt.wantErr)
			}
		}
	}
	if n := f.calls("DescribeSecret"); n != len(tests)-1 {
		t.Errorf("DescribeSecret calls = %d, want %d (one per well-formed key)", n, len(tests)-1)
	}
	if n := f.calls("GetSecretValue"); n != 0 {
		t.Errorf("GetSecretValue calls = %d, want 0: credentials are never read", n)
	}
	f.clock.advance(secrets.HitTTL)
	if got, err := f.store.CertVendor(ctx, "demo", "ios-prod"); got != push.APNs || err != nil {
		t.Errorf("after HitTTL: %q, %v", got, err)
	}
	if n := f.calls("DescribeSecret"); n != len(tests) {
		t.Errorf("DescribeSecret calls after HitTTL = %d, want %d", n, len(tests))
	}
}

// testConcurrentMisses starts many look-ups of one cold key at once: they
// share one call. Without the shared fetch, the HTTP round trip to the
// emulator leaves ample time for a second caller to miss as well.
func (e *env) testConcurrentMisses(t *testing.T) {
	f := e.fixture(t)
	for round := range 3 {
		app := fmt.Sprintf("burst-%d", round)
		e.create(t, f.prefix+"/"+app+"/api", `{"apiSecrets": ["b"]}`, nil)
		before := f.calls("GetSecretValue")
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := f.store.APISecrets(context.Background(), app); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("round %d: %v", round, err)
		}
		if n := f.calls("GetSecretValue") - before; n != 1 {
			t.Errorf("round %d: GetSecretValue calls = %d, want 1", round, n)
		}
	}
}

// gate holds every Secrets Manager call of a client until released, so a
// test can act while a look-up is in flight. It is a middleware on a real
// SDK client; the call itself still goes to the emulator.
type gate struct {
	entered chan struct{}
	release chan struct{}
}

func newGate() *gate {
	return &gate{entered: make(chan struct{}, 16), release: make(chan struct{})}
}

func (g *gate) install(o *secretsmanager.Options) {
	o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("testGate",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				g.entered <- struct{}{}
				<-g.release
				return next.HandleInitialize(ctx, in)
			}), middleware.Before)
	})
}

// testCancelledCaller cancels the caller that started a look-up while the
// call is in flight: that caller returns at once, and the look-up still
// completes and fills the cache for the next caller.
func (e *env) testCancelledCaller(t *testing.T) {
	f := e.fixture(t)
	g := newGate()
	client := secretsmanager.NewFromConfig(testenv.AWSConfig(f.proxy.URL), g.install)
	store := secrets.New(client, f.prefix, f.clock.now)
	e.create(t, f.prefix+"/patient/api", `{"apiSecrets": ["p"]}`, nil)

	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := store.APISecrets(ctx, "patient")
		first <- err
	}()
	<-g.entered // the call is in flight
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: err = %v, want context.Canceled", err)
	}
	close(g.release)
	got, err := store.APISecrets(context.Background(), "patient")
	if err != nil || len(got) != 1 || got[0] != "p" {
		t.Fatalf("next caller: %v, %v; want [p]", got, err)
	}
	if n := f.calls("GetSecretValue"); n != 1 {
		t.Errorf("GetSecretValue calls = %d, want 1: the next caller shares the first look-up", n)
	}
}
