package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/offline-push/offline-push/shared/push"
)

// localConfig is the file named by PUSH_LOCAL_CONFIG (API.md §8): the apps
// and vendor credentials to load into the emulated Secrets Manager.
type localConfig struct {
	Apps map[string]localApp `json:"apps"`
}

type localApp struct {
	APISecrets []string `json:"apiSecrets"`
	// Vendors maps a certName to that credential's JSON, which carries
	// "vendor" plus the vendor's own fields.
	Vendors map[string]map[string]any `json:"vendors"`
}

// credential is one vendor credential as stored in Secrets Manager, with the
// keys generated at start filled in. The local stack keeps them in memory so
// that the vendor emulators can check what the clients sign with them.
type credential struct {
	App      string
	CertName string
	Vendor   push.Vendor
	Fields   map[string]any
	// Generated names the fields generated at start.
	Generated []string
}

// localWord marks an endpoint served by the local stack's emulators.
const localWord = "local"

var certNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,32}$`)

// readConfig reads and checks the local configuration file.
func readConfig(path string) (*localConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read local config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c localConfig
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("local config %s: %w", path, err)
	}
	for app, a := range c.Apps {
		if !push.ValidApp(app) {
			return nil, fmt.Errorf("local config %s: app id %q does not match ^[a-z0-9][a-z0-9-]{0,63}$", path, app)
		}
		if len(a.APISecrets) == 0 {
			return nil, fmt.Errorf("local config %s: app %s has no apiSecrets", path, app)
		}
		for i, s := range a.APISecrets {
			if s == "" {
				return nil, fmt.Errorf("local config %s: app %s apiSecrets[%d] is empty", path, app, i)
			}
		}
		for cert, fields := range a.Vendors {
			if !certNameRE.MatchString(cert) {
				return nil, fmt.Errorf("local config %s: app %s: certName %q does not match %s", path, app, cert, certNameRE)
			}
			name, _ := fields["vendor"].(string)
			if _, ok := push.ParseVendor(name); !ok {
				return nil, fmt.Errorf("local config %s: app %s cert %s: vendor %q is not one of %v", path, app, cert, name, push.Vendors)
			}
		}
	}
	return &c, nil
}

// credentials returns every vendor credential of the configuration, sorted by
// app and certName, with the keys that local credentials lack generated.
func (c *localConfig) credentials() ([]credential, error) {
	var out []credential
	for app, a := range c.Apps {
		for cert, fields := range a.Vendors {
			v, _ := push.ParseVendor(fields["vendor"].(string))
			cr := credential{App: app, CertName: cert, Vendor: v, Fields: cloneJSON(fields)}
			if isLocal(v, cr.Fields) {
				gen, err := completeLocal(v, cr.Fields)
				if err != nil {
					return nil, fmt.Errorf("app %s cert %s: %w", app, cert, err)
				}
				cr.Generated = gen
			}
			out = append(out, cr)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].App != out[j].App {
			return out[i].App < out[j].App
		}
		return out[i].CertName < out[j].CertName
	})
	return out, nil
}

// cloneJSON deep-copies a decoded JSON object, so that generated keys never
// leak into the configuration they came from.
func cloneJSON(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		switch x := v.(type) {
		case map[string]any:
			out[k] = cloneJSON(x)
		case []any:
			out[k] = append([]any(nil), x...)
		default:
			out[k] = v
		}
	}
	return out
}

// isLocal reports whether a credential points at the local emulators: its
// endpoint or authEndpoint, or an FCM service account's token_uri, is "local".
func isLocal(v push.Vendor, f map[string]any) bool {
	if f["endpoint"] == localWord || f["authEndpoint"] == localWord {
		return true
	}
	sa, _ := f["serviceAccount"].(map[string]any)
	return v == push.FCM && sa != nil && sa["token_uri"] == localWord
}

// secretFields names, per vendor other than APNs and FCM, the shared secret
// that signs or authenticates its requests.
var secretFields = map[push.Vendor]string{
	push.Huawei: "appSecret",
	push.Honor:  "clientSecret",
	push.Xiaomi: "appSecret",
	push.OPPO:   "masterSecret",
	push.Vivo:   "appSecret",
	push.Meizu:  "appSecret",
}

// completeLocal generates the keys a local credential lacks, so that no
// private key is ever committed, and the app ids it lacks, so that a local
// credential may name nothing but its vendor and the word local. It returns
// the names of the fields it set. Fields already present are kept.
func completeLocal(v push.Vendor, f map[string]any) ([]string, error) {
	var gen []string
	set := func(m map[string]any, key, prefix string, value func() (string, error)) error {
		// A given value is kept whatever its JSON type: an app id may be
		// written as a number.
		if v, ok := m[key]; ok && v != nil && v != "" {
			return nil
		}
		val, err := value()
		if err != nil {
			return fmt.Errorf("generate %s: %w", key, err)
		}
		m[key] = val
		gen = append(gen, prefix+key)
		return nil
	}
	switch v {
	case push.APNs:
		if err := set(f, "bundleId", "", constant(localPackage)); err != nil {
			return nil, err
		}
		// A credential with a client certificate uses certificate auth, and
		// the provider refuses one that has token-auth fields as well.
		if f["certificate"] != nil || f["p12"] != nil {
			break
		}
		if err := set(f, "privateKey", "", ecKeyPEM); err != nil {
			return nil, err
		}
		for _, k := range []string{"keyId", "teamId"} {
			if err := set(f, k, "", appleID); err != nil {
				return nil, err
			}
		}
	case push.FCM:
		sa, _ := f["serviceAccount"].(map[string]any)
		if sa == nil {
			sa = map[string]any{"token_uri": localWord}
			f["serviceAccount"] = sa
		}
		const p = "serviceAccount."
		steps := []struct {
			key   string
			value func() (string, error)
		}{
			{"type", constant("service_account")},
			{"project_id", constant("local-project")},
			{"private_key", rsaKeyPEM},
			{"private_key_id", randomHex(20)},
		}
		for _, s := range steps {
			if err := set(sa, s.key, p, s.value); err != nil {
				return nil, err
			}
		}
		project, _ := sa["project_id"].(string)
		if err := set(sa, "client_email", p, constant("local-push@"+project+".iam.gserviceaccount.com")); err != nil {
			return nil, err
		}
	default:
		for _, id := range localIDs[v] {
			if err := set(f, id.key, "", id.value); err != nil {
				return nil, err
			}
		}
		if err := set(f, secretFields[v], "", randomHex(16)); err != nil {
			return nil, err
		}
	}
	return gen, nil
}

// localID is an identifier that a local credential may leave out.
type localID struct {
	key   string
	value func() (string, error)
}

// localIDs lists, per vendor other than APNs and FCM, the identifiers that
// its provider requires and that a local credential may leave out, each
// generated in the form the provider accepts: Huawei, Honor, vivo and Meizu
// app ids are numeric (vivo's must be, and the others are in the vendors'
// consoles), so that a local credential needs no more than its vendor and
// the word local.
var localIDs = map[push.Vendor][]localID{
	push.Huawei: {{"appId", randomDigits(9)}},
	push.Honor:  {{"appId", randomDigits(9)}, {"clientId", randomDigits(9)}},
	push.Xiaomi: {{"packageName", constant(localPackage)}, {"channelId", constant(localChannel)}},
	push.OPPO:   {{"appKey", randomHex(12)}, {"channelId", constant(localChannel)}},
	push.Vivo:   {{"appId", randomDigits(6)}, {"appKey", randomHex(12)}},
	push.Meizu:  {{"appId", randomDigits(6)}},
}

// Names given to a local credential that names no app of its own.
const (
	localPackage = "com.example.localpush"
	localChannel = "local_im"
)

func constant(s string) func() (string, error) {
	return func() (string, error) { return s, nil }
}

func randomHex(n int) func() (string, error) {
	return func() (string, error) {
		b := make([]byte, n)
		rand.Read(b) // never fails (crypto/rand, Go 1.24+)
		return hex.EncodeToString(b), nil
	}
}

// randomDigits returns n random decimal digits, the first one not zero, so
// that the id reads as the positive number vendors issue.
func randomDigits(n int) func() (string, error) {
	return func() (string, error) {
		b := make([]byte, n)
		for i := range b {
			lo := 0
			if i == 0 {
				lo = 1
			}
			d, err := rand.Int(rand.Reader, big.NewInt(int64(10-lo)))
			if err != nil {
				return "", err
			}
			b[i] = byte('0' + lo + int(d.Int64()))
		}
		return string(b), nil
	}
}

// appleID returns a 10-character id shaped like an APNs key or team id.
func appleID() (string, error) { return strings.ToUpper(rand.Text()[:10]), nil }

// ecKeyPEM returns a new ES256 (P-256) key as PKCS#8 PEM, the form of an
// APNs .p8 file.
func ecKeyPEM() (string, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	return pkcs8PEM(k)
}

// rsaKeyPEM returns a new RSA key as PKCS#8 PEM, the form of a Google
// service account's private_key.
func rsaKeyPEM() (string, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", err
	}
	return pkcs8PEM(k)
}

func pkcs8PEM(key any) (string, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), nil
}
