package transparent

import (
	"testing"

	"github.com/mptcpgod/mptcpgod/internal/testing/depstest"
)

// TestDeps keeps the package a leaf: it imports none of the project's
// packages, only golang.org/x/sys and golang.org/x/net/bpf, so the
// mechanism can be reported on and reused (mptcpctl run, forced services)
// without pulling in the daemon.
func TestDeps(t *testing.T) {
	t.Parallel()
	depstest.Allow(t, depstest.Module+"internal/transparent", "golang.org/x/sys/...", "golang.org/x/net/bpf")
}
