package main

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// testAssumptions are round figures so that the expected dollars below can
// be worked out by hand.
var testAssumptions = Assumptions{
	DynamoDBMs: 10, SQSMs: 20, SecretsMs: 50, VendorMs: 100,
	IngestReadParallel: 8, DispatchStoreParallel: 16, VendorParallel: 100,
	FullCPUMemoryMB: 1024, RecordsPerInvocation: 1, LogLineOverheadBytes: 50,
	IdlePollsPerMinute: 15, SecretCacheMinutes: 5, WarmContainers: 1, MonthlyPushes: 10e6,
}

// peerMix is one message to one FCM phone.
var peerMix = Mix{
	Name: "peer", Pushes: 1, Recipients: 1, BodyBytes: 200, Targets: map[string]float64{"fcm": 1},
	Envelopes: 1, EnvelopeBytes: 500, EnvelopeMaxBytes: 500,
	Ingest: Load{BatchGets: 1, OtherDDB: 4, ItemsRead: 1, ItemsWritten: 4, SQSRequests: 1, SQSMessages: 1,
		CPUMs: 10, LogBytes: 900, LogLines: 2, MemoryMB: 512},
	Dispatch: Load{BatchGets: 1, OtherDDB: 1, ItemsRead: 1, ItemsWritten: 1,
		CPUMs: 3, LogBytes: 800, LogLines: 2, MemoryMB: 256},
	RecipientItemBytes: 300, TokenItemBytes: 300, BadgeItemBytes: 60, RequestItemBytes: 150,
}

func TestPriceMixPeer(t *testing.T) {
	got, err := priceMix(peerMix, map[string]float64{"fcm": 0.001, "apns": 0.5}, listPrices, testAssumptions)
	if err != nil {
		t.Fatal(err)
	}
	// Ingest: 20 ms of CPU (10 ms at half a vCPU) + 70 ms of round trips
	// (one read round, four other DynamoDB requests, one SQS send) = 90 ms
	// at 0.5 GB. Dispatch: (3 + 1) ms at a quarter vCPU = 16 ms + 120 ms of
	// round trips (one read, one badge write, one vendor round) = 136 ms at
	// 0.25 GB. Logs: 900 + 800 bytes + 4 lines × 50 bytes.
	want := []Line{
		{"API Gateway", "HTTP API requests", 1, "requests", 1.00},
		{"Lambda", "ingest invocations", 1, "invocations", 0.20},
		{"Lambda", "ingest duration", 0.045, "GB-s", 0.045 * 0.0000133334 * 1e6},
		{"Lambda", "dispatch invocations", 1, "invocations", 0.20},
		{"Lambda", "dispatch duration", 0.034, "GB-s", 0.034 * 0.0000133334 * 1e6},
		{"DynamoDB", "ingest reads", 0.5, "RRU", 0.0625},
		{"DynamoDB", "ingest writes", 4, "WRU", 2.5},
		{"DynamoDB", "dispatch reads", 1, "RRU", 0.125},
		{"DynamoDB", "dispatch writes", 1, "WRU", 0.625},
		{"SQS", "ingest sends", 1, "requests", 0.40},
		{"SQS", "event source receives", 1, "requests", 0.40},
		{"SQS", "event source deletes", 1, "requests", 0.40},
		{"SQS", "dispatch re-enqueues", 0, "requests", 0},
		{"CloudWatch Logs", "log and metric lines", 1900.0 / (1 << 30), "GB", 1900.0 / (1 << 30) * 0.5 * 1e6},
		{"Secrets Manager", "calls after caching", 0, "calls", 0},
	}
	approx := cmpopts.EquateApprox(1e-9, 1e-12)
	if diff := cmp.Diff(want, got.Lines, approx); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
	if total := sum(want); math.Abs(got.USDPerMillion-total) > 1e-9 {
		t.Errorf("USDPerMillion = %v, want %v", got.USDPerMillion, total)
	}
	if math.Abs(got.USDPerMillion-7.8505946) > 1e-6 {
		t.Errorf("USDPerMillion = %.7f, want 7.8505946 (worked out by hand)", got.USDPerMillion)
	}
	if got.IngestBilledMs != 90 || got.DispatchBilledMs != 136 {
		t.Errorf("billed ms = %v and %v, want 90 and 136", got.IngestBilledMs, got.DispatchBilledMs)
	}
	wantPer := PerPush{APIRequests: 1, Invocations: 2, GBSeconds: 0.079, DynamoRequests: 7, ItemsRead: 2, ItemsWritten: 5,
		RRU: 1.5, WRU: 5, SQSRequests: 3, LogBytes: 1900, EnvelopeTargets: 1}
	if diff := cmp.Diff(wantPer, got.PerPush, approx); diff != "" {
		t.Errorf("per push (-want +got):\n%s", diff)
	}
}

// TestPriceMixGroup checks the per-push division and the size classes: a
// message of 300 pushes in two envelopes, a body over 512 KB, an envelope
// over 64 KB, items over one unit.
func TestPriceMixGroup(t *testing.T) {
	m := peerMix
	m.Name, m.Pushes, m.Targets = "group", 300, map[string]float64{"apns": 150, "fcm": 150}
	m.BodyBytes = 600 * 1024
	m.Envelopes, m.EnvelopeBytes = 2, 2*70*1024
	m.Ingest.ItemsRead = 1700
	m.RecipientItemBytes = 5000 // two read units
	m.RequestItemBytes = 1500   // two write units
	m.Dispatch.ItemsWritten, m.BadgeItemBytes = 300, 900
	got, err := priceMix(m, map[string]float64{"fcm": 0.001, "apns": 0.002}, listPrices, testAssumptions)
	if err != nil {
		t.Fatal(err)
	}
	byItem := map[string]Line{}
	for _, l := range got.Lines {
		byItem[l.Item] = l
	}
	for _, c := range []struct {
		item     string
		quantity float64
	}{
		{"HTTP API requests", 2.0 / 300},
		{"dispatch invocations", 2.0 / 300},
		{"ingest reads", 1700 * 2 * 0.5 / 300},
		{"ingest writes", 4 * 2.0 / 300},
		{"dispatch writes", 300.0 / 300},
		{"ingest sends", 3.0 / 300},          // 140 KB sent: three 64 KB chunks
		{"event source receives", 4.0 / 300}, // two envelopes of 70 KB: two chunks each
		{"event source deletes", 2.0 / 300},
	} {
		if got := byItem[c.item].Quantity; math.Abs(got-c.quantity) > 1e-12 {
			t.Errorf("%s per push = %v, want %v", c.item, got, c.quantity)
		}
	}
	// Dispatch per invocation: (3 + 150×1 + 150×2) / 2 ms of CPU ×4, and
	// 0.5 + ceil(0.5/16) + ceil(150/100) rounds.
	if want := math.Ceil((3+150+300)/2.0*4 + 0.5*10 + 1*10 + 2*100); got.DispatchBilledMs != want {
		t.Errorf("dispatch billed ms = %v, want %v", got.DispatchBilledMs, want)
	}
}

func TestPriceMixErrors(t *testing.T) {
	noVendor := peerMix
	noVendor.Targets = map[string]float64{"meizu": 1}
	noMemory := peerMix
	noMemory.Dispatch.MemoryMB = 0
	noPush := peerMix
	noPush.Pushes = 0
	for name, m := range map[string]Mix{"no send throughput": noVendor, "no memory size": noMemory, "no pushes": noPush} {
		if _, err := priceMix(m, map[string]float64{"fcm": 0.001}, listPrices, testAssumptions); err == nil {
			t.Errorf("%s: priceMix gave no error", name)
		}
	}
}

func TestPriceFixed(t *testing.T) {
	f := Fixed{
		SQSEventSources: 8, SecretReaders: 11, CleanupRunsPerMonth: 43200,
		Cleanup: Load{OtherDDB: 32, CPUMs: 30, LogBytes: 150, LogLines: 1, MemoryMB: 256},
	}
	got, err := priceFixed(f, listPrices, testAssumptions)
	if err != nil {
		t.Fatal(err)
	}
	// Cleanup: 30 ms × 4 + 32 × 10 ms = 440 ms at 0.25 GB per run.
	gbs := 43200 * 0.25 * 0.44
	logs := 43200 * 200.0 / (1 << 30)
	want := []Line{
		{"SQS", "idle long polling of the event source mappings", 8 * 15 * 43200, "requests", 8 * 15 * 43200 * 0.40 / 1e6},
		{"Lambda", "cleanup invocations", 43200, "invocations", 43200 * 0.20 / 1e6},
		{"Lambda", "cleanup duration", gbs, "GB-s", gbs * 0.0000133334},
		{"DynamoDB", "cleanup index queries", 43200 * 16, "RRU", 43200 * 16 * 0.125 / 1e6},
		{"DynamoDB", "cleanup writes", 0, "WRU", 0},
		{"CloudWatch Logs", "cleanup log lines", logs, "GB", logs * 0.5},
		{"Secrets Manager", "cache refreshes of warm containers", 11 * 8640, "calls", 11 * 8640 * 0.05 / 1e4},
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateApprox(1e-9, 1e-12)); diff != "" {
		t.Errorf("fixed lines (-want +got):\n%s", diff)
	}
	if total := sum(got); math.Abs(total-2.7112) > 0.001 {
		t.Errorf("fixed total = %.4f, want about $2.711 a month", total)
	}
}
