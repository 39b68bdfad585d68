package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"testing"

	"github.com/offline-push/offline-push/shared/cfn"
)

// template caches the parsed template.yaml: every test of a process reads
// the same file, and parsing it once keeps Stack cheap.
var template struct {
	once sync.Once
	t    *cfn.Template
	err  error
}

// Stack provisions template.yaml (found by walking up from the working
// directory to go.mod) into the emulator at endpoint and returns its
// description: stack.Tables["StateTable"], stack.Queues["ApnsQueue"].URL,
// stack.FunctionEnv("DevicesFunction"). Each call gets a unique stack name and
// a unique SecretPrefix, so tests can share one moto without seeing each
// other's tables, queues or secrets. The resources are left in the emulator;
// they vanish with it.
func Stack(t testing.TB, endpoint string) *cfn.Stack {
	t.Helper()
	template.once.Do(func() {
		wd, err := os.Getwd()
		if err != nil {
			template.err = err
			return
		}
		path, err := cfn.FindTemplate(wd)
		if err != nil {
			template.err = err
			return
		}
		template.t, template.err = cfn.Load(path)
	})
	if template.err != nil {
		t.Fatalf("testenv.Stack: %v", template.err)
	}
	id := uniqueID()
	st, err := cfn.Provision(t.Context(), AWSConfig(endpoint), template.t, cfn.Options{
		StackName: "t" + id,
		Params:    map[string]string{"SecretPrefix": "test-" + id},
	})
	if err != nil {
		t.Fatalf("testenv.Stack: %v", err)
	}
	return st
}

// uniqueID returns 12 random hex digits: short enough that the longest queue
// name (t…-XiaomiDeadLetterQueue) stays far below SQS's 80 characters.
func uniqueID() string {
	var b [6]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return hex.EncodeToString(b[:])
}
