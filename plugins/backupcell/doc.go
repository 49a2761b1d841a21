// Package backupcell is the "backup-cellular" policy: paths over cellular
// links are backup paths, promoted at once when a connection has no
// working path over another link, and demoted again once such a path has
// worked for a while. It is a modifier: it runs after a base policy
// (fullmesh) and changes what that proposed.
//
// Options (JSON keys; an empty config gives these defaults):
//
//	cellular_names  []      interface-name globs (path.Match: "wwan*", "usb0") of
//	                        links that are cellular besides those the link monitor
//	                        finds cellular (kind "cellular")
//	hold_time       "2s"    how long a primary path must have worked, without a
//	                        stall, since it last failed or came back before the
//	                        cellular paths are demoted to backup again; "0s"
//	                        demotes as soon as one works
//	close_dead      true    userspace mode: leave out a primary path whose subflow
//	                        is stalled, so the engine closes it and its data is
//	                        sent again at once over the others
//	backup_at_once  false   userspace mode: open the cellular backup paths at once,
//	                        whatever deferral (join_delay, join_bytes) the base
//	                        policy gave them, so a young connection has its backup
//	                        subflow up before it needs it
//
// For example {"cellular_names": ["wwan*", "rmnet*"], "hold_time": "5s"}.
//
// A link is cellular when its kind is cellular or its name matches
// cellular_names; a path or endpoint is over the link of its interface,
// else over the link of its local address. Every other link is primary.
//
// # Working primary
//
// A primary path works when its address and link are usable, its subflow
// is established (userspace mode) and neither the subflow nor the link is
// stalled (policy.Health.Stalled, from the health sampler: data in flight
// and no ACK for about an RTO). It has worked since the latest of: its
// link coming up (Link.Changed), its address becoming usable
// (LocalAddr.Changed), the end of its last stall (Health.StalledChanged of
// the subflow and of the link) and, for a subflow other than the
// connection's initial one, the subflow being established. The cellular
// paths are promoted (not backup) unless some primary path has worked for
// hold_time. So a failure promotes at once; a demotion needs a primary
// path that has worked, continuously, for hold_time: a primary that fails
// again within hold_time keeps the cellular paths promoted, and a
// promotion lasts at least hold_time. Times the view does not know (zero)
// count as long ago, so a primary that was up when the daemon started is
// taken as working.
//
// The decision depends on View.Now, so it changes with time alone: the
// engine re-evaluates connections when health reports change what they
// see, which the health sampler sends at least every refresh period while
// there are subflows. Without the health sampler there are no stalls: the
// policy still promotes when a primary address or link goes away or its
// subflow closes, and demotes at the next event after hold_time.
//
// # Deferred joins
//
// A base policy may defer a connection's extra paths while it is young
// (fullmesh's join_delay and join_bytes, policy.Deferral). A cellular
// path that is promoted is the connection's way out and is never
// deferred: a primary that fails while the connection is young brings
// the cellular path up at once, after one handshake over the cellular
// link. With backup_at_once a cellular path kept as backup is not
// deferred either, so the connection has its backup subflow up from the
// start and a failover does not even wait for that handshake; the price
// is a cellular join on every short connection, which deferral exists to
// avoid, so it is off by default. The engine's own floor (mptcpgod's
// [mitigation] min_join_age) still applies.
//
// # Kernel mode
//
// Endpoints on cellular links get the backup flag; the rest of each
// endpoint is left as proposed. When no usable address of a primary link
// has worked for hold_time (the address gone, the link down, or the link
// stalled), the cellular endpoints lose the backup flag: the kernel then
// sends MP_PRIO on the subflows that use them, in every connection. The
// in-kernel path manager decides on its own when to stop using a stale
// primary subflow.
//
// # Userspace mode
//
// Paths over cellular links are backup unless promoted; the engine sets
// the bit of existing subflows in place (MP_PRIO). A connection is
// promoted when none of its primary paths has worked for hold_time: its
// subflows are stalled or closed, its addresses gone, its links down. With
// close_dead, on a client-side connection, a primary path whose subflow is
// stalled is left out of the plan while another subflow of the connection
// is established and not stalled: the engine clears the cellular path's
// backup bit, then closes the dead subflow (the initial one included), and
// the kernel sends its unacknowledged data again at once over the others
// instead of waiting for its own stale-subflow detection. The base policy
// proposes the path again once the subflow is gone, so the engine opens a
// new subflow over the primary link; it comes up when the link carries
// traffic again, and hold_time after that the cellular paths are demoted.
package backupcell
