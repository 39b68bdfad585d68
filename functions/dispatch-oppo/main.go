// Command dispatch-oppo drains the OPPO queue and delivers through OPPO
// PUSH. It only wires: behaviour lives in shared/dispatch and
// shared/provider/oppo, the wiring in shared/app.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/offline-push/offline-push/shared/app"
	"github.com/offline-push/offline-push/shared/provider/oppo"
)

func main() {
	log := lambdacontext.NewLogger()
	ctx := context.Background()
	cache, err := app.TokenCache(ctx, os.Getenv)
	if err != nil {
		log.Error("cold start failed", "err", err)
		os.Exit(1)
	}
	sender := oppo.New(oppo.Options{Cache: cache, Log: log})
	h, err := app.Dispatch(ctx, os.Getenv, log, "oppo", sender)
	if err != nil {
		log.Error("cold start failed", "err", err)
		os.Exit(1)
	}
	lambda.Start(h)
}
