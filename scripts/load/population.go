package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/offline-push/offline-push/shared/push"
)

// vendorWeights spread the seeded devices over the vendors roughly as a
// Chinese IM app's users are: mostly APNs and FCM, the rest over the
// Android vendors. The first device of each vendor is placed before the
// draw, so that even a tiny run reaches every emulator.
var vendorWeights = []struct {
	v push.Vendor
	w int
}{
	{push.APNs, 40}, {push.FCM, 30}, {push.Huawei, 6}, {push.Honor, 5},
	{push.Xiaomi, 6}, {push.OPPO, 5}, {push.Vivo, 4}, {push.Meizu, 4},
}

// presence is what the load run declares about a device before it drives
// messages.
type presence int

const (
	// noPresence: the device never reported; it is offline.
	noPresence presence = iota
	// online: it holds a lease for the whole run, so ingest skips it
	// (device_online) and it must never receive a push.
	online
	// offline: it reported offline, which ends a lease at once.
	offline
)

// device is one seeded device with a push token.
type device struct {
	User     string
	ID       string
	Vendor   push.Vendor
	CertName string
	// Token is the full token; it is never printed. Its last 6 characters
	// (Suffix) are unique in the run, which is how a receipt, which shows
	// only those, is tied to its device.
	Token    string
	Suffix   string
	Presence presence
	// Invalid marks a token that its vendor's emulator calls dead.
	Invalid bool
}

// key names a device in maps.
func (d *device) key() deviceKey { return deviceKey{d.User, d.ID} }

type deviceKey struct{ User, Device string }

// population is every user and device of a run.
type population struct {
	Users   []string
	Devices []*device
	// Desktop lists the users that also have a PC online (presence only):
	// with default settings they still get mobile pushes.
	Desktop  []string
	bySuffix map[vendorSuffix]*device
	byKey    map[deviceKey]*device
}

type vendorSuffix struct {
	Vendor push.Vendor
	Suffix string
}

// populate draws the users and devices of a run from seed. certs names the
// credentials to register each vendor's devices under; vendors without one
// get no devices. run prefixes every user id, so that runs against one
// emulator never meet.
func populate(run string, users int, invalidShare float64, certs map[push.Vendor]string, seed int64) (*population, error) {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6c6f6164))
	var weights []struct {
		v push.Vendor
		w int
	}
	total := 0
	for _, vw := range vendorWeights {
		if certs[vw.v] != "" {
			weights = append(weights, vw)
			total += vw.w
		}
	}
	if total == 0 {
		return nil, fmt.Errorf("the local config has no credentials of any vendor")
	}
	draw := func() push.Vendor {
		n := rng.IntN(total)
		for _, vw := range weights {
			if n < vw.w {
				return vw.v
			}
			n -= vw.w
		}
		return weights[len(weights)-1].v
	}
	p := &population{bySuffix: map[vendorSuffix]*device{}, byKey: map[deviceKey]*device{}}
	for i := range users {
		u := fmt.Sprintf("u%s-%04d", run, i)
		p.Users = append(p.Users, u)
		n := 1
		switch r := rng.Float64(); {
		case r < 0.1:
			n = 3
		case r < 0.4:
			n = 2
		}
		for j := range n {
			idx := len(p.Devices)
			var v push.Vendor
			if idx < len(weights) {
				v = weights[idx].v
			} else {
				v = draw()
			}
			d := &device{User: u, ID: fmt.Sprintf("d%d", j+1), Vendor: v, CertName: certs[v]}
			d.Token, d.Suffix = newToken(rng, v, idx)
			switch r := rng.Float64(); {
			case r < 0.15:
				d.Presence = online
			case r < 0.30:
				d.Presence = offline
			}
			p.add(d)
		}
		if rng.Float64() < 0.1 {
			p.Desktop = append(p.Desktop, u)
		}
	}
	p.markInvalid(rng, invalidShare)
	return p, nil
}

func (p *population) add(d *device) {
	p.Devices = append(p.Devices, d)
	p.bySuffix[vendorSuffix{d.Vendor, d.Suffix}] = d
	p.byKey[d.key()] = d
}

// markInvalid makes share of the devices (at least one when share > 0)
// dead at their vendor. Only devices that can receive pushes are chosen: an
// online device is never pushed to, so its death would never be noticed.
func (p *population) markInvalid(rng *rand.Rand, share float64) {
	if share <= 0 {
		return
	}
	var candidates []*device
	for _, d := range p.Devices {
		if d.Presence != online {
			candidates = append(candidates, d)
		}
	}
	n := max(1, int(math.Round(share*float64(len(p.Devices)))))
	n = min(n, len(candidates))
	rng.Shuffle(len(candidates), func(i, j int) { candidates[i], candidates[j] = candidates[j], candidates[i] })
	for _, d := range candidates[:n] {
		d.Invalid = true
	}
}

// invalid returns the devices marked invalid, in seeding order.
func (p *population) invalid() []*device {
	var out []*device
	for _, d := range p.Devices {
		if d.Invalid {
			out = append(out, d)
		}
	}
	return out
}

// device returns the device of a receipt: its vendor and token suffix.
func (p *population) deviceBySuffix(v push.Vendor, suffix string) *device {
	return p.bySuffix[vendorSuffix{v, suffix}]
}

// vendorsUsed returns the vendors that have at least one device, sorted.
func (p *population) vendorsUsed() []push.Vendor {
	set := map[push.Vendor]bool{}
	for _, d := range p.Devices {
		set[d.Vendor] = true
	}
	out := make([]push.Vendor, 0, len(set))
	for v := range set {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

const (
	hexDigits   = "0123456789abcdef"
	alnumDigits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
)

// newToken returns a token shaped as the vendor's are (APNs: lower-case
// hex, 64 digits; FCM: a long URL-safe word; the others: shorter words)
// whose last 6 characters encode idx, so that suffixes never repeat within
// a run, and whose other characters are random, so that a full token
// found in a log is unmistakable.
func newToken(rng *rand.Rand, v push.Vendor, idx int) (token, suffix string) {
	body, digits := 40, alnumDigits
	switch v {
	case push.APNs:
		body, digits = 58, hexDigits
		suffix = fmt.Sprintf("%06x", idx)
	case push.FCM:
		body = 140
	case push.Huawei, push.Honor:
		body = 90
	}
	if suffix == "" {
		suffix = fmt.Sprintf("%06d", idx)
	}
	b := make([]byte, body)
	for i := range b {
		b[i] = digits[rng.IntN(len(digits))]
	}
	return string(b) + suffix, suffix
}
