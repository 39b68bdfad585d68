//go:build unix

package huawei_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	huaweiemu "github.com/offline-push/offline-push/shared/emulator/huawei"
	"github.com/offline-push/offline-push/shared/provider/huawei"
	"github.com/offline-push/offline-push/shared/push"
)

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSend reports pushes delivered per CPU-second against the
// emulator, for a one-target job and a full envelope of 500 targets (one
// request). The CPU time is the whole process's, the emulator's included,
// so it overstates the provider's cost; no timing is asserted.
func BenchmarkSend(b *testing.B) {
	for _, n := range []int{1, 500} {
		b.Run(map[int]string{1: "targets=1", 500: "targets=500"}[n], func(b *testing.B) {
			emu := startEmulator(b, huaweiemu.Options{})
			s := huawei.New(newCache(), time.Now, quiet())
			j := job(message(), credentials(emu, nil), time.Hour, targets(n, 0)...)
			ctx := context.Background()
			if rs := s.Send(ctx, j); rs[0].Class != push.SendOK {
				b.Fatalf("warm-up: %+v", rs[0])
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := cpuTime(b)
			for i := 0; i < b.N; i++ {
				if i%64 == 0 {
					emu.Reset() // keep the emulator's records from growing without bound
				}
				if rs := s.Send(ctx, j); rs[0].Class != push.SendOK {
					b.Fatalf("send: %+v", rs[0])
				}
			}
			cpu := cpuTime(b) - start
			b.StopTimer()
			if cpu > 0 {
				b.ReportMetric(float64(b.N*n)/cpu.Seconds(), "sends/cpu-s")
			}
		})
	}
}
