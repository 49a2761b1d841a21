package linkmon

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the dependency arrows of DESIGN.md: linkmon imports none of
// the project's packages and no netlink library but vishvananda's.
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
	allowed := []string{
		"github.com/mptcpgod/mptcpgod/internal/linkmon",
		"github.com/vishvananda/netlink",
		"github.com/vishvananda/netns",
		"golang.org/x/sys/",
	}
	for _, pkg := range strings.Fields(string(out)) {
		ok := false
		for _, a := range allowed {
			if pkg == a || strings.HasPrefix(pkg, a+"/") || (strings.HasSuffix(a, "/") && strings.HasPrefix(pkg, a)) {
				ok = true
			}
		}
		if !ok {
			t.Errorf("linkmon depends on %s", pkg)
		}
	}
}
