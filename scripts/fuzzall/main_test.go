package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFuzzFuncs(t *testing.T) {
	// The source is indented so that `make fuzz`, which greps for
	// "^func Fuzz", does not take these for targets.
	src := `package x

	import tt "testing"

	func FuzzOne(f *tt.F) {}
	func Fuzz(f *tt.F) {}
	func Fuzz_two(f *tt.F) {}
	func Fuzzy(f *tt.F) {}        // lower case after Fuzz: not a target
	func FuzzResult(f *tt.F) int { return 0 }
	func FuzzTwoArgs(f *tt.F, n int) {}
	func FuzzWrongType(t *tt.T) {}
	func helper() {}

	type s struct{}

	func (s) FuzzMethod(f *tt.F) {}

	// func FuzzCommented(f *tt.F) {}
`
	path := filepath.Join(t.TempDir(), "x_test.go")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := fuzzFuncs(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"FuzzOne", "Fuzz", "Fuzz_two"}, got); diff != "" {
		t.Errorf("fuzzFuncs (-want +got):\n%s", diff)
	}
}

// TestDiscover runs discovery from this package's directory: it must find
// the targets of the whole module, and none in this package.
func TestDiscover(t *testing.T) {
	targets, err := discover(t.Context(), ".")
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, tg := range targets {
		found[shortPackage(tg.ImportPath)+"."+tg.Name] = true
		if strings.HasSuffix(tg.ImportPath, "/scripts/fuzzall") {
			t.Errorf("found target %s in fuzzall, which has none", tg.Name)
		}
		if tg.Dir == "" {
			t.Errorf("target %s has no directory", tg.Name)
		}
	}
	if !found["shared/httpapi.FuzzRouter"] {
		t.Errorf("shared/httpapi.FuzzRouter not discovered; found %v", found)
	}
}

func TestParseOutput(t *testing.T) {
	tg := target{ImportPath: "github.com/offline-push/offline-push/shared/x", Dir: "/src/shared/x", Name: "FuzzX"}
	tests := []struct {
		name   string
		out    string
		exit0  bool
		want   result
		detail string // a line the detail must hold
	}{
		{
			name: "passed",
			out: `fuzz: elapsed: 0s, gathering baseline coverage: 0/12 completed
fuzz: elapsed: 0s, gathering baseline coverage: 12/12 completed, now fuzzing with 2 workers
fuzz: elapsed: 3s, execs: 1000 (333/sec), new interesting: 2 (total: 14)
fuzz: elapsed: 6s, execs: 2500 (500/sec), new interesting: 5 (total: 17)
PASS
ok  	github.com/offline-push/offline-push/shared/x	6.1s
`,
			exit0: true,
			want:  result{Target: tg, Execs: 2500, NewInteresting: 5, Outcome: "ok", ok: true},
		},
		{
			name: "crash",
			out: `fuzz: elapsed: 3s, execs: 700 (233/sec), new interesting: 1 (total: 13)
fuzz: minimizing 44-byte failing input file
--- FAIL: FuzzX (3.44s)
    --- FAIL: FuzzX (0.00s)
        x_test.go:3: boom

    Failing input written to testdata/fuzz/FuzzX/a0b2f1c09a980176
    To re-run:
    go test -run=FuzzX/a0b2f1c09a980176
FAIL
exit status 1
`,
			want: result{Target: tg, Execs: 700, NewInteresting: 1, Outcome: "CRASH: /src/shared/x/testdata/fuzz/FuzzX/a0b2f1c09a980176",
				FailingInput: "/src/shared/x/testdata/fuzz/FuzzX/a0b2f1c09a980176"},
			detail: "x_test.go:3: boom",
		},
		{
			name: "seed corpus",
			out: `failure while testing seed corpus entry: FuzzX/seed#0
--- FAIL: FuzzX (0.01s)
    --- FAIL: FuzzX (0.00s)
        x_test.go:4: bad
FAIL
`,
			want:   result{Target: tg, Outcome: "FAIL: seed corpus"},
			detail: "x_test.go:4: bad",
		},
		{
			name: "deadline race of the go command",
			out: `fuzz: elapsed: 1m0s, execs: 138515 (2300/sec), new interesting: 53 (total: 276)
fuzz: elapsed: 1m0s, execs: 138515 (0/sec), new interesting: 53 (total: 276)
--- FAIL: FuzzX (60.16s)
    context deadline exceeded
FAIL
exit status 1
FAIL	github.com/offline-push/offline-push/shared/x	60.190s
`,
			want: result{Target: tg, Execs: 138515, NewInteresting: 53, Outcome: "ok (the go command's end-of-run deadline race, go.dev/issue/75804)", ok: true},
		},
		{
			name: "the target's own deadline",
			out: `--- FAIL: FuzzX (3.00s)
    --- FAIL: FuzzX (0.00s)
        x_test.go:9: context deadline exceeded
FAIL
`,
			want:   result{Target: tg, Outcome: "FAIL"},
			detail: "x_test.go:9: context deadline exceeded",
		},
		{
			name:   "build",
			out:    "# github.com/offline-push/offline-push/shared/x\nx.go:1:1: syntax error\nFAIL\tgithub.com/offline-push/offline-push/shared/x [build failed]\n",
			want:   result{Target: tg, Outcome: "FAIL: does not build"},
			detail: "x.go:1:1: syntax error",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseOutput(tg, tt.out, tt.exit0)
			detail := got.Detail
			got.Detail = ""
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(result{})); diff != "" {
				t.Errorf("parseOutput (-want +got):\n%s", diff)
			}
			if !strings.Contains(detail, tt.detail) {
				t.Errorf("detail %q lacks %q", detail, tt.detail)
			}
		})
	}
}

func TestTable(t *testing.T) {
	rs := []result{
		{Target: target{ImportPath: "github.com/offline-push/offline-push/shared/a", Name: "FuzzA"}, Execs: 12345, NewInteresting: 7, Outcome: "ok", ok: true},
		{Target: target{ImportPath: "github.com/offline-push/offline-push/shared/bb", Name: "FuzzLonger"}, Execs: 3, Outcome: "FAIL: seed corpus", Detail: "x_test.go:4: bad"},
	}
	var b bytes.Buffer
	writeTable(&b, rs)
	want := `TARGET      PACKAGE    EXECS  NEW INTERESTING  RESULT
FuzzA       shared/a   12345                7  ok
FuzzLonger  shared/bb      3                0  FAIL: seed corpus

FuzzLonger (shared/bb): FAIL: seed corpus
  x_test.go:4: bad
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
	b.Reset()
	writeMarkdown(&b, rs[:1])
	wantMD := "| target | package | execs | new interesting | result |\n|---|---|--:|--:|---|\n| FuzzA | shared/a | 12345 | 7 | ok |\n"
	if diff := cmp.Diff(wantMD, b.String()); diff != "" {
		t.Errorf("markdown (-want +got):\n%s", diff)
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{{"-fuzztime=0s"}, {"-fuzzminimizetime=-1s"}, {"-match=("}, {"-parallel=-1"}, {"extra"}} {
		if _, err := parseFlags(args, &bytes.Buffer{}); err == nil {
			t.Errorf("parseFlags(%q) accepted bad flags", args)
		}
	}
	o, err := parseFlags(nil, &bytes.Buffer{})
	if err != nil || o.fuzzTime.String() != "1m0s" || o.minimizeTime.String() != "5s" {
		t.Errorf("defaults: %+v, %v; want 1m0s and 5s", o, err)
	}
}
