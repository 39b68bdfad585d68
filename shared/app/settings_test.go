package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	// Zones validate from the embedded database, as in the Lambda binary,
	// whatever the host has installed.
	_ "time/tzdata"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/google/go-cmp/cmp"

	"github.com/offline-push/offline-push/shared/dynamo"
	"github.com/offline-push/offline-push/shared/httpapi"
	"github.com/offline-push/offline-push/shared/secrets"
	"github.com/offline-push/offline-push/shared/testenv"
)

// settingsSecret is the API secret of the app the settings tests sign for.
const settingsSecret = "settings-test-secret"

// settingsAPI is the settings function's routes served in-process by a real
// router and verifier over moto, with a clock the test moves.
type settingsAPI struct {
	handler func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)
	mu      sync.Mutex
	now     time.Time
	nonce   int
}

func (a *settingsAPI) clock() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.now
}

func (a *settingsAPI) advance(d time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.now = a.now.Add(d)
}

// newSettingsAPI provisions the stack, stores the demo app's API secret and
// builds the router. With injectClock the router runs on a test clock;
// otherwise the handler is app.Settings itself, on the wall clock.
func newSettingsAPI(t *testing.T, injectClock bool) *settingsAPI {
	t.Helper()
	srv := testenv.Moto(t)
	stack := testenv.Stack(t, srv.Endpoint)
	env := stack.FunctionEnv("SettingsFunction")
	cfg := testenv.AWSConfig(srv.Endpoint)
	sm := secretsmanager.NewFromConfig(cfg)
	if _, err := sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{
		Name:         aws.String(env[EnvSecretPrefix] + "/demo/api"),
		SecretString: aws.String(`{"apiSecrets": ["` + settingsSecret + `"]}`),
	}); err != nil {
		t.Fatalf("CreateSecret: %v", err)
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	// Wall-clock based, so DynamoDB TTL of nonces never sees the past; at
	// millisecond precision like every instant of the API.
	a := &settingsAPI{now: time.Now().UTC().Truncate(time.Millisecond)}
	if !injectClock {
		h, err := Settings(context.Background(), testenv.Env(srv.Endpoint, env), log)
		if err != nil {
			t.Fatalf("Settings: %v", err)
		}
		a.handler = h
		a.now = time.Time{}
		return a
	}
	db := dynamodb.NewFromConfig(cfg)
	router := httpapi.New(httpapi.Config{
		Handlers: settingsHandlers(newSettingsService(db, env[EnvStateTable])),
		Verifier: httpapi.NewVerifier(secrets.New(sm, env[EnvSecretPrefix], a.clock), dynamo.NewNonceStore(db, env[EnvRequestTable])),
		Log:      log,
		Now:      a.clock,
	})
	a.handler = router.Lambda
	return a
}

// do sends a signed request and returns the status and the raw body.
func (a *settingsAPI) do(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	now := a.clock()
	if now.IsZero() {
		now = time.Now()
	}
	a.mu.Lock()
	a.nonce++
	nonce := fmt.Sprintf("settings-%d-%d", now.UnixNano(), a.nonce)
	a.mu.Unlock()
	ts := strconv.FormatInt(now.Unix(), 10)
	ev := events.APIGatewayV2HTTPRequest{
		RawPath: path,
		Body:    body,
		Headers: map[string]string{
			"content-type":     "application/json",
			"x-push-timestamp": ts,
			"x-push-nonce":     nonce,
			"x-push-signature": httpapi.Sign(settingsSecret, method, path, "", ts, nonce, []byte(body)),
		},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			Stage: "$default",
			HTTP:  events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path},
		},
	}
	resp, err := a.handler(context.Background(), ev)
	if err != nil {
		t.Fatalf("%s %s: handler error %v", method, path, err)
	}
	return resp.StatusCode, resp.Body
}

// settingsStep is one request and what it must answer: the exact JSON body,
// or for an error the field it names.
type settingsStep struct {
	name      string
	advance   time.Duration // moves the clock before the request
	method    string
	path      string
	body      string
	status    int
	want      string // exact JSON body when not empty
	wantField string // error field, for 4xx
}

func (a *settingsAPI) run(t *testing.T, steps []settingsStep) {
	t.Helper()
	for _, st := range steps {
		a.advance(st.advance)
		status, body := a.do(t, st.method, st.path, st.body)
		if status != st.status {
			t.Errorf("%s: %s %s = %d %s, want %d", st.name, st.method, st.path, status, body, st.status)
			continue
		}
		if st.want != "" {
			var got, want any
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Errorf("%s: answer is not JSON: %q", st.name, body)
				continue
			}
			if err := json.Unmarshal([]byte(st.want), &want); err != nil {
				t.Fatalf("%s: bad want: %v", st.name, err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s: body mismatch (-want +got):\n%s", st.name, diff)
			}
		}
		if status >= 400 {
			var e httpapi.ErrorBody
			if err := json.Unmarshal([]byte(body), &e); err != nil {
				t.Errorf("%s: error body %q: %v", st.name, body, err)
			} else if e.Error.Field != st.wantField {
				t.Errorf("%s: error field = %q (%s), want %q", st.name, e.Error.Field, e.Error.Message, st.wantField)
			}
		}
	}
}

const (
	settingsPath    = "/v1/apps/demo/users/bob/settings"
	settingsConv    = "/v1/apps/demo/users/bob/conversations/group/g1/settings"
	settingsBatch   = "/v1/apps/demo/users/bob/conversations/batch-get"
	settingsDefault = `{"remindType": "ALL", "dnd": {"window": null, "until": null}, "language": null,
		"showPreview": true, "multiDevicePolicy": "any_offline", "mobilePushWhenDesktopOnline": true}`
)

func TestSettingsRoutes(t *testing.T) {
	a := newSettingsAPI(t, true)
	t0 := a.clock()
	at := func(d time.Duration) string { return t0.Add(d).Format("2006-01-02T15:04:05.000Z") }
	full := `{"remindType": "AT", "dnd": {"window": {"start": "22:00", "end": "07:30", "timezone": "Asia/Shanghai"}, "until": "` + at(time.Hour) + `"},
		"language": "zh-CN", "showPreview": false, "multiDevicePolicy": "all_offline", "mobilePushWhenDesktopOnline": false}`

	t.Run("AppLevel", func(t *testing.T) {
		steps := []settingsStep{
			{name: "defaults", method: "GET", path: settingsPath, status: 200, want: settingsDefault},
			{name: "set everything", method: "PATCH", path: settingsPath, status: 200, want: full,
				body: `{"remindType": "AT", "dnd": {"window": {"start": "22:00", "end": "07:30", "timezone": "Asia/Shanghai"}, "durationMs": 3600000},
					"language": "zh-CN", "showPreview": false, "multiDevicePolicy": "all_offline", "mobilePushWhenDesktopOnline": false}`},
			{name: "read back", method: "GET", path: settingsPath, status: 200, want: full},
		}
		// Each invalid member alone, and one among valid ones: all answer
		// 400 naming the member and change nothing.
		for _, bad := range []struct{ name, body, field string }{
			{"remindType DEFAULT", `{"remindType": "DEFAULT"}`, "remindType"},
			{"remindType wrong type", `{"remindType": true}`, "remindType"},
			{"window 24:00", `{"dnd": {"window": {"start": "24:00", "end": "07:00"}}}`, "dnd.window.start"},
			{"window minute 60", `{"dnd": {"window": {"start": "22:00", "end": "12:60"}}}`, "dnd.window.end"},
			{"window without end", `{"dnd": {"window": {"start": "22:00"}}}`, "dnd.window.end"},
			{"zone Mars/Olympus", `{"dnd": {"window": {"start": "22:00", "end": "07:00", "timezone": "Mars/Olympus"}}}`, "dnd.window.timezone"},
			{"durationMs -1", `{"dnd": {"durationMs": -1}}`, "dnd.durationMs"},
			{"durationMs 604800001", `{"dnd": {"durationMs": 604800001}}`, "dnd.durationMs"},
			{"durationMs fraction", `{"dnd": {"durationMs": 0.5}}`, "dnd.durationMs"},
			{"dnd.until patched", `{"dnd": {"until": "` + at(2*time.Hour) + `"}}`, "dnd.until"},
			{"dnd.until null", `{"dnd": {"until": null}}`, "dnd.until"},
			{"dnd unknown member", `{"dnd": {"foo": 1}}`, "dnd.foo"},
			{"unknown member", `{"remind": "ALL"}`, "remind"},
			{"language", `{"language": "en_US"}`, "language"},
			{"showPreview", `{"showPreview": "no"}`, "showPreview"},
			{"multiDevicePolicy", `{"multiDevicePolicy": "never"}`, "multiDevicePolicy"},
			{"mobilePushWhenDesktopOnline", `{"mobilePushWhenDesktopOnline": 1}`, "mobilePushWhenDesktopOnline"},
			{"malformed", `{"remindType": "AT"`, ""},
			{"not an object", `["remindType"]`, ""},
			{"one bad among good", `{"remindType": "NONE", "showPreview": true, "dnd": {"durationMs": 0, "window": null}, "multiDevicePolicy": "x"}`, "multiDevicePolicy"},
		} {
			steps = append(steps, settingsStep{name: bad.name, method: "PATCH", path: settingsPath, body: bad.body, status: 400, wantField: bad.field})
		}
		steps = append(steps,
			settingsStep{name: "nothing changed", method: "GET", path: settingsPath, status: 200, want: full},
			settingsStep{name: "empty patch", method: "PATCH", path: settingsPath, body: `{}`, status: 200, want: full},
			settingsStep{name: "window removed, duration replaced", method: "PATCH", path: settingsPath,
				body: `{"dnd": {"window": null, "durationMs": 60000}, "remindType": null}`, status: 200,
				want: `{"remindType": "ALL", "dnd": {"window": null, "until": "` + at(time.Minute) + `"}, "language": "zh-CN",
					"showPreview": false, "multiDevicePolicy": "all_offline", "mobilePushWhenDesktopOnline": false}`},
			settingsStep{name: "the duration expires", advance: time.Minute, method: "GET", path: settingsPath, status: 200,
				want: `{"remindType": "ALL", "dnd": {"window": null, "until": null}, "language": "zh-CN",
					"showPreview": false, "multiDevicePolicy": "all_offline", "mobilePushWhenDesktopOnline": false}`},
			settingsStep{name: "window with default zone, all day", method: "PATCH", path: settingsPath,
				body: `{"dnd": {"window": {"start": "08:00", "end": "08:00"}}}`, status: 200,
				want: `{"remindType": "ALL", "dnd": {"window": {"start": "08:00", "end": "08:00", "timezone": "UTC"}, "until": null}, "language": "zh-CN",
					"showPreview": false, "multiDevicePolicy": "all_offline", "mobilePushWhenDesktopOnline": false}`},
			settingsStep{name: "everything back to defaults", method: "PATCH", path: settingsPath,
				body:   `{"dnd": null, "language": null, "showPreview": null, "multiDevicePolicy": null, "mobilePushWhenDesktopOnline": null}`,
				status: 200, want: settingsDefault},
			settingsStep{name: "wrong method", method: "PUT", path: settingsPath, body: `{}`, status: 405},
			settingsStep{name: "bad user id", method: "GET", path: "/v1/apps/demo/users/b%20b/settings", status: 400, wantField: "user"},
		)
		a.run(t, steps)
	})

	t.Run("ConversationLevel", func(t *testing.T) {
		a.run(t, []settingsStep{
			{name: "inherits", method: "GET", path: settingsConv, status: 200, want: `{"remindType": null, "dndUntil": null, "inherits": true}`},
			{name: "remind type", method: "PATCH", path: settingsConv, body: `{"remindType": "NONE"}`, status: 200,
				want: `{"remindType": "NONE", "dndUntil": null, "inherits": false}`},
			{name: "duration", method: "PATCH", path: settingsConv, body: `{"dnd": {"durationMs": 7200000}}`, status: 200,
				want: `{"remindType": "NONE", "dndUntil": "` + at(time.Minute+2*time.Hour) + `", "inherits": false}`},
			{name: "remindType DEFAULT", method: "PATCH", path: settingsConv, body: `{"remindType": "DEFAULT"}`, status: 400, wantField: "remindType"},
			{name: "a window", method: "PATCH", path: settingsConv, body: `{"dnd": {"window": {"start": "22:00", "end": "07:00"}}}`, status: 400, wantField: "dnd.window"},
			{name: "an app-level member", method: "PATCH", path: settingsConv, body: `{"language": "en"}`, status: 400, wantField: "language"},
			{name: "durationMs -1", method: "PATCH", path: settingsConv, body: `{"dnd": {"durationMs": -1}}`, status: 400, wantField: "dnd.durationMs"},
			{name: "durationMs 604800001", method: "PATCH", path: settingsConv, body: `{"dnd": {"durationMs": 604800001}}`, status: 400, wantField: "dnd.durationMs"},
			{name: "dnd.until", method: "PATCH", path: settingsConv, body: `{"dnd": {"until": null}}`, status: 400, wantField: "dnd.until"},
			{name: "one bad among good", method: "PATCH", path: settingsConv, body: `{"remindType": "ALL", "dnd": {"durationMs": -1}}`, status: 400, wantField: "dnd.durationMs"},
			{name: "unchanged", method: "GET", path: settingsConv, status: 200,
				want: `{"remindType": "NONE", "dndUntil": "` + at(time.Minute+2*time.Hour) + `", "inherits": false}`},
			{name: "delete", method: "DELETE", path: settingsConv, status: 204},
			{name: "inherits again", method: "GET", path: settingsConv, status: 200, want: `{"remindType": null, "dndUntil": null, "inherits": true}`},
			{name: "delete again", method: "DELETE", path: settingsConv, status: 204},
			{name: "another type matches no route", method: "GET", path: "/v1/apps/demo/users/bob/conversations/channel/g1/settings", status: 404},
			{name: "bad conversation id", method: "GET", path: "/v1/apps/demo/users/bob/conversations/group/g%2F1/settings", status: 400, wantField: "conversation"},
		})
	})

	t.Run("BatchGet", func(t *testing.T) {
		conv := func(typ, id string) string {
			return "/v1/apps/demo/users/bob/conversations/" + typ + "/" + id + "/settings"
		}
		many := `{"conversations": [` + strings.TrimSuffix(strings.Repeat(`{"type": "group", "id": "g"},`, 21), ",") + `]}`
		a.run(t, []settingsStep{
			{name: "explicit", method: "PATCH", path: conv("group", "explicit"), body: `{"remindType": "AT"}`, status: 200},
			{name: "expiring", method: "PATCH", path: conv("peer", "expiring"), body: `{"dnd": {"durationMs": 1000}}`, status: 200},
			{name: "expiring with a remind type", method: "PATCH", path: conv("chatroom", "both"), body: `{"remindType": "NONE", "dnd": {"durationMs": 1000}}`, status: 200},
			{name: "running", method: "PATCH", path: conv("group", "running"), body: `{"dnd": {"durationMs": 3600000}}`, status: 200},
			{name: "only those with their own setting in force", advance: time.Second, method: "POST", path: settingsBatch, status: 200,
				body: `{"conversations": [{"type": "group", "id": "explicit"}, {"type": "group", "id": "inherited"}, {"type": "peer", "id": "expiring"},
					{"type": "chatroom", "id": "both"}, {"type": "group", "id": "running"}]}`,
				want: `{"settings": [
					{"type": "group", "id": "explicit", "remindType": "AT", "dndUntil": null},
					{"type": "chatroom", "id": "both", "remindType": "NONE", "dndUntil": null},
					{"type": "group", "id": "running", "remindType": null, "dndUntil": "` + at(time.Minute+time.Hour) + `"}]}`},
			{name: "none set", method: "POST", path: settingsBatch, body: `{"conversations": [{"type": "group", "id": "inherited"}]}`, status: 200,
				want: `{"settings": []}`},
			{name: "21 conversations", method: "POST", path: settingsBatch, body: many, status: 400, wantField: "conversations"},
			{name: "none", method: "POST", path: settingsBatch, body: `{"conversations": []}`, status: 400, wantField: "conversations"},
			{name: "bad type", method: "POST", path: settingsBatch, body: `{"conversations": [{"type": "group", "id": "a"}, {"type": "channel", "id": "b"}]}`, status: 400, wantField: "conversations[1].type"},
			{name: "bad id", method: "POST", path: settingsBatch, body: `{"conversations": [{"type": "group", "id": "a b"}]}`, status: 400, wantField: "conversations[0].id"},
			{name: "unknown member", method: "POST", path: settingsBatch, body: `{"conversations": [{"type": "group", "id": "a", "x": 1}]}`, status: 400, wantField: "conversations[0].x"},
		})
	})
}

// TestSettingsFunction checks the wiring of app.Settings itself: the
// template's environment, the secret and nonce stores, the wall clock.
func TestSettingsFunction(t *testing.T) {
	a := newSettingsAPI(t, false)
	a.run(t, []settingsStep{
		{name: "patch", method: "PATCH", path: settingsPath, body: `{"remindType": "NONE"}`, status: 200},
		{name: "get", method: "GET", path: settingsPath, status: 200,
			want: strings.Replace(settingsDefault, `"ALL"`, `"NONE"`, 1)},
	})
	ev := events.APIGatewayV2HTTPRequest{RawPath: settingsPath, RequestContext: events.APIGatewayV2HTTPRequestContext{
		HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "GET", Path: settingsPath}}}
	resp, err := a.handler(context.Background(), ev)
	if err != nil || resp.StatusCode != 401 {
		t.Errorf("unsigned GET = %d, %v; want 401", resp.StatusCode, err)
	}
}
