// Command bare is the baseline for start-up measurements: an aws-lambda-go
// function that does nothing before lambda.Start.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(context.Context, map[string]any) (string, error) { return "ok", nil })
}
