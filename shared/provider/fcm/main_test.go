package fcm_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"testing"
)

// tripwire stands in for the Internet: every HTTP client of this test
// process that honours the proxy environment (the SDK's, the auth
// library's) sends it whatever is not for a loopback address, and it
// refuses and records each. Loopback is never proxied, so the emulators
// are reached directly.
var tripwire = &recorder{}

type recorder struct {
	mu    sync.Mutex
	hosts []string
	// onHit, when set, is called after each request is recorded.
	onHit func()
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.hosts = append(r.hosts, req.Host)
	hit := r.onHit
	r.mu.Unlock()
	http.Error(w, "no network in tests", http.StatusForbidden)
	if hit != nil {
		hit()
	}
}

// notify sets the hook called on each request.
func (r *recorder) notify(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.onHit = f
}

// take returns and forgets the hosts recorded so far.
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.hosts
	r.hosts = nil
	return h
}

func TestMain(m *testing.M) {
	proxy := httptest.NewServer(tripwire)
	// Set before any HTTP client reads them: net/http reads the proxy
	// environment once per process.
	for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"} {
		os.Setenv(k, proxy.URL)
	}
	for _, k := range []string{"NO_PROXY", "no_proxy", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_API_GO_EXPERIMENTAL_ENABLE_NEW_AUTH_LIB", "FIREBASE_CONFIG"} {
		os.Unsetenv(k)
	}
	code := m.Run()
	proxy.Close()
	if hosts := tripwire.take(); len(hosts) > 0 {
		slices.Sort(hosts)
		fmt.Fprintf(os.Stderr, "FAIL: the tests reached for the network: %v\n", slices.Compact(hosts))
		code = 1
	}
	os.Exit(code)
}
