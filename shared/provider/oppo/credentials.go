package oppo

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/offline-push/offline-push/shared/push"
)

// Credentials is the JSON of an OPPO secret ({prefix}/{app}/vendors/{certName},
// API.md §7; the README documents each member).
type Credentials struct {
	Vendor       string `json:"vendor"`
	AppKey       string `json:"appKey"`
	MasterSecret string `json:"masterSecret"`
	// ChannelID is the notification channel registered in the OPPO console;
	// Android 8 and later show nothing without one.
	ChannelID string `json:"channelId"`
	// Category is the message category, default IM.
	Category string `json:"category,omitempty"`
	// Endpoint replaces both of OPPO's push hosts (an emulator, a proxy);
	// AuthEndpoint replaces the auth host, which is otherwise the push host.
	Endpoint     string `json:"endpoint,omitempty"`
	AuthEndpoint string `json:"authEndpoint,omitempty"`
	// Resources are named presentations a message selects with
	// push.resourceId.
	Resources map[string]Resource `json:"resources,omitempty"`
}

// Resource is one named presentation. Empty members keep the credentials'
// defaults. OPPO offers no choice of sound, so a resource's sound is
// ignored.
type Resource struct {
	ChannelID string `json:"channelId,omitempty"`
	Category  string `json:"category,omitempty"`
	// NotifyLevel is 1 (bar), 2 (bar and lock screen) or 16 (also banner,
	// sound and vibration; needs OPPO's permission).
	NotifyLevel int `json:"notifyLevel,omitempty"`
}

// DefaultCategory is the category of every push whose credentials name
// none: OPPO's instant-messaging category in the communication and service
// class, which has no daily cap.
const DefaultCategory = "IM"

// localWord is the endpoint the local stack replaces with its emulator's
// URL; one that reaches a provider unreplaced ran outside the local stack.
const localWord = "local"

// errCredentials marks every problem with the credentials themselves: the
// secret must be fixed; resending cannot help.
var errCredentials = errors.New("oppo credentials")

// parsed is a usable form of Credentials.
type parsed struct {
	creds Credentials
	// pushHosts maps a region to its base URL; authHosts likewise.
	pushHosts map[region]string
	authHosts map[region]string
}

// region tells OPPO's domestic and overseas services apart.
type region int

const (
	domestic region = iota
	overseas
)

func parseCredentials(raw []byte) (*parsed, error) {
	var c Credentials
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("%w: %w", errCredentials, err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", errCredentials, fmt.Sprintf(format, args...))
	}
	if c.Vendor != "" && c.Vendor != string(push.OPPO) {
		return nil, bad("vendor is %q", c.Vendor)
	}
	if c.AppKey == "" || c.MasterSecret == "" {
		return nil, bad("appKey and masterSecret are required")
	}
	if c.ChannelID == "" {
		return nil, bad("channelId is required")
	}
	if c.Category == "" {
		c.Category = DefaultCategory
	}
	p := &parsed{
		creds:     c,
		pushHosts: map[region]string{domestic: domesticHost, overseas: overseasHost},
		authHosts: map[region]string{domestic: domesticHost, overseas: overseasHost},
	}
	for _, ep := range []struct{ name, value string }{{"endpoint", c.Endpoint}, {"authEndpoint", c.AuthEndpoint}} {
		if ep.value == "" {
			continue
		}
		if err := checkEndpoint(ep.value); err != nil {
			return nil, bad("%s: %v", ep.name, err)
		}
	}
	if c.Endpoint != "" {
		base := strings.TrimSuffix(c.Endpoint, "/")
		p.pushHosts = map[region]string{domestic: base, overseas: base}
		p.authHosts = map[region]string{domestic: base, overseas: base}
	}
	if c.AuthEndpoint != "" {
		base := strings.TrimSuffix(c.AuthEndpoint, "/")
		p.authHosts = map[region]string{domestic: base, overseas: base}
	}
	return p, nil
}

// checkEndpoint accepts an https URL, or plain http to a loopback address
// (the emulators of tests and the local stack): credentials must never send
// an auth_token in clear text across a network.
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
// unknown: a message may name a resource that only some vendors define).
func (p *parsed) resource(id string) Resource {
	if id == "" {
		return Resource{}
	}
	return p.creds.Resources[id]
}

// group is the targets of one region.
type group struct {
	host region
	idx  []int
}

// split groups the targets by the region of their registration id, keeping
// their order within each group.
func (p *parsed) split(targets []push.Target) []group {
	var dom, ovs []int
	for i := range targets {
		if regionOf(targets[i].Token) == domestic {
			dom = append(dom, i)
		} else {
			ovs = append(ovs, i)
		}
	}
	var out []group
	if len(dom) > 0 {
		out = append(out, group{domestic, dom})
	}
	if len(ovs) > 0 {
		out = append(out, group{overseas, ovs})
	}
	return out
}

// regionOf applies OPPO's rule for registration ids (VENDORS.md §7): split on
// "_"; one part is domestic, two parts are domestic when the first is "CN",
// three when the second is. Anything else is overseas.
func regionOf(regID string) region {
	parts := strings.Split(regID, "_")
	switch {
	case len(parts) == 1:
		return domestic
	case len(parts) == 2 && parts[0] == "CN":
		return domestic
	case len(parts) == 3 && parts[1] == "CN":
		return domestic
	}
	return overseas
}
