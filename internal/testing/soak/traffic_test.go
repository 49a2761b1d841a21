//go:build linux

package soak_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
)

// ioLimit bounds each read or write of a transfer: a connection that
// makes no progress for that long counts as broken.
const ioLimit = 30 * time.Second

// errCorrupt is a transfer whose checksum did not match.
var errCorrupt = errors.New("soak: checksum mismatch")

// serveSums accepts connections on ln until it is closed; each sends
// bytes until it shuts down its write side and gets back their count (8
// bytes, big endian) and their SHA-256.
func serveSums(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			h := sha256.New()
			n, err := io.Copy(h, c)
			if err != nil {
				return
			}
			_ = c.SetWriteDeadline(time.Now().Add(ioLimit))
			_, _ = c.Write(h.Sum(binary.BigEndian.AppendUint64(nil, uint64(n))))
		}()
	}
}

// stats are the traffic's counters, safe for concurrent use.
type stats struct {
	transfers, connections, bytes, corrupt atomic.Int64

	mu       sync.Mutex
	failures []string

	// explain, if set, describes how a corrupted transfer's bytes differ
	// from what was sent.
	explain func(seed uint64, local netip.AddrPort, size, chunk int) string
	// forget, if set, is told when a transfer has been checked.
	forget func(local netip.AddrPort)
}

// fail records a transfer that did not complete.
func (s *stats) fail(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, time.Now().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
}

// failed returns the failures recorded so far.
func (s *stats) failed() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.failures...)
}

// stream is an MPTCP connection to a serveSums server sending
// pseudo-random bytes and hashing them as it goes.
type stream struct {
	conn  *net.TCPConn
	local netip.AddrPort
	rng   *rand.ChaCha8
	sum   hashWriter
	sent  uint64
	buf   []byte
}

// hashWriter is the hash.Hash subset a stream uses.
type hashWriter interface {
	io.Writer
	Sum(b []byte) []byte
}

// openStream dials srv from h and checks the connection is MPTCP.
func openStream(ctx context.Context, h *netnstest.Host, srv netip.AddrPort, seed uint64, chunk int) (*stream, error) {
	c, err := h.DialContext(ctx, "tcp", "", srv.String())
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", srv, err)
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		_ = c.Close()
		return nil, fmt.Errorf("dial %s: a %T, not a TCP connection", srv, c)
	}
	if mp, err := tc.MultipathTCP(); err != nil || !mp {
		_ = c.Close()
		return nil, fmt.Errorf("connection to %s is not MPTCP (%v)", srv, err)
	}
	local := netip.MustParseAddrPort(c.LocalAddr().String())
	return &stream{
		conn:  tc,
		local: netip.AddrPortFrom(local.Addr().Unmap(), local.Port()),
		rng:   seedRand(seed),
		sum:   sha256.New(),
		buf:   make([]byte, chunk),
	}, nil
}

// seedRand returns the pseudo-random source of the stream with seed.
func seedRand(seed uint64) *rand.ChaCha8 {
	var key [32]byte
	binary.BigEndian.PutUint64(key[:], seed)
	return rand.NewChaCha8(key)
}

// send writes one chunk of pseudo-random bytes.
func (s *stream) send() error {
	_, _ = s.rng.Read(s.buf)
	_, _ = s.sum.Write(s.buf)
	_ = s.conn.SetWriteDeadline(time.Now().Add(ioLimit))
	n, err := s.conn.Write(s.buf)
	s.sent += uint64(n)
	return err
}

// finish shuts the write side, reads the server's checksum and closes the
// connection: errCorrupt when the checksums differ.
func (s *stream) finish() error {
	defer s.conn.Close()
	if err := s.conn.CloseWrite(); err != nil {
		return err
	}
	_ = s.conn.SetReadDeadline(time.Now().Add(ioLimit))
	got, err := io.ReadAll(s.conn)
	if err != nil {
		return err
	}
	return verdict(s.sent, s.sum.Sum(nil), got)
}

// verdict compares the server's reply got with the count and the SHA-256
// of what was sent: errCorrupt only when the server answered a count and
// a checksum and they differ; a reply of another length (the server hung
// up without answering, as it does when its read fails) is a failed
// transfer, not a corrupted one.
func verdict(sent uint64, sum, got []byte) error {
	want := append(binary.BigEndian.AppendUint64(nil, sent), sum...)
	switch {
	case bytes.Equal(got, want):
		return nil
	case len(got) != len(want):
		return fmt.Errorf("soak: sent %d bytes with sha256 %x, the server answered %d bytes (%x), want %d", sent, sum, len(got), got, len(want))
	default:
		return fmt.Errorf("%w: sent %d bytes, the server received %d (sha256 %x, server's %x)",
			errCorrupt, sent, binary.BigEndian.Uint64(got), sum, got[8:])
	}
}

// transfer sends size bytes from h to srv in chunks and checks the
// server's checksum.
func transfer(ctx context.Context, h *netnstest.Host, srv netip.AddrPort, seed uint64, size, chunk int, st *stats) {
	st.connections.Add(1)
	s, err := openStream(ctx, h, srv, seed, chunk)
	if err != nil {
		if !ended(ctx) {
			st.fail("transfer %d: %v", seed, err)
		}
		return
	}
	for sent := 0; sent < size; sent += chunk {
		if err := s.send(); err != nil {
			_ = s.conn.Close()
			st.fail("transfer %d from %s: write after %d bytes: %v", seed, s.local, sent, err)
			return
		}
	}
	err = s.finish()
	if st.forget != nil {
		defer st.forget(s.local)
	}
	if err != nil {
		if errors.Is(err, errCorrupt) {
			st.corrupt.Add(1)
			if st.explain != nil {
				err = fmt.Errorf("%w; %s", err, st.explain(seed, s.local, size, chunk))
			}
		}
		st.fail("transfer %d from %s: %v", seed, s.local, err)
		return
	}
	st.transfers.Add(1)
	st.bytes.Add(int64(size))
}

// ended reports whether ctx is done or past its deadline: a dial bounded
// by ctx times out on the socket's deadline (ctx's) a moment before ctx's
// own timer says it is done, and every dial started in that moment fails
// at once.
func ended(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ctx.Err() != nil || ok && !time.Now().Before(dl)
}

// bulk runs workers that each repeat size-byte transfers until ctx is
// done; it returns a function that waits for them.
func bulk(ctx context.Context, h *netnstest.Host, srv netip.AddrPort, workers, size int, seeds *atomic.Uint64, st *stats) (wait func()) {
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for !ended(ctx) {
				transfer(ctx, h, srv, seeds.Add(1), size, 64<<10, st)
			}
		})
	}
	return wg.Wait
}

// flood opens n short MPTCP connections from h to srv, at most parallel
// at a time, each with a small checksummed transfer.
func flood(ctx context.Context, h *netnstest.Host, srv netip.AddrPort, n, parallel int, seeds *atomic.Uint64, st *stats) {
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for range n {
		if ended(ctx) {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			transfer(ctx, h, srv, seeds.Add(1), 4<<10, 4<<10, st)
		})
	}
	wg.Wait()
}

// longStream is a connection kept open for the whole soak, sending a
// chunk every few milliseconds.
type longStream struct {
	*stream
	stop chan struct{}
	done chan error
}

// openLong opens a long stream and starts sending.
func openLong(h *netnstest.Host, srv netip.AddrPort, seed uint64) (*longStream, error) {
	s, err := openStream(context.Background(), h, srv, seed, 16<<10)
	if err != nil {
		return nil, err
	}
	l := &longStream{stream: s, stop: make(chan struct{}), done: make(chan error, 1)}
	go func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-l.stop:
				l.done <- s.finish()
				return
			case <-tick.C:
			}
			if err := s.send(); err != nil {
				_ = s.conn.Close()
				l.done <- fmt.Errorf("write: %w", err)
				return
			}
		}
	}()
	return l, nil
}

// close stops sending and returns the checksum verdict.
func (l *longStream) close() error {
	close(l.stop)
	return <-l.done
}
