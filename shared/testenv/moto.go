package testenv

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Limits of the moto launcher. The start deadline is generous because the
// machine is shared and Python imports moto's whole service catalogue before
// it listens; the poll interval only bounds how late we notice it is up.
const (
	startDeadline = 30 * time.Second
	pollInterval  = 25 * time.Millisecond
	stopGrace     = 5 * time.Second
	bindAttempts  = 5
	outputLimit   = 64 << 10
)

// errPortTaken reports that moto_server lost the race for the port we picked
// for it: between closing our probe listener and moto binding the port,
// another process took it.
var errPortTaken = errors.New("port taken before moto_server could bind it")

// Server is a moto_server child process of this test binary. Its zero value
// is not usable; get one from StartMoto or Moto.
type Server struct {
	// Endpoint is the emulator's base URL, http://127.0.0.1:PORT.
	Endpoint string

	cmd    *exec.Cmd
	out    *tailBuffer
	exited chan struct{} // closed when the process has been reaped
	err    error         // Wait's result, readable once exited is closed

	stopOnce sync.Once
	stopErr  error
}

// StartMoto starts a moto_server on a free loopback port and returns once it
// answers HTTP requests. It is meant for TestMain, where one emulator serves
// a whole test package; the caller must call Stop. The server's output is
// kept in memory (see Output) rather than written to the test's stdout.
func StartMoto() (*Server, error) {
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		return nil, fmt.Errorf("moto_server is not on PATH (install moto[server]: pip install 'moto[server]'): %w", err)
	}
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s, err := startMoto(bin, port)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, errPortTaken) || attempt == bindAttempts {
			return nil, err
		}
	}
}

// Moto starts a moto_server for one test and stops it when the test ends.
func Moto(t testing.TB) *Server {
	t.Helper()
	s, err := StartMoto()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// startMoto makes one attempt at starting moto_server on a port that was free
// a moment ago. It returns errPortTaken if the port is no longer free.
func startMoto(bin string, port int) (*Server, error) {
	s := &Server{
		Endpoint: "http://127.0.0.1:" + strconv.Itoa(port),
		out:      &tailBuffer{limit: outputLimit},
		exited:   make(chan struct{}),
	}
	s.cmd = exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	s.cmd.Env = motoEnv(os.Environ())
	s.cmd.Stdout = s.out
	s.cmd.Stderr = s.out
	s.cmd.SysProcAttr = sysProcAttr()
	// If something outside the process group still holds the output pipe,
	// Wait gives up on it instead of hanging the test binary.
	s.cmd.WaitDelay = stopGrace
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start moto_server: %w", err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(); err != nil {
		// Best effort: the process may already be gone, and the error that
		// matters is the one that made it unusable.
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

// waitReady polls the endpoint until moto answers, the process exits, or the
// start deadline passes. Any HTTP answer counts: moto only answers once all
// its services are loaded. The process must still be alive afterwards, so
// that an answer from someone else's server on a port we lost is not taken
// for ours.
func (s *Server) waitReady() error {
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	deadline := time.NewTimer(startDeadline)
	defer deadline.Stop()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		select {
		case <-s.exited:
			out := s.out.String()
			if strings.Contains(out, "in use") {
				return fmt.Errorf("moto_server on %s: %w", s.Endpoint, errPortTaken)
			}
			return fmt.Errorf("moto_server exited before answering (%v); its output:\n%s", s.err, out)
		case <-deadline.C:
			return fmt.Errorf("moto_server did not answer on %s within %v; its output:\n%s", s.Endpoint, startDeadline, s.out.String())
		case <-tick.C:
		}
		resp, err := client.Get(s.Endpoint + "/moto-api/")
		if err != nil {
			continue
		}
		resp.Body.Close()
		select {
		case <-s.exited:
			continue // reported by the next turn of the loop
		default:
			return nil
		}
	}
}

// Stop terminates the server through its own process handle: SIGTERM to its
// process group, SIGKILL if it is still there after a grace period, then it
// is reaped. It returns an error only if the server had died on its own
// before being asked to stop, which means the tests ran against a crashed
// emulator. Calling Stop again returns the same result.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() { s.stopErr = s.stop() })
	return s.stopErr
}

func (s *Server) stop() error {
	pgid := s.cmd.Process.Pid // Setpgid makes the child its group's leader.
	select {
	case <-s.exited:
		// Whatever it spawned may still be there.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		return fmt.Errorf("moto_server at %s had already exited (%v); its output:\n%s", s.Endpoint, s.err, s.out.String())
	default:
	}
	if err := syscall.Kill(-pgid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal moto_server: %w", err)
	}
	grace := time.NewTimer(stopGrace)
	defer grace.Stop()
	select {
	case <-s.exited:
	case <-grace.C:
		if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("kill moto_server: %w", err)
		}
		<-s.exited
	}
	// Children that ignored SIGTERM outlive their leader; the group id
	// still reaches them.
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill moto_server's children: %w", err)
	}
	return nil
}

// motoEnv is the environment moto_server runs with: the test's, minus the
// developer's AWS settings (moto runs botocore, which would otherwise load
// their profile and fail on a missing one), with unbuffered Python output so
// that a crash's traceback reaches Output.
func motoEnv(environ []string) []string {
	env := make([]string, 0, len(environ)+3)
	for _, kv := range environ {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return append(env,
		"AWS_CONFIG_FILE="+os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE="+os.DevNull,
		"PYTHONUNBUFFERED=1",
	)
}

// Output returns the tail of what moto_server has written so far: its
// start-up messages, one line per request, and any Python traceback. Tests
// show it when something fails.
func (s *Server) Output() string { return s.out.String() }

// freePort asks the kernel for a loopback port nobody listens on. The port is
// released before moto binds it, so another process can take it in between;
// StartMoto retries when that happens.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tailBuffer keeps the last limit bytes written to it. moto logs every
// request, so a long test run would otherwise hold all of them in memory.
// It trims only when it holds twice the limit, so that each byte is copied a
// bounded number of times.
type tailBuffer struct {
	mu    sync.Mutex
	limit int
	buf   []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > 2*b.limit {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-b.limit:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf[max(0, len(b.buf)-b.limit):])
}
