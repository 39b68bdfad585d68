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

	"github.com/offline-push/offline-push/shared/devices"
	"github.com/offline-push/offline-push/shared/dynamo"
	"github.com/offline-push/offline-push/shared/httpapi"
	"github.com/offline-push/offline-push/shared/push"
	"github.com/offline-push/offline-push/shared/secrets"
)

var (
	_ devices.Store        = deviceStore{}
	_ devices.Certs        = (*secrets.Store)(nil)
	_ httpapi.SecretSource = (*secrets.Store)(nil)
	_ httpapi.NonceStore   = (*dynamo.NonceStore)(nil)
	_ httpapi.HandlerFunc  = healthHandler
)

// Devices builds the handler of the devices function: health, device tokens
// (API.md §3) and presence (§4). Clients, caches and the router are built
// once here, per cold start, and reused by every invocation.
func Devices(ctx context.Context, getenv func(string) string, log *slog.Logger) (func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error), error) {
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
		return nil, fmt.Errorf("devices function: %w", err)
	}
	db := dynamodb.NewFromConfig(cfg)
	sec := secrets.New(secretsmanager.NewFromConfig(cfg), prefix, time.Now)
	svc := devices.New(deviceStore{dynamo.NewDeviceStore(db, stateTable)}, sec, log)

	handlers := deviceHandlers(svc)
	for name, h := range presenceHandlers(dynamo.NewPresenceStore(db, stateTable)) {
		handlers[name] = h
	}
	router := httpapi.New(httpapi.Config{
		Handlers: handlers,
		Verifier: httpapi.NewVerifier(sec, dynamo.NewNonceStore(db, requestTable)),
		Log:      log,
	})
	return router.Lambda, nil
}

// deviceHandlers returns the handlers of the health and device routes, keyed
// by route name.
func deviceHandlers(svc *devices.Service) map[string]httpapi.HandlerFunc {
	return map[string]httpapi.HandlerFunc{
		"Health": healthHandler,
		"PutDevice": httpapi.JSON(func(ctx context.Context, r *httpapi.Request, in *putDeviceJSON) (httpapi.Response, error) {
			res, err := svc.Register(ctx, r.App, r.Params["user"], r.Params["device"], in.registration(), r.Now)
			if err != nil {
				return httpapi.Response{}, err
			}
			return httpapi.Response{Status: http.StatusOK, Body: deviceRegisteredJSON(res)}, nil
		}),
		"DeleteDevice": func(ctx context.Context, r *httpapi.Request) (httpapi.Response, error) {
			reason := devices.ReasonNone
			if vs, ok := r.Query["reason"]; ok {
				if len(vs) != 1 {
					return httpapi.Response{}, push.Invalid("reason", "must be given once")
				}
				var err error
				if reason, err = devices.ParseReason(vs[0]); err != nil {
					return httpapi.Response{}, err
				}
			}
			if err := svc.Unregister(ctx, r.App, r.Params["user"], r.Params["device"], reason, r.Now); err != nil {
				return httpapi.Response{}, err
			}
			return httpapi.Response{Status: http.StatusNoContent}, nil
		},
		"ListDevices": func(ctx context.Context, r *httpapi.Request) (httpapi.Response, error) {
			ds, err := svc.List(ctx, r.App, r.Params["user"], r.Now)
			if err != nil {
				return httpapi.Response{}, err
			}
			out := deviceListJSON{Devices: make([]deviceJSON, len(ds))}
			for i, d := range ds {
				out.Devices[i] = deviceJSON{
					DeviceID:     d.DeviceID,
					Vendor:       deviceOptString(string(d.Vendor)),
					CertName:     deviceOptString(d.CertName),
					TokenSuffix:  deviceOptString(d.TokenSuffix),
					Platform:     deviceOptString(string(d.Platform)),
					RegisteredAt: deviceInstant(d.RegisteredAt),
					Online:       d.Online,
					LeaseUntil:   deviceInstant(d.LeaseUntil),
				}
			}
			return httpapi.Response{Status: http.StatusOK, Body: out}, nil
		},
	}
}

// healthHandler answers GET /v1/health without touching any dependency, so it
// tells that the function runs, not that AWS is reachable.
func healthHandler(context.Context, *httpapi.Request) (httpapi.Response, error) {
	return httpapi.Response{Status: http.StatusOK, Body: deviceHealthJSON{Status: "ok"}}, nil
}

type deviceHealthJSON struct {
	Status string `json:"status"`
}

// putDeviceJSON is the PUT body (API.md §3). Optional members are pointers
// so that the use case can tell an absent member from an empty one.
type putDeviceJSON struct {
	Vendor      string  `json:"vendor"`
	Token       string  `json:"token"`
	CertName    string  `json:"certName"`
	Platform    *string `json:"platform"`
	Environment *string `json:"environment"`
	VoIPToken   *string `json:"voipToken"`
	Locale      *string `json:"locale"`
	AppVersion  *string `json:"appVersion"`
}

func (p *putDeviceJSON) registration() devices.Registration {
	return devices.Registration{
		Vendor:      p.Vendor,
		Token:       p.Token,
		CertName:    p.CertName,
		Platform:    p.Platform,
		Environment: p.Environment,
		VoIPToken:   p.VoIPToken,
		Locale:      p.Locale,
		AppVersion:  p.AppVersion,
	}
}

// putDeviceResultJSON answers a PUT. It never carries the token.
type putDeviceResultJSON struct {
	UserID       string           `json:"userId"`
	DeviceID     string           `json:"deviceId"`
	Vendor       string           `json:"vendor"`
	CertName     string           `json:"certName"`
	Environment  *string          `json:"environment"`
	RegisteredAt string           `json:"registeredAt"`
	MovedFrom    *deviceOwnerJSON `json:"movedFrom"`
}

type deviceOwnerJSON struct {
	UserID   string `json:"userId"`
	DeviceID string `json:"deviceId"`
}

func deviceRegisteredJSON(r devices.Registered) putDeviceResultJSON {
	out := putDeviceResultJSON{
		UserID:       r.UserID,
		DeviceID:     r.Binding.DeviceID,
		Vendor:       string(r.Binding.Vendor),
		CertName:     r.Binding.CertName,
		Environment:  deviceOptString(string(r.Binding.Environment)),
		RegisteredAt: *deviceInstant(r.Binding.RegisteredAt),
	}
	if r.MovedFrom != nil {
		out.MovedFrom = &deviceOwnerJSON{UserID: r.MovedFrom.UserID, DeviceID: r.MovedFrom.DeviceID}
	}
	return out
}

type deviceListJSON struct {
	Devices []deviceJSON `json:"devices"`
}

// deviceJSON is one listed device. Members a device lacks are null, and the
// token shows only its last six characters.
type deviceJSON struct {
	DeviceID     string  `json:"deviceId"`
	Vendor       *string `json:"vendor"`
	CertName     *string `json:"certName"`
	TokenSuffix  *string `json:"tokenSuffix"`
	Platform     *string `json:"platform"`
	RegisteredAt *string `json:"registeredAt"`
	Online       bool    `json:"online"`
	LeaseUntil   *string `json:"leaseUntil"`
}

func deviceOptString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// deviceInstant renders t as API.md §1 shows instants (RFC 3339, UTC,
// milliseconds), and the zero time as null.
func deviceInstant(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format("2006-01-02T15:04:05.000Z")
	return &s
}

// deviceStore adapts *dynamo.DeviceStore to devices.Store. The use case and
// the adapter each declare their own snapshot and plan types, since neither
// may import the other (STYLE.md, Dependency direction); this maps one onto
// the other field by field.
type deviceStore struct{ s *dynamo.DeviceStore }

func (d deviceStore) Read(ctx context.Context, app string, users []string, tokens []devices.TokenRef) (devices.Snapshot, error) {
	keys := make([]dynamo.TokenKey, len(tokens))
	for i, t := range tokens {
		keys[i] = dynamo.TokenKey{Vendor: t.Vendor, Token: t.Token}
	}
	snap, err := d.s.Load(ctx, app, users, keys)
	if err != nil {
		return devices.Snapshot{}, err
	}
	out := devices.Snapshot{Profiles: snap.Profiles, Index: make(map[devices.TokenRef]*devices.IndexEntry, len(snap.Tokens))}
	for k, o := range snap.Tokens {
		out.Index[devices.TokenRef{Vendor: k.Vendor, Token: k.Token}] = deviceIndexEntry(o)
	}
	return out, nil
}

func (d deviceStore) Apply(ctx context.Context, app string, p devices.Plan) error {
	var c dynamo.BindingChange
	for _, w := range p.Profiles {
		pc := dynamo.ProfileChange{UserID: w.UserID, Set: w.Set, Remove: w.Remove, RemoveVoIP: w.RemoveVoIP}
		for _, h := range w.Expect {
			pc.Expect = append(pc.Expect, dynamo.HeldTokens{DeviceID: h.DeviceID, Bound: h.Bound, Token: h.Token, VoIPToken: h.VoIPToken})
		}
		c.Profiles = append(c.Profiles, pc)
	}
	for _, w := range p.Index {
		c.Tokens = append(c.Tokens, dynamo.TokenChange{
			Key:    dynamo.TokenKey{Vendor: w.Ref.Vendor, Token: w.Ref.Token},
			Expect: deviceTokenOwner(w.Expect),
			Put:    deviceTokenOwner(w.Put),
			Delete: w.Delete,
		})
	}
	return d.s.Commit(ctx, app, c)
}

func (d deviceStore) Devices(ctx context.Context, app, user string) ([]push.Binding, []push.Lease, error) {
	return d.s.Devices(ctx, app, user)
}

func deviceIndexEntry(o *dynamo.TokenOwner) *devices.IndexEntry {
	if o == nil {
		return nil
	}
	return &devices.IndexEntry{Owner: o.Owner, Kind: o.Kind, Refreshed: o.Refreshed}
}

func deviceTokenOwner(e *devices.IndexEntry) *dynamo.TokenOwner {
	if e == nil {
		return nil
	}
	return &dynamo.TokenOwner{Owner: e.Owner, Kind: e.Kind, Refreshed: e.Refreshed}
}
