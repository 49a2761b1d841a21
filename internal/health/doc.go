// Package health samples how well the MPTCP subflows of a network
// namespace carry data, from the kernel's struct tcp_info (through
// internal/sockdiag), and reports it to the path-manager engine as
// pm.Health: each subflow's policy.Health, and each link's summary.
//
// A Sampler dumps the namespace's established MPTCP subflows every
// Config.Interval (25 ms by default) while there are any, and every
// Config.IdleInterval (500 ms) while there are none. It reports on
// Updates only when something changed: at once when a subflow or a link
// becomes stalled or stops being stalled, otherwise at most every
// Config.Refresh (1 s). Updates holds one report, the latest; a receiver
// that is slow misses intermediate reports, never the newest.
//
// # Stalls
//
// A subflow is stalled when it has data in flight (tcpi_unacked > 0) and
// nothing has acknowledged progress for longer than its stall threshold:
// the subflow's retransmission timeout, as TCP computed it before backing
// off (tcpi_rto >> tcpi_backoff), times Threshold.RTOFactor, kept within
// Threshold.Min and Threshold.Max. The time without progress runs from the
// later of the last ACK received (tcpi_last_ack_recv) and the last sample
// that saw nothing in flight, so a subflow that sends after being idle is
// not taken for stalled. A subflow stops being stalled when an ACK
// arrives or nothing is in flight. At the default factor of 1 this is the
// moment TCP itself decides a segment is lost: on a LAN, about 200 ms
// after the path went silent. When a subflow with data in flight is due to
// cross its threshold before the next sample, the sampler samples again
// just after that moment, so a stall is seen within about a millisecond
// rather than an interval.
//
// Only the sending side can tell: a subflow that only receives never has
// anything in flight and is never stalled.
//
// # Links
//
// A subflow belongs to the link it is bound to (SO_BINDTODEVICE, as the
// engine's subflows are), else to the link holding its local address. A
// link's health summarises its subflows: the smallest RTT and RTO, the
// largest loss and retransmission count, the unacknowledged segments
// summed, the most recent ACK and data. A link is stalled when at least one
// of its subflows is stalled and none of them received an ACK within its
// own threshold: an idle connection over the same dead link agrees, a
// connection that still gets ACKs over it does not. A link whose subflows
// are all gone keeps its last verdict while it is stalled (nothing has
// shown it works again) and is dropped from the report otherwise.
//
// # Cost
//
// A sample is one sock_diag dump of the namespace's established TCP
// sockets, filtered to MPTCP subflows while parsing: its cost grows with
// the number of TCP connections of the namespace. Subflows not bound to a
// device need the namespace's addresses, read over rtnetlink when an
// unknown local address shows up, at most once a second.
package health
