package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestDeps: mptcpctl speaks to the daemon through the wire types and the
// state types only: it imports none of the engine, the policies, the link
// monitor, the usage accounting or the daemon (tailscale's cmd/tailscale
// has the same test). Where it needs one of their types, ctlapi has a copy.
func TestDeps(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []string{"pm", "policy", "internal/linkmon", "internal/usage", "internal/daemon", "internal/metrics", "plugins"}
	deps := strings.Fields(string(out))
	for _, dep := range deps {
		rest, ours := strings.CutPrefix(dep, "github.com/mptcpgod/mptcpgod/")
		if !ours {
			continue
		}
		for _, f := range forbidden {
			if rest == f || strings.HasPrefix(rest, f+"/") {
				t.Errorf("mptcpctl depends on %s", dep)
			}
		}
	}
	for _, want := range []string{"internal/ctlapi", "internal/pmstate"} {
		if !slices.Contains(deps, "github.com/mptcpgod/mptcpgod/"+want) {
			t.Errorf("mptcpctl does not depend on %s: the test looks at the wrong package (%q)", want, deps)
		}
	}
}
