package pmstate

import (
	"net/netip"
	"time"
)

// Link is a network interface and its addresses, as the daemon sees them.
type Link struct {
	Name  string   `json:"name"`
	Index int32    `json:"index"`
	Kind  LinkKind `json:"kind"`
	// Up reports that the link is up with a carrier; Usable that its
	// addresses may carry subflows (up and included by the
	// configuration). Reason says why not.
	Up     bool   `json:"up"`
	Usable bool   `json:"usable"`
	Reason string `json:"reason,omitempty"`
	// Metered reports that traffic over the link costs money or quota.
	Metered bool `json:"metered"`
	// Changed is when Up or Usable last changed; zero when unknown.
	Changed time.Time `json:"changed,omitzero"`
	Addrs   []Addr    `json:"addrs"`
}

// Addr is a local address and what mptcpgod does with it.
type Addr struct {
	Addr netip.Addr `json:"addr"`
	// Usable reports that subflows may use the address; Reason says why
	// not ("tentative", "no route", "excluded by kind virtual", ...).
	Usable bool   `json:"usable"`
	Reason string `json:"reason,omitempty"`
	// Used reports that mptcpgod uses the address now: an endpoint of
	// its own is in the kernel (kernel mode), or a subflow runs over it
	// (userspace mode). Use says how, or why not.
	Used bool   `json:"used"`
	Use  string `json:"use"`
	// Subflows counts the established subflows over the address
	// (userspace mode).
	Subflows int `json:"subflows,omitempty"`
	// Endpoint is the address's endpoint, in the kernel or desired
	// (kernel mode).
	Endpoint *Endpoint `json:"endpoint,omitempty"`
}
