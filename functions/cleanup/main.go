// Command cleanup runs on a schedule and removes expired DND durations and
// stale push tokens. It only wires; behaviour lives in shared/cleanup, the
// wiring in shared/app.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/offline-push/offline-push/shared/app"
)

func main() {
	log := lambdacontext.NewLogger()
	h, err := app.Cleanup(context.Background(), os.Getenv, log)
	if err != nil {
		log.Error("cold start failed", "err", err)
		os.Exit(1)
	}
	lambda.Start(h)
}
