// Package secrets is the Secrets Manager adapter: it reads each app's API
// secrets and checks which vendor a certName's credentials belong to
// (API.md §7), with a per-container cache so that requests never pay for a
// Secrets Manager call once warm. It imports the SDK and push only.
package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/offline-push/offline-push/shared/push"
)

// Cache lifetimes (API.md §2). A found secret is reused for HitTTL, so a
// rotation reaches every container within that time; an unknown app or
// certName is remembered for MissTTL, so a caller cannot make us call
// Secrets Manager on every request, yet a newly onboarded app works soon.
const (
	HitTTL  = 5 * time.Minute
	MissTTL = 30 * time.Second
)

// fetchTimeout bounds one Secrets Manager look-up, SDK retries included. The
// look-up is shared by every request waiting for the same key, so it must
// not hang on one stuck connection for ever.
const fetchTimeout = 30 * time.Second

// VendorTag is the tag on a credentials secret that names its vendor. It lets
// the token-upload function check a certName with DescribeSecret alone.
const VendorTag = "vendor"

// api is the part of the Secrets Manager client the store uses.
type api interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
}

// Store reads secrets under a name prefix and caches the answers in memory.
// It is safe for concurrent use; concurrent misses of one key share a single
// Secrets Manager call.
type Store struct {
	client api
	prefix string
	now    func() time.Time

	mu      sync.Mutex
	entries map[string]*entry
}

// entry is one cached look-up, or one in flight while done is open.
type entry struct {
	done    chan struct{} // closed once the fields below are set
	secrets []string
	vendor  push.Vendor
	err     error
	expires time.Time // zero: not cached, the next caller fetches again
}

// New returns a Store reading secrets named "{prefix}/{app}/…" with client.
// now is the clock the cache lifetimes are measured on; nil means time.Now.
func New(client *secretsmanager.Client, prefix string, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{
		client:  client,
		prefix:  strings.TrimSuffix(prefix, "/"),
		now:     now,
		entries: map[string]*entry{},
	}
}

// APISecrets returns the API secrets of app from the secret
// "{prefix}/{app}/api", whose value is {"apiSecrets": ["…", …]}. It returns
// push.ErrNotFound for an unknown app, and a configuration error for a
// secret that holds no usable secret.
func (s *Store) APISecrets(ctx context.Context, app string) ([]string, error) {
	if !push.ValidApp(app) {
		return nil, fmt.Errorf("app %q: %w", app, push.ErrNotFound)
	}
	name := s.prefix + "/" + app + "/api"
	e, err := s.lookup(ctx, "api\x00"+name, func(ctx context.Context) *entry {
		return s.fetchAPISecrets(ctx, name)
	})
	if err != nil {
		return nil, err
	}
	return slices.Clone(e.secrets), nil
}

// CertVendor returns the vendor of the credentials named certName for app,
// read from the vendor tag of the secret "{prefix}/{app}/vendors/{certName}".
// It never reads the secret's value. It returns push.ErrNotFound when there is
// no such secret or its tag names no vendor.
func (s *Store) CertVendor(ctx context.Context, app, certName string) (push.Vendor, error) {
	if !push.ValidApp(app) || !validCertName(certName) {
		return "", fmt.Errorf("credentials %q of app %q: %w", certName, app, push.ErrNotFound)
	}
	name := s.prefix + "/" + app + "/vendors/" + certName
	e, err := s.lookup(ctx, "cert\x00"+name, func(ctx context.Context) *entry {
		return s.fetchVendor(ctx, name)
	})
	if err != nil {
		return "", err
	}
	return e.vendor, nil
}

// lookup returns the cached entry for key, or joins the fetch in flight for
// it, or starts one. The fetch runs detached from ctx, so a caller that gives
// up does not fail the others waiting for the same key.
func (s *Store) lookup(ctx context.Context, key string, fetch func(context.Context) *entry) (*entry, error) {
	s.mu.Lock()
	e, ok := s.entries[key]
	if ok {
		select {
		case <-e.done:
			if !e.expires.IsZero() && s.now().Before(e.expires) {
				s.mu.Unlock()
				return e, e.err
			}
			ok = false // expired, or an error not worth caching
		default: // in flight: wait for it below
		}
	}
	if !ok {
		if len(s.entries) >= sweepAt {
			s.sweep()
		}
		e = &entry{done: make(chan struct{})}
		s.entries[key] = e
		go func() {
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
			defer cancel()
			got := fetch(fctx)
			s.mu.Lock()
			e.secrets, e.vendor, e.err, e.expires = got.secrets, got.vendor, got.err, got.expires
			s.mu.Unlock()
			close(e.done)
		}()
	}
	s.mu.Unlock()
	select {
	case <-e.done:
		return e, e.err
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for secret look-up: %w", ctx.Err())
	}
}

// sweepAt is the cache size from which expired entries are dropped before a
// new one is added. Callers choose the keys (any well-formed app name), so
// without a sweep a stream of unknown apps would grow the cache for ever.
const sweepAt = 4096

// sweep drops the entries that are done and no longer valid. s.mu is held.
func (s *Store) sweep() {
	now := s.now()
	for k, e := range s.entries {
		select {
		case <-e.done:
			if e.expires.IsZero() || !now.Before(e.expires) {
				delete(s.entries, k)
			}
		default:
		}
	}
}

// errConfig marks a secret that exists but is unusable: an operator must fix
// it. It is cached like a miss, so a broken secret does not cost a call per
// request.
var errConfig = errors.New("secret misconfigured")

func (s *Store) fetchAPISecrets(ctx context.Context, name string) *entry {
	out, err := s.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
	if err != nil {
		return s.failed(name, err)
	}
	if out.SecretString == nil {
		return s.miss(fmt.Errorf("secret %s has no string value: %w", name, errConfig))
	}
	// The parse error is not quoted: it may contain part of a secret.
	var v struct {
		APISecrets []string `json:"apiSecrets"`
	}
	if json.Unmarshal([]byte(*out.SecretString), &v) != nil {
		return s.miss(fmt.Errorf(`secret %s is not JSON of the form {"apiSecrets": ["…"]}: %w`, name, errConfig))
	}
	if len(v.APISecrets) == 0 {
		return s.miss(fmt.Errorf("secret %s lists no apiSecrets: %w", name, errConfig))
	}
	if slices.Contains(v.APISecrets, "") {
		return s.miss(fmt.Errorf("secret %s lists an empty apiSecret: %w", name, errConfig))
	}
	return &entry{secrets: v.APISecrets, expires: s.now().Add(HitTTL)}
}

func (s *Store) fetchVendor(ctx context.Context, name string) *entry {
	out, err := s.client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
	if err != nil {
		return s.failed(name, err)
	}
	if out.DeletedDate != nil {
		return s.miss(fmt.Errorf("secret %s is scheduled for deletion: %w", name, push.ErrNotFound))
	}
	for _, t := range out.Tags {
		if aws.ToString(t.Key) != VendorTag {
			continue
		}
		v, ok := push.ParseVendor(aws.ToString(t.Value))
		if !ok {
			return s.miss(fmt.Errorf("secret %s: tag %s names no vendor: %w", name, VendorTag, push.ErrNotFound))
		}
		return &entry{vendor: v, expires: s.now().Add(HitTTL)}
	}
	return s.miss(fmt.Errorf("secret %s has no %s tag: %w", name, VendorTag, push.ErrNotFound))
}

// failed turns a Secrets Manager error into an entry: a missing secret is a
// cached miss, anything else is returned once and not cached.
func (s *Store) failed(name string, err error) *entry {
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		return s.miss(fmt.Errorf("secret %s: %w", name, push.ErrNotFound))
	}
	return &entry{err: fmt.Errorf("read secret %s: %w", name, err)}
}

func (s *Store) miss(err error) *entry {
	return &entry{err: err, expires: s.now().Add(MissTTL)}
}

// validCertName reports whether s is 1 to 32 characters of [A-Za-z0-9_.-]
// (API.md §3), so a certName can never name a secret outside its app's
// vendors/ folder.
func validCertName(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '.', c == '-':
		default:
			return false
		}
	}
	return true
}
