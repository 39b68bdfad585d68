package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/offline-push/offline-push/shared/dynamo"
	"github.com/offline-push/offline-push/shared/httpapi"
	"github.com/offline-push/offline-push/shared/push"
	"github.com/offline-push/offline-push/shared/secrets"
	"github.com/offline-push/offline-push/shared/settings"
)

var (
	_ settings.AppStore                = settingsStore{}
	_ settings.ConversationStore       = settingsStore{}
	_ settings.ConversationBatchReader = settingsStore{}
)

// Settings builds the handler of the settings function: app-level and
// conversation push settings (API.md §5). Clients, caches and the router are
// built once here, per cold start, and reused by every invocation. The
// function validates IANA time zones, so its binary must embed time/tzdata.
func Settings(ctx context.Context, getenv func(string) string, log *slog.Logger) (func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error), error) {
	stateTable, err := require(getenv, EnvStateTable)
	if err != nil {
		return nil, err
	}
	requestTable, err := require(getenv, EnvRequestTable)
	if err != nil {
		return nil, err
	}
	prefix, err := require(getenv, EnvSecretPrefix)
	if err != nil {
		return nil, err
	}
	cfg, err := awsConfig(ctx, getenv)
	if err != nil {
		return nil, fmt.Errorf("settings function: %w", err)
	}
	db := dynamodb.NewFromConfig(cfg)
	sec := secrets.New(secretsmanager.NewFromConfig(cfg), prefix, time.Now)
	router := httpapi.New(httpapi.Config{
		Handlers: settingsHandlers(newSettingsService(db, stateTable)),
		Verifier: httpapi.NewVerifier(sec, dynamo.NewNonceStore(db, requestTable)),
		Log:      log,
	})
	return router.Lambda, nil
}

// newSettingsService returns the settings use case over StateTable.
func newSettingsService(db dynamo.Client, stateTable string) *settings.Service {
	st := settingsStore{dynamo.NewSettingsStore(db, stateTable)}
	return settings.New(st, st, st)
}

// settingsHandlers returns the handlers of the settings routes, keyed by
// route name. Bodies go to the use case raw: a merge patch must tell an
// absent member from a null one, which decoding into a struct would lose.
// Every handler takes the clock from httpapi.Request.Now, so durations and
// their expiry follow a router built with an injected clock.
func settingsHandlers(svc *settings.Service) map[string]httpapi.HandlerFunc {
	ok := func(body any, err error) (httpapi.Response, error) {
		if err != nil {
			return httpapi.Response{}, err
		}
		return httpapi.Response{Status: http.StatusOK, Body: body}, nil
	}
	return map[string]httpapi.HandlerFunc{
		"GetSettings": func(ctx context.Context, r *httpapi.Request) (httpapi.Response, error) {
			return ok(svc.Get(ctx, r.App, r.Params["user"], r.Now))
		},
		"PatchSettings": func(ctx context.Context, r *httpapi.Request) (httpapi.Response, error) {
			return ok(svc.Patch(ctx, r.App, r.Params["user"], r.Body, r.Now))
		},
		"GetConversationSettings": func(ctx context.Context, r *httpapi.Request) (httpapi.Response, error) {
			return ok(svc.GetConversation(ctx, r.App, r.Params["user"], r.Params["type"], r.Params["conversation"], r.Now))
		},
		"PatchConversationSettings": func(ctx context.Context, r *httpapi.Request) (httpapi.Response, error) {
			return ok(svc.PatchConversation(ctx, r.App, r.Params["user"], r.Params["type"], r.Params["conversation"], r.Body, r.Now))
		},
		"DeleteConversationSettings": func(ctx context.Context, r *httpapi.Request) (httpapi.Response, error) {
			if err := svc.DeleteConversation(ctx, r.App, r.Params["user"], r.Params["type"], r.Params["conversation"]); err != nil {
				return httpapi.Response{}, err
			}
			return httpapi.Response{Status: http.StatusNoContent}, nil
		},
		"BatchGetConversationSettings": func(ctx context.Context, r *httpapi.Request) (httpapi.Response, error) {
			return ok(svc.BatchGet(ctx, r.App, r.Params["user"], r.Body, r.Now))
		},
	}
}

// settingsStore adapts *dynamo.SettingsStore to the settings use case. Each
// side declares its own patch and key types, since neither may import the
// other (STYLE.md, Dependency direction); this maps one onto the other field
// by field.
type settingsStore struct{ s *dynamo.SettingsStore }

func (a settingsStore) AppSettings(ctx context.Context, app, user string) (push.Settings, error) {
	return a.s.AppSettings(ctx, app, user)
}

func (a settingsStore) PatchAppSettings(ctx context.Context, app, user string, p settings.Patch) (push.Settings, error) {
	return a.s.PatchAppSettings(ctx, app, user, dynamo.SettingsPatch{
		RemindType:                  settingChange(p.RemindType),
		Window:                      settingChange(p.Window),
		DNDUntil:                    settingChange(p.DNDUntil),
		Language:                    settingChange(p.Language),
		ShowPreview:                 settingChange(p.ShowPreview),
		MultiDevicePolicy:           settingChange(p.MultiDevicePolicy),
		MobilePushWhenDesktopOnline: settingChange(p.MobilePushWhenDesktopOnline),
	})
}

func (a settingsStore) ConversationSettings(ctx context.Context, app, user string, c settings.Conversation) (push.ConversationSettings, error) {
	return a.s.ConversationSettings(ctx, app, user, dynamo.ConversationKey(c))
}

func (a settingsStore) PatchConversationSettings(ctx context.Context, app, user string, c settings.Conversation, p settings.ConversationPatch, now time.Time) (push.ConversationSettings, error) {
	return a.s.PatchConversationSettings(ctx, app, user, dynamo.ConversationKey(c), dynamo.ConversationPatch{
		RemindType: settingChange(p.RemindType),
		DNDUntil:   settingChange(p.DNDUntil),
	}, now)
}

func (a settingsStore) DeleteConversationSettings(ctx context.Context, app, user string, c settings.Conversation) error {
	return a.s.DeleteConversationSettings(ctx, app, user, dynamo.ConversationKey(c))
}

func (a settingsStore) ConversationSettingsBatch(ctx context.Context, app, user string, cs []settings.Conversation) (map[settings.Conversation]push.ConversationSettings, error) {
	keys := make([]dynamo.ConversationKey, len(cs))
	for i, c := range cs {
		keys[i] = dynamo.ConversationKey(c)
	}
	got, err := a.s.ConversationSettingsBatch(ctx, app, user, keys)
	if err != nil {
		return nil, err
	}
	out := make(map[settings.Conversation]push.ConversationSettings, len(got))
	for k, v := range got {
		out[settings.Conversation(k)] = v
	}
	return out, nil
}

// settingChange maps one patch member onto the adapter's type.
func settingChange[T any](c settings.Change[T]) dynamo.SettingChange[T] {
	op := dynamo.SettingKeep
	switch c.Op {
	case settings.Set:
		op = dynamo.SettingSet
	case settings.Remove:
		op = dynamo.SettingRemove
	}
	return dynamo.SettingChange[T]{Op: op, Value: c.Value}
}
