package policy

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps package policy pure: it imports nothing else of
// mptcpgod, no netlink library, and nothing that does I/O.
func TestDeps(t *testing.T) {
	t.Parallel()
	deps := goList(t, "-deps", ".")
	for _, d := range deps {
		switch {
		case strings.HasPrefix(d, "github.com/mptcpgod/mptcpgod/") && d != "github.com/mptcpgod/mptcpgod/policy",
			strings.HasPrefix(d, "github.com/mdlayher/"),
			strings.HasPrefix(d, "github.com/vishvananda/"),
			strings.HasPrefix(d, "golang.org/x/sys/"):
			t.Errorf("policy depends on %s", d)
		}
	}
	for _, d := range goList(t, "-f", "{{join .Imports \"\\n\"}}", ".") {
		switch d {
		case "os", "os/exec", "os/signal", "net", "net/http", "syscall", "io/fs", "unsafe", "log", "log/slog":
			t.Errorf("policy imports %s: policies do no I/O", d)
		}
	}
}

// goList runs `go list args...` and returns its lines.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no go command: %v", err)
		}
		t.Skipf("no go command: %v", err)
	}
	out, err := exec.Command(goBin, append([]string{"list"}, args...)...).Output()
	if err != nil {
		t.Fatalf("go list %s: %v", strings.Join(args, " "), err)
	}
	lines := strings.Fields(string(out))
	if len(lines) == 0 {
		t.Fatalf("go list %s: no output", strings.Join(args, " "))
	}
	return lines
}
