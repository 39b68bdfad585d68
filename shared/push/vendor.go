// Package push is the domain vocabulary of the offline push service: vendors,
// devices, settings, messages, decisions and the errors every layer shares.
// It imports only the standard library.
package push

// Vendor names a phone vendor's push service.
type Vendor string

// The eight vendors, spelled as they appear on the wire (API.md §3).
const (
	APNs   Vendor = "apns"
	FCM    Vendor = "fcm"
	Huawei Vendor = "huawei"
	Honor  Vendor = "honor"
	Xiaomi Vendor = "xiaomi"
	OPPO   Vendor = "oppo"
	Vivo   Vendor = "vivo"
	Meizu  Vendor = "meizu"
)

// Vendors lists every vendor in a stable order; the template declares one
// queue per entry.
var Vendors = []Vendor{APNs, FCM, Huawei, Honor, Xiaomi, OPPO, Vivo, Meizu}

// ParseVendor returns the vendor named s, and false when s names none.
func ParseVendor(s string) (Vendor, bool) {
	for _, v := range Vendors {
		if string(v) == s {
			return v, true
		}
	}
	return "", false
}

// Platform is the operating system family of a device.
type Platform string

// Platforms a device may report. Token-holding devices are ios or android;
// presence-only devices may be any of them.
const (
	PlatformIOS     Platform = "ios"
	PlatformAndroid Platform = "android"
	PlatformPC      Platform = "pc"
	PlatformMac     Platform = "mac"
	PlatformWeb     Platform = "web"
	PlatformOther   Platform = "other"
)

// ParsePlatform returns the platform named s, and false when s names none.
func ParsePlatform(s string) (Platform, bool) {
	switch p := Platform(s); p {
	case PlatformIOS, PlatformAndroid, PlatformPC, PlatformMac, PlatformWeb, PlatformOther:
		return p, true
	}
	return "", false
}

// Desktop reports whether p is a desktop or web client (POLICY.md rule 7).
func (p Platform) Desktop() bool {
	return p == PlatformPC || p == PlatformMac || p == PlatformWeb
}

// DefaultPlatform is the platform a token of vendor v implies when the caller
// names none.
func DefaultPlatform(v Vendor) Platform {
	if v == APNs {
		return PlatformIOS
	}
	return PlatformAndroid
}

// Environment selects the APNs host a token was issued for.
type Environment string

// APNs environments.
const (
	Production Environment = "production"
	Sandbox    Environment = "sandbox"
)
