package main

import (
	"io/fs"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	apnsemu "github.com/offline-push/offline-push/shared/emulator/apns"
	fcmemu "github.com/offline-push/offline-push/shared/emulator/fcm"
	honoremu "github.com/offline-push/offline-push/shared/emulator/honor"
	huaweiemu "github.com/offline-push/offline-push/shared/emulator/huawei"
	meizuemu "github.com/offline-push/offline-push/shared/emulator/meizu"
	oppoemu "github.com/offline-push/offline-push/shared/emulator/oppo"
	vivoemu "github.com/offline-push/offline-push/shared/emulator/vivo"
	xiaomiemu "github.com/offline-push/offline-push/shared/emulator/xiaomi"
)

func TestParseFaults(t *testing.T) {
	files := map[string]string{"/dead": "tok-a\n\n  tok-b  \n"}
	readFile := func(name string) ([]byte, error) {
		if s, ok := files[name]; ok {
			return []byte(s), nil
		}
		return nil, fs.ErrNotExist
	}
	tests := []struct {
		name    string
		spec    string
		want    localFaults
		wantErr string
	}{
		{name: "empty", spec: ""},
		{name: "blank", spec: "  "},
		{
			name: "all keys",
			spec: "transient=0.2,throttle=0.02,seed=7,invalidTokens=/dead",
			want: localFaults{transient: 0.2, throttle: 0.02, seed: 7, invalid: []string{"tok-a", "tok-b"}},
		},
		{name: "spaces around parts", spec: " transient=0.5 , throttle=0.5 ", want: localFaults{transient: 0.5, throttle: 0.5}},
		{name: "not key=value", spec: "transient", wantErr: "not key=value"},
		{name: "empty value", spec: "seed=", wantErr: "not key=value"},
		{name: "unknown key", spec: "latency=5", wantErr: "unknown key"},
		{name: "repeated key", spec: "seed=1,seed=2", wantErr: "twice"},
		{name: "share above one", spec: "transient=1.5", wantErr: "share"},
		{name: "negative share", spec: "throttle=-0.1", wantErr: "share"},
		{name: "NaN share", spec: "throttle=NaN", wantErr: "share"},
		{name: "shares above one together", spec: "transient=0.6,throttle=0.5", wantErr: "more than 1"},
		{name: "seed not a number", spec: "seed=x", wantErr: "integer"},
		{name: "missing file", spec: "invalidTokens=/nowhere", wantErr: "invalidTokens"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFaults(tt.spec, readFile)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseFaults(%q) = %v, want an error containing %q", tt.spec, err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), envFaults) {
					t.Errorf("error %q does not name %s", err, envFaults)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseFaults(%q): %v", tt.spec, err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(localFaults{})); diff != "" {
				t.Errorf("parseFaults(%q) (-want +got):\n%s", tt.spec, diff)
			}
		})
	}
}

// TestConditional checks that draws made one after another meet each fault
// at its share of all requests.
func TestConditional(t *testing.T) {
	tests := []struct {
		shares []float64
		want   []float64
	}{
		{[]float64{0.02, 0.1, 0.1}, []float64{0.02, 0.1 / 0.98, 0.1 / 0.88}},
		{[]float64{0, 0.2}, []float64{0, 0.2}},
		{[]float64{0.5, 0.5}, []float64{0.5, 1}},
		{[]float64{1, 0}, []float64{1, 0}},
	}
	for _, tt := range tests {
		got := conditional(tt.shares...)
		if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) < 1e-12 })); diff != "" {
			t.Errorf("conditional(%v) (-want +got):\n%s", tt.shares, diff)
		}
		// What each draw meets: its chance times what the draws before left.
		left := 1.0
		for i, c := range got {
			if met := c * left; math.Abs(met-tt.shares[i]) > 1e-12 {
				t.Errorf("conditional(%v): draw %d meets %v of all requests, want %v", tt.shares, i, met, tt.shares[i])
			}
			left -= c * left
		}
	}
}

// TestApplyFaults sets faults on a running emulator of every vendor: each
// takes them, and anything else is refused by name.
func TestApplyFaults(t *testing.T) {
	f := localFaults{transient: 0.2, throttle: 0.02, seed: 1, invalid: []string{"dead-token"}}
	servers := map[string]func() (any, func(), error){
		"apns": func() (any, func(), error) {
			s, err := apnsemu.New(apnsemu.Options{})
			return s, func() { s.Close() }, err
		},
		"fcm": func() (any, func(), error) { s := fcmemu.New(fcmemu.Options{}); return s, s.Close, nil },
		"huawei": func() (any, func(), error) {
			s, err := huaweiemu.New(huaweiemu.Options{})
			return s, func() { s.Close() }, err
		},
		"honor": func() (any, func(), error) {
			s, err := honoremu.New(honoremu.Options{})
			return s, func() { s.Close() }, err
		},
		"xiaomi": func() (any, func(), error) { s := xiaomiemu.New(xiaomiemu.Options{}); return s, s.Close, nil },
		"oppo": func() (any, func(), error) {
			s, err := oppoemu.New(oppoemu.Options{})
			return s, func() { s.Close() }, err
		},
		"vivo": func() (any, func(), error) {
			s, err := vivoemu.New(vivoemu.Options{})
			return s, func() { s.Close() }, err
		},
		"meizu": func() (any, func(), error) { s := meizuemu.New(meizuemu.Options{}); return s, s.Close, nil },
	}
	for name, start := range servers {
		t.Run(name, func(t *testing.T) {
			s, stop, err := start()
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			if err := f.apply(s); err != nil {
				t.Errorf("apply: %v", err)
			}
		})
	}
	if err := f.apply(struct{}{}); err == nil || !strings.Contains(err.Error(), "no fault controls") {
		t.Errorf("apply to a non-emulator = %v, want an error", err)
	}
	if err := (localFaults{}).apply(struct{}{}); err != nil {
		t.Errorf("no faults applied to anything = %v, want nil", err)
	}
}

// TestApplyLocalFaults reads the knob from the environment.
func TestApplyLocalFaults(t *testing.T) {
	em := &emulated{server: struct{}{}}
	t.Setenv(envFaults, "")
	if err := applyLocalFaults(em); err != nil {
		t.Errorf("without %s: %v, want nil", envFaults, err)
	}
	t.Setenv(envFaults, "seed=x")
	if err := applyLocalFaults(em); err == nil {
		t.Errorf("with a bad %s: nil, want an error", envFaults)
	}
}
