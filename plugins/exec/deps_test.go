package exec_test

import (
	"testing"

	"github.com/mptcpgod/mptcpgod/internal/testing/depstest"
)

// TestDeps keeps exec a plugin: of mptcpgod it imports only policy, and
// no netlink library. Unlike the other plugins it does I/O: it runs a
// process.
func TestDeps(t *testing.T) {
	t.Parallel()
	depstest.Forbid(t, depstest.Module+"plugins/exec",
		[]string{depstest.Module + "...", "github.com/mdlayher/...", "github.com/vishvananda/...", "golang.org/x/sys/..."},
		depstest.Module+"policy")
}
