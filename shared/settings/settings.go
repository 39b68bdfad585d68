// Package settings is the push settings use case (API.md §5): reading and
// patching a user's app-level settings and the settings of single
// conversations. It validates requests in full before anything is written,
// and it always checks DND durations against the clock it is given, so an
// expired duration reads as absent whether or not cleanup has run.
package settings

import (
	"context"
	"fmt"
	"time"

	"github.com/offline-push/offline-push/shared/push"
)

// AppStore keeps app-level settings.
type AppStore interface {
	// AppSettings returns the stored settings with defaults applied for every
	// setting never set. DNDUntil is returned as stored, expired or not.
	AppSettings(ctx context.Context, app, user string) (push.Settings, error)
	// PatchAppSettings applies p in one write and returns the settings as
	// they are after it, like AppSettings.
	PatchAppSettings(ctx context.Context, app, user string, p Patch) (push.Settings, error)
}

// ConversationStore keeps the settings of single conversations.
type ConversationStore interface {
	// ConversationSettings returns a conversation's own settings; a
	// conversation without any has the zero value. DNDUntil is returned as
	// stored, expired or not.
	ConversationSettings(ctx context.Context, app, user string, c Conversation) (push.ConversationSettings, error)
	// PatchConversationSettings applies p and returns the result. When
	// nothing is left in force at now, the record is deleted.
	PatchConversationSettings(ctx context.Context, app, user string, c Conversation, p ConversationPatch, now time.Time) (push.ConversationSettings, error)
	// DeleteConversationSettings removes a conversation's own settings; it
	// succeeds when there were none.
	DeleteConversationSettings(ctx context.Context, app, user string, c Conversation) error
}

// ConversationBatchReader reads the settings of many conversations at once.
type ConversationBatchReader interface {
	// ConversationSettingsBatch returns the stored settings of those of cs
	// that have a record; cs holds no duplicates.
	ConversationSettingsBatch(ctx context.Context, app, user string, cs []Conversation) (map[Conversation]push.ConversationSettings, error)
}

// Conversation names one conversation of a user.
type Conversation struct {
	Type push.ConversationType
	ID   string
}

// MaxBatch is the most conversations one batch-get may name (API.md §5).
const MaxBatch = 20

// Service serves the settings routes. Every method takes the request's clock
// reading, so one request sees one instant and tests can choose it.
type Service struct {
	app   AppStore
	conv  ConversationStore
	batch ConversationBatchReader
}

// New returns a Service over its stores.
func New(app AppStore, conv ConversationStore, batch ConversationBatchReader) *Service {
	return &Service{app: app, conv: conv, batch: batch}
}

// Get returns a user's effective app-level settings at now.
func (s *Service) Get(ctx context.Context, app, user string, now time.Time) (AppView, error) {
	st, err := s.app.AppSettings(ctx, app, user)
	if err != nil {
		return AppView{}, fmt.Errorf("get settings: %w", err)
	}
	return NewAppView(st, now), nil
}

// Patch applies a JSON merge patch (RFC 7396) to a user's app-level
// settings. The whole body is validated first: one invalid member returns an
// *push.InvalidArgumentError and changes nothing.
func (s *Service) Patch(ctx context.Context, app, user string, body []byte, now time.Time) (AppView, error) {
	p, err := ParsePatch(body, now)
	if err != nil {
		return AppView{}, err
	}
	if p.Empty() {
		return s.Get(ctx, app, user, now)
	}
	st, err := s.app.PatchAppSettings(ctx, app, user, p)
	if err != nil {
		return AppView{}, fmt.Errorf("patch settings: %w", err)
	}
	return NewAppView(st, now), nil
}

// GetConversation returns a conversation's own settings at now. A type that
// names no conversation type is push.ErrNotFound: such paths match no route.
func (s *Service) GetConversation(ctx context.Context, app, user, typ, id string, now time.Time) (ConversationView, error) {
	c, err := conversation(typ, id)
	if err != nil {
		return ConversationView{}, err
	}
	cs, err := s.conv.ConversationSettings(ctx, app, user, c)
	if err != nil {
		return ConversationView{}, fmt.Errorf("get conversation settings: %w", err)
	}
	return NewConversationView(cs, now), nil
}

// PatchConversation applies a merge patch of remindType and dnd.durationMs
// to a conversation's own settings, all or nothing.
func (s *Service) PatchConversation(ctx context.Context, app, user, typ, id string, body []byte, now time.Time) (ConversationView, error) {
	c, err := conversation(typ, id)
	if err != nil {
		return ConversationView{}, err
	}
	p, err := ParseConversationPatch(body, now)
	if err != nil {
		return ConversationView{}, err
	}
	if p.Empty() {
		return s.GetConversation(ctx, app, user, typ, id, now)
	}
	cs, err := s.conv.PatchConversationSettings(ctx, app, user, c, p, now)
	if err != nil {
		return ConversationView{}, fmt.Errorf("patch conversation settings: %w", err)
	}
	return NewConversationView(cs, now), nil
}

// DeleteConversation clears a conversation's own settings, so it inherits
// the app level again.
func (s *Service) DeleteConversation(ctx context.Context, app, user, typ, id string) error {
	c, err := conversation(typ, id)
	if err != nil {
		return err
	}
	if err := s.conv.DeleteConversationSettings(ctx, app, user, c); err != nil {
		return fmt.Errorf("delete conversation settings: %w", err)
	}
	return nil
}

// BatchGet answers a batch-get body: the conversations named that have their
// own setting in force at now, in the order first named.
func (s *Service) BatchGet(ctx context.Context, app, user string, body []byte, now time.Time) (BatchView, error) {
	cs, err := ParseBatch(body)
	if err != nil {
		return BatchView{}, err
	}
	got, err := s.batch.ConversationSettingsBatch(ctx, app, user, cs)
	if err != nil {
		return BatchView{}, fmt.Errorf("batch-get conversation settings: %w", err)
	}
	out := BatchView{Settings: []BatchEntry{}}
	for _, c := range cs {
		st, ok := got[c]
		if !ok || st.Inherits(now) {
			continue
		}
		v := NewConversationView(st, now)
		out.Settings = append(out.Settings, BatchEntry{
			Type: c.Type, ID: c.ID, RemindType: v.RemindType, DNDUntil: v.DNDUntil,
		})
	}
	return out, nil
}

// conversation checks a conversation named by path parameters. The router
// has already checked id; a bad type matches no route.
func conversation(typ, id string) (Conversation, error) {
	t, ok := push.ParseConversationType(typ)
	if !ok {
		return Conversation{}, fmt.Errorf("conversation type %q: %w", typ, push.ErrNotFound)
	}
	if !push.ValidID(id) {
		return Conversation{}, push.Invalid("conversation", "must match ^[A-Za-z0-9_.@:+=~-]{1,128}$")
	}
	return Conversation{Type: t, ID: id}, nil
}
