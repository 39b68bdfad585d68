package oppo

import (
	"testing"
	"time"
)

func TestRegionOf(t *testing.T) {
	for _, tc := range []struct {
		regID string
		want  region
	}{
		{"b6bbd94b59cdb5df8391642c1509b7fe", domestic},
		{"CN_b6bbd94b59cdb5df8391642c1509b7fe", domestic},
		{"OPPO_CN_b6bbd94b59cdb5df8391642c1509b7fe", domestic},
		{"IN_b6bbd94b59cdb5df8391642c1509b7fe", overseas},
		{"OPPO_EU_b6bbd94b59cdb5df8391642c1509b7fe", overseas},
		{"a_b_c_d", overseas},
	} {
		if got := regionOf(tc.regID); got != tc.want {
			t.Errorf("regionOf(%q) = %v, want %v", tc.regID, got, tc.want)
		}
	}
}

func TestDefaultHostsFollowRegion(t *testing.T) {
	p, err := parseCredentials([]byte(`{"appKey":"k","masterSecret":"s","channelId":"c"}`))
	if err != nil {
		t.Fatal(err)
	}
	if p.pushHosts[domestic] != domesticHost || p.pushHosts[overseas] != overseasHost || p.authHosts[overseas] != overseasHost {
		t.Errorf("hosts = %v / %v", p.pushHosts, p.authHosts)
	}
	if p.cacheKey(domestic) == p.cacheKey(overseas) {
		t.Error("the overseas service must have its own token")
	}
}

func TestFit(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		limit    int
		want     string
	}{
		{"fits", "hello", 5, "hello"},
		{"cut", "hello world", 6, "hello…"},
		{"runes not bytes", "标标标标", 3, "标标…"},
		{"keeps accent with its letter", "ae\u0301b", 3, "a…"},
		{"never inside a joined sequence", "ab\u200dcd", 4, "a…"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Fit(tc.in, tc.limit); got != tc.want {
				t.Errorf("Fit(%q, %d) = %q, want %q", tc.in, tc.limit, got, tc.want)
			}
		})
	}
}

func TestUntilChinaMidnight(t *testing.T) {
	for _, tc := range []struct {
		now  time.Time
		want time.Duration
	}{
		{time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), 6 * time.Hour},
		{time.Date(2026, 11, 22, 15, 59, 0, 0, time.UTC), time.Minute},
		{time.Date(2026, 11, 22, 16, 0, 0, 0, time.UTC), 24 * time.Hour},
		{time.Date(2026, 12, 31, 16, 30, 0, 0, time.UTC), 23*time.Hour + 30*time.Minute},
	} {
		if got := untilChinaMidnight(tc.now); got != tc.want {
			t.Errorf("untilChinaMidnight(%v) = %v, want %v", tc.now, got, tc.want)
		}
	}
}
