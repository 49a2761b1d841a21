package backupcell_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps backup-cellular pure: of mptcpgod it imports only policy,
// no netlink library, and nothing that does I/O.
func TestDeps(t *testing.T) {
	t.Parallel()
	goBin, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no go command: %v", err)
		}
		t.Skipf("no go command: %v", err)
	}
	list := func(args ...string) []string {
		out, err := exec.Command(goBin, append([]string{"list"}, args...)...).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", strings.Join(args, " "), err)
		}
		return strings.Fields(string(out))
	}
	for _, d := range list("-deps", ".") {
		switch {
		case d == "github.com/mptcpgod/mptcpgod/policy", d == "github.com/mptcpgod/mptcpgod/plugins/backupcell":
		case strings.HasPrefix(d, "github.com/mptcpgod/mptcpgod/"),
			strings.HasPrefix(d, "github.com/mdlayher/"),
			strings.HasPrefix(d, "github.com/vishvananda/"),
			strings.HasPrefix(d, "golang.org/x/sys/"):
			t.Errorf("backup-cellular depends on %s", d)
		}
	}
	imports := list("-f", `{{join .Imports "\n"}}`, ".")
	for _, d := range imports {
		switch d {
		case "os", "os/exec", "os/signal", "net", "net/http", "syscall", "io/fs", "unsafe", "log", "log/slog":
			t.Errorf("backup-cellular imports %s: policies do no I/O", d)
		}
	}
	if !strings.Contains(strings.Join(imports, " "), "github.com/mptcpgod/mptcpgod/policy") {
		t.Errorf("imports %v: the list is not what the test expects", imports)
	}
}
