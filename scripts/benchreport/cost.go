package main

import (
	"fmt"
	"math"
	"sort"
)

// Prices are the list prices the cost model uses. Every figure is a
// us-east-1 on-demand list price in US dollars; update the literal below and
// its date together.
type Prices struct {
	// Date says when the figures were taken from AWS's pricing pages.
	Date string `json:"date"`
	// HTTPAPIPerMillion is API Gateway HTTP API, per million requests (first
	// 300 million a month); each 512 KB of a request is billed as one.
	HTTPAPIPerMillion float64 `json:"httpApiPerMillion"`
	// LambdaRequestsPerMillion is Lambda, per million invocations.
	LambdaRequestsPerMillion float64 `json:"lambdaRequestsPerMillion"`
	// LambdaArmGBSecond is Lambda on arm64 (Graviton), per GB-second (first
	// 7.5 billion GB-seconds a month).
	LambdaArmGBSecond float64 `json:"lambdaArmGbSecond"`
	// DynamoRRUPerMillion and DynamoWRUPerMillion are DynamoDB on-demand
	// (standard table class) read and write request units, per million,
	// after the price cut of 1 November 2024.
	DynamoRRUPerMillion float64 `json:"dynamoRruPerMillion"`
	DynamoWRUPerMillion float64 `json:"dynamoWruPerMillion"`
	// SQSPerMillion is an SQS standard queue, per million requests (after
	// the first million a month); each 64 KB chunk of a request's payload is
	// billed as one request.
	SQSPerMillion float64 `json:"sqsPerMillion"`
	// LogsIngestionPerGB is CloudWatch Logs ingestion, per GB (standard log
	// class; also the first tier of Lambda's vended logs).
	LogsIngestionPerGB float64 `json:"logsIngestionPerGb"`
	// SecretsPer10k is Secrets Manager, per 10,000 API calls.
	SecretsPer10k float64 `json:"secretsPer10k"`
}

// listPrices are us-east-1 list prices as published on aws.amazon.com/<service>/pricing
// in 2026 (DynamoDB on-demand after its November 2024 cut). They are the only
// constants in the model besides the assumptions below.
var listPrices = Prices{
	Date:                     "2026 (us-east-1 list prices; DynamoDB on-demand after the 1 Nov 2024 cut)",
	HTTPAPIPerMillion:        1.00,
	LambdaRequestsPerMillion: 0.20,
	LambdaArmGBSecond:        0.0000133334,
	DynamoRRUPerMillion:      0.125,
	DynamoWRUPerMillion:      0.625,
	SQSPerMillion:            0.40,
	LogsIngestionPerGB:       0.50,
	SecretsPer10k:            0.05,
}

// Assumptions are what the model cannot measure on this machine. They are
// stated in the report next to the prices.
type Assumptions struct {
	// The wall time of one round trip to each service from a function in
	// the same region (the vendor's from us-east-1 over the Internet). Runs
	// against moto on this machine say nothing about these.
	DynamoDBMs float64 `json:"dynamoDbMs"`
	SQSMs      float64 `json:"sqsMs"`
	SecretsMs  float64 `json:"secretsMs"`
	VendorMs   float64 `json:"vendorMs"`
	// IngestReadParallel is how many of ingest's BatchGetItem calls are in
	// flight at once (shared/dynamo recipientConcurrency).
	IngestReadParallel float64 `json:"ingestReadParallel"`
	// DispatchStoreParallel is how many of dispatch's per-user writes (badge
	// counts) are in flight at once (dispatch.DefaultConcurrency).
	DispatchStoreParallel float64 `json:"dispatchStoreParallel"`
	// VendorParallel is how many sends to the vendor one invocation keeps in
	// flight (the APNs provider's bound; FCM sends concurrently too).
	VendorParallel float64 `json:"vendorParallel"`
	// FullCPUMemoryMB is the memory size at which Lambda gives a function one
	// full vCPU; below it CPU time stretches by FullCPUMemoryMB/memory.
	FullCPUMemoryMB float64 `json:"fullCpuMemoryMb"`
	// RecordsPerInvocation is the SQS records per dispatch invocation: 1 on
	// a quiet queue, up to the batch size (10) under load, which divides
	// the receive, delete and invocation lines.
	RecordsPerInvocation float64 `json:"recordsPerInvocation"`
	// LogLineOverheadBytes is what the Lambda logger adds to each of our
	// lines in production (the "requestId" attribute of lambdacontext).
	LogLineOverheadBytes float64 `json:"logLineOverheadBytes"`
	// IdlePollsPerMinute is the ReceiveMessage calls an SQS event source
	// mapping makes per minute on an empty queue: five long-polling
	// connections with 20 s waits.
	IdlePollsPerMinute float64 `json:"idlePollsPerMinute"`
	// SecretCacheMinutes is how long a container caches a secret
	// (shared/secrets), and WarmContainers how many containers of each
	// secret-reading function stay warm.
	SecretCacheMinutes float64 `json:"secretCacheMinutes"`
	WarmContainers     float64 `json:"warmContainers"`
	// MonthlyPushes spreads the fixed monthly costs over a traffic volume
	// for the all-in figure.
	MonthlyPushes float64 `json:"monthlyPushes"`
}

// assumptions are the stated figures of the model.
var assumptions = Assumptions{
	DynamoDBMs:            6,
	SQSMs:                 12,
	SecretsMs:             20,
	VendorMs:              120,
	IngestReadParallel:    8,
	DispatchStoreParallel: 16,
	VendorParallel:        100,
	FullCPUMemoryMB:       1769,
	RecordsPerInvocation:  1,
	LogLineOverheadBytes:  float64(len(`,"requestId":"8f5c1a52-3b1e-4c1f-9d7a-2e6b0c4d9a11"`)),
	IdlePollsPerMinute:    15,
	SecretCacheMinutes:    5,
	WarmContainers:        1,
	MonthlyPushes:         10e6,
}

// Billing granularities.
const (
	minutesPerMonth = 30 * 24 * 60
	gib             = 1 << 30
	readUnitBytes   = 4096      // one read request unit reads up to 4 KB
	writeUnitBytes  = 1024      // one write request unit writes up to 1 KB
	sqsChunkBytes   = 64 * 1024 // SQS bills each 64 KB of payload as a request
	apiChunkBytes   = 512 * 1024
)

// Load is what one function does for one message, or for one run of a
// scheduled function, as the benchmarks measured it.
type Load struct {
	BatchGets    float64 `json:"batchGets"`    // BatchGetItem requests
	OtherDDB     float64 `json:"otherDdb"`     // every other DynamoDB request
	ItemsRead    float64 `json:"itemsRead"`    // items returned by plain reads
	ItemsWritten float64 `json:"itemsWritten"` // items written by plain writes
	TxItems      float64 `json:"txItems"`      // items of transactions (twice the units)
	SQSRequests  float64 `json:"sqsRequests"`  // SendMessage(Batch) requests
	SQSMessages  float64 `json:"sqsMessages"`  // messages those sent
	Secrets      float64 `json:"secrets"`      // Secrets Manager calls
	CPUMs        float64 `json:"cpuMs"`        // CPU time on this host
	LogBytes     float64 `json:"logBytes"`     // log and metric bytes written
	LogLines     float64 `json:"logLines"`     // lines of them
	MemoryMB     float64 `json:"memoryMb"`     // the function's memory in template.yaml
}

// Mix is one traffic mix measured per message: its fan-out, the ingest
// function's load and the load of the dispatch functions that delivered
// its pushes.
type Mix struct {
	Name             string             `json:"name"`
	Pushes           float64            `json:"pushesPerMessage"`
	Recipients       float64            `json:"recipientsPerMessage"`
	BodyBytes        float64            `json:"bodyBytes"`
	Targets          map[string]float64 `json:"targetsByVendor"`
	Envelopes        float64            `json:"envelopes"`
	EnvelopeBytes    float64            `json:"envelopeBytes"`
	EnvelopeMaxBytes float64            `json:"envelopeMaxBytes"`
	Ingest           Load               `json:"ingest"`
	Dispatch         Load               `json:"dispatch"`
	// The largest item of each kind in the tables after the run, in
	// DynamoDB's billing bytes: what ingest reads per recipient, the token
	// index items dispatch re-reads, badge items, RequestTable items.
	RecipientItemBytes float64 `json:"recipientItemBytes"`
	TokenItemBytes     float64 `json:"tokenItemBytes"`
	BadgeItemBytes     float64 `json:"badgeItemBytes"`
	RequestItemBytes   float64 `json:"requestItemBytes"`
}

// Line is one priced quantity: how much of it one push (or one month)
// takes, and what a million pushes (or the month) pay for it.
type Line struct {
	Service  string  `json:"service"`
	Item     string  `json:"item"`
	Quantity float64 `json:"quantity"`
	Unit     string  `json:"unit"`
	USD      float64 `json:"usd"`
}

// MixCost is a mix priced per million pushes.
type MixCost struct {
	Mix   string `json:"mix"`
	Lines []Line `json:"lines"`
	// USDPerMillion is the sum of the lines: the variable cost of a million
	// pushes of this mix.
	USDPerMillion float64 `json:"usdPerMillionPushes"`
	// Per push, the requests and units behind the lines.
	PerPush PerPush `json:"perPush"`
	// The billed duration the model derives for one invocation.
	IngestBilledMs   float64 `json:"ingestBilledMs"`
	DispatchBilledMs float64 `json:"dispatchBilledMs"`
}

// PerPush summarizes the requests a push causes across the functions.
type PerPush struct {
	APIRequests     float64 `json:"apiRequests"`
	Invocations     float64 `json:"lambdaInvocations"`
	GBSeconds       float64 `json:"lambdaGbSeconds"`
	DynamoRequests  float64 `json:"dynamoDbRequests"`
	ItemsRead       float64 `json:"itemsRead"`
	ItemsWritten    float64 `json:"itemsWritten"`
	RRU             float64 `json:"readRequestUnits"`
	WRU             float64 `json:"writeRequestUnits"`
	SQSRequests     float64 `json:"sqsBilledRequests"`
	SecretsCalls    float64 `json:"secretsCalls"`
	LogBytes        float64 `json:"logBytes"`
	EnvelopeTargets float64 `json:"targetsPerEnvelope"`
}

// chunks is how many pieces of size bytes it takes to hold bytes.
func chunks(bytes, size float64) float64 {
	if bytes <= 0 {
		return 0
	}
	return math.Ceil(bytes / size)
}

// units is the request units of an item of size bytes, at least one.
func units(bytes, size float64) float64 { return math.Max(1, chunks(bytes, size)) }

// billedSeconds is Lambda's billed duration of one invocation: CPU time
// stretched by the CPU share of the memory size, plus the waits, rounded up
// to the millisecond.
func billedSeconds(cpuMs, waitMs, memoryMB float64, a Assumptions) float64 {
	stretch := math.Max(1, a.FullCPUMemoryMB/memoryMB)
	return math.Ceil(cpuMs*stretch+waitMs) / 1000
}

// priceMix prices one mix per million pushes. sendCPU is the CPU seconds
// a provider spends per target sent, by vendor, from the providers'
// benchmarks.
func priceMix(m Mix, sendCPU map[string]float64, p Prices, a Assumptions) (MixCost, error) {
	if m.Pushes <= 0 {
		return MixCost{}, fmt.Errorf("mix %s: no pushes per message", m.Name)
	}
	if m.Ingest.MemoryMB <= 0 || m.Dispatch.MemoryMB <= 0 {
		return MixCost{}, fmt.Errorf("mix %s: memory sizes missing", m.Name)
	}
	if m.Envelopes <= 0 {
		return MixCost{}, fmt.Errorf("mix %s: no envelopes per message", m.Name)
	}
	// Everything below is per message first.
	api := math.Max(1, chunks(m.BodyBytes, apiChunkBytes))

	ingWait := math.Ceil(m.Ingest.BatchGets/a.IngestReadParallel)*a.DynamoDBMs +
		m.Ingest.OtherDDB*a.DynamoDBMs + m.Ingest.SQSRequests*a.SQSMs + m.Ingest.Secrets*a.SecretsMs
	ingSeconds := billedSeconds(m.Ingest.CPUMs, ingWait, m.Ingest.MemoryMB, a)
	ingGBs := m.Ingest.MemoryMB / 1024 * ingSeconds

	// Dispatch runs one invocation per RecordsPerInvocation envelopes; the
	// vendor's own CPU per target comes on top of the engine's.
	inv := m.Envelopes / a.RecordsPerInvocation
	vendors := make([]string, 0, len(m.Targets))
	for v := range m.Targets {
		vendors = append(vendors, v)
	}
	sort.Strings(vendors)
	sendMs := 0.0
	for _, v := range vendors {
		cpu, ok := sendCPU[v]
		if !ok {
			return MixCost{}, fmt.Errorf("mix %s: no send throughput measured for vendor %s", m.Name, v)
		}
		sendMs += m.Targets[v] * cpu * 1000
	}
	perInv := func(x float64) float64 { return x / inv }
	dispWait := perInv(m.Dispatch.BatchGets)*a.DynamoDBMs +
		math.Ceil(perInv(m.Dispatch.OtherDDB)/a.DispatchStoreParallel)*a.DynamoDBMs +
		perInv(m.Dispatch.SQSRequests)*a.SQSMs + perInv(m.Dispatch.Secrets)*a.SecretsMs +
		math.Ceil(perInv(m.Pushes)/a.VendorParallel)*a.VendorMs
	dispSeconds := billedSeconds(perInv(m.Dispatch.CPUMs+sendMs), dispWait, m.Dispatch.MemoryMB, a)
	dispGBs := inv * m.Dispatch.MemoryMB / 1024 * dispSeconds

	// Ingest reads eventually consistent (half a unit per 4 KB), dispatch
	// re-reads the token index strongly consistent; transactions take
	// twice the units.
	ingRRU := m.Ingest.ItemsRead * units(m.RecipientItemBytes, readUnitBytes) * 0.5
	dispRRU := m.Dispatch.ItemsRead * units(m.TokenItemBytes, readUnitBytes)
	ingWRU := m.Ingest.ItemsWritten*units(m.RequestItemBytes, writeUnitBytes) +
		2*m.Ingest.TxItems*units(math.Max(m.RequestItemBytes, m.RecipientItemBytes), writeUnitBytes)
	dispWRU := m.Dispatch.ItemsWritten*units(m.BadgeItemBytes, writeUnitBytes) +
		2*m.Dispatch.TxItems*units(math.Max(m.TokenItemBytes, m.RecipientItemBytes), writeUnitBytes)

	sqsSend := math.Max(m.Ingest.SQSRequests, chunks(m.EnvelopeBytes, sqsChunkBytes))
	sqsReceive := inv * math.Max(1, chunks(perInv(m.EnvelopeBytes), sqsChunkBytes))
	sqsDelete := inv
	sqsRequeue := m.Dispatch.SQSRequests

	logBytes := m.Ingest.LogBytes + m.Ingest.LogLines*a.LogLineOverheadBytes +
		m.Dispatch.LogBytes + m.Dispatch.LogLines*a.LogLineOverheadBytes
	secrets := m.Ingest.Secrets + m.Dispatch.Secrets

	per := 1 / m.Pushes
	million := 1e6
	line := func(service, item string, perMsg float64, unit string, unitUSD float64) Line {
		q := perMsg * per
		return Line{Service: service, Item: item, Quantity: q, Unit: unit, USD: q * unitUSD * million}
	}
	lines := []Line{
		line("API Gateway", "HTTP API requests", api, "requests", p.HTTPAPIPerMillion/1e6),
		line("Lambda", "ingest invocations", 1, "invocations", p.LambdaRequestsPerMillion/1e6),
		line("Lambda", "ingest duration", ingGBs, "GB-s", p.LambdaArmGBSecond),
		line("Lambda", "dispatch invocations", inv, "invocations", p.LambdaRequestsPerMillion/1e6),
		line("Lambda", "dispatch duration", dispGBs, "GB-s", p.LambdaArmGBSecond),
		line("DynamoDB", "ingest reads", ingRRU, "RRU", p.DynamoRRUPerMillion/1e6),
		line("DynamoDB", "ingest writes", ingWRU, "WRU", p.DynamoWRUPerMillion/1e6),
		line("DynamoDB", "dispatch reads", dispRRU, "RRU", p.DynamoRRUPerMillion/1e6),
		line("DynamoDB", "dispatch writes", dispWRU, "WRU", p.DynamoWRUPerMillion/1e6),
		line("SQS", "ingest sends", sqsSend, "requests", p.SQSPerMillion/1e6),
		line("SQS", "event source receives", sqsReceive, "requests", p.SQSPerMillion/1e6),
		line("SQS", "event source deletes", sqsDelete, "requests", p.SQSPerMillion/1e6),
		line("SQS", "dispatch re-enqueues", sqsRequeue, "requests", p.SQSPerMillion/1e6),
		line("CloudWatch Logs", "log and metric lines", logBytes/gib, "GB", p.LogsIngestionPerGB),
		line("Secrets Manager", "calls after caching", secrets, "calls", p.SecretsPer10k/1e4),
	}
	c := MixCost{Mix: m.Name, Lines: lines, IngestBilledMs: ingSeconds * 1000, DispatchBilledMs: dispSeconds * 1000}
	for _, l := range lines {
		c.USDPerMillion += l.USD
	}
	c.PerPush = PerPush{
		APIRequests:     api * per,
		Invocations:     (1 + inv) * per,
		GBSeconds:       (ingGBs + dispGBs) * per,
		DynamoRequests:  (m.Ingest.BatchGets + m.Ingest.OtherDDB + m.Dispatch.BatchGets + m.Dispatch.OtherDDB) * per,
		ItemsRead:       (m.Ingest.ItemsRead + m.Dispatch.ItemsRead) * per,
		ItemsWritten:    (m.Ingest.ItemsWritten + m.Ingest.TxItems + m.Dispatch.ItemsWritten + m.Dispatch.TxItems) * per,
		RRU:             (ingRRU + dispRRU) * per,
		WRU:             (ingWRU + dispWRU) * per,
		SQSRequests:     (sqsSend + sqsReceive + sqsDelete + sqsRequeue) * per,
		SecretsCalls:    secrets * per,
		LogBytes:        logBytes * per,
		EnvelopeTargets: m.Pushes / m.Envelopes,
	}
	return c, nil
}

// Fixed is what the stack does whatever the traffic.
type Fixed struct {
	// SQSEventSources is the event source mappings of template.yaml, each
	// long-polling its queue.
	SQSEventSources float64 `json:"sqsEventSources"`
	// SecretReaders is the functions that cache a secret (the HTTP
	// functions' API secret, the dispatch functions' vendor credentials).
	SecretReaders float64 `json:"secretReaders"`
	// Cleanup is one run of the scheduled cleanup when nothing is due, and
	// CleanupRunsPerMonth its schedule.
	Cleanup             Load    `json:"cleanup"`
	CleanupRunsPerMonth float64 `json:"cleanupRunsPerMonth"`
}

// priceFixed prices a month of the stack at rest, per line.
func priceFixed(f Fixed, p Prices, a Assumptions) ([]Line, error) {
	if f.Cleanup.MemoryMB <= 0 {
		return nil, fmt.Errorf("cleanup memory size missing")
	}
	runs := f.CleanupRunsPerMonth
	c := f.Cleanup
	wait := (c.BatchGets+c.OtherDDB)*a.DynamoDBMs + c.Secrets*a.SecretsMs
	gbs := runs * c.MemoryMB / 1024 * billedSeconds(c.CPUMs, wait, c.MemoryMB, a)
	// Every request reads at least half a unit (a Query of the sparse
	// index finds nothing most of the time); index reads are eventually
	// consistent.
	rru := runs * (math.Max(c.OtherDDB+c.BatchGets, c.ItemsRead) * 0.5)
	wru := runs * (c.ItemsWritten + 2*c.TxItems)
	logs := runs * (c.LogBytes + c.LogLines*a.LogLineOverheadBytes)
	polls := f.SQSEventSources * a.IdlePollsPerMinute * minutesPerMonth
	secretCalls := f.SecretReaders * a.WarmContainers * minutesPerMonth / a.SecretCacheMinutes
	return []Line{
		{Service: "SQS", Item: "idle long polling of the event source mappings", Quantity: polls, Unit: "requests", USD: polls * p.SQSPerMillion / 1e6},
		{Service: "Lambda", Item: "cleanup invocations", Quantity: runs, Unit: "invocations", USD: runs * p.LambdaRequestsPerMillion / 1e6},
		{Service: "Lambda", Item: "cleanup duration", Quantity: gbs, Unit: "GB-s", USD: gbs * p.LambdaArmGBSecond},
		{Service: "DynamoDB", Item: "cleanup index queries", Quantity: rru, Unit: "RRU", USD: rru * p.DynamoRRUPerMillion / 1e6},
		{Service: "DynamoDB", Item: "cleanup writes", Quantity: wru, Unit: "WRU", USD: wru * p.DynamoWRUPerMillion / 1e6},
		{Service: "CloudWatch Logs", Item: "cleanup log lines", Quantity: logs / gib, Unit: "GB", USD: logs / gib * p.LogsIngestionPerGB},
		{Service: "Secrets Manager", Item: "cache refreshes of warm containers", Quantity: secretCalls, Unit: "calls", USD: secretCalls * p.SecretsPer10k / 1e4},
	}, nil
}

// sum adds up the dollars of lines.
func sum(lines []Line) float64 {
	t := 0.0
	for _, l := range lines {
		t += l.USD
	}
	return t
}
