package testenv

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"
)

func TestStartMotoStop(t *testing.T) {
	// A developer's AWS settings must not reach the test clients: these
	// would send every call elsewhere or fail to load a profile.
	t.Setenv("AWS_PROFILE", "testenv-no-such-profile")
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:1")
	t.Setenv("AWS_REGION", "eu-west-3")

	s, err := StartMoto()
	if err != nil {
		t.Fatal(err)
	}
	pid := s.cmd.Process.Pid

	ctx := context.Background()
	db := dynamodb.NewFromConfig(AWSConfig(s.Endpoint))
	_, err = db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String("start-stop"),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
	})
	if err != nil {
		t.Fatalf("CreateTable on a fresh moto: %v\n%s", err, s.Output())
	}
	out, err := db.ListTables(ctx, &dynamodb.ListTablesInput{})
	if err != nil {
		t.Fatalf("ListTables: %v", err)
	}
	if diff := cmp.Diff([]string{"start-stop"}, out.TableNames); diff != "" {
		t.Errorf("ListTables (-want +got):\n%s", diff)
	}
	if !strings.Contains(s.Output(), "POST / HTTP/1.1") {
		t.Errorf("Output() = %q, want moto's request log", s.Output())
	}

	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("kill(%d, 0) after Stop = %v, want ESRCH", pid, err)
	}
	if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("kill(-%d, 0) after Stop = %v, want ESRCH: the process group still has members", pid, err)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop = %v, want nil", err)
	}
}

func TestStopReportsCrashedServer(t *testing.T) {
	s, err := StartMoto()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-s.exited
	err = s.Stop()
	if err == nil || !strings.Contains(err.Error(), "already exited") {
		t.Errorf("Stop after a crash = %v, want an error saying it had already exited", err)
	}
}

func TestMotoStopsAtCleanup(t *testing.T) {
	var pid int
	t.Run("inner", func(t *testing.T) {
		pid = Moto(t).cmd.Process.Pid
	})
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("kill(%d, 0) after the test's cleanup = %v, want ESRCH", pid, err)
	}
}

func TestStartMotoWithoutMoto(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := StartMoto()
	if err == nil || !strings.Contains(err.Error(), "install moto[server]") {
		t.Errorf("StartMoto without moto_server on PATH = %v, want an error telling to install moto[server]", err)
	}
}

func TestEnv(t *testing.T) {
	getenv := Env("http://127.0.0.1:4566", map[string]string{
		"STATE_TABLE": "state-1",
		"AWS_REGION":  "eu-west-1",
	})
	t.Setenv("SECRET_PREFIX", "from-the-process")
	tests := []struct {
		name, want string
	}{
		{"AWS_ENDPOINT_URL", "http://127.0.0.1:4566"},
		{"AWS_ACCESS_KEY_ID", "test"},
		{"AWS_SECRET_ACCESS_KEY", "test"},
		{"AWS_REGION", "eu-west-1"},  // extra wins
		{"STATE_TABLE", "state-1"},   // extra
		{"SECRET_PREFIX", ""},        // never read from the process
		{"AWS_SESSION_TOKEN", ""},    // unset
		{"AWS_DEFAULT_REGION", ""},   // unset
		{"AWS_ENDPOINT_URL_SQS", ""}, // unset
		{"", ""},                     // nonsense
	}
	for _, tt := range tests {
		if got := getenv(tt.name); got != tt.want {
			t.Errorf("getenv(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	for attempt := 0; attempt <= 40; attempt++ {
		for range 50 {
			got, err := backoff(attempt, nil)
			if err != nil || got < 0 || got > retryMaxDelay {
				t.Fatalf("backoff(%d) = %v, %v; want within [0, %v]", attempt, got, err, retryMaxDelay)
			}
		}
	}
}

func TestTailBuffer(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{"empty", nil, ""},
		{"under the limit", []string{"ab", "cd"}, "abcd"},
		{"at the limit", []string{"abcd", "ef"}, "cdef"},
		{"trimmed", []string{"abcdefgh", "ij"}, "ghij"},
		{"one big write", []string{"0123456789abc"}, "9abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &tailBuffer{limit: 4}
			for _, w := range tt.writes {
				if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v; want %d, nil", w, n, err, len(w))
				}
			}
			if got := b.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestStartMotoOnTakenPort(t *testing.T) {
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s, err := startMoto(bin, l.Addr().(*net.TCPAddr).Port)
	if err == nil {
		s.Stop()
	}
	if !errors.Is(err, errPortTaken) {
		t.Errorf("startMoto on a port in use = %v, want errPortTaken so that StartMoto retries", err)
	}
}
