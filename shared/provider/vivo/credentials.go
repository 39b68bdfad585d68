package vivo

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/offline-push/offline-push/shared/push"
)

// Credentials is the JSON of a vivo secret ({prefix}/{app}/vendors/{certName},
// API.md §7; the README documents each member).
type Credentials struct {
	Vendor string `json:"vendor"`
	// AppID is vivo's numeric app id, as a string or a number.
	AppID     json.Number `json:"appId"`
	AppKey    string      `json:"appKey"`
	AppSecret string      `json:"appSecret"`
	// Category is the message category, default IM.
	Category string `json:"category,omitempty"`
	// Endpoint replaces vivo's host (an emulator, a proxy); AuthEndpoint
	// replaces it for the auth call alone.
	Endpoint     string `json:"endpoint,omitempty"`
	AuthEndpoint string `json:"authEndpoint,omitempty"`
	// Resources are named presentations a message selects with
	// push.resourceId.
	Resources map[string]Resource `json:"resources,omitempty"`
}

// Resource is one named presentation. Empty members keep the defaults.
type Resource struct {
	Category string `json:"category,omitempty"`
	// NotifyType is 1 (none), 2 (sound), 3 (vibration) or 4 (both, the
	// default).
	NotifyType int `json:"notifyType,omitempty"`
}

// DefaultCategory is the category of every push whose credentials name
// none: vivo's instant-messaging system category.
const DefaultCategory = "IM"

// systemCategories are vivo's system-message categories; every other
// category is an operational one (classification 0).
var systemCategories = map[string]bool{
	"IM": true, "ACCOUNT": true, "TODO": true, "DEVICE_REMINDER": true, "ORDER": true, "SUBSCRIPTION": true,
}

// localWord is the endpoint the local stack replaces with its emulator's
// URL; one that reaches a provider unreplaced ran outside the local stack.
const localWord = "local"

// errCredentials marks every problem with the credentials themselves.
var errCredentials = errors.New("vivo credentials")

// parsed is a usable form of Credentials.
type parsed struct {
	creds    Credentials
	appID    int64
	pushHost string
	authHost string
}

func parseCredentials(raw []byte) (*parsed, error) {
	var c Credentials
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("%w: %w", errCredentials, err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", errCredentials, fmt.Sprintf(format, args...))
	}
	if c.Vendor != "" && c.Vendor != string(push.Vivo) {
		return nil, bad("vendor is %q", c.Vendor)
	}
	id, err := strconv.ParseInt(strings.TrimSpace(c.AppID.String()), 10, 64)
	if err != nil || id <= 0 {
		return nil, bad("appId must be vivo's numeric app id")
	}
	c.AppKey, c.AppSecret = strings.TrimSpace(c.AppKey), strings.TrimSpace(c.AppSecret)
	if c.AppKey == "" || c.AppSecret == "" {
		return nil, bad("appKey and appSecret are required")
	}
	if c.Category == "" {
		c.Category = DefaultCategory
	}
	p := &parsed{creds: c, appID: id, pushHost: defaultHost, authHost: defaultHost}
	for _, ep := range []struct{ name, value string }{{"endpoint", c.Endpoint}, {"authEndpoint", c.AuthEndpoint}} {
		if ep.value == "" {
			continue
		}
		if err := checkEndpoint(ep.value); err != nil {
			return nil, bad("%s: %v", ep.name, err)
		}
	}
	if c.Endpoint != "" {
		p.pushHost = strings.TrimSuffix(c.Endpoint, "/")
		p.authHost = p.pushHost
	}
	if c.AuthEndpoint != "" {
		p.authHost = strings.TrimSuffix(c.AuthEndpoint, "/")
	}
	return p, nil
}

// checkEndpoint accepts an https URL, or plain http to a loopback address
// (the emulators of tests and the local stack): an authToken must never
// cross a network in clear text.
func checkEndpoint(s string) error {
	if s == localWord {
		return fmt.Errorf("%q is only served by the local stack", localWord)
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("not an absolute URL without query")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); (ip != nil && ip.IsLoopback()) || host == "localhost" {
			return nil
		}
		return errors.New("plain http is only allowed to a loopback address")
	}
	return errors.New("scheme must be https")
}

// resource returns the presentation of resource id (zero when unnamed or
// unknown).
func (p *parsed) resource(id string) Resource {
	if id == "" {
		return Resource{}
	}
	return p.creds.Resources[id]
}

// cacheKey names the app's token at its auth host.
func (p *parsed) cacheKey() string {
	return "vivo/" + strconv.FormatInt(p.appID, 10) + "@" + p.authHost + "#" + push.CredentialFingerprint(p.creds.AppKey, p.creds.AppSecret)
}
