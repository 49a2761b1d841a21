package transparent

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the package a leaf: it imports none of the project's
// packages, only golang.org/x/sys and golang.org/x/net/bpf, so the
// mechanism can be reported on and reused (mptcpctl run, forced services)
// without pulling in the daemon.
func TestDeps(t *testing.T) {
	t.Parallel()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go tool: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		switch {
		case pkg == "github.com/mptcpgod/mptcpgod/internal/transparent",
			strings.HasPrefix(pkg, "golang.org/x/sys/"),
			pkg == "golang.org/x/net/bpf":
		default:
			t.Errorf("transparent depends on %s", pkg)
		}
	}
}
