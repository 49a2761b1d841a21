package pmstate_test

import (
	"testing"

	"github.com/mptcpgod/mptcpgod/internal/testing/depstest"
)

// TestDeps keeps the package a leaf: the standard library only, nothing
// of ours, so that the engine, the daemon and mptcpctl can all import it.
func TestDeps(t *testing.T) {
	t.Parallel()
	depstest.Allow(t, depstest.Module+"internal/pmstate")
}
