package daemon_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/daemontest"
	"github.com/mptcpgod/mptcpgod/internal/testing/enginetest"
)

// TestExecPolicyDecides: a chain with an exec policy, configured in the
// daemon's TOML, runs the program and the engine decides with it: the
// example policy drops the cellular link (eth1, named cellular in the
// configuration), which fullmesh alone gives an endpoint.
func TestExecPolicyDecides(t *testing.T) {
	t.Parallel()
	tb, r := startExecChain(t, "")
	defer r.Stop()
	l0, l1 := tb.Links[0], tb.Links[1]

	waitEndpoints(t, tb.Client, l0.Client4)
	enginetest.PollWithin(t, pythonStartLimit, "the cellular endpoint withdrawn by the exec policy", func() string {
		if eps := endpoints(t, tb.Client); eps[l1.Client4.String()] != "" {
			return fmt.Sprint(eps)
		}
		return ""
	})
	st, err := r.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(st.Policy, "exec") {
		t.Errorf("status policy %q, want the chain with exec", st.Policy)
	}
	if eps := endpoints(t, tb.Client); !owned(eps[l0.Client4.String()]) {
		t.Errorf("endpoints %v, want mptcpgod's for %s", eps, l0.Client4)
	}
}

// TestExecPolicyReadyRedecides: an exec child that takes a second to
// answer leaves the rest of the chain deciding meanwhile (fullmesh gives
// eth1 an endpoint); once the child is up, the engine decides again on
// the policy's OnReady, with no change on the host to prompt it, and the
// cellular endpoint goes.
func TestExecPolicyReadyRedecides(t *testing.T) {
	t.Parallel()
	tb, r := startExecChain(t, "sleep 1.5; ")
	defer r.Stop()
	l0, l1 := tb.Links[0], tb.Links[1]

	waitEndpoints(t, tb.Client, l0.Client4, l1.Client4)
	enginetest.PollWithin(t, pythonStartLimit, "the cellular endpoint withdrawn once the exec child is up", func() string {
		if eps := endpoints(t, tb.Client); eps[l1.Client4.String()] != "" {
			return fmt.Sprint(eps)
		}
		return ""
	})
}

// pythonStartLimit bounds the wait for the exec child, python3: behind a
// pyenv shim on a loaded machine it can take tens of seconds to start.
var pythonStartLimit = netnstest.Patience(2 * time.Minute)

// startExecChain starts the daemon in kernel mode on a two-link testbed
// with the chain fullmesh | exec, the exec policy running the example
// prefer_wired.py that drops the cellular link (eth1), started by
// /bin/sh after the shell commands first.
func startExecChain(t *testing.T, first string) (*netnstest.Testbed, *daemontest.InProcess) {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3: %v (make test installs it: internal/testing/prereqs.sh)", err)
	}
	_, file, _, _ := runtime.Caller(0)
	example := filepath.Join(filepath.Dir(file), "..", "..", "docs", "examples", "prefer_wired.py")

	tb := netnstest.NewTestbed(t, 2)
	r := daemontest.Run(t, tb.Client, fmt.Sprintf(`mode = "kernel"
set_path_manager = true

[control]
socket = ""

[links]
include_kinds = ["virtual", "cellular"]
cellular_names = ["eth1"]

[[policy.chain]]
name = "fullmesh"
config = { families = "ipv4" }

[[policy.chain]]
name = "exec"
config = { command = ["/bin/sh", "-c", %q, %q, %q, "--drop", "cellular"] }
`, first+`exec "$0" "$@"`, python, example))
	return tb, r
}
