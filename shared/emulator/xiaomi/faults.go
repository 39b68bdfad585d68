package xiaomiemu

import (
	"math/rand/v2"
	"net/http"
	"time"
)

// Xiaomi codes the emulator can answer with (dev.mi.com pId=1560), and the
// unofficial daily-limit code production clients report.
const (
	CodeBusy          = 10002  // system busy: retry
	CodeTooFrequent   = 10027  // the app calls the API too often
	CodeDailyLimit    = 10034  // the app sent too many messages today
	CodeSendFailed    = 20301  // "send failed"; answered when no regId is valid
	CodeAuthFailed    = 21301  // wrong AppSecret
	CodeChannel       = 27001  // channel does not match the app
	CodeTooLong       = 65009  // message content too long
	CodeDailyLimitOld = 200001 // daily limit, as production clients see it
)

// Fault is a failure the emulator answers for a request naming one regId.
type Fault struct {
	// Invalid lists the regId in data.bad_regids (unregistered,
	// uninstalled); when every regId of a request is invalid the whole
	// request is answered 20301 instead, as Xiaomi does.
	Invalid bool
	// Code, when non-zero, answers the whole request with this error code.
	Code int
	// Status, when non-zero, answers the whole request with this HTTP
	// status and no Xiaomi body, as a gateway in front of Xiaomi would.
	Status int
	// Times limits Code and Status to the first Times requests naming the
	// regId; 0 means every request. Invalid is permanent.
	Times int
}

// Faults are the failures in effect. A request that passes authentication
// and validation first meets the Code or Status fault of the first of its
// regIds that has one; then the daily limit; then one seeded draw decides
// whether it is throttled (10027), busy (10002) or unavailable (HTTP 503),
// by the shares given; last, Invalid regIds go to bad_regids. Draws follow
// Seed, so a run that sends one request at a time meets the same answers
// every time.
type Faults struct {
	Tokens           map[string]Fault
	ThrottleShare    float64
	BusyShare        float64
	UnavailableShare float64
	// DailyLimit, when non-zero, answers every request with this code
	// (CodeDailyLimit or CodeDailyLimitOld): the app's quota is spent.
	DailyLimit int
	// Delay holds every authenticated, valid request this long before it
	// is answered (or until the client gives up).
	Delay time.Duration
	Seed  int64
}

// SetFaults replaces the faults in effect and reseeds the draws.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
	s.hits = map[string]int{}
	s.rng = rand.New(rand.NewPCG(uint64(f.Seed), 0x786d))
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() { s.SetFaults(Faults{}) }

// fault decides the answer to a valid request after the configured delay:
// nil to accept it (with p.BadRegIDs set), else the refusal.
func (s *Server) fault(r *http.Request, p *Push) *xerror {
	s.mu.Lock()
	f := s.faults
	var xe *xerror
	for _, id := range p.RegIDs {
		tf, ok := f.Tokens[id]
		if !ok || (tf.Code == 0 && tf.Status == 0) || (tf.Times > 0 && s.hits[id] >= tf.Times) {
			continue
		}
		s.hits[id]++
		if tf.Status != 0 {
			xe = &xerror{status: tf.Status}
		} else {
			xe = fail(tf.Code, "fault injected for a regId")
		}
		break
	}
	if xe == nil && f.DailyLimit != 0 {
		xe = fail(f.DailyLimit, "Daily push quota exceeded")
	}
	if share := f.ThrottleShare + f.BusyShare + f.UnavailableShare; xe == nil && share > 0 {
		u := s.rng.Float64()
		switch {
		case u < f.ThrottleShare:
			xe = fail(CodeTooFrequent, "Too many requests")
		case u < f.ThrottleShare+f.BusyShare:
			xe = fail(CodeBusy, "System busy")
		case u < share:
			xe = &xerror{status: http.StatusServiceUnavailable}
		}
	}
	if xe == nil {
		var good, bad []string
		for _, id := range p.RegIDs {
			if f.Tokens[id].Invalid {
				bad = append(bad, id)
			} else {
				good = append(good, id)
			}
		}
		if len(good) == 0 {
			xe = fail(CodeSendFailed, "No valid targets!")
		} else {
			p.RegIDs, p.BadRegIDs = good, bad
		}
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
	return xe
}
