// Command load drives the local stack at a steady rate for a bounded time,
// with faults injected at the vendor emulators (and optionally at the AWS
// emulator), and then proves from outside the service that every push it
// decided on reached exactly one outcome (`make load`, README "Load run").
//
// It starts moto (or uses AWS_ENDPOINT_URL), optionally the fault proxy of
// shared/testenv in front of it (-throttle), builds and starts the local
// stack on a free loopback port with PUSH_LOCAL_FAULTS set, seeds users and
// devices through the signed API (a share of the tokens dead at their
// vendor), sends messages with explain at -rate for -duration, waits until
// every vendor queue is empty, and judges each (message, device) target
// against the emulators' receipts (the stack's standard output), the
// dead-letter queues and the bindings left. It prints that accounting, the
// ingest and end-to-end latencies, and scans every captured log line for a
// full token or a secret. It exits 1 when anything is unaccounted for, 2
// on a bad command line.
package main

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/offline-push/offline-push/shared/dispatch"
	"github.com/offline-push/offline-push/shared/push"
	"github.com/offline-push/offline-push/shared/testenv"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// Exit codes.
const (
	exitPass  = 0
	exitFail  = 1
	exitUsage = 2
)

// options are the run's switches. The defaults fit a 2-core machine that
// also runs moto and the local stack.
type options struct {
	Users        int
	Rate         float64
	Duration     time.Duration
	GroupShare   float64
	GroupMax     int
	Invalid      float64
	Transient    float64
	VendorThrot  float64
	Throttle     float64
	Seed         int64
	InFlight     int
	Visibility   time.Duration
	QuietTimeout time.Duration
	LogDir       string
	App          string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.Users, "users", 200, "users to seed (2 to 5000), each with 1 to 3 devices")
	fs.Float64Var(&o.Rate, "rate", 5, "messages per second (0.1 to 200)")
	fs.DurationVar(&o.Duration, "duration", time.Minute, "how long to send (1s to 30m)")
	fs.Float64Var(&o.GroupShare, "groups", 0.3, "share of messages sent to a small group instead of a peer")
	fs.IntVar(&o.GroupMax, "group-max", 6, "most recipients of a group message (3 to 100)")
	fs.Float64Var(&o.Invalid, "invalid", 0.02, "share of device tokens dead at their vendor")
	fs.Float64Var(&o.Transient, "transient", 0.2, "share of vendor requests answered with a transient server error")
	fs.Float64Var(&o.VendorThrot, "vendor-throttle", 0.02, "share of vendor requests answered as throttled (429 or the vendor's equivalent)")
	fs.Float64Var(&o.Throttle, "throttle", 0, "share of AWS requests the fault proxy in front of moto throttles (0: no proxy)")
	fs.Int64Var(&o.Seed, "seed", 1, "seed of the population, the messages and the faults")
	fs.IntVar(&o.InFlight, "inflight", 16, "most ingest requests in flight (1 to 256)")
	fs.DurationVar(&o.Visibility, "visibility", 40*time.Second, "visibility timeout set on the vendor queues, so that records failed whole come back within the run (0 keeps the template's)")
	fs.DurationVar(&o.QuietTimeout, "quiet-timeout", 10*time.Minute, "longest wait for the vendor queues to drain after the last message")
	fs.StringVar(&o.LogDir, "logs", "", "directory to keep the local stack's logs in (default: a temporary one, removed)")
	fs.StringVar(&o.App, "app", "demo", "app of the local config to use")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	share := func(name string, v float64) error {
		if v < 0 || v > 1 || math.IsNaN(v) {
			return fmt.Errorf("-%s must be a share from 0 to 1", name)
		}
		return nil
	}
	checks := []error{
		share("groups", o.GroupShare), share("invalid", o.Invalid), share("transient", o.Transient),
		share("vendor-throttle", o.VendorThrot), share("throttle", o.Throttle),
	}
	if o.Transient+o.VendorThrot > 1 {
		checks = append(checks, errors.New("-transient and -vendor-throttle add up to more than 1"))
	}
	if o.Throttle > 0.5 {
		checks = append(checks, errors.New("-throttle above 0.5 makes the SDK's retries give up; use at most 0.5"))
	}
	if o.Users < 2 || o.Users > 5000 {
		checks = append(checks, errors.New("-users must be from 2 to 5000"))
	}
	if !(o.Rate >= 0.1 && o.Rate <= 200) {
		checks = append(checks, errors.New("-rate must be from 0.1 to 200"))
	}
	if o.Duration < time.Second || o.Duration > 30*time.Minute {
		checks = append(checks, errors.New("-duration must be from 1s to 30m"))
	}
	if o.GroupMax < 3 || o.GroupMax > 100 {
		checks = append(checks, errors.New("-group-max must be from 3 to 100"))
	}
	if o.InFlight < 1 || o.InFlight > 256 {
		checks = append(checks, errors.New("-inflight must be from 1 to 256"))
	}
	if o.Visibility != 0 && (o.Visibility < 31*time.Second || o.Visibility > 12*time.Hour) {
		checks = append(checks, errors.New("-visibility must be 0 or from 31s (above the dispatch timeout of 30 s) to 12h"))
	}
	if o.QuietTimeout < time.Second || o.QuietTimeout > time.Hour {
		checks = append(checks, errors.New("-quiet-timeout must be from 1s to 1h"))
	}
	return o, errors.Join(checks...)
}

// messageCount is how many messages the run sends.
func (o options) messageCount() int {
	return max(1, int(math.Round(o.Rate*o.Duration.Seconds())))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitPass
	}
	if err != nil {
		fmt.Fprintln(stderr, "load:", err)
		return exitUsage
	}
	rep, err := loadRun(ctx, o, stderr)
	if rep != nil {
		rep.print(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "load:", err)
		return exitFail
	}
	if !rep.passed() {
		return exitFail
	}
	return exitPass
}

// localConfig is the part of the local stack's config this tool reads.
type localConfig struct {
	Apps map[string]struct {
		APISecrets []string                  `json:"apiSecrets"`
		Vendors    map[string]map[string]any `json:"vendors"`
	} `json:"apps"`
}

// appConfig returns the API secrets of app, and for each vendor the first
// (by name) of its credentials.
func appConfig(path, app string) (secrets []string, certs map[push.Vendor]string, all []string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read the local config: %w", err)
	}
	var c localConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, nil, nil, fmt.Errorf("parse the local config %s: %w", path, err)
	}
	a, ok := c.Apps[app]
	if !ok || len(a.APISecrets) == 0 {
		return nil, nil, nil, fmt.Errorf("the local config %s has no app %q with apiSecrets", path, app)
	}
	certs = map[push.Vendor]string{}
	for name := range a.Vendors {
		all = append(all, name)
	}
	sort.Strings(all)
	for _, name := range all {
		s, _ := a.Vendors[name]["vendor"].(string)
		if v, ok := push.ParseVendor(s); ok && certs[v] == "" {
			certs[v] = name
		}
	}
	return a.APISecrets, certs, all, nil
}

// newRunID returns 6 random hex digits that tell this run's users and
// messages from any other run's against the same emulator.
func newRunID() string {
	b := make([]byte, 3)
	crand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return hex.EncodeToString(b)
}

// faultSpec is the PUSH_LOCAL_FAULTS value of a run
// (scripts/localstack/faults.go).
func faultSpec(o options, invalidFile string) string {
	return fmt.Sprintf("transient=%g,throttle=%g,seed=%d,invalidTokens=%s", o.Transient, o.VendorThrot, o.Seed, invalidFile)
}

// maxLongPoll is SQS's longest ReceiveMessage wait, which the local
// stack's queue pollers use.
const maxLongPoll = 20 * time.Second

// ingestNamespace is the namespace of ingest's metric lines.
const ingestNamespace = "OfflinePush/Ingest"

// loadRun does the run and returns its report; an error means the run
// could not be completed (the report then holds what was learnt).
func loadRun(ctx context.Context, o options, progress io.Writer) (rep *report, err error) {
	say := func(format string, args ...any) { fmt.Fprintf(progress, format+"\n", args...) }
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	root, err := findRoot(wd)
	if err != nil {
		return nil, err
	}
	configPath := os.Getenv("PUSH_LOCAL_CONFIG")
	if configPath == "" {
		configPath = filepath.Join(root, "config", "local.json")
	}
	configPath, err = filepath.Abs(configPath)
	if err != nil {
		return nil, err
	}
	apiSecrets, certs, certNames, err := appConfig(configPath, o.App)
	if err != nil {
		return nil, err
	}

	work, err := os.MkdirTemp("", "offline-push-load-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	logDir := o.LogDir
	if logDir == "" {
		logDir = filepath.Join(work, "logs")
	}
	if err := os.MkdirAll(logDir, 0o700); err != nil {
		return nil, err
	}

	run := newRunID()
	pop, err := populate(run, o.Users, o.Invalid, certs, o.Seed)
	if err != nil {
		return nil, err
	}
	rep = &report{opts: o, run: run, pop: pop, logDir: logDir, keepLogs: o.LogDir != ""}

	say("load %s: building the local stack", run)
	bin, err := buildStack(ctx, root, work)
	if err != nil {
		return rep, err
	}

	motoURL := os.Getenv("AWS_ENDPOINT_URL")
	var moto *testenv.Server
	if motoURL == "" {
		say("load %s: starting moto", run)
		moto, err = testenv.StartMoto()
		if err != nil {
			return rep, err
		}
		defer func() {
			if stopErr := moto.Stop(); stopErr != nil {
				err = errors.Join(err, stopErr)
			}
		}()
		motoURL = moto.Endpoint
	}
	stackAWS := motoURL
	var proxy *testenv.Proxy
	if o.Throttle > 0 {
		var stopProxy func()
		proxy, stopProxy = testenv.StartProxy(motoURL, testenv.ProxyOptions{ThrottleRate: o.Throttle, Seed: o.Seed})
		defer stopProxy()
		stackAWS = proxy.URL
	}

	invalidFile := filepath.Join(work, "invalid-tokens")
	var dead []string
	for _, d := range pop.invalid() {
		dead = append(dead, d.Token)
	}
	if err := os.WriteFile(invalidFile, []byte(strings.Join(dead, "\n")+"\n"), 0o600); err != nil {
		return rep, err
	}
	addr, err := freeAddr()
	if err != nil {
		return rep, err
	}
	say("load %s: starting the local stack on %s (AWS at %s)", run, addr, stackAWS)
	st, err := startStack(ctx, bin, root, logDir, map[string]string{
		"AWS_ENDPOINT_URL":      stackAWS,
		"AWS_ACCESS_KEY_ID":     testenv.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY": testenv.SecretAccessKey,
		"AWS_REGION":            testenv.Region,
		"PUSH_LOCAL_ADDR":       addr,
		"PUSH_LOCAL_CONFIG":     configPath,
		"PUSH_LOCAL_FAULTS":     faultSpec(o, invalidFile),
	})
	if err != nil {
		return rep, err
	}
	stopped := false
	defer func() {
		if !stopped {
			err = errors.Join(err, st.stop())
		}
	}()

	// This tool's own AWS calls go straight to moto, never through the
	// fault proxy: they observe, they are not under test.
	cfg := testenv.AWSConfig(motoURL)
	qs, stk, err := findQueues(ctx, cfg, root)
	if err != nil {
		return rep, err
	}
	var visibilitySet time.Time
	if o.Visibility > 0 {
		if err := qs.setVisibility(ctx, o.Visibility); err != nil {
			return rep, err
		}
		visibilitySet = time.Now()
	}
	vendorSecrets, err := vendorSecrets(ctx, cfg, stk.Parameters["SecretPrefix"], o.App, certNames)
	if err != nil {
		return rep, err
	}

	c := newClient(st.URL, apiSecrets[0], o.InFlight)
	say("load %s: seeding %d users with %d devices (%d with dead tokens)", run, len(pop.Users), len(pop.Devices), len(dead))
	if err := seed(ctx, c, o.App, pop); err != nil {
		return rep, err
	}
	if !visibilitySet.IsZero() {
		// moto takes a receive's visibility timeout from the queue when the
		// receive starts, so the long polls that began before the change
		// hand out messages with the old one until they end: at most
		// maxLongPoll later, SQS's bound on WaitTimeSeconds.
		if wait := time.Until(visibilitySet.Add(maxLongPoll + time.Second)); wait > 0 {
			say("load %s: waiting %s for the long polls begun before the visibility change to end", run, wait.Round(time.Second))
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return rep, ctx.Err()
			case <-t.C:
			}
		}
	}
	msgs := plan(run, pop.Users, o.messageCount(), o.GroupShare, o.GroupMax, o.Seed)
	interval := time.Duration(float64(time.Second) / o.Rate)
	say("load %s: sending %d messages at %g/s", run, len(msgs), o.Rate)
	if proxy != nil {
		proxy.Reset()
	}
	sentAt := time.Now()
	ss := drive(ctx, c, o.App, msgs, interval, o.InFlight)
	rep.sendTime = time.Since(sentAt)
	say("load %s: sent in %s; waiting for the vendor queues to drain", run, rep.sendTime.Round(time.Millisecond))
	rep.quietAfter, err = qs.waitQuiet(ctx, o.QuietTimeout, progress)
	if err != nil {
		return rep, err
	}
	bound, err := bindings(ctx, c, o.App, pop.Users)
	if err != nil {
		return rep, err
	}
	deadLetters, unreadable, err := qs.deadLetters(ctx, "ld-"+run+"-")
	if err != nil {
		return rep, err
	}
	rep.unreadableDead = unreadable
	if proxy != nil {
		rep.proxy = proxy.Counts()
	}
	say("load %s: stopping the local stack", run)
	stopped = true
	if err := st.stop(); err != nil {
		return rep, err
	}
	rep.tally = st.stackTally(dispatch.Namespace)
	rep.ingestTally = st.stackTally(ingestNamespace)
	rep.acc = account(pop, ss, st.receiptsSoFar(), deadLetters, bound, messageIDs(run))

	var tokens []string
	for _, d := range pop.Devices {
		tokens = append(tokens, d.Token)
	}
	texts := map[string]string{}
	if moto != nil {
		texts["moto output"] = moto.Output()
	}
	sc := newScanner(tokens, append(append([]string(nil), apiSecrets...), vendorSecrets...))
	rep.leaks, rep.scanned, err = sc.scanFiles([]string{st.StdoutLog, st.StderrLog}, texts)
	rep.scanDone = err == nil
	return rep, err
}

// awsCallTotals sums the proxy's counts: calls forwarded to moto, and calls
// it answered itself (throttled).
func awsCallTotals(counts map[string]testenv.OpCount) (calls, faults int) {
	for _, c := range counts {
		calls += c.Requests
		faults += c.Faults
	}
	return calls, faults
}
