// Package fullmesh is the "fullmesh" policy: every usable local address is
// used with every peer address. It is a base policy: it keeps what the
// policies before it in a chain proposed and adds to it.
//
// Options (JSON keys; an empty config gives these defaults):
//
//	role          "client"  kernel mode: endpoints are "subflow fullmesh" (client),
//	                        "signal" (server) or "signal subflow" (both; the kernel
//	                        refuses signal with fullmesh)
//	families      "both"    "both", "ipv4" or "ipv6"
//	max_subflows  8         userspace mode: subflows per client-side connection
//	                        besides the initial one, 1..8
//	announce      true      userspace mode: announce addresses on server-side connections
//	limits        {"subflows": 8, "add_addr_accepted": 8}
//	                        kernel mode: the in-kernel PM's limits, 0..8 each;
//	                        null leaves a limit as the kernel has it
//
// For example {"role": "server", "limits": {"add_addr_accepted": null}}.
//
// Only usable, global-unicast addresses of the configured families take
// part: loopback and link-local addresses never do. Where there are more
// addresses than room, fullmesh spreads over the links: it takes the first
// address of every link in interface-index order, then the second of
// every link, and so on, each link's addresses in address order (IPv4
// before IPv6). The result depends only on the sets in the view, never on
// their order.
//
// # Kernel mode
//
// Every usable address becomes an endpoint bound to its device (dev), with
// the flags of the role and Backup unset, until the plan holds the kernel's
// maximum of 8 endpoints. The limits are set from the configuration.
//
// # Userspace mode
//
// A client-side connection keeps its initial path while the initial
// address is usable (and re-creates it when the address comes back, unless
// the peer denies joins to its initial address and port). It then gets a
// path from every usable local address to every known peer address of the
// same family, initial and announced, never to the peer's initial address
// and port when the peer set deny-join-id0, up to max_subflows besides the
// initial path. When the pairs outnumber max_subflows, live subflows are
// kept first, then pairs that bring both a new local and a new peer
// address into use, then pairs that bring one, then the rest. New paths
// are not backup.
//
// A server-side connection does not open subflows: a peer's ports other
// than the ones it listens on are ephemeral, so the client opens them. It
// keeps the subflows the peer opened while their local addresses are
// usable, with their backup bits, and with announce it announces every
// usable address except the initial one (at most 8) to the peer.
package fullmesh
