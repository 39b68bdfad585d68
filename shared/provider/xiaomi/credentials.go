package xiaomi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// DefaultEndpoint is Xiaomi's push API for devices in mainland China. The
// overseas hosts (ru-, idmb-, fr-, sgp-api.xmpush.global.xiaomi.com) depend
// on the region of the device, which we do not know per token; an app whose
// users are abroad sets endpoint in its credentials (one secret per region).
const DefaultEndpoint = "https://api.xmpush.xiaomi.com"

// sendPath is the v3 send-by-regId API (VENDORS.md §6): v3 accepts several
// packages and otherwise behaves as v2.
const sendPath = "/v3/message/regid"

// Credentials is the JSON of a Xiaomi secret ({prefix}/{app}/vendors/{certName},
// API.md §7; README "xiaomi").
type Credentials struct {
	Vendor string `json:"vendor"`
	// AppSecret authenticates every request as "Authorization: key=<AppSecret>".
	AppSecret string `json:"appSecret"`
	// PackageName is the Android package, sent as restricted_package_name.
	PackageName string `json:"packageName"`
	// ChannelID is the approved private-message (私信) channel sent as
	// extra.channel_id, so chat pushes are not counted against the
	// public-message quota (or refused under the 2024-11 rules).
	ChannelID string `json:"channelId"`
	// CallChannelID is the channel of call invites; empty means ChannelID.
	CallChannelID string `json:"callChannelId,omitempty"`
	// Endpoint replaces DefaultEndpoint (an overseas host, a proxy, an
	// emulator): scheme and host, no path.
	Endpoint string `json:"endpoint,omitempty"`
	// Resources are named presentations a message selects with
	// push.resourceId (API.md §6).
	Resources map[string]Resource `json:"resources,omitempty"`
}

// Resource is one named presentation of a Xiaomi notification.
type Resource struct {
	// ChannelID replaces the credentials' channel for messages and call
	// invites that name this resource.
	ChannelID string `json:"channelId,omitempty"`
	// Sound names a raw resource of the app (file name without extension),
	// sent as extra.sound_uri android.resource://<package>/raw/<sound>.
	Sound string `json:"sound,omitempty"`
}

// localWord is the endpoint value that the local stack replaces with its
// emulator's URL; reaching a provider unreplaced means it ran elsewhere.
const localWord = "local"

// errCredentials marks every problem with the credentials themselves: the
// secret must be fixed; resending cannot help.
var errCredentials = errors.New("xiaomi credentials")

// config is a checked form of Credentials.
type config struct {
	creds   Credentials
	sendURL string
	// auth is the Authorization header value.
	auth string
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
	if c.Vendor != "" && c.Vendor != "xiaomi" {
		return nil, bad("vendor is %q, want xiaomi", c.Vendor)
	}
	if c.AppSecret == "" || strings.ContainsAny(c.AppSecret, "\r\n") {
		return nil, bad("appSecret is required and must be one line")
	}
	if c.PackageName == "" || strings.Contains(c.PackageName, ",") {
		return nil, bad("packageName is required and names one package")
	}
	if c.ChannelID == "" {
		return nil, bad("channelId is required: the approved private-message channel")
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
	return &config{creds: c, sendURL: base + sendPath, auth: "key=" + c.AppSecret}, nil
}

// channel returns the extra.channel_id for a push of the given kind under
// resource r (zero when the message names none).
func (c *config) channel(call bool, r Resource) string {
	switch {
	case r.ChannelID != "":
		return r.ChannelID
	case call && c.creds.CallChannelID != "":
		return c.creds.CallChannelID
	}
	return c.creds.ChannelID
}
