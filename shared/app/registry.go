package app

import (
	"context"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"
)

// HTTPHandler is the Lambda handler of an HTTP function.
type HTTPHandler = func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// HTTPConstructor builds an HTTP function's handler once per cold start.
type HTTPConstructor func(ctx context.Context, getenv func(string) string, log *slog.Logger) (HTTPHandler, error)

// ScheduledHandler is the Lambda handler of a function run by an EventBridge
// schedule (cleanup).
type ScheduledHandler = func(context.Context, events.EventBridgeEvent) (any, error)

// ScheduledConstructor builds a scheduled function's handler once per cold
// start.
type ScheduledConstructor func(ctx context.Context, getenv func(string) string, log *slog.Logger) (ScheduledHandler, error)

// HTTPFunctions and ScheduledFunctions map the template's logical ids
// (DevicesFunction, …) to the constructors that the Lambda mains call too.
// The local stack and the end-to-end tests look functions up here, so the
// same wiring serves all three. A function of the template without an
// entry is not served locally.
var (
	HTTPFunctions = map[string]HTTPConstructor{
		"DevicesFunction":  Devices,
		"SettingsFunction": Settings,
		"IngestFunction":   Ingest,
	}
	ScheduledFunctions = map[string]ScheduledConstructor{
		"CleanupFunction": Cleanup,
	}
)
