package sockdiag_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the package a leaf: the standard library, the netlink
// libraries and x/sys only, nothing else of ours.
func TestDeps(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	allowed := []string{
		"github.com/mptcpgod/mptcpgod/internal/sockdiag",
		"github.com/mdlayher/netlink",
		"github.com/mdlayher/socket", // netlink's socket layer
		"golang.org/x/sys/",
		"golang.org/x/net/bpf",       // netlink's socket filters
		"golang.org/x/sync/errgroup", // socket's namespace switching
	}
	for _, dep := range strings.Fields(string(out)) {
		ok := false
		for _, a := range allowed {
			if dep == a || strings.HasPrefix(dep, a) {
				ok = true
			}
		}
		if !ok {
			t.Errorf("forbidden dependency %s", dep)
		}
	}
}
