package main

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/offline-push/offline-push/shared/push"
)

// parsedReceipt is an emulator's line reduced to what the accounting
// needs.
type parsedReceipt struct {
	Vendor    push.Vendor
	Suffix    string
	MessageID string
	// Collapse is the key under which the device replaces an earlier
	// notification (APNs apns-collapse-id, Huawei and Honor tag, the
	// notify ids of Xiaomi, OPPO and vivo, Meizu's notifyKey); empty when
	// the line shows none.
	Collapse string
	At       time.Time
}

// collapseMembers are the receipt members that carry a collapse key, in
// the order they are preferred.
var collapseMembers = []string{"collapseId", "tag", "notifyKey", "notifyId"}

// parseReceipt reads one receipt line. Emulators name themselves in
// "emulator" (FCM's in "vendor") and show the token's last 6 characters in
// "token" (FCM's after an ellipsis). The message id is the push's title
// and ends its text, so it is found in the line whatever members the
// vendor's receipt shows. ok is false for a line that is not a receipt of
// this run.
func parseReceipt(r receipt, ids *regexp.Regexp) (parsedReceipt, bool) {
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(r.Line))
	dec.UseNumber()
	if dec.Decode(&m) != nil {
		return parsedReceipt{}, false
	}
	name, _ := m["emulator"].(string)
	if name == "" {
		name, _ = m["vendor"].(string)
	}
	v, ok := push.ParseVendor(name)
	if !ok {
		return parsedReceipt{}, false
	}
	tok, _ := m["token"].(string)
	tok = strings.TrimPrefix(tok, "…")
	id := ""
	if title, _ := m["title"].(string); ids.MatchString(title) {
		id = ids.FindString(title)
	} else {
		id = ids.FindString(r.Line)
	}
	if tok == "" || id == "" {
		return parsedReceipt{}, false
	}
	p := parsedReceipt{Vendor: v, Suffix: tok, MessageID: id, At: r.At}
	for _, k := range collapseMembers {
		switch x := m[k].(type) {
		case string:
			p.Collapse = x
		case json.Number:
			p.Collapse = x.String()
		}
		if p.Collapse != "" {
			p.Collapse = k + "=" + p.Collapse
			break
		}
	}
	return p, true
}

// messageIDs matches the message ids of one run (drive.go's plan).
func messageIDs(run string) *regexp.Regexp {
	return regexp.MustCompile(`ld-` + regexp.QuoteMeta(run) + `-[0-9]{6}`)
}

// accounting is the outcome of every target, judged from outside the
// service: the emulators' receipts, the dead-letter queues, and the
// bindings left.
type accounting struct {
	Messages, Accepted int
	Failed             []sent
	Retried            map[int]int

	Targets      int
	Delivered    int
	InvalidToken int
	DeadLettered int
	// Unaccounted are targets with no evidence of any outcome.
	Unaccounted []target
	// Duplicates are targets with more than one outcome, or delivered
	// more than once without a common collapse key (the user would see
	// the push twice).
	Duplicates []string
	// Repeats counts targets delivered more than once, every time under
	// the same collapse key: at-least-once redelivery that the device
	// folds into one notification.
	Repeats int
	// Stray are receipts and dead letters of pushes the service never
	// decided on (a push to an online device, say).
	Stray []string
	// Unparsed counts standard output lines that are not receipts of
	// this run.
	Unparsed int

	InvalidDevices   int
	InvalidRemoved   int
	InvalidLeft      int // bound still, though pushes were decided for it
	InvalidUntouched int // bound still, and no push was ever decided for it
	ValidLost        []deviceKey

	// EndToEnd runs from the 202 to the first receipt of each delivered
	// target, FromPost from the start of the request that was accepted.
	IngestLatency, EndToEnd, FromPost []time.Duration
	// BeforeAccepted counts receipts read before the 202 of their message
	// arrived: dispatch can beat ingest's last write and its answer.
	BeforeAccepted int
	// BehindSchedule counts requests that left later than their slot
	// because every in-flight slot was busy.
	BehindSchedule int
}

type targetKey struct {
	MessageID, User, Device string
}

func (t target) key() targetKey { return targetKey{t.MessageID, t.User, t.Device} }

// evidence is what was found of one target.
type evidence struct {
	t        target
	receipts []parsedReceipt
	dead     int
}

// account judges every target of the accepted messages. bound holds the
// token suffix of every device still bound.
func account(p *population, ss []sent, lines []receipt, dead []target, bound map[deviceKey]string, ids *regexp.Regexp) *accounting {
	a := &accounting{Messages: len(ss), Retried: map[int]int{}}
	accepted := map[string]answer{}
	byKey := map[targetKey]*evidence{}
	var order []*evidence
	decided := map[deviceKey]bool{}
	for _, s := range ss {
		for st, n := range s.Retried {
			a.Retried[st] += n
		}
		if s.Late > 0 {
			a.BehindSchedule++
		}
		if s.Err != nil {
			a.Failed = append(a.Failed, s)
			continue
		}
		a.Accepted++
		accepted[s.Msg.ID] = answer{At: s.Accepted, Latency: s.Latency}
		a.IngestLatency = append(a.IngestLatency, s.Latency)
		for _, t := range s.Targets {
			if byKey[t.key()] != nil {
				a.Duplicates = append(a.Duplicates, fmt.Sprintf("%s → %s/%s decided twice", t.MessageID, t.User, t.Device))
				continue
			}
			e := &evidence{t: t}
			byKey[t.key()] = e
			order = append(order, e)
			decided[deviceKey{t.User, t.Device}] = true
		}
	}
	a.Targets = len(order)

	for _, l := range lines {
		r, ok := parseReceipt(l, ids)
		if !ok {
			a.Unparsed++
			continue
		}
		d := p.deviceBySuffix(r.Vendor, r.Suffix)
		if d == nil {
			a.Stray = append(a.Stray, fmt.Sprintf("%s receipt of %s for unknown token …%s", r.Vendor, r.MessageID, r.Suffix))
			continue
		}
		e := byKey[targetKey{r.MessageID, d.User, d.ID}]
		if e == nil {
			a.Stray = append(a.Stray, fmt.Sprintf("%s receipt of %s for %s/%s, which no decision named", r.Vendor, r.MessageID, d.User, d.ID))
			continue
		}
		e.receipts = append(e.receipts, r)
	}
	for _, t := range dead {
		e := byKey[t.key()]
		if e == nil {
			a.Stray = append(a.Stray, fmt.Sprintf("dead letter of %s for %s/%s, which no decision named", t.MessageID, t.User, t.Device))
			continue
		}
		e.dead++
	}

	for _, e := range order {
		d := p.byKey[deviceKey{e.t.User, e.t.Device}]
		switch n := len(e.receipts); {
		case n > 0:
			a.Delivered++
			first := e.receipts[0].At
			for _, r := range e.receipts[1:] {
				if r.At.Before(first) {
					first = r.At
				}
			}
			acc := accepted[e.t.MessageID]
			e2e := first.Sub(acc.At)
			if e2e < 0 {
				a.BeforeAccepted++
			}
			a.EndToEnd = append(a.EndToEnd, e2e)
			a.FromPost = append(a.FromPost, first.Sub(acc.At.Add(-acc.Latency)))
			switch {
			case e.dead > 0:
				a.Duplicates = append(a.Duplicates, fmt.Sprintf("%s → %s/%s delivered and dead-lettered", e.t.MessageID, e.t.User, e.t.Device))
			case n > 1 && sameCollapse(e.receipts):
				a.Repeats++
			case n > 1:
				a.Duplicates = append(a.Duplicates, fmt.Sprintf("%s → %s/%s delivered %d times", e.t.MessageID, e.t.User, e.t.Device, n))
			}
		case e.dead > 0:
			a.DeadLettered++
			if e.dead > 1 {
				a.Duplicates = append(a.Duplicates, fmt.Sprintf("%s → %s/%s dead-lettered %d times", e.t.MessageID, e.t.User, e.t.Device, e.dead))
			}
		case d != nil && d.Invalid && bound[d.key()] != d.Suffix:
			a.InvalidToken++
		default:
			a.Unaccounted = append(a.Unaccounted, e.t)
		}
	}

	for _, d := range p.Devices {
		gone := bound[d.key()] != d.Suffix
		switch {
		case d.Invalid && gone:
			a.InvalidDevices++
			a.InvalidRemoved++
		case d.Invalid && decided[d.key()]:
			a.InvalidDevices++
			a.InvalidLeft++
		case d.Invalid:
			a.InvalidDevices++
			a.InvalidUntouched++
		case gone:
			a.ValidLost = append(a.ValidLost, d.key())
		}
	}
	return a
}

// sameCollapse reports whether every receipt carries one non-empty
// collapse key.
func sameCollapse(rs []parsedReceipt) bool {
	for _, r := range rs {
		if r.Collapse == "" || r.Collapse != rs[0].Collapse {
			return false
		}
	}
	return true
}

// passed reports whether the run is accounted for: every message accepted,
// every target in exactly one outcome, nothing the service did not decide
// on, and no valid binding lost.
func (a *accounting) passed() bool {
	return len(a.Failed) == 0 && len(a.Unaccounted) == 0 && len(a.Duplicates) == 0 &&
		len(a.Stray) == 0 && len(a.ValidLost) == 0 && a.Unparsed == 0 && a.InvalidLeft == 0
}

// percentile returns the nearest-rank q-th percentile (0 < q <= 100) of
// ds, or 0 for none.
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := int(math.Ceil(q / 100 * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

// statusNames renders retried statuses as "409×3 500×1" (0 is a
// transport failure).
func statusNames(m map[int]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	var parts []string
	for _, k := range keys {
		name := strconv.Itoa(k)
		if k == 0 {
			name = "network"
		}
		parts = append(parts, fmt.Sprintf("%s×%d", name, m[k]))
	}
	return strings.Join(parts, " ")
}
