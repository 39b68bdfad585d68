package meizu_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/offline-push/offline-push/shared/provider/meizu"
	"github.com/offline-push/offline-push/shared/push"
)

var hex8 = regexp.MustCompile(`^[0-9a-f]{8}$`)

// TestSampleEvents sends every envelope of events/dispatch/meizu-*.json to
// the emulator, so the sample events stay envelopes that Meizu accepts,
// with the collapse ids ingest would give them.
func TestSampleEvents(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "..", "events", "dispatch", "meizu-*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no events/dispatch/meizu-*.json")
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
				if r.EventSource != "aws:sqs" || env.Vendor != push.Meizu {
					t.Errorf("record %d: eventSource %q vendor %s, want aws:sqs meizu", i, r.EventSource, env.Vendor)
				}
				// Ingest derives notifyKeys as push.CollapseFor(push.Meizu, key):
				// 8 lower-case hex digits.
				for j, tg := range append([]push.Target{{CollapseID: env.CollapseID}}, env.Targets...) {
					if tg.CollapseID != "" && !hex8.MatchString(tg.CollapseID) {
						t.Errorf("record %d collapse %d: %q is not 8 hex digits", i, j, tg.CollapseID)
					}
				}
				f := newFixture(t)
				for j, res := range f.send(t, env, time.Hour) {
					if res.Class != push.SendOK {
						t.Errorf("record %d target %d: %+v, want ok", i, j, res)
					}
				}
			}
		})
	}
}

// FuzzAnswer serves arbitrary answers to the sender: whatever Meizu (or
// something in its place) says, every target gets exactly one verdict and
// nothing panics.
func FuzzAnswer(f *testing.F) {
	f.Add(200, `{"code":"200","message":"","value":{"110003":["ULY6c0005d62050c7e5d7e787d040b6b6f00647b6c7f"]},"msgId":"x"}`)
	f.Add(200, `{"code":"110010","message":"","value":"","redirect":""}`)
	f.Add(200, `{"code":200,"value":{"110002":"not a list"}}`)
	f.Add(503, `<html>`)
	f.Add(200, `[]`)
	var (
		mu     sync.Mutex
		status int
		body   string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		st, b := status, body
		mu.Unlock()
		w.WriteHeader(st)
		w.Write([]byte(b))
	}))
	defer srv.Close()
	sender := meizu.New(now, slog.New(slog.DiscardHandler))
	creds := credentials(srv.URL, nil)
	env := message(target("bob", 0), target("carol", 1))
	f.Fuzz(func(t *testing.T, st int, b string) {
		if st < 100 || st > 599 {
			return
		}
		mu.Lock()
		status, body = st, b
		mu.Unlock()
		job := &push.SendJob{Envelope: env, Targets: env.Targets, Credentials: creds, TTL: time.Hour}
		got := sender.Send(context.Background(), job)
		if len(got) != 2 {
			t.Fatalf("%d results for 2 targets", len(got))
		}
		for _, r := range got {
			if r.Class == "" {
				t.Errorf("empty class for answer %d %q", st, b)
			}
		}
	})
}
