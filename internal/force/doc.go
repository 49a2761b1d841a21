// Package force makes systemd services MPTCP without changing them: the
// unit names it accepts, the cgroup a unit's processes run in (which the
// BPF mechanism selects, package transparent/bpf), and the drop-in that
// runs a service's own command line through `mptcpctl run` where BPF is
// unavailable.
//
// # The drop-in
//
// DropIn reads a service's effective ExecStart= lines from its unit file
// and drop-ins (ExecStarts, with systemd's rules: an empty ExecStart=
// resets the list, a backslash continues a line, comments are skipped),
// and writes a drop-in that resets ExecStart= and lists each command
// again behind `mptcpctl run --`. Each line keeps its prefixes (-, :, +,
// !, !!), its quoting, its specifiers and its variables as written: the
// original text follows `mptcpctl run --` unchanged, so systemd expands
// it as before, and the program runs as the service's main process with
// the same PID, type and notification socket. A line with @ (an argv[0]
// of its own) or | (a shell command line, systemd 258) is refused, as
// `mptcpctl run` cannot pass them on.
//
// The drop-in is called DropInName, which sorts after the drop-ins
// systemctl edit writes (override.conf), so that it applies last.
package force
