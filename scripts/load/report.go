package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/offline-push/offline-push/shared/dispatch"
	"github.com/offline-push/offline-push/shared/testenv"
)

// report is everything a run learnt, printed at its end.
type report struct {
	opts     options
	run      string
	pop      *population
	logDir   string
	keepLogs bool

	sendTime, quietAfter time.Duration
	unreadableDead       int
	proxy                map[string]testenv.OpCount
	tally                map[string]int // dispatch's metrics
	ingestTally          map[string]int
	acc                  *accounting

	leaks    []leak
	scanned  int
	scanDone bool
}

// passed reports whether the run proved what it must.
func (r *report) passed() bool {
	return r.acc != nil && r.acc.passed() && r.scanDone && len(r.leaks) == 0 && r.unreadableDead == 0
}

// maxListed bounds the examples printed per problem.
const maxListed = 10

func (r *report) print(w io.Writer) {
	o := r.opts
	fmt.Fprintf(w, "\nload run %s\n", r.run)
	invalid := len(r.pop.invalid())
	fmt.Fprintf(w, "  population  %d users, %d devices over %s, %d with a dead token\n",
		len(r.pop.Users), len(r.pop.Devices), vendorMix(r.pop), invalid)
	fmt.Fprintf(w, "  load        %g msg/s for %s (%d messages, %.0f%% to groups of 3 to %d), sent in %s\n",
		o.Rate, o.Duration, o.messageCount(), 100*o.GroupShare, o.GroupMax, r.sendTime.Round(time.Millisecond))
	fmt.Fprintf(w, "  faults      vendors: transient %g, throttled %g, dead tokens %g; AWS throttled %g\n",
		o.Transient, o.VendorThrot, o.Invalid, o.Throttle)
	if r.proxy != nil {
		calls, faults := awsCallTotals(r.proxy)
		fmt.Fprintf(w, "  AWS proxy   %d calls forwarded to moto, %d answered ThrottlingException\n", calls, faults)
	}
	if r.quietAfter > 0 {
		fmt.Fprintf(w, "  drained     %s after the last message\n", r.quietAfter.Round(time.Second))
	}
	a := r.acc
	if a == nil {
		where := "rerun with -logs DIR to keep the logs"
		if r.keepLogs {
			where = "logs: " + r.logDir
		}
		fmt.Fprintf(w, "  the run did not reach its accounting; %s\n\nFAIL\n", where)
		return
	}

	fmt.Fprintf(w, "\ningest\n")
	fmt.Fprintf(w, "  messages %d, accepted %d, failed %d; retried answers: %s; behind schedule: %d\n",
		a.Messages, a.Accepted, len(a.Failed), statusNames(a.Retried), a.BehindSchedule)
	for i, s := range a.Failed {
		if i == maxListed {
			fmt.Fprintf(w, "  … and %d more\n", len(a.Failed)-maxListed)
			break
		}
		fmt.Fprintf(w, "  failed: %v\n", s.Err)
	}
	fmt.Fprintf(w, "  latency p50 %s  p99 %s  max %s  (n=%d, request to 202)\n",
		ms(percentile(a.IngestLatency, 50)), ms(percentile(a.IngestLatency, 99)), ms(percentile(a.IngestLatency, 100)), len(a.IngestLatency))
	fmt.Fprintf(w, "\nend to end (to the first emulator receipt of each delivered target, as read by this tool)\n")
	fmt.Fprintf(w, "  from the 202   p50 %s  p99 %s  max %s  (n=%d; %d receipts came before their 202)\n",
		ms(percentile(a.EndToEnd, 50)), ms(percentile(a.EndToEnd, 99)), ms(percentile(a.EndToEnd, 100)), len(a.EndToEnd), a.BeforeAccepted)
	fmt.Fprintf(w, "  from the POST  p50 %s  p99 %s  max %s\n",
		ms(percentile(a.FromPost, 50)), ms(percentile(a.FromPost, 99)), ms(percentile(a.FromPost, 100)))
	fmt.Fprintf(w, "\naccounting (every target = one message to one device; evidence from outside the service)\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(name string, n int, note string) { fmt.Fprintf(tw, "  %s\t%d\t  %s\n", name, n, note) }
	row("targets", a.Targets, "push decisions in the 202 answers (explain)")
	row("delivered", a.Delivered, "an emulator printed its receipt")
	row("invalid_token", a.InvalidToken, "dead token, no receipt, binding gone from DynamoDB")
	row("dead_lettered", a.DeadLettered, "in a dead-letter queue")
	row("dropped", r.dropped(), "by the stack's own count: "+r.dropNote())
	row("unaccounted", len(a.Unaccounted), "no receipt, no dead letter, no unbind")
	row("duplicates", len(a.Duplicates), "two outcomes, or two receipts without a common collapse key")
	row("repeats", a.Repeats, "delivered again under the same collapse key (folded on the device)")
	row("stray", len(a.Stray), "receipts or dead letters of pushes never decided")
	row("unparsed", a.Unparsed, "standard output lines that are no receipt of this run")
	tw.Flush()
	list := func(name string, items []string) {
		for i, s := range items {
			if i == maxListed {
				fmt.Fprintf(w, "  … and %d more %s\n", len(items)-maxListed, name)
				return
			}
			fmt.Fprintf(w, "  %s: %s\n", name, s)
		}
	}
	var un []string
	for _, t := range a.Unaccounted {
		un = append(un, fmt.Sprintf("%s → %s/%s (%s)", t.MessageID, t.User, t.Device, t.Vendor))
	}
	list("unaccounted", un)
	list("duplicate", a.Duplicates)
	list("stray", a.Stray)

	fmt.Fprintf(w, "\nbindings\n")
	fmt.Fprintf(w, "  dead tokens %d: removed %d, still bound though pushed to %d, never pushed to %d\n",
		a.InvalidDevices, a.InvalidRemoved, a.InvalidLeft, a.InvalidUntouched)
	fmt.Fprintf(w, "  valid tokens lost: %d\n", len(a.ValidLost))
	if r.unreadableDead > 0 {
		fmt.Fprintf(w, "  unreadable dead letters: %d\n", r.unreadableDead)
	}

	fmt.Fprintf(w, "\nthe stack's own counts (metric lines, summed)\n")
	fmt.Fprintf(w, "  ingest    pushes %d, devices %d, recipients %d\n", r.ingestTally["pushes"], r.ingestTally["devices"], r.ingestTally["recipients"])
	fmt.Fprintf(w, "  dispatch  %s\n", tallyLine(r.tally))

	fmt.Fprintf(w, "\nlog scan\n")
	if !r.scanDone {
		fmt.Fprintf(w, "  not done\n")
	} else {
		fmt.Fprintf(w, "  %d lines, %d with a full token or a secret\n", r.scanned, len(r.leaks))
		for i, l := range r.leaks {
			if i == maxListed {
				break
			}
			fmt.Fprintf(w, "  %s line %d holds a %s\n", l.File, l.Line, l.What)
		}
	}
	if r.keepLogs {
		fmt.Fprintf(w, "  logs kept in %s\n", r.logDir)
	}
	verdict := "PASS"
	if !r.passed() {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "\n%s\n", verdict)
}

// dropped sums the stack's count of the drop outcomes other than the
// unbinding ones, which the accounting counts under invalid_token.
func (r *report) dropped() int {
	n := 0
	for _, o := range dropOutcomes {
		n += r.tally[string(o)]
	}
	return n
}

// dropOutcomes are the final outcomes that are neither a delivery, an
// unbind nor a dead letter.
var dropOutcomes = []dispatch.Outcome{dispatch.BadMessage, dispatch.Expired, dispatch.CallCancelled, dispatch.CallSuperseded, dispatch.CallExpired}

func (r *report) dropNote() string {
	var parts []string
	for _, o := range dropOutcomes {
		if n := r.tally[string(o)]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", o, n))
		}
	}
	if len(parts) == 0 {
		return "none (such a target would be unaccounted above)"
	}
	return strings.Join(parts, ", ") + " (their targets are unaccounted above)"
}

// tallyLine renders the stack's metrics, final outcomes first.
func tallyLine(t map[string]int) string {
	if len(t) == 0 {
		return "no metric lines were logged"
	}
	seen := map[string]bool{}
	var parts []string
	for _, o := range dispatch.Outcomes {
		seen[string(o)] = true
		parts = append(parts, fmt.Sprintf("%s %d", o, t[string(o)]))
	}
	var rest []string
	for k := range t {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		parts = append(parts, fmt.Sprintf("%s %d", k, t[k]))
	}
	return strings.Join(parts, ", ")
}

// vendorMix renders how many devices each vendor has.
func vendorMix(p *population) string {
	n := map[string]int{}
	for _, d := range p.Devices {
		n[string(d.Vendor)]++
	}
	var parts []string
	for _, v := range p.vendorsUsed() {
		parts = append(parts, fmt.Sprintf("%s %d", v, n[string(v)]))
	}
	return strings.Join(parts, ", ")
}

// ms renders a duration in milliseconds, or seconds above 10 s.
func ms(d time.Duration) string {
	if d >= 10*time.Second || d <= -10*time.Second {
		return d.Round(100 * time.Millisecond).String()
	}
	return fmt.Sprintf("%dms", d.Milliseconds())
}
