package policy

import (
	"slices"
	"testing"

	"github.com/mptcpgod/mptcpgod/internal/testing/depstest"
)

// TestDeps keeps package policy pure: it imports nothing else of
// mptcpgod, no netlink library, and nothing that does I/O.
func TestDeps(t *testing.T) {
	t.Parallel()
	const pkg = depstest.Module + "policy"
	depstest.Forbid(t, pkg, []string{depstest.Module + "...", "github.com/mdlayher/...", "github.com/vishvananda/...", "golang.org/x/sys/..."})
	for _, d := range depstest.Imports(t, pkg) {
		if slices.Contains(depstest.IO, d) {
			t.Errorf("policy imports %s: policies do no I/O", d)
		}
	}
}
