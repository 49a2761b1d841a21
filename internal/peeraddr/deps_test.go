package peeraddr_test

import (
	"testing"

	"github.com/mptcpgod/mptcpgod/internal/testing/depstest"
)

// TestDeps keeps the package a leaf: the standard library only, so that
// the engine, the daemon's configuration and tests can all use it.
func TestDeps(t *testing.T) {
	t.Parallel()
	depstest.Allow(t, depstest.Module+"internal/peeraddr")
}
