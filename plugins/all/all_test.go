package all_test

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

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
	goBin, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no go command: %v", err)
		}
		t.Skipf("no go command: %v", err)
	}
	const mod = "github.com/mptcpgod/mptcpgod/"
	out, err := exec.Command(goBin, "list", "-deps", "-f", `{{.ImportPath}} {{join .Imports " "}}`, mod+"plugins/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	plugins := 0
	for line := range strings.Lines(string(out)) {
		pkg, imports, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch {
		case pkg == mod+"policy":
		case strings.HasPrefix(pkg, mod+"plugins/"):
			plugins++
			if slices.Contains(ioPlugins, strings.TrimPrefix(pkg, mod)) {
				continue
			}
			for _, d := range strings.Fields(imports) {
				switch d {
				case "os", "os/exec", "os/signal", "net", "net/http", "syscall", "io/fs", "unsafe", "log", "log/slog":
					t.Errorf("%s imports %s: policies do no I/O", pkg, d)
				}
			}
		case strings.HasPrefix(pkg, mod),
			strings.HasPrefix(pkg, "github.com/mdlayher/"),
			strings.HasPrefix(pkg, "github.com/vishvananda/"),
			strings.HasPrefix(pkg, "golang.org/x/sys/"):
			t.Errorf("plugins depend on %s", pkg)
		}
	}
	if plugins < 2 {
		t.Errorf("go list found %d plugin packages, want all and fullmesh at least", plugins)
	}
}
