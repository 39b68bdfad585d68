package main

import (
	"fmt"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"

	apnsemu "github.com/offline-push/offline-push/shared/emulator/apns"
	fcmemu "github.com/offline-push/offline-push/shared/emulator/fcm"
	honoremu "github.com/offline-push/offline-push/shared/emulator/honor"
	huaweiemu "github.com/offline-push/offline-push/shared/emulator/huawei"
	meizuemu "github.com/offline-push/offline-push/shared/emulator/meizu"
	oppoemu "github.com/offline-push/offline-push/shared/emulator/oppo"
	vivoemu "github.com/offline-push/offline-push/shared/emulator/vivo"
	xiaomiemu "github.com/offline-push/offline-push/shared/emulator/xiaomi"
)

// envFaults names the knob that makes every vendor emulator of the local
// stack misbehave from the start, for load and fault runs (`make load`,
// README "Load run"). Its value is a comma-separated list of key=value:
//
//	transient=0.2          share of valid vendor requests answered with the
//	                       vendor's transient server error (500/503 or its code)
//	throttle=0.02          share answered as throttled (429 or the vendor's
//	                       flow-control code)
//	seed=1                 seed of the draws, for the emulators that take one
//	                       after start (FCM, Xiaomi, Meizu)
//	invalidTokens=PATH     a file of device tokens, one per line, that every
//	                       emulator answers as dead (unregistered, uninstalled)
//
// Dead tokens are named one by one rather than drawn at a rate: a caller
// that checks what became of each push must know which tokens were dead,
// and the emulators only learn a token when a push names it.
const envFaults = "PUSH_LOCAL_FAULTS"

// localFaults are the faults of envFaults.
type localFaults struct {
	transient, throttle float64
	seed                int64
	invalid             []string
}

// parseFaults reads an envFaults value; readFile reads the invalidTokens
// file. An empty spec is no faults.
func parseFaults(spec string, readFile func(string) ([]byte, error)) (localFaults, error) {
	var f localFaults
	if strings.TrimSpace(spec) == "" {
		return f, nil
	}
	seen := map[string]bool{}
	for _, part := range strings.Split(spec, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || v == "" {
			return f, fmt.Errorf("%s: %q is not key=value", envFaults, part)
		}
		if seen[k] {
			return f, fmt.Errorf("%s: %s given twice", envFaults, k)
		}
		seen[k] = true
		switch k {
		case "transient", "throttle":
			share, err := strconv.ParseFloat(v, 64)
			if err != nil || share < 0 || share > 1 || math.IsNaN(share) {
				return f, fmt.Errorf("%s: %s must be a share from 0 to 1", envFaults, k)
			}
			if k == "transient" {
				f.transient = share
			} else {
				f.throttle = share
			}
		case "seed":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return f, fmt.Errorf("%s: seed must be an integer", envFaults)
			}
			f.seed = n
		case "invalidTokens":
			b, err := readFile(v)
			if err != nil {
				return f, fmt.Errorf("%s: invalidTokens: %w", envFaults, err)
			}
			for _, line := range strings.Split(string(b), "\n") {
				if t := strings.TrimSpace(line); t != "" {
					f.invalid = append(f.invalid, t)
				}
			}
		default:
			return f, fmt.Errorf("%s: unknown key %q (known: transient, throttle, seed, invalidTokens)", envFaults, k)
		}
	}
	if f.transient+f.throttle > 1 {
		return f, fmt.Errorf("%s: transient and throttle add up to more than 1", envFaults)
	}
	return f, nil
}

// applyLocalFaults sets the faults of envFaults, read from this process's
// environment, on one emulator that startEmulators started.
func applyLocalFaults(em *emulated) error {
	f, err := parseFaults(os.Getenv(envFaults), os.ReadFile)
	if err != nil {
		return err
	}
	return f.apply(em.server)
}

// conditional turns shares of all requests into the chances of draws made
// one after another, each only when the ones before missed, as most
// emulators draw their faults: with shares a and b, the second draw
// must hit b/(1-a) of what is left for b of all requests to meet it.
func conditional(shares ...float64) []float64 {
	out := make([]float64, len(shares))
	left := 1.0
	for i, s := range shares {
		if left > 0 {
			out[i] = min(s/left, 1)
		}
		left -= s
	}
	return out
}

// apply sets f on server, one of the emulators' *Server types. Transient
// failures are split evenly between the vendor's two kinds where it has two.
// An emulator whose draws are seeded only at its start keeps that seed.
func (f localFaults) apply(server any) error {
	if f.transient == 0 && f.throttle == 0 && len(f.invalid) == 0 {
		return nil
	}
	half := f.transient / 2
	switch s := server.(type) {
	case *apnsemu.Server:
		c := conditional(f.throttle, half, half)
		s.SetShares(apnsemu.Shares{TooManyRequests: c[0], InternalError: c[1], ServiceUnavailable: c[2]})
		for _, t := range f.invalid {
			s.FailToken(t, apnsemu.Reply{Status: http.StatusGone, Reason: "Unregistered"})
		}
	case *fcmemu.Server:
		tokens := map[string]fcmemu.Fault{}
		for _, t := range f.invalid {
			tokens[t] = fcmemu.Fault{Code: fcmemu.Unregistered}
		}
		s.SetFaults(fcmemu.Faults{Tokens: tokens, ThrottleShare: f.throttle, InternalShare: half, UnavailableShare: half, Seed: f.seed})
	case *huaweiemu.Server:
		c := conditional(f.throttle, f.transient)
		s.SetShares(huaweiemu.Shares{FlowControl: c[0], Internal: c[1]})
		for _, t := range f.invalid {
			s.FailToken(t)
		}
	case *honoremu.Server:
		c := conditional(f.throttle, f.transient)
		s.SetShares(honoremu.Shares{FlowControl: c[0], Internal: c[1]})
		for _, t := range f.invalid {
			s.FailToken(t, honoremu.Expired)
		}
	case *xiaomiemu.Server:
		tokens := map[string]xiaomiemu.Fault{}
		for _, t := range f.invalid {
			tokens[t] = xiaomiemu.Fault{Invalid: true}
		}
		s.SetFaults(xiaomiemu.Faults{Tokens: tokens, ThrottleShare: f.throttle, BusyShare: half, UnavailableShare: half, Seed: f.seed})
	case *oppoemu.Server:
		c := conditional(f.throttle, f.transient)
		s.SetShares(oppoemu.Shares{FlowControl: c[0], Unavailable: c[1]})
		for _, t := range f.invalid {
			s.FailToken(t, oppoemu.CodeInvalidRegID)
		}
	case *vivoemu.Server:
		c := conditional(f.throttle, f.transient)
		s.SetShares(vivoemu.Shares{TooManyRequests: c[0], ServerError: c[1]})
		for _, t := range f.invalid {
			s.FailToken(t, vivoemu.StatusUninstalled)
		}
	case *meizuemu.Server:
		tokens := map[string]meizuemu.Fault{}
		for _, t := range f.invalid {
			tokens[t] = meizuemu.Fault{Code: meizuemu.CodeUnsubscribed}
		}
		s.SetFaults(meizuemu.Faults{Tokens: tokens, ThrottleShare: f.throttle, BusyShare: half, UnavailableShare: half, Seed: f.seed})
	default:
		return fmt.Errorf("%s: no fault controls for an emulator of type %T", envFaults, server)
	}
	return nil
}
