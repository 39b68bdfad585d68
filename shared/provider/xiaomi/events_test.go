package xiaomi_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/offline-push/offline-push/shared/provider/xiaomi"
	"github.com/offline-push/offline-push/shared/push"
)

// TestSampleEvents sends every envelope of events/dispatch/xiaomi-*.json to
// the emulator, so the sample events stay envelopes that Xiaomi accepts,
// with the collapse ids ingest would give them.
func TestSampleEvents(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "..", "events", "dispatch", "xiaomi-*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no events/dispatch/xiaomi-*.json")
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
				if r.EventSource != "aws:sqs" || env.Vendor != push.Xiaomi {
					t.Errorf("record %d: eventSource %q vendor %s, want aws:sqs xiaomi", i, r.EventSource, env.Vendor)
				}
				for j, tg := range append([]push.Target{{CollapseID: env.CollapseID, NotifyID: env.NotifyID}}, env.Targets...) {
					if tg.CollapseID == "" {
						continue
					}
					if id, n := push.CollapseFor(push.Xiaomi, tg.CollapseID); id != tg.CollapseID || n != tg.NotifyID {
						t.Errorf("record %d collapse %d: %q/%d, want %q/%d from push.CollapseFor", i, j, tg.CollapseID, tg.NotifyID, id, n)
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

// FuzzAnswer serves arbitrary answers to the sender: whatever Xiaomi (or
// something in its place) says, every target gets exactly one verdict and
// nothing panics.
func FuzzAnswer(f *testing.F) {
	f.Add(200, `{"result":"ok","code":0,"data":{"id":"x","bad_regids":"regid000/AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+="}}`)
	f.Add(200, `{"result":"error","code":"20301"}`)
	f.Add(200, `{"code":0,"data":{"bad_regids":7}}`)
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
	sender := xiaomi.New(now, slog.New(slog.DiscardHandler))
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
