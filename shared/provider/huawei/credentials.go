package huawei

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Huawei's public hosts (VENDORS.md §4). The token URL is the documented v3
// one on oauth-login; older samples use login.cloud.huawei.com or v2, which
// VENDORS.md §11.2 says still answer, but v3 is the current one.
const (
	DefaultEndpoint     = "https://push-api.cloud.huawei.com"
	DefaultAuthEndpoint = "https://oauth-login.cloud.huawei.com"
	tokenPath           = "/oauth2/v3/token"
)

// Defaults of the classification fields (VENDORS.md §10): chat goes out as
// IM and calls as VOIP, the two service-and-communication categories an
// approved app may use, so Huawei neither silences nor caps them as
// marketing.
const (
	DefaultCategory     = "IM"
	DefaultCallCategory = "VOIP"
)

// Credentials is the JSON of a Huawei secret ({prefix}/{app}/vendors/{certName},
// API.md §7). The AppID doubles as the OAuth client id, and the AppSecret as
// the client secret, as Huawei's console issues them.
type Credentials struct {
	Vendor    string `json:"vendor"`
	AppID     string `json:"appId"`
	AppSecret string `json:"appSecret"`
	// Category classifies chat messages (default IM) and CallCategory call
	// invitations and cancels (default VOIP). Both need Huawei's approval of
	// the app's self-classification; without it Huawei treats pushes as
	// marketing whatever they say.
	Category     string `json:"category,omitempty"`
	CallCategory string `json:"callCategory,omitempty"`
	// BadgeClass is the full class name of the app's launcher activity
	// (com.example.MainActivity). Huawei requires it to change a badge, so
	// without it no badge increment is sent.
	BadgeClass string `json:"badgeClass,omitempty"`
	// Endpoint and AuthEndpoint replace Huawei's push and OAuth base URLs
	// (an emulator). Plain http is allowed only to a loopback address.
	Endpoint     string `json:"endpoint,omitempty"`
	AuthEndpoint string `json:"authEndpoint,omitempty"`
	// Resources are named presentations that a message selects with
	// push.resourceId (API.md §6).
	Resources map[string]Resource `json:"resources,omitempty"`
}

// Resource is one named presentation of a Huawei notification. Empty
// fields keep the credential's defaults.
type Resource struct {
	// ChannelID is the Android notification channel (channel_id) the app
	// created for these pushes.
	ChannelID string `json:"channelId,omitempty"`
	// Category replaces Category (or CallCategory, for calls).
	Category string `json:"category,omitempty"`
	// Sound is a sound file of the app's res/raw, used when the message
	// names none.
	Sound string `json:"sound,omitempty"`
	// Importance is android.notification.importance: LOW or NORMAL.
	Importance string `json:"importance,omitempty"`
}

// localWord is the endpoint value that the local stack replaces with its
// emulator's URL; reaching a provider unreplaced means it ran elsewhere.
const localWord = "local"

// errCredentials marks every problem with the credentials themselves: the
// secret must be fixed; resending cannot help.
var errCredentials = errors.New("huawei credentials")

// categories are the values Huawei documents for android.category.
var categories = map[string]bool{
	"IM": true, "VOIP": true, "SUBSCRIPTION": true, "TRAVEL": true, "HEALTH": true,
	"WORK": true, "ACCOUNT": true, "EXPRESS": true, "FINANCE": true,
	"DEVICE_REMINDER": true, "SYSTEM_REMINDER": true, "MAIL": true,
	"PLAY_VOICE": true, "MARKETING": true,
}

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
	if c.Vendor != "" && c.Vendor != "huawei" {
		return nil, bad("vendor is %q, want huawei", c.Vendor)
	}
	if c.AppID == "" || strings.ContainsAny(c.AppID, "/?#% ") {
		return nil, bad("appId is required and must be a plain id")
	}
	if c.AppSecret == "" {
		return nil, bad("appSecret is required")
	}
	if c.Category == "" {
		c.Category = DefaultCategory
	}
	if c.CallCategory == "" {
		c.CallCategory = DefaultCallCategory
	}
	for _, f := range []struct{ name, value string }{{"category", c.Category}, {"callCategory", c.CallCategory}} {
		if !categories[f.value] {
			return nil, bad("%s %q is not one of Huawei's categories", f.name, f.value)
		}
	}
	for id, r := range c.Resources {
		if r.Category != "" && !categories[r.Category] {
			return nil, bad("resources.%s.category %q is not one of Huawei's categories", id, r.Category)
		}
		if r.Importance != "" && r.Importance != "LOW" && r.Importance != "NORMAL" {
			return nil, bad("resources.%s.importance must be LOW or NORMAL", id)
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
