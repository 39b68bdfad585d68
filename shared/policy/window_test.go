package policy_test

import (
	"testing"
	"time"

	"github.com/offline-push/offline-push/shared/policy"
	"github.com/offline-push/offline-push/shared/push"
)

func TestInWindow(t *testing.T) {
	utc := func(h, m int) time.Time { return time.Date(2026, 11, 22, h, m, 0, 0, time.UTC) }
	// 2026-03-08: New York springs forward at 02:00 EST (07:00 UTC) to 03:00 EDT.
	// 2026-11-01: it falls back at 02:00 EDT (06:00 UTC) to 01:00 EST.
	ny := func(day, h, m int) time.Time {
		return time.Date(2026, time.Month(day/100), day%100, h, m, 0, 0, time.UTC)
	}
	tests := []struct {
		name string
		w    *push.DNDWindow
		at   time.Time
		want bool
	}{
		{"rule 14: start is inclusive", window("09:00", "11:00", "UTC"), utc(9, 0), true},
		{"rule 14: the minute before start is outside", window("09:00", "11:00", "UTC"), utc(8, 59), false},
		{"rule 14: end is exclusive", window("09:00", "11:00", "UTC"), utc(11, 0), false},
		{"rule 14: the last minute before end is inside", window("09:00", "11:00", "UTC"), utc(10, 59), true},
		{"rule 14: seconds do not matter, only the minute", window("09:00", "11:00", "UTC"),
			time.Date(2026, 11, 22, 10, 59, 59, 999e6, time.UTC), true},
		{"rule 14: window wraps past midnight, 06:59 local is quiet", window("22:00", "07:00", "UTC"), utc(6, 59), true},
		{"rule 14: window wraps past midnight, 07:00 local is not", window("22:00", "07:00", "UTC"), utc(7, 0), false},
		{"rule 14: window wraps past midnight, 22:00 local is quiet", window("22:00", "07:00", "UTC"), utc(22, 0), true},
		{"rule 14: window wraps past midnight, 21:59 local is not", window("22:00", "07:00", "UTC"), utc(21, 59), false},
		{"rule 14: window wraps past midnight, midnight is quiet", window("22:00", "07:00", "UTC"), utc(0, 0), true},
		{"rule 14: window ending at midnight excludes midnight", window("22:00", "00:00", "UTC"), utc(0, 0), false},
		{"rule 14: window ending at midnight holds 23:59", window("22:00", "00:00", "UTC"), utc(23, 59), true},
		{"rule 14: window from midnight holds midnight", window("00:00", "06:00", "UTC"), utc(0, 0), true},
		{"rule 14: start equal to end is all day (midday)", window("07:30", "07:30", "UTC"), utc(12, 0), true},
		{"rule 14: start equal to end is all day (the start minute)", window("07:30", "07:30", "UTC"), utc(7, 30), true},
		{"rule 14: start equal to end is all day (the minute before)", window("07:30", "07:30", "UTC"), utc(7, 29), true},
		{"rule 14: an empty zone is UTC", window("09:00", "11:00", ""), utc(10, 0), true},
		{"rule 14: the zone's wall clock: 02:00 UTC is 10:00 in Shanghai", window("09:00", "11:00", "Asia/Shanghai"), utc(2, 0), true},
		{"rule 14: the zone's wall clock: 10:00 UTC is 18:00 in Shanghai", window("09:00", "11:00", "Asia/Shanghai"), utc(10, 0), false},
		{"rule 14: wrap in a zone: 23:30 UTC is 07:30 next day in Shanghai, the end", window("22:00", "07:30", "Asia/Shanghai"), utc(23, 30), false},
		{"rule 14: wrap in a zone: 23:29 UTC is 07:29 in Shanghai", window("22:00", "07:30", "Asia/Shanghai"), utc(23, 29), true},
		{"rule 14: a half-hour zone: 03:30 UTC is 09:00 in Kolkata", window("09:00", "09:01", "Asia/Kolkata"), utc(3, 30), true},
		{"rule 14: an unknown zone reads as UTC", window("09:00", "11:00", "Mars/Olympus_Mons"), utc(10, 0), true},
		{"rule 14: DST day in New York: 01:59 EST before the jump is quiet", window("01:30", "02:30", "America/New_York"), ny(308, 6, 59), true},
		{"rule 14: DST day in New York: the clock jumps to 03:00 EDT, past the window", window("01:30", "02:30", "America/New_York"), ny(308, 7, 0), false},
		{"rule 14: DST day in New York: a window in the skipped hour never holds at 03:00", window("02:00", "03:00", "America/New_York"), ny(308, 7, 0), false},
		{"rule 14: DST day in New York: 07:00 wall clock ends the night window at 11:00 UTC", window("22:00", "07:00", "America/New_York"), ny(308, 11, 0), false},
		{"rule 14: DST day in New York: 06:59 EDT is 10:59 UTC and still quiet", window("22:00", "07:00", "America/New_York"), ny(308, 10, 59), true},
		{"rule 14: the day before DST, 06:59 EST is 11:59 UTC and quiet", window("22:00", "07:00", "America/New_York"), ny(307, 11, 59), true},
		{"rule 14: fall-back day: the first 01:30 (EDT) is quiet", window("01:00", "02:00", "America/New_York"), ny(1101, 5, 30), true},
		{"rule 14: fall-back day: the repeated 01:30 (EST) is quiet too", window("01:00", "02:00", "America/New_York"), ny(1101, 6, 30), true},
		{"rule 14: fall-back day: 02:00 EST ends the window", window("01:00", "02:00", "America/New_York"), ny(1101, 7, 0), false},
		{"rule 14: the instant's own zone does not matter", window("09:00", "11:00", "UTC"),
			time.Date(2026, 11, 22, 18, 0, 0, 0, time.FixedZone("CST", 8*3600)), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := policy.InWindow(*tt.w, tt.at); got != tt.want {
				t.Errorf("InWindow(%+v, %s) = %v, want %v", *tt.w, tt.at.Format(time.RFC3339), got, tt.want)
			}
		})
	}
}
