// Package events_test runs sample events under events/ through the handler
// of their function, built by its shared/app constructor against moto, and
// checks the status each folder's expect.json declares. The devices function
// serves devices/ and presence/; other functions' folders get a test here
// built the same way with their constructor.
package events_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/offline-push/offline-push/shared/app"
	"github.com/offline-push/offline-push/shared/httpapi"
	"github.com/offline-push/offline-push/shared/testenv"
)

// demoSecret is the API secret of the demo app the events sign for.
const demoSecret = "demo-events-secret"

func TestDevicesEvents(t *testing.T) {
	srv := testenv.Moto(t)
	stack := testenv.Stack(t, srv.Endpoint)
	env := stack.FunctionEnv("DevicesFunction")
	sm := secretsmanager.NewFromConfig(testenv.AWSConfig(srv.Endpoint))
	for _, s := range []struct{ name, value, vendor string }{
		{"api", `{"apiSecrets": ["` + demoSecret + `"]}`, ""},
		{"vendors/ios-prod", `{"vendor": "apns"}`, "apns"},
		{"vendors/fcm-main", `{"vendor": "fcm"}`, "fcm"},
	} {
		in := &secretsmanager.CreateSecretInput{
			Name:         aws.String(env[app.EnvSecretPrefix] + "/demo/" + s.name),
			SecretString: aws.String(s.value),
		}
		if s.vendor != "" {
			in.Tags = []smtypes.Tag{{Key: aws.String("vendor"), Value: aws.String(s.vendor)}}
		}
		if _, err := sm.CreateSecret(context.Background(), in); err != nil {
			t.Fatalf("CreateSecret %s: %v", s.name, err)
		}
	}
	h, err := app.Devices(context.Background(), testenv.Env(srv.Endpoint, env), slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("app.Devices: %v", err)
	}
	// Presence routes are served by the devices function too.
	for _, dir := range []string{"devices", "presence"} {
		t.Run(dir, func(t *testing.T) { runFolder(t, dir, h) })
	}
}

// runFolder runs every event file of dir in name order and checks its status.
// Every file must be listed in expect.json, and every listed file must exist.
func runFolder(t *testing.T, dir string, h func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "expect.json"))
	if err != nil {
		t.Fatalf("read expect.json: %v", err)
	}
	var expect map[string]int
	if err := json.Unmarshal(raw, &expect); err != nil {
		t.Fatalf("expect.json: %v", err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		if name := filepath.Base(f); name != "expect.json" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for name := range expect {
		if !slices.Contains(names, name) {
			t.Errorf("expect.json lists %s, which does not exist", name)
		}
	}
	for i, name := range names {
		t.Run(name, func(t *testing.T) {
			want, ok := expect[name]
			if !ok {
				t.Fatalf("%s declares no status in expect.json", name)
			}
			raw, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			var ev events.APIGatewayV2HTTPRequest
			if err := json.Unmarshal(raw, &ev); err != nil {
				t.Fatalf("not an API Gateway v2 event: %v", err)
			}
			resign(&ev, fmt.Sprintf("evt-%d-%s", i, strconv.FormatInt(time.Now().UnixNano(), 36)))
			resp, err := h(context.Background(), ev)
			if err != nil {
				t.Fatalf("handler error: %v", err)
			}
			if resp.StatusCode != want {
				t.Errorf("status = %d %s, want %d", resp.StatusCode, resp.Body, want)
			}
		})
	}
}

// resign replaces the placeholder signature headers of an event that carries
// them with a valid signature at the current time and a fresh nonce. Events
// without them stay unsigned (they test the 401 or a public route).
func resign(ev *events.APIGatewayV2HTTPRequest, nonce string) {
	signed := false
	for k := range ev.Headers {
		if strings.HasPrefix(strings.ToLower(k), "x-push-") {
			delete(ev.Headers, k)
			signed = true
		}
	}
	if !signed {
		return
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	ev.Headers["x-push-timestamp"] = ts
	ev.Headers["x-push-nonce"] = nonce
	ev.Headers["x-push-signature"] = httpapi.Sign(demoSecret, ev.RequestContext.HTTP.Method, ev.RawPath, ev.RawQueryString, ts, nonce, []byte(ev.Body))
}
