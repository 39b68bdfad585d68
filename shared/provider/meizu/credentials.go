package meizu

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// DefaultEndpoint is Meizu's push API. Meizu's documentation names
// http://server-api-push.meizu.com; its official SDKs use
// https://api-push.meizu.com, which serves the same server API over TLS
// (VENDORS.md §11.8). We prefer TLS; an operator can set endpoint to the
// documented host.
const DefaultEndpoint = "https://api-push.meizu.com"

// sendPath is the notification-bar push by pushId (VENDORS.md §9). The
// pass-through variant is restricted by Meizu and not used.
const sendPath = "/garcia/api/server/push/varnished/pushByPushId"

// Credentials is the JSON of a Meizu secret ({prefix}/{app}/vendors/{certName},
// API.md §7; README "meizu"). Meizu has no message classification, channels
// or custom sounds, so the common resources member has nothing to select
// and is ignored.
type Credentials struct {
	Vendor string `json:"vendor"`
	// AppID is the Flyme app id; a JSON string or number.
	AppID json.RawMessage `json:"appId"`
	// AppSecret signs every request; it never travels itself.
	AppSecret string `json:"appSecret"`
	// Endpoint replaces DefaultEndpoint: scheme and host, no path.
	Endpoint string `json:"endpoint,omitempty"`
}

// localWord is the endpoint value that the local stack replaces with its
// emulator's URL; reaching a provider unreplaced means it ran elsewhere.
const localWord = "local"

// errCredentials marks every problem with the credentials themselves: the
// secret must be fixed; resending cannot help.
var errCredentials = errors.New("meizu credentials")

// config is a checked form of Credentials.
type config struct {
	appID   string
	secret  string
	sendURL string
}

// parseCredentials checks and decodes a secret. Its errors wrap
// errCredentials and never quote the secret.
func parseCredentials(raw []byte) (*config, error) {
	var c Credentials
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object: %w", errCredentials, err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", errCredentials, fmt.Sprintf(format, args...))
	}
	if c.Vendor != "" && c.Vendor != "meizu" {
		return nil, bad("vendor is %q, want meizu", c.Vendor)
	}
	appID := jsonText(c.AppID)
	if appID == "" {
		return nil, bad("appId is required")
	}
	if c.AppSecret == "" {
		return nil, bad("appSecret is required")
	}
	base := DefaultEndpoint
	if c.Endpoint != "" {
		if c.Endpoint == localWord {
			return nil, bad("endpoint %q is only served by the local stack", localWord)
		}
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return nil, bad("endpoint must be an http(s) URL without a path")
		}
		base = strings.TrimSuffix(c.Endpoint, "/")
	}
	return &config{appID: appID, secret: c.AppSecret, sendURL: base + sendPath}, nil
}

// jsonText reads a JSON string, or the literal of a number.
func jsonText(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}
