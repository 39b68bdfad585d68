package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
)

// bodyInput is where a request body comes from: --data, --file, or "-" (or
// --file -) for standard input. At most one may be given.
type bodyInput struct {
	data string
	file string
}

func (b *bodyInput) register(fs *flag.FlagSet) {
	fs.StringVar(&b.data, "data", "", "request body as JSON text")
	fs.StringVar(&b.file, "file", "", "read the request body from this file (- for standard input)")
}

// read returns the body and whether one was given. stdinArg reports a "-"
// positional argument.
func (b *bodyInput) read(c *cli, fs *flag.FlagSet, stdinArg bool) ([]byte, bool, error) {
	n := 0
	for _, given := range []bool{isSet(fs, "data"), isSet(fs, "file"), stdinArg} {
		if given {
			n++
		}
	}
	switch {
	case n > 1:
		return nil, false, usagef("give the body once: --data, --file or -")
	case isSet(fs, "data"):
		return []byte(b.data), true, nil
	case stdinArg || b.file == "-":
		body, err := io.ReadAll(c.stdin)
		if err != nil {
			return nil, false, fmt.Errorf("read the body from standard input: %w", err)
		}
		return body, true, nil
	case isSet(fs, "file"):
		body, err := os.ReadFile(b.file)
		if err != nil {
			return nil, false, fmt.Errorf("read the body: %w", err)
		}
		return body, true, nil
	}
	return nil, false, nil
}

// appName returns the app that commands building their own path act for.
func (c *cli) appName() (string, error) {
	app, _, err := c.credentials("")
	return app, err
}

// userPath returns /v1/apps/{app}/users/{user} followed by the escaped
// segments.
func userPath(app, user string, segments ...string) string {
	p := "/v1/apps/" + url.PathEscape(app) + "/users/" + url.PathEscape(user)
	for _, s := range segments {
		p += "/" + url.PathEscape(s)
	}
	return p
}

// noArgs returns a usage error when a command that takes only flags got
// positional arguments (usually a mistyped flag).
func noArgs(cmd string, pos []string) error {
	if len(pos) > 0 {
		return usagef("%s: unexpected argument %q", cmd, pos[0])
	}
	return nil
}

func cmdRequest(c *cli, ctx context.Context, args []string) error {
	fs := c.flagSet("request")
	var in bodyInput
	in.register(fs)
	pos, err := parseArgs(fs, args, false)
	if err != nil {
		return err
	}
	stdinArg := len(pos) == 3 && pos[2] == "-"
	if len(pos) != 2 && !stdinArg {
		return usagef("request takes METHOD PATH [--data JSON | --file F | -]")
	}
	body, _, err := in.read(c, fs, stdinArg)
	if err != nil {
		return err
	}
	return c.do(ctx, call{method: pos[0], target: pos[1], body: body})
}

// subcommand splits "device put ..." into "put" and its arguments.
func subcommand(cmd string, args []string, names ...string) (string, []string, error) {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return "", nil, usagef("%s needs one of: %s", cmd, strings.Join(names, ", "))
	}
	for _, n := range names {
		if args[0] == n {
			return n, args[1:], nil
		}
	}
	return "", nil, usagef("%s: unknown subcommand %q (want one of: %s)", cmd, args[0], strings.Join(names, ", "))
}

// deviceBody is the PUT devices body (API.md §3); empty members are left out
// so the service applies its defaults.
type deviceBody struct {
	Vendor      string `json:"vendor,omitempty"`
	Token       string `json:"token,omitempty"`
	CertName    string `json:"certName,omitempty"`
	Platform    string `json:"platform,omitempty"`
	Environment string `json:"environment,omitempty"`
	VoIPToken   string `json:"voipToken,omitempty"`
	Locale      string `json:"locale,omitempty"`
	AppVersion  string `json:"appVersion,omitempty"`
}

func cmdDevice(c *cli, ctx context.Context, args []string) error {
	sub, args, err := subcommand("device", args, "put", "delete", "list")
	if err != nil {
		return err
	}
	fs := c.flagSet("device " + sub)
	var user, device, reason string
	var b deviceBody
	fs.StringVar(&user, "user", "", "user id (required)")
	if sub != "list" {
		fs.StringVar(&device, "device", "", "device id (required)")
	}
	switch sub {
	case "put":
		fs.StringVar(&b.Vendor, "vendor", "", "apns, fcm, huawei, honor, xiaomi, oppo, vivo or meizu")
		fs.StringVar(&b.Token, "token", "", "the device's push token")
		fs.StringVar(&b.CertName, "cert", "", "certName: the credentials of that vendor, e.g. ios-prod")
		fs.StringVar(&b.Platform, "platform", "", "ios or android (default from the vendor)")
		fs.StringVar(&b.Environment, "environment", "", "production or sandbox (apns only)")
		fs.StringVar(&b.VoIPToken, "voip-token", "", "PushKit token (apns only)")
		fs.StringVar(&b.Locale, "locale", "", "BCP 47 language tag")
		fs.StringVar(&b.AppVersion, "app-version", "", "app version")
	case "delete":
		fs.StringVar(&reason, "reason", "", "logout, kicked or unregistered")
	}
	pos, err := parseArgs(fs, args, false)
	if err != nil {
		return err
	}
	if err := noArgs("device "+sub, pos); err != nil {
		return err
	}
	if err := requireFlags("user", user); err != nil {
		return err
	}
	if sub != "list" {
		if err := requireFlags("device", device); err != nil {
			return err
		}
	}
	app, err := c.appName()
	if err != nil {
		return err
	}
	switch sub {
	case "put":
		body, err := json.Marshal(b)
		if err != nil {
			return fmt.Errorf("encode the device: %w", err)
		}
		return c.do(ctx, call{method: "PUT", target: userPath(app, user, "devices", device), body: body})
	case "delete":
		target := userPath(app, user, "devices", device)
		if isSet(fs, "reason") {
			target += "?" + url.Values{"reason": {reason}}.Encode()
		}
		return c.do(ctx, call{method: "DELETE", target: target})
	default:
		return c.do(ctx, call{method: "GET", target: userPath(app, user, "devices")})
	}
}

// presenceBody is the PUT presence body (API.md §4); members not given on
// the command line are left out.
type presenceBody struct {
	State        string `json:"state,omitempty"`
	Platform     string `json:"platform,omitempty"`
	LeaseSeconds *int64 `json:"leaseSeconds,omitempty"`
	Epoch        *int64 `json:"epoch,omitempty"`
	Badge        *int64 `json:"badge,omitempty"`
}

func optional(o optInt) *int64 {
	if !o.set {
		return nil
	}
	return &o.v
}

func cmdPresence(c *cli, ctx context.Context, args []string) error {
	fs := c.flagSet("presence")
	var user, device string
	var b presenceBody
	var lease, epoch, badge optInt
	fs.StringVar(&user, "user", "", "user id (required)")
	fs.StringVar(&device, "device", "", "device id (required)")
	fs.StringVar(&b.State, "state", "", "online or offline (required)")
	fs.StringVar(&b.Platform, "platform", "", "ios, android, pc, mac, web or other (required with online)")
	fs.Var(&lease, "lease", "lease in seconds, 30 to 86400 (service default 300)")
	fs.Var(&epoch, "epoch", "connection sequence number, >= 0")
	fs.Var(&badge, "badge", "unread count the client shows now, >= 0")
	pos, err := parseArgs(fs, args, false)
	if err != nil {
		return err
	}
	if err := noArgs("presence", pos); err != nil {
		return err
	}
	if err := requireFlags("user", user, "device", device, "state", b.State); err != nil {
		return err
	}
	b.LeaseSeconds, b.Epoch, b.Badge = optional(lease), optional(epoch), optional(badge)
	app, err := c.appName()
	if err != nil {
		return err
	}
	body, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("encode the presence: %w", err)
	}
	return c.do(ctx, call{method: "PUT", target: userPath(app, user, "devices", device, "presence"), body: body})
}

func cmdBadge(c *cli, ctx context.Context, args []string) error {
	fs := c.flagSet("badge")
	var user string
	var count optInt
	fs.StringVar(&user, "user", "", "user id (required)")
	fs.Var(&count, "count", "the badge base, >= 0 (required)")
	pos, err := parseArgs(fs, args, false)
	if err != nil {
		return err
	}
	if err := noArgs("badge", pos); err != nil {
		return err
	}
	if err := requireFlags("user", user); err != nil {
		return err
	}
	if !count.set {
		return usagef("--count is required")
	}
	app, err := c.appName()
	if err != nil {
		return err
	}
	body, err := json.Marshal(map[string]int64{"count": count.v})
	if err != nil {
		return fmt.Errorf("encode the badge: %w", err)
	}
	return c.do(ctx, call{method: "PUT", target: userPath(app, user, "badge"), body: body})
}

func cmdSettings(c *cli, ctx context.Context, args []string) error {
	sub, args, err := subcommand("settings", args, "get", "patch")
	if err != nil {
		return err
	}
	fs := c.flagSet("settings " + sub)
	var user string
	var in bodyInput
	fs.StringVar(&user, "user", "", "user id (required)")
	if sub == "patch" {
		in.register(fs)
	}
	pos, err := parseArgs(fs, args, false)
	if err != nil {
		return err
	}
	stdinArg := sub == "patch" && len(pos) == 1 && pos[0] == "-"
	if !stdinArg {
		if err := noArgs("settings "+sub, pos); err != nil {
			return err
		}
	}
	if err := requireFlags("user", user); err != nil {
		return err
	}
	var body []byte
	if sub == "patch" {
		var given bool
		if body, given, err = in.read(c, fs, stdinArg); err != nil {
			return err
		}
		if !given {
			return usagef("settings patch needs a JSON merge patch: --data, --file or -")
		}
	}
	app, err := c.appName()
	if err != nil {
		return err
	}
	method := "GET"
	if sub == "patch" {
		method = "PATCH"
	}
	return c.do(ctx, call{method: method, target: userPath(app, user, "settings"), body: body})
}

func cmdConv(c *cli, ctx context.Context, args []string) error {
	sub, args, err := subcommand("conv", args, "get", "patch", "delete")
	if err != nil {
		return err
	}
	fs := c.flagSet("conv " + sub)
	var user, typ, id string
	var in bodyInput
	fs.StringVar(&user, "user", "", "user id (required)")
	fs.StringVar(&typ, "type", "", "peer, group or chatroom (required)")
	fs.StringVar(&id, "id", "", "conversation id (required)")
	if sub == "patch" {
		in.register(fs)
	}
	pos, err := parseArgs(fs, args, false)
	if err != nil {
		return err
	}
	stdinArg := sub == "patch" && len(pos) == 1 && pos[0] == "-"
	if !stdinArg {
		if err := noArgs("conv "+sub, pos); err != nil {
			return err
		}
	}
	if err := requireFlags("user", user, "type", typ, "id", id); err != nil {
		return err
	}
	var body []byte
	if sub == "patch" {
		var given bool
		if body, given, err = in.read(c, fs, stdinArg); err != nil {
			return err
		}
		if !given {
			return usagef("conv patch needs a JSON merge patch: --data, --file or -")
		}
	}
	app, err := c.appName()
	if err != nil {
		return err
	}
	method := map[string]string{"get": "GET", "patch": "PATCH", "delete": "DELETE"}[sub]
	return c.do(ctx, call{method: method, target: userPath(app, user, "conversations", typ, id, "settings"), body: body})
}

func cmdSend(c *cli, ctx context.Context, args []string) error {
	fs := c.flagSet("send")
	var in bodyInput
	var dryRun, explain bool
	var evaluateAt string
	in.register(fs)
	fs.BoolVar(&dryRun, "dry-run", false, "evaluate only: enqueue and write nothing (sets dryRun)")
	fs.BoolVar(&explain, "explain", false, "answer with per-device decisions (sets explain)")
	fs.StringVar(&evaluateAt, "evaluate-at", "", "RFC 3339 instant to evaluate at; needs --dry-run (sets evaluateAt)")
	pos, err := parseArgs(fs, args, false)
	if err != nil {
		return err
	}
	stdinArg := len(pos) == 1 && pos[0] == "-"
	if !stdinArg {
		if err := noArgs("send", pos); err != nil {
			return err
		}
	}
	body, given, err := in.read(c, fs, stdinArg)
	if err != nil {
		return err
	}
	if !given {
		return usagef("send needs the message: --file message.json, --data JSON or -")
	}
	overrides := map[string]any{}
	if isSet(fs, "dry-run") {
		overrides["dryRun"] = dryRun
	}
	if isSet(fs, "explain") {
		overrides["explain"] = explain
	}
	if isSet(fs, "evaluate-at") {
		overrides["evaluateAt"] = evaluateAt
	}
	if len(overrides) > 0 {
		if body, err = setMembers(body, overrides); err != nil {
			return err
		}
	}
	app, err := c.appName()
	if err != nil {
		return err
	}
	return c.do(ctx, call{method: "POST", target: "/v1/apps/" + url.PathEscape(app) + "/messages", body: body})
}

// setMembers sets top-level members of a JSON object and leaves the others
// byte for byte as they were. A body without flags to apply is sent
// untouched, so malformed messages can still be tried against the service.
func setMembers(body []byte, set map[string]any) ([]byte, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return nil, fmt.Errorf("the message must be a JSON object to apply --dry-run, --explain or --evaluate-at: %w", err)
	}
	if obj == nil {
		return nil, fmt.Errorf("the message must be a JSON object to apply --dry-run, --explain or --evaluate-at")
	}
	for k, v := range set {
		raw, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", k, err)
		}
		obj[k] = raw
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encode the message: %w", err)
	}
	return out, nil
}

func cmdHealth(c *cli, ctx context.Context, args []string) error {
	fs := c.flagSet("health")
	pos, err := parseArgs(fs, args, false)
	if err != nil {
		return err
	}
	if err := noArgs("health", pos); err != nil {
		return err
	}
	return c.do(ctx, call{method: "GET", target: "/v1/health", public: true})
}
