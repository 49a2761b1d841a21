package nmmetered_test

import (
	"testing"

	"github.com/mptcpgod/mptcpgod/internal/testing/depstest"
)

// TestDeps keeps nmmetered a leaf: it imports none of the project's
// packages and nothing but godbus outside the standard library.
func TestDeps(t *testing.T) {
	t.Parallel()
	depstest.Allow(t, depstest.Module+"internal/nmmetered", "github.com/godbus/dbus/v5/...")
}
