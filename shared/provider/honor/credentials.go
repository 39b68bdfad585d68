package honor

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Honor's public hosts (VENDORS.md §5). Honor moved from *.hihonor.com to
// *.honor.com and from the OpenID Connect path to /auth/token; both still
// appear in clients (VENDORS.md §11.3). The current documented pair is used.
const (
	DefaultEndpoint     = "https://push-api.cloud.honor.com"
	DefaultAuthEndpoint = "https://iam.developer.honor.com"
	tokenPath           = "/auth/token"
)

// DefaultImportance classifies every push as service and communication
// (VENDORS.md §10): Honor's only classification knob, which an approved app
// sets to NORMAL so chat and calls are neither silenced nor capped as
// marketing (LOW). Honor has no call class and no custom channels.
const DefaultImportance = "NORMAL"

// Credentials is the JSON of an Honor secret ({prefix}/{app}/vendors/{certName},
// API.md §7): the app id that names the app in send URLs, and the OAuth
// client id and secret that Honor's console issues beside it.
type Credentials struct {
	Vendor       string `json:"vendor"`
	AppID        string `json:"appId"`
	ClientID     string `json:"clientId"`
	ClientSecret string `json:"clientSecret"`
	// Importance is android.notification.importance for every push:
	// NORMAL (default) or LOW.
	Importance string `json:"importance,omitempty"`
	// BadgeClass is the full class name of the app's launcher activity,
	// which Honor requires to change a badge; without it no badge
	// increment is sent.
	BadgeClass string `json:"badgeClass,omitempty"`
	// Endpoint and AuthEndpoint replace Honor's push and OAuth base URLs
	// (an emulator). Plain http is allowed only to a loopback address.
	Endpoint     string `json:"endpoint,omitempty"`
	AuthEndpoint string `json:"authEndpoint,omitempty"`
	// Resources are named presentations that a message selects with
	// push.resourceId (API.md §6).
	Resources map[string]Resource `json:"resources,omitempty"`
}

// Resource is one named presentation of an Honor notification. Honor
// offers neither channels nor custom sounds, so only the importance can
// differ.
type Resource struct {
	Importance string `json:"importance,omitempty"`
}

// localWord is the endpoint value that the local stack replaces with its
// emulator's URL; reaching a provider unreplaced means it ran elsewhere.
const localWord = "local"

// errCredentials marks every problem with the credentials themselves: the
// secret must be fixed; resending cannot help.
var errCredentials = errors.New("honor credentials")

// parseCredentials checks and decodes a secret, applying the defaults. Its
// errors wrap errCredentials and never quote the secret.
func parseCredentials(raw []byte) (*Credentials, error) {
	var c Credentials
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object: %w", errCredentials, err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", errCredentials, fmt.Sprintf(format, args...))
	}
	if c.Vendor != "" && c.Vendor != "honor" {
		return nil, bad("vendor is %q, want honor", c.Vendor)
	}
	if c.AppID == "" || strings.ContainsAny(c.AppID, "/?#% ") {
		return nil, bad("appId is required and must be a plain id")
	}
	if c.ClientID == "" || c.ClientSecret == "" {
		return nil, bad("clientId and clientSecret are required")
	}
	if c.Importance == "" {
		c.Importance = DefaultImportance
	}
	if c.Importance != "NORMAL" && c.Importance != "LOW" {
		return nil, bad("importance must be NORMAL or LOW")
	}
	for id, r := range c.Resources {
		if r.Importance != "" && r.Importance != "NORMAL" && r.Importance != "LOW" {
			return nil, bad("resources.%s.importance must be NORMAL or LOW", id)
		}
	}
	var err error
	if c.Endpoint, err = baseURL("endpoint", c.Endpoint, DefaultEndpoint); err != nil {
		return nil, err
	}
	if c.AuthEndpoint, err = baseURL("authEndpoint", c.AuthEndpoint, DefaultAuthEndpoint); err != nil {
		return nil, err
	}
	return &c, nil
}

// baseURL checks an endpoint override: an https URL, or an http one on a
// loopback address (an emulator), without query. A path is kept as a
// prefix. It returns def when value is empty.
func baseURL(name, value, def string) (string, error) {
	if value == "" {
		return def, nil
	}
	if value == localWord {
		return "", fmt.Errorf("%w: %s %q is only served by the local stack", errCredentials, name, localWord)
	}
	u, err := url.Parse(value)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%w: %s must be an absolute URL without query", errCredentials, name)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !loopback(u.Hostname()) {
			return "", fmt.Errorf("%w: %s may use plain http only on a loopback address", errCredentials, name)
		}
	default:
		return "", fmt.Errorf("%w: %s must be an https URL", errCredentials, name)
	}
	return strings.TrimSuffix(value, "/"), nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
