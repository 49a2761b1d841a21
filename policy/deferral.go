package policy

import (
	"errors"
	"time"
)

// Deferral holds a path or an announce back while its connection is young
// (userspace mode): the engine creates the subflow, or sends the
// ADD_ADDR, only once the view's time reaches NotBefore or the connection
// has moved more than AfterBytes bytes in either direction, whichever
// comes first. A short connection (a request and its response) then ends
// before it pays for a second handshake, and a long one gets every path
// soon enough. The zero Deferral does not hold anything back; an item
// that already exists (a live subflow, an address announced) is never
// held back.
//
// Only the userspace path manager can defer: the in-kernel one opens its
// subflows and sends its announces when the connection is established.
type Deferral struct {
	// NotBefore is when the item is due at the latest; zero means at
	// once.
	NotBefore time.Time `json:"not_before,omitzero"`
	// AfterBytes brings the item forward once the connection has sent or
	// received more than this many bytes (MPTCP-level data); 0 means
	// only NotBefore counts. It needs NotBefore.
	AfterBytes uint64 `json:"after_bytes,omitempty"`
}

// DeferJoins returns the Deferral of the extra paths and the announces of
// c for a delay after its creation and a byte threshold (0: none): the
// zero Deferral when delay is 0 or c's creation time is unknown (a
// connection that existed before the daemon started is taken as old).
func DeferJoins(c Conn, delay time.Duration, afterBytes uint64) Deferral {
	if delay <= 0 || c.Created.IsZero() {
		return Deferral{}
	}
	return Deferral{NotBefore: c.Created.Add(delay), AfterBytes: afterBytes}
}

// Holds reports whether d still holds its item back at now, for a
// connection that has sent and received the bytes given.
func (d Deferral) Holds(now time.Time, sent, received uint64) bool {
	if d.NotBefore.IsZero() || !now.Before(d.NotBefore) {
		return false
	}
	return d.AfterBytes == 0 || max(sent, received) <= d.AfterBytes
}

// validate returns an error that starts with the field: ".after_bytes: ...".
func (d Deferral) validate() error {
	if d.AfterBytes != 0 && d.NotBefore.IsZero() {
		return errors.New(".after_bytes: needs not_before (the latest time)")
	}
	return nil
}
