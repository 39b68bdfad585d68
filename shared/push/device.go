package push

import "time"

// TokenKind tells an alert token from a VoIP (PushKit) token. Both obey the
// one-owner rule with the owner key (app, vendor, token).
type TokenKind string

// Token kinds.
const (
	TokenAlert TokenKind = "alert"
	TokenVoIP  TokenKind = "voip"
)

// Binding is a device's registered push token and what the vendor needs to
// reach it. A device has at most one binding.
type Binding struct {
	DeviceID     string
	Vendor       Vendor
	Token        string // alert token; APNs tokens are stored lower case
	VoIPToken    string // APNs only; empty when none
	CertName     string
	Platform     Platform
	Environment  Environment // APNs only; empty for other vendors
	Locale       string
	AppVersion   string
	RegisteredAt time.Time
}

// Owner names the (user, device) that holds a token.
type Owner struct {
	UserID   string
	DeviceID string
}

// Lease is a device's presence: online while Until is in the future.
type Lease struct {
	DeviceID string
	Platform Platform
	Epoch    int64
	Until    time.Time // zero when offline
}

// Online reports whether the lease is held at now. Expiry is always checked
// inline; TTL only tidies up.
func (l Lease) Online(now time.Time) bool {
	return !l.Until.IsZero() && now.Before(l.Until)
}
