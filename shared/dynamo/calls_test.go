package dynamo_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/go-cmp/cmp"

	"github.com/offline-push/offline-push/shared/dynamo"
	"github.com/offline-push/offline-push/shared/push"
	"github.com/offline-push/offline-push/shared/testenv"
)

func TestCallStore(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto_server")
	}
	ctx := context.Background()
	srv := testenv.Moto(t)
	stack := testenv.Stack(t, srv.Endpoint)
	s := dynamo.NewCallStore(dynamodb.NewFromConfig(testenv.AWSConfig(srv.Endpoint)), stack.Tables["StateTable"])
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	call := func(id string, at time.Duration) push.CallRecord {
		return push.CallRecord{CallID: id, AcceptedAt: t0.Add(at), ExpiresAt: t0.Add(at + time.Minute)}
	}
	phone := []push.CallDevice{{DeviceID: "phone", Vendor: push.APNs, CertName: "ios", Kind: push.TokenVoIP}}
	tablet := []push.CallDevice{{DeviceID: "tablet", Vendor: push.Huawei, CertName: "hw", Kind: push.TokenAlert}}

	steps := []struct {
		name string
		// Exactly one of ring and cancel is set.
		ring    *push.CallRecord
		devices []push.CallDevice
		cancel  string // call id
		message string // cancel message id
		want    bool   // Ring: current afterwards; Cancel: ok
		wantDev []push.CallDevice
		state   *dynamo.CallState // stored afterwards
	}{
		{name: "first call rings", ring: ptr(call("c-2", 0)), devices: phone, want: true,
			state: &dynamo.CallState{Record: call("c-2", 0), Devices: phone}},
		{name: "an older call arriving late is superseded", ring: ptr(call("c-1", -time.Second)), devices: tablet, want: false,
			state: &dynamo.CallState{Record: call("c-2", 0), Devices: phone}},
		{name: "same instant, smaller id loses", ring: ptr(call("c-0", 0)), devices: tablet, want: false,
			state: &dynamo.CallState{Record: call("c-2", 0), Devices: phone}},
		{name: "a retried invite replaces its devices", ring: ptr(call("c-2", 0)), devices: tablet, want: true,
			state: &dynamo.CallState{Record: call("c-2", 0), Devices: tablet}},
		{name: "cancel of another call does nothing", cancel: "c-1", message: "x-1", want: false,
			state: &dynamo.CallState{Record: call("c-2", 0), Devices: tablet}},
		{name: "cancel of the current call", cancel: "c-2", message: "x-2", want: true, wantDev: tablet,
			state: &dynamo.CallState{Record: cancelled(call("c-2", 0)), CancelledBy: "x-2", Devices: tablet}},
		{name: "a retried cancel gets the devices again", cancel: "c-2", message: "x-2", want: true, wantDev: tablet,
			state: &dynamo.CallState{Record: cancelled(call("c-2", 0)), CancelledBy: "x-2", Devices: tablet}},
		{name: "a second cancel message does nothing", cancel: "c-2", message: "x-3", want: false,
			state: &dynamo.CallState{Record: cancelled(call("c-2", 0)), CancelledBy: "x-2", Devices: tablet}},
		{name: "a late retry of the cancelled invite keeps it cancelled", ring: ptr(call("c-2", 0)), devices: phone, want: true,
			state: &dynamo.CallState{Record: cancelled(call("c-2", 0)), CancelledBy: "x-2", Devices: tablet}},
		{name: "a newer call rings and clears the cancellation", ring: ptr(call("c-3", time.Second)), devices: phone, want: true,
			state: &dynamo.CallState{Record: call("c-3", time.Second), Devices: phone}},
	}
	for _, st := range steps {
		var got bool
		var gotDev []push.CallDevice
		var err error
		if st.ring != nil {
			got, err = s.Ring(ctx, "demo", "bob", *st.ring, st.devices, t0)
		} else {
			gotDev, got, err = s.Cancel(ctx, "demo", "bob", st.cancel, st.message)
		}
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got != st.want {
			t.Errorf("%s: got %v, want %v", st.name, got, st.want)
		}
		if diff := cmp.Diff(st.wantDev, gotDev); diff != "" {
			t.Errorf("%s: devices (-want +got):\n%s", st.name, diff)
		}
		stored, err := s.Call(ctx, "demo", "bob", t0)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(st.state, stored); diff != "" {
			t.Errorf("%s: stored (-want +got):\n%s", st.name, diff)
		}
	}

	// A record past its TTL is no obstacle and reads as none.
	late := t0.Add(3 * 24 * time.Hour)
	if got, err := s.Call(ctx, "demo", "bob", late); err != nil || got != nil {
		t.Errorf("Call after the TTL = %+v, %v, want nil, nil", got, err)
	}
	old := call("c-0", -time.Hour)
	if ok, err := s.Ring(ctx, "demo", "bob", old, nil, late); err != nil || !ok {
		t.Errorf("Ring over an expired record = %v, %v, want true, nil", ok, err)
	}
}

func ptr[T any](v T) *T { return &v }

func cancelled(r push.CallRecord) push.CallRecord {
	r.Cancelled = true
	return r
}
