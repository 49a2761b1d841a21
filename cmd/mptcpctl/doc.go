// Command mptcpctl inspects and controls Multipath TCP on Linux.
//
// Its kernel commands work with or without the mptcpgod daemon: the
// in-kernel path manager's endpoints and limits, the MPTCP connections and
// their subflows (from sock_diag), the path-manager event stream, and the
// namespace's path manager. Every command prints a table, or documented JSON
// with --json; -n NAME acts in a named network namespace as ip -n does.
//
//	mptcpctl endpoints [show [ID]]
//	mptcpctl endpoints add ADDR [dev IFNAME] [id N] [port P] [signal] [subflow] [backup] [fullmesh] [laminar]
//	mptcpctl endpoints del ID|ADDR
//	mptcpctl endpoints set ID|ADDR backup|nobackup|fullmesh|nofullmesh
//	mptcpctl endpoints flush
//	mptcpctl limits [set [subflows N] [add-addr-accepted N]]
//	mptcpctl connections
//	mptcpctl subflows [TOKEN]
//	mptcpctl monitor
//	mptcpctl pm [kernel|userspace]
//
// Its daemon commands ask the mptcpgod daemon over its control socket
// (--socket PATH; package internal/ctlapi) for its own state and decisions;
// when the daemon is not running they say so in one line.
//
//	mptcpctl status
//	mptcpctl links
//	mptcpctl paths [TOKEN]
//	mptcpctl policies
//	mptcpctl reload
//	mptcpctl events
//
// Its run command gives a program that never asked for Multipath TCP
// MPTCP sockets, with no change to the program (package
// internal/transparent, seccomp user notification); the program keeps
// mptcpctl's pid and exits as it does.
//
//	mptcpctl run [--verbose] [--no-new-privs] [--] PROGRAM [ARGS...]
//	mptcpctl run --check
//
// Exit status is 0 on success, 1 when the kernel or the system refused (the
// kernel's reason is printed), and 2 on bad usage, in which case nothing was
// changed; run exits as its program does, or 125, 126 or 127 as env(1). docs/mptcpctl.md is the full reference, including the JSON fields;
// the man pages in docs/man are generated with `go generate`.
package main
