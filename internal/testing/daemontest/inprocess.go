package daemontest

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/mptcpgod/mptcpgod/internal/daemon"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/runtest"
	_ "github.com/mptcpgod/mptcpgod/plugins/all" // the daemon's compiled-in policies
)

// Version is the version an in-process daemon reports.
const Version = "v0.0.0-test"

// InProcess is the daemon (internal/daemon) run in the test process by Run.
type InProcess struct {
	*daemon.Daemon
	// ConfigFile is the configuration file it was started with and loads
	// again on a reload over its control socket.
	ConfigFile string

	run *runtest.Running
}

// Run runs the daemon in-process in h's namespace with the configuration
// text, written to a file, until the test ends, and waits until it is
// ready. It logs at info level into the test's log; Run's error fails the
// test.
func Run(t testing.TB, h *netnstest.Host, config string) *InProcess {
	t.Helper()
	r := &InProcess{ConfigFile: filepath.Join(t.TempDir(), "mptcpgod.toml")}
	if err := os.WriteFile(r.ConfigFile, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := daemon.Load(r.ConfigFile)
	if err != nil {
		t.Fatalf("daemontest: %v", err)
	}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo})).With("host", h.Name())
	d, err := daemon.New(cfg, daemon.Options{
		NetNS: h.NetNS(), Logger: log, Version: Version, ConfigFile: r.ConfigFile,
		LoadConfig: func() (*daemon.Config, error) { return daemon.Load(r.ConfigFile) },
	})
	if err != nil {
		t.Fatalf("daemontest: daemon.New: %v", err)
	}
	r.Daemon = d
	r.run = runtest.Run(t, "daemontest: daemon in "+h.Name(), d.Run)
	r.run.WaitReadyWithin(t, d.Ready(), ReadyTimeout)
	return r
}

// Stop stops the daemon and waits until Run returns; Run's error fails the
// test when it ends. The test's cleanup stops it too; only the first stop
// stops.
func (r *InProcess) Stop() { _ = r.run.Stop() }
