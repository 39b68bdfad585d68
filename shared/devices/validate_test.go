package devices

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/offline-push/offline-push/shared/push"
)

func ptr(s string) *string { return &s }

var (
	apnsToken = strings.Repeat("ab", 32)
	voipToken = strings.Repeat("cd", 32)
)

func TestValidateAccepts(t *testing.T) {
	tests := []struct {
		name string
		in   Registration
		want push.Binding
	}{
		{
			name: "apns defaults",
			in:   Registration{Vendor: "apns", Token: strings.ToUpper(apnsToken), CertName: "ios-prod"},
			want: push.Binding{DeviceID: "d1", Vendor: push.APNs, Token: apnsToken, CertName: "ios-prod",
				Platform: push.PlatformIOS, Environment: push.Production},
		},
		{
			name: "apns everything",
			in: Registration{Vendor: "apns", Token: apnsToken, CertName: "ios_1.x", Platform: ptr("ios"),
				Environment: ptr("sandbox"), VoIPToken: ptr(strings.ToUpper(voipToken)), Locale: ptr("zh-Hans-CN"),
				AppVersion: ptr("5.2.0")},
			want: push.Binding{DeviceID: "d1", Vendor: push.APNs, Token: apnsToken, VoIPToken: voipToken,
				CertName: "ios_1.x", Platform: push.PlatformIOS, Environment: push.Sandbox, Locale: "zh-Hans-CN",
				AppVersion: "5.2.0"},
		},
		{
			name: "fcm defaults to android and keeps case",
			in:   Registration{Vendor: "fcm", Token: "AbC:def-123_x", CertName: "fcm"},
			want: push.Binding{DeviceID: "d1", Vendor: push.FCM, Token: "AbC:def-123_x", CertName: "fcm", Platform: push.PlatformAndroid},
		},
		{
			name: "fcm on ios",
			in:   Registration{Vendor: "fcm", Token: strings.Repeat("x", 4096), CertName: "fcm", Platform: ptr("ios")},
			want: push.Binding{DeviceID: "d1", Vendor: push.FCM, Token: strings.Repeat("x", 4096), CertName: "fcm", Platform: push.PlatformIOS},
		},
		{
			name: "huawei longest token",
			in:   Registration{Vendor: "huawei", Token: strings.Repeat("h", 256), CertName: "hw"},
			want: push.Binding{DeviceID: "d1", Vendor: push.Huawei, Token: strings.Repeat("h", 256), CertName: "hw", Platform: push.PlatformAndroid},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.validate("d1")
			if err != nil {
				t.Fatalf("validate: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("binding mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateRejects(t *testing.T) {
	apns := func(f func(*Registration)) Registration {
		r := Registration{Vendor: "apns", Token: apnsToken, CertName: "ios"}
		f(&r)
		return r
	}
	fcm := func(f func(*Registration)) Registration {
		r := Registration{Vendor: "fcm", Token: "tok", CertName: "fcm"}
		f(&r)
		return r
	}
	tests := []struct {
		name  string
		in    Registration
		field string
	}{
		{"vendor missing", apns(func(r *Registration) { r.Vendor = "" }), "vendor"},
		{"vendor unknown", apns(func(r *Registration) { r.Vendor = "APNS" }), "vendor"},
		{"token missing", apns(func(r *Registration) { r.Token = "" }), "token"},
		{"apns token short", apns(func(r *Registration) { r.Token = strings.Repeat("a", 62) }), "token"},
		{"apns token long", apns(func(r *Registration) { r.Token = strings.Repeat("a", 202) }), "token"},
		{"apns token odd", apns(func(r *Registration) { r.Token = strings.Repeat("a", 65) }), "token"},
		{"apns token not hex", apns(func(r *Registration) { r.Token = strings.Repeat("g", 64) }), "token"},
		{"fcm token long", fcm(func(r *Registration) { r.Token = strings.Repeat("x", 4097) }), "token"},
		{"fcm token control", fcm(func(r *Registration) { r.Token = "a\nb" }), "token"},
		{"fcm token non-ascii", fcm(func(r *Registration) { r.Token = "tök" }), "token"},
		{"xiaomi token long", Registration{Vendor: "xiaomi", Token: strings.Repeat("x", 257), CertName: "mi"}, "token"},
		{"certName missing", apns(func(r *Registration) { r.CertName = "" }), "certName"},
		{"certName long", apns(func(r *Registration) { r.CertName = strings.Repeat("c", 33) }), "certName"},
		{"certName bad char", apns(func(r *Registration) { r.CertName = "a/b" }), "certName"},
		{"platform pc", apns(func(r *Registration) { r.Platform = ptr("pc") }), "platform"},
		{"platform empty", apns(func(r *Registration) { r.Platform = ptr("") }), "platform"},
		{"environment unknown", apns(func(r *Registration) { r.Environment = ptr("development") }), "environment"},
		{"environment on fcm", fcm(func(r *Registration) { r.Environment = ptr("production") }), "environment"},
		{"voipToken on fcm", fcm(func(r *Registration) { r.VoIPToken = ptr(voipToken) }), "voipToken"},
		{"voipToken not hex", apns(func(r *Registration) { r.VoIPToken = ptr(strings.Repeat("z", 64)) }), "voipToken"},
		{"voipToken equals token", apns(func(r *Registration) { r.VoIPToken = ptr(strings.ToUpper(apnsToken)) }), "voipToken"},
		{"locale empty", apns(func(r *Registration) { r.Locale = ptr("") }), "locale"},
		{"locale syntax", apns(func(r *Registration) { r.Locale = ptr("zh_CN") }), "locale"},
		{"locale long", apns(func(r *Registration) { r.Locale = ptr("en-" + strings.Repeat("abcdefgh-", 4)) }), "locale"},
		{"appVersion long", apns(func(r *Registration) { r.AppVersion = ptr(strings.Repeat("版", 33)) }), "appVersion"},
		{"appVersion control", apns(func(r *Registration) { r.AppVersion = ptr("1.0\x00") }), "appVersion"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.in.validate("d1")
			var ia *push.InvalidArgumentError
			if !errors.As(err, &ia) {
				t.Fatalf("validate = %v, want an invalid argument at %q", err, tt.field)
			}
			if ia.Field != tt.field {
				t.Errorf("field = %q, want %q (message %q)", ia.Field, tt.field, ia.Message)
			}
		})
	}
}

func TestValidLocale(t *testing.T) {
	tests := []struct {
		tag  string
		want bool
	}{
		{"en", true}, {"zh-CN", true}, {"zh-Hant-TW", true}, {"de-419", true}, {"sl-rozaj-biske", true},
		{"en-US-u-ca-gregory", true}, {"x-private", true}, {"en-x-twain", true}, {"zh-yue-HK", true},
		{"es-1996", true},
		{"", false}, {"e", false}, {"en-", false}, {"-en", false}, {"en--US", false}, {"zh_CN", false},
		{"123", false}, {"en-u", false}, {"x", false}, {"en-x", false}, {"toolongsubtag", false},
		{"en-US-ab", false}, {"en-a-b", false},
	}
	for _, tt := range tests {
		if got := validLocale(tt.tag); got != tt.want {
			t.Errorf("validLocale(%q) = %v, want %v", tt.tag, got, tt.want)
		}
	}
}

func TestParseReason(t *testing.T) {
	for _, ok := range []string{"logout", "kicked", "unregistered"} {
		if r, err := ParseReason(ok); err != nil || string(r) != ok {
			t.Errorf("ParseReason(%q) = %q, %v; want it accepted", ok, r, err)
		}
	}
	for _, bad := range []string{"", "Logout", "expired"} {
		_, err := ParseReason(bad)
		var ia *push.InvalidArgumentError
		if !errors.As(err, &ia) || ia.Field != "reason" {
			t.Errorf("ParseReason(%q) = %v, want an invalid argument at reason", bad, err)
		}
	}
}
