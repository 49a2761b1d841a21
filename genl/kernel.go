package genl

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Capability is a behaviour of the kernel's MPTCP (its path manager,
// its sysctls, its sock_diag) that mptcpgod uses and that older kernels
// lack. The compatibility matrix
// (docs/compatibility.md) tests each one on every kernel it covers.
type Capability struct {
	// ID names it in JSON ("conn-addr-dump").
	ID string `json:"id"`
	// Name says what it is, for logs and `mptcpctl status`.
	Name string `json:"name"`
	// Since is the first Linux release that has it ("6.9").
	Since string `json:"since"`
	// Without says what mptcpgod does on a kernel that lacks it.
	Without string `json:"without"`
}

// The capabilities, oldest first. Kernel.Missing lists those the running
// kernel lacks.
var (
	// CapUserspacePM: the userspace path manager (net.mptcp.pm_type,
	// ANNOUNCE, REMOVE, SUBFLOW_CREATE, SUBFLOW_DESTROY).
	CapUserspacePM = Capability{ID: "userspace-pm", Name: "userspace path manager", Since: "5.19",
		Without: "mode userspace is refused; mode kernel works"}
	// CapListenerEvents: LISTENER_CREATED and LISTENER_CLOSED events.
	CapListenerEvents = Capability{ID: "listener-events", Name: "listener events", Since: "6.2",
		Without: "none needed: mptcpgod does not use them"}
	// CapConnBytes: struct mptcp_info's byte counters (bytes_sent,
	// bytes_received, ...), read through sock_diag.
	CapConnBytes = Capability{ID: "conn-bytes", Name: "byte counters of connections (mptcp_info)", Since: "6.5",
		Without: "a policy's join_bytes has no effect (deferred joins wait for join_delay) and mptcpctl connections shows 0 bytes"}
	// CapSchedulers: net.mptcp.scheduler and available_schedulers.
	CapSchedulers = Capability{ID: "schedulers", Name: "packet schedulers (net.mptcp.scheduler)", Since: "6.6",
		Without: "none needed: mptcpgod leaves the scheduler alone"}
	// CapConnAddrDump: GET_ADDR with a token, the local address list of a
	// userspace-PM connection.
	CapConnAddrDump = Capability{ID: "conn-addr-dump", Name: "per-connection address dump", Since: "6.9",
		Without: "after a restart in userspace mode the local address ids of existing connections are learnt from their subflows only, and kernel-PM connections are told apart by the kernel's refusal of a first command; mptcpctl connections shows their path manager as unknown"}
	// CapSubflowFlags: SUBFLOW_CREATE honours the backup flag and the
	// interface index.
	CapSubflowFlags = Capability{ID: "subflow-flags", Name: "backup flag and device of created subflows", Since: "6.9",
		Without: "a subflow is created unbound and then marked backup with SET_FLAGS once established"}
	// CapPathManagerSysctl: net.mptcp.path_manager.
	CapPathManagerSysctl = Capability{ID: "path-manager-sysctl", Name: "net.mptcp.path_manager", Since: "6.15",
		Without: "net.mptcp.pm_type is read and set instead"}
	// CapUnprivSubflowInfo: sock_diag gives a subflow's MPTCP details
	// (token, ids, flags) to users without CAP_NET_ADMIN.
	CapUnprivSubflowInfo = Capability{ID: "unpriv-subflow-info", Name: "subflow details for unprivileged users (sock_diag)", Since: "6.15",
		Without: "none for the daemon (root); mptcpctl subflows and connections show no subflows to other users"}
	// CapLaminar: laminar endpoints.
	CapLaminar = Capability{ID: "laminar", Name: "laminar endpoints", Since: "6.18",
		Without: "an endpoint a policy wants laminar is added without the flag, with a warning; mptcpctl endpoints add ... laminar is refused"}
	// CapServerSideFlag: the server-side bit of the event flags.
	CapServerSideFlag = Capability{ID: "server-side-flag", Name: "server-side event flag", Since: "6.18",
		Without: "none needed: the older SERVER_SIDE attribute says the same"}
)

// Capabilities are all capabilities, oldest first. Those not probed are
// told by the kernel's release, so only new features are listed, never
// fixes that stable kernels take: id 0 in SUBFLOW_CREATE came with 6.7
// and is in Debian's 6.1, which a release cannot tell.
var Capabilities = []Capability{
	CapUserspacePM, CapListenerEvents, CapConnBytes, CapSchedulers, CapConnAddrDump, CapSubflowFlags,
	CapPathManagerSysctl, CapUnprivSubflowInfo, CapLaminar, CapServerSideFlag,
}

// Kernel is what the running kernel's MPTCP offers mptcpgod.
type Kernel struct {
	// Release is the kernel's release, as uname -r prints it.
	Release string `json:"release"`
	// Missing are the capabilities it lacks, oldest first.
	Missing []Capability `json:"missing"`
}

// Has reports whether the kernel has the capability.
func (k Kernel) Has(c Capability) bool {
	return !slices.ContainsFunc(k.Missing, func(m Capability) bool { return m.ID == c.ID })
}

// ParseRelease returns the major and minor version of a kernel release
// such as "6.1.0-57-amd64" or "6.18.44-fc".
func ParseRelease(release string) (major, minor int, err error) {
	majS, rest, ok := strings.Cut(release, ".")
	if !ok {
		return 0, 0, fmt.Errorf("genl: kernel release %q: want MAJOR.MINOR, such as 6.1.0-57-amd64", release)
	}
	end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(rest)
	}
	major, err1 := strconv.Atoi(majS)
	minor, err2 := strconv.Atoi(rest[:end])
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("genl: kernel release %q: want MAJOR.MINOR, such as 6.1.0-57-amd64", release)
	}
	return major, minor, nil
}

// releaseHas reports whether a release is at least the capability's
// Since; an unparsable release is taken as new.
func releaseHas(release string, c Capability) bool {
	major, minor, err := ParseRelease(release)
	if err != nil {
		return true
	}
	smaj, smin, err := ParseRelease(c.Since)
	if err != nil {
		panic("genl: capability " + c.ID + ": bad Since " + c.Since)
	}
	return major > smaj || major == smaj && minor >= smin
}

// probes say how a capability was detected: by what the kernel offers
// where that can be seen, by its release otherwise.
type probes struct {
	release string
	// sysctl reports whether net.mptcp.<name> exists.
	sysctl func(name string) bool
	// commands are the family's commands.
	commands []Command
	// connAddrDump reports whether a per-connection address dump is
	// answered as one (true), ignored (false), or could not be probed.
	connAddrDump func() (bool, error)
}

// detect returns the kernel's missing capabilities.
func (p probes) detect() Kernel {
	k := Kernel{Release: p.release}
	for _, c := range Capabilities {
		var has bool
		switch c.ID {
		case CapUserspacePM.ID:
			has = p.sysctl("pm_type") && slices.Contains(p.commands, CmdSubflowCreate)
		case CapSchedulers.ID:
			has = p.sysctl("scheduler")
		case CapPathManagerSysctl.ID:
			has = p.sysctl("path_manager")
		case CapConnAddrDump.ID:
			ok, err := p.connAddrDump()
			has = ok
			if err != nil {
				has = releaseHas(p.release, c)
			}
		default:
			has = releaseHas(p.release, c)
		}
		if !has {
			k.Missing = append(k.Missing, c)
		}
	}
	return k
}
