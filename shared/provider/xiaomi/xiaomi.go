// Package xiaomi delivers pushes through Xiaomi MiPush's server API
// (VENDORS.md §6): POST /v3/message/regid, a form with up to 1000 comma-joined
// regIds per request, authenticated by "Authorization: key=<AppSecret>".
//
// Xiaomi has no token exchange, so there is no access token to cache or
// refresh: an authentication failure (21301) means the secret itself is
// wrong and is reported as push.SendAuth at once.
//
// Chat pushes go in the app's approved private-message channel
// (extra.channel_id), calls in callChannelId when set, so that Xiaomi does
// not count them against the public-message quota (VENDORS.md §10).
//
// The package imports push and the standard library only: no Xiaomi SDK
// exists for Go, and providers never import each other or the use cases.
package xiaomi

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/offline-push/offline-push/shared/push"
)

// MaxTargets is how many regIds Xiaomi accepts in one request.
const MaxTargets = 1000

// concurrency bounds the requests one Send has in flight: a job's targets
// split by text and notify id into a few groups, which go out together.
const concurrency = 4

// requestTimeout bounds one HTTP exchange with Xiaomi, so that a stalled
// connection turns into a transient failure well inside a dispatch
// invocation's time.
const requestTimeout = 15 * time.Second

// maxConfigs bounds the parsed credentials kept across warm invocations; a
// container serves a handful of apps, and a rotated secret gets a new key.
const maxConfigs = 64

// Sender sends SendJobs to Xiaomi. It keeps its HTTP connections and the
// parsed credentials across warm invocations; it is safe for concurrent use.
type Sender struct {
	client *http.Client
	now    func() time.Time
	log    *slog.Logger

	mu      sync.Mutex
	configs map[string]*config // by SendJob.CredentialsKey
}

// New returns a Sender. now is the clock that places Xiaomi's daily quota
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
		s.log.Error("xiaomi credentials unusable", "credentials", job.CredentialsKey, "err", err)
		fill(results, push.SendResult{Class: push.SendAuth, Code: "bad_credentials"})
		return results
	}
	reqs := plan(cfg, job, results)
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
