package apns_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	apnsemu "github.com/offline-push/offline-push/shared/emulator/apns"
	"github.com/offline-push/offline-push/shared/provider/apns"
	"github.com/offline-push/offline-push/shared/push"
)

// TestSampleEvents sends every envelope of events/dispatch/apns-*.json to
// the emulator, so the sample events stay envelopes that APNs accepts.
func TestSampleEvents(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "..", "events", "dispatch", "apns-*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no events/dispatch/apns-*.json")
	}
	f := newFixture(t, apnsemu.Options{})
	s := apns.New(newMemoryCache(), nil, discard())
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var ev struct {
				Records []struct {
					Body           string `json:"body"`
					EventSource    string `json:"eventSource"`
					EventSourceARN string `json:"eventSourceARN"`
				} `json:"Records"`
			}
			if err := json.Unmarshal(raw, &ev); err != nil {
				t.Fatalf("not an SQS event: %v", err)
			}
			if len(ev.Records) == 0 {
				t.Fatal("no records")
			}
			for i, r := range ev.Records {
				if r.EventSource != "aws:sqs" {
					t.Errorf("record %d: eventSource %q, want aws:sqs", i, r.EventSource)
				}
				env, err := push.DecodeEnvelope([]byte(r.Body))
				if err != nil {
					t.Fatalf("record %d: %v", i, err)
				}
				if env.Vendor != push.APNs {
					t.Errorf("record %d: vendor %s, want apns", i, env.Vendor)
				}
				f.emu.Reset()
				for j, res := range s.Send(t.Context(), f.job(t, env)) {
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
