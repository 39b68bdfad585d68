// Package app is the wiring: one constructor per function, shared by the
// Lambda mains, the local stack and the end-to-end tests. It reads
// configuration, builds clients once per cold start and returns handlers.
package app

import (
	"context"
	"fmt"
	"strconv"
	"time"

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

// EnvRetryMaxBackoffMS caps the SDK's retry backoff, in milliseconds. Unset
// in production (the SDK's 20 s cap paces a throttled table); the tests and
// the local stack set it low, since an emulator needs no pacing.
const EnvRetryMaxBackoffMS = "PUSH_RETRY_MAX_BACKOFF_MS"

// awsConfig loads the SDK configuration. With an endpoint and static keys in
// getenv (tests, the local stack) it is built field by field, so nothing from
// the machine's ~/.aws or AWS_PROFILE leaks in; otherwise the SDK's standard
// chain applies (the Lambda role, AWS_ENDPOINT_URL_<SERVICE>, …).
func awsConfig(ctx context.Context, getenv func(string) string) (aws.Config, error) {
	retryer := func() aws.Retryer {
		// The client-side retry quota would turn a throttling burst into
		// failed requests that a retry could have saved; the backoff
		// already paces us.
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = maxAttempts
			o.RateLimiter = ratelimit.None
			if ms, err := strconv.Atoi(getenv(EnvRetryMaxBackoffMS)); err == nil && ms > 0 {
				o.MaxBackoff = time.Duration(ms) * time.Millisecond
				o.Backoff = retry.NewExponentialJitterBackoff(o.MaxBackoff)
			}
		})
	}
	region := getenv("AWS_REGION")
	if region == "" {
		region = getenv("AWS_DEFAULT_REGION")
	}
	ep, id, secret := getenv("AWS_ENDPOINT_URL"), getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY")
	if ep != "" && id != "" && secret != "" {
		if region == "" {
			region = "us-east-1"
		}
		return aws.Config{
			Region:       region,
			Credentials:  aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(id, secret, getenv("AWS_SESSION_TOKEN"))),
			BaseEndpoint: aws.String(ep),
			Retryer:      retryer,
		}, nil
	}
	opts := []func(*config.LoadOptions) error{config.WithRetryer(retryer)}
	if ep != "" {
		opts = append(opts, config.WithBaseEndpoint(ep))
	}
	if region != "" {
		opts = append(opts, config.WithRegion(region))
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
