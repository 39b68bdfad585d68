package settings

import (
	"fmt"
	"time"

	"github.com/offline-push/offline-push/shared/push"
)

// TimeLayout shows instants as API.md §1 requires: RFC 3339 in UTC with
// milliseconds.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// AppView is the JSON answer of GET and PATCH of app-level settings.
type AppView struct {
	RemindType                  push.RemindType        `json:"remindType"`
	DND                         DNDView                `json:"dnd"`
	Language                    *string                `json:"language"`
	ShowPreview                 bool                   `json:"showPreview"`
	MultiDevicePolicy           push.MultiDevicePolicy `json:"multiDevicePolicy"`
	MobilePushWhenDesktopOnline bool                   `json:"mobilePushWhenDesktopOnline"`
}

// DNDView is the dnd member of AppView. Until is null unless a duration is
// running.
type DNDView struct {
	Window *WindowView `json:"window"`
	Until  *string     `json:"until"`
}

// WindowView is a DND window as the caller wrote it.
type WindowView struct {
	Start    string `json:"start"`
	End      string `json:"end"`
	TimeZone string `json:"timezone"`
}

// ConversationView is the JSON answer of GET and PATCH of a conversation's
// settings.
type ConversationView struct {
	RemindType *push.RemindType `json:"remindType"`
	DNDUntil   *string          `json:"dndUntil"`
	Inherits   bool             `json:"inherits"`
}

// BatchView is the JSON answer of a batch-get.
type BatchView struct {
	Settings []BatchEntry `json:"settings"`
}

// BatchEntry is one conversation with its own setting in a BatchView.
type BatchEntry struct {
	Type       push.ConversationType `json:"type"`
	ID         string                `json:"id"`
	RemindType *push.RemindType      `json:"remindType"`
	DNDUntil   *string               `json:"dndUntil"`
}

// NewAppView shows s as it is in force at now: an expired duration is absent.
func NewAppView(s push.Settings, now time.Time) AppView {
	v := AppView{
		RemindType:                  s.RemindType,
		DND:                         DNDView{Until: until(s.DNDUntil, now)},
		ShowPreview:                 s.ShowPreview,
		MultiDevicePolicy:           s.MultiDevicePolicy,
		MobilePushWhenDesktopOnline: s.MobilePushWhenDesktopOnline,
	}
	if s.Window != nil {
		v.DND.Window = &WindowView{
			Start:    hhmm(s.Window.Start),
			End:      hhmm(s.Window.End),
			TimeZone: s.Window.TimeZone,
		}
	}
	if s.Language != "" {
		l := s.Language
		v.Language = &l
	}
	return v
}

// NewConversationView shows c as it is in force at now.
func NewConversationView(c push.ConversationSettings, now time.Time) ConversationView {
	v := ConversationView{DNDUntil: until(c.DNDUntil, now), Inherits: c.Inherits(now)}
	if c.RemindType != "" {
		r := c.RemindType
		v.RemindType = &r
	}
	return v
}

// until formats a duration's end, or returns nil when none runs at now.
func until(t, now time.Time) *string {
	if t.IsZero() || !now.Before(t) {
		return nil
	}
	s := t.UTC().Format(TimeLayout)
	return &s
}

func hhmm(minutes int) string {
	return fmt.Sprintf("%02d:%02d", minutes/60, minutes%60)
}
