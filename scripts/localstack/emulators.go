package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/sideshow/apns2/certificate"

	apnsemu "github.com/offline-push/offline-push/shared/emulator/apns"
	fcmemu "github.com/offline-push/offline-push/shared/emulator/fcm"
	honoremu "github.com/offline-push/offline-push/shared/emulator/honor"
	huaweiemu "github.com/offline-push/offline-push/shared/emulator/huawei"
	meizuemu "github.com/offline-push/offline-push/shared/emulator/meizu"
	oppoemu "github.com/offline-push/offline-push/shared/emulator/oppo"
	vivoemu "github.com/offline-push/offline-push/shared/emulator/vivo"
	xiaomiemu "github.com/offline-push/offline-push/shared/emulator/xiaomi"
	"github.com/offline-push/offline-push/shared/push"
)

// emulators are the vendor emulators of the local stack (API.md §8): one per
// vendor that a local credential names, each on a free loopback port, each
// printing one JSON line per push it accepts, with the token's last 6
// characters only.
type emulators struct {
	running []*emulated
}

// emulated is one running vendor emulator.
type emulated struct {
	vendor push.Vendor
	url    string
	// client reaches url; APNs needs one that trusts the emulator's
	// certificate and speaks HTTP/2.
	client *http.Client
	close  func()
	// certs counts the credentials registered with it.
	certs int
	// server is the emulator's *Server, for its fault controls (faults.go).
	server any
}

// startEmulator starts the emulator of one vendor, registers the keys,
// secrets and app ids of its local credentials with it, and points their
// local members at it. Emulators print the pushes they accept to out.
type startEmulator func(creds []*credential, out io.Writer) (*emulated, error)

var emulatorStarters = map[push.Vendor]startEmulator{
	push.APNs:   startAPNs,
	push.FCM:    startFCM,
	push.Huawei: startHuawei,
	push.Honor:  startHonor,
	push.Xiaomi: startXiaomi,
	push.OPPO:   startOPPO,
	push.Vivo:   startVivo,
	push.Meizu:  startMeizu,
}

// startEmulators starts one emulator per vendor that any credential marks
// local (isLocal), registers each local credential with it, and rewrites
// the credential's fields in place so that its provider reaches the
// emulator: a URL member that is "local", or absent where the provider
// would otherwise reach the vendor's public host, becomes the emulator's
// URL, and an APNs credential gets the emulator's certificate as
// endpointCA. It must run before the credentials are stored, since the
// providers read only the stored JSON. Credentials that are not local are
// left alone. When it fails, what it started is stopped.
func startEmulators(creds []credential, out io.Writer, log *slog.Logger) (*emulators, error) {
	byVendor := map[push.Vendor][]*credential{}
	for i := range creds {
		if isLocal(creds[i].Vendor, creds[i].Fields) {
			byVendor[creds[i].Vendor] = append(byVendor[creds[i].Vendor], &creds[i])
		}
	}
	e := &emulators{}
	for _, v := range push.Vendors {
		list := byVendor[v]
		if len(list) == 0 {
			continue
		}
		em, err := emulatorStarters[v](list, out)
		if err != nil {
			e.stop()
			return nil, fmt.Errorf("%s emulator: %w", v, err)
		}
		em.vendor, em.certs = v, len(list)
		e.running = append(e.running, em)
		if err := applyLocalFaults(em); err != nil { // PUSH_LOCAL_FAULTS, faults.go
			e.stop()
			return nil, err
		}
		log.Info("vendor emulator started", "vendor", v, "url", em.url, "credentials", em.certs)
	}
	return e, nil
}

// urls returns each running emulator's base URL by vendor.
func (e *emulators) urls() map[push.Vendor]string {
	out := map[push.Vendor]string{}
	for _, em := range e.running {
		out[em.vendor] = em.url
	}
	return out
}

// waitReady polls every emulator until it answers an HTTP request (any
// status: the emulators refuse unsigned requests), so that "ready" is
// printed only once they serve.
func (e *emulators) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, em := range e.running {
		for {
			err := probe(ctx, em)
			if err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s emulator at %s does not answer: %w", em.vendor, em.url, err)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

func probe(ctx context.Context, em *emulated) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, em.url+"/", nil)
	if err != nil {
		return err
	}
	resp, err := em.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// stop closes every emulator, in reverse order of start. Requests in
// flight finish first, so stop the queue pollers before.
func (e *emulators) stop() {
	for i := len(e.running) - 1; i >= 0; i-- {
		e.running[i].close()
	}
	e.running = nil
}

// syncWriter serializes writes to w. The emulators print from their own
// goroutines and the local stack prints "ready" from its own, each line
// in one Write, so a lock per Write keeps every line whole.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// pointAt sets f[key] to url when it is "local" or absent, and reports
// whether it did. An explicit URL is the operator's choice (a proxy in
// front of the emulator, say) and is kept.
func pointAt(f map[string]any, key, url string) bool {
	if v, ok := f[key]; ok && v != localWord {
		return false
	}
	f[key] = url
	return true
}

// pointIfLocal sets f[key] to url only when it is "local": for members
// whose absence already means the endpoint (OPPO's and vivo's
// authEndpoint, APNs's sandboxEndpoint).
func pointIfLocal(f map[string]any, key, url string) {
	if f[key] == localWord {
		f[key] = url
	}
}

// str returns a string member, or the decimal text of a whole number (app
// ids may be written either way); anything else is "".
func str(f map[string]any, key string) string {
	switch v := f[key].(type) {
	case string:
		return v
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return strconv.FormatInt(int64(v), 10)
		}
	case json.Number:
		return v.String()
	}
	return ""
}

// need returns the string members keys of a credential, or an error naming
// the first one missing. It never quotes a value.
func need(c *credential, keys ...string) ([]string, error) {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = str(c.Fields, k)
		if out[i] == "" {
			return nil, fmt.Errorf("app %s cert %s: %s is required", c.App, c.CertName, k)
		}
	}
	return out, nil
}

// httpClient reaches a plain-HTTP emulator when probing it; the timeout
// keeps a stuck emulator from holding up the start.
func httpClient() *http.Client { return &http.Client{Timeout: 5 * time.Second} }

func startAPNs(creds []*credential, out io.Writer) (*emulated, error) {
	// Certificate auth is checked in the TLS handshake, so the client
	// certificates must be known before the server starts.
	var clientCAs *x509.CertPool
	type tokenKey struct {
		team, id string
		pub      *ecdsa.PublicKey
	}
	var keys []tokenKey
	for _, c := range creds {
		if _, err := need(c, "bundleId"); err != nil {
			return nil, err
		}
		if cert, err := apnsClientCertificate(c); err != nil {
			return nil, fmt.Errorf("app %s cert %s: %w", c.App, c.CertName, err)
		} else if cert != nil {
			if clientCAs == nil {
				clientCAs = x509.NewCertPool()
			}
			clientCAs.AddCert(cert)
			continue
		}
		ids, err := need(c, "privateKey", "keyId", "teamId")
		if err != nil {
			return nil, err
		}
		pub, err := ecPublicKey(ids[0])
		if err != nil {
			return nil, fmt.Errorf("app %s cert %s: privateKey: %w", c.App, c.CertName, err)
		}
		keys = append(keys, tokenKey{ids[2], ids[1], pub})
	}
	s, err := apnsemu.New(apnsemu.Options{Printer: out, ClientCAs: clientCAs})
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		s.AddKey(k.team, k.id, k.pub)
	}
	ca := string(s.CertificatePEM())
	for _, c := range creds {
		s.SetTopic(str(c.Fields, "bundleId"))
		if pointAt(c.Fields, "endpoint", s.URL) {
			c.Fields["endpointCA"] = ca
		}
		pointIfLocal(c.Fields, "sandboxEndpoint", s.URL)
	}
	return &emulated{url: s.URL, client: s.Client(), close: s.Close, server: s}, nil
}

// apnsClientCertificate returns the certificate of a credential that uses
// certificate auth (a PEM certificate or a base64 PKCS#12 file), and nil for
// token auth. The emulator trusts it as its own root, since a local
// credential's certificate is usually self-signed.
func apnsClientCertificate(c *credential) (*x509.Certificate, error) {
	password := str(c.Fields, "certificatePassword")
	var pair tls.Certificate
	var err error
	switch {
	case str(c.Fields, "certificate") != "":
		pair, err = certificate.FromPemBytes([]byte(str(c.Fields, "certificate")), password)
	case str(c.Fields, "p12") != "":
		der, decodeErr := base64.StdEncoding.DecodeString(str(c.Fields, "p12"))
		if decodeErr != nil {
			return nil, errors.New("p12 is not base64")
		}
		pair, err = certificate.FromP12Bytes(der, password)
	default:
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("client certificate: %w", err)
	}
	if len(pair.Certificate) == 0 {
		return nil, errors.New("client certificate: no certificate")
	}
	return x509.ParseCertificate(pair.Certificate[0])
}

// ecPublicKey returns the public half of a PKCS#8 PEM ECDSA key (an APNs
// .p8 file).
func ecPublicKey(pemText string) (*ecdsa.PublicKey, error) {
	block, _ := pem.Decode([]byte(pemText))
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T, want an ECDSA key", k)
	}
	return &ec.PublicKey, nil
}

func startFCM(creds []*credential, out io.Writer) (*emulated, error) {
	s := fcmemu.New(fcmemu.Options{Printer: out})
	for _, c := range creds {
		sa, _ := c.Fields["serviceAccount"].(map[string]any)
		if sa == nil {
			s.Close()
			return nil, fmt.Errorf("app %s cert %s: serviceAccount is required", c.App, c.CertName)
		}
		pointAt(sa, "token_uri", s.TokenURI())
		pointAt(c.Fields, "endpoint", s.Endpoint())
		data, err := json.Marshal(sa)
		if err == nil {
			err = s.AddServiceAccountJSON(data)
		}
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("app %s cert %s: %w", c.App, c.CertName, err)
		}
	}
	return &emulated{url: s.URL, client: httpClient(), close: s.Close, server: s}, nil
}

func startHuawei(creds []*credential, out io.Writer) (*emulated, error) {
	s, err := huaweiemu.New(huaweiemu.Options{Printer: out})
	if err != nil {
		return nil, err
	}
	for _, c := range creds {
		ids, err := need(c, "appId", "appSecret")
		if err != nil {
			s.Close()
			return nil, err
		}
		s.AddApp(ids[0], ids[1])
		pointAt(c.Fields, "endpoint", s.URL)
		pointAt(c.Fields, "authEndpoint", s.URL)
	}
	return &emulated{url: s.URL, client: httpClient(), close: s.Close, server: s}, nil
}

func startHonor(creds []*credential, out io.Writer) (*emulated, error) {
	s, err := honoremu.New(honoremu.Options{Printer: out})
	if err != nil {
		return nil, err
	}
	for _, c := range creds {
		ids, err := need(c, "appId", "clientId", "clientSecret")
		if err != nil {
			s.Close()
			return nil, err
		}
		s.AddApp(ids[0], ids[1], ids[2])
		pointAt(c.Fields, "endpoint", s.URL)
		pointAt(c.Fields, "authEndpoint", s.URL)
	}
	return &emulated{url: s.URL, client: httpClient(), close: s.Close, server: s}, nil
}

func startXiaomi(creds []*credential, out io.Writer) (*emulated, error) {
	s := xiaomiemu.New(xiaomiemu.Options{Printer: out})
	for _, c := range creds {
		ids, err := need(c, "appSecret", "packageName", "channelId")
		if err != nil {
			s.Close()
			return nil, err
		}
		s.AddApp(xiaomiemu.App{Secret: ids[0], Packages: []string{ids[1]}, Channels: xiaomiChannels(c)})
		pointAt(c.Fields, "endpoint", s.URL)
	}
	return &emulated{url: s.URL, client: httpClient(), close: s.Close, server: s}, nil
}

// xiaomiChannels returns the notification channels a Xiaomi credential
// names (its channelId, callChannelId and those of its resources): the
// channels the app has had approved, which the emulator then requires.
func xiaomiChannels(c *credential) []string {
	set := map[string]bool{}
	for _, k := range []string{"channelId", "callChannelId"} {
		if ch := str(c.Fields, k); ch != "" {
			set[ch] = true
		}
	}
	res, _ := c.Fields["resources"].(map[string]any)
	for _, r := range res {
		if m, ok := r.(map[string]any); ok {
			if ch := str(m, "channelId"); ch != "" {
				set[ch] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for ch := range set {
		out = append(out, ch)
	}
	sort.Strings(out)
	return out
}

func startOPPO(creds []*credential, out io.Writer) (*emulated, error) {
	s, err := oppoemu.New(oppoemu.Options{Printer: out})
	if err != nil {
		return nil, err
	}
	for _, c := range creds {
		ids, err := need(c, "appKey", "masterSecret")
		if err != nil {
			s.Close()
			return nil, err
		}
		s.AddApp(ids[0], ids[1])
		pointAt(c.Fields, "endpoint", s.URL)
		pointIfLocal(c.Fields, "authEndpoint", s.URL)
	}
	return &emulated{url: s.URL, client: httpClient(), close: s.Close, server: s}, nil
}

func startVivo(creds []*credential, out io.Writer) (*emulated, error) {
	s, err := vivoemu.New(vivoemu.Options{Printer: out})
	if err != nil {
		return nil, err
	}
	for _, c := range creds {
		ids, err := need(c, "appId", "appKey", "appSecret")
		if err != nil {
			s.Close()
			return nil, err
		}
		id, err := strconv.ParseInt(ids[0], 10, 64)
		if err != nil || id <= 0 {
			s.Close()
			return nil, fmt.Errorf("app %s cert %s: appId must be vivo's numeric app id", c.App, c.CertName)
		}
		s.AddApp(id, ids[1], ids[2])
		pointAt(c.Fields, "endpoint", s.URL)
		pointIfLocal(c.Fields, "authEndpoint", s.URL)
	}
	return &emulated{url: s.URL, client: httpClient(), close: s.Close, server: s}, nil
}

func startMeizu(creds []*credential, out io.Writer) (*emulated, error) {
	s := meizuemu.New(meizuemu.Options{Printer: out})
	for _, c := range creds {
		ids, err := need(c, "appId", "appSecret")
		if err != nil {
			s.Close()
			return nil, err
		}
		s.AddApp(meizuemu.App{ID: ids[0], Secret: ids[1]})
		pointAt(c.Fields, "endpoint", s.URL)
	}
	return &emulated{url: s.URL, client: httpClient(), close: s.Close, server: s}, nil
}
