package daemon

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/pm"
	"github.com/mptcpgod/mptcpgod/policy"
)

// Other MPTCP managers, by their process names (/proc/PID/comm).
const (
	networkManager = "NetworkManager"
	mptcpd         = "mptcpd"
)

// Fixes logged when another manager is found.
const (
	fixNetworkManager = `to leave MPTCP to mptcpgod, write "[connection]" and "connection.mptcp-flags=0x1" ` +
		`(two lines) to /etc/NetworkManager/conf.d/90-mptcpgod.conf, run "systemctl restart NetworkManager", ` +
		`and delete the endpoints it added with "ip mptcp endpoint delete id ID"`
	fixMptcpd  = `run "systemctl disable --now mptcp.service" (mptcpd's unit): two path managers act on the same connections`
	fixForeign = `delete them with "ip mptcp endpoint delete id ID" and stop what adds them, ` +
		`or widen [kernel] owned_ids if mptcpgod added them`
)

// processes returns which of names run on the host, from the comm files
// under procDir (/proc).
func processes(procDir string, names ...string) []string {
	comms, _ := filepath.Glob(filepath.Join(procDir, "[0-9]*", "comm"))
	var found []string
	for _, f := range comms {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the process exited
		}
		name := strings.TrimSpace(string(b))
		if slices.Contains(names, name) && !slices.Contains(found, name) {
			found = append(found, name)
		}
	}
	slices.Sort(found)
	return found
}

// foreignEndpoints returns the endpoints outside owned, but the kernel's
// implicit ones: those take part in no connection of their own (they
// only number an address a subflow used), and the engine replaces those
// on addresses the policy wants.
func foreignEndpoints(eps []genl.Endpoint, owned pm.IDRange) []genl.Endpoint {
	var out []genl.Endpoint
	for _, ep := range eps {
		if !owned.Contains(ep.ID) && ep.Flags&genl.FlagImplicit == 0 {
			out = append(out, ep)
		}
	}
	return out
}

// warnCoexistence logs a warning, with the fix, for each other MPTCP
// manager on the host: NetworkManager (its endpoints compete with ours in
// kernel mode), mptcpd (in either mode), and endpoints mptcpgod does not
// own (kernel mode). It returns the warnings' messages.
func warnCoexistence(log *slog.Logger, mode policy.Mode, procs []string, foreign []genl.Endpoint) []string {
	var warned []string
	warn := func(msg string, args ...any) {
		log.Warn(msg, args...)
		warned = append(warned, msg)
	}
	if slices.Contains(procs, mptcpd) {
		warn("mptcpd is running", "fix", fixMptcpd)
	}
	if mode != policy.ModeKernel {
		return warned
	}
	if slices.Contains(procs, networkManager) {
		warn("NetworkManager is running and may add MPTCP endpoints of its own", "fix", fixNetworkManager)
	}
	if len(foreign) > 0 {
		descs := make([]string, len(foreign))
		for i, ep := range foreign {
			descs[i] = fmt.Sprintf("id %d %s (%s)", ep.ID, ep.Addr, ep.Flags)
		}
		warn("endpoints mptcpgod does not own take part in every connection",
			"endpoints", strings.Join(descs, ", "), "fix", fixForeign)
	}
	return warned
}
