package daemon

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/mptcpgod/mptcpgod/internal/sockdiag"
	"github.com/mptcpgod/mptcpgod/pm"
	"github.com/mptcpgod/mptcpgod/policy"
)

// connLister lists the namespace's MPTCP connections from sock_diag for
// the engine: the established connections, their subflows (joined on the
// token) and, from the MPTCP listeners, which side each connection is.
type connLister struct {
	mu sync.Mutex // the clients serve one dump at a time
	// live dumps sockets that are established or opening; listen dumps
	// the listeners.
	live, listen *sockdiag.Client
}

var _ pm.ConnLister = (*connLister)(nil)

// liveStates are the subflow states the engine is told about: a subflow
// that is closing is as good as gone.
var liveStates = sockdiag.StateMask(sockdiag.StateEstablished, sockdiag.StateSynSent, sockdiag.StateSynRecv)

func newConnLister(netns int) (*connLister, error) {
	live, err := sockdiag.Dial(&sockdiag.Config{NetNS: netns, States: liveStates})
	if err != nil {
		return nil, fmt.Errorf("daemon: sock_diag: %w", err)
	}
	listen, err := sockdiag.Dial(&sockdiag.Config{NetNS: netns, States: sockdiag.StateMask(sockdiag.StateListen)})
	if err != nil {
		_ = live.Close()
		return nil, fmt.Errorf("daemon: sock_diag: %w", err)
	}
	return &connLister{live: live, listen: listen}, nil
}

// Close closes the sock_diag sockets.
func (l *connLister) Close() error {
	return errors.Join(l.live.Close(), l.listen.Close())
}

// ListConns implements pm.ConnLister. A connection is on the server side
// when its local address and port are those of an MPTCP listener (or the
// listener's address is the wildcard); this misses connections whose
// listener has been closed, which count as client side.
func (l *connLister) ListConns() ([]pm.ExistingConn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()

	var listeners []netip.AddrPort
	err := l.listen.Connections(func(c *sockdiag.Connection) error {
		if c.State == sockdiag.StateListen {
			listeners = append(listeners, c.Local)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("daemon: list MPTCP listeners: %w", err)
	}

	var conns []pm.ExistingConn
	byToken := map[uint32]int{}
	err = l.live.Connections(func(c *sockdiag.Connection) error {
		if c.State != sockdiag.StateEstablished || c.Token == 0 {
			return nil
		}
		side := policy.SideClient
		if listening(listeners, c.Local) {
			side = policy.SideServer
		}
		byToken[c.Token] = len(conns)
		conns = append(conns, pm.ExistingConn{Token: c.Token, Side: side, Local: c.Local, Remote: c.Remote,
			Fallback: c.Info.Flags&sockdiag.InfoFallback != 0})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("daemon: list MPTCP connections: %w", err)
	}

	err = l.live.Subflows(func(s *sockdiag.Subflow) error {
		i, ok := byToken[s.Token]
		if !ok {
			return nil
		}
		conns[i].Subflows = append(conns[i].Subflows, pm.ExistingSubflow{
			Local:    s.Local,
			Remote:   s.Remote,
			LocalID:  s.LocalID,
			RemoteID: s.RemoteID,
			Backup:   s.Flags&sockdiag.SubflowBackupLocal != 0,
			Joined:   s.Flags&sockdiag.SubflowJoinLocal != 0,
			IfIndex:  int32(s.IfIndex),
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("daemon: list MPTCP subflows: %w", err)
	}
	return conns, nil
}

// listening reports whether a listener accepts connections to local.
func listening(listeners []netip.AddrPort, local netip.AddrPort) bool {
	for _, ln := range listeners {
		if ln.Port() == local.Port() && (ln.Addr().IsUnspecified() || ln.Addr().Unmap() == local.Addr().Unmap()) {
			return true
		}
	}
	return false
}
