// Package meizu delivers pushes through Meizu (Flyme) Push's server API
// (VENDORS.md §9): POST /garcia/api/server/push/varnished/pushByPushId, a
// form with up to 1000 comma-joined pushIds, a messageJson and an MD5
// signature over the sorted parameters and the app secret.
//
// Meizu has no access token (each request is signed with the secret), no
// message classification and no quota classes, so there is nothing to
// cache, refresh or classify: a signature failure (1006) means the secret
// is wrong and is reported as push.SendAuth at once.
//
// The package imports push and the standard library only: no Meizu SDK
// exists for Go, and providers never import each other or the use cases.
package meizu

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/offline-push/offline-push/shared/push"
)

// MaxTargets is how many pushIds Meizu accepts in one request.
const MaxTargets = 1000

// concurrency bounds the requests one Send has in flight. Meizu allows an
// app 200 requests per second by default, and a job rarely needs more than
// a few requests (one per text and notifyKey).
const concurrency = 4

// requestTimeout bounds one HTTP exchange with Meizu, so that a stalled
// connection turns into a transient failure well inside a dispatch
// invocation's time.
const requestTimeout = 15 * time.Second

// maxConfigs bounds the parsed credentials kept across warm invocations.
const maxConfigs = 64

// Sender sends SendJobs to Meizu. It keeps its HTTP connections and the
// parsed credentials across warm invocations; it is safe for concurrent use.
type Sender struct {
	client *http.Client
	now    func() time.Time
	log    *slog.Logger

	mu      sync.Mutex
	configs map[string]*config // by SendJob.CredentialsKey
}

// New returns a Sender. now is the clock that places Meizu's daily limit
// reset (midnight in China); log receives one line per unexpected vendor
// answer, never a token or a secret.
func New(now func() time.Time, log *slog.Logger) *Sender {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   2 * concurrency,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &Sender{
		client:  &http.Client{Transport: tr, Timeout: requestTimeout},
		now:     now,
		log:     log,
		configs: map[string]*config{},
	}
}

// request is one HTTP request to Meizu: one messageJson and up to
// MaxTargets distinct pushIds. targets[i] lists the job's targets that
// share pushIDs[i].
type request struct {
	messageJSON string
	pushIDs     []string
	targets     [][]int
	// err, when set, is the verdict for every target without sending.
	err *push.SendResult
}

// Send delivers job and returns one result per target, in order. It never
// returns early on a failure: every target gets its own verdict.
func (s *Sender) Send(ctx context.Context, job *push.SendJob) []push.SendResult {
	results := make([]push.SendResult, len(job.Targets))
	if job.Envelope == nil {
		fill(results, push.SendResult{Class: push.SendBadMessage, Code: "no_envelope"})
		return results
	}
	cfg, err := s.config(job)
	if err != nil {
		// The secret is unusable: dispatch retries and alarms, which is
		// what a broken secret needs (an operator must fix it).
		s.log.Error("meizu credentials unusable", "credentials", job.CredentialsKey, "err", err)
		fill(results, push.SendResult{Class: push.SendAuth, Code: "bad_credentials"})
		return results
	}
	reqs := plan(job, results)
	var wg sync.WaitGroup
	sem := make(chan struct{}, concurrency)
	for _, r := range reqs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			got := s.deliver(ctx, cfg, r)
			for i, res := range got {
				for _, t := range r.targets[i] {
					results[t] = res
				}
			}
		}()
	}
	wg.Wait()
	return results
}

// plan splits job into requests, one notification each: targets share a
// request when they share a text and a notifyKey. Targets that cannot be
// sent at all get their verdict in results directly.
func plan(job *push.SendJob, results []push.SendResult) []*request {
	env := job.Envelope
	type groupKey struct {
		text int
		key  string
	}
	type group struct {
		key   groupKey
		order []string
		index map[string][]int
	}
	var groups []*group
	byKey := map[groupKey]*group{}
	for i := range job.Targets {
		t := &job.Targets[i]
		if t.Text < 0 || t.Text >= len(env.Texts) {
			results[i] = push.SendResult{Class: push.SendBadMessage, Code: "no_text"}
			continue
		}
		if t.Token == "" || strings.ContainsAny(t.Token, ", \t\r\n") {
			// A pushId is one alphanumeric word; one holding a comma or a
			// space can never be delivered and would corrupt the list.
			results[i] = push.SendResult{Class: push.SendInvalidToken, Code: "malformed_token"}
			continue
		}
		k := groupKey{text: t.Text, key: notifyKey(env, t)}
		g := byKey[k]
		if g == nil {
			g = &group{key: k, index: map[string][]int{}}
			byKey[k] = g
			groups = append(groups, g)
		}
		if _, seen := g.index[t.Token]; !seen {
			g.order = append(g.order, t.Token)
		}
		g.index[t.Token] = append(g.index[t.Token], i)
	}
	var reqs []*request
	for _, g := range groups {
		mj, bad := messageJSON(job, g.key.text, g.key.key)
		for start := 0; start < len(g.order); start += MaxTargets {
			ids := g.order[start:min(start+MaxTargets, len(g.order))]
			r := &request{messageJSON: mj, pushIDs: ids, err: bad}
			for _, id := range ids {
				r.targets = append(r.targets, g.index[id])
			}
			reqs = append(reqs, r)
		}
	}
	return reqs
}

// config returns the parsed credentials of job, cached by CredentialsKey.
func (s *Sender) config(job *push.SendJob) (*config, error) {
	key := job.CredentialsKey
	if key != "" {
		s.mu.Lock()
		c, ok := s.configs[key]
		s.mu.Unlock()
		if ok {
			return c, nil
		}
	}
	c, err := parseCredentials(job.Credentials)
	if err != nil {
		return nil, err
	}
	if key != "" {
		s.mu.Lock()
		if len(s.configs) >= maxConfigs {
			clear(s.configs)
		}
		s.configs[key] = c
		s.mu.Unlock()
	}
	return c, nil
}

func fill(results []push.SendResult, r push.SendResult) {
	for i := range results {
		results[i] = r
	}
}
