// Command devices serves device tokens, presence and health (API.md §3, §4)
// behind API Gateway. It only wires; behaviour lives in shared/devices and
// shared/presence, the wiring in shared/app.
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
	h, err := app.Devices(context.Background(), os.Getenv, log)
	if err != nil {
		log.Error("cold start failed", "err", err)
		os.Exit(1)
	}
	lambda.Start(h)
}
