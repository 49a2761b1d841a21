package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/nmmetered"
	"github.com/mptcpgod/mptcpgod/internal/sockdiag"
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
	fixMptcpd   = `run "systemctl disable --now mptcp.service" (mptcpd's unit): two path managers act on the same connections`
	fixListener = `if it is mptcpd, run "systemctl disable --now mptcp.service": two path managers act on the same connections; ` +
		`a monitor (ip mptcp monitor, mptcpctl monitor) only watches`
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

// managers are the other MPTCP managers found on the host.
type managers struct {
	// procs are the names of the managers' processes seen under /proc
	// (none under the unit's ProtectProc=invisible).
	procs []string
	// networkManager reports NetworkManager on the system bus.
	networkManager bool
	// listeners are the other sockets of the namespace that joined the
	// path manager's events group, as "port PORTID (COMM)".
	listeners []string
}

// busTimeout bounds the question to the system bus.
const busTimeout = 2 * time.Second

// findManagers looks for other MPTCP managers in ways a sandboxed daemon
// can: NetworkManager by its name on the system bus, anything that
// follows the path manager (mptcpd, ip mptcp monitor) by the sockets of
// the namespace netns that joined its events group (the kernel's own
// state), and both by their processes when /proc shows them. The daemon's
// own subscription must not exist yet. What cannot be asked is left out.
func findManagers(log *slog.Logger, procDir string, netns int, eventsGroup uint32) managers {
	m := managers{procs: processes(procDir, networkManager, mptcpd)}
	nm := nmmetered.New(&nmmetered.Config{Timeout: busTimeout})
	up, err := nm.Running(context.Background())
	if err != nil {
		log.Debug("cannot ask the system bus about NetworkManager", "error", err)
	}
	m.networkManager = up || slices.Contains(m.procs, networkManager)
	_ = nm.Close()
	if eventsGroup == 0 {
		return m
	}
	if m.listeners, err = eventListeners(procDir, netns, eventsGroup); err != nil {
		log.Debug("cannot list who follows the path-manager events", "error", err)
	}
	return m
}

// eventListeners describes the generic netlink sockets of the namespace
// that joined group.
func eventListeners(procDir string, netns int, group uint32) ([]string, error) {
	d, err := sockdiag.Dial(&sockdiag.Config{NetNS: netns})
	if err != nil {
		return nil, err
	}
	defer d.Close()
	var out []string
	err = d.NetlinkSockets(unix.NETLINK_GENERIC, func(s *sockdiag.NetlinkSocket) error {
		if !s.Joined(group) {
			return nil
		}
		desc := "port " + strconv.FormatUint(uint64(s.PortID), 10)
		// The port id of a process's first socket is its pid.
		if b, err := os.ReadFile(filepath.Join(procDir, strconv.FormatUint(uint64(s.PortID), 10), "comm")); err == nil {
			desc += " (" + strings.TrimSpace(string(b)) + ")"
		}
		out = append(out, desc)
		return nil
	})
	return out, err
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
// kernel mode), mptcpd (in either mode), another program that follows
// the path manager's events (mptcpd under a sandbox that hides its
// process, or a monitor), and endpoints mptcpgod does not own (kernel
// mode). It returns the warnings' messages.
func warnCoexistence(log *slog.Logger, mode policy.Mode, found managers, foreign []genl.Endpoint) []string {
	var warned []string
	warn := func(msg string, args ...any) {
		log.Warn(msg, args...)
		warned = append(warned, msg)
	}
	if slices.Contains(found.procs, mptcpd) {
		warn("mptcpd is running", "fix", fixMptcpd)
	}
	if len(found.listeners) > 0 && !slices.Contains(found.procs, mptcpd) {
		warn("another program follows the MPTCP path manager's events in this namespace: mptcpd, or a monitor such as ip mptcp monitor",
			"sockets", strings.Join(found.listeners, ", "), "fix", fixListener)
	}
	if mode != policy.ModeKernel {
		return warned
	}
	if found.networkManager {
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
