// Command localstack runs the whole service on one machine with no AWS
// account (`make run`, API.md §8). It starts moto_server on 127.0.0.1:4566
// unless AWS_ENDPOINT_URL names an emulator already running, creates the
// tables and queues of template.yaml, loads the apps and credentials of
// PUSH_LOCAL_CONFIG (default config/local.json) into the emulated Secrets
// Manager, serves the HTTP API on PUSH_LOCAL_ADDR (default 127.0.0.1:3000)
// through the handlers that app.HTTPFunctions registers, runs the functions
// of app.ScheduledFunctions on their template schedules, feeds each vendor
// queue to its dispatch function, and starts an emulator of every vendor
// that a credential marks local, pointing those credentials at it. Its
// stdout carries "ready" on a line of its own once every part answers, then
// one JSON line per push an emulator accepts (token suffix only); its logs
// are JSON on stderr. On SIGINT or SIGTERM it stops everything it started
// and exits 0.
//
// Each part (the API, the schedules, the queue pollers, the vendor
// emulators) is built from the template, the configuration and the app
// registries, so a new function or part is added here without changing the
// others.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/offline-push/offline-push/shared/cfn"
)

// Defaults of API.md §8.
const (
	defaultMotoAddr = "127.0.0.1:4566"
	defaultAPIAddr  = "127.0.0.1:3000"
	defaultConfig   = "config/local.json"
	stackName       = "offline-push-local"
	defaultRegion   = "us-east-1"
	// emulatorKey is the static credential the emulator accepts.
	emulatorKey = "test"
	// stopGrace bounds how long requests in flight may take at shutdown.
	stopGrace = 10 * time.Second
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Getenv, os.Stdout, log)
	switch {
	case err == nil:
		log.Info("stopped")
	case ctx.Err() != nil:
		// A signal during start-up: what had started is stopped; that is
		// the requested outcome, not a failure.
		log.Info("stopped during start-up", "reason", err)
	default:
		log.Error("local stack failed", "err", err)
		os.Exit(1)
	}
}

// settings are the local stack's switches, read from the environment.
type settings struct {
	endpoint   string // AWS_ENDPOINT_URL; empty: start moto
	apiAddr    string
	configPath string
	region     string
	keyID      string
	secretKey  string
}

func readSettings(getenv func(string) string) settings {
	or := func(v, def string) string {
		if v == "" {
			return def
		}
		return v
	}
	return settings{
		endpoint:   getenv("AWS_ENDPOINT_URL"),
		apiAddr:    or(getenv("PUSH_LOCAL_ADDR"), defaultAPIAddr),
		configPath: or(getenv("PUSH_LOCAL_CONFIG"), defaultConfig),
		region:     or(getenv("AWS_REGION"), or(getenv("AWS_DEFAULT_REGION"), defaultRegion)),
		keyID:      or(getenv("AWS_ACCESS_KEY_ID"), emulatorKey),
		secretKey:  or(getenv("AWS_SECRET_ACCESS_KEY"), emulatorKey),
	}
}

// envFactory returns the getenv that a function's constructor receives.
type envFactory func(cfn.Function) func(string) string

// functionEnv gives each function what Lambda would: its resolved template
// environment and the runtime's own variables, with the AWS settings
// pointing at the emulator. Nothing else of this process's environment
// leaks in, so a function that works here does not rely on a variable the
// template forgot.
func (s settings) functionEnv(st *cfn.Stack) envFactory {
	return func(f cfn.Function) func(string) string {
		env := map[string]string{}
		for k, v := range f.Env {
			env[k] = v
		}
		env["AWS_ENDPOINT_URL"] = s.endpoint
		env["AWS_REGION"] = s.region
		env["AWS_DEFAULT_REGION"] = s.region
		env["AWS_ACCESS_KEY_ID"] = s.keyID
		env["AWS_SECRET_ACCESS_KEY"] = s.secretKey
		env["AWS_LAMBDA_FUNCTION_NAME"] = st.Name + "-" + f.LogicalID
		env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = strconv.Itoa(f.MemorySize)
		return func(k string) string { return env[k] }
	}
}

func (s settings) awsConfig(ctx context.Context) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRegion(s.region),
		config.WithBaseEndpoint(s.endpoint),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(s.keyID, s.secretKey, "")),
	)
	if err != nil {
		return aws.Config{}, fmt.Errorf("AWS config: %w", err)
	}
	return cfg, nil
}

// run starts every part, prints "ready", and stops the parts in reverse order
// when ctx ends (a signal) or a part fails.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer, log *slog.Logger) (err error) {
	s := readSettings(getenv)
	// The emulators print from their own goroutines; lines stay whole.
	stdout = &syncWriter{w: stdout}
	if s.endpoint == "" {
		emu, startErr := startMoto(ctx, log, defaultMotoAddr)
		if startErr != nil {
			return startErr
		}
		defer func() {
			if stopErr := emu.stop(); stopErr != nil {
				err = errors.Join(err, stopErr)
			}
			log.Info("AWS emulator stopped")
		}()
		s.endpoint = emu.endpoint
	}
	cfg, err := s.awsConfig(ctx)
	if err != nil {
		return err
	}

	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	path, err := cfn.FindTemplate(wd)
	if err != nil {
		return err
	}
	tmpl, err := cfn.Load(path)
	if err != nil {
		return err
	}
	st, err := cfn.Provision(ctx, cfg, tmpl, cfn.Options{StackName: stackName})
	if err != nil {
		return err
	}
	log.Info("stack provisioned", "stack", st.Name, "tables", len(st.Tables), "queues", len(st.Queues), "endpoint", s.endpoint)

	local, err := readConfig(s.configPath)
	if err != nil {
		return err
	}
	creds, err := local.credentials()
	if err != nil {
		return err
	}
	// The emulators rewrite the local credentials, so they start before
	// the credentials are stored.
	emus, err := startEmulators(creds, stdout, log)
	if err != nil {
		return err
	}
	defer emus.stop()
	prefix := st.Parameters["SecretPrefix"]
	if err := loadSecrets(ctx, secretsmanager.NewFromConfig(cfg), prefix, local, creds); err != nil {
		return err
	}
	for _, c := range creds {
		// Field names only: the values are keys.
		log.Info("credential loaded", "app", c.App, "certName", c.CertName, "vendor", c.Vendor, "generated", c.Generated)
	}
	log.Info("secrets loaded", "prefix", prefix, "apps", len(local.Apps), "credentials", len(creds))

	env := s.functionEnv(st)
	api, err := newAPI(ctx, log, st, env)
	if err != nil {
		return err
	}
	sched, err := newScheduler(ctx, log, st, env)
	if err != nil {
		return err
	}
	feed, err := newFeeder(ctx, log, st, env, sqs.NewFromConfig(cfg))
	if err != nil {
		return err
	}
	if err := api.start(s.apiAddr); err != nil {
		return err
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), stopGrace)
		defer cancel()
		if stopErr := api.stop(stopCtx); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
	}()
	sched.start()
	defer sched.stop()
	feed.start()
	defer feed.stop()

	if err := api.waitReady(ctx); err != nil {
		return err
	}
	if err := emus.waitReady(ctx); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "ready")
	log.Info("ready", "api", api.url())

	select {
	case <-ctx.Done():
		log.Info("stopping", "reason", context.Cause(ctx))
		return nil
	case <-api.served:
		return fmt.Errorf("HTTP API stopped: %w", api.serveErr)
	}
}

// requestID returns a random id shaped like Lambda's request ids.
func requestID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
