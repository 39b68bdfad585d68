package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// emulator is a moto_server child process.
type emulator struct {
	endpoint string
	cmd      *exec.Cmd
	out      *tail
	exited   chan struct{} // closed once the process has been reaped
	waitErr  error
}

// startMoto starts moto_server on addr and returns once it answers. It
// refuses to start when addr is taken, since the answers would then come
// from whatever holds the port.
func startMoto(ctx context.Context, log *slog.Logger, addr string) (*emulator, error) {
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		return nil, fmt.Errorf("moto_server is not on PATH (pip install 'moto[server]', or set AWS_ENDPOINT_URL to a running emulator): %w", err)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("emulator address %q: %w", addr, err)
	}
	if ln, err := net.Listen("tcp", addr); err != nil {
		return nil, fmt.Errorf("%s is in use: stop what listens there, or set AWS_ENDPOINT_URL to use it: %w", addr, err)
	} else {
		ln.Close()
	}
	e := &emulator{endpoint: "http://" + addr, out: &tail{max: 16 << 10}, exited: make(chan struct{})}
	e.cmd = exec.Command(bin, "-H", host, "-p", port)
	e.cmd.Stdout, e.cmd.Stderr = e.out, e.out
	e.cmd.SysProcAttr = childAttr()
	if err := e.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start moto_server: %w", err)
	}
	go func() {
		e.waitErr = e.cmd.Wait()
		close(e.exited)
	}()
	if err := e.waitAnswering(ctx); err != nil {
		e.stop()
		return nil, err
	}
	log.Info("AWS emulator started", "endpoint", e.endpoint, "pid", e.cmd.Process.Pid)
	return e, nil
}

func (e *emulator) waitAnswering(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.endpoint+"/moto-api/", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-e.exited:
			return fmt.Errorf("moto_server exited at start (%v): %s", e.waitErr, e.out.String())
		case <-ctx.Done():
			return fmt.Errorf("moto_server did not answer on %s: %w", e.endpoint, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop ends the emulator through its process handle, SIGTERM first and
// SIGKILL after a grace period, and waits until it has been reaped.
func (e *emulator) stop() error {
	select {
	case <-e.exited:
		return nil // e.g. ^C reached it directly: it shares our process group
	default:
	}
	if err := e.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop moto_server: %w", err)
	}
	select {
	case <-e.exited:
		return nil
	case <-time.After(5 * time.Second):
	}
	if err := e.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill moto_server: %w", err)
	}
	<-e.exited
	return nil
}

// tail keeps the last max bytes written to it: the emulator's output, shown
// only when it fails.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
