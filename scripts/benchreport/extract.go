package main

import (
	"fmt"
	"sort"
	"strings"
)

// Where the benchmarks the report reads live.
const (
	costPackage     = "shared/app"
	costBenchmark   = "BenchmarkCost"
	fixedBenchmark  = "BenchmarkCostFixed"
	policyPackage   = "shared/policy"
	policyBench     = "BenchmarkEvaluate"
	providerPackage = "shared/provider/"
)

// mixNames are the mixes of BenchmarkCost, in the report's order.
var mixNames = []string{"peer", "group50", "group1000"}

// mixLabels say what each mix is.
var mixLabels = map[string]string{
	"peer":      "1:1 chat (one offline phone)",
	"group50":   "50-member group (30% offline)",
	"group1000": "1,000-member group (30% offline)",
}

// loadOf reads the per-message (or per-run) load of one function.
func loadOf(r *metricReader, fn, per string) Load {
	return Load{
		BatchGets:    r.get(fn + "-batchget-req" + per),
		OtherDDB:     r.get(fn + "-ddb-other-req" + per),
		ItemsRead:    r.get(fn + "-items-read" + per),
		ItemsWritten: r.get(fn + "-items-written" + per),
		TxItems:      r.get(fn + "-tx-items" + per),
		SQSRequests:  r.get(fn + "-sqs-req" + per),
		SQSMessages:  r.get(fn + "-sqs-msgs" + per),
		Secrets:      r.get(fn + "-secrets-req" + per),
		CPUMs:        r.get(fn + "-cpu-ms" + per),
		MemoryMB:     r.get(fn + "-memory-mb"),
	}
}

// mixOf reads one sub-benchmark of BenchmarkCost.
func mixOf(b Benchmark) (Mix, error) {
	r := &metricReader{b: b}
	m := Mix{
		Name:               strings.TrimPrefix(b.Name, costBenchmark+"/"),
		Pushes:             r.get("pushes/msg"),
		Recipients:         r.get("recipients/msg"),
		BodyBytes:          r.get("body-bytes/msg"),
		Targets:            map[string]float64{},
		Envelopes:          r.get("envelopes/msg"),
		EnvelopeBytes:      r.get("envelope-bytes/msg"),
		EnvelopeMaxBytes:   r.get("envelope-max-bytes"),
		Ingest:             loadOf(r, "ingest", "/msg"),
		Dispatch:           loadOf(r, "dispatch", "/msg"),
		RecipientItemBytes: r.get("recipient-item-max-bytes"),
		TokenItemBytes:     r.get("token-item-max-bytes"),
		BadgeItemBytes:     r.get("badge-item-max-bytes"),
		RequestItemBytes:   r.get("request-item-max-bytes"),
	}
	m.Ingest.LogBytes = r.get("ingest-log-bytes/msg")
	m.Ingest.LogLines = r.get("ingest-log-lines/msg")
	m.Dispatch.LogBytes = r.get("dispatch-log-bytes/msg")
	m.Dispatch.LogLines = r.get("dispatch-log-lines/msg")
	for unit, v := range b.Metrics {
		if vendor, ok := strings.CutPrefix(unit, "targets-"); ok {
			m.Targets[strings.TrimSuffix(vendor, "/msg")] = v
		}
	}
	if len(m.Targets) == 0 {
		r.missing = append(r.missing, "targets-<vendor>/msg")
	}
	return m, r.err()
}

// fixedOf reads BenchmarkCostFixed.
func fixedOf(b Benchmark) (Fixed, error) {
	r := &metricReader{b: b}
	f := Fixed{
		SQSEventSources:     r.get("sqs-event-sources"),
		SecretReaders:       r.get("sqs-event-sources") + r.get("http-functions"),
		Cleanup:             loadOf(r, "cleanup", "/run"),
		CleanupRunsPerMonth: r.get("cleanup-runs/month"),
	}
	f.Cleanup.LogBytes = r.get("cleanup-log-bytes/run")
	f.Cleanup.LogLines = r.get("cleanup-log-lines/run")
	return f, r.err()
}

// Decision is the policy engine's cost per device decision.
type Decision struct {
	NsPerDevice     float64 `json:"nsPerDevice"`
	AllocsPerDevice float64 `json:"allocsPerDevice"`
	BytesPerDevice  float64 `json:"bytesPerDevice"`
	DevicesPerOp    float64 `json:"devicesPerRecipient"`
}

func decisionOf(b Benchmark) (Decision, error) {
	r := &metricReader{b: b}
	d := Decision{NsPerDevice: r.get("ns/device"), DevicesPerOp: r.get("devices/op")}
	allocs, bytes := r.get("allocs/op"), r.get("B/op")
	if d.DevicesPerOp > 0 {
		d.AllocsPerDevice = allocs / d.DevicesPerOp
		d.BytesPerDevice = bytes / d.DevicesPerOp
	}
	return d, r.err()
}

// Throughput is one provider benchmark's sends per CPU-second against its
// vendor's emulator (both in one process, so a floor for the provider).
type Throughput struct {
	Vendor       string  `json:"vendor"`
	Case         string  `json:"case"`
	PerCPUSecond float64 `json:"sendsPerCpuSecond"`
	Unit         string  `json:"unit"`
}

// throughputs collects every provider benchmark metric per CPU-second.
func throughputs(bs []Benchmark) []Throughput {
	var out []Throughput
	for _, b := range bs {
		vendor, ok := strings.CutPrefix(b.Package, providerPackage)
		if !ok {
			continue
		}
		for unit, v := range b.Metrics {
			if strings.HasSuffix(unit, "/cpu-s") {
				c := strings.TrimPrefix(strings.TrimPrefix(b.Name, "BenchmarkSend"), "/")
				if c == "" {
					c = "send"
				}
				out = append(out, Throughput{Vendor: vendor, Case: c, PerCPUSecond: v, Unit: unit})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Vendor != out[j].Vendor {
			return out[i].Vendor < out[j].Vendor
		}
		return out[i].Case < out[j].Case
	})
	return out
}

// sendCPU is the CPU seconds per send of each vendor's provider, from its
// best case (the batch its envelopes are sent in).
func sendCPU(ts []Throughput) map[string]float64 {
	best := map[string]float64{}
	for _, t := range ts {
		best[t.Vendor] = max(best[t.Vendor], t.PerCPUSecond)
	}
	out := map[string]float64{}
	for v, n := range best {
		if n > 0 {
			out[v] = 1 / n
		}
	}
	return out
}

// costInputs reads the mixes and the fixed load from the benchmarks.
func costInputs(bs []Benchmark) ([]Mix, Fixed, error) {
	var mixes []Mix
	var errs []string
	for _, name := range mixNames {
		b, ok := find(bs, costPackage, costBenchmark+"/"+name)
		if !ok {
			errs = append(errs, fmt.Sprintf("%s %s/%s did not run", costPackage, costBenchmark, name))
			continue
		}
		m, err := mixOf(b)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		mixes = append(mixes, m)
	}
	var f Fixed
	if b, ok := find(bs, costPackage, fixedBenchmark); ok {
		var err error
		if f, err = fixedOf(b); err != nil {
			errs = append(errs, err.Error())
		}
	} else {
		errs = append(errs, fmt.Sprintf("%s %s did not run", costPackage, fixedBenchmark))
	}
	if len(errs) > 0 {
		return mixes, f, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return mixes, f, nil
}
