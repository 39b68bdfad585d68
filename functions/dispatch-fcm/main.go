// Command dispatch-fcm drains the FCM queue and delivers through Firebase
// Cloud Messaging with the Firebase Admin SDK. It only wires; behaviour
// lives in shared/dispatch and shared/provider/fcm, the wiring in
// shared/app. Each container exchanges its service-account key for a
// Google access token about once an hour and reuses it across warm
// invocations; FCM documents no penalty for many holders of tokens of one
// account (unlike APNs' token churn, VENDORS.md §1), so no shared token
// cache is wired here.
package main

import (
	"context"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/offline-push/offline-push/shared/app"
	"github.com/offline-push/offline-push/shared/provider/fcm"
	"github.com/offline-push/offline-push/shared/push"
)

func main() {
	log := lambdacontext.NewLogger()
	h, err := app.Dispatch(context.Background(), os.Getenv, log, push.FCM, fcm.New(time.Now, log))
	if err != nil {
		log.Error("cold start failed", "err", err)
		os.Exit(1)
	}
	lambda.Start(h)
}
