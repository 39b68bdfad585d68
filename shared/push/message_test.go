package push_test

import (
	"testing"
	"time"

	"github.com/offline-push/offline-push/shared/push"
)

func TestParseMessageKind(t *testing.T) {
	tests := []struct {
		in     string
		want   push.MessageKind
		wantOK bool
	}{
		{"message", push.KindMessage, true},
		{"call_invite", push.KindCallInvite, true},
		{"call_cancel", push.KindCallCancel, true},
		{"Message", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := push.ParseMessageKind(tt.in)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("ParseMessageKind(%q) = %q, %v, want %q, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
	for _, in := range []string{"audio", "video"} {
		if got, ok := push.ParseCallMedia(in); !ok || string(got) != in {
			t.Errorf("ParseCallMedia(%q) = %q, %v, want %q, true", in, got, ok, in)
		}
	}
	if got, ok := push.ParseCallMedia("hologram"); ok {
		t.Errorf("ParseCallMedia(hologram) = %q, true, want false", got)
	}
}

func TestUserSet(t *testing.T) {
	var none push.UserSet
	if none.Has("bob") {
		t.Error("a nil set has bob, want empty")
	}
	s := push.NewUserSet("bob", "carol", "bob")
	if got, want := len(s), 2; got != want {
		t.Errorf("got %d members, want %d", got, want)
	}
	for id, want := range map[string]bool{"bob": true, "carol": true, "Bob": false, "": false} {
		if got := s.Has(id); got != want {
			t.Errorf("Has(%q) = %v, want %v", id, got, want)
		}
	}
}

func TestMessageForced(t *testing.T) {
	tests := []struct {
		name  string
		force push.Force
		user  string
		want  bool
	}{
		{"listed", push.Force{UserIDs: push.NewUserSet("bob")}, "bob", true},
		{"not listed", push.Force{UserIDs: push.NewUserSet("bob")}, "carol", false},
		{"all", push.Force{All: true}, "carol", true},
		{"none", push.Force{}, "bob", false},
	}
	for _, tt := range tests {
		m := &push.Message{Force: tt.force}
		if got := m.Forced(tt.user); got != tt.want {
			t.Errorf("%s: Forced(%q) = %v, want %v", tt.name, tt.user, got, tt.want)
		}
	}
}

func TestCallExpiresAt(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	c := &push.Call{ID: "c-9", Timeout: 30 * time.Second, AcceptedAt: at}
	if got, want := c.ExpiresAt(), at.Add(30*time.Second); !got.Equal(want) {
		t.Errorf("ExpiresAt() = %s, want %s", got, want)
	}
	if got := (&push.Call{ID: "c-9", Timeout: time.Minute}).ExpiresAt(); !got.IsZero() {
		t.Errorf("ExpiresAt() without acceptance = %s, want zero", got)
	}
	var none *push.Call
	if got := none.ExpiresAt(); !got.IsZero() {
		t.Errorf("nil call ExpiresAt() = %s, want zero", got)
	}
}
