// Package failover is mptcpgod's real-kernel failover scenario (Run),
// its test, and the stall figures internal/testing/bench reports from it.
//
// Each run builds a client and a server joined by two veth links (package
// netnstest): eth0 is the "wired" primary and eth1 the "cellular" backup.
// The client sends a paced stream of pseudo-random bytes (8 MiB/s for 6 s)
// from its eth0 address; the server times every read. Mid-transfer, eth0
// goes silent in both directions (the blackhole qdisc on both ends, as a
// link whose far end died would), and 1.5 s later it carries traffic
// again. A stall is a gap of 50 ms or more between two reads.
//
// Two path managers are compared on the same scenario:
//
//   - mptcpgod: the userspace path manager driven by pm.Engine with the
//     chain fullmesh | backup-cellular (eth1 named cellular, hold_time
//     1 s) and the health sampler (internal/health) feeding it, wired as
//     the daemon wires them;
//   - kernel-backup: the in-kernel path manager with a "subflow backup"
//     endpoint on eth1.
//
// Run builds the testbed, runs the scenario with one of them and returns
// its Outcome: every read of the receiver, the cut and the restore, and
// when the cellular subflow was promoted and demoted. TestFailover checks
// what must hold whatever the timing: the transfer completes and arrives
// intact, the cellular link carries almost nothing before the cut, its
// subflow is promoted during the cut and demoted after the primary is
// back. RunUserspace runs the same scenario with a userspace path manager
// the caller starts in the client namespace (a Starter) in place of the
// in-process engine: internal/testing/bench runs the mptcpgod binary with its
// configuration file that way. internal/testing/bench's BenchmarkFailover reports
// the stalls of every path manager (Outcome.Stalls).
package failover
