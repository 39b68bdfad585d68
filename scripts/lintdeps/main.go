// Command lintdeps enforces the dependency direction of STYLE.md: it reads
// the package graph with `go list -deps -json ./...` and prints one line per
// import that breaks a rule, with the chain of imports that leads to it.
// It exits 1 when it found any. Packages that do not exist yet are simply
// not checked. Test files are not checked: tests may reach across layers.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
)

func main() {
	pkgs, err := goList()
	if err != nil {
		fmt.Fprintln(os.Stderr, "lintdeps:", err)
		os.Exit(2)
	}
	violations := check(newGraph(pkgs))
	for _, v := range violations {
		fmt.Fprintln(os.Stderr, "lintdeps:", v)
	}
	if len(violations) > 0 {
		fmt.Fprintf(os.Stderr, "lintdeps: %d violation(s) of the dependency rules in STYLE.md\n", len(violations))
		os.Exit(1)
	}
}

// goList runs go list in the current directory, which must be inside the
// module. With -e a package that does not build is still listed with its
// imports: reporting build errors is go vet's job, not this command's.
func goList() ([]listedPackage, error) {
	cmd := exec.Command("go", "list", "-e", "-deps", "-json=ImportPath,Module,Standard,Imports,DepOnly", "./...")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go list: %w\n%s", err, stderr.String())
	}
	return decodePackages(&stdout)
}

// listedPackage is the part of go list's output the rules need.
type listedPackage struct {
	ImportPath string
	Standard   bool
	DepOnly    bool // a dependency only, not matched by ./...
	Imports    []string
	Module     *struct{ Path string }
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
