package app

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/offline-push/offline-push/shared/cfn"
	"github.com/offline-push/offline-push/shared/dispatch"
	"github.com/offline-push/offline-push/shared/dynamo"
	apnsemu "github.com/offline-push/offline-push/shared/emulator/apns"
	fcmemu "github.com/offline-push/offline-push/shared/emulator/fcm"
	honoremu "github.com/offline-push/offline-push/shared/emulator/honor"
	huaweiemu "github.com/offline-push/offline-push/shared/emulator/huawei"
	meizuemu "github.com/offline-push/offline-push/shared/emulator/meizu"
	oppoemu "github.com/offline-push/offline-push/shared/emulator/oppo"
	vivoemu "github.com/offline-push/offline-push/shared/emulator/vivo"
	xiaomiemu "github.com/offline-push/offline-push/shared/emulator/xiaomi"
	"github.com/offline-push/offline-push/shared/provider/apns"
	"github.com/offline-push/offline-push/shared/provider/fcm"
	"github.com/offline-push/offline-push/shared/provider/honor"
	"github.com/offline-push/offline-push/shared/provider/huawei"
	"github.com/offline-push/offline-push/shared/provider/meizu"
	"github.com/offline-push/offline-push/shared/provider/oppo"
	"github.com/offline-push/offline-push/shared/provider/vivo"
	"github.com/offline-push/offline-push/shared/provider/xiaomi"
	"github.com/offline-push/offline-push/shared/push"
	"github.com/offline-push/offline-push/shared/testenv"
)

// scanBuffer is a log sink safe for the concurrent writes of a logger.
type scanBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *scanBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *scanBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// leakWindow is the length of the shortest run of a secret's characters
// that counts as a leak. A token may appear as its last 6 characters
// (push.Redact); any 12 consecutive characters of it are already far more
// than a suffix, and far too many to appear in a log line by chance.
const leakWindow = 12

// leakScanner finds tokens, secrets, key material and message text in log
// output. It matches case-insensitively, and looks inside JSON lines at
// every decoded string (so JSON escaping cannot hide a value) and at what
// base64 strings decode to (so a []byte logged by slog cannot either).
type leakScanner struct {
	mu      sync.Mutex
	windows map[string]string // lower-cased run of leakWindow bytes → what it is part of
	short   map[string]string // lower-cased whole values of 7 to leakWindow-1 bytes
}

// add registers values that must never appear in a log, described by kind.
// Values of up to 6 characters are ignored: that much is the redacted form
// that logs may show.
func (s *leakScanner) add(kind string, values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.windows == nil {
		s.windows, s.short = map[string]string{}, map[string]string{}
	}
	for _, v := range values {
		v = strings.ToLower(v)
		switch {
		case len(v) <= 6:
		case len(v) < leakWindow:
			s.short[v] = kind
		default:
			for i := 0; i+leakWindow <= len(v); i++ {
				s.windows[v[i:i+leakWindow]] = kind
			}
		}
	}
}

// addPEM registers the key material of every PEM block in text, as the
// base64 it is written in.
func (s *leakScanner) addPEM(kind, text string) {
	rest := []byte(text)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return
		}
		s.add(kind, base64.StdEncoding.EncodeToString(b.Bytes))
	}
}

// leak is one finding: the line it is on, where in the line, and what
// leaked. It never holds the leaked value itself.
type leak struct {
	Line int
	Msg  string // the line's "msg", when it is JSON
	Path string // the JSON member holding it, or "(raw)"
	Kind string
}

func (l leak) String() string {
	return fmt.Sprintf("line %d (msg %q, at %s): %s", l.Line, l.Msg, l.Path, l.Kind)
}

// privateKeyMarker flags a PEM header or footer of a private key, which no
// log line has a reason to carry.
const privateKeyMarker = "private key-----"

// scan returns every leak in logs, one per line, place and kind, and the
// number of lines it read.
func (s *leakScanner) scan(logs string) ([]leak, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []leak
	lines := 0
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		lines++
		line := sc.Text()
		seen := map[string]bool{}
		report := func(msg, path, kind string) {
			if key := path + "\x00" + kind; !seen[key] {
				seen[key] = true
				out = append(out, leak{Line: lines, Msg: msg, Path: path, Kind: kind})
			}
		}
		var doc any
		msg := ""
		if json.Unmarshal([]byte(line), &doc) == nil {
			if m, ok := doc.(map[string]any); ok {
				msg, _ = m["msg"].(string)
			}
			walkStrings(doc, "", func(path, v string) {
				for _, kind := range s.match(v) {
					report(msg, path, kind)
				}
				if decoded, ok := decodeBase64(v); ok {
					for _, kind := range s.match(decoded) {
						report(msg, path+" (base64)", kind)
					}
				}
			})
		}
		for _, kind := range s.match(line) {
			report(msg, "(raw)", kind)
		}
	}
	return out, lines
}

// match returns the kinds of secret that text holds a part of.
func (s *leakScanner) match(text string) []string {
	lower := strings.ToLower(text)
	var kinds []string
	seen := map[string]bool{}
	hit := func(kind string) {
		if !seen[kind] {
			seen[kind] = true
			kinds = append(kinds, kind)
		}
	}
	for i := 0; i+leakWindow <= len(lower); i++ {
		if kind, ok := s.windows[lower[i:i+leakWindow]]; ok {
			hit(kind)
		}
	}
	for v, kind := range s.short {
		if strings.Contains(lower, v) {
			hit(kind)
		}
	}
	if strings.Contains(lower, privateKeyMarker) {
		hit("a private key's PEM marker")
	}
	sort.Strings(kinds)
	return kinds
}

// walkStrings calls f with every string of a decoded JSON document, object
// keys included, and its path.
func walkStrings(v any, path string, f func(path, s string)) {
	switch x := v.(type) {
	case string:
		f(path, x)
	case map[string]any:
		for k, e := range x {
			p := strings.TrimPrefix(path+"."+k, ".")
			f(p+" (key)", k)
			walkStrings(e, p, f)
		}
	case []any:
		for i, e := range x {
			walkStrings(e, fmt.Sprintf("%s[%d]", path, i), f)
		}
	}
}

// decodeBase64 decodes s when it is base64 in any of the usual alphabets
// and long enough to hide a secret window.
func decodeBase64(s string) (string, bool) {
	if len(s) < 16 {
		return "", false
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return string(b), true
		}
	}
	return "", false
}

// check fails t for every leak in logs, naming the log by name, and
// returns the number of lines it read.
func (s *leakScanner) check(t *testing.T, name, logs string) int {
	t.Helper()
	leaks, lines := s.scan(logs)
	for _, l := range leaks {
		t.Errorf("%s log: %v", name, l)
	}
	return lines
}

// TestLeakScanner checks the scanner itself: a scanner that finds nothing
// would make every log test pass.
func TestLeakScanner(t *testing.T) {
	const (
		token = "0f1e2d3c4b5a69788796a5b4c3d2e1f0ABCDEFabcdef"
		short = "Zq8Lm2Xw"
	)
	quoted := `a"b"c"d"e"f"g"h"i"j"k"l"m"n"o"p`
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	keyLine := strings.Split(keyPEM, "\n")[1]

	s := &leakScanner{}
	s.add("token", token)
	s.add("short token", short)
	s.add("quoted secret", quoted)
	s.addPEM("private key", keyPEM)

	jsonLine := func(attrs ...any) string {
		var b bytes.Buffer
		slog.New(slog.NewJSONHandler(&b, nil)).Info("event", attrs...)
		return strings.TrimSpace(b.String())
	}
	tests := []struct {
		name string
		line string
		want []string // kinds found
	}{
		{"whole token", jsonLine("token", token), []string{"token"}},
		{"12 characters of it", jsonLine("err", "bad token …"+token[10:22]+"…"), []string{"token"}},
		{"11 characters of it", jsonLine("err", "bad token …"+token[10:21]+"…"), nil},
		{"redacted suffix", jsonLine("token", push.Redact(token)), nil},
		{"upper case", jsonLine("token", strings.ToUpper(token)), []string{"token"}},
		{"in a message key", jsonLine(token[:20], 1), []string{"token"}},
		{"in a nested group", jsonLine(slog.Group("req", slog.String("body", `{"token":"`+token+`"}`))), []string{"token"}},
		{"as logged bytes", jsonLine("body", []byte(`{"token":"`+token+`"}`)), []string{"token"}},
		{"JSON-escaped", jsonLine("secret", quoted), []string{"quoted secret"}},
		{"short token whole", jsonLine("err", "token "+short+" refused"), []string{"short token"}},
		{"short token suffix", jsonLine("token", short[2:]), nil},
		{"private key line", jsonLine("cfg", keyLine), []string{"private key"}},
		{"private key marker", jsonLine("cfg", "-----BEGIN EC PRIVATE KEY-----"), []string{"a private key's PEM marker"}},
		{"plain text line", "panic: token " + token, []string{"token"}},
		{"clean line", jsonLine("status", 200, "route", "PutDevice", "token", "…"+push.Redact(token)), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leaks, lines := s.scan(tt.line)
			if lines != 1 {
				t.Fatalf("read %d lines, want 1", lines)
			}
			got := map[string]bool{}
			for _, l := range leaks {
				got[l.Kind] = true
			}
			var kinds []string
			for k := range got {
				kinds = append(kinds, k)
			}
			sort.Strings(kinds)
			if fmt.Sprint(kinds) != fmt.Sprint(tt.want) {
				t.Errorf("scan(%.120q) found %v, want %v", tt.line, kinds, tt.want)
			}
		})
	}
}

// scanApp is the app of the log test.
const scanApp = "leak-app"

// scanRandom returns n random characters of alphabet.
func scanRandom(t testing.TB, n int, alphabet string) string {
	t.Helper()
	b := make([]byte, n)
	for i := range b {
		k, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			t.Fatal(err)
		}
		b[i] = alphabet[k.Int64()]
	}
	return string(b)
}

const (
	scanHex   = "0123456789abcdef"
	scanAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
)

// scanVendor is one vendor of the log test: a running emulator, the
// credentials that point the real provider at it, and the tokens of three
// devices: one live, one the emulator answers as dead, and one registered
// under credentials the emulator refuses.
type scanVendor struct {
	vendor   push.Vendor
	cert     string
	creds    map[string]any
	secrets  []string // secret values of the credentials
	keys     []string // PEM private keys of the credentials
	token    string   // a live device token
	dead     string   // a token the emulator refuses as unregistered
	received func() int
	sender   func(cache *dynamo.CredentialCache, log *slog.Logger) dispatch.Sender
	// badCreds are credentials that the emulator refuses (an unknown app
	// or key, a wrong secret), so that the auth failure path logs too;
	// stray is the token of a device registered under them.
	badCreds   map[string]any
	badSecrets []string
	badKeys    []string
	stray      string
}

// withBad sets v's bad credentials: its credentials with the members of
// override replaced. Each names a vendor app of its own (another key id,
// app id or client id) as well as a wrong secret: the providers' shared
// access-token cache is keyed by that id alone, so a wrong secret under
// the good app's id would borrow the good app's token instead of failing.
func (v *scanVendor) withBad(override map[string]any) {
	v.badCreds = map[string]any{}
	for k, x := range v.creds {
		v.badCreds[k] = x
	}
	for k, x := range override {
		v.badCreds[k] = x
	}
}

// startScanVendors starts an emulator of every vendor, with faults for the
// dead tokens, and returns the vendors in push.Vendors order.
func startScanVendors(t *testing.T) []*scanVendor {
	t.Helper()
	secret := func() string { return scanRandom(t, 32, scanHex) }
	digits := func(n int) string { return "1" + scanRandom(t, n-1, "0123456789") }
	var out []*scanVendor

	// APNs: token auth with a fresh P-256 key, over TLS to the emulator.
	{
		emu, err := apnsemu.New(apnsemu.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(emu.Close)
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
		team, keyID, bundle := scanRandom(t, 10, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"), scanRandom(t, 10, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"), "com.example.leak"
		emu.AddKey(team, keyID, &key.PublicKey)
		emu.SetTopic(bundle)
		v := &scanVendor{
			vendor: push.APNs, cert: "ios",
			creds: map[string]any{"vendor": "apns", "bundleId": bundle, "teamId": team, "keyId": keyID, "privateKey": keyPEM,
				"endpoint": emu.URL, "endpointCA": string(emu.CertificatePEM())},
			keys:     []string{keyPEM},
			token:    scanRandom(t, 160, scanHex),
			dead:     scanRandom(t, 64, scanHex),
			received: func() int { return len(emu.Received()) },
			sender: func(c *dynamo.CredentialCache, log *slog.Logger) dispatch.Sender {
				return apns.New(c, time.Now, log)
			},
		}
		emu.FailToken(v.dead, apnsemu.Reply{Status: http.StatusGone, Reason: "Unregistered"})
		other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		otherDER, _ := x509.MarshalPKCS8PrivateKey(other)
		otherPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: otherDER}))
		v.withBad(map[string]any{"privateKey": otherPEM, "keyId": scanRandom(t, 10, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")})
		v.badKeys, v.stray = []string{otherPEM}, scanRandom(t, 64, scanHex)
		out = append(out, v)
	}
	// FCM: a fresh service account whose token_uri is the emulator's.
	{
		emu := fcmemu.New(fcmemu.Options{})
		t.Cleanup(emu.Close)
		sa, err := fcmemu.NewServiceAccount("leak-project", emu.TokenURI())
		if err != nil {
			t.Fatal(err)
		}
		if err := emu.AddServiceAccountJSON(sa.JSON()); err != nil {
			t.Fatal(err)
		}
		v := &scanVendor{
			vendor: push.FCM, cert: "fcm",
			creds: map[string]any{"vendor": "fcm", "serviceAccount": json.RawMessage(sa.JSON()), "endpoint": emu.Endpoint(), "channelId": "im"},
			keys:  []string{sa.PrivateKey},
			token: scanRandom(t, 40, scanAlnum) + ":APA91b" + scanRandom(t, 134, scanAlnum+"_-"),
			dead:  scanRandom(t, 40, scanAlnum) + ":APA91b" + scanRandom(t, 134, scanAlnum+"_-"),
			received: func() int {
				return len(emu.Received())
			},
			sender: func(_ *dynamo.CredentialCache, log *slog.Logger) dispatch.Sender { return fcm.New(time.Now, log) },
		}
		emu.SetFaults(fcmemu.Faults{Tokens: map[string]fcmemu.Fault{v.dead: {Code: fcmemu.Unregistered}}})
		unknown, err := fcmemu.NewServiceAccount("leak-project", emu.TokenURI())
		if err != nil {
			t.Fatal(err)
		}
		v.withBad(map[string]any{"serviceAccount": json.RawMessage(unknown.JSON())})
		v.badKeys, v.stray = []string{unknown.PrivateKey}, scanRandom(t, 40, scanAlnum)+":APA91b"+scanRandom(t, 100, scanAlnum)
		out = append(out, v)
	}
	// Huawei: OAuth client credentials, then the push API.
	{
		emu, err := huaweiemu.New(huaweiemu.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(emu.Close)
		appID, appSecret := digits(9), secret()
		emu.AddApp(appID, appSecret)
		v := &scanVendor{
			vendor: push.Huawei, cert: "hw",
			creds:    map[string]any{"vendor": "huawei", "appId": appID, "appSecret": appSecret, "endpoint": emu.URL, "authEndpoint": emu.URL},
			secrets:  []string{appSecret},
			token:    scanRandom(t, 130, scanAlnum),
			dead:     scanRandom(t, 130, scanAlnum),
			received: func() int { return len(emu.Received()) },
			sender: func(c *dynamo.CredentialCache, log *slog.Logger) dispatch.Sender {
				return huawei.New(c, time.Now, log)
			},
		}
		emu.FailToken(v.dead)
		// One transient failure, so the requeue path logs too.
		emu.FailNext(1, huaweiemu.Reply{Status: http.StatusServiceUnavailable})
		wrong := secret()
		v.withBad(map[string]any{"appSecret": wrong, "appId": digits(9)})
		v.badSecrets, v.stray = []string{wrong}, v.dead[:len(v.dead)/2]+scanRandom(t, len(v.dead)-len(v.dead)/2, scanHex)
		out = append(out, v)
	}
	// Honor: OAuth client credentials, then the push API.
	{
		emu, err := honoremu.New(honoremu.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(emu.Close)
		appID, clientID, clientSecret := digits(9), digits(9), secret()
		emu.AddApp(appID, clientID, clientSecret)
		v := &scanVendor{
			vendor: push.Honor, cert: "honor",
			creds: map[string]any{"vendor": "honor", "appId": appID, "clientId": clientID, "clientSecret": clientSecret,
				"endpoint": emu.URL, "authEndpoint": emu.URL},
			secrets:  []string{clientSecret},
			token:    scanRandom(t, 120, scanAlnum),
			dead:     scanRandom(t, 120, scanAlnum),
			received: func() int { return len(emu.Received()) },
			sender: func(c *dynamo.CredentialCache, log *slog.Logger) dispatch.Sender {
				return honor.New(c, time.Now, log)
			},
		}
		emu.FailToken(v.dead, honoremu.Expired)
		wrong := secret()
		v.withBad(map[string]any{"clientSecret": wrong, "clientId": digits(9)})
		v.badSecrets, v.stray = []string{wrong}, v.dead[:len(v.dead)/2]+scanRandom(t, len(v.dead)-len(v.dead)/2, scanHex)
		out = append(out, v)
	}
	// Xiaomi: the AppSecret travels in every request's Authorization header.
	{
		emu := xiaomiemu.New(xiaomiemu.Options{})
		t.Cleanup(emu.Close)
		appSecret, pkg, channel := scanRandom(t, 22, scanAlnum)+"==", "com.example.leak", "113355"
		emu.AddApp(xiaomiemu.App{Secret: appSecret, Packages: []string{pkg}, Channels: []string{channel}})
		v := &scanVendor{
			vendor: push.Xiaomi, cert: "mi",
			creds:    map[string]any{"vendor": "xiaomi", "appSecret": appSecret, "packageName": pkg, "channelId": channel, "endpoint": emu.URL},
			secrets:  []string{appSecret},
			token:    scanRandom(t, 88, scanAlnum+"/+"),
			dead:     scanRandom(t, 88, scanAlnum+"/+"),
			received: func() int { return len(emu.Received()) },
			sender:   func(_ *dynamo.CredentialCache, log *slog.Logger) dispatch.Sender { return xiaomi.New(time.Now, log) },
		}
		emu.SetFaults(xiaomiemu.Faults{Tokens: map[string]xiaomiemu.Fault{v.dead: {Invalid: true}}})
		wrong := secret()
		v.withBad(map[string]any{"appSecret": wrong})
		v.badSecrets, v.stray = []string{wrong}, v.dead[:len(v.dead)/2]+scanRandom(t, len(v.dead)-len(v.dead)/2, scanHex)
		out = append(out, v)
	}
	// OPPO: the master secret signs the auth request.
	{
		emu, err := oppoemu.New(oppoemu.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(emu.Close)
		appKey, master := scanRandom(t, 24, scanHex), secret()
		emu.AddApp(appKey, master)
		v := &scanVendor{
			vendor: push.OPPO, cert: "oppo",
			creds:    map[string]any{"vendor": "oppo", "appKey": appKey, "masterSecret": master, "channelId": "im", "endpoint": emu.URL},
			secrets:  []string{master},
			token:    "CN_" + scanRandom(t, 61, scanHex),
			dead:     "CN_" + scanRandom(t, 61, scanHex),
			received: func() int { return len(emu.Received()) },
			sender: func(c *dynamo.CredentialCache, log *slog.Logger) dispatch.Sender {
				return oppo.New(oppo.Options{Cache: c, Log: log})
			},
		}
		emu.FailToken(v.dead, oppoemu.CodeInvalidRegID)
		wrong := secret()
		v.withBad(map[string]any{"masterSecret": wrong, "appKey": scanRandom(t, 24, scanHex)})
		v.badSecrets, v.stray = []string{wrong}, v.dead[:len(v.dead)/2]+scanRandom(t, len(v.dead)-len(v.dead)/2, scanHex)
		out = append(out, v)
	}
	// vivo: the app secret signs the auth request.
	{
		emu, err := vivoemu.New(vivoemu.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(emu.Close)
		appID, appKey, appSecret := digits(6), secret(), scanRandom(t, 8, scanHex)+"-"+scanRandom(t, 4, scanHex)+"-"+scanRandom(t, 4, scanHex)+"-"+scanRandom(t, 12, scanHex)
		id, _ := strconv.ParseInt(appID, 10, 64)
		emu.AddApp(id, appKey, appSecret)
		v := &scanVendor{
			vendor: push.Vivo, cert: "vivo",
			creds:    map[string]any{"vendor": "vivo", "appId": appID, "appKey": appKey, "appSecret": appSecret, "endpoint": emu.URL},
			secrets:  []string{appSecret},
			token:    scanRandom(t, 60, scanAlnum),
			dead:     scanRandom(t, 60, scanAlnum),
			received: func() int { return len(emu.Received()) },
			sender: func(c *dynamo.CredentialCache, log *slog.Logger) dispatch.Sender {
				return vivo.New(vivo.Options{Cache: c, Log: log})
			},
		}
		emu.FailToken(v.dead, vivoemu.StatusUninstalled)
		wrong := secret()
		v.withBad(map[string]any{"appSecret": wrong, "appId": digits(6)})
		v.badSecrets, v.stray = []string{wrong}, v.dead[:len(v.dead)/2]+scanRandom(t, len(v.dead)-len(v.dead)/2, scanHex)
		out = append(out, v)
	}
	// Meizu: the app secret signs every request.
	{
		emu := meizuemu.New(meizuemu.Options{})
		t.Cleanup(emu.Close)
		appID, appSecret := digits(6), secret()
		emu.AddApp(meizuemu.App{ID: appID, Secret: appSecret})
		v := &scanVendor{
			vendor: push.Meizu, cert: "mz",
			creds:    map[string]any{"vendor": "meizu", "appId": appID, "appSecret": appSecret, "endpoint": emu.URL},
			secrets:  []string{appSecret},
			token:    scanRandom(t, 52, scanAlnum),
			dead:     scanRandom(t, 52, scanAlnum),
			received: func() int { return len(emu.Received()) },
			sender:   func(_ *dynamo.CredentialCache, log *slog.Logger) dispatch.Sender { return meizu.New(time.Now, log) },
		}
		emu.SetFaults(meizuemu.Faults{Tokens: map[string]meizuemu.Fault{v.dead: {Code: meizuemu.CodeUnsubscribed}}})
		wrong := secret()
		v.withBad(map[string]any{"appSecret": wrong})
		v.badSecrets, v.stray = []string{wrong}, v.dead[:len(v.dead)/2]+scanRandom(t, len(v.dead)-len(v.dead)/2, scanHex)
		out = append(out, v)
	}
	return out
}

// scanEnv is the whole pipeline on one emulator, with every constructor's
// logger (and every dispatch function's metrics output, which also lands in
// CloudWatch Logs) writing into its own buffer.
type scanEnv struct {
	endpoint  string
	stack     *cfn.Stack
	db        *dynamodb.Client
	sq        *sqs.Client
	api       *apiClient
	secret    string
	vendors   []*scanVendor
	dispatch  map[push.Vendor]SQSHandler
	scheduled map[string]ScheduledHandler // by logical id
	logs      map[string]*scanBuffer      // by function logical id; metrics under "<id> metrics"
	scanner   *leakScanner
}

func (e *scanEnv) logger(name string) *slog.Logger {
	b := &scanBuffer{}
	e.logs[name] = b
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newScanEnv(t *testing.T) *scanEnv {
	t.Helper()
	ctx := context.Background()
	srv := testenv.Moto(t)
	stack := testenv.Stack(t, srv.Endpoint)
	cfg := testenv.AWSConfig(srv.Endpoint)
	e := &scanEnv{
		endpoint:  srv.Endpoint,
		stack:     stack,
		db:        dynamodb.NewFromConfig(cfg),
		sq:        sqs.NewFromConfig(cfg),
		secret:    "api-" + scanRandom(t, 40, scanAlnum),
		vendors:   startScanVendors(t),
		dispatch:  map[push.Vendor]SQSHandler{},
		scheduled: map[string]ScheduledHandler{},
		logs:      map[string]*scanBuffer{},
		scanner:   &leakScanner{},
	}
	e.scanner.add("API secret", e.secret)
	prefix := stack.Parameters["SecretPrefix"]
	sm := secretsmanager.NewFromConfig(cfg)
	create := func(name, value, vendor string) {
		in := &secretsmanager.CreateSecretInput{Name: aws.String(prefix + "/" + scanApp + "/" + name), SecretString: aws.String(value)}
		if vendor != "" {
			in.Tags = []smtypes.Tag{{Key: aws.String("vendor"), Value: aws.String(vendor)}}
		}
		if _, err := sm.CreateSecret(ctx, in); err != nil {
			t.Fatalf("CreateSecret %s: %v", name, err)
		}
	}
	create("api", `{"apiSecrets": ["`+e.secret+`"]}`, "")
	for _, v := range e.vendors {
		body, err := json.Marshal(v.creds)
		if err != nil {
			t.Fatal(err)
		}
		create("vendors/"+v.cert, string(body), string(v.vendor))
		bad, err := json.Marshal(v.badCreds)
		if err != nil {
			t.Fatal(err)
		}
		create("vendors/"+v.cert+"-bad", string(bad), string(v.vendor))
		e.scanner.add("vendor secret of "+string(v.vendor), append(v.secrets, v.badSecrets...)...)
		for _, k := range append(v.keys, v.badKeys...) {
			e.scanner.addPEM("private key of "+string(v.vendor), k)
		}
		e.scanner.add("token of "+string(v.vendor), v.token, v.dead, v.stray)
	}

	e.api = newAPIClient(t, srv.Endpoint, stack, e.logger)
	for id, build := range ScheduledFunctions {
		env := stack.FunctionEnv(id)
		if env == nil {
			t.Fatalf("template.yaml has no %s", id)
		}
		h, err := build(ctx, testenv.Env(srv.Endpoint, env), e.logger(id))
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		e.scheduled[id] = h
	}
	for _, v := range e.vendors {
		id := DispatchFunctionID(v.vendor)
		env := stack.FunctionEnv(id)
		if env == nil {
			t.Fatalf("template.yaml has no %s", id)
		}
		env[EnvDispatchBaseDelayMS] = "0"
		getenv := testenv.Env(srv.Endpoint, env)
		cache, err := TokenCache(ctx, getenv)
		if err != nil {
			t.Fatal(err)
		}
		log := e.logger(id)
		metrics := &scanBuffer{}
		e.logs[id+" metrics"] = metrics
		h, err := DispatchTo(ctx, getenv, log, v.vendor, v.sender(cache, log), metrics)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		e.dispatch[v.vendor] = h
	}
	return e
}

// call sends req signed with the app's secret and fails unless it answers
// want.
func (e *scanEnv) call(t *testing.T, req isoRequest) string {
	t.Helper()
	status, body := e.api.send(t, scanApp, e.secret, req)
	if status != req.Want {
		t.Fatalf("%s %v: status %d, want %d (body %.300s)", req.Route, req.Params, status, req.Want, body)
	}
	return body
}

// drainToDispatch feeds every vendor queue to its dispatch function as
// Lambda would, until the queues are empty. Every received message is
// deleted after its invocation, failed or not: a failure's log lines are
// what this test is after, not its redelivery.
func (e *scanEnv) drainToDispatch(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(2 * time.Minute)
	for _, v := range e.vendors {
		url := e.stack.Queues[strings.ToUpper(string(v.vendor[:1]))+string(v.vendor[1:])+"Queue"].URL
		for {
			if time.Now().After(deadline) {
				t.Fatal("the vendor queues did not drain within two minutes")
			}
			out, err := e.sq.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
				QueueUrl: aws.String(url), MaxNumberOfMessages: 10, VisibilityTimeout: 120,
				MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
			})
			if err != nil {
				t.Fatalf("ReceiveMessage %s: %v", v.vendor, err)
			}
			if len(out.Messages) == 0 {
				break
			}
			ev := events.SQSEvent{}
			for _, m := range out.Messages {
				ev.Records = append(ev.Records, events.SQSMessage{
					MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle),
					Body: aws.ToString(m.Body), Attributes: m.Attributes, EventSource: "aws:sqs",
				})
			}
			if _, err := e.dispatch[v.vendor](ctx, ev); err != nil {
				t.Fatalf("dispatch %s: %v", v.vendor, err)
			}
			for _, m := range out.Messages {
				if _, err := e.sq.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
					t.Fatalf("DeleteMessage: %v", err)
				}
			}
		}
	}
}

// accessTokens returns the vendor access tokens the providers cached in
// RequestTable (items "k#…", attribute v): bearer credentials as secret as
// the keys they were minted with.
func (e *scanEnv) accessTokens(t *testing.T) []string {
	t.Helper()
	var out []string
	p := dynamodb.NewScanPaginator(e.db, &dynamodb.ScanInput{TableName: aws.String(e.stack.Tables["RequestTable"])})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("Scan RequestTable: %v", err)
		}
		for _, it := range page.Items {
			var item struct {
				PK string `dynamodbav:"pk"`
				V  string `dynamodbav:"v"`
			}
			if err := attributevalue.UnmarshalMap(it, &item); err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(item.PK, "k#") && item.V != "" {
				out = append(out, item.V)
			}
		}
	}
	return out
}

// TestNoSecretsInLogs drives a representative workload through every
// function, built by its constructor with its logger writing into a
// buffer: devices of all eight vendors with long tokens (one moved between
// users), presence, badges, settings, a message with explain and its
// duplicate, a dry run, a call invite and its cancel, dispatch of every
// queue through the real providers to the vendor emulators (with dead
// tokens and refused credentials, so those paths log too), every scheduled
// function (cleanup), and failures: a bad signature, a replayed nonce, an
// expired timestamp, an unknown app, an unknown_cert, a malformed token and
// an unknown member. Then it scans every captured line for any 12
// characters of a token, an API secret, a vendor secret, a vendor access
// token, private key material or message text.
func TestNoSecretsInLogs(t *testing.T) {
	e := newScanEnv(t)
	user := func(u string) map[string]string { return map[string]string{"user": u} }
	device := func(u, d string) map[string]string { return map[string]string{"user": u, "device": d} }
	conv := func(id string) map[string]string {
		return map[string]string{"user": "alice", "type": "group", "conversation": id}
	}
	ok := http.StatusOK

	// Devices: per vendor a live one, a dead one and one under credentials
	// the vendor refuses. The live APNs one also has a VoIP token, and its
	// alert token first belongs to mallory, so the registration moves it.
	voip := scanRandom(t, 64, scanHex)
	e.scanner.add("token of apns (VoIP)", voip)
	for _, v := range e.vendors {
		live := map[string]any{"vendor": string(v.vendor), "token": v.token, "certName": v.cert, "locale": "zh-CN", "appVersion": "5.2.0"}
		if v.vendor == push.APNs {
			e.call(t, isoRequest{Route: "PutDevice", Params: device("mallory", "m1"), Body: scanJSON(t, live), Want: ok})
			live["voipToken"] = voip
		}
		body := e.call(t, isoRequest{Route: "PutDevice", Params: device("alice", "phone-"+string(v.vendor)), Body: scanJSON(t, live), Want: ok})
		if v.vendor == push.APNs && !strings.Contains(body, `"movedFrom":{"userId":"mallory"`) {
			t.Errorf("the APNs registration did not move the token from mallory: %s", body)
		}
		dead := map[string]any{"vendor": string(v.vendor), "token": v.dead, "certName": v.cert}
		e.call(t, isoRequest{Route: "PutDevice", Params: device("alice", "old-"+string(v.vendor)), Body: scanJSON(t, dead), Want: ok})
		stray := map[string]any{"vendor": string(v.vendor), "token": v.stray, "certName": v.cert + "-bad"}
		e.call(t, isoRequest{Route: "PutDevice", Params: device("alice", "beta-"+string(v.vendor)), Body: scanJSON(t, stray), Want: ok})
	}
	e.call(t, isoRequest{Route: "ListDevices", Params: user("alice"), Want: ok})
	e.call(t, isoRequest{Route: "ListDevices", Params: user("mallory"), Want: ok})

	// Requests that fail, each with a distinctive token or secret in it.
	badHex := "zz" + scanRandom(t, 62, scanHex)
	unknownCertToken := scanRandom(t, 100, scanAlnum)
	memberToken := scanRandom(t, 100, scanAlnum)
	wrongSecret := "wrong-" + scanRandom(t, 30, scanAlnum)
	e.scanner.add("rejected token", badHex, unknownCertToken, memberToken)
	e.scanner.add("wrong API secret", wrongSecret)
	for _, f := range []struct {
		req  isoRequest
		code string
	}{
		{isoRequest{Route: "PutDevice", Params: device("alice", "bad"), Body: `{"vendor": "apns", "token": "` + badHex + `", "certName": "ios"}`}, "invalid_argument"},
		{isoRequest{Route: "PutDevice", Params: device("alice", "bad"), Body: `{"vendor": "huawei", "token": "` + unknownCertToken + `", "certName": "nope"}`}, "unknown_cert"},
		{isoRequest{Route: "PutDevice", Params: device("alice", "bad"), Body: `{"vendor": "huawei", "token": "` + unknownCertToken + `", "certName": "ios"}`}, "unknown_cert"},
		{isoRequest{Route: "PutDevice", Params: device("alice", "bad"), Body: `{"vendor": "huawei", "token": "` + memberToken + `", "certName": "hw", "tokenCopy": "` + memberToken + `"}`}, "invalid_argument"},
		{isoRequest{Route: "PatchSettings", Params: user("alice"), Body: `{"dnd": {"window": {"start": "22:00", "end": "07:00", "timezone": "Mars/` + memberToken[:20] + `"}}}`}, "invalid_argument"},
	} {
		status, body := e.api.send(t, scanApp, e.secret, f.req)
		var got struct{ Error struct{ Code string } }
		json.Unmarshal([]byte(body), &got)
		if status != http.StatusBadRequest || got.Error.Code != f.code {
			t.Errorf("%s %.80s: got %d %s, want 400 %s", f.req.Route, f.req.Body, status, body, f.code)
		}
	}
	list := isoRequest{Route: "ListDevices", Params: user("alice")}
	for name, send := range map[string]func() (int, string){
		"wrong secret": func() (int, string) { return e.api.send(t, scanApp, wrongSecret, list) },
		"unknown app":  func() (int, string) { return e.api.send(t, "no-such-app", e.secret, list) },
		"expired timestamp": func() (int, string) {
			return e.api.sendSigned(t, scanApp, e.secret, list, time.Now().Add(-time.Hour), e.api.newNonce())
		},
		"replayed nonce": func() (int, string) {
			nonce := e.api.newNonce()
			if status, body := e.api.sendSigned(t, scanApp, e.secret, list, time.Now(), nonce); status != ok {
				t.Fatalf("first use of a nonce: %d %s", status, body)
			}
			return e.api.sendSigned(t, scanApp, e.secret, list, time.Now(), nonce)
		},
	} {
		if status, body := send(); status != http.StatusUnauthorized {
			t.Errorf("%s: got %d %s, want 401", name, status, body)
		}
	}

	// Presence, badges and settings.
	e.call(t, isoRequest{Route: "PutPresence", Params: device("alice", "desk"), Body: `{"state": "online", "platform": "pc", "leaseSeconds": 600, "epoch": 1, "badge": 2}`, Want: ok})
	e.call(t, isoRequest{Route: "PresenceBatch", Body: `{"updates": [{"userId": "bob", "deviceId": "web", "state": "online", "platform": "web", "epoch": 1},
		{"userId": "bob", "deviceId": "web", "state": "offline", "epoch": 2}]}`, Want: ok})
	e.call(t, isoRequest{Route: "PutBadge", Params: user("alice"), Body: `{"count": 5}`, Want: ok})
	e.call(t, isoRequest{Route: "PatchSettings", Params: user("alice"), Body: `{"language": "zh", "remindType": "ALL"}`, Want: ok})
	e.call(t, isoRequest{Route: "GetSettings", Params: user("alice"), Want: ok})
	e.call(t, isoRequest{Route: "PatchConversationSettings", Params: conv("g1"), Body: `{"remindType": "ALL"}`, Want: ok})
	e.call(t, isoRequest{Route: "PatchConversationSettings", Params: conv("g2"), Body: `{"dnd": {"durationMs": 60000}}`, Want: ok})
	e.call(t, isoRequest{Route: "GetConversationSettings", Params: conv("g1"), Want: ok})
	e.call(t, isoRequest{Route: "BatchGetConversationSettings", Params: user("alice"),
		Body: `{"conversations": [{"type": "group", "id": "g1"}, {"type": "group", "id": "g2"}]}`, Want: ok})
	e.call(t, isoRequest{Route: "DeleteConversationSettings", Params: conv("g2"), Want: http.StatusNoContent})

	// A message with explain, its duplicate, a dry run, and a call.
	texts := map[string]string{
		"content":     "see you at " + scanRandom(t, 16, scanAlnum) + " for lunch",
		"translation": "吃饭吗 " + scanRandom(t, 16, scanAlnum),
		"title":       "Team " + scanRandom(t, 16, scanAlnum),
		"force":       "urgent " + scanRandom(t, 16, scanAlnum),
		"payload":     "payload-" + scanRandom(t, 16, scanAlnum),
		"placeholder": "hidden " + scanRandom(t, 16, scanAlnum),
		"call":        "incoming call " + scanRandom(t, 16, scanAlnum),
		"dry":         "dry run " + scanRandom(t, 16, scanAlnum),
	}
	for k, v := range texts {
		e.scanner.add("message text ("+k+")", v)
	}
	message := scanJSON(t, map[string]any{
		"messageId": "m-leak-1", "type": "message",
		"sender":       map[string]any{"userId": "carol", "nickname": "Carol"},
		"conversation": map[string]any{"type": "group", "id": "g1"},
		"recipients":   []string{"alice", "bob", "carol"},
		"mentions":     map[string]any{"userIds": []string{"alice"}},
		"push": map[string]any{"title": texts["title"], "content": texts["content"], "translations": map[string]string{"zh": texts["translation"]},
			"payload": map[string]string{"k": texts["payload"]}, "placeholder": texts["placeholder"]},
		"forcePush": map[string]any{"userIds": []string{"bob"}, "content": texts["force"]},
		"explain":   true,
	})
	body := e.call(t, isoRequest{Route: "PostMessage", Body: message, Want: http.StatusAccepted})
	if !strings.Contains(body, `"reason":"mentioned"`) {
		t.Errorf("the message was not pushed to alice as mentioned: %.500s", body)
	}
	e.call(t, isoRequest{Route: "PostMessage", Body: message, Want: ok})
	e.call(t, isoRequest{Route: "PostMessage", Body: scanJSON(t, map[string]any{
		"messageId": "m-leak-dry", "type": "message", "sender": map[string]any{"userId": "carol"},
		"conversation": map[string]any{"type": "peer"}, "recipients": []string{"alice"},
		"push": map[string]any{"content": texts["dry"]}, "dryRun": true, "explain": true,
	}), Want: ok})
	e.call(t, isoRequest{Route: "PostMessage", Body: scanJSON(t, map[string]any{
		"messageId": "m-leak-call-1", "type": "call_invite", "sender": map[string]any{"userId": "carol", "nickname": "Carol"},
		"conversation": map[string]any{"type": "peer"}, "recipients": []string{"alice"},
		"push": map[string]any{"content": texts["call"]}, "call": map[string]any{"callId": "c-leak", "media": "video", "timeoutSeconds": 60},
	}), Want: http.StatusAccepted})
	e.drainToDispatch(t)
	e.call(t, isoRequest{Route: "PostMessage", Body: scanJSON(t, map[string]any{
		"messageId": "m-leak-call-2", "type": "call_cancel", "sender": map[string]any{"userId": "carol"},
		"conversation": map[string]any{"type": "peer"}, "recipients": []string{"alice"},
		"call": map[string]any{"callId": "c-leak"},
	}), Want: http.StatusAccepted})
	e.drainToDispatch(t)

	for id, h := range e.scheduled {
		if _, err := h(context.Background(), events.EventBridgeEvent{}); err != nil {
			t.Errorf("%s: %v", id, err)
		}
	}

	// The scan must not pass for want of anything to scan: every vendor
	// was really sent to with the credentials, and every function logged.
	for _, v := range e.vendors {
		if v.received() == 0 {
			t.Errorf("the %s emulator accepted no push: dispatch never used the credentials", v.vendor)
		}
	}
	access := e.accessTokens(t)
	if len(access) == 0 {
		t.Error("no vendor access token was cached: the OAuth vendors were never authenticated against")
	}
	e.scanner.add("vendor access token", access...)

	names := make([]string, 0, len(e.logs))
	for name := range e.logs {
		names = append(names, name)
	}
	sort.Strings(names)
	total := 0
	for _, name := range names {
		n := e.scanner.check(t, name, e.logs[name].String())
		if n == 0 && !strings.HasSuffix(name, " metrics") {
			t.Errorf("%s wrote no log line: its logger was not exercised", name)
		}
		total += n
	}
	t.Logf("scanned %d lines from %d logs", total, len(names))
}

// TestNoCommittedPrivateKeys walks the repository and fails on any PEM
// private key that parses, whether written as is or inside a JSON string.
// Keys are generated at run time (the local stack's credentials, the tests'
// emulators); a committed one would be a real credential sooner or later.
func TestNoCommittedPrivateKeys(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, err := cfn.FindTemplate(wd)
	if err != nil {
		t.Fatal(err)
	}
	root = filepath.Dir(root)
	skip := map[string]bool{".git": true, ".build": true, ".aws-sam": true, "node_modules": true}
	files := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if skip[d.Name()] {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil || info.Size() > 8<<20 {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		if !bytes.Contains(data, []byte("PRIVATE KEY-----")) {
			return nil
		}
		// pem.Decode wants each marker on a line of its own; inside a JSON
		// or Go string the lines are joined by the two characters \n and
		// the markers sit next to quotes.
		unquoted := bytes.ReplaceAll(data, []byte(`\n`), []byte("\n"))
		unquoted = bytes.ReplaceAll(unquoted, []byte("-----BEGIN"), []byte("\n-----BEGIN"))
		unquoted = bytes.ReplaceAll(unquoted, []byte("KEY-----"), []byte("KEY-----\n"))
		for _, text := range [][]byte{data, unquoted} {
			for rest := text; ; {
				var b *pem.Block
				if b, rest = pem.Decode(rest); b == nil {
					break
				}
				if strings.Contains(b.Type, "PRIVATE KEY") && parsesAsKey(b.Bytes) {
					rel, _ := filepath.Rel(root, path)
					t.Errorf("%s holds a %s that parses: generate keys at run time instead", rel, b.Type)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("read only %d files under %s: the walk did not cover the repository", files, root)
	}
}

func parsesAsKey(der []byte) bool {
	if _, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		return true
	}
	if _, err := x509.ParseECPrivateKey(der); err == nil {
		return true
	}
	_, err := x509.ParsePKCS1PrivateKey(der)
	return err == nil
}

// scanJSON encodes v, failing the test if it cannot.
func scanJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
