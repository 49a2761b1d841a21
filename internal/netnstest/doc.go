// Package netnstest builds throw-away network hosts for tests that need the
// real kernel: each Host is a named network namespace (visible in
// `ip netns list`), hosts are wired together with veth pairs, and every
// namespace is removed by t.Cleanup.
//
// Namespaces are named "mgt-<pid>-<name>-<n>" so that parallel tests and
// parallel test binaries never collide, and so that a namespace left behind
// by a crashed test binary can be recognised: every NewHost deletes the
// "mgt-<pid>-*" namespaces whose pid is no longer alive.
//
// All helpers need root. Without it NewHost skips the test, unless the
// environment variable CI is "true", in which case it fails the test, so a
// green CI run always means the kernel was exercised.
//
// # Testbed
//
// NewTestbed builds two hosts, "cli" and "srv", joined by 1 to 3 veth links.
// Link i uses interface "eth<i>" on both sides:
//
//	        cli                                      srv
//	+------------------+                    +------------------+
//	| eth0 192.0.2.1   |--------------------| eth0 192.0.2.2   |
//	|      2001:db8:1::1                    |      2001:db8:1::2
//	| eth1 198.51.100.1|--------------------| eth1 198.51.100.2|
//	|      2001:db8:2::1                    |      2001:db8:2::2
//	| eth2 203.0.113.1 |--------------------| eth2 203.0.113.2 |
//	|      2001:db8:3::1                    |      2001:db8:3::2
//	+------------------+                    +------------------+
//
// All prefixes are /24 (IPv4) and /64 (IPv6); IPv6 addresses are added with
// nodad so they are usable at once. Interfaces have fixed MAC addresses
// (02:6d:67:<side>:00:<link>, side 1 client, 2 server) and each host has a
// permanent neighbour entry for its peer's addresses, so no ARP or neighbour
// discovery runs: the two directions of a link fail independently (Blackhole
// on one end) and traffic resumes at once when the qdisc is cleared. Setting
// an interface down flushes its entries; ARP and neighbour discovery then
// resolve the peer as usual.
//
// Routing, on both hosts and for both families:
//
//   - the main table has a default route via the peer's address on eth0;
//   - table 100+i has a default route via the peer's address on eth<i>,
//     selected by the rules "from <own address on eth<i>> lookup 100+i" and
//     "oif eth<i> lookup 100+i".
//
// So a socket bound to the address of eth<i>, or to the device eth<i>
// (SO_BINDTODEVICE), leaves through eth<i> and reaches every address of the
// other host; an unbound socket leaves through the link of the destination
// address, or eth0 when none matches.
//
// The server also has the rules "to <client address on eth<i>> lookup
// 100+i" (preference 1000, before the others), so it answers each client
// address through the link that address is on, whatever server address the
// client chose: the way replies reach a multihomed client through the
// client's provider. A subflow from the client's address on link i to any
// server address therefore runs over link i in both directions, and a
// socket bound to eth<i> on the client receives its replies.
//
// Every namespace starts with lo up, rp_filter off (all and default) and IPv6
// duplicate address detection off (accept_dad 0, all and default).
package netnstest
