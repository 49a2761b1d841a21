package dist

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/testing/daemontest"
)

// webUnit is a service whose program opens a plain TCP listener: busybox
// httpd, a static binary that asks for IPPROTO_TCP sockets.
const webUnit = `[Unit]
Description=plain TCP test server

[Service]
Type=simple
ExecStart=/bin/busybox httpd -f -p 127.0.0.1:8081 -h /tmp
`

// TestForceUnitDropIn boots a container with a real systemd, runs a
// service that listens with plain TCP, forces it with mptcpctl force unit
// --mechanism drop-in --now, and checks with ss -M (sock_diag) that its
// listener is MPTCP, then plain TCP again after --off --now.
func TestForceUnitDropIn(t *testing.T) {
	t.Parallel()
	needRoot(t)
	needInstallInputs(t)
	// The container boots the host's /usr, busybox-static's /bin/busybox
	// with it.
	needTool(t, "busybox")
	tmp := t.TempDir()
	ctl := daemontest.Binary(t, "mptcpctl")
	unit := filepath.Join(tmp, "web.service")
	if err := os.WriteFile(unit, []byte(webUnit), 0o644); err != nil {
		t.Fatal(err)
	}
	c := bootContainer(t, "[Service]\nType=simple\nWatchdogSec=0\nExecStart=\nExecStart=/bin/sleep infinity\n",
		[]string{ctl + ":/opt/mptcpctl", unit + ":/etc/systemd/system/web.service"},
		t.TempDir())
	c.waitFor("systemd in the container", 90*time.Second, func() (bool, error) {
		out, err := c.exec("systemctl", "is-system-running")
		s := strings.TrimSpace(out)
		return s == "running" || s == "degraded", err
	})
	if out, err := c.exec("systemctl", "start", "web.service"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	listener := func(mptcp bool) func() (bool, error) {
		return func() (bool, error) {
			args := []string{"ss", "-Hln"}
			if mptcp {
				args = append(args, "-M")
			} else {
				args = append(args, "-t")
			}
			out, err := c.exec(args...)
			return strings.Contains(out, "127.0.0.1:8081"), err
		}
	}
	c.waitFor("a plain TCP listener on 127.0.0.1:8081", 30*time.Second, listener(false))
	if ok, _ := listener(true)(); ok {
		t.Fatal("the listener is MPTCP before forcing")
	}

	out, err := c.exec("/opt/mptcpctl", "force", "unit", "--mechanism", "drop-in", "--now", "web.service")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("force unit: %s", out)
	c.waitFor("an MPTCP listener on 127.0.0.1:8081", 30*time.Second, listener(true))
	status, err := c.exec("/opt/mptcpctl", "force", "status")
	if err != nil || !strings.Contains(status, "web.service") || !strings.Contains(status, "drop-in") {
		t.Errorf("force status: %v\n%s", err, status)
	}

	out, err = c.exec("/opt/mptcpctl", "force", "unit", "--off", "--now", "web.service")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	c.waitFor("a plain TCP listener on 127.0.0.1:8081 again", 30*time.Second, func() (bool, error) {
		plain, err := listener(false)()
		if err != nil {
			return false, err
		}
		mptcp, err := listener(true)()
		return plain && !mptcp, err
	})
}
