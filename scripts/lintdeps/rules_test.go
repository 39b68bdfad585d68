package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const mod = "example.com/m"

// fixture builds a package graph from "pkg: import import …" lines; paths
// without a dot in their first element are standard, "m/x" is the module's
// package x, anything else a third-party dependency.
func fixture(lines ...string) *graph {
	var pkgs []listedPackage
	seen := map[string]bool{}
	expand := func(p string) string {
		if strings.HasPrefix(p, "m/") {
			return mod + "/" + strings.TrimPrefix(p, "m/")
		}
		return p
	}
	add := func(path string, imports []string) {
		if seen[path] {
			return
		}
		seen[path] = true
		lp := listedPackage{ImportPath: path, Imports: imports}
		first, _, _ := strings.Cut(path, "/")
		switch {
		case strings.HasPrefix(path, mod+"/"):
			lp.Module = &struct{ Path string }{mod}
		case !strings.Contains(first, "."):
			lp.Standard, lp.DepOnly = true, true
		default:
			lp.DepOnly = true
		}
		pkgs = append(pkgs, lp)
	}
	for _, l := range lines {
		path, rest, _ := strings.Cut(l, ":")
		var imports []string
		for _, f := range strings.Fields(rest) {
			imports = append(imports, expand(f))
		}
		add(expand(path), imports)
	}
	// Every imported package not described is a leaf.
	for _, p := range append([]listedPackage(nil), pkgs...) {
		for _, d := range p.Imports {
			add(d, nil)
		}
	}
	return newGraph(pkgs)
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name  string
		graph *graph
		want  []string
	}{
		{
			name: "a clean layering",
			graph: fixture(
				"m/shared/push: errors time",
				"m/shared/policy: m/shared/push sort time",
				"m/shared/devices: context m/shared/push m/shared/policy log/slog",
				"m/shared/dynamo: m/shared/push github.com/aws/aws-sdk-go-v2/service/dynamodb",
				"m/shared/provider/apns: m/shared/push github.com/sideshow/apns2",
				"m/shared/emulator/apns: net/http crypto/ecdsa",
				"m/shared/app: m/shared/devices m/shared/dynamo m/shared/httpapi",
				"m/functions/devices: m/shared/app github.com/aws/aws-lambda-go/lambda os",
			),
			want: nil,
		},
		{
			name:  "push imports a module package",
			graph: fixture("m/shared/push: errors m/shared/policy", "m/shared/policy: sort"),
			want:  []string{"shared/push imports shared/policy: push imports only the standard library"},
		},
		{
			name: "policy logs and imports an adapter",
			graph: fixture(
				"m/shared/policy: m/shared/push log/slog m/shared/dynamo",
				"m/shared/push: errors",
				"m/shared/dynamo: m/shared/push",
			),
			want: []string{
				"shared/policy imports log/slog: policy is pure (no context, clock, randomness, logging or I/O)",
				"shared/policy imports shared/dynamo: policy imports only push and the standard library",
			},
		},
		{
			name: "use case reaches the AWS SDK through a helper",
			graph: fixture(
				"m/shared/settings: m/shared/push m/shared/util",
				"m/shared/util: github.com/aws/aws-sdk-go-v2/aws github.com/aws/smithy-go",
				"m/shared/push: errors",
			),
			want: []string{
				"shared/settings imports github.com/aws/aws-sdk-go-v2/aws (shared/settings → shared/util → github.com/aws/aws-sdk-go-v2/aws): use cases never import AWS or vendor SDKs or adapter packages",
				"shared/settings imports github.com/aws/smithy-go (shared/settings → shared/util → github.com/aws/smithy-go): use cases never import AWS or vendor SDKs or adapter packages",
			},
		},
		{
			name: "use case imports an adapter, reported once",
			graph: fixture(
				"m/shared/cleanup: m/shared/dynamo",
				"m/shared/dynamo: github.com/aws/aws-sdk-go-v2/service/dynamodb",
			),
			want: []string{
				"shared/cleanup imports shared/dynamo (shared/cleanup → shared/dynamo): use cases never import AWS or vendor SDKs or adapter packages",
			},
		},
		{
			name: "adapters import a use case and each other",
			graph: fixture(
				"m/shared/queue: m/shared/dispatch m/shared/queue/internal/pack",
				"m/shared/queue/internal/pack: bytes",
				"m/shared/dispatch: m/shared/push",
				"m/shared/provider/fcm: m/shared/provider/apns",
				"m/shared/provider/apns: m/shared/provider/apns/jwt",
				"m/shared/provider/apns/jwt: crypto/ecdsa",
			),
			want: []string{
				"shared/provider/fcm imports shared/provider/apns (shared/provider/fcm → shared/provider/apns): adapters never import use cases or other adapters",
				"shared/queue imports shared/dispatch (shared/queue → shared/dispatch): adapters never import use cases or other adapters",
			},
		},
		{
			name: "emulator imports the client it checks",
			graph: fixture(
				"m/shared/emulator/xiaomi: net/http m/shared/provider/xiaomi",
				"m/shared/emulator/vivo: m/shared/provider/xiaomi",
				"m/shared/provider/xiaomi: net/http",
			),
			want: []string{
				"shared/emulator/xiaomi imports shared/provider/xiaomi (shared/emulator/xiaomi → shared/provider/xiaomi): an emulator never imports the client it checks",
			},
		},
		{
			name: "function main wires more than app",
			graph: fixture(
				"m/functions/ingest: m/shared/app m/shared/dynamo github.com/aws/aws-lambda-go/lambda",
				"m/shared/app: m/shared/dynamo",
				"m/shared/dynamo: bytes",
			),
			want: []string{
				"functions/ingest imports shared/dynamo: a function's main imports only shared/app (a dispatch main also its own provider and push), aws-lambda-go and the standard library",
			},
		},
		{
			name: "dispatch main picks its own provider only",
			graph: fixture(
				"m/functions/dispatch-apns: m/shared/app m/shared/push m/shared/provider/apns",
				"m/functions/dispatch-fcm: m/shared/app m/shared/push m/shared/provider/apns",
				"m/shared/app: m/shared/push",
				"m/shared/provider/apns: m/shared/push",
				"m/shared/push: bytes",
			),
			want: []string{
				"functions/dispatch-fcm imports shared/provider/apns: a function's main imports only shared/app (a dispatch main also its own provider and push), aws-lambda-go and the standard library",
			},
		},
		{
			name: "test support imported by production code",
			graph: fixture(
				"m/shared/dispatch: m/shared/e2e",
				"m/shared/e2e: bytes",
			),
			want: []string{
				"shared/dispatch imports shared/e2e: it is test support, for _test.go files only",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := check(tc.graph)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("violations (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodePackages(t *testing.T) {
	in := `{"ImportPath": "fmt", "Standard": true, "DepOnly": true}
{"ImportPath": "example.com/m/a", "Module": {"Path": "example.com/m"}, "Imports": ["fmt"]}`
	pkgs, err := decodePackages(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	g := newGraph(pkgs)
	if g.module != mod || len(g.roots) != 1 || g.roots[0] != mod+"/a" {
		t.Errorf("module %q roots %v, want %q and [%s/a]", g.module, g.roots, mod, mod)
	}
	if _, err := decodePackages(strings.NewReader("{")); err == nil {
		t.Error("decoding a truncated stream: got no error")
	}
}
