// Package vivo delivers pushes through vivo Push, with its own HTTP client:
// vivo ships no Go SDK.
//
// What it sends, and why (VENDORS.md §8, §10, §11.6–7):
//
//   - Auth: POST /message/auth with appId (a number), appKey, a millisecond
//     timestamp and sign = lowercase hex md5(appId + appKey + timestamp +
//     appSecret). The authToken lives 24 hours, but vivo asks callers to
//     cache it centrally and renew it every one to two hours, and limits
//     auth calls to 10 a second: one token per app is shared by every
//     container through the TokenCache and renewed after an hour. It travels
//     in the authToken header (not Authorization). vivo's code for a refused
//     authToken was not found in any source; 10000 ("权限认证失败", auth
//     failed) and 10094 (appId differs from the token's) are taken to mean
//     it, and refresh the token once before the send is tried again.
//   - Sends: one target goes through /message/send; 2 to 1000 targets that
//     share one text and notify id go through /message/saveListPayload
//     (the notification, answered with a taskId) and /message/pushToList
//     (the regIds). One vivo request carries one notification, so targets
//     are grouped by text and notify id first. Should vivo refuse list
//     payloads for the day (10252), the targets of this app go one by one
//     until midnight in China instead of waiting for the reset.
//   - Class: category from the credentials (default IM) with classification
//     1 (system message) for vivo's system categories (IM, ACCOUNT, TODO,
//     DEVICE_REMINDER, ORDER, SUBSCRIPTION) and 0 for the others, so chat and
//     calls are not capped as operational messages nor held back at night.
//   - TTL: timeToLive in seconds, 60 to 86400 (the sources disagree on the
//     range; the narrowest reading is used). A push with less time left,
//     NowOrNever ones included, goes with 60 s, and a call invite always
//     carries callExpiresAt in its data (POLICY.md rule 25), so the app can
//     ignore a ring that comes late.
//   - Collapse: notifyId, the integer collapse id push.CollapseFor derives;
//     a cancel replaces its ringing invite.
//   - Texts: vivo counts a Chinese character as two and allows 40 for the
//     title and 100 for the content. Ingest's budget counts every character
//     as one, so the texts are cut again here, counting every non-ASCII
//     character as two (never less than vivo's count), on a character
//     boundary with an ellipsis.
//   - Data: clientCustomMap, at most 10 pairs and 1024 characters in all,
//     holding our keys (type, messageId, senderId, conversationType,
//     conversationId, and for calls callId, media, callExpiresAt), which win
//     over a caller key of the same name, and the caller's payload. When
//     that does not fit, the caller's payload travels as one JSON string
//     under "payload"; then the optional keys (senderId, conversation) are
//     left out; when even that does not fit the push is a bad message.
//   - Sound: notifyType 4 (sound and vibration). vivo's push API has no
//     badge or priority field, so neither is sent (POLICY.md rule 23).
//
// Answers are mapped to push.SendClass per target: 10302 with invalidUser
// (single sends) or invalidUsers (list sends) is invalid_token for status 1
// (regId unknown to this app; a wrong app is refused at auth or with 10094,
// so status 1 is about the token), 2 (uninstalled, unsubscribed or cleared)
// and 3 (inactive for 90 days), and bad_message for status 4 (not a test
// user; we never send test pushes); 10070 (daily total) is throttled until
// the next midnight in China; HTTP 429 is throttled; category errors
// (10096, 10097) are bad_message; HTTP 5xx and unknown codes are transient.
package vivo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/offline-push/offline-push/shared/push"
)

// vivo's public host and paths (VENDORS.md §8).
const (
	defaultHost  = "https://api-push.vivo.com.cn"
	authPath     = "/message/auth"
	sendPath     = "/message/send"
	savePath     = "/message/saveListPayload"
	pushListPath = "/message/pushToList"
)

// Limits of one request and one notification.
const (
	// MaxList is the most regIds one pushToList request carries; a list
	// needs at least 2.
	MaxList = 1000
	// MinTTL and MaxTTL bound timeToLive.
	MinTTL = 60 * time.Second
	MaxTTL = 24 * time.Hour
	// TitleWidth and ContentWidth are vivo's limits, counting a Chinese
	// character as two.
	TitleWidth   = 40
	ContentWidth = 100
	// MaxCustomPairs and MaxCustomChars bound clientCustomMap.
	MaxCustomPairs = 10
	MaxCustomChars = 1024
)

// HTTP and concurrency settings.
const (
	requestTimeout = 15 * time.Second
	maxIdlePerHost = 16
	maxCachedCreds = 64
	// groupConcurrency bounds the requests of one job in flight at once.
	groupConcurrency = 8
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
	// RequestID returns each request's requestId (unique, at most 64
	// characters); nil uses 32 random hex digits.
	RequestID func() string
	// Log receives a line per minted token; nil discards.
	Log *slog.Logger
}

// Sender delivers push jobs to vivo. It is safe for concurrent use and meant
// to live across warm invocations, with its parsed credentials and tokens.
type Sender struct {
	cache     TokenCache
	client    *http.Client
	now       func() time.Time
	requestID func() string
	log       *slog.Logger

	mu       sync.Mutex
	tokens   map[string]*tokenState // by token cache key
	creds    map[string]*parsed     // by SendJob.CredentialsKey
	noListTo map[string]time.Time   // by app id: list payloads refused until then
}

// New returns a Sender.
func New(opts Options) *Sender {
	s := &Sender{
		cache:     opts.Cache,
		client:    opts.HTTPClient,
		now:       opts.Now,
		requestID: opts.RequestID,
		log:       opts.Log,
		tokens:    map[string]*tokenState{},
		creds:     map[string]*parsed{},
		noListTo:  map[string]time.Time{},
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
	if s.requestID == nil {
		s.requestID = randomID
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

func randomID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
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
	base, res := baseMessage(job, p)
	if res != nil {
		fill(results, nil, *res)
		return results
	}
	groups := groupTargets(job)
	sem := make(chan struct{}, groupConcurrency)
	var wg sync.WaitGroup
	for _, g := range groups {
		for start := 0; start < len(g.idx); start += MaxList {
			idx := g.idx[start:min(start+MaxList, len(g.idx))]
			msg := base
			msg.Title, msg.Content = g.title, g.content
			msg.NotifyID = g.notifyID
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				s.sendGroup(ctx, p, msg, job.Targets, idx, results)
			}()
		}
	}
	wg.Wait()
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
// first use. A rotated secret comes with a new key; an entry goes once more
// than maxCachedCreds are kept.
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
