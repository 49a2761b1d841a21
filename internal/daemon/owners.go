package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	"github.com/mptcpgod/mptcpgod/internal/cgroups"
	"github.com/mptcpgod/mptcpgod/internal/sockdiag"
	"github.com/mptcpgod/mptcpgod/internal/transparent/bpf"
	"github.com/mptcpgod/mptcpgod/pm"
	"github.com/mptcpgod/mptcpgod/policy"
)

// ownerLookup reads a connection's owner for the engine (pm.OwnerLookup):
// the uid and cgroup id of its MPTCP socket from sock_diag, by token,
// and the cgroup's path from the cgroup v2 hierarchy. Its sock_diag
// socket, apart from the connection lister's so that a lookup never
// waits for a dump, and the hierarchy's map are opened at the first
// lookup: a daemon whose rules never select by owner pays nothing.
type ownerLookup struct {
	netns int
	log   *slog.Logger

	mu       sync.Mutex
	diag     *sockdiag.Client
	listen   *sockdiag.Client // MPTCP listeners, opened at the first queued connection
	cgroups  *cgroups.Resolver
	noCgroup bool // no cgroup v2 hierarchy: owners have no Cgroup
}

var _ pm.OwnerLookup = (*ownerLookup)(nil)

func newOwnerLookup(netns int, log *slog.Logger) *ownerLookup {
	return &ownerLookup{netns: netns, log: log}
}

// Owner implements pm.OwnerLookup. An unknown token gives an error
// matching os.ErrNotExist; a cgroup that cannot be found leaves Cgroup
// empty.
func (o *ownerLookup) Owner(token uint32) (policy.Owner, error) {
	diag, res, err := o.open()
	if err != nil {
		return policy.Owner{}, err
	}
	c, err := diag.Connection(token)
	if err != nil {
		return policy.Owner{}, err
	}
	own := policy.Owner{UID: c.UID}
	if c.UID == 0 && c.Inode == 0 {
		// Nobody accepted it yet (it has no file): kernels before 6.17
		// report root as the owner of such a socket (sock_i_uid), the clone of its
		// listener, whose uid it has until a task accepts it.
		uid, err := o.listenerUID(c.Local)
		if err != nil {
			o.log.Debug("cannot read the listener of a queued connection", "token", fmt.Sprintf("%08x", token), "error", err)
		}
		own.UID = uid
	}
	if c.CgroupID == 0 || res == nil {
		return own, nil
	}
	p, err := res.Path(c.CgroupID)
	switch {
	case err == nil:
		own.Cgroup = p
	case errors.Is(err, cgroups.ErrNotFound):
		o.log.Debug("connection's cgroup is gone", "token", fmt.Sprintf("%08x", token), "cgroup_id", c.CgroupID)
	default:
		o.log.Warn("cannot read the connection's cgroup", "token", fmt.Sprintf("%08x", token), "error", err)
	}
	return own, nil
}

// listenerUID returns the uid of the MPTCP listener of the local address
// local: the one bound to that address, else one bound to the wildcard;
// 0 when there is none.
func (o *ownerLookup) listenerUID(local netip.AddrPort) (uint32, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.listen == nil {
		d, err := sockdiag.Dial(&sockdiag.Config{NetNS: o.netns, States: sockdiag.StateMask(sockdiag.StateListen)})
		if err != nil {
			return 0, err
		}
		o.listen = d
	}
	var uid uint32
	exact := false
	err := o.listen.Connections(func(c *sockdiag.Connection) error {
		if c.State != sockdiag.StateListen || exact || !listening([]netip.AddrPort{c.Local}, local) {
			return nil
		}
		uid, exact = c.UID, !c.Local.Addr().IsUnspecified()
		return nil
	})
	return uid, err
}

// open returns the sock_diag client and the cgroup resolver (nil without
// a cgroup v2 hierarchy), opening them at the first call.
func (o *ownerLookup) open() (*sockdiag.Client, *cgroups.Resolver, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.diag == nil {
		d, err := sockdiag.Dial(&sockdiag.Config{NetNS: o.netns})
		if err != nil {
			return nil, nil, fmt.Errorf("daemon: owner lookup: %w", err)
		}
		o.diag = d
	}
	if o.cgroups == nil && !o.noCgroup {
		root, err := bpf.CgroupRoot()
		if err != nil {
			o.noCgroup = true
			o.log.Warn("rules by unit match nothing", "error", err)
		} else {
			o.cgroups = cgroups.NewResolver(root)
		}
	}
	return o.diag, o.cgroups, nil
}

// Close closes what the lookups opened.
func (o *ownerLookup) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	var errs []error
	if o.diag != nil {
		errs = append(errs, o.diag.Close())
		o.diag = nil
	}
	if o.listen != nil {
		errs = append(errs, o.listen.Close())
		o.listen = nil
	}
	if o.cgroups != nil {
		errs = append(errs, o.cgroups.Close())
		o.cgroups = nil
	}
	return errors.Join(errs...)
}
