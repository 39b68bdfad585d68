// Command pushctl signs and sends requests to the offline push service, so
// that nobody has to compute an HMAC by hand to try it (API.md §2).
//
// Global flags, accepted before or after the subcommand:
//
//	--url     base URL (env PUSH_URL, default http://127.0.0.1:3000)
//	--app     app id (env PUSH_APP)
//	--secret  API secret (env PUSH_SECRET)
//
// When the app or the secret is not given, they are read from the local
// stack's config file (env PUSH_LOCAL_CONFIG, default config/local.json).
//
// Run "pushctl help" for the subcommands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	c := &cli{
		stdin:  os.Stdin,
		stdout: os.Stdout,
		stderr: os.Stderr,
		getenv: os.Getenv,
		now:    time.Now,
		nonce:  newNonce,
		http:   &http.Client{Timeout: 60 * time.Second},
	}
	os.Exit(c.run(ctx, os.Args[1:]))
}

// Exit codes: 0 for a 2xx answer, 1 for any other answer or a failure to
// reach the service, 2 for a command line that could not be understood.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// cli holds everything a command touches outside the process, so tests can
// run commands in-process against an httptest server.
type cli struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	now    func() time.Time
	nonce  func() (string, error)
	http   *http.Client

	g globals
}

// globals are the flags every subcommand accepts.
type globals struct {
	url    string
	app    string
	secret string
}

// usageError is a command line mistake; it exits with exitUsage.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// errStatus reports an answer outside 2xx. Its status line has already been
// printed, so run prints nothing more.
var errStatus = errors.New("non-2xx status")

// command is one subcommand; args are what follows its name.
type command struct {
	name    string
	summary string
	run     func(c *cli, ctx context.Context, args []string) error
}

func commands() []command {
	return []command{
		{"request", "request METHOD PATH [--data JSON | --file F | -]   sign and send any request", cmdRequest},
		{"device", "device put|delete|list ...   register, remove or list a user's devices", cmdDevice},
		{"presence", "presence --user U --device D --state online|offline [--platform P] [--lease S] [--epoch N] [--badge N]", cmdPresence},
		{"badge", "badge --user U --count N   set the badge base", cmdBadge},
		{"settings", "settings get|patch --user U [--data JSON | --file F]   app-level push settings", cmdSettings},
		{"conv", "conv get|patch|delete --user U --type T --id ID [--data JSON]   conversation settings", cmdConv},
		{"send", "send --file message.json [--dry-run] [--explain] [--evaluate-at RFC3339]   ingest a message", cmdSend},
		{"health", "health   GET /v1/health (no signature)", cmdHealth},
		{"sign-event", "sign-event FILE   print an API Gateway v2 event with fresh X-Push-* headers", cmdSignEvent},
	}
}

// run executes one command line and returns the process exit code.
func (c *cli) run(ctx context.Context, args []string) int {
	c.g = globals{
		url:    c.getenv("PUSH_URL"),
		app:    c.getenv("PUSH_APP"),
		secret: c.getenv("PUSH_SECRET"),
	}
	if c.g.url == "" {
		c.g.url = "http://127.0.0.1:3000"
	}
	fs := c.flagSet("pushctl")
	fs.Usage = func() { c.usage(c.stderr) }
	rest, err := parseArgs(fs, args, true)
	if err != nil {
		return c.fail(err)
	}
	if len(rest) == 0 || rest[0] == "help" {
		c.usage(c.stderr)
		if len(rest) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, cmd := range commands() {
		if cmd.name == rest[0] {
			return c.fail(cmd.run(c, ctx, rest[1:]))
		}
	}
	return c.fail(usagef("unknown command %q", rest[0]))
}

// fail prints err (if any) and maps it to an exit code.
func (c *cli) fail(err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errStatus):
		return exitFail
	case errors.Is(err, errHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(c.stderr, "pushctl: %s\nRun 'pushctl help' for usage.\n", ue.msg)
		return exitUsage
	default:
		fmt.Fprintf(c.stderr, "pushctl: %v\n", err)
		return exitFail
	}
}

func (c *cli) usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: pushctl [--url URL] [--app APP] [--secret SECRET] COMMAND [flags]")
	fmt.Fprintln(w, "\nCommands:")
	for _, cmd := range commands() {
		fmt.Fprintf(w, "  %s\n", cmd.summary)
	}
	fmt.Fprintln(w, "\nEnvironment: PUSH_URL, PUSH_APP, PUSH_SECRET, PUSH_LOCAL_CONFIG (default config/local.json).")
	fmt.Fprintln(w, "Exit code: 0 for a 2xx answer, 1 otherwise, 2 for a bad command line.")
}
