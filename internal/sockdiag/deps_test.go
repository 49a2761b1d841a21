package sockdiag_test

import (
	"testing"

	"github.com/mptcpgod/mptcpgod/internal/testing/depstest"
)

// TestDeps keeps the package a leaf: the standard library, the netlink
// libraries and x/sys only, nothing else of ours.
func TestDeps(t *testing.T) {
	t.Parallel()
	depstest.Allow(t, depstest.Module+"internal/sockdiag",
		"github.com/mdlayher/netlink/...",
		"github.com/mdlayher/socket/...", // netlink's socket layer
		"golang.org/x/sys/...",
		"golang.org/x/net/bpf",       // netlink's socket filters
		"golang.org/x/sync/errgroup", // socket's namespace switching
	)
}
