package oppo_test

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

// BenchmarkSend measures pushes per CPU-second through the provider, one
// job of 100 targets per iteration, against the emulator in the same
// process: the figure counts both sides' CPU, so it is a floor for the
// provider alone. It asserts nothing about time.
func BenchmarkSend(b *testing.B) {
	f := newFixture(b, nil)
	var targets []push.Target
	for i := range 100 {
		targets = append(targets, target(fmt.Sprintf("u%03d", i), fmt.Sprintf("CN_regid%06d", i)))
	}
	ctx := context.Background()
	b.ReportAllocs()
	before := cpuTime(b)
	i := 0
	for b.Loop() {
		e := envelope(push.KindMessage, targets...)
		e.MessageID = fmt.Sprintf("m-%d", i) // distinct app_message_ids
		i++
		res := f.sender.Send(ctx, f.job(e))
		if res[0].Class != push.SendOK {
			b.Fatalf("send: %v", res[0])
		}
		if i%50 == 0 {
			f.emu.Reset() // keep the emulator's records small
		}
	}
	cpu := cpuTime(b) - before
	if cpu > 0 {
		b.ReportMetric(float64(i*len(targets))/cpu.Seconds(), "sends/cpu-s")
	}
}
