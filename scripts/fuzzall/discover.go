package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// target is one fuzz function of one package.
type target struct {
	ImportPath string // e.g. github.com/offline-push/offline-push/shared/httpapi
	Dir        string // the package's directory, where failing inputs are written
	Name       string // e.g. FuzzRouter
}

// listedPackage is the part of `go list -json` output discovery needs.
type listedPackage struct {
	Dir          string
	ImportPath   string
	TestGoFiles  []string
	XTestGoFiles []string
}

// moduleRoot returns the directory of the main module that dir lies in.
func moduleRoot(ctx context.Context, dir string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "env", "GOMOD")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside a Go module")
	}
	return filepath.Dir(gomod), nil
}

// discover lists the packages of the module that dir lies in, wherever in
// it dir is, with the go command, which knows which files belong to a
// package under the current build constraints, and parses their test files
// for fuzz functions. Parsing rather than grepping keeps a commented-out
// `func Fuzz` from being run, and a method named Fuzz from counting as a
// target.
func discover(ctx context.Context, dir string) ([]target, error) {
	root, err := moduleRoot(ctx, dir)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "go", "list", "-e", "-json=Dir,ImportPath,TestGoFiles,XTestGoFiles", "./...")
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go list: %w\n%s", err, stderr.String())
	}
	pkgs, err := decodePackages(&stdout)
	if err != nil {
		return nil, err
	}
	var targets []target
	for _, p := range pkgs {
		files := append(append([]string(nil), p.TestGoFiles...), p.XTestGoFiles...)
		for _, name := range files {
			fuzzers, err := fuzzFuncs(filepath.Join(p.Dir, name))
			if err != nil {
				return nil, err
			}
			for _, f := range fuzzers {
				targets = append(targets, target{ImportPath: p.ImportPath, Dir: p.Dir, Name: f})
			}
		}
	}
	sort.Slice(targets, func(i, j int) bool {
		if targets[i].ImportPath != targets[j].ImportPath {
			return targets[i].ImportPath < targets[j].ImportPath
		}
		return targets[i].Name < targets[j].Name
	})
	return targets, nil
}

func decodePackages(r io.Reader) ([]listedPackage, error) {
	var pkgs []listedPackage
	dec := json.NewDecoder(r)
	for {
		var p listedPackage
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			return pkgs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("decode go list output: %w", err)
		}
		pkgs = append(pkgs, p)
	}
}

// fuzzFuncs returns the names of the fuzz targets declared in one Go file:
// top-level functions named Fuzz or FuzzX (X not a lower-case letter, the go
// command's own rule) that take a single *testing.F.
func fuzzFuncs(path string) ([]string, error) {
	file, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	var names []string
	for _, decl := range file.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || fn.Recv != nil || !isFuzzName(fn.Name.Name) || !takesTestingF(fn.Type) {
			continue
		}
		names = append(names, fn.Name.Name)
	}
	return names, nil
}

func isFuzzName(name string) bool {
	const prefix = "Fuzz"
	if len(name) < len(prefix) || name[:len(prefix)] != prefix {
		return false
	}
	if len(name) == len(prefix) {
		return true
	}
	r, _ := utf8.DecodeRuneInString(name[len(prefix):])
	return !unicode.IsLower(r)
}

// takesTestingF reports whether the function has exactly one parameter of
// type *X.F, where X is whatever name the file imports testing under.
func takesTestingF(ft *ast.FuncType) bool {
	if ft.Params == nil || len(ft.Params.List) != 1 || len(ft.Params.List[0].Names) > 1 {
		return false
	}
	if ft.Results != nil && len(ft.Results.List) > 0 {
		return false
	}
	star, ok := ft.Params.List[0].Type.(*ast.StarExpr)
	if !ok {
		return false
	}
	sel, ok := star.X.(*ast.SelectorExpr)
	return ok && sel.Sel.Name == "F"
}
