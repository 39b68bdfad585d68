package apns

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"

	"github.com/sideshow/apns2/certificate"
	"github.com/sideshow/apns2/token"

	"github.com/offline-push/offline-push/shared/push"
)

// Credentials is the JSON of an APNs secret
// ({prefix}/{app}/vendors/{certName}, API.md §7). Token auth needs teamId,
// keyId and privateKey (the .p8 file: a PKCS#8 PEM P-256 key); certificate
// auth needs certificate (PEM holding the certificate and its key) or p12
// (base64 of a PKCS#12 file), with certificatePassword when the key is
// encrypted. Apple recommends token auth; a secret gives one or the other.
type Credentials struct {
	Vendor   string `json:"vendor"`
	BundleID string `json:"bundleId"`

	TeamID     string `json:"teamId,omitempty"`
	KeyID      string `json:"keyId,omitempty"`
	PrivateKey string `json:"privateKey,omitempty"`

	Certificate         string `json:"certificate,omitempty"`
	P12                 string `json:"p12,omitempty"`
	CertificatePassword string `json:"certificatePassword,omitempty"`

	// Endpoint replaces both of Apple's hosts (an emulator). SandboxEndpoint,
	// when set too, replaces the sandbox host alone, so that a test can tell
	// the environments apart.
	Endpoint        string `json:"endpoint,omitempty"`
	SandboxEndpoint string `json:"sandboxEndpoint,omitempty"`
	// EndpointCA is the PEM certificate (or CA) that the endpoints' TLS
	// certificates chain to. It is only allowed with Endpoint, so that
	// Apple's hosts are always checked against the system roots.
	EndpointCA string `json:"endpointCA,omitempty"`

	// Resources are named presentations that a message selects with
	// push.resourceId (API.md §6).
	Resources map[string]Resource `json:"resources,omitempty"`
}

// Resource is one named presentation of an APNs notification.
type Resource struct {
	Sound    string `json:"sound,omitempty"`
	Category string `json:"category,omitempty"`
	ThreadID string `json:"threadId,omitempty"`
}

// localWord is the endpoint value that the local stack replaces with its
// emulator's URL; reaching a provider unreplaced means it ran elsewhere.
const localWord = "local"

// errCredentials marks every problem with the credentials themselves: the
// secret must be fixed; resending cannot help.
var errCredentials = errors.New("apns credentials")

// parsed is a usable form of Credentials.
type parsed struct {
	creds Credentials
	// authKey is set for token auth, cert for certificate auth.
	authKey *ecdsa.PrivateKey
	cert    tls.Certificate
	roots   *x509.CertPool // nil: the system roots
}

func (p *parsed) tokenAuth() bool { return p.authKey != nil }

// cacheKey names this key's provider token in the shared TokenCache: one
// token per team and key, whichever secret holds the key.
func (p *parsed) cacheKey() string {
	return "apns/" + p.creds.TeamID + "/" + p.creds.KeyID + "#" + push.CredentialFingerprint(p.creds.PrivateKey)
}

// parseCredentials checks and decodes a secret. Its errors wrap
// errCredentials and never quote key material.
func parseCredentials(raw []byte) (*parsed, error) {
	var c Credentials
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object: %w", errCredentials, err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", errCredentials, fmt.Sprintf(format, args...))
	}
	if c.Vendor != "" && c.Vendor != "apns" {
		return nil, bad("vendor is %q, want apns", c.Vendor)
	}
	if c.BundleID == "" {
		return nil, bad("bundleId is required")
	}
	p := &parsed{creds: c}
	hasToken := c.PrivateKey != "" || c.KeyID != "" || c.TeamID != ""
	hasCert := c.Certificate != "" || c.P12 != ""
	switch {
	case hasToken && hasCert:
		return nil, bad("give either privateKey, keyId and teamId (token auth) or certificate/p12, not both")
	case hasToken:
		if c.PrivateKey == "" || c.KeyID == "" || c.TeamID == "" {
			return nil, bad("token auth needs privateKey, keyId and teamId")
		}
		k, err := token.AuthKeyFromBytes([]byte(c.PrivateKey))
		if err != nil {
			return nil, fmt.Errorf("%w: privateKey: %w", errCredentials, err)
		}
		p.authKey = k
	case c.Certificate != "" && c.P12 != "":
		return nil, bad("give certificate or p12, not both")
	case c.Certificate != "":
		cert, err := certificate.FromPemBytes([]byte(c.Certificate), c.CertificatePassword)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate: %w", errCredentials, err)
		}
		p.cert = cert
	case c.P12 != "":
		der, err := base64.StdEncoding.DecodeString(c.P12)
		if err != nil {
			return nil, bad("p12 is not base64")
		}
		cert, err := certificate.FromP12Bytes(der, c.CertificatePassword)
		if err != nil {
			return nil, fmt.Errorf("%w: p12: %w", errCredentials, err)
		}
		p.cert = cert
	default:
		return nil, bad("no key: give privateKey, keyId and teamId, or a certificate")
	}
	for _, ep := range []struct{ name, value string }{{"endpoint", c.Endpoint}, {"sandboxEndpoint", c.SandboxEndpoint}} {
		if ep.value == "" {
			continue
		}
		if ep.value == localWord {
			return nil, bad("%s %q is only served by the local stack", ep.name, localWord)
		}
		u, err := url.Parse(ep.value)
		if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return nil, bad("%s must be an https URL without a path", ep.name)
		}
	}
	if c.SandboxEndpoint != "" && c.Endpoint == "" {
		return nil, bad("sandboxEndpoint needs endpoint")
	}
	if c.EndpointCA != "" {
		if c.Endpoint == "" {
			return nil, bad("endpointCA is only allowed with endpoint")
		}
		p.roots = x509.NewCertPool()
		if !p.roots.AppendCertsFromPEM([]byte(c.EndpointCA)) {
			return nil, bad("endpointCA holds no PEM certificate")
		}
	}
	return p, nil
}
