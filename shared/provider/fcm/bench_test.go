package fcm_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/offline-push/offline-push/shared/provider/fcm"
	"github.com/offline-push/offline-push/shared/push"
)

// BenchmarkSend measures delivery of a 500-target envelope (one SendEach
// batch) to the emulator, reporting messages per CPU-second of the whole
// process: the sender, the SDK, the HTTP stack on both sides and the
// emulator's checks, which run in this process too. In production the
// emulator's share goes away and the network wait costs no CPU, so this is
// a lower bound of the sender's own throughput per CPU. Timings are
// reported, never asserted.
func BenchmarkSend(b *testing.B) {
	a := newApp(b)
	const n = push.MaxEnvelopeTargets
	targets := make([]push.Target, n)
	for i := range targets {
		targets[i] = android(fmt.Sprintf("u%04d", i), fmt.Sprintf("tok-bench-%06d", i))
	}
	job := a.job(message(targets...))
	s := fcm.New(time.Now, discard())
	s.Send(context.Background(), job) // build the client and fetch the token
	a.srv.Reset()

	before := cpu(b)
	start := time.Now()
	sent := 0
	for b.Loop() {
		for _, r := range s.Send(context.Background(), job) {
			if r.Class != push.SendOK {
				b.Fatalf("result %+v", r)
			}
		}
		sent += n
	}
	used := cpu(b) - before
	wall := time.Since(start)
	b.ReportMetric(float64(sent)/used.Seconds(), "msgs/cpu-s")
	b.ReportMetric(float64(sent)/wall.Seconds(), "msgs/s")
	b.ReportMetric(float64(used.Microseconds())/float64(sent), "cpu-µs/msg")
	// Peak resident memory of the process so far (ru_maxrss is KiB on
	// Linux); the emulator shares the process, so an upper bound.
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		b.ReportMetric(float64(ru.Maxrss)/1024, "peak-rss-MiB")
	}
	if got := a.srv.Counts().Accepted; got != sent {
		b.Errorf("emulator accepted %d messages, want %d", got, sent)
	}
}

// cpu returns the user plus system CPU time this process has used.
func cpu(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
