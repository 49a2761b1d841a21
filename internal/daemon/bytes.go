package daemon

import (
	"errors"
	"fmt"
	"os"

	"github.com/mptcpgod/mptcpgod/internal/sockdiag"
	"github.com/mptcpgod/mptcpgod/pm"
)

// byteReader reads the byte counters of the connections whose deferred
// joins wait on bytes (pm.ByteReader), from sock_diag: one lookup by token
// each while they are few against the namespace's connections, one walk
// of all the connections otherwise. A lookup costs about as much as
// walking lookupSockets sockets (BenchmarkConnections10k, Lookup against
// Connections).
type byteReader struct {
	c *sockdiag.Client
	// walked is the number of MPTCP sockets the last walk saw; 0 before
	// the first.
	walked int
}

var _ pm.ByteReader = (*byteReader)(nil)

// lookupSockets is how many sockets of a walk one lookup by token costs,
// and minLookups how many connections are always looked up one by one.
const (
	lookupSockets = 4
	minLookups    = 8
)

func newByteReader(netns int) (*byteReader, error) {
	c, err := sockdiag.Dial(&sockdiag.Config{NetNS: netns, States: sockdiag.StateMask(sockdiag.StateEstablished)})
	if err != nil {
		return nil, fmt.Errorf("daemon: sock_diag: %w", err)
	}
	return &byteReader{c: c}, nil
}

// Close closes the sock_diag socket.
func (r *byteReader) Close() error { return r.c.Close() }

// ReadBytes implements pm.ByteReader. The engine calls it one call at a
// time.
func (r *byteReader) ReadBytes(tokens []uint32, fn func(token uint32, sent, received uint64)) error {
	if len(tokens) <= max(minLookups, r.walked/lookupSockets) {
		for _, t := range tokens {
			c, err := r.c.Connection(t)
			switch {
			case errors.Is(err, os.ErrNotExist):
				continue
			case err != nil:
				return fmt.Errorf("daemon: read byte counters: %w", err)
			}
			fn(t, c.Info.BytesSent, c.Info.BytesReceived)
		}
		return nil
	}
	want := make(map[uint32]bool, len(tokens))
	for _, t := range tokens {
		want[t] = true
	}
	n := 0
	err := r.c.Connections(func(c *sockdiag.Connection) error {
		n++
		if want[c.Token] {
			fn(c.Token, c.Info.BytesSent, c.Info.BytesReceived)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("daemon: read byte counters: %w", err)
	}
	r.walked = n
	return nil
}
