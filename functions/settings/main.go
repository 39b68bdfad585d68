// Command settings serves push settings (API.md §5) behind API Gateway. It
// only wires; behaviour lives in shared/settings, the wiring in shared/app.
package main

import (
	"context"
	"os"
	// The provided.al2023 image may lack a zone database; DND windows name
	// IANA zones, which must validate the same everywhere.
	_ "time/tzdata"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/offline-push/offline-push/shared/app"
)

func main() {
	log := lambdacontext.NewLogger()
	h, err := app.Settings(context.Background(), os.Getenv, log)
	if err != nil {
		log.Error("cold start failed", "err", err)
		os.Exit(1)
	}
	lambda.Start(h)
}
