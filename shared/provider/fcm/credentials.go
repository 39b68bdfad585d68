package fcm

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
)

// credentials is the secret {prefix}/{app}/vendors/{certName} of an FCM
// app (API.md §7, README):
//
//	{"vendor": "fcm",
//	 "serviceAccount": {<Google service-account key file: type, project_id,
//	                    private_key_id, private_key, client_email, token_uri>},
//	 "endpoint": "<messages base URL, default https://fcm.googleapis.com/v1>",
//	 "channelId": "<default Android notification channel>",
//	 "callChannelId": "<channel the app should ring calls on>",
//	 "resources": {"<resourceId>": {"channelId", "sound", "icon", "color"}}}
//
// Members other than these are ignored, so operators may keep notes in the
// secret.
type credentials struct {
	Vendor         string              `json:"vendor"`
	ServiceAccount json.RawMessage     `json:"serviceAccount"`
	Endpoint       string              `json:"endpoint"`
	ChannelID      string              `json:"channelId"`
	CallChannelID  string              `json:"callChannelId"`
	Resources      map[string]resource `json:"resources"`

	// project is the service account's project_id.
	project string
}

// resource is a named presentation an app chooses with push.resourceId.
type resource struct {
	ChannelID string `json:"channelId"`
	Sound     string `json:"sound"`
	Icon      string `json:"icon"`
	// Color is the notification's accent colour, #RRGGBB.
	Color string `json:"color"`
}

// serviceAccount holds the members of a key file that we check before the
// SDK reads it. The SDK reads the file itself; nothing here signs.
type serviceAccount struct {
	Type        string `json:"type"`
	ProjectID   string `json:"project_id"`
	PrivateKey  string `json:"private_key"`
	ClientEmail string `json:"client_email"`
	TokenURI    string `json:"token_uri"`
}

var colorRE = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

// errCredentials marks credentials that cannot work whatever FCM says.
var errCredentials = errors.New("fcm credentials")

// parseCredentials reads and checks the secret. Only a service_account key
// is accepted: other Google credential types (external accounts among
// them) can make the auth library run commands or fetch URLs named in the
// file. The token URI and the endpoint must be https, except on a loopback
// host, where the local stack's emulator serves plain HTTP.
func parseCredentials(data []byte) (*credentials, error) {
	var c credentials
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("%w: %w", errCredentials, err)
	}
	if c.Vendor != "fcm" {
		return nil, fmt.Errorf("%w: vendor %q, want fcm", errCredentials, c.Vendor)
	}
	if len(c.ServiceAccount) == 0 {
		return nil, fmt.Errorf("%w: serviceAccount missing", errCredentials)
	}
	var sa serviceAccount
	if err := json.Unmarshal(c.ServiceAccount, &sa); err != nil {
		return nil, fmt.Errorf("%w: serviceAccount: %w", errCredentials, err)
	}
	switch {
	case sa.Type != "service_account":
		return nil, fmt.Errorf("%w: serviceAccount.type %q, want service_account", errCredentials, sa.Type)
	case sa.ProjectID == "":
		return nil, fmt.Errorf("%w: serviceAccount.project_id missing", errCredentials)
	case sa.ClientEmail == "":
		return nil, fmt.Errorf("%w: serviceAccount.client_email missing", errCredentials)
	}
	if err := checkRSAKey(sa.PrivateKey); err != nil {
		return nil, fmt.Errorf("%w: serviceAccount.private_key: %w", errCredentials, err)
	}
	if sa.TokenURI != "" {
		if err := checkURL(sa.TokenURI); err != nil {
			return nil, fmt.Errorf("%w: serviceAccount.token_uri: %w", errCredentials, err)
		}
	}
	if c.Endpoint != "" {
		if err := checkURL(c.Endpoint); err != nil {
			return nil, fmt.Errorf("%w: endpoint: %w", errCredentials, err)
		}
	}
	for id, r := range c.Resources {
		if r.Color != "" && !colorRE.MatchString(r.Color) {
			return nil, fmt.Errorf("%w: resources.%s.color %q, want #RRGGBB", errCredentials, id, r.Color)
		}
	}
	c.project = sa.ProjectID
	return &c, nil
}

// checkRSAKey checks that a PEM private key is one the SDK can sign with,
// so that a broken secret is reported as such rather than as a failed
// token fetch.
func checkRSAKey(pemText string) error {
	block, _ := pem.Decode([]byte(pemText))
	if block == nil {
		return errors.New("no PEM block")
	}
	if _, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return nil
	}
	if _, err := x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
		return err
	}
	return nil
}

// checkURL accepts an absolute https URL, or http on a loopback host.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	switch {
	case u.Host == "":
		return fmt.Errorf("%q is not an absolute URL", raw)
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	}
	return fmt.Errorf("%q: want https (http only on a loopback host)", raw)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
