// Package sockdiag lists Multipath TCP connections and their subflows through
// the kernel's sock_diag netlink interface (NETLINK_SOCK_DIAG).
//
// Connections come from the MPTCP socket diag module (mptcp_diag,
// CONFIG_INET_MPTCP_DIAG): one record per MPTCP socket with its token,
// addresses and struct mptcp_info counters. Subflows come from the TCP socket
// dump: every TCP socket whose upper-layer protocol (ULP) is "mptcp", with the
// token of the connection it belongs to, the local and remote address IDs, the
// subflow flags and struct tcp_info. Join the two on Subflow.Token ==
// Connection.Token. The same dump gives the other TCP sockets, the plain
// ones of programs that never asked for MPTCP, with their owners
// (TCPSockets): what a service forced to MPTCP opened before it was.
//
// Walks stream: the callback receives one record at a time while the dump is
// read datagram by datagram, so memory does not grow with the number of
// sockets. Both IPv4 and IPv6 sockets are walked; IPv4-mapped IPv6 addresses
// are reported as IPv4.
//
// The kernel lets unprivileged users read all of this. Without CAP_NET_ADMIN
// the kernel leaves out the subflow sequence-mapping attributes, which this
// package does not report anyway; tokens, IDs and flags stay visible.
//
// # Owners
//
// Every MPTCP socket reports who owns it: Connection.UID is the socket's
// sk_uid (inet_diag_msg idiag_uid, in the reader's user namespace) and
// Connection.CgroupID the id of its cgroup v2 (INET_DIAG_CGROUP_ID,
// Linux 5.8, earlier than MPTCP's socket diag, 5.9). The kernel sends the
// cgroup id with every reply, unasked, when it has CONFIG_SOCK_CGROUP_DATA
// (every kernel with cgroup BPF, which systemd uses); CgroupID is 0
// otherwise. Both are set when the socket is created: the uid is the
// creating task's fsuid, the cgroup its cgroup then, kept when the
// process later moves. A connection this host accepted is a clone of its
// listener and starts with the listener's uid and cgroup; accept() then
// sets the uid to the fsuid of the task that accepts (sock_graft), and
// leaves the cgroup. Before Linux 6.17 the uid sock_diag reports is the
// socket file's (sock_i_uid): root for a connection nobody accepted yet,
// which has no file (Inode 0). TestOwner and TestOwnerAccept show both
// sides.
//
// Kernel structures are decoded by length: older kernels send shorter
// struct mptcp_info and struct tcp_info, and the fields they lack stay zero
// (MPTCPInfo.Size and TCPInfo.Size tell how many bytes the kernel sent).
package sockdiag
