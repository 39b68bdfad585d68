//go:build unix

package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/google/go-cmp/cmp"

	"github.com/offline-push/offline-push/shared/push"
	"github.com/offline-push/offline-push/shared/testenv"
)

// moto is the emulator the tests of this package share.
var moto *testenv.Server

func TestMain(m *testing.M) {
	s, err := testenv.StartMoto()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	moto = s
	code := m.Run()
	if err := s.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop moto:", err)
	}
	os.Exit(code)
}

func discardLog() *slog.Logger { return slog.New(slog.NewJSONHandler(io.Discard, nil)) }

// TestLoadSecrets loads a configuration twice, the second time with other
// values: both runs succeed and the second one's values and tags win.
func TestLoadSecrets(t *testing.T) {
	sm := secretsmanager.NewFromConfig(testenv.AWSConfig(moto.Endpoint))
	const prefix = "load-secrets-test"
	for _, secret := range []string{"first", "second"} {
		c := &localConfig{Apps: map[string]localApp{"demo": {
			APISecrets: []string{secret},
			Vendors:    map[string]map[string]any{"cert1": {"vendor": "vivo", "appId": secret}},
		}}}
		creds, err := c.credentials()
		if err != nil {
			t.Fatal(err)
		}
		if err := loadSecrets(t.Context(), sm, prefix, c, creds); err != nil {
			t.Fatalf("load %s: %v", secret, err)
		}
		api, err := sm.GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(prefix + "/demo/api")})
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"apiSecrets":["` + secret + `"]}`; aws.ToString(api.SecretString) != want {
			t.Errorf("api secret = %s, want %s", aws.ToString(api.SecretString), want)
		}
		vendor, err := sm.GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(prefix + "/demo/vendors/cert1")})
		if err != nil {
			t.Fatal(err)
		}
		var fields map[string]any
		if err := json.Unmarshal([]byte(aws.ToString(vendor.SecretString)), &fields); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[string]any{"vendor": "vivo", "appId": secret}, fields); diff != "" {
			t.Errorf("vendor secret (-want +got):\n%s", diff)
		}
		desc, err := sm.DescribeSecret(t.Context(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(prefix + "/demo/vendors/cert1")})
		if err != nil {
			t.Fatal(err)
		}
		if len(desc.Tags) != 1 || aws.ToString(desc.Tags[0].Key) != "vendor" || aws.ToString(desc.Tags[0].Value) != "vivo" {
			t.Errorf("tags = %v, want vendor=vivo", desc.Tags)
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestStartMoto starts the emulator as `make run` does, on a free port here,
// and stops it: the process must be gone, not merely told to go.
func TestStartMoto(t *testing.T) {
	e, err := startMoto(t.Context(), discardLog(), freeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	pid := e.cmd.Process.Pid
	resp, err := http.Get(e.endpoint + "/moto-api/")
	if err != nil {
		t.Fatalf("emulator does not answer: %v", err)
	}
	resp.Body.Close()
	if err := e.stop(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("kill(%d, 0) after stop = %v, want ESRCH", pid, err)
	}
	if err := e.stop(); err != nil {
		t.Errorf("second stop: %v", err)
	}
}

func TestStartMotoRefusesATakenAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := startMoto(t.Context(), discardLog(), ln.Addr().String()); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("got %v, want an 'in use' error", err)
	}
}

// localProcess is the local stack binary running in its own process group.
type localProcess struct {
	cmd       *exec.Cmd
	ready     chan struct{} // closed when "ready" is printed
	readyOnce sync.Once
	// listening is closed when the log tells the API's URL; stdout and
	// stderr are read apart, so it may come after ready.
	listening chan struct{}
	urlOnce   sync.Once
	exited    chan struct{} // closed once reaped, with waitErr
	// waitErr is cmd.Wait's result.
	waitErr error

	mu     sync.Mutex
	stdout []string
	stderr []string
	url    string // from the "HTTP API listening" log line
}

// startLocal builds the local stack and runs it from the repository root
// against the test's emulator, the API on a free port.
func startLocal(t *testing.T, env ...string) *localProcess {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "localstack")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	p := &localProcess{ready: make(chan struct{}), listening: make(chan struct{}), exited: make(chan struct{})}
	p.cmd = exec.Command(bin)
	p.cmd.Dir = filepath.Join("..", "..")
	p.cmd.Env = append(os.Environ(), append([]string{"AWS_ENDPOINT_URL=" + moto.Endpoint, "PUSH_LOCAL_ADDR=127.0.0.1:0"}, env...)...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := p.cmd.Process.Pid
	t.Cleanup(func() {
		// Only if the test failed before stopping it: end the group we made.
		select {
		case <-p.exited:
		default:
			syscall.Kill(-pgid, syscall.SIGKILL)
			<-p.exited
		}
		if t.Failed() {
			p.mu.Lock()
			t.Logf("local stack stderr:\n%s", strings.Join(p.stderr, "\n"))
			p.mu.Unlock()
		}
	})
	var pipes sync.WaitGroup
	pipes.Add(2)
	go func() {
		defer pipes.Done()
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			p.mu.Lock()
			p.stdout = append(p.stdout, s.Text())
			p.mu.Unlock()
			if s.Text() == "ready" {
				p.readyOnce.Do(func() { close(p.ready) })
			}
		}
	}()
	go func() {
		defer pipes.Done()
		s := bufio.NewScanner(stderr)
		for s.Scan() {
			var line struct{ Msg, URL string }
			json.Unmarshal(s.Bytes(), &line)
			p.mu.Lock()
			p.stderr = append(p.stderr, s.Text())
			if line.Msg == "HTTP API listening" {
				p.url = line.URL
				p.urlOnce.Do(func() { close(p.listening) })
			}
			p.mu.Unlock()
		}
	}()
	go func() {
		pipes.Wait() // the pipes must be drained before Wait closes them
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	deadline := time.After(2 * time.Minute)
	for _, c := range []chan struct{}{p.ready, p.listening} {
		select {
		case <-c:
		case <-p.exited:
			t.Fatalf("local stack exited before it was ready: %v", p.waitErr)
		case <-deadline:
			t.Fatal("local stack not ready after 2 minutes")
		}
	}
	return p
}

// TestLocalStackSmoke runs the local stack binary as `make run` would: it
// must print ready, serve the API, have loaded the secrets of
// config/local.json, and on SIGTERM exit 0 leaving no process of its group.
func TestLocalStackSmoke(t *testing.T) {
	p := startLocal(t)
	p.mu.Lock()
	url := p.url
	p.mu.Unlock()

	resp, err := http.Get(url + "/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"status":"ok"}` {
		t.Errorf("GET /v1/health = %d %s, want 200 {\"status\":\"ok\"}", resp.StatusCode, body)
	}

	// A new user's first steps, as the README gives them: register a device
	// with pushctl (app and secret from config/local.json), then list it.
	pushctl := filepath.Join(t.TempDir(), "pushctl")
	if out, err := exec.Command("go", "build", "-o", pushctl, "../pushctl").CombinedOutput(); err != nil {
		t.Fatalf("build pushctl: %v\n%s", err, out)
	}
	token := strings.Repeat("0123456789abcdef", 4)
	run := func(args ...string) string {
		cmd := exec.Command(pushctl, append([]string{"--url", url}, args...)...)
		cmd.Dir = filepath.Join("..", "..")
		cmd.Env = append(os.Environ(), "PUSH_APP=", "PUSH_SECRET=", "PUSH_URL=")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("pushctl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	run("device", "put", "--user", "alice", "--device", "phone-1", "--vendor", "apns", "--token", token, "--cert", "ios-prod")
	var list struct {
		Devices []struct {
			DeviceID    string `json:"deviceId"`
			TokenSuffix string `json:"tokenSuffix"`
		} `json:"devices"`
	}
	if err := json.Unmarshal([]byte(run("device", "list", "--user", "alice")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Devices) != 1 || list.Devices[0].DeviceID != "phone-1" || list.Devices[0].TokenSuffix != token[len(token)-6:] {
		t.Errorf("pushctl device list = %+v, want phone-1 with suffix %s", list.Devices, token[len(token)-6:])
	}

	cfg := testenv.AWSConfig(moto.Endpoint)
	sm := secretsmanager.NewFromConfig(cfg)
	api, err := sm.GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("offline-push/demo/api")})
	if err != nil {
		t.Fatalf("API secret of demo: %v", err)
	}
	if !strings.Contains(aws.ToString(api.SecretString), `"apiSecrets":["demo-only-`) {
		t.Errorf("API secret of demo = %s", aws.ToString(api.SecretString))
	}
	for _, v := range push.Vendors {
		cert := "android-" + string(v)
		if v == push.APNs {
			cert = "ios-prod"
		}
		desc, err := sm.DescribeSecret(t.Context(), &secretsmanager.DescribeSecretInput{SecretId: aws.String("offline-push/demo/vendors/" + cert)})
		if err != nil {
			t.Errorf("credential %s: %v", cert, err)
			continue
		}
		if len(desc.Tags) != 1 || aws.ToString(desc.Tags[0].Value) != string(v) {
			t.Errorf("credential %s tags = %v, want vendor=%s", cert, desc.Tags, v)
		}
	}
	ddb := dynamodb.NewFromConfig(cfg)
	if _, err := ddb.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String("offline-push-local-StateTable")}); err != nil {
		t.Errorf("StateTable: %v", err)
	}

	pgid := p.cmd.Process.Pid
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(time.Minute):
		t.Fatal("local stack still running a minute after SIGTERM")
	}
	if p.waitErr != nil {
		t.Errorf("exit after SIGTERM: %v, want status 0", p.waitErr)
	}
	if err := syscall.Kill(-pgid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("kill(-%d, 0) after exit = %v, want ESRCH: a process of the group is left", pgid, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if diff := cmp.Diff([]string{"ready"}, p.stdout); diff != "" {
		t.Errorf("stdout (-want +got):\n%s", diff)
	}
	for _, line := range p.stderr {
		if !json.Valid([]byte(line)) {
			t.Errorf("stderr line is not JSON: %s", line)
		}
		if strings.Contains(line, "PRIVATE KEY") || strings.Contains(line, "demo-only-api-secret") {
			t.Errorf("a log line shows a key or secret: %s", line)
		}
	}
}
