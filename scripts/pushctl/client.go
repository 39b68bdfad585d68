package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/offline-push/offline-push/shared/httpapi"
)

// defaultLocalConfig is where the local stack keeps its apps and secrets.
const defaultLocalConfig = "config/local.json"

// maxResponse bounds how much of an answer pushctl reads; the largest answer
// of the service (an explained ingest of 1000 recipients) stays far below.
const maxResponse = 64 << 20

// localConfig is the part of the local stack's config file that pushctl
// reads: the apps and their API secrets (API.md §8).
type localConfig struct {
	Apps map[string]struct {
		APISecrets []string `json:"apiSecrets"`
	} `json:"apps"`
}

// credentials returns the app and secret to sign with. An explicit --app (or
// PUSH_APP) wins; otherwise pathApp, the app named by the request path; else
// the only app of the local config. A missing secret is the first API secret
// of that app in the local config.
func (c *cli) credentials(pathApp string) (app, secret string, err error) {
	app, secret = c.g.app, c.g.secret
	if app == "" {
		app = pathApp
	}
	if app != "" && secret != "" {
		return app, secret, nil
	}
	path := c.getenv("PUSH_LOCAL_CONFIG")
	if path == "" {
		path = defaultLocalConfig
	}
	cfg, err := readLocalConfig(path)
	if err != nil {
		return "", "", fmt.Errorf("no --app/--secret (or PUSH_APP/PUSH_SECRET) given, and %w", err)
	}
	if app == "" {
		if len(cfg.Apps) != 1 {
			names := make([]string, 0, len(cfg.Apps))
			for name := range cfg.Apps {
				names = append(names, name)
			}
			sort.Strings(names)
			return "", "", usagef("%s holds %d apps (%s); choose one with --app", path, len(names), strings.Join(names, ", "))
		}
		for name := range cfg.Apps {
			app = name
		}
	}
	if secret == "" {
		a, ok := cfg.Apps[app]
		if !ok || len(a.APISecrets) == 0 || a.APISecrets[0] == "" {
			return "", "", fmt.Errorf("%s has no apiSecrets for app %q; pass --secret", path, app)
		}
		secret = a.APISecrets[0]
	}
	return app, secret, nil
}

func readLocalConfig(path string) (localConfig, error) {
	var cfg localConfig
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, fmt.Errorf("the local config %s does not exist (set PUSH_LOCAL_CONFIG or run from the repository root)", path)
	}
	if err != nil {
		return cfg, fmt.Errorf("read the local config: %w", err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return cfg, fmt.Errorf("parse the local config %s: %w", path, err)
	}
	return cfg, nil
}

// appFromPath returns the {app} segment of a path under /v1/apps/, or "".
func appFromPath(path string) string {
	rest, ok := strings.CutPrefix(path, "/v1/apps/")
	if !ok {
		return ""
	}
	app, _, _ := strings.Cut(rest, "/")
	return app
}

// newNonce returns 22 random characters of [A-Za-z0-9_-]: 128 bits, well
// inside the 8 to 64 characters API.md §2 allows.
func newNonce() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random nonce: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// signedHeaders computes the three X-Push-* headers for one request at the
// current time.
func (c *cli) signedHeaders(secret, method, path, rawQuery string, body []byte) (map[string]string, error) {
	nonce, err := c.nonce()
	if err != nil {
		return nil, err
	}
	ts := strconv.FormatInt(c.now().Unix(), 10)
	return map[string]string{
		httpapi.HeaderTimestamp: ts,
		httpapi.HeaderNonce:     nonce,
		// The service's own signing code, so client and server cannot
		// disagree on the canonical string.
		httpapi.HeaderSignature: httpapi.Sign(secret, method, path, rawQuery, ts, nonce, body),
	}, nil
}

// call is one HTTP request to the service.
type call struct {
	method string
	target string // path, optionally with "?query", exactly as signed and sent
	body   []byte
	public bool // send without a signature (GET /v1/health)
}

// do signs and sends r, prints the status line to stderr and the body to
// stdout, and returns errStatus for an answer outside 2xx.
func (c *cli) do(ctx context.Context, r call) error {
	method := strings.ToUpper(r.method)
	path, rawQuery, _ := strings.Cut(r.target, "?")
	if !strings.HasPrefix(path, "/") || strings.HasPrefix(path, "//") {
		return usagef("path %q must start with a single /", path)
	}
	base, err := url.Parse(c.g.url)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return usagef("--url %q is not an http(s) URL", c.g.url)
	}
	// A base URL may carry a stage or mapping prefix; the signature covers
	// the path without it (API.md §2).
	sent := strings.TrimSuffix(base.EscapedPath(), "/") + path

	var body io.Reader
	if len(r.body) > 0 {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, method, base.Scheme+"://"+base.Host+"/", body)
	if err != nil {
		return usagef("bad request: %v", err)
	}
	// Opaque makes the client send the path byte for byte as signed,
	// without re-encoding it.
	req.URL.Opaque = sent
	req.URL.RawQuery = rawQuery
	req.Header.Set("User-Agent", "pushctl")
	if len(r.body) > 0 {
		ct := "application/json"
		if method == http.MethodPatch {
			ct = "application/merge-patch+json"
		}
		req.Header.Set("Content-Type", ct)
	}
	if !r.public {
		_, secret, err := c.credentials(appFromPath(path))
		if err != nil {
			return err
		}
		h, err := c.signedHeaders(secret, method, path, rawQuery, r.body)
		if err != nil {
			return err
		}
		for k, v := range h {
			req.Header.Set(k, v)
		}
	}

	resp, err := c.http.Do(req)
	if err != nil {
		// The client's own message repeats the URL, which it spells oddly
		// for an opaque path; name the request once, as given.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("send %s %s to %s: %w", method, r.target, c.g.url, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("read the answer to %s %s: %w", method, r.target, err)
	}
	fmt.Fprintf(c.stderr, "%s %s\n", resp.Proto, resp.Status)
	if err := writeBody(c.stdout, out); err != nil {
		return err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return errStatus
	}
	return nil
}

// writeBody prints JSON indented and anything else as it came, ending in a
// newline.
func writeBody(w io.Writer, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	var buf bytes.Buffer
	if json.Indent(&buf, b, "", "  ") != nil {
		buf.Reset()
		buf.Write(b)
	}
	if !bytes.HasSuffix(buf.Bytes(), []byte("\n")) {
		buf.WriteByte('\n')
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("write the answer: %w", err)
	}
	return nil
}
