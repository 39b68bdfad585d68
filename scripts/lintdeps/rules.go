package main

import (
	"fmt"
	"sort"
	"strings"
)

// graph is the package graph of one module and its dependencies.
type graph struct {
	module string
	pkgs   map[string]listedPackage
	// roots are the module's own packages, sorted.
	roots []string
}

func newGraph(pkgs []listedPackage) *graph {
	g := &graph{pkgs: map[string]listedPackage{}}
	for _, p := range pkgs {
		g.pkgs[p.ImportPath] = p
		if !p.DepOnly && p.Module != nil && g.module == "" {
			g.module = p.Module.Path
		}
	}
	for _, p := range pkgs {
		if !p.DepOnly && g.rel(p.ImportPath) != p.ImportPath {
			g.roots = append(g.roots, p.ImportPath)
		}
	}
	sort.Strings(g.roots)
	return g
}

// rel returns a module package's path relative to the module root
// ("shared/push"); other paths come back unchanged.
func (g *graph) rel(path string) string {
	if g.module != "" && strings.HasPrefix(path, g.module+"/") {
		return strings.TrimPrefix(path, g.module+"/")
	}
	return path
}

func (g *graph) standard(path string) bool { return g.pkgs[path].Standard }

// under reports whether rel is dir or a package below it.
func under(rel, dir string) bool { return rel == dir || strings.HasPrefix(rel, dir+"/") }

// Layers of STYLE.md's package map.
var (
	useCases = []string{"shared/devices", "shared/presence", "shared/settings", "shared/ingest", "shared/dispatch", "shared/cleanup"}
	// adapters that use cases must not reach; provider and emulator hold one
	// package per vendor.
	adapterDirs = []string{"shared/dynamo", "shared/queue", "shared/secrets", "shared/provider", "shared/httpapi", "shared/app", "shared/emulator", "shared/sqsbatch"}
	// sdkPrefixes are AWS's and the vendors' SDKs.
	sdkPrefixes = []string{"github.com/aws/", "github.com/sideshow/apns2", "firebase.google.com/", "google.golang.org/api", "cloud.google.com/"}
	// impure standard packages that policy must not import: it takes time
	// and randomness as inputs and carries reasons instead of log lines.
	impure = []string{"context", "log", "log/slog", "math/rand", "math/rand/v2", "crypto/rand", "os", "os/exec", "net", "net/http"}
)

func inAny(rel string, dirs []string) bool {
	for _, d := range dirs {
		if under(rel, d) {
			return true
		}
	}
	return false
}

func hasAnyPrefix(path string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(path, p) || path == strings.TrimSuffix(p, "/") {
			return true
		}
	}
	return false
}

// adapterGroup names the adapter a package belongs to, so that an adapter's
// own subpackages are not "another adapter": shared/provider/apns/x → shared/provider/apns.
func adapterGroup(rel string) string {
	for _, d := range []string{"shared/provider", "shared/emulator"} {
		if strings.HasPrefix(rel, d+"/") {
			vendor, _, _ := strings.Cut(strings.TrimPrefix(rel, d+"/"), "/")
			return d + "/" + vendor
		}
	}
	for _, d := range []string{"shared/dynamo", "shared/queue", "shared/secrets"} {
		if under(rel, d) {
			return d
		}
	}
	return ""
}

// check applies every rule to every package of the module and returns one
// message per violation, sorted.
func check(g *graph) []string {
	var out []string
	for _, path := range g.roots {
		rel := g.rel(path)
		p := g.pkgs[path]
		switch {
		case rel == "shared/push":
			for _, d := range p.Imports {
				if !g.standard(d) {
					out = append(out, fmt.Sprintf("%s imports %s: push imports only the standard library", rel, g.rel(d)))
				}
			}
		case under(rel, "shared/policy"):
			for _, d := range p.Imports {
				switch {
				case g.standard(d) && contains(impure, d):
					out = append(out, fmt.Sprintf("%s imports %s: policy is pure (no context, clock, randomness, logging or I/O)", rel, d))
				case !g.standard(d) && g.rel(d) != "shared/push":
					out = append(out, fmt.Sprintf("%s imports %s: policy imports only push and the standard library", rel, g.rel(d)))
				}
			}
		case inAny(rel, useCases):
			out = append(out, g.forbidden(path, "use cases never import AWS or vendor SDKs or adapter packages", func(dep string) bool {
				return hasAnyPrefix(dep, sdkPrefixes) || inAny(g.rel(dep), adapterDirs)
			})...)
		case adapterGroup(rel) != "" && !under(rel, "shared/emulator"):
			own := adapterGroup(rel)
			out = append(out, g.forbidden(path, "adapters never import use cases or other adapters", func(dep string) bool {
				d := g.rel(dep)
				other := adapterGroup(d)
				return inAny(d, useCases) || (other != "" && other != own && !under(d, "shared/emulator"))
			})...)
		}
		if under(rel, "shared/emulator") {
			vendor := strings.TrimPrefix(adapterGroup(rel), "shared/emulator/")
			client := "shared/provider/" + vendor
			out = append(out, g.forbidden(path, "an emulator never imports the client it checks", func(dep string) bool {
				return under(g.rel(dep), client)
			})...)
		}
		// shared/e2e wires real stacks for tests; only test files may use it
		// (go list without -test sees no test imports).
		for _, d := range p.Imports {
			if g.rel(d) == "shared/e2e" {
				out = append(out, fmt.Sprintf("%s imports shared/e2e: it is test support, for _test.go files only", rel))
			}
		}
		if strings.HasPrefix(rel, "functions/") {
			// A dispatch main also picks its vendor's provider (and names
			// the vendor with push): wiring the provider inside shared/app
			// would link every vendor SDK into every binary (STYLE.md).
			provider := ""
			if v, ok := strings.CutPrefix(rel, "functions/dispatch-"); ok {
				provider = "shared/provider/" + v
			}
			for _, d := range p.Imports {
				r := g.rel(d)
				allowed := g.standard(d) || r == "shared/app" || strings.HasPrefix(d, "github.com/aws/aws-lambda-go/") ||
					(provider != "" && (r == provider || r == "shared/push"))
				if !allowed {
					out = append(out, fmt.Sprintf("%s imports %s: a function's main imports only shared/app (a dispatch main also its own provider and push), aws-lambda-go and the standard library", rel, r))
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// forbidden walks the imports of root breadth-first and reports each
// forbidden package where the walk first enters it, with the chain that
// leads there; it does not walk through forbidden packages, so one bad
// import gives one line, not one per package behind it.
func (g *graph) forbidden(root, why string, bad func(string) bool) []string {
	parent := map[string]string{root: ""}
	queue := []string{root}
	var out []string
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, d := range g.pkgs[cur].Imports {
			if _, seen := parent[d]; seen {
				continue
			}
			parent[d] = cur
			if bad(d) {
				out = append(out, fmt.Sprintf("%s imports %s (%s): %s", g.rel(root), g.rel(d), g.chain(parent, d), why))
				continue
			}
			if !g.standard(d) {
				queue = append(queue, d)
			}
		}
	}
	return out
}

func (g *graph) chain(parent map[string]string, last string) string {
	var links []string
	for p := last; p != ""; p = parent[p] {
		links = append(links, g.rel(p))
	}
	for i, j := 0, len(links)-1; i < j; i, j = i+1, j-1 {
		links[i], links[j] = links[j], links[i]
	}
	return strings.Join(links, " → ")
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}
