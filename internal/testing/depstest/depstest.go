package depstest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/mptcpgod/mptcpgod/internal/testing/runtest"
)

// Module is the import path of mptcpgod's packages, with the slash that
// follows it.
const Module = "github.com/mptcpgod/mptcpgod/"

// IO lists the standard library's packages through which a program does
// I/O: files, processes, signals, the network, system calls, logs.
var IO = []string{"os", "os/exec", "os/signal", "net", "net/http", "syscall", "io/fs", "unsafe", "log", "log/slog"}

// Package is what go list says of a package.
type Package struct {
	ImportPath string
	Imports    []string // direct imports, the standard library's included
	Standard   bool     // of the standard library
	DepOnly    bool     // listed as a dependency (-deps), not named by the arguments
}

// List runs go list with args in the test's directory and returns the
// packages it lists: "-deps", pattern for a pattern and everything it
// depends on.
func List(tb testing.TB, args ...string) []Package {
	tb.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		runtest.Unavailable(tb, fmt.Sprintf("depstest: no go command: %v", err))
	}
	args = append([]string{"list", "-json=ImportPath,Imports,Standard,DepOnly"}, args...)
	var stderr bytes.Buffer
	cmd := exec.Command(goBin, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	var pkgs []Package
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		var p Package
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			return pkgs
		} else if err != nil {
			tb.Fatalf("go %s: %v", strings.Join(args, " "), err)
		}
		pkgs = append(pkgs, p)
	}
}

// Deps returns the packages outside the standard library that the package
// in the test's directory depends on, directly or not, but itself. pkg is
// its import path: the test fails when go list lists another.
func Deps(tb testing.TB, pkg string) []string {
	tb.Helper()
	deps, err := nonStandard(List(tb, "-deps", "."), pkg)
	if err != nil {
		tb.Fatal(err)
	}
	return deps
}

// Imports returns what the package in the test's directory imports
// directly, the standard library included. pkg is its import path: the
// test fails when go list lists another.
func Imports(tb testing.TB, pkg string) []string {
	tb.Helper()
	pkgs := List(tb, ".")
	if _, err := nonStandard(pkgs, pkg); err != nil {
		tb.Fatal(err)
	}
	return pkgs[0].Imports
}

// nonStandard returns the import paths of pkgs outside the standard
// library but pkg, and an error unless pkg is the one package the
// arguments named.
func nonStandard(pkgs []Package, pkg string) ([]string, error) {
	var named, deps []string
	for _, p := range pkgs {
		switch {
		case !p.DepOnly:
			named = append(named, p.ImportPath)
		case !p.Standard:
			deps = append(deps, p.ImportPath)
		}
	}
	if len(named) != 1 || named[0] != pkg {
		return nil, fmt.Errorf("depstest: go list looked at %q, not %s: the test names another package than its own", named, pkg)
	}
	return deps, nil
}

// Match reports whether path matches one of patterns: an import path, or
// one that ends in "/..." for it and every path below it.
func Match(path string, patterns ...string) bool {
	for _, p := range patterns {
		if prefix, ok := strings.CutSuffix(p, "/..."); ok {
			if path == prefix || strings.HasPrefix(path, prefix+"/") {
				return true
			}
		} else if path == p {
			return true
		}
	}
	return false
}

// Allow fails the test for every dependency of pkg (Deps) that matches
// none of allowed.
func Allow(tb testing.TB, pkg string, allowed ...string) {
	tb.Helper()
	for _, d := range Deps(tb, pkg) {
		if !Match(d, allowed...) {
			tb.Errorf("%s depends on %s, which is not allowed", strings.TrimPrefix(pkg, Module), d)
		}
	}
}

// Forbid fails the test for every dependency of pkg (Deps) that matches
// one of forbidden and none of except.
func Forbid(tb testing.TB, pkg string, forbidden []string, except ...string) {
	tb.Helper()
	for _, d := range Deps(tb, pkg) {
		if Match(d, forbidden...) && !Match(d, except...) {
			tb.Errorf("%s depends on %s, which is forbidden", strings.TrimPrefix(pkg, Module), d)
		}
	}
}
