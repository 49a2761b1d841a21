package main

import (
	"testing"

	"github.com/mptcpgod/mptcpgod/internal/testing/depstest"
)

// TestDeps: mptcpctl speaks to the daemon through the wire types and the
// state types only: it imports none of the engine, the policies, the link
// monitor, the usage accounting or the daemon (tailscale's cmd/tailscale
// has the same test). Where it needs one of their types, ctlapi has a copy.
func TestDeps(t *testing.T) {
	t.Parallel()
	const mod = depstest.Module
	depstest.Forbid(t, mod+"cmd/mptcpctl", []string{mod + "pm/...", mod + "policy/...", mod + "internal/linkmon/...",
		mod + "internal/usage/...", mod + "internal/daemon/...", mod + "internal/metrics/...", mod + "plugins/..."})
}
