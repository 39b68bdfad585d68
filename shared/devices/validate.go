package devices

import (
	"strings"
	"unicode/utf8"

	"github.com/offline-push/offline-push/shared/push"
)

// Limits of the PUT body (API.md §3).
const (
	apnsTokenMin   = 64
	apnsTokenMax   = 200
	fcmTokenMax    = 4096
	otherTokenMax  = 256
	certNameMax    = 32
	appVersionMax  = 32
	localeMaxBytes = 35 // RFC 5646 §4.4.1: the length every implementation must be able to hold
)

// Registration is the body of a device PUT as the caller sent it, before
// validation. Optional members are pointers so that an absent member can be
// told from an empty one: "environment": "" is a bad value, not a default.
type Registration struct {
	Vendor      string
	Token       string
	CertName    string
	Platform    *string
	Environment *string
	VoIPToken   *string
	Locale      *string
	AppVersion  *string
}

// Reason says why a device is unregistered (API.md §3). It is logged and
// changes nothing else: every reason removes the binding the same way.
type Reason string

// Unregister reasons. ReasonNone stands for an absent query parameter.
const (
	ReasonNone         Reason = ""
	ReasonLogout       Reason = "logout"
	ReasonKicked       Reason = "kicked"
	ReasonUnregistered Reason = "unregistered"
)

// ParseReason returns the reason named by a present "reason" query
// parameter, or a 400 naming "reason" when it names none (an empty value
// included).
func ParseReason(s string) (Reason, error) {
	switch r := Reason(s); r {
	case ReasonLogout, ReasonKicked, ReasonUnregistered:
		return r, nil
	}
	return ReasonNone, push.Invalid("reason", "must be logout, kicked or unregistered")
}

// validate checks every member of r and returns the binding it describes,
// defaults applied and the APNs tokens lower-cased. The error names the first
// failing member by its JSON name.
func (r Registration) validate(device string) (push.Binding, error) {
	b := push.Binding{DeviceID: device}
	if r.Vendor == "" {
		return b, push.Invalid("vendor", "is required")
	}
	v, ok := push.ParseVendor(r.Vendor)
	if !ok {
		return b, push.Invalid("vendor", "must be one of %s", vendorList())
	}
	b.Vendor = v

	tok, err := normalizeToken(v, r.Token)
	if err != nil {
		return b, push.Prefix("token", err)
	}
	b.Token = tok

	if r.CertName == "" {
		return b, push.Invalid("certName", "is required")
	}
	if !validCertName(r.CertName) {
		return b, push.Invalid("certName", "must be 1 to %d characters of A-Z, a-z, 0-9, '_', '.' and '-'", certNameMax)
	}
	b.CertName = r.CertName

	b.Platform = push.DefaultPlatform(v)
	if r.Platform != nil {
		switch p := push.Platform(*r.Platform); p {
		case push.PlatformIOS, push.PlatformAndroid:
			b.Platform = p
		default:
			return b, push.Invalid("platform", "must be ios or android")
		}
	}

	if r.Environment != nil {
		if v != push.APNs {
			return b, push.Invalid("environment", "is only allowed with vendor apns")
		}
		switch e := push.Environment(*r.Environment); e {
		case push.Production, push.Sandbox:
			b.Environment = e
		default:
			return b, push.Invalid("environment", "must be production or sandbox")
		}
	} else if v == push.APNs {
		b.Environment = push.Production
	}

	if r.VoIPToken != nil {
		if v != push.APNs {
			return b, push.Invalid("voipToken", "is only allowed with vendor apns")
		}
		voip, err := normalizeToken(push.APNs, *r.VoIPToken)
		if err != nil {
			return b, push.Prefix("voipToken", err)
		}
		if voip == b.Token {
			return b, push.Invalid("voipToken", "must differ from token")
		}
		b.VoIPToken = voip
	}

	if r.Locale != nil {
		if !validLocale(*r.Locale) {
			return b, push.Invalid("locale", "must be a BCP 47 language tag of at most %d characters, such as zh-CN", localeMaxBytes)
		}
		b.Locale = *r.Locale
	}

	if r.AppVersion != nil {
		if n := utf8.RuneCountInString(*r.AppVersion); n > appVersionMax {
			return b, push.Invalid("appVersion", "must be at most %d characters, got %d", appVersionMax, n)
		}
		if strings.ContainsFunc(*r.AppVersion, isControl) {
			return b, push.Invalid("appVersion", "must not contain control characters")
		}
		b.AppVersion = *r.AppVersion
	}
	return b, nil
}

// normalizeToken checks a token against its vendor's format and returns the
// spelling that is stored and indexed. The error has an empty field, for the
// caller to prefix with the member's name.
func normalizeToken(v push.Vendor, tok string) (string, error) {
	if tok == "" {
		return "", push.Invalid("", "is required")
	}
	switch v {
	case push.APNs:
		if len(tok) < apnsTokenMin || len(tok) > apnsTokenMax || len(tok)%2 != 0 {
			return "", push.Invalid("", "must be an even number of %d to %d hex digits", apnsTokenMin, apnsTokenMax)
		}
		for i := 0; i < len(tok); i++ {
			if !isHex(tok[i]) {
				return "", push.Invalid("", "must be hex digits only")
			}
		}
		// Upper and lower case spell one APNs token; storing one spelling
		// keeps the owner key, and so the one-owner rule, case-blind.
		return strings.ToLower(tok), nil
	case push.FCM:
		return tok, printableASCII(tok, fcmTokenMax)
	default:
		return tok, printableASCII(tok, otherTokenMax)
	}
}

func printableASCII(s string, max int) error {
	if len(s) > max {
		return push.Invalid("", "must be at most %d characters", max)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return push.Invalid("", "must be printable ASCII")
		}
	}
	return nil
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

func validCertName(s string) bool {
	if len(s) == 0 || len(s) > certNameMax {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '.', c == '-':
		default:
			return false
		}
	}
	return true
}

func vendorList() string {
	names := make([]string, len(push.Vendors))
	for i, v := range push.Vendors {
		names[i] = string(v)
	}
	return strings.Join(names, ", ")
}
