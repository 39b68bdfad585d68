package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"

	"github.com/offline-push/offline-push/shared/push"
)

// seedWorkers bounds the concurrent registration requests.
const seedWorkers = 8

// maxPresenceBatch is API.md §4's limit on one presence batch.
const maxPresenceBatch = 500

// runLease is the lease of the devices seeded online: the longest API.md
// allows, so that they stay online through any run.
const runLease = 86400

// seed registers every device of p through the signed API, then declares
// the presence of the devices that have one, and the desktops.
func seed(ctx context.Context, c *client, app string, p *population) error {
	jobs := make(chan *device)
	errs := make(chan error, seedWorkers)
	var wg sync.WaitGroup
	for range seedWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range jobs {
				if err := register(ctx, c, app, d); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var err error
feed:
	for _, d := range p.Devices {
		select {
		case jobs <- d:
		case err = <-errs:
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	close(errs)
	if err == nil {
		err = <-errs // nil once closed and empty
	}
	if err != nil {
		return err
	}
	return declarePresence(ctx, c, app, p)
}

// register puts one device's token.
func register(ctx context.Context, c *client, app string, d *device) error {
	body, err := json.Marshal(map[string]string{"vendor": string(d.Vendor), "token": d.Token, "certName": d.CertName})
	if err != nil {
		return err
	}
	path := fmt.Sprintf("/v1/apps/%s/users/%s/devices/%s", url.PathEscape(app), url.PathEscape(d.User), url.PathEscape(d.ID))
	a, _, err := c.doRetry(ctx, http.MethodPut, path, body)
	if err != nil {
		return fmt.Errorf("register device %s/%s: %w", d.User, d.ID, err)
	}
	if a.Status != http.StatusOK {
		return fmt.Errorf("register device %s/%s: %d %s", d.User, d.ID, a.Status, brief(a.Body))
	}
	return nil
}

// presenceUpdate is one member of a presence batch (API.md §4).
type presenceUpdate struct {
	UserID       string `json:"userId"`
	DeviceID     string `json:"deviceId"`
	State        string `json:"state"`
	Platform     string `json:"platform,omitempty"`
	LeaseSeconds int    `json:"leaseSeconds,omitempty"`
	Epoch        int    `json:"epoch"`
}

// declarePresence sends the presence of every device that has one, and a
// PC online for each desktop user, in batches.
func declarePresence(ctx context.Context, c *client, app string, p *population) error {
	var ups []presenceUpdate
	for _, d := range p.Devices {
		platform := "android"
		if d.Vendor == push.APNs {
			platform = "ios"
		}
		switch d.Presence {
		case online:
			ups = append(ups, presenceUpdate{UserID: d.User, DeviceID: d.ID, State: "online", Platform: platform, LeaseSeconds: runLease, Epoch: 1})
		case offline:
			ups = append(ups, presenceUpdate{UserID: d.User, DeviceID: d.ID, State: "offline", Epoch: 1})
		}
	}
	for _, u := range p.Desktop {
		ups = append(ups, presenceUpdate{UserID: u, DeviceID: "pc", State: "online", Platform: "pc", LeaseSeconds: runLease, Epoch: 1})
	}
	path := fmt.Sprintf("/v1/apps/%s/presence/batch", url.PathEscape(app))
	for len(ups) > 0 {
		n := min(len(ups), maxPresenceBatch)
		body, err := json.Marshal(map[string]any{"updates": ups[:n]})
		if err != nil {
			return err
		}
		a, _, err := c.doRetry(ctx, http.MethodPost, path, body)
		if err != nil {
			return fmt.Errorf("presence batch: %w", err)
		}
		if a.Status != http.StatusOK {
			return fmt.Errorf("presence batch: %d %s", a.Status, brief(a.Body))
		}
		ups = ups[n:]
	}
	return nil
}

// bindings reads which devices of each user still hold a token, through GET
// devices: the binding left in DynamoDB as the service itself reports it.
// It returns the token suffix of each bound device.
func bindings(ctx context.Context, c *client, app string, users []string) (map[deviceKey]string, error) {
	out := map[deviceKey]string{}
	for _, u := range users {
		path := fmt.Sprintf("/v1/apps/%s/users/%s/devices", url.PathEscape(app), url.PathEscape(u))
		a, _, err := c.doRetry(ctx, http.MethodGet, path, nil)
		if err != nil {
			return nil, fmt.Errorf("read devices of %s: %w", u, err)
		}
		if a.Status != http.StatusOK {
			return nil, fmt.Errorf("read devices of %s: %d %s", u, a.Status, brief(a.Body))
		}
		var list struct {
			Devices []struct {
				DeviceID    string  `json:"deviceId"`
				TokenSuffix *string `json:"tokenSuffix"`
			} `json:"devices"`
		}
		if err := json.Unmarshal(a.Body, &list); err != nil {
			return nil, fmt.Errorf("read devices of %s: %w", u, err)
		}
		for _, d := range list.Devices {
			if d.TokenSuffix != nil {
				out[deviceKey{u, d.DeviceID}] = *d.TokenSuffix
			}
		}
	}
	return out, nil
}
