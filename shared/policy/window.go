package policy

import (
	"sync"
	"time"
	// The time zone database is compiled in, so that resolving a DND
	// window's zone never touches the file system (the Lambda base image
	// need not ship /usr/share/zoneinfo) and gives the same answer
	// everywhere. It costs the binaries that link policy about 450 KB.
	_ "time/tzdata"

	"github.com/offline-push/offline-push/shared/push"
)

// zones caches *time.Location by IANA name for the life of the process:
// loading a zone parses its tz data, which is too slow to repeat for each of
// 100,000 recipients. Only names that load are cached, so the cache is
// bounded by the tz database (about 600 names).
var zones sync.Map // string → *time.Location

// location returns the zone named name. An empty name and "UTC" are UTC. A
// name the tz database does not know also reads as UTC, the documented
// default zone: settings refuse such names when written, so one can only
// come from a tz database that dropped it, and judging in UTC then beats
// failing the whole message.
func location(name string) *time.Location {
	if name == "" || name == "UTC" {
		return time.UTC
	}
	if l, ok := zones.Load(name); ok {
		return l.(*time.Location)
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return time.UTC
	}
	zones.Store(name, l)
	return l
}

// InWindow reports whether now falls in the daily DND window w (POLICY.md
// rule 14). It tests the local wall-clock minute in w's zone, so daylight
// saving shifts move the window with the wall clock: start inclusive, end
// exclusive, end < start wraps past midnight, start == end is all day.
// Minutes outside 0–1439 are taken as they are (the parser refuses them).
func InWindow(w push.DNDWindow, now time.Time) bool {
	if w.Start == w.End {
		return true
	}
	h, m, _ := now.In(location(w.TimeZone)).Clock()
	minute := h*60 + m
	if w.Start < w.End {
		return w.Start <= minute && minute < w.End
	}
	return minute >= w.Start || minute < w.End
}
