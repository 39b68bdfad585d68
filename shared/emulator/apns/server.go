// Package apnsemu is a local emulator of Apple's APNs provider API for tests
// and the local stack. It speaks HTTP/2 over TLS only, as APNs does, and
// checks each request the way Apple documents it (VENDORS.md §1): the path,
// the provider token (ES256 JWT) or the TLS client certificate, the apns-*
// headers and the payload size. It answers with Apple's status codes and
// JSON reasons.
//
// It implements every rule on its own, from the documentation, and never
// imports the provider it checks: a bug shared by both sides would let a
// wrong request pass.
package apnsemu

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Options configures a Server.
type Options struct {
	// Addr is the TCP address to listen on; empty means a free port on
	// 127.0.0.1.
	Addr string
	// Now is the emulator's clock, used to judge the age of provider
	// tokens and to stamp records; nil means time.Now. Tests move it to
	// make a token expire without waiting an hour.
	Now func() time.Time
	// Seed seeds the random draws of the share-based faults, so that a run
	// with the same requests in the same order answers the same way.
	Seed int64
	// Printer, when set, receives one JSON line per accepted push, with the
	// device token shortened to its last 6 characters.
	Printer io.Writer
	// ClientCAs, when set, makes the server ask for a TLS client
	// certificate and accept a push from a client whose certificate chains
	// to one of these CAs without a provider token (certificate auth).
	// Clients without a certificate still use token auth.
	ClientCAs *x509.CertPool
	// MinTokenInterval, when positive, answers 429
	// TooManyProviderTokenUpdates when a team presents a provider token
	// issued less than this after the newest one it used before. Apple asks
	// providers to refresh no more often than every 20 minutes.
	MinTokenInterval time.Duration
}

// Reply is an answer the emulator gives instead of accepting a push.
type Reply struct {
	Status int
	Reason string
}

// Shares are the fractions (0 to 1) of valid pushes that the emulator
// answers with a fault instead of accepting, drawn from the seeded random
// source. They are tried in the order of the fields.
type Shares struct {
	TooManyRequests    float64 // 429 TooManyRequests
	InternalError      float64 // 500 InternalServerError
	ServiceUnavailable float64 // 503 ServiceUnavailable
}

// Push is a push the emulator accepted.
type Push struct {
	Token      string
	Topic      string
	PushType   string
	Priority   int
	Expiration int64 // Unix seconds; 0 when the header was 0 or absent
	// ExpirationSet tells an absent apns-expiration from an explicit 0.
	ExpirationSet bool
	CollapseID    string
	ApnsID        string
	// Auth is "token" or "certificate".
	Auth string
	// TeamID, KeyID and IssuedAt describe the provider token of a push
	// sent with token auth.
	TeamID   string
	KeyID    string
	IssuedAt time.Time
	// Bearer is the whole provider token, so tests can count distinct ones.
	Bearer   string
	Proto    string
	Header   http.Header
	Payload  json.RawMessage
	Received time.Time
}

// Server is a running emulator.
type Server struct {
	// URL is the base URL clients send to, as "https://127.0.0.1:port".
	URL string

	srv  *httptest.Server
	opts Options

	mu        sync.Mutex
	keys      map[string]key // by key id
	topics    map[string]bool
	tokens    map[string]Reply
	shares    Shares
	delay     time.Duration
	rnd       *mrand.Rand
	received  []Push
	newestIat map[string]int64    // by team: the newest iat accepted
	verified  map[string]struct{} // provider tokens whose signature verified
}

type key struct {
	team string
	pub  *ecdsa.PublicKey
}

// New starts an emulator serving HTTP/2 over TLS with a certificate for
// 127.0.0.1 and localhost. Close stops it.
func New(opts Options) (*Server, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{
		opts:      opts,
		keys:      map[string]key{},
		topics:    map[string]bool{},
		tokens:    map[string]Reply{},
		rnd:       mrand.New(mrand.NewPCG(uint64(opts.Seed), 0x61706e73)),
		newestIat: map[string]int64{},
		verified:  map[string]struct{}{},
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	// Failed handshakes (a client certificate of another CA, say) are the
	// client's to report; the emulator stays quiet about them.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if opts.Addr != "" {
		ln, err := net.Listen("tcp", opts.Addr)
		if err != nil {
			return nil, fmt.Errorf("apns emulator: listen on %s: %w", opts.Addr, err)
		}
		srv.Listener.Close()
		srv.Listener = ln
	}
	cert, err := serverCertificate(time.Now())
	if err != nil {
		srv.Listener.Close()
		return nil, fmt.Errorf("apns emulator: server certificate: %w", err)
	}
	srv.EnableHTTP2 = true
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if opts.ClientCAs != nil {
		srv.TLS.ClientCAs = opts.ClientCAs
		srv.TLS.ClientAuth = tls.VerifyClientCertIfGiven
	}
	srv.StartTLS()
	s.srv = srv
	s.URL = srv.URL
	return s, nil
}

// Close stops the server and closes its connections.
func (s *Server) Close() { s.srv.Close() }

// Client returns an HTTP client that trusts the server's certificate.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// CertPool returns a pool holding the server's certificate, for clients
// that build their own TLS configuration.
func (s *Server) CertPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(s.srv.Certificate())
	return pool
}

// CertificatePEM returns the server's certificate in PEM, for clients that
// are configured with text (a credential's trusted CA).
func (s *Server) CertificatePEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
}

// AddKey registers a team's signing key: provider tokens whose kid is keyID
// and whose iss is teamID must verify against pub.
func (s *Server) AddKey(teamID, keyID string, pub *ecdsa.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[keyID] = key{team: teamID, pub: pub}
	clear(s.verified) // a token verified under a replaced key must be checked again
}

// SetTopic allows pushes to an app's bundle id: apns-topic must be it, or
// it with ".voip" for VoIP pushes. Several bundles may be allowed.
func (s *Server) SetTopic(bundleID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.topics[bundleID] = true
}

// FailToken makes every valid push to token answer r, for example
// Reply{410, "Unregistered"} or Reply{429, "TooManyRequests"}.
func (s *Server) FailToken(token string, r Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[strings.ToLower(token)] = r
}

// SetShares sets the fractions of valid pushes answered with a fault.
func (s *Server) SetShares(sh Shares) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shares = sh
}

// SetDelay makes each request wait d before it is judged (or until the
// client gives up).
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// ClearFaults removes every fault set by FailToken, SetShares and SetDelay.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = map[string]Reply{}
	s.shares = Shares{}
	s.delay = 0
}

// Received returns a copy of the pushes accepted so far, in the order they
// were accepted.
func (s *Server) Received() []Push {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Push(nil), s.received...)
}

// Reset forgets the pushes accepted so far.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.received = nil
}

// rejection is a refusal with Apple's status and reason.
type rejection struct {
	status int
	reason string
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	delay := s.delay
	s.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	apnsID := r.Header.Get("apns-id")
	p, rej := s.check(r)
	if rej == nil {
		rej = s.fault(p.Token)
	}
	if apnsID == "" || (rej != nil && rej.reason == "BadMessageId") {
		apnsID = newUUID()
	}
	w.Header().Set("apns-id", apnsID)
	if rej != nil {
		body := map[string]any{"reason": rej.reason}
		if rej.status == http.StatusGone {
			body["timestamp"] = s.opts.Now().UnixMilli()
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rej.status)
		json.NewEncoder(w).Encode(body)
		return
	}
	p.ApnsID = apnsID
	s.accept(p)
	w.WriteHeader(http.StatusOK)
}

// fault returns the reply a fault control gives to a valid push to token,
// or nil to accept it.
func (s *Server) fault(token string) *rejection {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.tokens[token]; ok {
		return &rejection{r.Status, r.Reason}
	}
	for _, f := range []struct {
		share  float64
		status int
		reason string
	}{
		{s.shares.TooManyRequests, http.StatusTooManyRequests, "TooManyRequests"},
		{s.shares.InternalError, http.StatusInternalServerError, "InternalServerError"},
		{s.shares.ServiceUnavailable, http.StatusServiceUnavailable, "ServiceUnavailable"},
	} {
		if f.share > 0 && s.rnd.Float64() < f.share {
			return &rejection{f.status, f.reason}
		}
	}
	return nil
}

func (s *Server) accept(p *Push) {
	s.mu.Lock()
	s.received = append(s.received, *p)
	s.mu.Unlock()
	if s.opts.Printer == nil {
		return
	}
	line := struct {
		Emulator   string          `json:"emulator"`
		Token      string          `json:"token"`
		Topic      string          `json:"topic"`
		PushType   string          `json:"pushType"`
		Priority   int             `json:"priority"`
		Expiration int64           `json:"expiration"`
		CollapseID string          `json:"collapseId,omitempty"`
		ApnsID     string          `json:"apnsId"`
		Auth       string          `json:"auth"`
		Payload    json.RawMessage `json:"payload"`
	}{"apns", last6(p.Token), p.Topic, p.PushType, p.Priority, p.Expiration, p.CollapseID, p.ApnsID, p.Auth, p.Payload}
	b, err := json.Marshal(line)
	if err != nil {
		return // the payload was checked to be JSON; nothing else can fail
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.Printer.Write(append(b, '\n'))
}

// last6 returns the last 6 characters of a device token, the only part the
// emulator ever prints.
func last6(token string) string {
	if len(token) <= 6 {
		return token
	}
	return token[len(token)-6:]
}

// newUUID returns a random version 4 UUID in canonical lower case, as APNs
// generates for a push that came without apns-id.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// serverCertificate returns a new self-signed ECDSA certificate for
// 127.0.0.1, ::1 and localhost, valid for a day: each emulator has its own
// key, so trusting one emulator trusts nothing else.
func serverCertificate(now time.Time) (tls.Certificate, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "apns emulator"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}, nil
}
