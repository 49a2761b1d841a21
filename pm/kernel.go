package pm

import (
	"context"
	"net/netip"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/policy"
)

// Kernel is the part of the kernel's mptcp_pm family the engine uses.
// *genl.Client satisfies it; tests use a fake. The engine gives every
// worker a Kernel of its own, so an implementation needs no locking for
// one caller at a time.
type Kernel interface {
	Endpoints() ([]genl.Endpoint, error)
	AddEndpoint(genl.Endpoint) error
	DelEndpoint(id uint8) error
	SetEndpointFlags(genl.Endpoint) error
	Limits() (genl.Limits, error)
	SetLimits(genl.LimitsUpdate) error
	Announce(token uint32, ep genl.Endpoint) error
	Remove(token uint32, id uint8) error
	CreateSubflow(token uint32, local genl.Endpoint, remote netip.AddrPort) error
	DestroySubflow(token uint32, local, remote netip.AddrPort) error
	SetSubflowBackup(token uint32, local, remote netip.AddrPort, backup bool) error
	ConnectionAddrs(token uint32) ([]genl.Endpoint, error)
	Close() error
}

var _ Kernel = (*genl.Client)(nil)

// EventSource delivers the kernel's mptcp_pm events; *genl.Subscription
// satisfies it. Receive returns ctx.Err() once ctx is done, and an error
// matching genl.ErrEventsLost when the kernel dropped events, after which
// the stream goes on and the engine resynchronises from dumps.
type EventSource interface {
	Receive(ctx context.Context) ([]genl.Event, error)
}

var _ EventSource = (*genl.Subscription)(nil)

// ConnLister lists the MPTCP connections that exist now, with their
// subflows; the daemon implements it with sock_diag. The engine calls it
// when it starts and after events were lost, to learn the connections it
// has no events for. Connections run by the in-kernel path manager may be
// listed too: the engine tells them apart and leaves them alone.
type ConnLister interface {
	ListConns() ([]ExistingConn, error)
}

// OwnerLookup reads who owns a connection's MPTCP socket; the daemon
// implements it with sock_diag and the cgroup hierarchy. The engine's
// workers call it, several at once, so it must be safe for concurrent
// use. An unknown token gives an error matching os.ErrNotExist.
type OwnerLookup interface {
	Owner(token uint32) (policy.Owner, error)
}

// ExistingConn is a connection found by a ConnLister.
type ExistingConn struct {
	// Token is the connection's local token.
	Token uint32
	// Side is SideClient when this host opened the connection,
	// SideServer when it accepted it.
	Side policy.Side
	// Local and Remote are the addresses and ports of the initial subflow.
	Local, Remote netip.AddrPort
	// Subflows are the connection's current subflows.
	Subflows []ExistingSubflow
	// Fallback reports that the connection fell back to plain TCP
	// (sock_diag MPTCP_INFO_FLAG_FALLBACK): it gets no more subflows.
	Fallback bool
}

// ExistingSubflow is a subflow of an ExistingConn.
type ExistingSubflow struct {
	// Local and Remote are the subflow's addresses and ports.
	Local, Remote netip.AddrPort
	// LocalID and RemoteID are the address ids on both ends.
	LocalID, RemoteID uint8
	// Backup is this host's backup bit for the subflow (sock_diag
	// BKUP_LOC).
	Backup bool
	// Joined reports that this host initiated the subflow with MP_JOIN
	// (sock_diag JOIN_LOC).
	Joined bool
	// IfIndex is the device the subflow is bound to; 0 when unbound.
	IfIndex int32
}

// ByteReader reads how much data MPTCP connections have moved; the daemon
// implements it with sock_diag. The engine calls it, outside its loop and
// one call at a time, only while a policy.Deferral with AfterBytes holds a
// path or announce of some connection back (see the package doc).
type ByteReader interface {
	// ReadBytes calls fn for each connection of tokens that still exists
	// with the bytes it has sent and received (struct mptcp_info's
	// bytes_sent and bytes_received). Tokens it does not find are left
	// out.
	ReadBytes(tokens []uint32, fn func(token uint32, sent, received uint64)) error
}
