package apns_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	apnsemu "github.com/offline-push/offline-push/shared/emulator/apns"
	"github.com/offline-push/offline-push/shared/provider/apns"
	"github.com/offline-push/offline-push/shared/push"
)

// clientCertificate returns a CA pool and a client certificate it signed,
// with its key, as one PEM text (the form of an APNs .pem export).
func clientCertificate(t *testing.T) (*x509.CertPool, string) {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey, clientKey := key(), key()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test push CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Apple Push Services: " + bundle},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &clientKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(clientKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})) +
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
}

// TestCertificateAuth: with a certificate secret the provider
// authenticates by TLS client certificate, sends no provider token and
// mints none, for alert and VoIP pushes alike.
func TestCertificateAuth(t *testing.T) {
	pool, certPEM := clientCertificate(t)
	f := newFixture(t, apnsemu.Options{ClientCAs: pool})
	f.creds.PrivateKey, f.creds.KeyID, f.creds.TeamID = "", "", ""
	f.creds.Certificate = certPEM
	cache := newMemoryCache()
	s := apns.New(cache, nil, discard())

	env := call(push.KindCallInvite, time.Now().Add(time.Minute))
	if got := classes(s.Send(t.Context(), f.job(t, env))); got != "ok ok" {
		t.Fatalf("results = %s, want ok ok", got)
	}
	for _, p := range f.emu.Received() {
		if p.Auth != "certificate" || p.Header.Get("authorization") != "" || p.Proto != "HTTP/2.0" {
			t.Errorf("push to …%s: auth %s, authorization %q, %s; want certificate, none, HTTP/2.0",
				p.Token[58:], p.Auth, p.Header.Get("authorization"), p.Proto)
		}
	}
	if n := cache.stored.Load(); n != 0 {
		t.Errorf("%d provider tokens minted with certificate auth, want 0", n)
	}

	// A certificate the emulator does not trust fails the handshake: no
	// APNs answer, so transient.
	_, strangerPEM := clientCertificate(t)
	f.creds.Certificate = strangerPEM
	if got := classes(s.Send(t.Context(), f.job(t, message(1)))); got != "transient/"+apns.CodeTransport {
		t.Errorf("results with an untrusted certificate = %s, want transient/%s", got, apns.CodeTransport)
	}
}
