// Command fuzzall runs every fuzz target of the module for a fixed time, one
// after another, and prints a table of what each run did. `make test` fuzzes
// each target for a few seconds, which catches regressions in the seed corpus
// but rarely finds anything new; this command is the long run that does.
//
// Targets are discovered, not listed: every top-level `func FuzzXxx(*testing.F)`
// in a _test.go file of a package under the module root is run, so a target
// added by anyone is fuzzed without editing this command. Each target runs as
//
//	go test -run='^$' -fuzz='^FuzzXxx$' -fuzztime=60s -fuzzminimizetime=5s <package>
//
// because the go command fuzzes only one target of one package at a time.
//
// Flags:
//
//	-fuzztime d          how long each target runs (default 60s)
//	-fuzzminimizetime d  how long a failing input is minimized (default 5s)
//	-match re            run only targets whose "package.Name" matches re
//	-parallel n          fuzz workers per target (default: the go command's, GOMAXPROCS)
//	-markdown            print the table as Markdown instead of aligned text
//	-v                   stream the go command's output while it runs
//
// It exits 1 when any target failed (a crash found, or a build or seed
// failure), 2 when the targets could not be discovered.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// options are the parsed command line.
type options struct {
	fuzzTime     time.Duration
	minimizeTime time.Duration
	match        *regexp.Regexp
	parallel     int
	markdown     bool
	verbose      bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("fuzzall", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var match string
	fs.DurationVar(&o.fuzzTime, "fuzztime", 60*time.Second, "how long each target runs")
	fs.DurationVar(&o.minimizeTime, "fuzzminimizetime", 5*time.Second, "how long a failing input is minimized")
	fs.StringVar(&match, "match", "", "run only targets whose package.Name matches this regexp")
	fs.IntVar(&o.parallel, "parallel", 0, "fuzz workers per target (0: the go command's default)")
	fs.BoolVar(&o.markdown, "markdown", false, "print the table as Markdown")
	fs.BoolVar(&o.verbose, "v", false, "stream the go command's output")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.fuzzTime <= 0 {
		return o, fmt.Errorf("-fuzztime must be positive, got %v", o.fuzzTime)
	}
	if o.minimizeTime < 0 {
		return o, fmt.Errorf("-fuzzminimizetime must not be negative, got %v", o.minimizeTime)
	}
	if o.parallel < 0 {
		return o, fmt.Errorf("-parallel must not be negative, got %d", o.parallel)
	}
	if match != "" {
		re, err := regexp.Compile(match)
		if err != nil {
			return o, fmt.Errorf("-match: %w", err)
		}
		o.match = re
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if err != flag.ErrHelp {
			fmt.Fprintln(stderr, "fuzzall:", err)
		}
		return exitUsage
	}
	targets, err := discover(ctx, ".")
	if err != nil {
		fmt.Fprintln(stderr, "fuzzall:", err)
		return exitUsage
	}
	targets = filter(targets, o.match)
	if len(targets) == 0 {
		fmt.Fprintln(stderr, "fuzzall: no fuzz targets found")
		return exitUsage
	}
	fmt.Fprintf(stderr, "fuzzall: fuzzing %d target(s), %v each\n", len(targets), o.fuzzTime)
	var results []result
	for i, t := range targets {
		fmt.Fprintf(stderr, "fuzzall: [%d/%d] %s in %s\n", i+1, len(targets), t.Name, t.ImportPath)
		r := fuzz(ctx, t, o, stderr)
		fmt.Fprintf(stderr, "fuzzall: [%d/%d] %s: %s\n", i+1, len(targets), t.Name, r.Outcome)
		results = append(results, r)
		if ctx.Err() != nil {
			break
		}
	}
	if o.markdown {
		writeMarkdown(stdout, results)
	} else {
		writeTable(stdout, results)
	}
	for _, r := range results {
		if !r.OK() {
			return exitFail
		}
	}
	if ctx.Err() != nil {
		return exitFail
	}
	return exitOK
}

func filter(targets []target, re *regexp.Regexp) []target {
	if re == nil {
		return targets
	}
	var kept []target
	for _, t := range targets {
		if re.MatchString(t.ImportPath + "." + t.Name) {
			kept = append(kept, t)
		}
	}
	return kept
}
