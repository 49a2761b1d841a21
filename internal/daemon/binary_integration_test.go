//go:build linux

package daemon_test

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/daemontest"
	"github.com/mptcpgod/mptcpgod/internal/testing/ownertest"
	"github.com/mptcpgod/mptcpgod/internal/testing/syncbuf"
)

func TestMain(m *testing.M) {
	ownertest.RunChild()
	os.Exit(daemontest.Main(m))
}

// run starts the binary in h with the configuration file and waits until
// it has logged that it is ready.
func run(t *testing.T, h *netnstest.Host, configPath string) *daemontest.Daemon {
	t.Helper()
	d := daemontest.StartWith(t, h, daemontest.Options{ConfigFile: configPath})
	d.WaitLog(t, `msg="mptcpgod ready"`, 1)
	return d
}

// writeConfig writes the configuration text to a file in a temporary
// directory and returns its path.
func writeConfig(t *testing.T, path, text string) string {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "mptcpgod.toml")
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestKillAndRestart: mptcpgod killed with SIGKILL under traffic and
// started again adopts what exists: no endpoint or subflow is duplicated,
// connections keep their mesh, and connections opened while it was down
// get theirs.
func TestKillAndRestart(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"kernel", "userspace"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			tb := netnstest.NewTestbed(t, 2)
			acceptJoins(tb.Server)
			l0, l1 := tb.Links[0], tb.Links[1]
			path := writeConfig(t, "", config(mode))
			p := run(t, tb.Client, path)
			if mode == "kernel" {
				waitEndpoints(t, tb.Client, l0.Client4, l1.Client4, l0.Client6, l1.Client6)
			}
			ln := tb.Server.Listen("tcp", netip.AddrPortFrom(l0.Server4, 0).String())
			go serve(ln)
			srv := addrPort(ln)
			mesh := pathSet([]netip.Addr{l0.Client4, l1.Client4}, srv)
			before := []netip.AddrPort{dial(t, tb.Client, srv), dial(t, tb.Client, srv)}
			for _, c := range before {
				waitPaths(t, tb.Client, c, mesh)
			}
			eps := endpoints(t, tb.Client)

			p.Signal(t, syscall.SIGKILL)
			p.Wait(t)
			during := dial(t, tb.Client, srv)

			run(t, tb.Client, path)
			waitPaths(t, tb.Client, during, mesh)
			for _, c := range before {
				if got := paths(t, tb.Client, c); !equal(got, mesh) {
					t.Errorf("after the restart, subflows of %s are %v, want %v", c, got, mesh)
				}
			}
			if got := endpoints(t, tb.Client); !maps.Equal(got, eps) {
				t.Errorf("after the restart, endpoints are %v, want %v as before", got, eps)
			}
		})
	}
}

// TestSignals: SIGHUP with a broken file is refused with the line and
// changes nothing; SIGHUP with a good file applies the new policy; SIGTERM
// withdraws the endpoints, leaves the connection alone and exits 0. (The
// kernel closes the subflows from an endpoint it deletes, the initial one
// included, so the endpoint of a live connection's initial address must
// stay.)
func TestSignals(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 1)
	acceptJoins(tb.Server)
	l0 := tb.Links[0]
	ipv4 := config("kernel", "[[policy.chain]]\nname = \"fullmesh\"\nconfig = { families = \"ipv4\" }\n")
	path := writeConfig(t, "", ipv4)
	p := run(t, tb.Client, path)
	waitEndpoints(t, tb.Client, l0.Client4)
	ln := tb.Server.Listen("tcp", netip.AddrPortFrom(l0.Server4, 0).String())
	go serve(ln)
	conn := dial(t, tb.Client, addrPort(ln))

	writeConfig(t, path, ipv4+"polcy = 1\n")
	p.Signal(t, syscall.SIGHUP)
	p.WaitLog(t, "configuration refused", 1)
	line := strings.Count(ipv4, "\n") + 1
	if want := fmt.Sprintf(`%s:%d: unknown key \"policy.chain[0].polcy\"`, path, line); !strings.Contains(p.Log(), want) {
		t.Errorf("the refusal does not say %s:\n%s", want, p.Log())
	}
	if eps := endpoints(t, tb.Client); len(eps) != 1 {
		t.Errorf("endpoints after a refused reload: %v, want only %s", eps, l0.Client4)
	}

	writeConfig(t, path, config("kernel"))
	p.Signal(t, syscall.SIGHUP)
	p.WaitLog(t, "configuration reloaded", 1)
	waitEndpoints(t, tb.Client, l0.Client4, l0.Client6)

	p.Signal(t, syscall.SIGTERM)
	if code := p.Wait(t); code != 0 {
		t.Errorf("exit status after SIGTERM: %d, want 0", code)
	}
	if eps := endpoints(t, tb.Client); eps[l0.Client6.String()] != "" {
		t.Errorf("endpoints after SIGTERM: %v, want %s withdrawn", eps, l0.Client6)
	}
	if got, want := paths(t, tb.Client, conn), pathSet([]netip.Addr{l0.Client4}, addrPort(ln)); !equal(got, want) {
		t.Errorf("subflows after SIGTERM: %v, want %v", got, want)
	}
}

// TestNotifyReadyAndWatchdog: started as systemd starts a Type=notify
// unit with WatchdogSec=, the daemon sends READY=1 once it is ready and
// then WATCHDOG=1 within every period.
func TestNotifyReadyAndWatchdog(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 1)
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	const period = time.Second
	cmd := tb.Client.Command(daemontest.Binary(t, "mptcpgod"), "--config", writeConfig(t, "", config("kernel")))
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock, fmt.Sprintf("WATCHDOG_USEC=%d", period.Microseconds()))
	var stderr syncbuf.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Logf("mptcpgod:\n%s", &stderr)
	})

	// READY=1 first, then pings: at least 3, none more than
	// a period apart.
	var states []string
	var pings []time.Time
	buf := make([]byte, 4096)
	deadline := time.Now().Add(waitLimit)
	for len(pings) < 3 {
		_ = conn.SetReadDeadline(deadline)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("reading the notify socket: %v; got %q", err, states)
		}
		for _, st := range strings.Split(strings.TrimSpace(string(buf[:n])), "\n") {
			states = append(states, st)
			if st == "WATCHDOG=1" {
				pings = append(pings, time.Now())
			}
		}
	}
	if len(states) == 0 || states[0] != "READY=1" {
		t.Errorf("notifications %q, want READY=1 first", states)
	}
	for i := 1; i < len(pings); i++ {
		if gap := pings[i].Sub(pings[i-1]); gap > period {
			t.Errorf("watchdog pings %v apart, more than the %v period", gap, period)
		}
	}
}
