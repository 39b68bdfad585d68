package oppo_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/offline-push/offline-push/shared/push"
)

// TestSampleEvents sends every envelope of events/dispatch/oppo-*.json to
// the emulator, so the sample events stay envelopes that OPPO accepts.
func TestSampleEvents(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "..", "events", "dispatch", "oppo-*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no events/dispatch/oppo-*.json")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var ev struct {
				Records []struct {
					Body        string `json:"body"`
					EventSource string `json:"eventSource"`
				} `json:"Records"`
			}
			if err := json.Unmarshal(raw, &ev); err != nil || len(ev.Records) == 0 {
				t.Fatalf("not an SQS event with records: %v", err)
			}
			for i, r := range ev.Records {
				env, err := push.DecodeEnvelope([]byte(r.Body))
				if err != nil {
					t.Fatalf("record %d: %v", i, err)
				}
				if r.EventSource != "aws:sqs" || env.Vendor != push.OPPO {
					t.Errorf("record %d: source %q vendor %q", i, r.EventSource, env.Vendor)
				}
				f := newFixture(t, nil)
				for j, res := range f.sender.Send(context.Background(), f.job(env)) {
					if res.Class != push.SendOK {
						t.Errorf("record %d target %d: %+v, want ok", i, j, res)
					}
				}
				if got := len(f.emu.Received()); got != len(env.Targets) {
					t.Errorf("record %d: emulator accepted %d pushes, want %d", i, got, len(env.Targets))
				}
			}
		})
	}
}
