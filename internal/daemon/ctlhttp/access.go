package ctlhttp

import (
	"context"
	"fmt"
	"os/user"
	"slices"
	"strconv"
)

// Peer is the process at the other end of a connection, as the kernel
// reported it when the connection was made (SO_PEERCRED, SO_PEERGROUPS).
type Peer struct {
	PID      int32
	UID, GID uint32
	// Groups are the supplementary groups.
	Groups []uint32
}

type peerKey struct{}

// WithPeer returns ctx carrying p, for the Handler.
func WithPeer(ctx context.Context, p Peer) context.Context {
	return context.WithValue(ctx, peerKey{}, p)
}

// PeerFromContext returns the peer WithPeer stored in ctx.
func PeerFromContext(ctx context.Context) (Peer, bool) {
	p, ok := ctx.Value(peerKey{}).(Peer)
	return p, ok
}

// Access decides from a peer's credentials what it may do: root may do
// anything; the daemon's own user and the members of the read group may
// read.
type Access struct {
	// Owner is the uid that may read besides root: the daemon's own.
	Owner uint32
	// Group is the gid whose members may read; nil means none.
	Group *uint32
	// GroupName names Group in messages.
	GroupName string
}

// CanRead reports whether p may read the daemon's state.
func (a Access) CanRead(p Peer) bool {
	switch {
	case p.UID == 0 || p.UID == a.Owner:
		return true
	case a.Group == nil:
		return false
	}
	return p.GID == *a.Group || slices.Contains(p.Groups, *a.Group)
}

// CanWrite reports whether p may change the daemon's state: only root.
func (a Access) CanWrite(p Peer) bool { return p.UID == 0 }

// groupName names the read group for messages.
func (a Access) groupName() string {
	switch {
	case a.Group == nil:
		return "no group (the daemon has none configured)"
	case a.GroupName != "":
		return "the group " + a.GroupName
	}
	return fmt.Sprintf("the group %d", *a.Group)
}

// LookupGroup resolves a group name, or a numeric gid, to its id.
func LookupGroup(name string) (uint32, error) {
	if id, err := strconv.ParseUint(name, 10, 32); err == nil {
		return uint32(id), nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, fmt.Errorf("ctlhttp: group %q: %w", name, err)
	}
	id, err := strconv.ParseUint(g.Gid, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("ctlhttp: group %q: gid %q: %w", name, g.Gid, err)
	}
	return uint32(id), nil
}
