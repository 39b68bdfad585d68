package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// result is what one fuzz run did.
type result struct {
	Target         target
	Execs          int64 // inputs tried, from the go command's last progress line
	NewInteresting int   // inputs that widened coverage during this run
	Elapsed        time.Duration
	Outcome        string // "ok", or what went wrong
	FailingInput   string // where the go command wrote the crashing input, if it found one
	Detail         string // the failure's first lines, for the report
	ok             bool
}

// OK reports whether the target ran for its time without failing.
func (r result) OK() bool { return r.ok }

// fuzz runs one target through the go command and reads its output. The
// test binary's own timeout is set past the fuzz time, because the go
// command's default of 10 minutes would otherwise end a long run as a
// failure.
func fuzz(ctx context.Context, t target, o options, stderr io.Writer) result {
	args := []string{
		"test",
		"-run=^$",
		"-fuzz=^" + regexp.QuoteMeta(t.Name) + "$",
		"-fuzztime=" + o.fuzzTime.String(),
		"-fuzzminimizetime=" + o.minimizeTime.String(),
		"-timeout=" + (o.fuzzTime + o.minimizeTime + 10*time.Minute).String(),
	}
	if o.parallel > 0 {
		args = append(args, "-parallel="+strconv.Itoa(o.parallel))
	}
	args = append(args, t.ImportPath)
	cmd := exec.CommandContext(ctx, "go", args...)
	var out bytes.Buffer
	if o.verbose {
		cmd.Stdout = io.MultiWriter(&out, stderr)
	} else {
		cmd.Stdout = &out
	}
	cmd.Stderr = cmd.Stdout
	start := time.Now()
	err := cmd.Run()
	r := parseOutput(t, out.String(), err == nil)
	r.Elapsed = time.Since(start)
	if ctx.Err() != nil {
		r.ok = false
		r.Outcome = "interrupted"
	}
	return r
}

var (
	// progressLine matches the go command's periodic fuzzing status, e.g.
	// "fuzz: elapsed: 3s, execs: 325017 (108336/sec), new interesting: 11 (total: 202)".
	progressLine = regexp.MustCompile(`^fuzz: elapsed: \S+, execs: (\d+) \(\d+/sec\), new interesting: (\d+)`)
	// failingInput matches the line naming the file a crashing input was
	// written to, relative to the package directory.
	failingInput = regexp.MustCompile(`Failing input written to (\S+)`)
)

// parseOutput classifies a finished run from the go command's combined
// output and whether it exited 0.
func parseOutput(t target, out string, exitedZero bool) result {
	r := result{Target: t, ok: exitedZero, Outcome: "ok"}
	var failLines []string
	inFail := false
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if m := progressLine.FindStringSubmatch(trimmed); m != nil {
			r.Execs, _ = strconv.ParseInt(m[1], 10, 64)
			r.NewInteresting, _ = strconv.Atoi(m[2])
		}
		if m := failingInput.FindStringSubmatch(trimmed); m != nil {
			r.FailingInput = filepath.Join(t.Dir, m[1])
		}
		if strings.HasPrefix(trimmed, "--- FAIL") {
			inFail = true
		}
		if inFail && trimmed != "" && len(failLines) < 12 {
			failLines = append(failLines, trimmed)
		}
	}
	if exitedZero {
		return r
	}
	r.Detail = strings.Join(failLines, "\n")
	switch {
	case r.FailingInput == "" && len(failLines) >= 2 && failLines[1] == "context deadline exceeded":
		// The go command's coordinator, not the target, failed: when
		// -fuzztime runs out while a worker is mid-call, go1.26 and older
		// report the deadline as a failure (go.dev/issue/75804, fixed in
		// go1.27). No input failed, so the run counts as passed.
		r.ok = true
		r.Outcome = "ok (the go command's end-of-run deadline race, go.dev/issue/75804)"
		r.Detail = ""
	case r.FailingInput != "":
		r.Outcome = "CRASH: " + r.FailingInput
	case strings.Contains(out, "[build failed]") || strings.Contains(out, "[setup failed]"):
		r.Outcome = "FAIL: does not build"
		r.Detail = firstLines(out, 12)
	case strings.Contains(out, "failure while testing seed corpus entry"):
		r.Outcome = "FAIL: seed corpus"
	default:
		r.Outcome = "FAIL"
		if r.Detail == "" {
			r.Detail = firstLines(out, 12)
		}
	}
	return r
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(strings.TrimSpace(s), "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

// shortPackage drops the module path so the table stays narrow.
func shortPackage(importPath string) string {
	const module = "github.com/offline-push/offline-push/"
	return strings.TrimPrefix(importPath, module)
}

func writeTable(w io.Writer, results []result) {
	rows := [][]string{{"TARGET", "PACKAGE", "EXECS", "NEW INTERESTING", "RESULT"}}
	for _, r := range results {
		rows = append(rows, row(r))
	}
	widths := make([]int, len(rows[0]))
	for _, cells := range rows {
		for i, c := range cells[:len(cells)-1] {
			widths[i] = max(widths[i], len(c))
		}
	}
	for _, cells := range rows {
		var b strings.Builder
		for i, c := range cells {
			if i == len(cells)-1 {
				b.WriteString(c)
				break
			}
			if i == 2 || i == 3 { // numbers right-aligned
				fmt.Fprintf(&b, "%*s  ", widths[i], c)
			} else {
				fmt.Fprintf(&b, "%-*s  ", widths[i], c)
			}
		}
		fmt.Fprintln(w, b.String())
	}
	writeDetails(w, results)
}

func writeMarkdown(w io.Writer, results []result) {
	fmt.Fprintln(w, "| target | package | execs | new interesting | result |")
	fmt.Fprintln(w, "|---|---|--:|--:|---|")
	for _, r := range results {
		fmt.Fprintf(w, "| %s |\n", strings.Join(row(r), " | "))
	}
	writeDetails(w, results)
}

func row(r result) []string {
	return []string{
		r.Target.Name,
		shortPackage(r.Target.ImportPath),
		strconv.FormatInt(r.Execs, 10),
		strconv.Itoa(r.NewInteresting),
		r.Outcome,
	}
}

// writeDetails prints, after the table, the first lines of every failure,
// and how to replay a crashing input.
func writeDetails(w io.Writer, results []result) {
	for _, r := range results {
		if r.ok {
			continue
		}
		fmt.Fprintf(w, "\n%s (%s): %s\n", r.Target.Name, shortPackage(r.Target.ImportPath), r.Outcome)
		if r.Detail != "" {
			fmt.Fprintln(w, indent(r.Detail))
		}
		if r.FailingInput != "" {
			fmt.Fprintf(w, "  replay: go test -run='^%s/%s$' %s\n", r.Target.Name, filepath.Base(r.FailingInput), r.Target.ImportPath)
		}
	}
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}
