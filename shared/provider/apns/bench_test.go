//go:build unix

package apns_test

import (
	"syscall"
	"testing"
	"time"

	apnsemu "github.com/offline-push/offline-push/shared/emulator/apns"
	"github.com/offline-push/offline-push/shared/provider/apns"
	"github.com/offline-push/offline-push/shared/push"
)

// cpuTime is the CPU time (user and system) this process has used so far.
func cpuTime(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSend sends envelopes of 100 targets to the emulator over one
// TLS HTTP/2 connection and reports notifications per CPU-second. The
// emulator runs in this process, so the CPU time includes its side of TLS
// and HTTP/2 too: the figure is a lower bound for the sender alone. It
// reports; it asserts no timing.
func BenchmarkSend(b *testing.B) {
	f := newFixture(b, apnsemu.Options{})
	s := apns.New(newMemoryCache(), nil, discard())
	env := message(100)
	j := f.job(b, env)
	if r := s.Send(b.Context(), j); r[0].Class != push.SendOK {
		b.Fatalf("warm-up: %+v", r[0]) // also dials and mints outside the measurement
	}
	start := cpuTime(b)
	for b.Loop() {
		for _, r := range s.Send(b.Context(), j) {
			if r.Class != push.SendOK {
				b.Fatalf("result %+v", r)
			}
		}
		f.emu.Reset() // keep the emulator's records from growing
	}
	cpu := cpuTime(b) - start
	b.ReportMetric(float64(b.N*len(env.Targets))/cpu.Seconds(), "notifications/cpu-s")
	b.ReportMetric(peakRSSMiB(b), "peak-rss-MiB")
}

// peakRSSMiB is the process's peak resident memory so far (Linux reports
// ru_maxrss in KiB). The emulator shares the process, so it is an upper
// bound for a dispatch container's sender.
func peakRSSMiB(b *testing.B) float64 {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return float64(ru.Maxrss) / 1024
}
