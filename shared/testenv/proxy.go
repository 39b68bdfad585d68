package testenv

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// ProxyOptions choose what the fault proxy does to the requests it serves.
// The zero value forwards everything untouched and only counts.
type ProxyOptions struct {
	// Serialize serves one request at a time. moto's transactions are not
	// isolated from concurrent requests, real DynamoDB's are, so race tests
	// need it to mean anything.
	Serialize bool

	// Seed makes the choice of faults repeatable: the same options and the
	// same sequence of requests give the same faults.
	Seed int64

	// ThrottleRate is the share of requests (those with an X-Amz-Target)
	// answered with the service's throttling error instead of being
	// forwarded. The SDK classifies each answer as a retryable throttle.
	ThrottleRate float64

	// UnprocessedRate is the share of keys of a BatchGetItem, and of write
	// requests of a BatchWriteItem, that are not forwarded and come back in
	// UnprocessedKeys or UnprocessedItems instead: the partial result callers
	// must retry. At least one key or write of each call is processed, as
	// DynamoDB does (it throttles the whole call rather than answering with
	// nothing done).
	UnprocessedRate float64

	// PartialBatchRate is the share of SQS SendMessageBatch entries that are
	// not forwarded and come back under Failed (SenderFault false, Code
	// InternalError), which callers must resend.
	PartialBatchRate float64

	// FailAfter maps an operation name to a number of calls: once that many
	// calls of the operation have been forwarded (since the options were set
	// or the counts reset), every further call is answered with HTTP 500
	// InternalFailure. Tests use it to crash a process mid-way and resume.
	FailAfter map[string]int
}

// OpCount is what the proxy saw of one operation.
type OpCount struct {
	// Requests counts calls forwarded to the target, whatever it answered.
	Requests int
	// ItemsRead counts items returned by successful calls: GetItem 1 if an
	// Item came back, BatchGetItem the items in Responses, TransactGetItems
	// the responses holding an Item, Query and Scan their Count.
	ItemsRead int
	// ItemsWritten counts items written by successful calls: PutItem,
	// UpdateItem and DeleteItem 1, BatchWriteItem the write requests
	// processed, TransactWriteItems its TransactItems, SendMessage 1 and
	// SendMessageBatch its Successful entries.
	ItemsWritten int
	// Faults counts calls the proxy answered or altered itself: throttled,
	// failed by FailAfter, or given unprocessed keys or failed entries.
	Faults int
}

// otherOp names requests without an X-Amz-Target header in Counts. They are
// forwarded untouched.
const otherOp = "other"

// Proxy is an HTTP proxy in front of an AWS emulator that injects the faults
// the emulator never produces and counts operations from outside the code
// under test. Point a client at it with AWSConfig(p.URL).
type Proxy struct {
	// URL is the proxy's base URL, http://127.0.0.1:PORT.
	URL string

	target string
	client *http.Client

	serial  sync.Mutex   // held around a whole request when Serialize is set
	waiting atomic.Int64 // requests waiting for serial, for tests

	mu     sync.Mutex
	opt    ProxyOptions
	rng    *rand.Rand
	counts map[string]*OpCount
	passed map[string]int // calls forwarded per operation, for FailAfter
}

// NewProxy starts a proxy on a free loopback port that forwards to the
// emulator at target (a base URL such as Server.Endpoint). It is closed when
// the test ends.
func NewProxy(t testing.TB, target string, opt ProxyOptions) *Proxy {
	t.Helper()
	transport := &http.Transport{
		Proxy: nil, // never through the developer's HTTP proxy
		// Bodies are read and rewritten here, so they must arrive plain.
		DisableCompression:  true,
		MaxIdleConnsPerHost: 64,
	}
	p := &Proxy{
		target: strings.TrimSuffix(target, "/"),
		client: &http.Client{Transport: transport},
	}
	p.SetOptions(opt)
	srv := httptest.NewServer(http.HandlerFunc(p.serve))
	p.URL = srv.URL
	t.Cleanup(func() {
		srv.Close()
		transport.CloseIdleConnections()
	})
	return p
}

// SetOptions replaces the options. It is safe while requests are served; a
// request already past its fault decision keeps the old ones. The random
// source is reseeded and the FailAfter tallies restart.
func (p *Proxy) SetOptions(opt ProxyOptions) {
	failAfter := make(map[string]int, len(opt.FailAfter))
	for op, n := range opt.FailAfter {
		failAfter[op] = n
	}
	opt.FailAfter = failAfter
	seed := uint64(opt.Seed)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.opt = opt
	p.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	p.passed = map[string]int{}
	if p.counts == nil {
		p.counts = map[string]*OpCount{}
	}
}

// Counts returns a copy of the counts per operation name ("GetItem",
// "SendMessageBatch", …; "other" for requests without X-Amz-Target).
func (p *Proxy) Counts() map[string]OpCount {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]OpCount, len(p.counts))
	for op, c := range p.counts {
		out[op] = *c
	}
	return out
}

// Reset zeroes the counts and restarts the FailAfter tallies, so that a test
// can measure one phase at a time.
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts = map[string]*OpCount{}
	p.passed = map[string]int{}
}

// call is one request on its way through the proxy.
type call struct {
	service string // X-Amz-Target before the dot, "" for other requests
	op      string
	body    []byte

	// Set by the fault decision for the batch operations.
	injected  []json.RawMessage                     // SendMessageBatch entries answered as failed
	allFailed bool                                  // every SendMessageBatch entry was made to fail
	withheld  map[string]map[string]json.RawMessage // BatchGetItem: table → KeysAndAttributes not forwarded
	held      map[string][]json.RawMessage          // BatchWriteItem: table → write requests not forwarded
}

// serve is the proxy's only handler.
func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "testenv proxy: read request: "+err.Error(), http.StatusBadRequest)
		return
	}
	c := &call{op: otherOp, body: body}
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		var found bool
		if c.service, c.op, found = strings.Cut(target, "."); !found {
			c.service, c.op = "", target
		}
	}

	p.mu.Lock()
	serialize := p.opt.Serialize
	p.mu.Unlock()
	if serialize {
		p.waiting.Add(1)
		p.serial.Lock()
		p.waiting.Add(-1)
		defer p.serial.Unlock()
	}

	if reply := p.decide(c); reply != nil {
		reply(w)
		return
	}
	status, header, respBody, err := p.forward(r, c)
	if err != nil {
		http.Error(w, "testenv proxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	respBody = p.account(c, status, respBody)
	copyHeader(w.Header(), header)
	// The SDK checks DynamoDB's checksum of the body, which may have been
	// rewritten or decompressed here.
	if header.Get("X-Amz-Crc32") != "" {
		w.Header().Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(respBody)), 10))
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(respBody)))
	w.WriteHeader(status)
	w.Write(respBody)
}

// decide applies the fault options to c under the lock, in a fixed order so
// that a seed gives the same faults: FailAfter, throttling, then the partial
// batch faults, which rewrite c.body. It returns the proxy's own answer when
// the call must not be forwarded, nil when it must.
func (p *Proxy) decide(c *call) func(http.ResponseWriter) {
	p.mu.Lock()
	defer p.mu.Unlock()
	count := p.count(c.op)
	if limit, ok := p.opt.FailAfter[c.op]; ok && p.passed[c.op] >= limit {
		count.Faults++
		return func(w http.ResponseWriter) {
			writeError(w, c.service, http.StatusInternalServerError, "InternalFailure", "Receiver",
				"testenv proxy: injected failure after "+strconv.Itoa(limit)+" calls")
		}
	}
	if c.service != "" && p.opt.ThrottleRate > 0 && p.rng.Float64() < p.opt.ThrottleRate {
		count.Faults++
		return func(w http.ResponseWriter) { writeThrottle(w, c.service) }
	}
	var injected bool
	switch c.op {
	case "BatchGetItem":
		injected = p.withholdKeys(c)
	case "BatchWriteItem":
		injected = p.holdWrites(c)
	case "SendMessageBatch":
		injected = p.failEntries(c)
	}
	if injected {
		count.Faults++
	}
	if c.allFailed {
		// Every entry failed: there is nothing left to send.
		return func(w http.ResponseWriter) {
			writeJSON(w, http.StatusOK, c.service, map[string]any{
				"Successful": []any{},
				"Failed":     c.injected,
			})
		}
	}
	p.passed[c.op]++
	count.Requests++
	return nil
}

// count returns the counters of op, creating them. p.mu must be held.
func (p *Proxy) count(op string) *OpCount {
	c, ok := p.counts[op]
	if !ok {
		c = &OpCount{}
		p.counts[op] = c
	}
	return c
}

// pick draws, for each of n elements, whether it is chosen with the given
// rate. p.mu must be held.
func (p *Proxy) pick(n int, rate float64) []bool {
	chosen := make([]bool, n)
	for i := range chosen {
		chosen[i] = rate > 0 && p.rng.Float64() < rate
	}
	return chosen
}

// withholdKeys removes a share of the keys from a BatchGetItem body and
// keeps them, with their table's projection and consistency settings, to be
// returned as UnprocessedKeys. p.mu must be held.
func (p *Proxy) withholdKeys(c *call) bool {
	if p.opt.UnprocessedRate <= 0 {
		return false
	}
	var req map[string]json.RawMessage
	var items map[string]map[string]json.RawMessage
	if json.Unmarshal(c.body, &req) != nil || json.Unmarshal(req["RequestItems"], &items) != nil {
		return false // malformed: let the emulator answer it
	}
	tables := sortedKeys(items)
	keys := make(map[string][]json.RawMessage, len(items))
	total := 0
	for _, table := range tables {
		var ks []json.RawMessage
		if json.Unmarshal(items[table]["Keys"], &ks) != nil {
			return false
		}
		keys[table] = ks
		total += len(ks)
	}
	chosen := p.pick(total, p.opt.UnprocessedRate)
	keepOne(chosen)
	withheld := map[string]map[string]json.RawMessage{}
	i := 0
	for _, table := range tables {
		var kept, left []json.RawMessage
		for _, k := range keys[table] {
			if chosen[i] {
				left = append(left, k)
			} else {
				kept = append(kept, k)
			}
			i++
		}
		if len(left) > 0 {
			withheld[table] = withKeys(items[table], left)
		}
		if len(kept) == 0 {
			delete(items, table)
		} else {
			items[table] = withKeys(items[table], kept)
		}
	}
	if len(withheld) == 0 {
		return false
	}
	req["RequestItems"] = mustMarshal(items)
	c.body = mustMarshal(req)
	c.withheld = withheld
	return true
}

// holdWrites removes a share of the write requests from a BatchWriteItem
// body and keeps them to be returned as UnprocessedItems. p.mu must be held.
func (p *Proxy) holdWrites(c *call) bool {
	if p.opt.UnprocessedRate <= 0 {
		return false
	}
	var req map[string]json.RawMessage
	var items map[string][]json.RawMessage
	if json.Unmarshal(c.body, &req) != nil || json.Unmarshal(req["RequestItems"], &items) != nil {
		return false
	}
	tables := sortedKeys(items)
	total := 0
	for _, table := range tables {
		total += len(items[table])
	}
	chosen := p.pick(total, p.opt.UnprocessedRate)
	keepOne(chosen)
	held := map[string][]json.RawMessage{}
	i := 0
	for _, table := range tables {
		var kept []json.RawMessage
		for _, wr := range items[table] {
			if chosen[i] {
				held[table] = append(held[table], wr)
			} else {
				kept = append(kept, wr)
			}
			i++
		}
		if len(kept) == 0 {
			delete(items, table)
		} else {
			items[table] = kept
		}
	}
	if len(held) == 0 {
		return false
	}
	req["RequestItems"] = mustMarshal(items)
	c.body = mustMarshal(req)
	c.held = held
	return true
}

// failEntries removes a share of the entries from a SendMessageBatch body
// and records a failure for each. If none is left, c.body becomes nil.
// p.mu must be held.
func (p *Proxy) failEntries(c *call) bool {
	if p.opt.PartialBatchRate <= 0 {
		return false
	}
	var req map[string]json.RawMessage
	var entries []json.RawMessage
	if json.Unmarshal(c.body, &req) != nil || json.Unmarshal(req["Entries"], &entries) != nil {
		return false
	}
	chosen := p.pick(len(entries), p.opt.PartialBatchRate)
	var kept []json.RawMessage
	for i, e := range entries {
		if !chosen[i] {
			kept = append(kept, e)
			continue
		}
		var id struct{ Id string }
		if json.Unmarshal(e, &id) != nil {
			return false
		}
		c.injected = append(c.injected, mustMarshal(map[string]any{
			"Id":          id.Id,
			"SenderFault": false,
			"Code":        "InternalError",
			"Message":     "testenv proxy: injected batch entry failure",
		}))
	}
	if len(c.injected) == 0 {
		return false
	}
	if len(kept) == 0 {
		c.allFailed = true
		return true
	}
	req["Entries"] = mustMarshal(kept)
	c.body = mustMarshal(req)
	return true
}

// forward sends c to the target with the client's method, path, query and
// headers, and returns the target's answer, decompressed if need be.
func (p *Proxy) forward(r *http.Request, c *call) (int, http.Header, []byte, error) {
	out, err := http.NewRequestWithContext(r.Context(), r.Method, p.target+r.URL.RequestURI(), bytes.NewReader(c.body))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("build request: %w", err)
	}
	copyHeader(out.Header, r.Header)
	out.Header.Del("Accept-Encoding")
	out.Header.Del("Expect")
	out.Host = r.Host // moto derives queue URLs from it, as AWS does
	resp, err := p.client.Do(out)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("forward %s: %w", c.op, err)
	}
	defer resp.Body.Close()
	var body io.Reader = resp.Body
	if strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			return 0, nil, nil, fmt.Errorf("decompress %s answer: %w", c.op, err)
		}
		body = zr
		resp.Header.Del("Content-Encoding")
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("read %s answer: %w", c.op, err)
	}
	return resp.StatusCode, resp.Header, b, nil
}

// itemOps are the operations whose answers account reads.
var itemOps = map[string]bool{
	"GetItem": true, "BatchGetItem": true, "TransactGetItems": true, "Query": true, "Scan": true,
	"PutItem": true, "UpdateItem": true, "DeleteItem": true, "BatchWriteItem": true, "TransactWriteItems": true,
	"SendMessage": true, "SendMessageBatch": true,
}

// account counts the items of a forwarded call's answer and merges the
// injected partial results into it. It returns the body to send back.
func (p *Proxy) account(c *call, status int, body []byte) []byte {
	if status/100 != 2 || !itemOps[c.op] {
		return body
	}
	var resp map[string]json.RawMessage
	if len(body) > 0 && json.Unmarshal(body, &resp) != nil {
		return body // not JSON: not ours to read
	}
	if resp == nil {
		resp = map[string]json.RawMessage{}
	}
	read, written := 0, 0
	switch c.op {
	case "GetItem":
		if _, ok := resp["Item"]; ok {
			read = 1
		}
	case "BatchGetItem":
		var responses map[string][]json.RawMessage
		json.Unmarshal(resp["Responses"], &responses)
		for _, items := range responses {
			read += len(items)
		}
		if c.withheld != nil {
			resp["UnprocessedKeys"] = mergeUnprocessedKeys(resp["UnprocessedKeys"], c.withheld)
			body = mustMarshal(resp)
		}
	case "TransactGetItems":
		var responses []map[string]json.RawMessage
		json.Unmarshal(resp["Responses"], &responses)
		for _, r := range responses {
			if _, ok := r["Item"]; ok {
				read++
			}
		}
	case "Query", "Scan":
		json.Unmarshal(resp["Count"], &read)
	case "PutItem", "UpdateItem", "DeleteItem", "SendMessage":
		written = 1
	case "BatchWriteItem":
		var req map[string]json.RawMessage
		var sent, unprocessed map[string][]json.RawMessage
		json.Unmarshal(c.body, &req)
		json.Unmarshal(req["RequestItems"], &sent)
		json.Unmarshal(resp["UnprocessedItems"], &unprocessed)
		for _, wrs := range sent {
			written += len(wrs)
		}
		for _, wrs := range unprocessed {
			written -= len(wrs)
		}
		if c.held != nil {
			if unprocessed == nil {
				unprocessed = map[string][]json.RawMessage{}
			}
			for table, wrs := range c.held {
				unprocessed[table] = append(unprocessed[table], wrs...)
			}
			resp["UnprocessedItems"] = mustMarshal(unprocessed)
			body = mustMarshal(resp)
		}
	case "TransactWriteItems":
		var req struct{ TransactItems []json.RawMessage }
		json.Unmarshal(c.body, &req)
		written = len(req.TransactItems)
	case "SendMessageBatch":
		var successful, failed []json.RawMessage
		json.Unmarshal(resp["Successful"], &successful)
		json.Unmarshal(resp["Failed"], &failed)
		written = len(successful)
		if c.injected != nil {
			resp["Failed"] = mustMarshal(append(failed, c.injected...))
			body = mustMarshal(resp)
		}
	}
	p.mu.Lock()
	count := p.count(c.op)
	count.ItemsRead += read
	count.ItemsWritten += written
	p.mu.Unlock()
	return body
}
