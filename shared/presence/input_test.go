package presence_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/offline-push/offline-push/shared/presence"
	"github.com/offline-push/offline-push/shared/push"
)

func ptr[T any](v T) *T { return &v }

func TestPutInputUpdate(t *testing.T) {
	cases := []struct {
		name      string
		in        presence.PutInput
		want      presence.Update
		wantField string // non-empty: the member an error must name
	}{
		{
			name: "defaults",
			in:   presence.PutInput{State: ptr("online"), Platform: ptr("pc")},
			want: presence.Update{UserID: "u", DeviceID: "d", State: presence.Online, Platform: push.PlatformPC, Lease: 300 * time.Second},
		},
		{
			name: "every member",
			in:   presence.PutInput{State: ptr("online"), Platform: ptr("ios"), LeaseSeconds: ptr[int64](86400), Epoch: ptr[int64](17), Badge: ptr[int64](3)},
			want: presence.Update{UserID: "u", DeviceID: "d", State: presence.Online, Platform: push.PlatformIOS, Lease: 24 * time.Hour, Epoch: 17, Badge: ptr[int64](3)},
		},
		{
			name: "offline keeps the platform",
			in:   presence.PutInput{State: ptr("offline"), Epoch: ptr[int64](0)},
			want: presence.Update{UserID: "u", DeviceID: "d", State: presence.Offline, Lease: 300 * time.Second},
		},
		{
			name: "shortest lease and largest badge",
			in:   presence.PutInput{State: ptr("online"), Platform: ptr("other"), LeaseSeconds: ptr[int64](30), Badge: ptr[int64](presence.MaxBadge)},
			want: presence.Update{UserID: "u", DeviceID: "d", State: presence.Online, Platform: push.PlatformOther, Lease: 30 * time.Second, Badge: ptr[int64](presence.MaxBadge)},
		},
		{name: "no state", in: presence.PutInput{Platform: ptr("pc")}, wantField: "state"},
		{name: "state in capitals", in: presence.PutInput{State: ptr("ONLINE"), Platform: ptr("pc")}, wantField: "state"},
		{name: "online without platform", in: presence.PutInput{State: ptr("online")}, wantField: "platform"},
		{name: "empty platform", in: presence.PutInput{State: ptr("offline"), Platform: ptr("")}, wantField: "platform"},
		{name: "lease 29", in: presence.PutInput{State: ptr("online"), Platform: ptr("pc"), LeaseSeconds: ptr[int64](29)}, wantField: "leaseSeconds"},
		{name: "lease 86401", in: presence.PutInput{State: ptr("offline"), LeaseSeconds: ptr[int64](86401)}, wantField: "leaseSeconds"},
		{name: "huge lease", in: presence.PutInput{State: ptr("offline"), LeaseSeconds: ptr[int64](1 << 62)}, wantField: "leaseSeconds"},
		{name: "negative epoch", in: presence.PutInput{State: ptr("offline"), Epoch: ptr[int64](-1)}, wantField: "epoch"},
		{name: "negative badge", in: presence.PutInput{State: ptr("offline"), Badge: ptr[int64](-1)}, wantField: "badge"},
		{name: "badge too large", in: presence.PutInput{State: ptr("offline"), Badge: ptr[int64](presence.MaxBadge + 1)}, wantField: "badge"},
	}
	for _, c := range cases {
		got, err := c.in.Update("u", "d")
		if c.wantField != "" {
			var ia *push.InvalidArgumentError
			if !errors.As(err, &ia) || ia.Field != c.wantField {
				t.Errorf("%s: err = %v, want an invalid argument at %q", c.name, err, c.wantField)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("%s: update (-want +got):\n%s", c.name, diff)
		}
	}
}

func TestBatchInputValidate(t *testing.T) {
	item := func(user, device string) presence.BatchUpdate {
		return presence.BatchUpdate{UserID: ptr(user), DeviceID: ptr(device), PutInput: presence.PutInput{State: ptr("offline")}}
	}
	many := func(n int) []presence.BatchUpdate {
		out := make([]presence.BatchUpdate, n)
		for i := range out {
			out[i] = item(fmt.Sprint("u", i), "d")
		}
		return out
	}
	withBad := func(n, at int, b presence.BatchUpdate) []presence.BatchUpdate {
		out := many(n)
		out[at] = b
		return out
	}
	cases := []struct {
		name      string
		updates   []presence.BatchUpdate
		wantLen   int
		wantField string
	}{
		{"one", many(1), 1, ""},
		{"500", many(500), 500, ""},
		{"none", nil, 0, "updates"},
		{"501", many(501), 0, "updates"},
		{"missing user", withBad(3, 1, presence.BatchUpdate{DeviceID: ptr("d"), PutInput: presence.PutInput{State: ptr("offline")}}), 0, "updates[1]"},
		{"bad device", withBad(3, 2, item("u", strings.Repeat("d", 129))), 0, "updates[2]"},
		{"bad state", withBad(3, 0, presence.BatchUpdate{UserID: ptr("u"), DeviceID: ptr("d"), PutInput: presence.PutInput{State: ptr("idle")}}), 0, "updates[0].state"},
	}
	for _, c := range cases {
		got, err := presence.BatchInput{Updates: c.updates}.Validate()
		if c.wantField != "" {
			var ia *push.InvalidArgumentError
			if !errors.As(err, &ia) || ia.Field != c.wantField {
				t.Errorf("%s: err = %v, want an invalid argument at %q", c.name, err, c.wantField)
			}
			continue
		}
		if err != nil || len(got) != c.wantLen {
			t.Errorf("%s: got %d updates, err %v; want %d", c.name, len(got), err, c.wantLen)
		}
	}
}

func TestBadgeInputValidate(t *testing.T) {
	cases := []struct {
		name    string
		in      presence.BadgeInput
		want    int64
		wantErr bool
	}{
		{"zero", presence.BadgeInput{Count: ptr[int64](0)}, 0, false},
		{"largest", presence.BadgeInput{Count: ptr[int64](presence.MaxBadge)}, presence.MaxBadge, false},
		{"missing", presence.BadgeInput{}, 0, true},
		{"negative", presence.BadgeInput{Count: ptr[int64](-1)}, 0, true},
		{"too large", presence.BadgeInput{Count: ptr[int64](presence.MaxBadge + 1)}, 0, true},
	}
	for _, c := range cases {
		got, err := c.in.Validate()
		var ia *push.InvalidArgumentError
		switch {
		case c.wantErr && (!errors.As(err, &ia) || ia.Field != "count"):
			t.Errorf("%s: err = %v, want an invalid argument at count", c.name, err)
		case !c.wantErr && (err != nil || got != c.want):
			t.Errorf("%s: got %d, %v; want %d", c.name, got, err, c.want)
		}
	}
}
