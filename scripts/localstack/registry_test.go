package main

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"

	"github.com/offline-push/offline-push/shared/app"
	"github.com/offline-push/offline-push/shared/cfn"
)

// register adds constructors to the app registries for one test.
func register(t *testing.T, http map[string]app.HTTPConstructor, scheduled map[string]app.ScheduledConstructor) {
	t.Helper()
	for id, c := range http {
		app.HTTPFunctions[id] = c
		t.Cleanup(func() { delete(app.HTTPFunctions, id) })
	}
	for id, c := range scheduled {
		app.ScheduledFunctions[id] = c
		t.Cleanup(func() { delete(app.ScheduledFunctions, id) })
	}
}

func testStack() *cfn.Stack {
	return &cfn.Stack{Name: "s", Region: "eu-west-1", AccountID: "123456789012", Functions: map[string]cfn.Function{
		"TestHTTPFunction": {LogicalID: "TestHTTPFunction", Env: map[string]string{"STATE_TABLE": "s-StateTable"},
			HTTPRoutes: []string{"GET /t"}, Timeout: time.Second, MemorySize: 256},
		"TestTickFunction": {LogicalID: "TestTickFunction", Env: map[string]string{"TOKEN_MAX_AGE_DAYS": "9"},
			Schedules: []string{"rate(1 second)"}, Timeout: time.Second},
	}}
}

// TestFunctionEnv checks what a constructor sees: the template environment
// and the AWS settings of the emulator, nothing of this process.
func TestFunctionEnv(t *testing.T) {
	t.Setenv("SOMETHING_ELSE", "leak")
	s := readSettings(func(k string) string {
		return map[string]string{"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_REGION": "eu-west-1"}[k]
	})
	st := testStack()
	var got map[string]string
	register(t, map[string]app.HTTPConstructor{
		"TestHTTPFunction": func(_ context.Context, getenv func(string) string, _ *slog.Logger) (app.HTTPHandler, error) {
			got = map[string]string{}
			for _, k := range []string{"STATE_TABLE", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID",
				"AWS_SECRET_ACCESS_KEY", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "SOMETHING_ELSE"} {
				got[k] = getenv(k)
			}
			return func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
				return events.APIGatewayV2HTTPResponse{}, nil
			}, nil
		},
	}, nil)
	a, err := newAPI(t.Context(), discardLog(), st, s.functionEnv(st))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"STATE_TABLE": "s-StateTable", "AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_REGION": "eu-west-1",
		"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
		"AWS_LAMBDA_FUNCTION_NAME": "s-TestHTTPFunction", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256", "SOMETHING_ELSE": "",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("getenv (-want +got):\n%s", diff)
	}
	if _, ok := a.handlers["TestHTTPFunction"]; !ok {
		t.Error("the registered function has no handler")
	}
}

func TestColdStartFailure(t *testing.T) {
	st := testStack()
	boom := errors.New("boom")
	register(t, map[string]app.HTTPConstructor{
		"TestHTTPFunction": func(context.Context, func(string) string, *slog.Logger) (app.HTTPHandler, error) { return nil, boom },
	}, map[string]app.ScheduledConstructor{
		"TestTickFunction": func(context.Context, func(string) string, *slog.Logger) (app.ScheduledHandler, error) {
			return nil, boom
		},
	})
	env := readSettings(func(string) string { return "" }).functionEnv(st)
	if _, err := newAPI(t.Context(), discardLog(), st, env); !errors.Is(err, boom) || !strings.Contains(err.Error(), "TestHTTPFunction") {
		t.Errorf("newAPI: got %v, want the constructor's error naming the function", err)
	}
	if _, err := newScheduler(t.Context(), discardLog(), st, env); !errors.Is(err, boom) || !strings.Contains(err.Error(), "TestTickFunction") {
		t.Errorf("newScheduler: got %v, want the constructor's error naming the function", err)
	}
}

// TestScheduler runs a registered scheduled function on a one-second rate
// and checks the EventBridge event it gets.
func TestScheduler(t *testing.T) {
	st := testStack()
	runs := make(chan events.EventBridgeEvent, 10)
	register(t, nil, map[string]app.ScheduledConstructor{
		"TestTickFunction": func(_ context.Context, getenv func(string) string, _ *slog.Logger) (app.ScheduledHandler, error) {
			if got := getenv("TOKEN_MAX_AGE_DAYS"); got != "9" {
				t.Errorf("TOKEN_MAX_AGE_DAYS = %q, want 9", got)
			}
			return func(ctx context.Context, ev events.EventBridgeEvent) (any, error) {
				if _, ok := ctx.Deadline(); !ok {
					t.Error("a scheduled run has no deadline")
				}
				runs <- ev
				return map[string]int{"removed": 0}, nil
			}, nil
		},
	})
	s, err := newScheduler(t.Context(), discardLog(), st, readSettings(func(string) string { return "" }).functionEnv(st))
	if err != nil {
		t.Fatal(err)
	}
	s.start()
	var ev events.EventBridgeEvent
	select {
	case ev = <-runs:
	case <-time.After(30 * time.Second):
		t.Fatal("no scheduled run within 30 s of a 1 s rate")
	}
	s.stop()
	if ev.DetailType != "Scheduled Event" || ev.Source != "aws.events" || ev.Region != "eu-west-1" || ev.ID == "" ||
		string(ev.Detail) != "{}" || len(ev.Resources) != 1 || ev.Time.IsZero() {
		t.Errorf("event = %+v", ev)
	}
}
