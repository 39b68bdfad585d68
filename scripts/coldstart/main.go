// Command coldstart measures how long a Lambda binary takes from exec to its
// first request for work: the moment lambda.Start asks the runtime API for
// the next invocation. Everything a cold start pays for before that (Go
// runtime init, package init, the app constructor reading config and
// building clients) is inside the figure; network calls a real container
// would make later are not.
//
// It serves a minimal Lambda runtime API on a free loopback port, execs each
// binary n times with AWS_LAMBDA_RUNTIME_API pointing at it, and records the
// time of the first GET .../invocation/next. It then stops the process
// through its handle.
//
// Usage: go run ./scripts/coldstart [-n 20] [-json out.json] name=path/to/bootstrap ...
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
)

// Result is one binary's measurement.
type Result struct {
	Name       string  `json:"name"`
	Path       string  `json:"path"`
	SizeBytes  int64   `json:"sizeBytes"`
	Runs       int     `json:"runs"`
	MedianMs   float64 `json:"medianMs"`
	P90Ms      float64 `json:"p90Ms"`
	MinMs      float64 `json:"minMs"`
	Note       string  `json:"note"`
	FailedRuns int     `json:"failedRuns"`
}

func main() {
	n := flag.Int("n", 20, "runs per binary")
	out := flag.String("json", "", "write results as JSON to this file")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: coldstart [-n runs] [-json file] name=path ...")
		os.Exit(2)
	}

	rt, err := newRuntimeAPI()
	if err != nil {
		fmt.Fprintln(os.Stderr, "coldstart:", err)
		os.Exit(1)
	}
	defer rt.close()

	var results []Result
	for _, arg := range flag.Args() {
		name, path, ok := strings.Cut(arg, "=")
		if !ok {
			name, path = arg, arg
		}
		r, err := measure(rt, name, path, *n)
		if err != nil {
			fmt.Fprintln(os.Stderr, "coldstart:", name+":", err)
			os.Exit(1)
		}
		results = append(results, r)
	}

	fmt.Printf("%-20s %12s %10s %10s %10s\n", "binary", "size", "median", "p90", "min")
	for _, r := range results {
		fmt.Printf("%-20s %10.1f MB %8.2f ms %8.2f ms %8.2f ms\n", r.Name, float64(r.SizeBytes)/1e6, r.MedianMs, r.P90Ms, r.MinMs)
	}
	if *out != "" {
		b, _ := json.MarshalIndent(results, "", "  ")
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "coldstart:", err)
			os.Exit(1)
		}
	}
}

func measure(rt *runtimeAPI, name, path string, n int) (Result, error) {
	st, err := os.Stat(path)
	if err != nil {
		return Result{}, err
	}
	res := Result{Name: name, Path: path, SizeBytes: st.Size(), Note: "host build (" + runtime.GOOS + "/" + runtime.GOARCH + ")"}
	var ms []float64
	for i := 0; i < n; i++ {
		d, err := once(rt, path)
		if err != nil {
			res.FailedRuns++
			if res.FailedRuns > n/2 {
				return res, err
			}
			continue
		}
		ms = append(ms, float64(d.Microseconds())/1000)
	}
	sort.Float64s(ms)
	res.Runs = len(ms)
	if len(ms) > 0 {
		res.MinMs = ms[0]
		res.MedianMs = ms[len(ms)/2]
		res.P90Ms = ms[(len(ms)*9)/10]
	}
	return res, nil
}

// once runs the binary until it asks for its first invocation.
func once(rt *runtimeAPI, path string) (time.Duration, error) {
	cmd := exec.Command(path)
	// Placeholder configuration: the constructors need names, not reachable
	// resources, to get as far as lambda.Start.
	cmd.Env = append(os.Environ(),
		"AWS_LAMBDA_RUNTIME_API="+rt.addr,
		"AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=coldstart",
		"AWS_SECRET_ACCESS_KEY=coldstart",
		"AWS_LAMBDA_FUNCTION_NAME=coldstart",
		"STATE_TABLE=coldstart-state",
		"REQUEST_TABLE=coldstart-request",
		"SECRET_PREFIX=coldstart",
		"AWS_EC2_METADATA_DISABLED=true",
	)
	wait := rt.expect()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case at := <-wait:
		_ = cmd.Process.Kill()
		<-exited
		return at.Sub(start), nil
	case err := <-exited:
		return 0, fmt.Errorf("exited before lambda.Start: %v", err)
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		return 0, fmt.Errorf("no request for work within 30 s")
	}
}

// runtimeAPI answers just enough of the Lambda runtime API to see the first
// request for work; it holds that request open, as the real one does.
type runtimeAPI struct {
	addr string
	srv  *http.Server
	mu   sync.Mutex
	next chan time.Time
	hold chan struct{}
}

func newRuntimeAPI() (*runtimeAPI, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	rt := &runtimeAPI{addr: ln.Addr().String(), hold: make(chan struct{})}
	rt.srv = &http.Server{Handler: http.HandlerFunc(rt.serve), ReadHeaderTimeout: 5 * time.Second}
	go rt.srv.Serve(ln)
	return rt, nil
}

func (rt *runtimeAPI) expect() <-chan time.Time {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.next = make(chan time.Time, 1)
	return rt.next
}

func (rt *runtimeAPI) serve(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.URL.Path, "/invocation/next") {
		now := time.Now()
		rt.mu.Lock()
		ch := rt.next
		rt.mu.Unlock()
		if ch != nil {
			select {
			case ch <- now:
			default:
			}
		}
		select {
		case <-rt.hold:
		case <-r.Context().Done():
		}
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (rt *runtimeAPI) close() {
	close(rt.hold)
	_ = rt.srv.Close()
}
