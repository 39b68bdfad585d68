// Command benchreport runs the benchmarks of `make bench` and writes one
// report: build/bench/report.md for people, report.json with every number,
// and two SVG charts (cost per million pushes by mix, dispatch throughput by
// vendor).
//
// It expects the function binaries already built (the Makefile's bench
// target does that): host builds under <dir>/bin/<name> for the start-up
// timing and arm64 builds under <dir>/arm64/<name> for the deployed sizes,
// with the bare aws-lambda-go baseline among them as "bare". It then runs
// the benchmark suites with `go test -json`, runs scripts/coldstart over
// every host binary, prices the measured AWS usage with the cost model of
// cost.go, and writes the report. The raw outputs stay in <dir>/raw, and
// -reuse renders the report from them again without running anything.
//
// Usage: go run ./scripts/benchreport [-dir build/bench] [-n 20] [-reuse]
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

// suite is one `go test` run of the report.
type suite struct {
	name      string
	pkgs      []string
	bench     string
	benchtime string
}

// suites are the benchmarks the report reads. Each gets a bench time that
// keeps the whole run within about ten minutes on two cores: the cost
// benchmarks run a few messages (their request counts are exact after one,
// and a message to 1,000 members takes seconds against moto), the
// in-process ones a second each. A -bench pattern is split at each slash
// into one pattern per level of sub-benchmarks.
var suites = []suite{
	{name: "policy", pkgs: []string{"./shared/policy"}, bench: ".", benchtime: "1s"},
	{name: "cost", pkgs: []string{"./shared/app"}, bench: "^BenchmarkCost$/^(peer|group50)$", benchtime: "5x"},
	{name: "cost-group1000", pkgs: []string{"./shared/app"}, bench: "^BenchmarkCost$/^group1000$", benchtime: "1x"},
	{name: "ingest", pkgs: []string{"./shared/app"}, bench: "^Benchmark(CostFixed|Ingest.*)$", benchtime: "3x"},
	{name: "providers", pkgs: []string{"./shared/provider/..."}, bench: "^BenchmarkSend$", benchtime: "1s"},
	{name: "other", pkgs: []string{"./shared/httpapi", "./shared/ingest"}, bench: ".", benchtime: "1s"},
	{name: "cfn", pkgs: []string{"./shared/cfn"}, bench: ".", benchtime: "3x"},
}

func main() {
	dir := flag.String("dir", "build/bench", "folder with bin/ and arm64/ binaries; the report is written here")
	runs := flag.Int("n", 20, "start-up runs per binary")
	reuse := flag.Bool("reuse", false, "render the report from the raw outputs of an earlier run instead of running anything")
	flag.Parse()
	if err := run(*dir, *runs, *reuse); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

func run(dir string, n int, reuse bool) error {
	module, err := modulePath()
	if err != nil {
		return err
	}
	raw := filepath.Join(dir, "raw")
	if err := os.MkdirAll(raw, 0o755); err != nil {
		return err
	}
	r := &Report{
		Generated:   time.Now().UTC().Format(time.RFC3339),
		GoVersion:   runtime.Version(),
		Host:        Host{GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, NumCPU: runtime.NumCPU()},
		Prices:      listPrices,
		Assumptions: assumptions,
	}
	started := time.Now()
	for _, s := range suites {
		out := filepath.Join(raw, s.name+".json")
		if !reuse {
			if err := runSuite(s, out); err != nil {
				r.Errors = append(r.Errors, fmt.Sprintf("suite %s: %v", s.name, err))
			}
		}
		f, err := os.Open(out)
		if err != nil {
			r.Errors = append(r.Errors, fmt.Sprintf("suite %s: %v", s.name, err))
			continue
		}
		res, err := parseTestJSON(f, module)
		f.Close()
		if err != nil {
			r.Errors = append(r.Errors, fmt.Sprintf("suite %s: %v", s.name, err))
		}
		for _, p := range res.Failed {
			r.Errors = append(r.Errors, fmt.Sprintf("suite %s: package %s failed (see %s)", s.name, p, out))
		}
		if r.Host.CPU == "" {
			r.Host.CPU = res.CPU
		}
		r.Benchmarks = append(r.Benchmarks, res.Benchmarks...)
	}

	bins, err := binaries(dir)
	if err != nil {
		r.Errors = append(r.Errors, err.Error())
	}
	cold := filepath.Join(raw, "coldstart.json")
	if !reuse && len(bins) > 0 {
		if err := runColdstart(bins, dir, n, cold); err != nil {
			r.Errors = append(r.Errors, fmt.Sprintf("coldstart: %v", err))
		}
	}
	if err := r.fillBinaries(bins, dir, cold); err != nil {
		r.Errors = append(r.Errors, err.Error())
	}

	if b, ok := find(r.Benchmarks, policyPackage, policyBench); ok {
		d, err := decisionOf(b)
		if err != nil {
			r.Errors = append(r.Errors, err.Error())
		}
		r.Decision = &d
	} else {
		r.Errors = append(r.Errors, fmt.Sprintf("%s %s did not run", policyPackage, policyBench))
	}
	r.Throughput = throughputs(r.Benchmarks)
	mixes, fixed, err := costInputs(r.Benchmarks)
	if err != nil {
		r.Errors = append(r.Errors, err.Error())
	}
	r.Mixes = mixes
	if fixed.CleanupRunsPerMonth > 0 {
		r.Fixed = &fixed
	}
	r.fillCosts()

	if err := r.write(dir); err != nil {
		return err
	}
	fmt.Printf("benchreport: wrote %s in %v\n", filepath.Join(dir, "report.md"), time.Since(started).Round(time.Second))
	for _, c := range r.Costs {
		fmt.Printf("  %-10s %8s per million pushes\n", c.Mix, money(c.USDPerMillion))
	}
	if len(r.Errors) > 0 {
		return fmt.Errorf("the report is incomplete:\n  %s", strings.Join(r.Errors, "\n  "))
	}
	return nil
}

// modulePath reads the module path from go.mod in the working directory,
// which must be the repository root.
func modulePath() (string, error) {
	b, err := os.ReadFile("go.mod")
	if err != nil {
		return "", fmt.Errorf("run from the repository root: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if m, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			return strings.TrimSpace(m), nil
		}
	}
	return "", fmt.Errorf("go.mod names no module")
}

// runSuite runs one suite's benchmarks, writing go test's JSON to out and
// its progress to standard error.
func runSuite(s suite, out string) error {
	args := append([]string{"test", "-run", "^$", "-bench", s.bench, "-benchmem", "-benchtime", s.benchtime, "-timeout", "20m", "-json"}, s.pkgs...)
	fmt.Fprintf(os.Stderr, "benchreport: go %s\n", strings.Join(args, " "))
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command("go", args...)
	cmd.Stdout = io.MultiWriter(f, &progress{w: os.Stderr})
	cmd.Stderr = os.Stderr
	return cmd.Run()
}

// progress echoes go test's own output from its JSON events as they
// arrive, so that a long run shows where it is.
type progress struct {
	w   io.Writer
	buf bytes.Buffer
}

func (p *progress) Write(b []byte) (int, error) {
	p.buf.Write(b)
	for {
		line, err := p.buf.ReadBytes('\n')
		if err != nil {
			p.buf.Write(line) // incomplete; wait for the rest
			return len(b), nil
		}
		var ev testEvent
		if json.Unmarshal(line, &ev) == nil && ev.Action == "output" {
			fmt.Fprint(p.w, ev.Output)
		}
	}
}

// binaries lists the names of the host builds under dir/bin, the baseline
// first.
func binaries(dir string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(dir, "bin"))
	if err != nil {
		return nil, fmt.Errorf("binaries: %w (the Makefile's bench target builds them)", err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	sort.Slice(names, func(i, j int) bool {
		if (names[i] == baseline) != (names[j] == baseline) {
			return names[i] == baseline
		}
		return names[i] < names[j]
	})
	return names, nil
}

// Placeholder configuration for the start-up runs: every constructor needs
// names, not reachable resources, to get as far as lambda.Start, and
// scripts/coldstart passes its own environment on.
var coldstartEnv = func() []string {
	env := []string{
		"QUEUE_URL=https://sqs.us-east-1.amazonaws.com/123456789012/coldstart",
		"DEAD_LETTER_QUEUE_URL=https://sqs.us-east-1.amazonaws.com/123456789012/coldstart-dlq",
		"MAX_RECEIVE_COUNT=5",
	}
	for _, v := range []string{"APNS", "FCM", "HUAWEI", "HONOR", "XIAOMI", "OPPO", "VIVO", "MEIZU"} {
		env = append(env, v+"_QUEUE_URL=https://sqs.us-east-1.amazonaws.com/123456789012/coldstart-"+strings.ToLower(v))
	}
	return env
}()

// runColdstart measures the start-up of every host binary with
// scripts/coldstart, writing its JSON to out.
func runColdstart(names []string, dir string, n int, out string) error {
	args := []string{"run", "./scripts/coldstart", "-n", fmt.Sprint(n), "-json", out}
	for _, name := range names {
		args = append(args, name+"="+filepath.Join(dir, "bin", name))
	}
	fmt.Fprintf(os.Stderr, "benchreport: go run ./scripts/coldstart -n %d over %d binaries\n", n, len(names))
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), coldstartEnv...)
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	return cmd.Run()
}

// coldResult is one entry of scripts/coldstart's JSON.
type coldResult struct {
	Name       string  `json:"name"`
	SizeBytes  int64   `json:"sizeBytes"`
	Runs       int     `json:"runs"`
	MedianMs   float64 `json:"medianMs"`
	P90Ms      float64 `json:"p90Ms"`
	MinMs      float64 `json:"minMs"`
	FailedRuns int     `json:"failedRuns"`
}

// fillBinaries records each binary's sizes and start-up times.
func (r *Report) fillBinaries(names []string, dir, cold string) error {
	byName := map[string]coldResult{}
	var coldErr error
	if b, err := os.ReadFile(cold); err == nil {
		var rs []coldResult
		if err := json.Unmarshal(b, &rs); err != nil {
			coldErr = fmt.Errorf("coldstart results %s: %w", cold, err)
		}
		for _, c := range rs {
			byName[c.Name] = c
		}
	} else if len(names) > 0 {
		coldErr = fmt.Errorf("coldstart results: %w", err)
	}
	for _, name := range names {
		b := Binary{Name: name}
		if st, err := os.Stat(filepath.Join(dir, "bin", name)); err == nil {
			b.HostBytes = st.Size()
		}
		if st, err := os.Stat(filepath.Join(dir, "arm64", name)); err == nil {
			b.Arm64Bytes = st.Size()
		}
		if c, ok := byName[name]; ok {
			b.StartMedianMs, b.StartP90Ms, b.StartMinMs, b.Runs, b.FailedRuns = c.MedianMs, c.P90Ms, c.MinMs, c.Runs, c.FailedRuns
		}
		r.Binaries = append(r.Binaries, b)
	}
	return coldErr
}

// write writes report.json, report.md and the charts into dir.
func (r *Report) write(dir string) error {
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	files := map[string]string{
		"report.json": string(js) + "\n",
		"report.md":   r.markdown(),
		"cost.svg": chartSVG("Cost per million pushes, by service (USD)", r.costBars(), func(v float64) string {
			return money(v)
		}),
		"throughput.svg": chartSVG("Dispatch: sends per CPU-second against each vendor's emulator", r.throughputBars(), num),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}
