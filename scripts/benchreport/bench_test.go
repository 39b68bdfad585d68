package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// events is go test -json output as test2json writes it: the cpu line, a
// result line cut in two, a sub-benchmark's log line in between, and a
// failed package.
const events = `{"Action":"start","Package":"example.com/m/shared/policy"}
{"Action":"output","Package":"example.com/m/shared/policy","Output":"goos: linux\n"}
{"Action":"output","Package":"example.com/m/shared/policy","Output":"cpu: AMD EPYC\n"}
{"Action":"output","Package":"example.com/m/shared/policy","Output":"BenchmarkEvaluate-2   \t"}
{"Action":"output","Package":"example.com/m/shared/policy","Output":"  1000000\t       361.5 ns/op\t       240.2 ns/device\t        1.500 devices/op\t      96 B/op\t       2 allocs/op\n"}
{"Action":"output","Package":"example.com/m/shared/app","Output":"BenchmarkCost/peer\n"}
{"Action":"output","Package":"example.com/m/shared/app","Output":"    cost_bench_test.go:88: bound 1 members in 7ms\n"}
{"Action":"output","Package":"example.com/m/shared/app","Output":"BenchmarkCost/peer-2         \t       3\t 104448583 ns/op\t         1.000 pushes/msg\t   9.069 ingest-cpu-ms/msg\n"}
{"Action":"output","Package":"example.com/m/shared/provider/fcm","Output":"BenchmarkSend \t 5\t 2e+06 ns/op\t 1.25e+04 msgs/cpu-s\n"}
{"Action":"output","Package":"example.com/m/shared/provider/fcm","Output":"--- FAIL: BenchmarkOther\n"}
{"Action":"fail","Package":"example.com/m/shared/provider/fcm","Elapsed":1.2}
{"Action":"pass","Package":"example.com/m/shared/policy","Elapsed":2.1}
`

func TestParseTestJSON(t *testing.T) {
	got, err := parseTestJSON(strings.NewReader(events), "example.com/m")
	if err != nil {
		t.Fatal(err)
	}
	want := Run{
		CPU:    "AMD EPYC",
		Failed: []string{"shared/provider/fcm"},
		Benchmarks: []Benchmark{
			{Package: "shared/policy", Name: "BenchmarkEvaluate", Procs: 2, N: 1000000, Metrics: map[string]float64{
				"ns/op": 361.5, "ns/device": 240.2, "devices/op": 1.5, "B/op": 96, "allocs/op": 2}},
			{Package: "shared/app", Name: "BenchmarkCost/peer", Procs: 2, N: 3, Metrics: map[string]float64{
				"ns/op": 104448583, "pushes/msg": 1, "ingest-cpu-ms/msg": 9.069}},
			{Package: "shared/provider/fcm", Name: "BenchmarkSend", N: 5, Metrics: map[string]float64{
				"ns/op": 2e6, "msgs/cpu-s": 12500}},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseTestJSON (-want +got):\n%s", diff)
	}
}

func TestParseTestJSONBadInput(t *testing.T) {
	if _, err := parseTestJSON(strings.NewReader("not json\n"), "example.com/m"); err == nil {
		t.Error("parseTestJSON of non-JSON gave no error")
	}
}

func TestThroughputsAndSendCPU(t *testing.T) {
	bs := []Benchmark{
		{Package: "shared/provider/vivo", Name: "BenchmarkSend/list-100", Metrics: map[string]float64{"sends/cpu-s": 4000, "ns/op": 1}},
		{Package: "shared/provider/vivo", Name: "BenchmarkSend/single", Metrics: map[string]float64{"sends/cpu-s": 500}},
		{Package: "shared/provider/apns", Name: "BenchmarkSend", Metrics: map[string]float64{"notifications/cpu-s": 2000}},
		{Package: "shared/policy", Name: "BenchmarkEvaluate", Metrics: map[string]float64{"x/cpu-s": 1}},
	}
	ts := throughputs(bs)
	want := []Throughput{
		{Vendor: "apns", Case: "send", PerCPUSecond: 2000, Unit: "notifications/cpu-s"},
		{Vendor: "vivo", Case: "list-100", PerCPUSecond: 4000, Unit: "sends/cpu-s"},
		{Vendor: "vivo", Case: "single", PerCPUSecond: 500, Unit: "sends/cpu-s"},
	}
	if diff := cmp.Diff(want, ts); diff != "" {
		t.Errorf("throughputs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]float64{"apns": 1.0 / 2000, "vivo": 1.0 / 4000}, sendCPU(ts)); diff != "" {
		t.Errorf("sendCPU (-want +got):\n%s", diff)
	}
}

func TestMixOfReportsMissingMetrics(t *testing.T) {
	_, err := mixOf(Benchmark{Package: costPackage, Name: "BenchmarkCost/peer", Metrics: map[string]float64{"pushes/msg": 1}})
	if err == nil || !strings.Contains(err.Error(), "ingest-cpu-ms/msg") || !strings.Contains(err.Error(), "targets-<vendor>/msg") {
		t.Errorf("mixOf with one metric: err = %v, want the missing metrics named", err)
	}
}
