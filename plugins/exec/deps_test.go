package exec_test

import (
	"os"
	osexec "os/exec"
	"strings"
	"testing"
)

// TestDeps keeps exec a plugin: of mptcpgod it imports only policy, and
// no netlink library. Unlike the other plugins it does I/O: it runs a
// process.
func TestDeps(t *testing.T) {
	t.Parallel()
	goBin, err := osexec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no go command: %v", err)
		}
		t.Skipf("no go command: %v", err)
	}
	out, err := osexec.Command(goBin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	for _, d := range deps {
		switch {
		case d == "github.com/mptcpgod/mptcpgod/policy", d == "github.com/mptcpgod/mptcpgod/plugins/exec":
		case strings.HasPrefix(d, "github.com/mptcpgod/mptcpgod/"),
			strings.HasPrefix(d, "github.com/mdlayher/"),
			strings.HasPrefix(d, "github.com/vishvananda/"),
			strings.HasPrefix(d, "golang.org/x/sys/"):
			t.Errorf("exec depends on %s", d)
		}
	}
	if !strings.Contains(string(out), "github.com/mptcpgod/mptcpgod/policy\n") {
		t.Errorf("deps %v: the list is not what the test expects", deps)
	}
}
