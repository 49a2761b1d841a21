//go:build linux

package daemon_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/daemontest"
)

// exited starts the binary in h with the configuration file and waits for
// it to exit on its own; it returns the exit status and standard error.
func exited(t *testing.T, h *netnstest.Host, configPath string) (int, string) {
	t.Helper()
	return daemontest.Exit(t, h, daemontest.Options{ConfigFile: configPath})
}

// TestSpecialFiles: a configuration replaced by a FIFO is refused on
// SIGHUP at once, and SIGTERM still stops the daemon; a usage file that
// is a FIFO or /dev/zero makes the start fail at once with the reason.
func TestSpecialFiles(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 1)
	path := writeConfig(t, "", config("kernel"))
	p := run(t, tb.Client, path)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
	p.Signal(t, syscall.SIGHUP)
	p.WaitLog(t, "configuration refused", 1)
	if want := path + " is a FIFO, not a regular file"; !strings.Contains(p.Log(), want) {
		t.Errorf("the refusal does not say %q:\n%s", want, p.Log())
	}
	p.Signal(t, syscall.SIGTERM)
	if code := p.Wait(t); code != 0 {
		t.Errorf("exit status after SIGTERM: %d, want 0", code)
	}

	for _, special := range []string{"fifo", "/dev/zero"} {
		dir := t.TempDir()
		file := filepath.Join(dir, "usage.json")
		var err error
		if special == "fifo" {
			err = syscall.Mkfifo(file, 0o600)
		} else {
			err = os.Symlink(special, file)
		}
		if err != nil {
			t.Fatal(err)
		}
		cfg := writeConfig(t, "", config("kernel", fmt.Sprintf("[usage]\nstate_dir = %q\n[[usage.links]]\nname = \"eth0\"\n", dir)))
		code, stderr := exited(t, tb.Client, cfg)
		if code != 1 || !strings.Contains(stderr, file+" is a") || !strings.Contains(stderr, "not a regular file") {
			t.Errorf("usage file %s: exit status %d, want 1 with the reason:\n%s", special, code, stderr)
		}
	}
}
