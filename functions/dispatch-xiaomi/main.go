// Command dispatch-xiaomi drains the Xiaomi queue and delivers through
// Xiaomi MiPush. It only wires; behaviour lives in shared/dispatch and
// shared/provider/xiaomi, the wiring in shared/app. Xiaomi authenticates
// every request with the app secret itself, so unlike the OAuth vendors it
// needs no shared access-token cache.
package main

import (
	"context"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/offline-push/offline-push/shared/app"
	"github.com/offline-push/offline-push/shared/provider/xiaomi"
	"github.com/offline-push/offline-push/shared/push"
)

func main() {
	log := lambdacontext.NewLogger()
	h, err := app.Dispatch(context.Background(), os.Getenv, log, push.Xiaomi, xiaomi.New(time.Now, log))
	if err != nil {
		log.Error("cold start failed", "err", err)
		os.Exit(1)
	}
	lambda.Start(h)
}
