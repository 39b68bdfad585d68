package vivo_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/offline-push/offline-push/shared/push"
)

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSend measures pushes per CPU-second through the provider against
// the emulator in the same process (so the figure counts both sides' CPU
// and is a floor for the provider alone): a group message of 100 targets
// in one list push, and a call to one device by a single send. It asserts
// nothing about time.
func BenchmarkSend(b *testing.B) {
	for _, bc := range []struct {
		name    string
		kind    push.MessageKind
		targets int
	}{{"list-100", push.KindMessage, 100}, {"single", push.KindCallInvite, 1}} {
		b.Run(bc.name, func(b *testing.B) {
			f := newFixture(b, nil)
			var targets []push.Target
			for i := range bc.targets {
				targets = append(targets, target(fmt.Sprintf("u%03d", i), fmt.Sprintf("regid%06d", i)))
			}
			ctx := context.Background()
			b.ReportAllocs()
			before := cpuTime(b)
			n := 0
			for b.Loop() {
				job := f.job(envelope(bc.kind, targets...))
				job.TTL = time.Minute
				res := f.sender.Send(ctx, job)
				if res[0].Class != push.SendOK {
					b.Fatalf("send: %v", res[0])
				}
				n++
				if n%50 == 0 {
					f.emu.Reset()
				}
			}
			if cpu := cpuTime(b) - before; cpu > 0 {
				b.ReportMetric(float64(n*bc.targets)/cpu.Seconds(), "sends/cpu-s")
			}
		})
	}
}
