package policy

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// MaxEndpoints is the number of endpoints the in-kernel path manager keeps
// per network namespace (MPTCP_PM_ADDR_MAX).
const MaxEndpoints = 8

// MaxLimit is the largest value the kernel accepts for either limit.
const MaxLimit = 8

// KernelPlan is the desired configuration of the in-kernel path manager:
// the complete endpoint set and the limits. The engine adds, removes and
// changes endpoints until the kernel's set equals it.
type KernelPlan struct {
	// Endpoints are the wanted endpoints, at most MaxEndpoints, each
	// identified by its address and port.
	Endpoints []Endpoint `json:"endpoints"`
	// Limits are the wanted limits.
	Limits Limits `json:"limits"`
}

// Endpoint is a wanted in-kernel path-manager endpoint. The engine picks
// its id.
type Endpoint struct {
	// Addr is the local address.
	Addr netip.Addr `json:"addr"`
	// Port is the port to announce with the address (signal only); 0 means
	// the connection's own port.
	Port uint16 `json:"port,omitempty"`
	// Dev and IfIndex are the interface the endpoint is bound to. The
	// engine always binds endpoints to their device; a policy that leaves
	// both empty gets the device the address is on.
	Dev     string `json:"dev,omitempty"`
	IfIndex int32  `json:"ifindex,omitempty"`
	// Signal: announce the address to peers (ADD_ADDR).
	Signal bool `json:"signal,omitempty"`
	// Subflow: open subflows from the address.
	Subflow bool `json:"subflow,omitempty"`
	// Backup: subflows over the address are backup.
	Backup bool `json:"backup,omitempty"`
	// Fullmesh: open a subflow from the address to every peer address.
	Fullmesh bool `json:"fullmesh,omitempty"`
	// Laminar: the kernel's laminar endpoint (Linux 6.18).
	Laminar bool `json:"laminar,omitempty"`
}

// Limits are the in-kernel path manager's limits; a nil field leaves the
// kernel's value as it is.
type Limits struct {
	// Subflows is how many extra subflows a connection may have.
	Subflows *uint32 `json:"subflows,omitempty"`
	// AddAddrAccepted is how many peer ADD_ADDRs a connection accepts.
	AddAddrAccepted *uint32 `json:"add_addr_accepted,omitempty"`
}

// ConnPlan is the desired state of one userspace-PM connection.
type ConnPlan struct {
	// Paths are all the subflows the connection should have, the initial
	// subflow included: a path is identified by its local address and
	// its remote address and port. The engine creates the paths no
	// subflow matches, destroys the subflows no path matches, and sets
	// the backup bit where it differs. A path that matches the live
	// initial subflow keeps it; leaving it out asks for it to be closed,
	// which for a client's initial subflow that still works the engine
	// does by making it backup (Linux 6.18 can lose a connection whose
	// initial subflow is destroyed while data flows; see package pm).
	Paths []Path `json:"paths"`
	// Announces are the local addresses to announce to the peer (ADD_ADDR);
	// the engine withdraws (RM_ADDR) those it announced that are no longer
	// listed.
	Announces []Announce `json:"announces"`
	// Withdraw lists local addresses that must carry no subflow of the
	// connection, even when closing theirs leaves it none until another
	// path works (a metered link over its quota). Without it the engine
	// never closes a connection's last working subflow. Paths from these
	// addresses are not created, and their subflows are closed, the
	// initial one included (with the kernel's risk above).
	Withdraw []netip.Addr `json:"withdraw,omitempty"`
}

// Path is a wanted subflow.
type Path struct {
	// Local is the local address.
	Local netip.Addr `json:"local"`
	// Dev and IfIndex are the interface the subflow is bound to; empty
	// means unbound.
	Dev     string `json:"dev,omitempty"`
	IfIndex int32  `json:"ifindex,omitempty"`
	// Remote is the peer's address and port.
	Remote netip.AddrPort `json:"remote"`
	// Backup is the wanted backup bit.
	Backup bool `json:"backup,omitempty"`
	// Deferral holds the path's creation back while the connection is
	// young (NotBefore, AfterBytes); a path with a live subflow is kept
	// whatever it says. The connection's initial path is never held
	// back.
	Deferral
}

// Announce is a local address to announce to a connection's peer.
type Announce struct {
	// Addr is the address.
	Addr netip.Addr `json:"addr"`
	// Port is the port to announce; 0 means the connection's own port.
	Port uint16 `json:"port,omitempty"`
	// Dev and IfIndex are the interface of the address.
	Dev     string `json:"dev,omitempty"`
	IfIndex int32  `json:"ifindex,omitempty"`
	// Deferral holds the ADD_ADDR back while the connection is young: a
	// peer whose in-kernel path manager joins an announced address does
	// so as soon as the announce arrives. An address already announced
	// stays.
	Deferral
}

// Validate reports the first thing in p the kernel would reject or the
// engine cannot act on, naming the field.
func (p KernelPlan) Validate() error {
	if n := len(p.Endpoints); n > MaxEndpoints {
		return fmt.Errorf("policy: endpoints: %d endpoints, the kernel keeps at most %d", n, MaxEndpoints)
	}
	for i, e := range p.Endpoints {
		if err := e.validate(); err != nil {
			return fmt.Errorf("policy: endpoints[%d]%w", i, err)
		}
		for j, o := range p.Endpoints[:i] {
			if e.key() == o.key() {
				return fmt.Errorf("policy: endpoints[%d]: %s duplicates endpoints[%d]", i, e.key(), j)
			}
		}
	}
	if err := p.Limits.validate(); err != nil {
		return fmt.Errorf("policy: limits%w", err)
	}
	return nil
}

func (e Endpoint) key() netip.AddrPort { return netip.AddrPortFrom(e.Addr, e.Port) }

// validate returns an error that starts with the field: ".addr: ...".
func (e Endpoint) validate() error {
	switch {
	case !e.Addr.IsValid():
		return errors.New(".addr: missing")
	case e.Addr.Is4In6():
		return fmt.Errorf(".addr: %s is IPv4-mapped", e.Addr)
	case e.Addr.Zone() != "":
		return fmt.Errorf(".addr: %s has a zone", e.Addr)
	case e.Port != 0 && (!e.Signal || e.Subflow):
		return fmt.Errorf(".port: %d needs signal and not subflow", e.Port)
	case e.Signal && e.Fullmesh:
		return errors.New(".fullmesh: not allowed with signal")
	case e.IfIndex < 0:
		return fmt.Errorf(".ifindex: %d is negative", e.IfIndex)
	}
	return nil
}

func (l Limits) validate() error {
	if l.Subflows != nil && *l.Subflows > MaxLimit {
		return fmt.Errorf(".subflows: %d is above the kernel's maximum %d", *l.Subflows, MaxLimit)
	}
	if l.AddAddrAccepted != nil && *l.AddAddrAccepted > MaxLimit {
		return fmt.Errorf(".add_addr_accepted: %d is above the kernel's maximum %d", *l.AddAddrAccepted, MaxLimit)
	}
	return nil
}

// Validate reports the first thing in p the kernel would reject or the
// engine cannot act on, naming the field.
func (p ConnPlan) Validate() error {
	for i, pa := range p.Paths {
		if err := pa.validate(); err != nil {
			return fmt.Errorf("policy: paths[%d]%w", i, err)
		}
		for j, o := range p.Paths[:i] {
			if pa.key() == o.key() {
				return fmt.Errorf("policy: paths[%d]: %s duplicates paths[%d]", i, pa.key(), j)
			}
		}
	}
	for i, a := range p.Announces {
		if err := a.validate(); err != nil {
			return fmt.Errorf("policy: announces[%d]%w", i, err)
		}
		for j, o := range p.Announces[:i] {
			if a.key() == o.key() {
				return fmt.Errorf("policy: announces[%d]: %s duplicates announces[%d]", i, a.key(), j)
			}
		}
	}
	for i, a := range p.Withdraw {
		if !a.IsValid() {
			return fmt.Errorf("policy: withdraw[%d]: invalid address", i)
		}
	}
	return nil
}

type pathKey struct {
	local  netip.Addr
	remote netip.AddrPort
}

func (k pathKey) String() string { return k.local.String() + " -> " + k.remote.String() }

func (p Path) key() pathKey { return pathKey{p.Local, p.Remote} }

func (p Path) validate() error {
	switch {
	case !p.Local.IsValid():
		return errors.New(".local: missing")
	case !p.Remote.Addr().IsValid():
		return errors.New(".remote: missing")
	case p.Remote.Port() == 0:
		return fmt.Errorf(".remote: %s has no port", p.Remote)
	case p.Local.Unmap().Is4() != p.Remote.Addr().Unmap().Is4():
		return fmt.Errorf(": %s and %s are of different families", p.Local, p.Remote.Addr())
	case p.IfIndex < 0:
		return fmt.Errorf(".ifindex: %d is negative", p.IfIndex)
	}
	return p.Deferral.validate()
}

func (a Announce) key() netip.AddrPort { return netip.AddrPortFrom(a.Addr, a.Port) }

func (a Announce) validate() error {
	switch {
	case !a.Addr.IsValid():
		return errors.New(".addr: missing")
	case a.IfIndex < 0:
		return fmt.Errorf(".ifindex: %d is negative", a.IfIndex)
	}
	return a.Deferral.validate()
}

// normalize sorts the endpoints by address and port and drops later
// duplicates, so the engine's diff and the next policy see a stable order.
func (p *KernelPlan) normalize() {
	p.Endpoints = sortDedup(p.Endpoints, Endpoint.key, netip.AddrPort.Compare)
}

// normalize sorts paths by local address, then remote address and port,
// and announces by address and port, dropping later duplicates.
func (p *ConnPlan) normalize() {
	p.Paths = sortDedup(p.Paths, Path.key, func(a, b pathKey) int {
		return cmp.Or(a.local.Compare(b.local), a.remote.Compare(b.remote))
	})
	p.Announces = sortDedup(p.Announces, Announce.key, netip.AddrPort.Compare)
	p.Withdraw = sortDedup(p.Withdraw, netip.Addr.Unmap, netip.Addr.Compare)
}

// sortDedup stably sorts s by key and keeps the first of equal keys.
func sortDedup[T any, K comparable](s []T, key func(T) K, compare func(a, b K) int) []T {
	slices.SortStableFunc(s, func(a, b T) int { return compare(key(a), key(b)) })
	return slices.CompactFunc(s, func(a, b T) bool { return key(a) == key(b) })
}
