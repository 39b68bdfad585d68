package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/google/go-cmp/cmp"

	"github.com/offline-push/offline-push/shared/cfn"
	"github.com/offline-push/offline-push/shared/dynamo"
	"github.com/offline-push/offline-push/shared/httpapi"
	"github.com/offline-push/offline-push/shared/presence"
	"github.com/offline-push/offline-push/shared/push"
	"github.com/offline-push/offline-push/shared/secrets"
	"github.com/offline-push/offline-push/shared/testenv"
)

// presenceApp is the app every presence test signs for.
const presenceApp = "demo"

// presenceAPI is the devices function's presence routes served in-process by
// a real router and verifier, over DynamoDB on moto behind the fault proxy.
type presenceAPI struct {
	router *httpapi.Router
	store  *dynamo.PresenceStore
	// getenv configures app.Devices against the same emulator and stack.
	getenv func(string) string
	proxy  *testenv.Proxy
	secret string
	clock  *presenceClock
	nonce  atomic.Int64
	prefix string
}

// presenceClock is the server clock of the router, moved by the tests.
type presenceClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *presenceClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *presenceClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func newPresenceAPI(t *testing.T) *presenceAPI {
	t.Helper()
	srv := testenv.Moto(t)
	stack := testenv.Stack(t, srv.Endpoint)
	proxy := testenv.NewProxy(t, srv.Endpoint, testenv.ProxyOptions{Serialize: true})
	cfg := testenv.AWSConfig(proxy.URL)
	db := dynamodb.NewFromConfig(cfg)
	store := dynamo.NewPresenceStore(db, stack.Tables["StateTable"])
	a := &presenceAPI{
		store:  store,
		getenv: testenv.Env(srv.Endpoint, stack.FunctionEnv("DevicesFunction")),
		proxy:  proxy,
		secret: "presence-test-secret",
		// Wall-clock based so that DynamoDB TTL never sees the past, at
		// millisecond precision like every instant of the API.
		clock: &presenceClock{now: time.Now().UTC().Truncate(time.Millisecond)},
	}
	a.prefix = strconv.FormatUint(uint64(rand.Uint32()), 36)
	verifier := presenceVerifier(t, cfg, stack, a.secret)
	a.router = httpapi.New(httpapi.Config{
		Handlers: presenceHandlers(store),
		Verifier: verifier,
		Log:      slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Now:      a.clock.Now,
	})
	return a
}

// presenceVerifier stores secret as the API secret of presenceApp in the
// emulated Secrets Manager and returns a verifier reading it through the
// real adapters, with nonces spent in the stack's RequestTable.
func presenceVerifier(t *testing.T, cfg aws.Config, stack *cfn.Stack, secret string) *httpapi.Verifier {
	t.Helper()
	env := stack.FunctionEnv("DevicesFunction")
	sm := secretsmanager.NewFromConfig(cfg)
	value, err := json.Marshal(map[string][]string{"apiSecrets": {secret}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{
		Name:         aws.String(env[EnvSecretPrefix] + "/" + presenceApp + "/api"),
		SecretString: aws.String(string(value)),
	}); err != nil {
		t.Fatalf("create API secret: %v", err)
	}
	return httpapi.NewVerifier(
		secrets.New(sm, env[EnvSecretPrefix], time.Now),
		dynamo.NewNonceStore(dynamodb.NewFromConfig(cfg), env[EnvRequestTable]),
	)
}

// do sends a signed request and returns the status and the raw body.
func (a *presenceAPI) do(method, path, body string) (int, []byte) {
	ts := strconv.FormatInt(a.clock.Now().Unix(), 10)
	nonce := fmt.Sprintf("n%s-%08d", a.prefix, a.nonce.Add(1))
	ev := events.APIGatewayV2HTTPRequest{
		RawPath: path,
		Body:    body,
		Headers: map[string]string{
			"content-type":     "application/json",
			"x-push-timestamp": ts,
			"x-push-nonce":     nonce,
			"x-push-signature": httpapi.Sign(a.secret, method, path, "", ts, nonce, []byte(body)),
		},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			Stage: "$default",
			HTTP:  events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path},
		},
	}
	// Router.Lambda never returns an error (it answers a 500 instead), so
	// do is safe on any goroutine.
	resp, _ := a.router.Lambda(context.Background(), ev)
	return resp.StatusCode, []byte(resp.Body)
}

// presenceState is the answer to a presence update.
type presenceState struct {
	Applied    bool    `json:"applied"`
	Online     bool    `json:"online"`
	LeaseUntil *string `json:"leaseUntil"`
}

type presenceBatchResult struct {
	UserID     string  `json:"userId"`
	DeviceID   string  `json:"deviceId"`
	Applied    bool    `json:"applied"`
	Online     bool    `json:"online"`
	LeaseUntil *string `json:"leaseUntil"`
}

func presenceResult(user, device string, s presenceState) presenceBatchResult {
	return presenceBatchResult{UserID: user, DeviceID: device, Applied: s.Applied, Online: s.Online, LeaseUntil: s.LeaseUntil}
}

type presenceErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"error"`
}

func presencePath(user, device string) string {
	return "/v1/apps/" + presenceApp + "/users/" + user + "/devices/" + device + "/presence"
}

// put sends one presence update and requires a 200.
func (a *presenceAPI) put(t testing.TB, user, device, body string) presenceState {
	t.Helper()
	s, err := a.tryPut(user, device, body)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tryPut sends one presence update and reports anything but a 200 as an
// error; unlike put it may run on any goroutine.
func (a *presenceAPI) tryPut(user, device, body string) (presenceState, error) {
	status, raw := a.do(http.MethodPut, presencePath(user, device), body)
	if status != http.StatusOK {
		return presenceState{}, fmt.Errorf("PUT presence of %s/%s %s: status %d, body %s", user, device, body, status, raw)
	}
	var s presenceState
	if err := json.Unmarshal(raw, &s); err != nil {
		return presenceState{}, fmt.Errorf("decode %s: %w", raw, err)
	}
	return s, nil
}

// leases reads a user's leases straight from the table.
func (a *presenceAPI) leases(t testing.TB, user string) []push.Lease {
	t.Helper()
	l, err := a.store.Leases(context.Background(), presenceApp, user)
	if err != nil {
		t.Fatalf("Leases of %s: %v", user, err)
	}
	return l
}

func TestPresenceAPI(t *testing.T) {
	a := newPresenceAPI(t)
	t.Run("InvalidFields", a.testInvalidFields)
	t.Run("InvalidBatch", a.testInvalidBatch)
	t.Run("Epochs", a.testEpochs)
	t.Run("ConcurrentEpochs", a.testConcurrentEpochs)
	t.Run("Batch", a.testBatch)
	t.Run("Badge", a.testBadge)
	t.Run("LeaseExpiry", a.testLeaseExpiry)
	t.Run("Throttled", a.testThrottled)
	t.Run("SampleEvents", a.testSampleEvents)
	t.Run("ThroughDevices", a.testThroughDevices)
}

// testThroughDevices checks the presence routes as the devices function
// serves them (Devices, as Lambda builds it) and that the device listing
// reads the leases this package writes.
func (a *presenceAPI) testThroughDevices(t *testing.T) {
	ctx := context.Background()
	h, err := Devices(ctx, a.getenv, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	send := func(method, path, body string) (int, string) {
		t.Helper()
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		nonce := fmt.Sprintf("n%s-%08d", a.prefix, a.nonce.Add(1))
		resp, err := h(ctx, events.APIGatewayV2HTTPRequest{
			RawPath: path,
			Body:    body,
			Headers: map[string]string{
				"x-push-timestamp": ts,
				"x-push-nonce":     nonce,
				"x-push-signature": httpapi.Sign(a.secret, method, path, "", ts, nonce, []byte(body)),
			},
			RequestContext: events.APIGatewayV2HTTPRequestContext{
				HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path},
			},
		})
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		return resp.StatusCode, resp.Body
	}
	steps := []struct {
		method, path, body string
		wantStatus         int
	}{
		{"PUT", presencePath("td", "pc-1"), `{"state": "online", "platform": "pc", "leaseSeconds": 600, "epoch": 1}`, 200},
		{"PUT", presencePath("td", "web-1"), `{"state": "offline", "platform": "web", "epoch": 1}`, 200},
		{"POST", "/v1/apps/" + presenceApp + "/presence/batch", `{"updates": [{"userId": "td", "deviceId": "mac-1", "state": "online", "platform": "mac"}]}`, 200},
		{"PUT", "/v1/apps/" + presenceApp + "/users/td/badge", `{"count": 2}`, 200},
	}
	for _, s := range steps {
		if status, body := send(s.method, s.path, s.body); status != s.wantStatus {
			t.Fatalf("%s %s: status %d, want %d (body %s)", s.method, s.path, status, s.wantStatus, body)
		}
	}
	status, body := send("GET", "/v1/apps/"+presenceApp+"/users/td/devices", "")
	if status != 200 {
		t.Fatalf("list devices: status %d, body %s", status, body)
	}
	var list struct {
		Devices []struct {
			DeviceID   string  `json:"deviceId"`
			Vendor     *string `json:"vendor"`
			Platform   *string `json:"platform"`
			Online     bool    `json:"online"`
			LeaseUntil *string `json:"leaseUntil"`
		} `json:"devices"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	type row struct {
		Device, Platform     string
		Vendor, Online, Ends bool
	}
	var got []row
	for _, d := range list.Devices {
		platform := "<null>"
		if d.Platform != nil {
			platform = *d.Platform
		}
		got = append(got, row{d.DeviceID, platform, d.Vendor != nil, d.Online, d.LeaseUntil != nil})
	}
	want := []row{
		{Device: "mac-1", Platform: "mac", Online: true, Ends: true},
		{Device: "pc-1", Platform: "pc", Online: true, Ends: true},
		{Device: "web-1", Platform: "web"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("listed devices (-want +got):\n%s\nbody %s", diff, body)
	}
}

func (a *presenceAPI) testInvalidFields(t *testing.T) {
	long := strings.Repeat("x", 129)
	cases := []struct {
		name      string
		method    string
		path      string
		body      string
		wantField string
	}{
		{"no state", "PUT", presencePath("inv", "d"), `{"platform": "pc"}`, "state"},
		{"unknown state", "PUT", presencePath("inv", "d"), `{"state": "away", "platform": "pc"}`, "state"},
		{"state not a string", "PUT", presencePath("inv", "d"), `{"state": 1, "platform": "pc"}`, "state"},
		{"online without platform", "PUT", presencePath("inv", "d"), `{"state": "online"}`, "platform"},
		{"unknown platform", "PUT", presencePath("inv", "d"), `{"state": "online", "platform": "tv"}`, "platform"},
		{"unknown platform with offline", "PUT", presencePath("inv", "d"), `{"state": "offline", "platform": "IOS"}`, "platform"},
		{"lease too short", "PUT", presencePath("inv", "d"), `{"state": "online", "platform": "pc", "leaseSeconds": 29}`, "leaseSeconds"},
		{"lease too long", "PUT", presencePath("inv", "d"), `{"state": "online", "platform": "pc", "leaseSeconds": 86401}`, "leaseSeconds"},
		{"lease not an integer", "PUT", presencePath("inv", "d"), `{"state": "online", "platform": "pc", "leaseSeconds": 300.5}`, "leaseSeconds"},
		{"lease as a string", "PUT", presencePath("inv", "d"), `{"state": "online", "platform": "pc", "leaseSeconds": "300"}`, "leaseSeconds"},
		{"negative epoch", "PUT", presencePath("inv", "d"), `{"state": "online", "platform": "pc", "epoch": -1}`, "epoch"},
		{"epoch out of range", "PUT", presencePath("inv", "d"), `{"state": "online", "platform": "pc", "epoch": 9223372036854775808}`, "epoch"},
		{"negative badge", "PUT", presencePath("inv", "d"), `{"state": "online", "platform": "pc", "badge": -1}`, "badge"},
		{"badge too large", "PUT", presencePath("inv", "d"), `{"state": "online", "platform": "pc", "badge": 2147483648}`, "badge"},
		{"unknown member", "PUT", presencePath("inv", "d"), `{"state": "online", "platform": "pc", "lease": 300}`, "lease"},
		{"malformed JSON", "PUT", presencePath("inv", "d"), `{"state": "online",`, ""},
		{"bad user id", "PUT", presencePath(long, "d"), `{"state": "offline"}`, "user"},
		{"bad device id", "PUT", presencePath("inv", "a%20b"), `{"state": "offline"}`, "device"},
		{"badge without count", "PUT", "/v1/apps/demo/users/inv/badge", `{}`, "count"},
		{"negative badge count", "PUT", "/v1/apps/demo/users/inv/badge", `{"count": -3}`, "count"},
		{"badge count not an integer", "PUT", "/v1/apps/demo/users/inv/badge", `{"count": "3"}`, "count"},
		{"badge unknown member", "PUT", "/v1/apps/demo/users/inv/badge", `{"count": 3, "reset": true}`, "reset"},
	}
	for _, c := range cases {
		status, raw := a.do(c.method, c.path, c.body)
		var e presenceErrorBody
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Errorf("%s: decode %s: %v", c.name, raw, err)
			continue
		}
		if status != http.StatusBadRequest || e.Error.Code != "invalid_argument" || e.Error.Field != c.wantField {
			t.Errorf("%s: got %d %s at %q, want 400 invalid_argument at %q (body %s)",
				c.name, status, e.Error.Code, e.Error.Field, c.wantField, raw)
		}
	}
	if got := a.leases(t, "inv"); len(got) != 0 {
		t.Errorf("leases after invalid requests = %v, want none", got)
	}
	if _, err := a.store.Badge(context.Background(), presenceApp, "inv"); !errors.Is(err, push.ErrNotFound) {
		t.Errorf("badge after invalid requests: err = %v, want push.ErrNotFound", err)
	}
}

func (a *presenceAPI) testInvalidBatch(t *testing.T) {
	valid := func(i int) string {
		return fmt.Sprintf(`{"userId": "ib-%d", "deviceId": "d", "state": "online", "platform": "web"}`, i)
	}
	updates := func(n int, bad map[int]string) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = valid(i)
			if b, ok := bad[i]; ok {
				parts[i] = b
			}
		}
		return `{"updates": [` + strings.Join(parts, ",") + `]}`
	}
	cases := []struct {
		name      string
		body      string
		wantField string
	}{
		{"no updates member", `{}`, "updates"},
		{"updates null", `{"updates": null}`, "updates"},
		{"zero updates", `{"updates": []}`, "updates"},
		{"501 updates", updates(501, nil), "updates"},
		{"updates not an array", `{"updates": {}}`, "updates"},
		{"bad user id among valid ones", updates(5, map[int]string{3: `{"userId": "a b", "deviceId": "d", "state": "offline"}`}), "updates[3]"},
		{"missing device id", updates(5, map[int]string{1: `{"userId": "ib-1", "state": "offline"}`}), "updates[1]"},
		{"bad lease among valid ones", updates(5, map[int]string{4: `{"userId": "ib-4", "deviceId": "d", "state": "online", "platform": "pc", "leaseSeconds": 10}`}), "updates[4].leaseSeconds"},
		{"bad epoch type among valid ones", updates(5, map[int]string{2: `{"userId": "ib-2", "deviceId": "d", "state": "online", "platform": "pc", "epoch": "7"}`}), "updates[2].epoch"},
		{"unknown member in an update", updates(5, map[int]string{0: `{"userId": "ib-0", "deviceId": "d", "state": "offline", "tz": "UTC"}`}), "updates[0].tz"},
		{"update not an object", updates(5, map[int]string{2: `"ib-2"`}), "updates[2]"},
		{"badge on the last update", updates(500, map[int]string{499: `{"userId": "ib-499", "deviceId": "d", "state": "online", "platform": "pc", "badge": -1}`}), "updates[499].badge"},
	}
	for _, c := range cases {
		status, raw := a.do(http.MethodPost, "/v1/apps/"+presenceApp+"/presence/batch", c.body)
		var e presenceErrorBody
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Errorf("%s: decode %s: %v", c.name, raw, err)
			continue
		}
		if status != http.StatusBadRequest || e.Error.Code != "invalid_argument" || e.Error.Field != c.wantField {
			t.Errorf("%s: got %d %s at %q, want 400 invalid_argument at %q (body %.200s)",
				c.name, status, e.Error.Code, e.Error.Field, c.wantField, raw)
		}
	}
	// Nothing of any rejected batch was written.
	for i := range 501 {
		if got := a.leases(t, fmt.Sprintf("ib-%d", i)); len(got) != 0 {
			t.Fatalf("user ib-%d has leases %v after rejected batches, want none", i, got)
		}
	}
}

// testEpochs checks the ordering rules one request at a time.
func (a *presenceAPI) testEpochs(t *testing.T) {
	now := a.clock.Now()
	until := func(d time.Duration) *string { return presenceInstant(now.Add(d)) }
	steps := []struct {
		name   string
		device string
		body   string
		want   presenceState
	}{
		{"first connection online", "pc", `{"state": "online", "platform": "pc", "leaseSeconds": 60, "epoch": 3}`,
			presenceState{Applied: true, Online: true, LeaseUntil: until(time.Minute)}},
		{"lower epoch answers the stored state", "pc", `{"state": "online", "platform": "pc", "leaseSeconds": 600, "epoch": 2}`,
			presenceState{Applied: false, Online: true, LeaseUntil: until(time.Minute)}},
		{"equal epoch applies", "pc", `{"state": "online", "platform": "pc", "leaseSeconds": 120, "epoch": 3}`,
			presenceState{Applied: true, Online: true, LeaseUntil: until(2 * time.Minute)}},
		{"new connection", "pc", `{"state": "online", "platform": "pc", "epoch": 4}`,
			presenceState{Applied: true, Online: true, LeaseUntil: until(5 * time.Minute)}},
		{"late offline of the old connection does not end it", "pc", `{"state": "offline", "epoch": 3}`,
			presenceState{Applied: false, Online: true, LeaseUntil: until(5 * time.Minute)}},
		{"offline of the current connection ends it", "pc", `{"state": "offline", "epoch": 4}`,
			presenceState{Applied: true, Online: false}},
		{"web without epoch", "web", `{"state": "online", "platform": "web"}`,
			presenceState{Applied: true, Online: true, LeaseUntil: until(5 * time.Minute)}},
		{"web again without epoch applies", "web", `{"state": "offline"}`,
			presenceState{Applied: true, Online: false}},
	}
	for _, s := range steps {
		got := a.put(t, "ep", s.device, s.body)
		if diff := cmp.Diff(s.want, got); diff != "" {
			t.Errorf("%s: response (-want +got):\n%s", s.name, diff)
		}
	}
	want := []push.Lease{
		{DeviceID: "pc", Platform: push.PlatformPC, Epoch: 4},
		{DeviceID: "web", Platform: push.PlatformWeb, Epoch: 0},
	}
	if diff := cmp.Diff(want, a.leases(t, "ep")); diff != "" {
		t.Errorf("stored leases (-want +got):\n%s", diff)
	}
}

// presenceUpdateCase is one update of the concurrent epoch test.
type presenceUpdateCase struct {
	epoch    int
	online   bool
	platform push.Platform
	lease    int
	badge    int // -1: none
}

func (u presenceUpdateCase) body() string {
	badge := ""
	if u.badge >= 0 {
		badge = fmt.Sprintf(`, "badge": %d`, u.badge)
	}
	if !u.online {
		return fmt.Sprintf(`{"state": "offline", "platform": %q, "epoch": %d%s}`, u.platform, u.epoch, badge)
	}
	return fmt.Sprintf(`{"state": "online", "platform": %q, "leaseSeconds": %d, "epoch": %d%s}`, u.platform, u.lease, u.epoch, badge)
}

// state is what the device's presence is once u applied, at now.
func (u presenceUpdateCase) state(now time.Time, applied bool) presenceState {
	if !u.online {
		return presenceState{Applied: applied}
	}
	return presenceState{Applied: applied, Online: true, LeaseUntil: presenceInstant(now.Add(time.Duration(u.lease) * time.Second))}
}

// presenceShuffled returns updates with epochs 0..n-1 in an order, states,
// platforms and badges (on about half of them) drawn from seed.
func presenceShuffled(seed uint64, n int) []presenceUpdateCase {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	platforms := []push.Platform{push.PlatformIOS, push.PlatformAndroid, push.PlatformPC, push.PlatformMac, push.PlatformWeb, push.PlatformOther}
	updates := make([]presenceUpdateCase, n)
	for i := range updates {
		updates[i] = presenceUpdateCase{
			epoch:    i,
			online:   r.IntN(2) == 0,
			platform: platforms[r.IntN(len(platforms))],
			lease:    30 + r.IntN(600),
			badge:    -1,
		}
		if r.IntN(2) == 0 {
			updates[i].badge = 100 + i
		}
	}
	r.Shuffle(n, func(i, j int) { updates[i], updates[j] = updates[j], updates[i] })
	return updates
}

// runConcurrentEpochs sends 50 updates of one device with shuffled epochs at
// once and checks that the device ends in the state of the highest epoch,
// that every update that was not applied answered the state of a higher
// epoch, and that the badge base is the one of the highest applied update
// that carried one (applied updates have rising epochs, so it came last).
func (a *presenceAPI) runConcurrentEpochs(t *testing.T, user string, seed uint64) {
	const n = 50
	now := a.clock.Now()
	updates := presenceShuffled(seed, n)
	got := make([]presenceState, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, u := range updates {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = a.tryPut(user, "dev", u.body())
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}

	byEpoch := make([]presenceUpdateCase, n)
	for _, u := range updates {
		byEpoch[u.epoch] = u
	}
	applied := 0
	for _, g := range got {
		if g.Applied {
			applied++
		}
	}
	t.Logf("seed %d: %d of %d updates applied", seed, applied, n)
	for i, u := range updates {
		if got[i].Applied {
			if diff := cmp.Diff(u.state(now, true), got[i]); diff != "" {
				t.Errorf("seed %d: applied epoch %d answered (-want +got):\n%s", seed, u.epoch, diff)
			}
			continue
		}
		match := false
		for _, h := range byEpoch[u.epoch+1:] {
			if cmp.Equal(h.state(now, false), got[i]) {
				match = true
				break
			}
		}
		if !match {
			t.Errorf("seed %d: epoch %d was not applied but answered %+v, the state of no higher epoch", seed, u.epoch, got[i])
		}
	}
	wantBadge := int64(-1)
	for i, u := range updates {
		if got[i].Applied && u.badge >= 0 && int64(u.badge) > wantBadge {
			wantBadge = int64(u.badge)
		}
	}
	gotBadge, err := a.store.Badge(context.Background(), presenceApp, user)
	switch {
	case errors.Is(err, push.ErrNotFound):
		gotBadge = -1
	case err != nil:
		t.Fatalf("seed %d: Badge: %v", seed, err)
	}
	if gotBadge != wantBadge {
		t.Errorf("seed %d: badge = %d, want %d (-1: none)", seed, gotBadge, wantBadge)
	}
	last := byEpoch[n-1]
	want := push.Lease{DeviceID: "dev", Platform: last.platform, Epoch: n - 1}
	if last.online {
		want.Until = now.Add(time.Duration(last.lease) * time.Second)
	}
	if diff := cmp.Diff([]push.Lease{want}, a.leases(t, user)); diff != "" {
		t.Errorf("seed %d: stored lease (-want +got):\n%s", seed, diff)
	}
}

func (a *presenceAPI) testConcurrentEpochs(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		a.runConcurrentEpochs(t, "ce-"+strconv.FormatUint(seed, 10), seed)
	}
}

func (a *presenceAPI) testBatch(t *testing.T) {
	now := a.clock.Now()
	// b-1 takes a lease first, so that the batch's lower epoch for it fails.
	a.put(t, "b-1", "phone", `{"state": "online", "platform": "ios", "leaseSeconds": 30, "epoch": 9}`)
	body := `{"updates": [
		{"userId": "b-0", "deviceId": "pc", "state": "online", "platform": "pc", "leaseSeconds": 60, "epoch": 1},
		{"userId": "b-1", "deviceId": "phone", "state": "offline", "epoch": 8},
		{"userId": "b-0", "deviceId": "web", "state": "online", "platform": "web"},
		{"userId": "b-2", "deviceId": "mac", "state": "online", "platform": "mac", "leaseSeconds": 30, "epoch": 5},
		{"userId": "b-2", "deviceId": "mac", "state": "online", "platform": "mac", "leaseSeconds": 90, "epoch": 5},
		{"userId": "b-0", "deviceId": "pc", "state": "offline", "epoch": 0}
	]}`
	status, raw := a.do(http.MethodPost, "/v1/apps/"+presenceApp+"/presence/batch", body)
	if status != http.StatusOK {
		t.Fatalf("batch: status %d, body %s", status, raw)
	}
	var got struct {
		Results []presenceBatchResult `json:"results"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	at := func(d time.Duration) *string { return presenceInstant(now.Add(d)) }
	want := []presenceBatchResult{
		presenceResult("b-0", "pc", presenceState{Applied: true, Online: true, LeaseUntil: at(time.Minute)}),
		presenceResult("b-1", "phone", presenceState{Applied: false, Online: true, LeaseUntil: at(30 * time.Second)}),
		presenceResult("b-0", "web", presenceState{Applied: true, Online: true, LeaseUntil: at(5 * time.Minute)}),
		presenceResult("b-2", "mac", presenceState{Applied: true, Online: true, LeaseUntil: at(30 * time.Second)}),
		presenceResult("b-2", "mac", presenceState{Applied: true, Online: true, LeaseUntil: at(90 * time.Second)}),
		presenceResult("b-0", "pc", presenceState{Applied: false, Online: true, LeaseUntil: at(time.Minute)}),
	}
	if diff := cmp.Diff(want, got.Results); diff != "" {
		t.Errorf("batch results (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]push.Lease{{DeviceID: "mac", Platform: push.PlatformMac, Epoch: 5, Until: now.Add(90 * time.Second)}}, a.leases(t, "b-2")); diff != "" {
		t.Errorf("b-2 leases (-want +got):\n%s", diff)
	}
}

func (a *presenceAPI) testBadge(t *testing.T) {
	ctx := context.Background()
	badge := func() int64 {
		t.Helper()
		n, err := a.store.Badge(ctx, presenceApp, "bg")
		if err != nil {
			t.Fatalf("Badge: %v", err)
		}
		return n
	}
	status, raw := a.do(http.MethodPut, "/v1/apps/"+presenceApp+"/users/bg/badge", `{"count": 0}`)
	if status != http.StatusOK || string(raw) != `{"count":0}` {
		t.Fatalf("PUT badge: %d %s, want 200 {\"count\":0}", status, raw)
	}
	steps := []struct {
		name      string
		body      string
		applied   bool
		wantBadge int64
	}{
		{"badge with a lease", `{"state": "online", "platform": "ios", "epoch": 2, "badge": 5}`, true, 5},
		{"badge with a lower epoch is not applied", `{"state": "online", "platform": "ios", "epoch": 1, "badge": 9}`, false, 5},
		{"badge with an offline of an old connection is not applied", `{"state": "offline", "epoch": 0, "badge": 0}`, false, 5},
		{"heartbeat without badge keeps it", `{"state": "online", "platform": "ios", "epoch": 2}`, true, 5},
		{"badge with an offline of the current connection", `{"state": "offline", "epoch": 2, "badge": 1}`, true, 1},
	}
	for _, s := range steps {
		got := a.put(t, "bg", "phone", s.body)
		if got.Applied != s.applied {
			t.Errorf("%s: applied = %v, want %v", s.name, got.Applied, s.applied)
		}
		if n := badge(); n != s.wantBadge {
			t.Errorf("%s: badge = %d, want %d", s.name, n, s.wantBadge)
		}
	}
	status, raw = a.do(http.MethodPut, "/v1/apps/"+presenceApp+"/users/bg/badge", `{"count": 42}`)
	if status != http.StatusOK || string(raw) != `{"count":42}` {
		t.Fatalf("PUT badge: %d %s, want 200 {\"count\":42}", status, raw)
	}
	if n := badge(); n != 42 {
		t.Errorf("badge after PUT badge = %d, want 42", n)
	}
}

// testLeaseExpiry steps the router's clock: a lease is online up to the
// millisecond before its end and offline from then on, with no write in
// between.
func (a *presenceAPI) testLeaseExpiry(t *testing.T) {
	start := a.clock.Now()
	defer a.clock.Set(start)
	end := start.Add(30 * time.Second)
	got := a.put(t, "exp", "pc", `{"state": "online", "platform": "pc", "leaseSeconds": 30, "epoch": 5}`)
	if diff := cmp.Diff(presenceState{Applied: true, Online: true, LeaseUntil: presenceInstant(end)}, got); diff != "" {
		t.Fatalf("take lease (-want +got):\n%s", diff)
	}
	steps := []struct {
		name string
		at   time.Time
		want presenceState
	}{
		{"a millisecond before the end", end.Add(-time.Millisecond), presenceState{Online: true, LeaseUntil: presenceInstant(end)}},
		{"at the end", end, presenceState{}},
		{"an hour later", end.Add(time.Hour), presenceState{}},
	}
	for _, s := range steps {
		a.clock.Set(s.at)
		// A lower epoch writes nothing and answers the stored state as seen now.
		got := a.put(t, "exp", "pc", `{"state": "online", "platform": "pc", "epoch": 4}`)
		if diff := cmp.Diff(s.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", s.name, diff)
		}
		leases := a.leases(t, "exp")
		if len(leases) != 1 || leases[0].Online(s.at) != s.want.Online {
			t.Errorf("%s: stored leases %v, want one with online %v", s.name, leases, s.want.Online)
		}
	}
}

// testThrottled repeats the concurrent epoch test and a batch while a fifth
// of all DynamoDB requests are answered with ThrottlingException: the SDK's
// retries must keep presence correct.
func (a *presenceAPI) testThrottled(t *testing.T) {
	a.proxy.SetOptions(testenv.ProxyOptions{Serialize: true, ThrottleRate: 0.2, Seed: 7})
	defer a.proxy.SetOptions(testenv.ProxyOptions{Serialize: true})
	a.proxy.Reset()
	for seed := uint64(11); seed <= 13; seed++ {
		a.runConcurrentEpochs(t, "th-"+strconv.FormatUint(seed, 10), seed)
	}
	now := a.clock.Now()
	var parts []string
	var want []presenceBatchResult
	for i := range 100 {
		parts = append(parts, fmt.Sprintf(`{"userId": "tb-%d", "deviceId": "d", "state": "online", "platform": "android", "epoch": %d, "badge": %d}`, i, i, i))
		want = append(want, presenceResult(fmt.Sprintf("tb-%d", i), "d",
			presenceState{Applied: true, Online: true, LeaseUntil: presenceInstant(now.Add(presence.DefaultLease))}))
	}
	status, raw := a.do(http.MethodPost, "/v1/apps/"+presenceApp+"/presence/batch", `{"updates": [`+strings.Join(parts, ",")+`]}`)
	if status != http.StatusOK {
		t.Fatalf("batch under throttling: status %d, body %s", status, raw)
	}
	var got struct {
		Results []presenceBatchResult `json:"results"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	if diff := cmp.Diff(want, got.Results); diff != "" {
		t.Errorf("batch results under throttling (-want +got):\n%s", diff)
	}
	for i := range 100 {
		n, err := a.store.Badge(context.Background(), presenceApp, fmt.Sprintf("tb-%d", i))
		if err != nil || n != int64(i) {
			t.Errorf("badge of tb-%d = %d, %v; want %d", i, n, err, i)
		}
	}
	throttled := 0
	for _, c := range a.proxy.Counts() {
		throttled += c.Faults
	}
	t.Logf("proxy throttled %d requests", throttled)
	if throttled == 0 {
		t.Errorf("the proxy throttled no request; the retry path went untested")
	}
}

// testSampleEvents runs every sample event of events/presence through the
// router, freshly signed, and checks the status that events/presence/
// expect.json declares for it, so the samples never drift from the code.
func (a *presenceAPI) testSampleEvents(t *testing.T) {
	dir := filepath.Join("..", "..", "events", "presence")
	raw, err := os.ReadFile(filepath.Join(dir, "expect.json"))
	if err != nil {
		t.Fatal(err)
	}
	var expect map[string]int
	if err := json.Unmarshal(raw, &expect); err != nil {
		t.Fatalf("expect.json: %v", err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(expect)+1 {
		t.Errorf("events/presence holds %d events, expect.json declares %d", len(files)-1, len(expect))
	}
	names := make([]string, 0, len(expect))
	for name := range expect {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		var ev events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if _, signed := ev.Headers["x-push-signature"]; signed {
			ts := strconv.FormatInt(a.clock.Now().Unix(), 10)
			nonce := fmt.Sprintf("n%s-%08d", a.prefix, a.nonce.Add(1))
			ev.Headers["x-push-timestamp"] = ts
			ev.Headers["x-push-nonce"] = nonce
			ev.Headers["x-push-signature"] = httpapi.Sign(a.secret, ev.RequestContext.HTTP.Method, ev.RawPath, ev.RawQueryString, ts, nonce, []byte(ev.Body))
		}
		resp, _ := a.router.Lambda(context.Background(), ev)
		if resp.StatusCode != expect[name] {
			t.Errorf("%s: status %d, want %d (body %s)", name, resp.StatusCode, expect[name], resp.Body)
		}
	}
}

// FuzzPresenceBodies feeds arbitrary bodies to the presence parsers: each
// must answer an update or an invalid-argument error, never panic.
func FuzzPresenceBodies(f *testing.F) {
	for _, s := range []string{
		`{"state": "online", "platform": "pc", "leaseSeconds": 300, "epoch": 17, "badge": 3}`,
		`{"state": "offline"}`,
		`{"updates": [{"userId": "u", "deviceId": "d", "state": "online", "platform": "web"}]}`,
		`{"updates": [null, 1, "x", {"userId": null}]}`,
		`{"count": 0}`,
		`{"epoch": 1e400}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		check := func(what string, err error) {
			if err != nil && !push.IsInvalid(err) {
				t.Errorf("%s: error %v is not an invalid argument", what, err)
			}
		}
		if in, err := httpapi.Decode[presence.PutInput](body); err != nil {
			check("decode put", err)
		} else {
			u, err := in.Update("u", "d")
			check("put", err)
			if err == nil && (u.Epoch < 0 || u.Lease < presence.MinLease || u.Lease > presence.MaxLease) {
				t.Errorf("accepted an out-of-range update %+v", u)
			}
		}
		if in, err := httpapi.Decode[presence.BatchInput](body); err != nil {
			check("decode batch", err)
		} else {
			_, err := in.Validate()
			check("batch", err)
		}
		if in, err := httpapi.Decode[presence.BadgeInput](body); err != nil {
			check("decode badge", err)
		} else {
			_, err := in.Validate()
			check("badge", err)
		}
	})
}
