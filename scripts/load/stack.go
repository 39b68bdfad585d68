package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Bounds of the local stack's life.
const (
	readyDeadline = 3 * time.Minute
	stopGrace     = 30 * time.Second
	// maxLine bounds one output line of the local stack; a receipt or a
	// log line is far smaller.
	maxLine = 1 << 20
)

// modulePath identifies the repository root.
const modulePath = "github.com/offline-push/offline-push"

// findRoot returns the repository root: the nearest directory at or above
// dir whose go.mod declares this module.
func findRoot(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && strings.HasPrefix(string(b), "module "+modulePath+"\n") {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod of %s at or above %s", modulePath, dir)
		}
	}
}

// buildStack compiles the local stack into dir and returns the binary.
func buildStack(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "localstack")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./scripts/localstack")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build the local stack: %w\n%s", err, out)
	}
	return bin, nil
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// receipt is one line an emulator printed on the local stack's standard
// output, with the time this tool read it.
type receipt struct {
	Line string
	At   time.Time
}

// stack is a running local stack process. Its standard output (the
// "ready" line and the emulators' receipts) and standard error (its JSON
// logs and metric lines) are read as they come, kept in files under the
// log directory for the scan, and the receipts and metric lines also in
// memory.
type stack struct {
	URL string

	cmd     *exec.Cmd
	ready   chan struct{}
	exited  chan struct{}
	waitErr error
	readers sync.WaitGroup

	mu       sync.Mutex
	receipts []receipt
	tally    map[string]map[string]int // metric lines (EMF) summed, by namespace
	readErr  error

	StdoutLog, StderrLog string
}

// startStack starts the local stack binary with env added to this
// process's environment minus its AWS endpoint settings, and returns once
// it printed "ready".
func startStack(ctx context.Context, bin, root, logDir string, env map[string]string) (*stack, error) {
	s := &stack{
		URL:       "http://" + env["PUSH_LOCAL_ADDR"],
		ready:     make(chan struct{}),
		exited:    make(chan struct{}),
		tally:     map[string]map[string]int{},
		StdoutLog: filepath.Join(logDir, "localstack.stdout.log"),
		StderrLog: filepath.Join(logDir, "localstack.stderr.log"),
	}
	s.cmd = exec.Command(bin)
	s.cmd.Dir = root
	s.cmd.Env = stackEnv(os.Environ(), env)
	s.cmd.SysProcAttr = childAttr()
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	outFile, err := os.OpenFile(s.StdoutLog, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	errFile, err := os.OpenFile(s.StderrLog, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		outFile.Close()
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		outFile.Close()
		errFile.Close()
		return nil, fmt.Errorf("start the local stack: %w", err)
	}
	s.readers.Add(2)
	go s.read(stdout, outFile, s.onStdout)
	go s.read(stderr, errFile, s.onStderr)
	go func() {
		// Wait closes the pipes, so the readers must be done first.
		s.readers.Wait()
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	deadline := time.NewTimer(readyDeadline)
	defer deadline.Stop()
	select {
	case <-s.ready:
		return s, nil
	case <-s.exited:
		return nil, fmt.Errorf("the local stack exited before it was ready (%v); its log: %s", s.waitErr, s.StderrLog)
	case <-deadline.C:
		err = fmt.Errorf("the local stack was not ready within %s; its log: %s", readyDeadline, s.StderrLog)
	case <-ctx.Done():
		err = ctx.Err()
	}
	return nil, errors.Join(err, s.stop())
}

// stackEnv is base without any AWS endpoint or profile setting, plus add.
func stackEnv(base []string, add map[string]string) []string {
	var out []string
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AWS_ENDPOINT_URL") || k == "AWS_PROFILE" || strings.HasPrefix(k, "PUSH_LOCAL_") {
			continue
		}
		if _, ok := add[k]; ok {
			continue
		}
		out = append(out, kv)
	}
	for k, v := range add {
		out = append(out, k+"="+v)
	}
	return out
}

// read copies r line by line to file, handing each line to on, until EOF.
func (s *stack) read(r io.Reader, file *os.File, on func(string, time.Time)) {
	defer s.readers.Done()
	w := bufio.NewWriter(file)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	for sc.Scan() {
		line := sc.Text()
		on(line, time.Now())
		w.WriteString(line)
		w.WriteByte('\n')
	}
	err := errors.Join(sc.Err(), w.Flush(), file.Close())
	if err != nil {
		s.mu.Lock()
		s.readErr = errors.Join(s.readErr, err)
		s.mu.Unlock()
		// Keep the pipe drained so the stack never blocks on a write.
		io.Copy(io.Discard, r)
	}
}

func (s *stack) onStdout(line string, at time.Time) {
	if line == "ready" {
		select {
		case <-s.ready:
		default:
			close(s.ready)
		}
		return
	}
	if strings.TrimSpace(line) == "" {
		return
	}
	s.mu.Lock()
	s.receipts = append(s.receipts, receipt{Line: line, At: at})
	s.mu.Unlock()
}

// onStderr sums the metric lines (CloudWatch Embedded Metric Format) per
// namespace: the service's own counts of decisions and outcomes, shown next
// to the counts this tool makes from outside.
func (s *stack) onStderr(line string, _ time.Time) {
	if !strings.Contains(line, `"_aws"`) {
		return
	}
	var doc map[string]json.RawMessage
	if json.Unmarshal([]byte(line), &doc) != nil {
		return
	}
	var meta struct {
		CloudWatchMetrics []struct {
			Namespace string
			Metrics   []struct{ Name string }
		}
	}
	if json.Unmarshal(doc["_aws"], &meta) != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, set := range meta.CloudWatchMetrics {
		t := s.tally[set.Namespace]
		if t == nil {
			t = map[string]int{}
			s.tally[set.Namespace] = t
		}
		for _, m := range set.Metrics {
			var n int
			if json.Unmarshal(doc[m.Name], &n) == nil {
				t[m.Name] += n
			}
		}
	}
}

// receiptsSoFar returns a copy of the receipts read so far.
func (s *stack) receiptsSoFar() []receipt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]receipt(nil), s.receipts...)
}

// stackTally returns a copy of the summed metrics of one namespace.
func (s *stack) stackTally(namespace string) map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.tally[namespace]))
	for k, v := range s.tally[namespace] {
		out[k] = v
	}
	return out
}

// stop asks the stack to stop (SIGTERM: it finishes the invocations in
// flight and stops what it started), kills it if it does not within
// stopGrace, and waits until it is reaped and its output is read to the
// end. It reports an exit that was not the clean one SIGTERM asks for.
func (s *stack) stop() error {
	select {
	case <-s.exited:
		return fmt.Errorf("the local stack had exited on its own (%v); its log: %s", s.waitErr, s.StderrLog)
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal the local stack: %w", err)
	}
	grace := time.NewTimer(stopGrace)
	defer grace.Stop()
	select {
	case <-s.exited:
	case <-grace.C:
		s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("the local stack did not stop within %s of SIGTERM and was killed", stopGrace)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.waitErr, s.readErr)
}
