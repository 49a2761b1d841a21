// Package peeraddr decides which addresses the peer of an MPTCP
// connection may make this host connect to.
//
// A peer announces addresses (ADD_ADDR) of its choosing, and a path
// manager that follows them opens MP_JOIN SYNs to them. RFC 6181 §4 and
// RFC 8684 §5 warn about the attack: a server steers its clients into
// probing or flooding third parties, the clients' own networks
// included. Classify says what kind of address an address is, and
// Config.Check whether a connection may follow an announced address:
//
//   - never to an unspecified, loopback, link-local, multicast, broadcast
//     (255.255.255.255, or the directed broadcast of one of this host's
//     IPv4 subnets) or reserved address, nor to one of this host's own
//     addresses;
//   - never to an address more private than the connection's initial
//     peer address: a public peer cannot lead into private (RFC 1918),
//     shared (RFC 6598, carrier-grade NAT) or unique local (fc00::/7)
//     space;
//   - only to the connection's own port, unless Config.Ports lists the
//     announced one or Config.AnyPort is set;
//   - never into a prefix of Config.Deny; and when Config.Allow is not
//     empty, only into its prefixes, which may then be more private than
//     the initial peer address.
//
// The documentation ranges (192.0.2.0/24, 198.51.100.0/24,
// 203.0.113.0/24, 2001:db8::/32) are public here, as the test networks
// that use them are. An IPv6 address of the NAT64 well-known prefix
// (64:ff9b::/96) is classed by the IPv4 address it embeds, which a NAT64
// gateway would connect to.
//
// The package decides only; the path-manager engine (package pm) asks it
// for every address a peer announces and counts the tries of the paths
// it follows (Config.Tries).
package peeraddr
