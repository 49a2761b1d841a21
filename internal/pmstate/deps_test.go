package pmstate_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the package a leaf: the standard library only, nothing
// of ours, so that the engine, the daemon and mptcpctl can all import it.
func TestDeps(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep != "github.com/mptcpgod/mptcpgod/internal/pmstate" {
			t.Errorf("forbidden dependency %s", dep)
		}
	}
}
