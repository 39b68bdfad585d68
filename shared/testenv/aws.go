package testenv

import (
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Settings every test client uses against the emulator. moto accepts any
// credentials and keeps one state per region, so all tests agree on these.
const (
	Region          = "us-east-1"
	AccessKeyID     = "test"
	SecretAccessKey = "test"
)

// Retry settings of AWSConfig. Ten attempts make a throttled call succeed
// with near certainty even when the fault proxy rejects a third of all
// requests (0.3^10 ≈ 6e-6). The backoff is far shorter than the SDK's
// (which waits up to 2^attempt seconds): the emulator needs no pacing, and
// tests that throttle hundreds of calls must still finish in seconds.
const (
	retryMaxAttempts = 10
	retryBaseDelay   = 5 * time.Millisecond
	retryMaxDelay    = 200 * time.Millisecond
)

// AWSConfig returns an SDK configuration for clients of the emulator at
// endpoint. It is built field by field rather than loaded, so that nothing
// from the developer's machine leaks in: no ~/.aws files, no AWS_PROFILE, no
// AWS_ENDPOINT_URL_* variables. The retryer has no client-side retry quota
// (ratelimit.None), which would otherwise turn an injected throttling burst
// into failures that a retry would have saved.
func AWSConfig(endpoint string) aws.Config {
	return aws.Config{
		Region:       Region,
		Credentials:  aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, "")),
		BaseEndpoint: aws.String(endpoint),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = retryMaxAttempts
				o.RateLimiter = ratelimit.None
				o.Backoff = retry.BackoffDelayerFunc(backoff)
			})
		},
	}
}

// backoff is exponential with full jitter, like the SDK's, on a millisecond
// scale.
func backoff(attempt int, _ error) (time.Duration, error) {
	ceiling := min(retryBaseDelay<<min(attempt, 16), retryMaxDelay)
	return time.Duration(rand.Int64N(int64(ceiling) + 1)), nil
}

// Env returns a getenv for the app constructors that points them at the
// emulator at endpoint: AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY, plus extra (for example Stack(…).FunctionEnv(…)),
// which wins over the defaults. Any other name reads as unset, never from
// the process environment, so a test sees the same configuration on every
// machine.
func Env(endpoint string, extra map[string]string) func(string) string {
	env := map[string]string{
		"AWS_ENDPOINT_URL":      endpoint,
		"AWS_REGION":            Region,
		"AWS_ACCESS_KEY_ID":     AccessKeyID,
		"AWS_SECRET_ACCESS_KEY": SecretAccessKey,
		// Read by shared/app: the emulator needs no pacing, and throttling
		// tests retry hundreds of calls.
		"PUSH_RETRY_MAX_BACKOFF_MS": "200",
	}
	for k, v := range extra {
		env[k] = v
	}
	return func(name string) string { return env[name] }
}
