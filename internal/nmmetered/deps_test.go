package nmmetered_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps nmmetered a leaf: it imports none of the project's
// packages and nothing but godbus outside the standard library.
func TestDeps(t *testing.T) {
	t.Parallel()
	goTool, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no go tool: %v", err)
		}
		t.Skipf("no go tool: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	pkgs := strings.Fields(string(out))
	for _, pkg := range pkgs {
		if pkg != "github.com/mptcpgod/mptcpgod/internal/nmmetered" && !strings.HasPrefix(pkg, "github.com/godbus/dbus/v5") {
			t.Errorf("nmmetered depends on %s", pkg)
		}
	}
	if len(pkgs) < 2 {
		t.Errorf("go list found %v: not what the test expects", pkgs)
	}
}
