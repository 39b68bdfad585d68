package vivo

import (
	"testing"
	"time"
)

func TestFit(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		limit    int
		want     string
	}{
		{"fits", "hello", 5, "hello"},
		{"ascii cut", "hello world", 7, "hello…"},
		{"Chinese counts two", "标标标标", 6, "标标…"},
		{"mixed", "ab标c", 4, "ab…"},
		{"keeps accent with its letter", "ae\u0301bcd", 5, "a…"},
		{"never inside a joined sequence", "ab\u200dcdef", 5, "a…"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Fit(tc.in, tc.limit)
			if got != tc.want {
				t.Errorf("Fit(%q, %d) = %q, want %q", tc.in, tc.limit, got, tc.want)
			}
			if Width(got) > tc.limit {
				t.Errorf("Fit(%q, %d) has width %d", tc.in, tc.limit, Width(got))
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
		{time.Date(2026, 11, 22, 16, 0, 0, 0, time.UTC), 24 * time.Hour},
		{time.Date(2026, 11, 22, 15, 59, 59, 0, time.UTC), time.Second},
	} {
		if got := untilChinaMidnight(tc.now); got != tc.want {
			t.Errorf("untilChinaMidnight(%v) = %v, want %v", tc.now, got, tc.want)
		}
	}
}

func TestClassification(t *testing.T) {
	for cat, want := range map[string]int{"IM": 1, "ACCOUNT": 1, "ORDER": 1, "NEWS": 0, "MARKETING": 0} {
		p, err := parseCredentials([]byte(`{"appId":"1","appKey":"k","appSecret":"s","category":"` + cat + `"}`))
		if err != nil {
			t.Fatal(err)
		}
		if p.pushHost != defaultHost {
			t.Errorf("host = %q", p.pushHost)
		}
		got := 0
		if systemCategories[p.creds.Category] {
			got = 1
		}
		if got != want {
			t.Errorf("classification of %s = %d, want %d", cat, got, want)
		}
	}
}
