// Package app is the wiring: one constructor per function, shared by the
// Lambda mains, the local stack and the end-to-end tests. It reads
// configuration, builds clients once per cold start and returns handlers.
package app

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Environment variables the functions read. The template sets them; the local
// stack and the tests pass them through getenv.
const (
	EnvStateTable   = "STATE_TABLE"
	EnvRequestTable = "REQUEST_TABLE"
	EnvSecretPrefix = "SECRET_PREFIX"
)

// maxAttempts bounds the SDK's retries of throttled and transient AWS calls.
// The default of 3 gives up too early under a throttling burst; 10 attempts
// with exponential backoff cover about 20 s, well inside a Lambda timeout.
const maxAttempts = 10

// awsConfig loads the SDK configuration. Endpoint, region and static keys
// are taken from getenv when present so that tests and the local stack can
// point one process at several emulators; otherwise the SDK's standard chain
// (AWS_ENDPOINT_URL_<SERVICE>, the Lambda role, …) applies.
func awsConfig(ctx context.Context, getenv func(string) string) (aws.Config, error) {
	opts := []func(*config.LoadOptions) error{
		config.WithRetryer(func() aws.Retryer {
			// The client-side retry quota would turn a throttling burst into
			// failed requests that a retry could have saved; the backoff
			// already paces us.
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = maxAttempts
				o.RateLimiter = ratelimit.None
			})
		}),
	}
	if ep := getenv("AWS_ENDPOINT_URL"); ep != "" {
		opts = append(opts, config.WithBaseEndpoint(ep))
	}
	if r := getenv("AWS_REGION"); r != "" {
		opts = append(opts, config.WithRegion(r))
	} else if getenv("AWS_DEFAULT_REGION") == "" {
		opts = append(opts, config.WithRegion("us-east-1"))
	}
	if id, secret := getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY"); id != "" && secret != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(id, secret, getenv("AWS_SESSION_TOKEN"))))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS config: %w", err)
	}
	return cfg, nil
}

// require returns the value of a mandatory environment variable.
func require(getenv func(string) string, name string) (string, error) {
	v := getenv(name)
	if v == "" {
		return "", fmt.Errorf("environment variable %s is not set", name)
	}
	return v, nil
}
