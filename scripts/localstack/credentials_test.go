package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/offline-push/offline-push/shared/push"
)

// parsePKCS8 decodes a PEM private key of the kind the vendors hand out.
func parsePKCS8(t *testing.T, s any) any {
	t.Helper()
	str, _ := s.(string)
	block, _ := pem.Decode([]byte(str))
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("not a PKCS#8 PEM block: %.40q", str)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestRepositoryConfig loads config/local.json as `make run` does: every
// vendor is present, nothing in it is a private key, and every key its
// local credentials lack is generated in the right form.
func TestRepositoryConfig(t *testing.T) {
	c, err := readConfig(filepath.Join("..", "..", defaultConfig))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join("..", "..", defaultConfig))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "PRIVATE KEY") {
		t.Error("config/local.json holds a private key; keys are generated at start")
	}
	creds, err := c.credentials()
	if err != nil {
		t.Fatal(err)
	}
	byVendor := map[push.Vendor]credential{}
	for _, cr := range creds {
		byVendor[cr.Vendor] = cr
	}
	for _, v := range push.Vendors {
		if _, ok := byVendor[v]; !ok {
			t.Errorf("config/local.json has no %s credential", v)
		}
	}

	apns := byVendor[push.APNs]
	key, ok := parsePKCS8(t, apns.Fields["privateKey"]).(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		t.Errorf("APNs privateKey is %T, want a P-256 ECDSA key", key)
	}
	for _, f := range []string{"keyId", "teamId"} {
		if s, _ := apns.Fields[f].(string); len(s) != 10 {
			t.Errorf("APNs %s = %q, want 10 characters", f, s)
		}
	}
	if diff := cmp.Diff([]string{"privateKey", "keyId", "teamId"}, apns.Generated); diff != "" {
		t.Errorf("APNs generated (-want +got):\n%s", diff)
	}

	sa := byVendor[push.FCM].Fields["serviceAccount"].(map[string]any)
	if _, ok := parsePKCS8(t, sa["private_key"]).(*rsa.PrivateKey); !ok {
		t.Errorf("FCM private_key is not an RSA key")
	}
	if sa["project_id"] != "demo-push" || sa["token_uri"] != "local" || sa["client_email"] != "push-demo@demo-push.iam.gserviceaccount.com" {
		t.Errorf("FCM service account lost configured fields: %v", sa)
	}

	for v, field := range secretFields {
		cr := byVendor[v]
		if s, _ := cr.Fields[field].(string); len(s) < 32 {
			t.Errorf("%s %s = %q, want a generated secret", v, field, s)
		}
		if diff := cmp.Diff([]string{field}, cr.Generated); diff != "" {
			t.Errorf("%s generated (-want +got):\n%s", v, diff)
		}
	}

	// The configuration itself is left as read.
	if _, ok := c.Apps["demo"].Vendors["ios-prod"]["privateKey"]; ok {
		t.Error("generating keys changed the configuration")
	}
}

func TestCompleteLocalKeepsGivenFields(t *testing.T) {
	for _, tc := range []struct {
		name   string
		vendor push.Vendor
		fields map[string]any
		want   []string
	}{
		{"apns with a certificate", push.APNs, map[string]any{"endpoint": "local", "bundleId": "b", "certificate": "c"}, nil},
		{"apns with a p12 and no bundle", push.APNs, map[string]any{"endpoint": "local", "p12": "c"}, []string{"bundleId"}},
		{"apns with a key", push.APNs, map[string]any{"endpoint": "local", "bundleId": "b", "privateKey": "p"}, []string{"keyId", "teamId"}},
		{"fcm without a service account", push.FCM, map[string]any{"endpoint": "local"},
			[]string{"serviceAccount.type", "serviceAccount.project_id", "serviceAccount.private_key", "serviceAccount.private_key_id", "serviceAccount.client_email"}},
		{"huawei with a secret", push.Huawei, map[string]any{"authEndpoint": "local", "appId": "1", "appSecret": "s"}, nil},
		{"oppo with its ids", push.OPPO, map[string]any{"endpoint": "local", "appKey": "k", "channelId": "c"}, []string{"masterSecret"}},
		{"oppo with nothing", push.OPPO, map[string]any{"endpoint": "local"}, []string{"appKey", "channelId", "masterSecret"}},
		{"huawei with nothing", push.Huawei, map[string]any{"endpoint": "local"}, []string{"appId", "appSecret"}},
		{"honor with nothing", push.Honor, map[string]any{"endpoint": "local"}, []string{"appId", "clientId", "clientSecret"}},
		{"xiaomi with nothing", push.Xiaomi, map[string]any{"endpoint": "local"}, []string{"packageName", "channelId", "appSecret"}},
		{"vivo with nothing", push.Vivo, map[string]any{"endpoint": "local"}, []string{"appId", "appKey", "appSecret"}},
		{"vivo with a numeric app id", push.Vivo, map[string]any{"endpoint": "local", "appId": 10001.0, "appKey": "k"}, []string{"appSecret"}},
		{"meizu with nothing", push.Meizu, map[string]any{"endpoint": "local"}, []string{"appId", "appSecret"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := cloneJSON(tc.fields)
			got, err := completeLocal(tc.vendor, tc.fields)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("generated (-want +got):\n%s", diff)
			}
			for k, v := range before {
				if !cmp.Equal(tc.fields[k], v) {
					t.Errorf("field %s changed from %v to %v", k, v, tc.fields[k])
				}
			}
		})
	}
}

func TestIsLocal(t *testing.T) {
	for _, tc := range []struct {
		vendor push.Vendor
		fields map[string]any
		want   bool
	}{
		{push.Vivo, map[string]any{"endpoint": "local"}, true},
		{push.Honor, map[string]any{"authEndpoint": "local"}, true},
		{push.FCM, map[string]any{"serviceAccount": map[string]any{"token_uri": "local"}}, true},
		{push.Huawei, map[string]any{"endpoint": "https://push-api.cloud.huawei.com"}, false},
		{push.FCM, map[string]any{"serviceAccount": map[string]any{"token_uri": "https://oauth2.googleapis.com/token"}}, false},
	} {
		if got := isLocal(tc.vendor, tc.fields); got != tc.want {
			t.Errorf("isLocal(%s, %v) = %v, want %v", tc.vendor, tc.fields, got, tc.want)
		}
	}
}

func TestReadConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, json, wantErr string
	}{
		{"bad app id", `{"apps": {"Demo": {"apiSecrets": ["s"]}}}`, "app id"},
		{"no api secrets", `{"apps": {"demo": {"apiSecrets": []}}}`, "no apiSecrets"},
		{"empty api secret", `{"apps": {"demo": {"apiSecrets": [""]}}}`, "is empty"},
		{"bad cert name", `{"apps": {"demo": {"apiSecrets": ["s"], "vendors": {"a b": {"vendor": "apns"}}}}}`, "certName"},
		{"unknown vendor", `{"apps": {"demo": {"apiSecrets": ["s"], "vendors": {"c": {"vendor": "nokia"}}}}}`, "vendor \"nokia\""},
		{"unknown member", `{"apps": {"demo": {"apiSecrets": ["s"], "secrets": []}}}`, "unknown field"},
		{"not json", `{`, "local config"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "local.json")
			if err := os.WriteFile(path, []byte(tc.json), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := readConfig(path)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestGeneratedIDsPassValidation checks the form of generated app ids that
// the providers check: vivo's appId must be a positive integer, and the
// other numeric ids read as the vendors issue them.
func TestGeneratedIDsPassValidation(t *testing.T) {
	numeric := regexp.MustCompile(`^[1-9][0-9]{5,}$`)
	for _, tc := range []struct {
		vendor push.Vendor
		fields []string
	}{
		{push.Huawei, []string{"appId"}},
		{push.Honor, []string{"appId", "clientId"}},
		{push.Vivo, []string{"appId"}},
		{push.Meizu, []string{"appId"}},
	} {
		f := map[string]any{"vendor": string(tc.vendor), "endpoint": "local"}
		if _, err := completeLocal(tc.vendor, f); err != nil {
			t.Fatal(err)
		}
		for _, name := range tc.fields {
			if s, _ := f[name].(string); !numeric.MatchString(s) {
				t.Errorf("%s %s = %q, want a positive decimal number", tc.vendor, name, s)
			}
		}
	}
}
