package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/offline-push/offline-push/shared/httpapi"
)

// apiGatewayTime is the layout of requestContext.time in API Gateway v2
// events.
const apiGatewayTime = "02/Jan/2006:15:04:05 -0700"

// cmdSignEvent prints an API Gateway v2 (HTTP API, payload 2.0) event with
// fresh X-Push-* headers, so that "sam local invoke -e" passes the signature
// check. Method, path, query and body are taken from the event itself; the
// request time in requestContext is moved to now as well, because the
// service compares the signature's timestamp with it.
func cmdSignEvent(c *cli, ctx context.Context, args []string) error {
	fs := c.flagSet("sign-event")
	var write bool
	fs.BoolVar(&write, "write", false, "also rewrite FILE in place")
	pos, err := parseArgs(fs, args, false)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("sign-event takes one event file (- for standard input)")
	}
	file := pos[0]
	if write && file == "-" {
		return usagef("--write needs a file, not standard input")
	}
	var raw []byte
	if file == "-" {
		raw, err = io.ReadAll(c.stdin)
	} else {
		raw, err = os.ReadFile(file)
	}
	if err != nil {
		return fmt.Errorf("read the event: %w", err)
	}
	out, err := c.signEvent(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if write {
		if err := os.WriteFile(file, out, 0o644); err != nil {
			return fmt.Errorf("rewrite the event: %w", err)
		}
	}
	if _, err := c.stdout.Write(out); err != nil {
		return fmt.Errorf("write the event: %w", err)
	}
	return nil
}

// signEvent returns the event raw with its X-Push-* headers (any spelling)
// replaced by fresh ones, indented, ending in a newline. Members keep their
// order and every value not rewritten keeps its bytes, so rewriting a
// committed sample with --write changes only the lines that must change.
func (c *cli) signEvent(raw []byte) ([]byte, error) {
	ev, err := parseObject(raw)
	if err != nil {
		return nil, fmt.Errorf("parse the event: %w", err)
	}
	path, _ := ev.str("rawPath")
	if path == "" {
		return nil, fmt.Errorf("no rawPath: is this an API Gateway v2 (HTTP API) event?")
	}
	query, _ := ev.str("rawQueryString")
	rc, _ := ev.object("requestContext")
	var method string
	if rc != nil {
		if h, _ := rc.object("http"); h != nil {
			method, _ = h.str("method")
		}
	}
	if method == "" {
		return nil, fmt.Errorf("no requestContext.http.method")
	}
	var body []byte
	if s, ok := ev.str("body"); ok {
		body = []byte(s)
		var b64 bool
		if v, ok := ev.vals["isBase64Encoded"]; ok && json.Unmarshal(v, &b64) == nil && b64 {
			if body, err = base64.StdEncoding.DecodeString(s); err != nil {
				return nil, fmt.Errorf("isBase64Encoded but the body is not base64: %w", err)
			}
		}
	}

	_, secret, err := c.credentials(appFromPath(path))
	if err != nil {
		return nil, err
	}
	signed, err := c.signedHeaders(secret, strings.ToUpper(method), path, query, body)
	if err != nil {
		return nil, err
	}
	headers, err := ev.object("headers")
	if err != nil {
		return nil, err
	}
	if headers == nil {
		headers = &object{vals: map[string]json.RawMessage{}}
	}
	// API Gateway v2 hands headers to the function with lower-case names;
	// a header already there keeps its place.
	for _, name := range []string{httpapi.HeaderTimestamp, httpapi.HeaderNonce, httpapi.HeaderSignature} {
		lower := strings.ToLower(name)
		for _, k := range slices.Clone(headers.keys) {
			if k != lower && strings.EqualFold(k, name) {
				headers.remove(k)
			}
		}
		if err := headers.set(lower, signed[name]); err != nil {
			return nil, err
		}
	}
	if err := ev.set("headers", headers); err != nil {
		return nil, err
	}

	if rc != nil {
		now := c.now()
		if _, ok := rc.vals["timeEpoch"]; ok {
			if err := rc.set("timeEpoch", now.UnixMilli()); err != nil {
				return nil, err
			}
		}
		if _, ok := rc.vals["time"]; ok {
			if err := rc.set("time", now.UTC().Format(apiGatewayTime)); err != nil {
				return nil, err
			}
		}
		if err := ev.set("requestContext", rc); err != nil {
			return nil, err
		}
	}
	compact, err := ev.MarshalJSON()
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, compact, "", "  "); err != nil {
		return nil, fmt.Errorf("indent the event: %w", err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// object is a JSON object that remembers the order of its members and the
// exact bytes of their values.
type object struct {
	keys []string
	vals map[string]json.RawMessage
}

// parseObject reads one JSON object and nothing after it.
func parseObject(raw []byte) (*object, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("not a JSON object")
	}
	o := &object{vals: map[string]json.RawMessage{}}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		if err := o.set(k, v); err != nil {
			return nil, err
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("data after the object")
	}
	return o, nil
}

// set replaces or appends member k; v is encoded unless it is already raw
// JSON.
func (o *object) set(k string, v any) error {
	raw, ok := v.(json.RawMessage)
	if !ok {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode %s: %w", k, err)
		}
		raw = b
	}
	if _, exists := o.vals[k]; !exists {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = raw
	return nil
}

func (o *object) remove(k string) {
	delete(o.vals, k)
	o.keys = slices.DeleteFunc(o.keys, func(s string) bool { return s == k })
}

// str returns member k when it is a string.
func (o *object) str(k string) (string, bool) {
	var s string
	v, ok := o.vals[k]
	if !ok || json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

// object returns member k when it is an object, nil when it is absent or
// null, and an error when it is something else.
func (o *object) object(k string) (*object, error) {
	v, ok := o.vals[k]
	if !ok || string(bytes.TrimSpace(v)) == "null" {
		return nil, nil
	}
	sub, err := parseObject(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", k, err)
	}
	return sub, nil
}

// MarshalJSON writes the members in their order, values byte for byte.
func (o *object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		key, err := json.Marshal(k)
		if err != nil {
			return nil, fmt.Errorf("encode key %q: %w", k, err)
		}
		b.Write(key)
		b.WriteByte(':')
		b.Write(o.vals[k])
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
