package presence

import (
	"strconv"
	"time"

	"github.com/offline-push/offline-push/shared/push"
)

// State is what a presence update asks for.
type State string

// States of a presence update.
const (
	Online  State = "online"  // take or renew the lease
	Offline State = "offline" // end the lease at once
)

// Limits of API.md §4.
const (
	MinLease     = 30 * time.Second
	MaxLease     = 86400 * time.Second
	DefaultLease = 300 * time.Second
	MaxBatch     = 500
	// MaxBadge bounds a badge base. API.md asks only for an integer >= 0;
	// the bound keeps base + pushed messages within the 32-bit integers that
	// vendors' badge fields hold, and no client shows more unread than this.
	MaxBadge = 1<<31 - 1
)

// Update is one validated presence update of a device.
type Update struct {
	UserID   string
	DeviceID string
	State    State
	// Platform is empty when an offline update keeps the stored platform.
	Platform push.Platform
	// Lease is the lease length of an online update.
	Lease time.Duration
	// Epoch orders the updates of a device: a lower one than stored applies
	// nothing.
	Epoch int64
	// Badge is the new badge base, nil to leave it alone.
	Badge *int64
}

// PutInput is the JSON body of PUT .../devices/{device}/presence. Pointer
// members are nil when absent or null.
type PutInput struct {
	State        *string `json:"state"`
	Platform     *string `json:"platform"`
	LeaseSeconds *int64  `json:"leaseSeconds"`
	// Epoch defaults to 0 when absent: a caller that does not count
	// connections sends none, and every update applies (equal epochs do).
	Epoch *int64 `json:"epoch"`
	Badge *int64 `json:"badge"`
}

// Update validates the body for the device named by the path. Errors are
// *push.InvalidArgumentError naming the member at fault; the first failing
// member in the order of the body's documentation is reported.
func (in PutInput) Update(user, device string) (Update, error) {
	u := Update{UserID: user, DeviceID: device, Lease: DefaultLease}
	switch {
	case in.State == nil:
		return Update{}, push.Invalid("state", "required: online or offline")
	case *in.State == string(Online), *in.State == string(Offline):
		u.State = State(*in.State)
	default:
		return Update{}, push.Invalid("state", "must be online or offline")
	}
	if in.Platform != nil {
		p, ok := push.ParsePlatform(*in.Platform)
		if !ok {
			return Update{}, push.Invalid("platform", "must be one of ios, android, pc, mac, web, other")
		}
		u.Platform = p
	} else if u.State == Online {
		return Update{}, push.Invalid("platform", "required with state online: one of ios, android, pc, mac, web, other")
	}
	if in.LeaseSeconds != nil {
		if *in.LeaseSeconds < int64(MinLease/time.Second) || *in.LeaseSeconds > int64(MaxLease/time.Second) {
			return Update{}, push.Invalid("leaseSeconds", "must be %d to %d", int64(MinLease/time.Second), int64(MaxLease/time.Second))
		}
		u.Lease = time.Duration(*in.LeaseSeconds) * time.Second
	}
	if in.Epoch != nil {
		if *in.Epoch < 0 {
			return Update{}, push.Invalid("epoch", "must be an integer >= 0")
		}
		u.Epoch = *in.Epoch
	}
	if in.Badge != nil {
		if *in.Badge < 0 || *in.Badge > MaxBadge {
			return Update{}, push.Invalid("badge", "must be 0 to %d", MaxBadge)
		}
		b := *in.Badge
		u.Badge = &b
	}
	return u, nil
}

// BatchInput is the JSON body of POST .../presence/batch.
type BatchInput struct {
	Updates []BatchUpdate `json:"updates"`
}

// BatchUpdate is one member of a batch: a device named in the body rather
// than the path, and the members of a PutInput.
type BatchUpdate struct {
	UserID   *string `json:"userId"`
	DeviceID *string `json:"deviceId"`
	PutInput
}

// Validate checks every update before any applies, so one invalid update
// rejects the whole batch. A bad count is reported at "updates", a missing or
// malformed id at "updates[i]", another member at "updates[i].member".
func (in BatchInput) Validate() ([]Update, error) {
	if len(in.Updates) == 0 || len(in.Updates) > MaxBatch {
		return nil, push.Invalid("updates", "must hold 1 to %d updates, not %d", MaxBatch, len(in.Updates))
	}
	out := make([]Update, len(in.Updates))
	for i, b := range in.Updates {
		at := "updates[" + strconv.Itoa(i) + "]"
		if b.UserID == nil || !push.ValidID(*b.UserID) {
			return nil, push.Invalid(at, "userId must match ^[A-Za-z0-9_.@:+=~-]{1,128}$")
		}
		if b.DeviceID == nil || !push.ValidID(*b.DeviceID) {
			return nil, push.Invalid(at, "deviceId must match ^[A-Za-z0-9_.@:+=~-]{1,128}$")
		}
		u, err := b.PutInput.Update(*b.UserID, *b.DeviceID)
		if err != nil {
			return nil, push.Prefix(at, err)
		}
		out[i] = u
	}
	return out, nil
}

// BadgeInput is the JSON body of PUT .../users/{user}/badge.
type BadgeInput struct {
	Count *int64 `json:"count"`
}

// Validate returns the badge count asked for.
func (in BadgeInput) Validate() (int64, error) {
	if in.Count == nil {
		return 0, push.Invalid("count", "required: an integer >= 0")
	}
	if *in.Count < 0 || *in.Count > MaxBadge {
		return 0, push.Invalid("count", "must be 0 to %d", MaxBadge)
	}
	return *in.Count, nil
}
