package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
)

// errHelp ends a command after its flags' help was printed on request.
var errHelp = errors.New("help requested")

// flagSet returns a flag set that already knows the global flags, so they
// may follow the subcommand as well as precede it. Their current values are
// the defaults, which keeps what the environment or an earlier flag set.
func (c *cli) flagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.g.url, "url", c.g.url, "base URL of the service (env PUSH_URL)")
	fs.StringVar(&c.g.app, "app", c.g.app, "app id (env PUSH_APP; else from the local config)")
	fs.StringVar(&c.g.secret, "secret", c.g.secret, "API secret (env PUSH_SECRET; else from the local config)")
	fs.Usage = func() {
		fs.SetOutput(c.stderr)
		fmt.Fprintf(c.stderr, "Flags of %s:\n", name)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// parseArgs parses flags and returns the positional arguments. The standard
// flag package stops at the first positional argument; subcommands call this
// with stopAtFirst false, so that flags may follow positional arguments
// ("request PUT /path --data {}"). The top level passes true: parsing stops
// at the subcommand's name and leaves the rest to the subcommand. A "--"
// ends the flags: everything after it is positional.
func parseArgs(fs *flag.FlagSet, args []string, stopAtFirst bool) ([]string, error) {
	var pos []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			return nil, errHelp // the flag package has printed the help
		}
		if err != nil {
			return nil, &usageError{msg: err.Error()}
		}
		rest := fs.Args()
		consumed := len(args) - len(rest)
		if stopAtFirst || len(rest) == 0 || (consumed > 0 && args[consumed-1] == "--") {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// optInt is an integer flag that remembers whether it was given, so that a
// body member is sent only when the caller asked for it.
type optInt struct {
	v   int64
	set bool
}

func (o *optInt) String() string {
	if o == nil || !o.set {
		return ""
	}
	return strconv.FormatInt(o.v, 10)
}

func (o *optInt) Set(s string) error {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("not an integer: %q", s)
	}
	o.v, o.set = v, true
	return nil
}

// isSet reports whether the flag name was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			found = true
		}
	})
	return found
}

// requireFlags returns a usage error naming the first empty required flag.
func requireFlags(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			return usagef("--%s is required", pairs[i])
		}
	}
	return nil
}
