// Command dispatch-apns drains the APNs queue and delivers through Apple's
// APNs over HTTP/2. It only wires; behaviour lives in shared/dispatch and
// shared/provider/apns, the wiring in shared/app. The provider JWT is
// shared by every container through the token cache in RequestTable, since
// Apple throttles a team whose containers each mint their own.
package main

import (
	"context"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/offline-push/offline-push/shared/app"
	"github.com/offline-push/offline-push/shared/provider/apns"
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
	h, err := app.Dispatch(ctx, os.Getenv, log, push.APNs, apns.New(cache, time.Now, log))
	if err != nil {
		log.Error("cold start failed", "err", err)
		os.Exit(1)
	}
	lambda.Start(h)
}
