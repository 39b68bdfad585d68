// Package oppo delivers pushes through OPPO PUSH (OPUSH, which also serves
// OnePlus and realme phones), with its own HTTP client: OPPO ships no Go SDK.
//
// What it sends, and why (VENDORS.md §7, §10, §11.5):
//
//   - Auth: POST /server/v1/auth with app_key, a 13-digit millisecond
//     timestamp and sign = hex(sha256(app_key + timestamp + master_secret)).
//     The auth_token it returns lives 24 hours; OPPO rate-limits minting, so
//     one token per app key and host is shared by every container through the
//     TokenCache and reused until an hour before it expires. It travels as the
//     auth_token form field, as the documentation says (some clients send it
//     as a header; unverified which the live API prefers).
//   - Sends: POST /server/v1/message/notification/unicast_batch, a form whose
//     messages field is a JSON array of at most 1000 single pushes. Each
//     element carries its own notification, so one request serves targets
//     with different texts and notify ids; no grouping by text is needed.
//     Field names are snake_case, as in the documentation's parameter table.
//   - Class: category from the credentials (default IM, the communication
//     and service class, unlimited) and the registered channel_id, so chat
//     and calls are not throttled as marketing. OPPO has no call category;
//     IM covers voice and video calls. notify_level is sent only when a
//     resource asks for it, since level 16 needs a separate permission and a
//     refusal (code 67) would drop the push.
//   - TTL: off_line_ttl in seconds, 1 s to OPPO's maximum of 10 days.
//     NowOrNever pushes go with off_line false, so OPPO does not store them.
//     OPPO has no minimum beyond a second, so POLICY.md rule 25 never has to
//     stretch a call's lifetime; invites still carry callExpiresAt so the app
//     treats every vendor alike.
//   - Collapse: notify_id, the integer collapse id push.CollapseFor derives.
//     app_message_id (OPPO drops a second push with the same id to the same
//     target) is derived from the message id, so a retry of a push OPPO did
//     accept, behind a lost answer, is not shown twice.
//   - Texts: the standard style (1): title and content at most 50
//     characters each, counted in code points (OPPO counts an emoji as one).
//     Ingest fitted them already; they are checked again here and cut on a
//     character boundary with an ellipsis if a queue carried something longer.
//   - Payload: action_parameters, a JSON object string of at most 4000
//     characters, holding the caller's payload and our keys (type,
//     messageId, senderId, conversationType, conversationId, and for calls
//     callId, media, callExpiresAt). Ours win over a caller key of the same
//     name, because the app needs them to route a tap and end a call.
//   - Badge and priority: OPPO's push API has no badge or priority field, so
//     neither is sent (POLICY.md rule 23 applies to vendors with badges).
//   - Hosts: registration ids of the domestic form go to
//     api.push.oppomobile.com, the others to api-intl.push.oppomobile.com,
//     each with its own auth_token; an endpoint in the credentials replaces
//     both.
//
// Answers are mapped to push.SendClass per target: per-item errorCode 10000
// (invalid registration id) is invalid_token; code 11 (invalid auth_token)
// refreshes the token once and resends, then is auth; -2, 13 and 55 are
// throttled; 33 (daily limit) is throttled until the next midnight in China
// (UTC+8); -1, HTTP 5xx and unknown codes are transient; parameter errors are
// bad_message; credential and permission errors are auth.
package oppo

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/offline-push/offline-push/shared/push"
)

// OPPO's public hosts and paths (VENDORS.md §7).
const (
	domesticHost = "https://api.push.oppomobile.com"
	overseasHost = "https://api-intl.push.oppomobile.com"
	authPath     = "/server/v1/auth"
	batchPath    = "/server/v1/message/notification/unicast_batch"
)

// Limits of one request and one notification.
const (
	// MaxBatch is the most messages one unicast_batch request carries.
	MaxBatch = 1000
	// MaxTTL is OPPO's longest off_line_ttl (10 days).
	MaxTTL = 10 * 24 * time.Hour
	// TitleLimit and ContentLimit are the standard style's limits, in
	// characters (code points).
	TitleLimit   = 50
	ContentLimit = 50
	// ActionParametersLimit bounds action_parameters, in characters; they
	// are counted in UTF-16 units, as a Java server counts, which is never
	// less than code points.
	ActionParametersLimit = 4000
)

// HTTP settings: one client per process keeps its connections to OPPO
// across warm invocations.
const (
	requestTimeout = 15 * time.Second
	maxIdlePerHost = 16
	maxCachedCreds = 64
)

// Options configures a Sender.
type Options struct {
	// Cache shares auth tokens between containers; nil keeps them in this
	// process only (tests, tools).
	Cache TokenCache
	// HTTPClient sends every request; nil uses a client with a 15 s timeout.
	HTTPClient *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives a line per minted token; nil discards.
	Log *slog.Logger
}

// Sender delivers push jobs to OPPO. It is safe for concurrent use and meant
// to live across warm invocations, with its parsed credentials and tokens.
type Sender struct {
	cache  TokenCache
	client *http.Client
	now    func() time.Time
	log    *slog.Logger

	mu     sync.Mutex
	tokens map[string]*tokenState // by token cache key
	creds  map[string]*parsed     // by SendJob.CredentialsKey
}

// New returns a Sender.
func New(opts Options) *Sender {
	s := &Sender{
		cache:  opts.Cache,
		client: opts.HTTPClient,
		now:    opts.Now,
		log:    opts.Log,
		tokens: map[string]*tokenState{},
		creds:  map[string]*parsed{},
	}
	if s.cache == nil {
		s.cache = newLocalCache()
	}
	if s.client == nil {
		s.client = &http.Client{
			Timeout: requestTimeout,
			Transport: &http.Transport{
				Proxy:               http.ProxyFromEnvironment,
				DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
				TLSHandshakeTimeout: 5 * time.Second,
				MaxIdleConnsPerHost: maxIdlePerHost,
				IdleConnTimeout:     90 * time.Second,
			},
		}
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// Send delivers job and returns one result per target, in order. It never
// fails as a whole: a problem that concerns every target (credentials, a
// token that cannot be minted) is that result for each of them.
func (s *Sender) Send(ctx context.Context, job *push.SendJob) []push.SendResult {
	results := make([]push.SendResult, len(job.Targets))
	p, err := s.parsedCredentials(job.CredentialsKey, job.Credentials)
	if err != nil {
		fill(results, nil, push.SendResult{Class: push.SendAuth, Code: "credentials"})
		return results
	}
	msgs, res := build(job, p, s.now())
	if res != nil {
		fill(results, nil, *res)
		return results
	}
	for _, g := range p.split(job.Targets) {
		for start := 0; start < len(g.idx); start += MaxBatch {
			idx := g.idx[start:min(start+MaxBatch, len(g.idx))]
			s.sendBatch(ctx, p, g.host, idx, msgs, results)
		}
	}
	return results
}

// fill sets the results at idx (all of them when idx is nil) to r.
func fill(results []push.SendResult, idx []int, r push.SendResult) {
	if idx == nil {
		for i := range results {
			results[i] = r
		}
		return
	}
	for _, i := range idx {
		results[i] = r
	}
}

// parsedCredentials returns the parsed credentials of key, parsing raw on
// first use. A rotated secret comes with a new key; the oldest entries go
// once more than maxCachedCreds are kept.
func (s *Sender) parsedCredentials(key string, raw []byte) (*parsed, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.creds[key]; ok && key != "" {
		return p, nil
	}
	p, err := parseCredentials(raw)
	if err != nil {
		return nil, err
	}
	if len(s.creds) >= maxCachedCreds {
		for k := range s.creds { // any one: rotation is rare
			delete(s.creds, k)
			break
		}
	}
	s.creds[key] = p
	return p, nil
}
