// Command dispatch-meizu drains the Meizu queue and delivers through Meizu
// (Flyme) Push. It only wires; behaviour lives in shared/dispatch and
// shared/provider/meizu, the wiring in shared/app. Meizu signs every
// request with the app secret and has no access token, so unlike the OAuth
// vendors it needs no shared token cache.
package main

import (
	"context"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/offline-push/offline-push/shared/app"
	"github.com/offline-push/offline-push/shared/provider/meizu"
	"github.com/offline-push/offline-push/shared/push"
)

func main() {
	log := lambdacontext.NewLogger()
	h, err := app.Dispatch(context.Background(), os.Getenv, log, push.Meizu, meizu.New(time.Now, log))
	if err != nil {
		log.Error("cold start failed", "err", err)
		os.Exit(1)
	}
	lambda.Start(h)
}
