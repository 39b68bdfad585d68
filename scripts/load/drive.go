package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/offline-push/offline-push/shared/push"
)

// message is one message the run sends.
type message struct {
	ID         string
	Sender     string
	Group      string // empty for a peer message
	Recipients []string
}

// sent is what became of one message.
type sent struct {
	Msg message
	// Accepted is when the 202 (or the 200 of a duplicate) arrived; zero
	// when the message failed.
	Accepted time.Time
	// Latency is the round trip of the request that was accepted.
	Latency time.Duration
	// Retried counts retried answers by status (0: transport failure).
	Retried map[int]int
	// Targets are the push decisions of the answer (explain).
	Targets []target
	// Err is why the message was never accepted.
	Err error
	// Late is how far behind its schedule the request left.
	Late time.Duration
}

// target is one push the service decided on: a (message, device) pair that
// must end in exactly one outcome.
type target struct {
	MessageID string
	User      string
	Device    string
	Vendor    push.Vendor
}

// groupCount is how many group conversations the messages spread over.
const groupCount = 20

// plan draws the messages of a run from seed: count messages, a share
// of them to a small group of 3 to groupMax recipients, the rest peer
// messages. Senders and recipients are seeded users.
func plan(run string, users []string, count int, groupShare float64, groupMax int, seed int64) []message {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6d7367))
	out := make([]message, count)
	for i := range out {
		m := message{ID: fmt.Sprintf("ld-%s-%06d", run, i), Sender: users[rng.IntN(len(users))]}
		size := 1
		if len(users) > 3 && rng.Float64() < groupShare {
			m.Group = fmt.Sprintf("g%s-%02d", run, rng.IntN(groupCount))
			size = 3 + rng.IntN(max(groupMax-2, 1))
		}
		size = min(size, len(users)-1)
		seen := map[string]bool{m.Sender: true}
		for len(m.Recipients) < size {
			u := users[rng.IntN(len(users))]
			if !seen[u] {
				seen[u] = true
				m.Recipients = append(m.Recipients, u)
			}
		}
		out[i] = m
	}
	return out
}

// body is the message's POST body (API.md §6). The message id is the
// push's title and ends its text, so that a vendor receipt, which shows the
// title or the text, names its message.
func (m message) body() ([]byte, error) {
	conv := map[string]string{"type": "peer"}
	if m.Group != "" {
		conv = map[string]string{"type": "group", "id": m.Group}
	}
	return json.Marshal(map[string]any{
		"messageId":    m.ID,
		"type":         "message",
		"sender":       map[string]string{"userId": m.Sender},
		"conversation": conv,
		"recipients":   m.Recipients,
		"push":         map[string]any{"title": m.ID, "content": "load test " + m.ID},
		"explain":      true,
	})
}

// drive sends msgs at a steady rate (one every interval from start), at
// most inFlight at once, and returns what became of each, in order. A
// request that finds every slot busy leaves late, and its lateness is
// recorded.
func drive(ctx context.Context, c *client, app string, msgs []message, interval time.Duration, inFlight int) []sent {
	out := make([]sent, len(msgs))
	slots := make(chan struct{}, inFlight)
	var wg sync.WaitGroup
	start := time.Now()
	path := fmt.Sprintf("/v1/apps/%s/messages", url.PathEscape(app))
	// cancel marks the messages from i on as never sent.
	cancel := func(i int) {
		for j := i; j < len(msgs); j++ {
			out[j] = sent{Msg: msgs[j], Err: ctx.Err()}
		}
	}
	for i, m := range msgs {
		due := start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
		}
		if ctx.Err() != nil {
			cancel(i)
			break
		}
		// A request that must wait for a slot leaves behind its schedule.
		var late time.Duration
		select {
		case slots <- struct{}{}:
		default:
			select {
			case slots <- struct{}{}:
				late = time.Since(due)
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			cancel(i)
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			out[i] = send(ctx, c, path, m)
			out[i].Late = late
		}()
	}
	wg.Wait()
	return out
}

// send posts one message, retrying what may be retried, and reads its
// decisions.
func send(ctx context.Context, c *client, path string, m message) sent {
	s := sent{Msg: m}
	body, err := m.body()
	if err != nil {
		s.Err = err
		return s
	}
	a, tries, err := c.doRetry(ctx, http.MethodPost, path, body)
	s.Retried = tries.Retried
	if err != nil {
		s.Err = err
		return s
	}
	if a.Status != http.StatusAccepted && a.Status != http.StatusOK {
		s.Err = fmt.Errorf("message %s: %d %s", m.ID, a.Status, brief(a.Body))
		return s
	}
	var res struct {
		MessageID string `json:"messageId"`
		Pushes    int    `json:"pushes"`
		Decisions []struct {
			UserID   string  `json:"userId"`
			DeviceID *string `json:"deviceId"`
			Vendor   *string `json:"vendor"`
			Push     bool    `json:"push"`
		} `json:"decisions"`
	}
	if err := json.Unmarshal(a.Body, &res); err != nil {
		s.Err = fmt.Errorf("message %s: the answer is not JSON: %w", m.ID, err)
		return s
	}
	for _, d := range res.Decisions {
		if !d.Push {
			continue
		}
		if d.DeviceID == nil || d.Vendor == nil {
			s.Err = fmt.Errorf("message %s: a push decision without device or vendor", m.ID)
			return s
		}
		s.Targets = append(s.Targets, target{MessageID: m.ID, User: d.UserID, Device: *d.DeviceID, Vendor: push.Vendor(*d.Vendor)})
	}
	if len(s.Targets) != res.Pushes {
		s.Err = fmt.Errorf("message %s: %d push decisions but pushes = %d", m.ID, len(s.Targets), res.Pushes)
		return s
	}
	s.Accepted, s.Latency = a.At, a.Latency
	return s
}
