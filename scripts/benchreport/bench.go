package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Benchmark is one benchmark result line of `go test -bench`.
type Benchmark struct {
	// Package is the import path relative to the module ("shared/policy").
	Package string `json:"package"`
	// Name is the benchmark's name without the GOMAXPROCS suffix
	// ("BenchmarkCost/peer").
	Name  string `json:"name"`
	Procs int    `json:"procs"`
	N     int    `json:"iterations"`
	// Metrics maps each unit to its value: ns/op, B/op, allocs/op and every
	// b.ReportMetric.
	Metrics map[string]float64 `json:"metrics"`
}

// Run is what one `go test -json` run printed, parsed.
type Run struct {
	Benchmarks []Benchmark `json:"-"`
	// CPU is the "cpu:" line go test prints (the host's processor).
	CPU string `json:"cpu"`
	// Failed lists the packages that failed or did not build.
	Failed []string `json:"failed"`
}

// testEvent is one line of `go test -json` (cmd/test2json).
type testEvent struct {
	Action  string
	Package string
	Test    string
	Output  string
}

var (
	benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-(\d+))?\s+(\d+)\s+(\S.*)$`)
	// metricPair is one "value unit" of a result line.
	metricPair = regexp.MustCompile(`([-+0-9.eE]+)\s+(\S+)`)
)

// parseTestJSON reads the output of `go test -json -bench` and returns its
// benchmark results. The output of each package is put back together
// before it is split into lines, since test2json may cut a result line
// into several events. module is the module path to strip from package
// paths.
func parseTestJSON(r io.Reader, module string) (Run, error) {
	var run Run
	outputs := map[string]*bytes.Buffer{}
	var order []string
	failed := map[string]bool{}
	dec := json.NewDecoder(r)
	for {
		var ev testEvent
		err := dec.Decode(&ev)
		if err == io.EOF {
			break
		}
		if err != nil {
			return run, fmt.Errorf("go test -json output: %w", err)
		}
		if ev.Action == "fail" && ev.Test == "" {
			failed[ev.Package] = true
		}
		if ev.Action != "output" {
			continue
		}
		b, ok := outputs[ev.Package]
		if !ok {
			b = &bytes.Buffer{}
			outputs[ev.Package] = b
			order = append(order, ev.Package)
		}
		b.WriteString(ev.Output)
	}
	for _, pkg := range order {
		rel := strings.TrimPrefix(strings.TrimPrefix(pkg, module), "/")
		sc := bufio.NewScanner(outputs[pkg])
		sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if cpu, ok := strings.CutPrefix(line, "cpu: "); ok && run.CPU == "" {
				run.CPU = cpu
				continue
			}
			if b, ok := parseBenchLine(line); ok {
				b.Package = rel
				run.Benchmarks = append(run.Benchmarks, b)
			}
		}
		if err := sc.Err(); err != nil {
			return run, fmt.Errorf("output of %s: %w", pkg, err)
		}
	}
	for pkg := range failed {
		run.Failed = append(run.Failed, strings.TrimPrefix(strings.TrimPrefix(pkg, module), "/"))
	}
	sort.Strings(run.Failed)
	return run, nil
}

// parseBenchLine parses "BenchmarkX/y-2  3  123 ns/op  4.0 unit ...".
func parseBenchLine(line string) (Benchmark, bool) {
	m := benchLine.FindStringSubmatch(line)
	if m == nil {
		return Benchmark{}, false
	}
	n, err := strconv.Atoi(m[3])
	if err != nil {
		return Benchmark{}, false
	}
	b := Benchmark{Name: m[1], N: n, Metrics: map[string]float64{}}
	if m[2] != "" {
		b.Procs, _ = strconv.Atoi(m[2])
	}
	for _, pair := range metricPair.FindAllStringSubmatch(m[4], -1) {
		v, err := strconv.ParseFloat(pair[1], 64)
		if err != nil {
			return Benchmark{}, false
		}
		b.Metrics[pair[2]] = v
	}
	if len(b.Metrics) == 0 {
		return Benchmark{}, false
	}
	return b, true
}

// find returns the benchmark of pkg named name.
func find(bs []Benchmark, pkg, name string) (Benchmark, bool) {
	for _, b := range bs {
		if b.Package == pkg && b.Name == name {
			return b, true
		}
	}
	return Benchmark{}, false
}

// metricReader reads the named units of a benchmark and remembers those
// missing.
type metricReader struct {
	b       Benchmark
	missing []string
}

func (r *metricReader) get(unit string) float64 {
	v, ok := r.b.Metrics[unit]
	if !ok {
		r.missing = append(r.missing, unit)
	}
	return v
}

func (r *metricReader) err() error {
	if len(r.missing) == 0 {
		return nil
	}
	return fmt.Errorf("%s %s: missing metrics %s", r.b.Package, r.b.Name, strings.Join(r.missing, ", "))
}
