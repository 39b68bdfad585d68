package testenv

import (
	"net/http"
	"net/http/httptest"
	"strings"
)

// StartProxy starts the fault proxy of NewProxy outside a test, for programs
// such as the load run (scripts/load) that put it in front of moto for their
// whole life. It listens on a free loopback port and forwards to target. The
// caller must call stop, which closes the listener and the connections to
// the target; after it, the proxy serves nothing.
func StartProxy(target string, opt ProxyOptions) (p *Proxy, stop func()) {
	transport := &http.Transport{
		Proxy:               nil, // never through the developer's HTTP proxy
		DisableCompression:  true,
		MaxIdleConnsPerHost: 64,
	}
	p = &Proxy{
		target: strings.TrimSuffix(target, "/"),
		client: &http.Client{Transport: transport},
	}
	p.SetOptions(opt)
	srv := httptest.NewServer(http.HandlerFunc(p.serve))
	p.URL = srv.URL
	return p, func() {
		srv.Close()
		transport.CloseIdleConnections()
	}
}
