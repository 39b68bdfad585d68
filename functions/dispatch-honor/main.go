// Command dispatch-honor drains the Honor queue and delivers through
// Honor Push. It only wires; behaviour lives in shared/dispatch and
// shared/provider/honor, the wiring in shared/app. The OAuth access token
// is shared by every container through the token cache in RequestTable,
// since vendors rate-limit minting.
package main

import (
	"context"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/offline-push/offline-push/shared/app"
	"github.com/offline-push/offline-push/shared/provider/honor"
	"github.com/offline-push/offline-push/shared/push"
)

func main() {
	ctx := context.Background()
	log := lambdacontext.NewLogger()
	cache, err := app.TokenCache(ctx, os.Getenv)
	if err != nil {
		log.Error("cold start failed", "err", err)
		os.Exit(1)
	}
	h, err := app.Dispatch(ctx, os.Getenv, log, push.Honor, honor.New(cache, time.Now, log))
	if err != nil {
		log.Error("cold start failed", "err", err)
		os.Exit(1)
	}
	lambda.Start(h)
}
