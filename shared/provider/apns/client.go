package apns

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sideshow/apns2"

	"github.com/offline-push/offline-push/shared/push"
)

// Connection settings. APNs treats rapid connect and disconnect as an
// attack, so connections are kept for as long as the container lives and
// are checked with HTTP/2 pings instead of being redialled (VENDORS.md §2:
// apns2's own defaults).
const (
	dialTimeout      = 20 * time.Second
	tcpKeepAlive     = 15 * time.Second
	pingAfterIdle    = 15 * time.Second // apns2.ReadIdleTimeout
	pingTimeout      = 15 * time.Second
	requestTimeout   = 30 * time.Second
	maxCachedClients = 32
)

// conn is everything kept per credentials key across warm invocations: the
// parsed credentials and one HTTP/2 transport that both environments'
// clients share (its pool keys connections by host).
type conn struct {
	creds     *parsed
	err       error // the credentials cannot be used; kept so they are parsed once
	transport *headerTransport
	prod      *apns2.Client
	sandbox   *apns2.Client
	used      uint64 // for least-recently-used eviction
}

// client returns the client for a token's environment.
func (c *conn) client(env push.Environment) *apns2.Client {
	if env == push.Sandbox {
		return c.sandbox
	}
	return c.prod
}

// conns holds the clients of this container by SendJob.CredentialsKey. A
// rotated secret comes with a new key and gets a new client; the least
// recently used are closed once more than maxCachedClients are kept.
var conns = struct {
	sync.Mutex
	m    map[string]*conn
	tick uint64
}{m: map[string]*conn{}}

// connFor returns the cached conn of key, building it from raw on first use.
func connFor(key string, raw []byte) *conn {
	conns.Lock()
	defer conns.Unlock()
	conns.tick++
	if c, ok := conns.m[key]; ok {
		c.used = conns.tick
		return c
	}
	c := newConn(raw)
	c.used = conns.tick
	conns.m[key] = c
	for len(conns.m) > maxCachedClients {
		oldest, at := "", ^uint64(0)
		for k, v := range conns.m {
			if v.used < at {
				oldest, at = k, v.used
			}
		}
		if t := conns.m[oldest].transport; t != nil {
			t.CloseIdleConnections()
		}
		delete(conns.m, oldest)
	}
	return c
}

func newConn(raw []byte) *conn {
	p, err := parseCredentials(raw)
	if err != nil {
		return &conn{err: err}
	}
	tlsConfig := &tls.Config{RootCAs: p.roots, MinVersion: tls.VersionTLS12}
	if !p.tokenAuth() {
		tlsConfig.Certificates = []tls.Certificate{p.cert}
	}
	var protocols http.Protocols
	protocols.SetHTTP2(true) // APNs speaks HTTP/2 only
	tr := &headerTransport{next: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: dialTimeout, KeepAlive: tcpKeepAlive}).DialContext,
		TLSClientConfig:     tlsConfig,
		TLSHandshakeTimeout: dialTimeout,
		Protocols:           &protocols,
		HTTP2:               &http.HTTP2Config{SendPingTimeout: pingAfterIdle, PingTimeout: pingTimeout},
	}}
	httpClient := &http.Client{Transport: tr, Timeout: requestTimeout}
	prodHost, sandboxHost := apns2.HostProduction, apns2.HostDevelopment
	if ep := p.creds.Endpoint; ep != "" {
		prodHost, sandboxHost = strings.TrimSuffix(ep, "/"), strings.TrimSuffix(ep, "/")
		if sb := p.creds.SandboxEndpoint; sb != "" {
			sandboxHost = strings.TrimSuffix(sb, "/")
		}
	}
	// Token is left nil on purpose: apns2 would mint its own JWT per
	// process every 50 minutes, while ours is shared by every container
	// through the TokenCache and set by headerTransport.
	return &conn{
		creds:     p,
		transport: tr,
		prod:      &apns2.Client{Host: prodHost, HTTPClient: httpClient, Certificate: p.cert},
		sandbox:   &apns2.Client{Host: sandboxHost, HTTPClient: httpClient, Certificate: p.cert},
	}
}

// requestHeaders are headers of one push that apns2.Notification cannot
// express: the shared provider token, and apns-expiration 0, which apns2
// leaves out (it sends only expirations after the epoch).
type requestHeaders struct {
	bearer        string
	expirationNow bool
}

type headersKey struct{}

func withHeaders(ctx context.Context, h *requestHeaders) context.Context {
	return context.WithValue(ctx, headersKey{}, h)
}

// headerTransport adds the requestHeaders carried by a request's context.
type headerTransport struct {
	next *http.Transport
}

// RoundTrip sends r with the headers of its context, if any.
func (t *headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	h, _ := r.Context().Value(headersKey{}).(*requestHeaders)
	if h == nil {
		return t.next.RoundTrip(r)
	}
	out := r.Clone(r.Context()) // a RoundTripper must not change its request
	if h.bearer != "" {
		out.Header.Set("authorization", "bearer "+h.bearer)
	}
	if h.expirationNow {
		out.Header.Set("apns-expiration", "0")
	}
	return t.next.RoundTrip(out)
}

// CloseIdleConnections lets apns2.Client.CloseIdleConnections reach the
// transport.
func (t *headerTransport) CloseIdleConnections() { t.next.CloseIdleConnections() }
