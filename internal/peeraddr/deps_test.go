package peeraddr_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the package a leaf: the standard library only, so that
// the engine, the daemon's configuration and tests can all use it.
func TestDeps(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep != "github.com/mptcpgod/mptcpgod/internal/peeraddr" {
			t.Errorf("forbidden dependency %s", dep)
		}
	}
}
