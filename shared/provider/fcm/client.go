package fcm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	firebase "firebase.google.com/go/v4"
	"firebase.google.com/go/v4/messaging"
	"golang.org/x/oauth2"
	"google.golang.org/api/option"
	"google.golang.org/api/transport"
)

// messagingScope is the one OAuth scope a send needs; asking for no more
// than that keeps a leaked access token from reaching other Google APIs.
const messagingScope = "https://www.googleapis.com/auth/firebase.messaging"

// tokenFetchTimeout bounds one access-token exchange. The auth library
// keeps the client it is built with for every later refresh, so the bound
// must live in that client rather than in a caller's context.
const tokenFetchTimeout = 10 * time.Second

// maxClients bounds the clients kept across warm invocations. A container
// serves a handful of credentials; a rotated secret gets a new
// CredentialsKey and its old client is dropped once the bound is reached.
const maxClients = 32

// client is one FCM app's SDK client and the access-token source behind it.
type client struct {
	key    string
	creds  *credentials
	msg    *messaging.Client
	tokens oauth2.TokenSource
}

// clients holds a client per SendJob.CredentialsKey for the life of the
// container, so that warm invocations reuse the access token and the HTTP
// connections.
var clients = struct {
	sync.Mutex
	m map[string]*client
}{m: make(map[string]*client)}

// clientFor returns the cached client for key, building it from data on
// first use. Building does no I/O: the token is fetched by token().
func clientFor(key string, data []byte) (*client, bool, error) {
	clients.Lock()
	defer clients.Unlock()
	if c, ok := clients.m[key]; ok {
		return c, false, nil
	}
	c, err := newClient(key, data)
	if err != nil {
		return nil, false, err
	}
	if len(clients.m) >= maxClients {
		for k := range clients.m {
			delete(clients.m, k)
			break
		}
	}
	clients.m[key] = c
	return c, true, nil
}

// dropClient forgets c, if it is still the client cached for its key, so
// that the next send builds a new one with a fresh access token.
func dropClient(c *client) {
	clients.Lock()
	defer clients.Unlock()
	if clients.m[c.key] == c {
		delete(clients.m, c.key)
	}
}

// newClient builds the SDK client of one credential.
//
// The token source comes from the service account's own key file, so the
// JWT-bearer exchange goes to its token_uri (Google's, or the emulator's in
// tests and the local stack); the SDK is handed that source with
// option.WithTokenSource rather than the key file, which lets token() fetch
// the token first and tell a refused credential from a failed send.
// firebase-admin-go v4.18.0 with google.golang.org/api v0.231.0 builds its
// HTTP client through golang.org/x/oauth2/google unless
// GOOGLE_API_GO_EXPERIMENTAL_ENABLE_NEW_AUTH_LIB is set, and makes no other
// call to Google (see the no-network test).
func newClient(key string, data []byte) (*client, error) {
	creds, err := parseCredentials(data)
	if err != nil {
		return nil, err
	}
	// The client outlives the invocation that builds it, so it gets a
	// context that is never cancelled, carrying the HTTP client the auth
	// library uses for every token exchange.
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Timeout: tokenFetchTimeout})
	gc, err := transport.Creds(ctx, option.WithCredentialsJSON(creds.ServiceAccount), option.WithScopes(messagingScope))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errCredentials, err)
	}
	opts := []option.ClientOption{option.WithTokenSource(gc.TokenSource)}
	if creds.Endpoint != "" {
		opts = append(opts, option.WithEndpoint(creds.Endpoint))
	}
	app, err := firebase.NewApp(ctx, &firebase.Config{ProjectID: creds.project}, opts...)
	if err != nil {
		return nil, fmt.Errorf("firebase app: %w", err)
	}
	msg, err := app.Messaging(ctx)
	if err != nil {
		return nil, fmt.Errorf("firebase messaging client: %w", err)
	}
	return &client{key: key, creds: creds, msg: msg, tokens: gc.TokenSource}, nil
}

// token makes sure the client holds a valid access token, fetching one at
// the token URI when the cached one is missing or about to expire. The
// source is oauth2's reusing source, so this costs nothing while the token
// is fresh, and concurrent sends share one exchange.
func (c *client) token(ctx context.Context) error {
	done := make(chan error, 1)
	go func() {
		_, err := c.tokens.Token()
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// tokenRefused reports whether err is the token endpoint refusing our
// credential (a 4xx other than 429), as opposed to the endpoint failing or
// being unreachable, and returns the OAuth error code.
func tokenRefused(err error) (string, bool) {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response == nil {
		return "", false
	}
	s := re.Response.StatusCode
	if s < 400 || s >= 500 || s == http.StatusTooManyRequests {
		return "", false
	}
	// The JWT flow leaves RetrieveError.ErrorCode empty; the RFC 6749 code
	// is in the body.
	var body struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(re.Body, &body) == nil && body.Error != "" {
		return body.Error, true
	}
	return strconv.Itoa(s), true
}
