// Command ingest takes messages, call invites and call cancels (API.md §6)
// behind API Gateway, decides who gets a push and enqueues the pushes on
// the vendor queues. It only wires; behaviour lives in shared/ingest, the
// wiring in shared/app.
package main

import (
	"context"
	"os"
	// DND windows are judged in IANA time zones; the provided.al2023
	// runtime ships no zoneinfo, so the binary carries its own.
	_ "time/tzdata"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/offline-push/offline-push/shared/app"
)

func main() {
	log := lambdacontext.NewLogger()
	h, err := app.Ingest(context.Background(), os.Getenv, log)
	if err != nil {
		log.Error("cold start failed", "err", err)
		os.Exit(1)
	}
	lambda.Start(h)
}
