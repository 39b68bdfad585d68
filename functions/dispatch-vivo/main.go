// Command dispatch-vivo drains the vivo queue and delivers through vivo
// Push. It only wires: behaviour lives in shared/dispatch and
// shared/provider/vivo, the wiring in shared/app.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/offline-push/offline-push/shared/app"
	"github.com/offline-push/offline-push/shared/provider/vivo"
)

func main() {
	log := lambdacontext.NewLogger()
	ctx := context.Background()
	cache, err := app.TokenCache(ctx, os.Getenv)
	if err != nil {
		log.Error("cold start failed", "err", err)
		os.Exit(1)
	}
	sender := vivo.New(vivo.Options{Cache: cache, Log: log})
	h, err := app.Dispatch(ctx, os.Getenv, log, "vivo", sender)
	if err != nil {
		log.Error("cold start failed", "err", err)
		os.Exit(1)
	}
	lambda.Start(h)
}
