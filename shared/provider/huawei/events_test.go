package huawei_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	huaweiemu "github.com/offline-push/offline-push/shared/emulator/huawei"
	"github.com/offline-push/offline-push/shared/provider/huawei"
	"github.com/offline-push/offline-push/shared/push"
)

// TestSampleEvents sends every envelope of events/dispatch/huawei-*.json to
// the emulator, so the sample events stay envelopes that Huawei accepts.
func TestSampleEvents(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "..", "events", "dispatch", "huawei-*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no events/dispatch/huawei-*.json")
	}
	emu := startEmulator(t, huaweiemu.Options{})
	s := huawei.New(newCache(), func() time.Time { return now }, quiet())
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
				if env.Vendor != push.Huawei {
					t.Errorf("record %d: vendor %s, want huawei", i, env.Vendor)
				}
				emu.Reset()
				ttl := time.UnixMilli(env.ExpiresAt).Sub(now)
				for j, res := range s.Send(context.Background(), job(env, credentials(emu, nil), ttl, env.Targets...)) {
					if res.Class != push.SendOK {
						t.Errorf("record %d target %d: %+v, want ok", i, j, res)
					}
				}
				delivered := 0
				for _, n := range emu.Delivered() {
					delivered += n
				}
				if delivered != len(env.Targets) {
					t.Errorf("record %d: emulator delivered %d pushes, want %d", i, delivered, len(env.Targets))
				}
			}
		})
	}
}
