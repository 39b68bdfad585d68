package meizuemu

import (
	"math/rand/v2"
	"net/http"
	"time"
)

// Meizu codes the emulator can answer with (MEIZUPUSH/PushAPI README; 518
// and 110019 from the Java SDK's codes).
const (
	// Per-pushId codes, listed in value.
	CodeNoPermission = "201"
	CodePushFailed   = "513"
	CodeOverRate     = "518"
	CodeOverloaded   = "519"
	CodeFolded       = "520"
	CodeUnsubscribed = "110002" // unsubscribed or notifications off
	CodeIllegalID    = "110003"
	// Whole-request codes.
	CodeBusy       = "1003"
	CodeBadParams  = "1005"
	CodeBadSign    = "1006"
	CodeTooFast    = "110010"
	CodeDailyLimit = "110019"
)

// Fault is a failure the emulator answers for a request naming one pushId.
type Fault struct {
	// Code, when set, lists the pushId under this code in value (a
	// per-pushId failure; the rest of the request succeeds).
	Code string
	// Request, when set, answers the whole request with this top-level
	// code instead.
	Request string
	// Status, when non-zero, answers the whole request with this HTTP
	// status and no Meizu body, as a gateway in front of Meizu would.
	Status int
	// Times limits Request and Status to the first Times requests naming
	// the pushId; 0 means every request. Code is permanent.
	Times int
}

// Faults are the failures in effect. A request that passes validation
// first meets the Request or Status fault of the first of its pushIds that
// has one; then the daily limit; then one seeded draw decides whether it
// is throttled (110010), busy (1003) or unavailable (HTTP 503), by the
// shares given; last, pushIds with a Code are listed under it in value.
// Draws follow Seed, so a run that sends one request at a time meets the
// same answers every time.
type Faults struct {
	Tokens           map[string]Fault
	ThrottleShare    float64
	BusyShare        float64
	UnavailableShare float64
	// DailyLimit answers every request 110019: the app's pushes for today
	// are spent.
	DailyLimit bool
	// Delay holds every valid request this long before it is answered (or
	// until the client gives up).
	Delay time.Duration
	Seed  int64
}

// SetFaults replaces the faults in effect and reseeds the draws.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
	s.hits = map[string]int{}
	s.rng = rand.New(rand.NewPCG(uint64(f.Seed), 0x6d7a))
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() { s.SetFaults(Faults{}) }

// fault decides the answer to a valid request after the configured delay:
// nil to accept it (with p.PushIDs and p.Failed set), else the refusal.
func (s *Server) fault(r *http.Request, p *Push) *merror {
	s.mu.Lock()
	f := s.faults
	var me *merror
	for _, id := range p.PushIDs {
		tf, ok := f.Tokens[id]
		if !ok || (tf.Request == "" && tf.Status == 0) || (tf.Times > 0 && s.hits[id] >= tf.Times) {
			continue
		}
		s.hits[id]++
		if tf.Status != 0 {
			me = &merror{status: tf.Status}
		} else {
			me = fail(tf.Request, "fault injected for a pushId")
		}
		break
	}
	if me == nil && f.DailyLimit {
		me = fail(CodeDailyLimit, "")
	}
	if share := f.ThrottleShare + f.BusyShare + f.UnavailableShare; me == nil && share > 0 {
		u := s.rng.Float64()
		switch {
		case u < f.ThrottleShare:
			me = fail(CodeTooFast, "")
		case u < f.ThrottleShare+f.BusyShare:
			me = fail(CodeBusy, "")
		case u < share:
			me = &merror{status: http.StatusServiceUnavailable}
		}
	}
	if me == nil {
		var good []string
		failed := map[string][]string{}
		for _, id := range p.PushIDs {
			if c := f.Tokens[id].Code; c != "" {
				failed[c] = append(failed[c], id)
			} else {
				good = append(good, id)
			}
		}
		p.PushIDs, p.Failed = good, failed
	}
	s.mu.Unlock()
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
		}
		t.Stop()
	}
	return me
}
