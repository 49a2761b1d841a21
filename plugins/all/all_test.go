package all_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/mptcpgod/mptcpgod/internal/testing/depstest"
	_ "github.com/mptcpgod/mptcpgod/plugins/all"
	"github.com/mptcpgod/mptcpgod/policy"
)

// needsConfig are the built-in policies that an empty configuration
// cannot build: exec needs the command to run.
var needsConfig = []string{"exec"}

// TestRegistered checks that importing all registers the built-in
// policies, that each documents itself, and that each builds from an empty
// configuration unless it needs one.
func TestRegistered(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"fullmesh", "backup-cellular", "cost-aware", "exec"} {
		if !slices.Contains(policy.Names(), name) {
			t.Errorf("%q not registered: %q", name, policy.Names())
		}
	}
	for _, name := range policy.Names() {
		if _, err := policy.Describe(name); err != nil {
			t.Errorf("Describe(%q): %v", name, err)
		}
		p, err := policy.New(name, nil)
		switch {
		case slices.Contains(needsConfig, name):
			if err == nil {
				t.Errorf("New(%q, nil) succeeded without the configuration it needs", name)
			}
		case err != nil:
			t.Errorf("New(%q, nil): %v", name, err)
		default:
			if c, ok := p.(policy.Closer); ok {
				_ = c.Close()
			}
		}
	}
}

// ioPlugins are the plugins whose job is I/O: exec runs the user's
// program. They still import nothing of mptcpgod but policy.
var ioPlugins = []string{"plugins/exec"}

// TestDeps keeps every plugin pure: of mptcpgod they import only policy
// and other plugins, no netlink library, and nothing that does I/O (but
// the ioPlugins).
func TestDeps(t *testing.T) {
	t.Parallel()
	const mod = depstest.Module
	plugins := 0
	for _, p := range depstest.List(t, "-deps", mod+"plugins/...") {
		switch {
		case p.ImportPath == mod+"policy":
		case strings.HasPrefix(p.ImportPath, mod+"plugins/"):
			plugins++
			if slices.Contains(ioPlugins, strings.TrimPrefix(p.ImportPath, mod)) {
				continue
			}
			for _, d := range p.Imports {
				if slices.Contains(depstest.IO, d) {
					t.Errorf("%s imports %s: policies do no I/O", p.ImportPath, d)
				}
			}
		case depstest.Match(p.ImportPath, mod+"...", "github.com/mdlayher/...", "github.com/vishvananda/...", "golang.org/x/sys/..."):
			t.Errorf("plugins depend on %s", p.ImportPath)
		}
	}
	if plugins < 2 {
		t.Errorf("go list found %d plugin packages, want all and fullmesh at least", plugins)
	}
}
