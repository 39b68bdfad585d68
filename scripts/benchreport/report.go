package main

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Report is everything one `make bench` measured and derived; it is written
// whole to report.json and shown in part in report.md.
type Report struct {
	Generated   string       `json:"generated"`
	GoVersion   string       `json:"goVersion"`
	Host        Host         `json:"host"`
	Prices      Prices       `json:"prices"`
	Assumptions Assumptions  `json:"assumptions"`
	Decision    *Decision    `json:"decision"`
	Mixes       []Mix        `json:"mixes"`
	Costs       []MixCost    `json:"costs"`
	Fixed       *Fixed       `json:"fixed"`
	FixedLines  []Line       `json:"fixedMonthly"`
	FixedUSD    float64      `json:"fixedMonthlyUsd"`
	Throughput  []Throughput `json:"dispatchThroughput"`
	Binaries    []Binary     `json:"binaries"`
	Benchmarks  []Benchmark  `json:"benchmarks"`
	Errors      []string     `json:"errors"`
}

// Host is the machine the numbers come from.
type Host struct {
	GOOS   string `json:"goos"`
	GOARCH string `json:"goarch"`
	CPU    string `json:"cpu"`
	NumCPU int    `json:"numCpu"`
}

// Binary is one function's (or the bare baseline's) sizes and start-up.
type Binary struct {
	Name          string  `json:"name"`
	HostBytes     int64   `json:"hostBytes"`
	Arm64Bytes    int64   `json:"arm64Bytes"`
	StartMedianMs float64 `json:"startMedianMs"`
	StartP90Ms    float64 `json:"startP90Ms"`
	StartMinMs    float64 `json:"startMinMs"`
	Runs          int     `json:"runs"`
	FailedRuns    int     `json:"failedRuns"`
}

// baseline names the bare aws-lambda-go binary among Binaries.
const baseline = "bare"

// fillCosts prices the mixes and the fixed load, recording what cannot be
// priced as errors.
func (r *Report) fillCosts() {
	cpu := sendCPU(r.Throughput)
	for _, m := range r.Mixes {
		c, err := priceMix(m, cpu, r.Prices, r.Assumptions)
		if err != nil {
			r.Errors = append(r.Errors, err.Error())
			continue
		}
		r.Costs = append(r.Costs, c)
	}
	if r.Fixed != nil {
		lines, err := priceFixed(*r.Fixed, r.Prices, r.Assumptions)
		if err != nil {
			r.Errors = append(r.Errors, err.Error())
			return
		}
		r.FixedLines = lines
		r.FixedUSD = sum(lines)
	}
}

// fixedPerMillion is the fixed monthly cost spread over the assumed
// monthly pushes, per million.
func (r *Report) fixedPerMillion() float64 {
	if r.Assumptions.MonthlyPushes <= 0 {
		return 0
	}
	return r.FixedUSD / (r.Assumptions.MonthlyPushes / 1e6)
}

// money prints dollars with enough digits to tell small lines apart.
func money(v float64) string {
	a := math.Abs(v)
	switch {
	case a == 0:
		return "$0"
	case a >= 100:
		return fmt.Sprintf("$%.0f", v)
	case a >= 1:
		return fmt.Sprintf("$%.2f", v)
	case a >= 0.01:
		return fmt.Sprintf("$%.3f", v)
	}
	return fmt.Sprintf("$%.2g", v)
}

// num prints a quantity with about four significant digits.
func num(v float64) string {
	a := math.Abs(v)
	switch {
	case a == 0:
		return "0"
	case a >= 10000:
		return group(int64(math.Round(v)))
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// group prints n with thousands separators.
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func mb(n int64) string {
	if n <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}

// table writes a Markdown table whose first left columns are text and the
// others numbers.
func table(sb *strings.Builder, left int, head []string, rows [][]string) {
	sb.WriteString("| " + strings.Join(head, " | ") + " |\n|")
	for i := range head {
		if i < left {
			sb.WriteString("---|")
		} else {
			sb.WriteString("---:|")
		}
	}
	sb.WriteString("\n")
	for _, r := range rows {
		sb.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
	sb.WriteString("\n")
}

// costBars are the cost chart's bars: one per mix, a segment per service.
func (r *Report) costBars() []Bar {
	var bars []Bar
	for _, c := range r.Costs {
		byService := map[string]float64{}
		var order []string
		for _, l := range c.Lines {
			if _, ok := byService[l.Service]; !ok {
				order = append(order, l.Service)
			}
			byService[l.Service] += l.USD
		}
		b := Bar{Label: mixLabels[c.Mix]}
		for _, s := range order {
			b.Segments = append(b.Segments, Segment{Name: s, Value: byService[s]})
		}
		bars = append(bars, b)
	}
	return bars
}

// throughputBars are the throughput chart's bars: each vendor's best case.
func (r *Report) throughputBars() []Bar {
	best := map[string]Throughput{}
	var vendors []string
	for _, t := range r.Throughput {
		if b, ok := best[t.Vendor]; !ok || t.PerCPUSecond > b.PerCPUSecond {
			if !ok {
				vendors = append(vendors, t.Vendor)
			}
			best[t.Vendor] = t
		}
	}
	sort.Strings(vendors)
	var bars []Bar
	for _, v := range vendors {
		bars = append(bars, Bar{Label: v + " (" + best[v].Case + ")", Segments: []Segment{{Name: "sends per CPU-second", Value: best[v].PerCPUSecond}}})
	}
	return bars
}

// markdown renders the report for people; the JSON holds every number.
func (r *Report) markdown() string {
	var sb strings.Builder
	a := r.Assumptions
	sb.WriteString("# Benchmark report\n\n")
	fmt.Fprintf(&sb, "Generated %s by `make bench` on %s (%s/%s, %d CPUs) with %s. "+
		"Every number comes from this run except the prices and the assumptions stated under [The cost model](#the-cost-model). "+
		"All of them, and every benchmark result, are in [`report.json`](report.json).\n\n",
		r.Generated, r.Host.CPU, r.Host.GOOS, r.Host.GOARCH, r.Host.NumCPU, r.GoVersion)
	if len(r.Errors) > 0 {
		sb.WriteString("**Incomplete run.** What failed or could not be priced:\n\n")
		for _, e := range r.Errors {
			sb.WriteString("- " + e + "\n")
		}
		sb.WriteString("\n")
	}

	sb.WriteString("## Cost per million pushes\n\n")
	if len(r.Costs) > 0 {
		rows := [][]string{}
		for _, c := range r.Costs {
			biggest := c.Lines[0]
			for _, l := range c.Lines {
				if l.USD > biggest.USD {
					biggest = l
				}
			}
			rows = append(rows, []string{mixLabels[c.Mix], num(r.mix(c.Mix).Pushes), money(c.USDPerMillion),
				money(c.USDPerMillion + r.fixedPerMillion()), biggest.Service + ", " + biggest.Item + " (" + money(biggest.USD) + ")"})
		}
		table(&sb, 1, []string{"Mix", "Pushes per message", "Per million pushes", fmt.Sprintf("With fixed costs at %s pushes/month", num(a.MonthlyPushes)), "Largest line"}, rows)
		sb.WriteString("![Cost per million pushes by service](cost.svg)\n\n")
		fmt.Fprintf(&sb, "The stack also costs %s a month whatever the traffic ([Fixed monthly cost](#fixed-monthly-cost)).\n\n", money(r.FixedUSD))
	} else {
		sb.WriteString("Not priced: the cost benchmarks did not run.\n\n")
	}

	sb.WriteString("## Decision cost\n\n")
	if d := r.Decision; d != nil {
		sb.WriteString("BenchmarkEvaluate (`shared/policy`): one recipient's decisions with a prepared message, over the benchmark's mix of 1,000 recipients, per device decided.\n\n")
		table(&sb, 0, []string{"ns per device", "allocs per device", "bytes per device", "devices per recipient"},
			[][]string{{num(d.NsPerDevice), num(d.AllocsPerDevice), num(d.BytesPerDevice), num(d.DevicesPerOp)}})
	} else {
		sb.WriteString("BenchmarkEvaluate did not run.\n\n")
	}

	if len(r.Costs) > 0 {
		sb.WriteString("## AWS requests per push\n\n")
		sb.WriteString("Per push, counted by the fault proxy (forwarding only) on one message of each mix after a warm-up, through the production constructors of the ingest and dispatch functions; SQS receives and deletes are the event source mapping's, one record per invocation.\n\n")
		head := []string{"Per push"}
		for _, c := range r.Costs {
			head = append(head, c.Mix)
		}
		row := func(name string, f func(MixCost, Mix) string) []string {
			out := []string{name}
			for _, c := range r.Costs {
				out = append(out, f(c, r.mix(c.Mix)))
			}
			return out
		}
		table(&sb, 1, head, [][]string{
			row("recipients per message", func(_ MixCost, m Mix) string { return num(m.Recipients) }),
			row("pushes per message", func(_ MixCost, m Mix) string { return num(m.Pushes) }),
			row("API Gateway requests", func(c MixCost, _ Mix) string { return num(c.PerPush.APIRequests) }),
			row("Lambda invocations", func(c MixCost, _ Mix) string { return num(c.PerPush.Invocations) }),
			row("Lambda GB-seconds", func(c MixCost, _ Mix) string { return num(c.PerPush.GBSeconds) }),
			row("DynamoDB requests", func(c MixCost, _ Mix) string { return num(c.PerPush.DynamoRequests) }),
			row("DynamoDB items read", func(c MixCost, _ Mix) string { return num(c.PerPush.ItemsRead) }),
			row("DynamoDB items written", func(c MixCost, _ Mix) string { return num(c.PerPush.ItemsWritten) }),
			row("read request units", func(c MixCost, _ Mix) string { return num(c.PerPush.RRU) }),
			row("write request units", func(c MixCost, _ Mix) string { return num(c.PerPush.WRU) }),
			row("SQS billed requests", func(c MixCost, _ Mix) string { return num(c.PerPush.SQSRequests) }),
			row("Secrets Manager calls", func(c MixCost, _ Mix) string { return num(c.PerPush.SecretsCalls) }),
			row("log bytes", func(c MixCost, _ Mix) string { return num(c.PerPush.LogBytes) }),
			row("targets per envelope", func(c MixCost, _ Mix) string { return num(c.PerPush.EnvelopeTargets) }),
			row("ingest CPU per message (ms, this host)", func(_ MixCost, m Mix) string { return num(m.Ingest.CPUMs) }),
			row("dispatch engine CPU per message (ms, this host)", func(_ MixCost, m Mix) string { return num(m.Dispatch.CPUMs) }),
			row("ingest billed ms per invocation (model)", func(c MixCost, _ Mix) string { return num(c.IngestBilledMs) }),
			row("dispatch billed ms per invocation (model)", func(c MixCost, _ Mix) string { return num(c.DispatchBilledMs) }),
		})
	}

	sb.WriteString("## The cost model\n\n")
	fmt.Fprintf(&sb, "Per message of a mix, the benchmarks measure the AWS requests and items (counted by the proxy), the largest item of each kind (scanned from the tables afterwards), "+
		"the CPU time of our handlers (rusage around each call, against moto directly) and the bytes of our log and EMF lines at the default INFO level. The model prices them:\n\n"+
		"- **API Gateway**: one HTTP API request per message (one per 512 KB of body).\n"+
		"- **Lambda**: one ingest invocation per message and one dispatch invocation per %s SQS record(s) (a quiet queue). Billed duration = our CPU time × %s ÷ memory (Lambda gives a full vCPU only at %s MB) + the assumed round trips below, rounded up to the millisecond; "+
		"memory from template.yaml (ingest %s MB, dispatch %s MB). The vendor's CPU per send comes from the provider benchmarks below (a floor, since the emulator's share is in it too, which makes the cost an upper bound).\n"+
		"- **DynamoDB** on demand: ingest reads eventually consistent (½ RRU per item per 4 KB), dispatch re-reads the token index strongly consistent (1 RRU), writes 1 WRU per 1 KB of the largest item of their kind, transactions twice. Items are what the proxy counted: DynamoDB also bills a key that finds no item at the minimum, which this does not count.\n"+
		"- **SQS**: each 64 KB of a request is one request: ingest's SendMessageBatch, the event source mapping's ReceiveMessage and DeleteMessageBatch, dispatch's re-enqueues.\n"+
		"- **CloudWatch Logs**: ingestion of our lines plus %s bytes per line that the Lambda logger adds (requestId); the template sets SystemLogLevel WARN, so the platform's START/END/REPORT lines are not ingested.\n"+
		"- **Secrets Manager**: calls measured after the warm-up (the cache lives %s minutes per container); the refreshes of warm containers are a fixed cost.\n"+
		"- **Fixed**: idle long polling of every SQS event source mapping, the cleanup schedule (one measured run when nothing is due), and the secret cache refreshes.\n\n",
		plain(a.RecordsPerInvocation), plain(a.FullCPUMemoryMB), plain(a.FullCPUMemoryMB), memOf(r.Mixes, true), memOf(r.Mixes, false),
		plain(a.LogLineOverheadBytes), plain(a.SecretCacheMinutes))
	p := r.Prices
	fmt.Fprintf(&sb, "Prices (%s), in `scripts/benchreport/cost.go`:\n\n", p.Date)
	table(&sb, 1, []string{"Price", "USD"}, [][]string{
		{"API Gateway HTTP API, per million requests (first 300 M/month)", plain(p.HTTPAPIPerMillion)},
		{"Lambda, per million requests", plain(p.LambdaRequestsPerMillion)},
		{"Lambda arm64, per GB-second (first 7.5 B GB-s/month)", plain(p.LambdaArmGBSecond)},
		{"DynamoDB on-demand, per million read request units", plain(p.DynamoRRUPerMillion)},
		{"DynamoDB on-demand, per million write request units", plain(p.DynamoWRUPerMillion)},
		{"SQS standard, per million requests (64 KB chunks)", plain(p.SQSPerMillion)},
		{"CloudWatch Logs ingestion, per GB", plain(p.LogsIngestionPerGB)},
		{"Secrets Manager, per 10,000 API calls", plain(p.SecretsPer10k)},
	})
	sb.WriteString("Assumptions (what cannot be measured against a local emulator):\n\n")
	table(&sb, 1, []string{"Assumption", "Value"}, [][]string{
		{"DynamoDB round trip, in region", num(a.DynamoDBMs) + " ms"},
		{"SQS round trip, in region", num(a.SQSMs) + " ms"},
		{"Secrets Manager round trip", num(a.SecretsMs) + " ms"},
		{"vendor push API round trip from us-east-1", num(a.VendorMs) + " ms"},
		{"ingest BatchGetItem calls in flight (shared/dynamo)", num(a.IngestReadParallel)},
		{"dispatch per-user writes in flight (shared/dispatch)", num(a.DispatchStoreParallel)},
		{"vendor sends in flight per invocation (APNs provider bound)", num(a.VendorParallel)},
		{"SQS records per dispatch invocation (quiet queue)", num(a.RecordsPerInvocation)},
		{"idle ReceiveMessage calls per event source mapping per minute (5 pollers, 20 s long polls)", num(a.IdlePollsPerMinute)},
		{"warm containers per secret-reading function", num(a.WarmContainers)},
		{"pushes per month, to spread the fixed cost", num(a.MonthlyPushes)},
		{"month", "30 days; GB = 2^30 bytes"},
	})
	for _, c := range r.Costs {
		fmt.Fprintf(&sb, "**%s**, %s per million pushes:\n\n", mixLabels[c.Mix], money(c.USDPerMillion))
		var rows [][]string
		for _, l := range c.Lines {
			rows = append(rows, []string{l.Service, l.Item, num(l.Quantity) + " " + l.Unit, money(l.USD)})
		}
		table(&sb, 2, []string{"Service", "Item", "Per push", "Per million pushes"}, rows)
	}

	sb.WriteString("## Fixed monthly cost\n\n")
	if len(r.FixedLines) > 0 {
		fmt.Fprintf(&sb, "%s event source mappings, cleanup %s runs a month (%s ms CPU, %s DynamoDB requests per run when nothing is due), %s functions caching a secret:\n\n",
			plain(r.Fixed.SQSEventSources), num(r.Fixed.CleanupRunsPerMonth), num(r.Fixed.Cleanup.CPUMs), plain(r.Fixed.Cleanup.BatchGets+r.Fixed.Cleanup.OtherDDB), plain(r.Fixed.SecretReaders))
		var rows [][]string
		for _, l := range r.FixedLines {
			rows = append(rows, []string{l.Service, l.Item, num(l.Quantity) + " " + l.Unit, money(l.USD)})
		}
		rows = append(rows, []string{"**Total**", "", "", "**" + money(r.FixedUSD) + "**"})
		table(&sb, 2, []string{"Service", "Item", "Per month", "USD per month"}, rows)
		sb.WriteString("Not included: CloudWatch custom metrics from the EMF lines (billed per metric per month, not per push), DynamoDB storage, data transfer, and the device, presence and settings routes (driven by your clients, not by pushes).\n\n")
	} else {
		sb.WriteString("Not priced: BenchmarkCostFixed did not run.\n\n")
	}

	sb.WriteString("## Dispatch throughput\n\n")
	if len(r.Throughput) > 0 {
		sb.WriteString("Each provider's BenchmarkSend against its vendor emulator in the same process, so the emulator's CPU is counted too: a floor for the provider alone.\n\n")
		var rows [][]string
		for _, t := range r.Throughput {
			rows = append(rows, []string{t.Vendor, t.Case, num(t.PerCPUSecond), t.Unit})
		}
		table(&sb, 2, []string{"Vendor", "Case", "Sends per CPU-second", "Reported as"}, rows)
		sb.WriteString("![Sends per CPU-second by vendor](throughput.svg)\n\n")
	} else {
		sb.WriteString("No provider benchmark ran.\n\n")
	}

	sb.WriteString("## Binaries and start-up\n\n")
	if len(r.Binaries) > 0 {
		var base *Binary
		for i := range r.Binaries {
			if r.Binaries[i].Name == baseline {
				base = &r.Binaries[i]
			}
		}
		sb.WriteString("Start-up is exec to the first request for work (`scripts/coldstart`), on this host's build (`CGO_ENABLED=0 -trimpath -tags lambda.norpc -ldflags='-s -w'`); the arm64 size is the deployed artifact. `bare` is an aws-lambda-go function that does nothing before `lambda.Start`.\n\n")
		var rows [][]string
		for _, b := range r.Binaries {
			extra := "–"
			if base != nil && b.Name != baseline && b.Runs > 0 {
				extra = fmt.Sprintf("%+.2f ms", b.StartMedianMs-base.StartMedianMs)
			}
			start := "failed"
			if b.Runs > 0 {
				start = fmt.Sprintf("%.2f ms", b.StartMedianMs)
			}
			rows = append(rows, []string{b.Name, mb(b.HostBytes), mb(b.Arm64Bytes), start, fmt.Sprintf("%.2f ms", b.StartP90Ms), extra})
		}
		table(&sb, 1, []string{"Binary", "Host size", "arm64 size", "Start-up median", "p90", "Over bare"}, rows)
	} else {
		sb.WriteString("No binary was measured.\n\n")
	}

	sb.WriteString("## Other benchmarks\n\n")
	var rows [][]string
	for _, b := range r.Benchmarks {
		if b.Package == costPackage && strings.HasPrefix(b.Name, costBenchmark) {
			continue // shown above
		}
		units := make([]string, 0, len(b.Metrics))
		for u := range b.Metrics {
			units = append(units, u)
		}
		sort.Strings(units)
		var ms []string
		for _, u := range units {
			ms = append(ms, num(b.Metrics[u])+" "+u)
		}
		rows = append(rows, []string{b.Package, b.Name, strconv.Itoa(b.N), strings.Join(ms, ", ")})
	}
	table(&sb, 2, []string{"Package", "Benchmark", "Iterations", "Results"}, rows)
	return sb.String()
}

// mix returns the measured mix of that name.
func (r *Report) mix(name string) Mix {
	for _, m := range r.Mixes {
		if m.Name == name {
			return m
		}
	}
	return Mix{}
}

// plain prints a stated figure as written.
func plain(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// memOf is the ingest (or dispatch) memory size of the mixes.
func memOf(ms []Mix, ingest bool) string {
	for _, m := range ms {
		if ingest {
			return plain(m.Ingest.MemoryMB)
		}
		return plain(m.Dispatch.MemoryMB)
	}
	return "?"
}
