// Package linkmon watches the links, addresses and routes of one network
// namespace over rtnetlink and reports them as typed, debounced Deltas: which
// addresses became usable as MPTCP endpoints, which stopped being usable and
// why, and which links appeared, disappeared or changed.
//
// A Monitor subscribes to link, address and route changes, then lists what
// exists, and keeps a model of the namespace. Run delivers a first Delta with
// Initial set once the existing state is loaded (Ready is closed then), and
// one Delta per settled change after that. A change that leaves the State as
// it was (a duplicate message, a flag set and cleared, a route deleted and
// added back within the settle window) produces no Delta. When the kernel
// drops messages (ENOBUFS), the monitor subscribes again and re-lists
// everything; the next Delta compares against what the receiver last got.
//
// # Debouncing
//
// Only the changes that later messages may complete wait. A change complete
// by itself is reported at once, together with the messages already queued
// behind it:
//
//   - an address added usable, or deleted, but for a usable IPv6 address
//     (its local, prefix and broadcast routes come with it, in either
//     order, but do not count);
//   - a link going down or away (the kernel then deletes its IPv6 addresses
//     and routes, which nothing in the burst can bring back);
//   - a route added that gives an up link its first route of a family (one
//     RTM_NEWROUTE), or a route deleted from a link that is down.
//
// Any other change opens its link: a link coming up (the kernel sends the
// connected routes it adds back before the link message, and the oper state
// goes through lower-layer-down), an address not usable yet (its link or
// route may follow), a usable IPv6 address deleted (the kernel deletes them
// when their link goes down, and the link socket may deliver the link's
// message after them: reported alone, the deletion would show a State that
// never was), a route deleted from an up link (it may be replaced by the next
// message), a route listing that gives a link a route. The monitor then
// reports Config.Settle (1 ms by default) after the last message of the
// burst, and at most Config.MaxSettle (20 ms) after its first, unless every
// open link has gone down or away in the meantime: the route socket may
// deliver the deletion of a link's routes before the link socket delivers
// its down. The rule never reports an address usable before its link is up
// and routed (those are conditions of Usable), and the window keeps a route
// replaced by a deletion and an addition from flapping.
//
// A shorter window would save nothing: a Go timer of less than a
// millisecond fires after about 1.09 ms in an idle process (the runtime's
// netpoller waits in whole milliseconds), so only reporting at once gains.
//
// Events never blocks the monitor: a receiver that is slow gets one Delta
// that sums up everything since the last one it took.
//
// # Kinds
//
// Each link gets a Kind, by the first rule that applies:
//
//   - loopback: IFF_LOOPBACK or ARPHRD_LOOPBACK;
//   - cellular: the name matches Config.CellularNames;
//   - the rtnetlink link type: veth, netkit, bridge, tun/tap, wireguard,
//     vxlan, geneve, macvlan, ipvlan, dummy, ifb, vrf, GRE, IPIP, SIT, VTI,
//     xfrm, macsec and other tunnels are virtual; bond and team are wired;
//     wwan (the kernel's WWAN framework) is cellular;
//   - sysfs DEVTYPE: wwan is cellular, wlan is wifi; a wireless or phy80211
//     directory means wifi;
//   - a vlan has the kind of the link it sits on;
//   - ARPHRD_NONE or ARPHRD_RAWIP (raw-IP modems) is cellular;
//   - any other Ethernet device of a driver is wired;
//   - anything else is unknown.
//
// sysfs shows the devices of the network namespace it was mounted in, so for
// a monitor of another namespace (Config.NetNS) its facts are used only when
// the ifindex and hardware address under /sys/class/net/NAME match the link.
//
// # Filters
//
// Config.ExcludeNames, then Config.IncludeNames, then the excluded kinds
// (virtual and loopback by default), then Config.IncludeKinds decide whether
// a link is included. Addresses of excluded links are listed but not usable.
//
// # Usable addresses
//
// An address is usable when every check below passes; the first that fails
// is its Reason:
//
//   - its link is known ("unknown link") and included (the filter's reason,
//     e.g. "excluded by kind virtual");
//   - it is not loopback ("loopback"), link-local ("link-local"), multicast
//     ("not unicast"), an IPv6 unique local address ("ula", unless
//     Config.IncludeULA) or an IPv6 temporary address ("temporary", unless
//     Config.IncludeTemporary);
//   - its scope is global ("scope host", "scope link", ...);
//   - its link is up: oper state up, or unknown with IFF_UP and IFF_LOWER_UP
//     ("link down");
//   - duplicate address detection neither failed ("dad failed") nor is still
//     running ("tentative", including optimistic addresses), and it is not
//     deprecated ("deprecated");
//   - its link has a route for its family ("no route").
//
// # Routes
//
// A link has a route for a family when a route of that family, in any
// routing table but local, is a unicast route whose output device (or one of
// whose multipath next hops) is the link, and that reaches beyond the link's
// own subnets: it is a default route, it goes through a gateway, or it was
// not added by the kernel (any protocol but "kernel": static, boot, dhcp, ra,
// ...). The prefix routes the kernel adds for each address count only with
// Config.ConnectedRoutes. Policy rules are not evaluated: a default route in
// any table counts, as a table selected by "from ADDRESS" rules is the usual
// way to route a second uplink. Routes through nexthop objects (RTA_NH_ID)
// have no output device in the message and do not count.
//
// The kernel flushes the IPv4 routes of a link set administratively down
// without sending RTM_DELROUTE (IPv6 sends them, and removes the link's
// addresses). It does the same when the last IPv4 address of a link is
// deleted (fib_inetaddr_event calls fib_disable_ip): every IPv4 route
// through the link goes, the default route via a gateway of the address's
// subnet included; deleting an IPv6 address leaves the link's routes. The
// monitor drops them too, so when the link comes back up, or the address
// comes back, its IPv4 addresses stay "no route" until someone adds the
// routes again, as NetworkManager or a DHCP client does.
// After a link change and after an IPv4 address deletion it also lists the
// routes again, because the link, address and route messages arrive on
// separate sockets whose order is lost, and because other routes may go
// silently with an address (those whose preferred source it was, on kernels
// older than 2023). The listing runs beside the link and address messages,
// which it does not hold up (an address added right after a deletion is
// reported as fast as any), and a burst of changes costs at most two
// listings.
package linkmon
