//go:build linux

package daemon

import (
	"fmt"
	"io"
	"net/netip"
	"testing"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/sockdiag"
	"github.com/mptcpgod/mptcpgod/internal/testing/enginetest"
)

// TestByteReader: the byte counters of a few connections, looked up one
// by one, and of many, read with one walk, are the kernel's; a token that
// is gone is left out. A kernel without them (before 6.5) reads 0.
func TestByteReader(t *testing.T) {
	t.Parallel()
	counts := netnstest.KernelHas(genl.CapConnBytes)
	if !counts {
		netnstest.Degraded(t, "%s missing (Linux %s): checked that every connection reads 0 bytes",
			genl.CapConnBytes.Name, genl.CapConnBytes.Since)
	}
	tb := netnstest.NewTestbed(t, 1)
	ln := tb.Server.Listen("tcp", ":0")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	addr := netip.AddrPortFrom(tb.Links[0].Server4, netip.MustParseAddrPort(ln.Addr().String()).Port())
	const n = 3 * minLookups
	sent := map[netip.AddrPort]uint64{}
	for i := range n {
		c, err := tb.Client.Dial("tcp", "", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		size := 1000 * (i + 1)
		if _, err := c.Write(make([]byte, size)); err != nil {
			t.Fatal(err)
		}
		sent[netip.MustParseAddrPort(c.LocalAddr().String())] = uint64(size)
	}
	diag, err := sockdiag.Dial(&sockdiag.Config{NetNS: tb.Client.NetNS()})
	if err != nil {
		t.Fatal(err)
	}
	defer diag.Close()
	want := map[uint32]uint64{}
	var tokens []uint32
	err = diag.Connections(func(c *sockdiag.Connection) error {
		if size, ok := sent[c.Local]; ok {
			want[c.Token] = 0
			if counts {
				want[c.Token] = size
			}
			tokens = append(tokens, c.Token)
		}
		return nil
	})
	if err != nil || len(tokens) != n {
		t.Fatalf("%d of %d connections listed: %v", len(tokens), n, err)
	}
	r, err := newByteReader(tb.Client.NetNS())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	read := func(ts []uint32) map[uint32]uint64 {
		t.Helper()
		got := map[uint32]uint64{}
		if err := r.ReadBytes(ts, func(token uint32, s, _ uint64) { got[token] = s }); err != nil {
			t.Fatal(err)
		}
		return got
	}
	// The writes may still be on their way out: poll until the counters
	// show them.
	check := func(what string, ts []uint32, query []uint32) {
		t.Helper()
		enginetest.Poll(t, what, func() string {
			got := read(query)
			ok := len(got) == len(ts)
			for _, tok := range ts {
				ok = ok && got[tok] == want[tok]
			}
			if !ok {
				return fmt.Sprintf("read %v, want %d connections with the bytes they sent %v", got, len(ts), want)
			}
			return ""
		})
	}
	check("walk", tokens, tokens)
	if r.walked < n {
		t.Errorf("the walk saw %d sockets, want at least %d", r.walked, n)
	}
	few := tokens[:2]
	check("lookups", few, append([]uint32{0xdeadbeef}, few...))
}
