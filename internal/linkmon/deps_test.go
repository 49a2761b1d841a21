package linkmon

import (
	"testing"

	"github.com/mptcpgod/mptcpgod/internal/testing/depstest"
)

// TestDeps keeps the dependency arrows of DESIGN.md: linkmon imports none of
// the project's packages and no netlink library but vishvananda's.
func TestDeps(t *testing.T) {
	t.Parallel()
	depstest.Allow(t, depstest.Module+"internal/linkmon",
		"github.com/vishvananda/netlink/...", "github.com/vishvananda/netns/...", "golang.org/x/sys/...")
}
