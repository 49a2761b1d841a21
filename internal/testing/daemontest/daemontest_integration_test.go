package daemontest_test

import (
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/daemontest"
	"github.com/mptcpgod/mptcpgod/policy"
)

func TestMain(m *testing.M) { os.Exit(daemontest.Main(m)) }

// config runs the daemon in kernel mode without a control socket.
const config = "mode = \"kernel\"\n\n[control]\nsocket = \"\"\n\n[links]\ninclude_kinds = [\"virtual\"]\n"

// TestStartStop: the binary starts in the host's namespace, is ready when
// Start returns (it said so on its notify socket; its log, read from a
// pipe, follows), has made its endpoint there, and exits 0 on Stop.
func TestStartStop(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 1)
	d := daemontest.Start(t, tb.Client, config)
	d.WaitLog(t, `msg="mptcpgod ready"`, 1)
	if d.Pid() <= 0 {
		t.Errorf("pid %d", d.Pid())
	}
	addr := tb.Links[0].Client4.String()
	if out := tb.Client.MustExec("ip", "mptcp", "endpoint", "show"); !strings.Contains(out, addr) {
		t.Errorf("no endpoint for %s in the daemon's namespace:\n%s", addr, out)
	}
	if code := d.Stop(t); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0", code)
	}
	select {
	case <-d.Done():
	default:
		t.Error("Done is open after Stop")
	}
	if err := d.Err(); err != nil {
		t.Errorf("Err = %v after a clean exit", err)
	}
}

// TestRun: the in-process daemon is ready when Run returns, in the mode
// of its configuration file, and stops once however often Stop is called.
func TestRun(t *testing.T) {
	t.Parallel()
	h := netnstest.NewHost(t, "inproc")
	r := daemontest.Run(t, h, config)
	st, err := r.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !st.Ready || r.Mode() != policy.ModeKernel {
		t.Errorf("ready %v in mode %v, want ready in kernel mode", st.Ready, r.Mode())
	}
	if _, err := os.Stat(r.ConfigFile); err != nil {
		t.Errorf("configuration file: %v", err)
	}
	r.Stop()
	r.Stop()
}

// TestProgramOnce: concurrent callers of one build get one binary.
func TestProgramOnce(t *testing.T) {
	t.Parallel()
	if os.Getenv(daemontest.BinaryEnv) != "" {
		t.Skip(daemontest.BinaryEnv + " names a prebuilt binary: nothing is built")
	}
	var wg sync.WaitGroup
	paths := make([]string, 3)
	for i := range paths {
		wg.Go(func() { paths[i] = daemontest.Binary(t, "mptcpctl") })
	}
	wg.Wait()
	if paths[0] != paths[1] || paths[1] != paths[2] {
		t.Fatalf("paths %v, want one", paths)
	}
	if fi, err := os.Stat(paths[0]); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("%s: %v, want an executable", paths[0], err)
	}
}
