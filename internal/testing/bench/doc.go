// Package bench holds mptcpgod's real-kernel benchmarks (make bench) and the
// helpers that summarise and report them.
//
// Each benchmark builds a client and a server in network namespaces joined
// by two shaped veth links (package netnstest) and runs the path manager it
// measures in the client namespace: mptcpgod (the cmd/mptcpgod binary, built
// once per run), beside the references of the same run: the in-kernel path
// manager (the floor) and mptcpd from the Debian package (its addr_adv
// plugin, kernel mode) when it is installed.
//
// BenchmarkSubflow measures the time from a connection's ESTABLISHED event
// to the SUB_ESTABLISHED event of its extra subflow, as seen by a
// subscription of its own in the client namespace, for connections dialled
// one at a time and 32 in flight. BenchmarkReaction measures, in kernel
// mode, the time from adding an address (IPv4, and IPv6 without duplicate
// address detection in its -ipv6 runs) to a link to the path manager's
// endpoint for it being listed by the kernel, and from removing it to the
// endpoint being gone. Its mesh runs measure, in either mode, the time
// from adding an address to every one of 8 established connections
// having an established subflow from it (SUB_ESTABLISHED events read by a
// subscription of its own; also each connection on its own) and from
// removing it to all those subflows being closed (SUB_CLOSED), with fresh
// connections each repetition; its link runs time, the same way, the
// link set down to the subflows over it being closed on every connection
// and, once the link is up again with its route restored, to them being
// back. Both report p50, p90 and p99 in
// milliseconds (b.ReportMetric); BenchmarkSubflow also reports the connections per second it kept meshed
// and the path manager process's CPU seconds per 1,000 connections.
//
// BenchmarkFailover runs package failover's scenario (the primary link
// goes silent in both directions mid-transfer) with the mptcpgod binary
// and a configuration file (failover.RunUserspace), with mptcpgod's engine
// and health sampler alone in the benchmark process, and with the
// in-kernel path manager's backup endpoint, and reports the longest stall
// in the delivered data and the stalls after the first. BenchmarkAggregation
// reports one connection's throughput over both shaped links as a
// fraction of their sum. BenchmarkMemory reports the path manager
// process's resident memory idle and with 10,000 connections open (the
// server end of those runs in a child process: this test binary started
// with MPTCPGOD_BENCH_SERVER set).
//
// BenchmarkChurn looks for the highest rate of new connections each path
// manager keeps meshed with none missed and a p99 (established → extra
// subflow) under 10 ms. Its load generator is this test binary started
// in the client namespace with MPTCPGOD_BENCH_CHURN set to the step's
// load: an epoll loop per CPU of non-blocking MPTCP sockets that writes a byte
// on each once connected and resets it (SO_LINGER 0) as soon as its own
// event subscription reads the extra subflow's SUB_ESTABLISHED. A
// closed-loop step keeps 32 connections in flight; open-loop steps start
// connections on a schedule at a rising rate until one fails twice. It
// reports each step's rate, p50 and p99, the path manager's CPU seconds
// per 1,000 connections and the CPU shares of the path manager, the
// generator, the server and the whole machine (ChurnStep), which name
// what bounds the rate. docs/performance.md explains the method and its
// limits.
//
// BenchmarkTransparentSocket measures what `mptcpctl run` costs a program:
// one socket(AF_INET, SOCK_STREAM, 0) and close in a dynamically linked C
// loop (testdata/sockloop, built with cgo), unforced, asking IPPROTO_MPTCP
// itself, under mptcpize (mptcpd's LD_PRELOAD library, when installed) and
// under mptcpctl run, runs of each way interleaved so that the machine's
// other load falls on all of them. BenchmarkTransparentDownload runs the
// seed scenario: static busybox wget downloading from busybox httpd, both
// under mptcpctl run, over two 50 Mbit/s links, with no path manager
// acting and then meshed by mptcpgod, and reports each one's best rate.
//
// With -bench.report the benchmarks that ran are written, with the machine
// and the kernel, as Markdown and JSON to docs/bench (WriteReport),
// with a plot of the latency CDF of BenchmarkSubflow (WriteCDF):
//
//	go test ./internal/testing/bench -run '^$' -bench . -bench.report
package bench
