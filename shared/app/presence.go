package app

import (
	"context"
	"net/http"
	"time"

	"github.com/offline-push/offline-push/shared/dynamo"
	"github.com/offline-push/offline-push/shared/httpapi"
	"github.com/offline-push/offline-push/shared/presence"
)

var _ presence.Store = (*dynamo.PresenceStore)(nil)

// presenceHandlers returns the handlers of the presence routes of the
// devices function (API.md §4), keyed by route name. app.Devices merges them
// into its router. Every handler takes the clock from httpapi.Request.Now,
// so a router built with an injected clock moves leases with it.
func presenceHandlers(store *dynamo.PresenceStore) map[string]httpapi.HandlerFunc {
	svc := presence.New(store)
	return map[string]httpapi.HandlerFunc{
		"PutPresence": httpapi.JSON(func(ctx context.Context, r *httpapi.Request, in *presence.PutInput) (httpapi.Response, error) {
			u, err := in.Update(r.Params["user"], r.Params["device"])
			if err != nil {
				return httpapi.Response{}, err
			}
			res, err := svc.Put(ctx, r.App, u, r.Now)
			if err != nil {
				return httpapi.Response{}, err
			}
			return httpapi.Response{Status: http.StatusOK, Body: presenceStateJSON{
				Applied:    res.Applied,
				Online:     res.Online,
				LeaseUntil: presenceInstant(res.LeaseUntil),
			}}, nil
		}),
		"PresenceBatch": httpapi.JSON(func(ctx context.Context, r *httpapi.Request, in *presence.BatchInput) (httpapi.Response, error) {
			updates, err := in.Validate()
			if err != nil {
				return httpapi.Response{}, err
			}
			results, err := svc.Batch(ctx, r.App, updates, r.Now)
			if err != nil {
				return httpapi.Response{}, err
			}
			out := presenceBatchJSON{Results: make([]presenceResultJSON, len(results))}
			for i, res := range results {
				out.Results[i] = presenceResultJSON{
					UserID:   res.UserID,
					DeviceID: res.DeviceID,
					presenceStateJSON: presenceStateJSON{
						Applied:    res.Applied,
						Online:     res.Online,
						LeaseUntil: presenceInstant(res.LeaseUntil),
					},
				}
			}
			return httpapi.Response{Status: http.StatusOK, Body: out}, nil
		}),
		"PutBadge": httpapi.JSON(func(ctx context.Context, r *httpapi.Request, in *presence.BadgeInput) (httpapi.Response, error) {
			n, err := in.Validate()
			if err != nil {
				return httpapi.Response{}, err
			}
			if err := svc.SetBadge(ctx, r.App, r.Params["user"], n); err != nil {
				return httpapi.Response{}, err
			}
			return httpapi.Response{Status: http.StatusOK, Body: presenceBadgeJSON{Count: n}}, nil
		}),
	}
}

// presenceStateJSON is the answer to a presence update (API.md §4).
type presenceStateJSON struct {
	Applied    bool    `json:"applied"`
	Online     bool    `json:"online"`
	LeaseUntil *string `json:"leaseUntil"`
}

// presenceResultJSON is one result of a presence batch, in the order of the
// updates.
type presenceResultJSON struct {
	UserID   string `json:"userId"`
	DeviceID string `json:"deviceId"`
	presenceStateJSON
}

type presenceBatchJSON struct {
	Results []presenceResultJSON `json:"results"`
}

type presenceBadgeJSON struct {
	Count int64 `json:"count"`
}

// presenceInstant renders t as API.md §1 shows instants (RFC 3339, UTC,
// milliseconds), and the zero time as null.
func presenceInstant(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format("2006-01-02T15:04:05.000Z")
	return &s
}
