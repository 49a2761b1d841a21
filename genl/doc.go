// Package genl is a typed client of the Linux Multipath TCP path-manager
// generic netlink family, "mptcp_pm".
//
// It covers the in-kernel path manager's endpoints and limits, the userspace
// path manager's per-connection commands (announce, remove, subflow create
// and destroy, backup changes, address dumps), the event stream, feature
// detection and the namespace's path-manager sysctl. Addresses are net/netip
// values; nothing in the API is raw bytes. Errors from the kernel are *Error
// values carrying the errno and the kernel's extended-ack text.
//
// A Client acts in the network namespace it was created in: create it on a
// thread that has entered the namespace and it stays there.
package genl
