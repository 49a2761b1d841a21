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

// TestRegistered checks that importing all registers the built-in
// policies and that each builds from an empty configuration.
func TestRegistered(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"fullmesh"} {
		if !slices.Contains(policy.Names(), name) {
			t.Errorf("%q not registered: %q", name, policy.Names())
			continue
		}
		if _, err := policy.New(name, nil); err != nil {
			t.Errorf("New(%q, nil): %v", name, err)
		}
		if _, err := policy.Describe(name); err != nil {
			t.Errorf("Describe(%q): %v", name, err)
		}
	}
}

// TestDeps keeps every plugin pure: of mptcpgod they import only policy
// and other plugins, no netlink library, and nothing that does I/O.
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
