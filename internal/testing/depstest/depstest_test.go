package depstest

import (
	"slices"
	"strings"
	"testing"
)

// TestDeps keeps the package usable by the tests of packages that build
// on every system: of everything outside the standard library it imports
// runtest only.
func TestDeps(t *testing.T) {
	t.Parallel()
	Allow(t, Module+"internal/testing/depstest", Module+"internal/testing/runtest")
}

// TestImports: the direct imports, the standard library's included.
func TestImports(t *testing.T) {
	t.Parallel()
	imports := Imports(t, Module+"internal/testing/depstest")
	for _, want := range []string{"os/exec", "testing", Module + "internal/testing/runtest"} {
		if !slices.Contains(imports, want) {
			t.Errorf("Imports = %q, want %s among them", imports, want)
		}
	}
}

// TestList: a package named by its import path, and its dependencies with
// -deps, each once.
func TestList(t *testing.T) {
	t.Parallel()
	runtest := Module + "internal/testing/runtest"
	pkgs := List(t, "-deps", runtest)
	var named, standard []string
	for _, p := range pkgs {
		if !p.DepOnly {
			named = append(named, p.ImportPath)
		}
		if p.Standard {
			standard = append(standard, p.ImportPath)
		}
	}
	if !slices.Equal(named, []string{runtest}) {
		t.Errorf("List named %q, want %s only", named, runtest)
	}
	if !slices.Contains(standard, "testing") || len(standard) != len(pkgs)-1 {
		t.Errorf("List's standard packages %q, want every dependency of runtest and testing among them", standard)
	}
}

// TestNonStandard: the dependencies outside the standard library but the
// package itself, and an error when go list looked at another package
// (the test named the wrong one, or runs in the wrong directory).
func TestNonStandard(t *testing.T) {
	t.Parallel()
	const policy, exec = Module + "policy", Module + "plugins/exec"
	listed := []Package{
		{ImportPath: "strings", Standard: true, DepOnly: true},
		{ImportPath: policy, DepOnly: true},
		{ImportPath: "github.com/google/go-cmp/cmp", DepOnly: true},
		{ImportPath: exec},
	}
	tests := []struct {
		name string
		pkgs []Package
		pkg  string
		want []string
		err  string
	}{
		{"own", listed, exec, []string{policy, "github.com/google/go-cmp/cmp"}, ""},
		{"dependency named", listed, policy, nil, `looked at ["` + exec + `"], not ` + policy},
		{"nothing listed", nil, exec, nil, "looked at [], not " + exec},
		{"two named", append(slices.Clone(listed), Package{ImportPath: policy}), exec, nil, "looked at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := nonStandard(tt.pkgs, tt.pkg)
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("nonStandard(%s) error %v, want %q", tt.pkg, err, tt.err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("nonStandard(%s) = %q, want %q", tt.pkg, got, tt.want)
			}
		})
	}
}

// TestMatch: an import path matches itself; a pattern ending in "/..."
// matches the path before it and every path below, not a longer name.
func TestMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path     string
		patterns []string
		want     bool
	}{
		{"golang.org/x/net/bpf", []string{"golang.org/x/net/bpf"}, true},
		{"golang.org/x/net/bpfx", []string{"golang.org/x/net/bpf"}, false},
		{"golang.org/x/net/bpf/asm", []string{"golang.org/x/net/bpf"}, false},
		{"golang.org/x/sys", []string{"golang.org/x/sys/..."}, true},
		{"golang.org/x/sys/unix", []string{"golang.org/x/sys/..."}, true},
		{"golang.org/x/system", []string{"golang.org/x/sys/..."}, false},
		{"golang.org/x/sys/unix", []string{"golang.org/x/net/bpf", "golang.org/x/sys/..."}, true},
		{Module + "pm", []string{Module + "..."}, true},
		{Module + "pm", nil, false},
	}
	for _, tt := range tests {
		if got := Match(tt.path, tt.patterns...); got != tt.want {
			t.Errorf("Match(%s, %q) = %v, want %v", tt.path, tt.patterns, got, tt.want)
		}
	}
}
