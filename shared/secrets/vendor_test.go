package secrets_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/offline-push/offline-push/shared/push"
	"github.com/offline-push/offline-push/shared/secrets"
	"github.com/offline-push/offline-push/shared/testenv"
)

func TestVendorCredentials(t *testing.T) {
	srv := testenv.Moto(t)
	e := &env{endpoint: srv.Endpoint, admin: secretsmanager.NewFromConfig(testenv.AWSConfig(srv.Endpoint))}
	t.Run("CachedAndRotated", e.testVendorCredentials)
	t.Run("Missing", e.testVendorCredentialsMissing)
	t.Run("NotJSON", e.testVendorCredentialsNotJSON)
}

// testVendorCredentials reads a credential, again from the cache, and after
// a rotation: the new value and a new version come within HitTTL.
func (e *env) testVendorCredentials(t *testing.T) {
	f := e.fixture(t)
	ctx := context.Background()
	name := f.prefix + "/demo/vendors/ios-prod"
	first := `{"vendor": "apns", "teamId": "T1", "privateKey": "k1"}`
	second := `{"vendor": "apns", "teamId": "T1", "privateKey": "k2"}`
	e.create(t, name, first, map[string]string{secrets.VendorTag: "apns"})

	value, v1, err := f.store.VendorCredentials(ctx, "demo", "ios-prod")
	if err != nil {
		t.Fatal(err)
	}
	if string(value) != first || v1 == "" {
		t.Errorf("VendorCredentials = %q, version %q; want the secret and a version", value, v1)
	}
	e.put(t, name, second)
	steps := []struct {
		advance   time.Duration
		want      string
		newer     bool // a version other than v1
		wantCalls int
	}{
		{0, first, false, 1},
		{secrets.HitTTL - time.Second, first, false, 1},
		{time.Second, second, true, 2},
		{time.Minute, second, true, 2},
	}
	for i, s := range steps {
		f.clock.advance(s.advance)
		value, version, err := f.store.VendorCredentials(ctx, "demo", "ios-prod")
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if string(value) != s.want || (version != v1) != s.newer {
			t.Errorf("step %d: got %q version %q, want %q (new version: %v)", i, value, version, s.want, s.newer)
		}
		if n := f.calls("GetSecretValue"); n != s.wantCalls {
			t.Errorf("step %d: GetSecretValue calls = %d, want %d", i, n, s.wantCalls)
		}
	}
	// The API secret of the same app is another cache entry.
	if _, err := f.store.APISecrets(ctx, "demo"); !errors.Is(err, push.ErrNotFound) {
		t.Errorf("APISecrets = %v, want ErrNotFound", err)
	}
}

func (e *env) testVendorCredentialsMissing(t *testing.T) {
	f := e.fixture(t)
	ctx := context.Background()
	tests := []struct {
		app, cert string
		wantCalls int
	}{
		{"demo", "nope", 1},
		{"demo", "nope", 1}, // the miss is cached
		{"Bad_App", "ios", 1},
		{"demo", "../api", 1},
		{"demo", strings.Repeat("x", 33), 1},
	}
	for _, tc := range tests {
		_, _, err := f.store.VendorCredentials(ctx, tc.app, tc.cert)
		if !errors.Is(err, push.ErrNotFound) {
			t.Errorf("VendorCredentials(%q, %q) = %v, want ErrNotFound", tc.app, tc.cert, err)
		}
		if n := f.calls("GetSecretValue"); n != tc.wantCalls {
			t.Errorf("VendorCredentials(%q, %q): GetSecretValue calls = %d, want %d", tc.app, tc.cert, n, tc.wantCalls)
		}
	}
}

// testVendorCredentialsNotJSON refuses a value that is not a JSON object,
// without quoting it.
func (e *env) testVendorCredentialsNotJSON(t *testing.T) {
	f := e.fixture(t)
	ctx := context.Background()
	for i, value := range []string{"-----BEGIN PRIVATE KEY----- secretbits", `["a"]`, "null"} {
		cert := "c" + string(rune('0'+i))
		e.create(t, f.prefix+"/demo/vendors/"+cert, value, nil)
		_, _, err := f.store.VendorCredentials(ctx, "demo", cert)
		if err == nil || errors.Is(err, push.ErrNotFound) {
			t.Errorf("value %q: err = %v, want a configuration error", value, err)
			continue
		}
		if strings.Contains(err.Error(), "secretbits") || strings.Contains(err.Error(), `"a"`) {
			t.Errorf("value %q: the error quotes the secret: %v", value, err)
		}
	}
}
