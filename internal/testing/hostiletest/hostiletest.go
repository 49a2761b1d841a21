package hostiletest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/enginetest"
	"github.com/mptcpgod/mptcpgod/internal/testing/runtest"
)

// Server is the userspace path manager of a server's namespace. It
// follows the namespace's events until the test ends: the kernel accepts
// joins and announces of userspace-PM connections only while someone
// does.
type Server struct {
	pm *genl.Client
	// established are the tokens of the connections established, in
	// order.
	established chan uint32
}

// NewServer sets h's path manager to userspace and runs its path
// manager until the test ends.
func NewServer(t testing.TB, h *netnstest.Host) *Server {
	t.Helper()
	h.SetPathManager("userspace")
	sub := enginetest.Subscribe(t, h.NetNS())
	c, err := genl.New(&genl.Config{NetNS: h.NetNS()})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{pm: c, established: make(chan uint32, 1024)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() {
		cancel()
		<-done
		_ = c.Close()
	})
	go func() {
		defer close(done)
		for {
			evs, err := sub.Receive(ctx)
			switch {
			case ctx.Err() != nil:
				return
			case err != nil && !errors.Is(err, genl.ErrEventsLost):
				t.Errorf("hostiletest: the server's events: %v", err)
				return
			}
			for _, ev := range evs {
				if ev.Type != genl.EventEstablished {
					continue
				}
				select {
				case s.established <- ev.Token:
				default: // nobody asks for these
				}
			}
		}
	}()
	return s
}

// Next returns the token of the next connection the server established.
func (s *Server) Next(ctx context.Context) (uint32, error) {
	select {
	case tok := <-s.established:
		return tok, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("hostiletest: no connection established: %w", ctx.Err())
	}
}

// Announce announces ap with address id id on the connection token,
// whose port is port: the announce names ap's port only when it differs.
func (s *Server) Announce(token uint32, id uint8, ap netip.AddrPort, port uint16) error {
	ep := genl.Endpoint{ID: id, Addr: ap.Addr(), Flags: genl.FlagSignal}
	if ap.Port() != port {
		ep.Port = ap.Port()
	}
	if err := s.pm.Announce(token, ep); err != nil {
		return fmt.Errorf("hostiletest: announce %s: %w", ap, err)
	}
	return nil
}

// Counter counts the TCP segments a host receives to some addresses and
// ports, with an nftables counter each.
type Counter struct {
	h *netnstest.Host
}

// NewCounter counts what h receives to each of aps from now on. It needs
// nft (nftables): without it the test fails under CI and skips
// otherwise.
func NewCounter(t testing.TB, h *netnstest.Host, aps ...netip.AddrPort) *Counter {
	t.Helper()
	if _, err := h.Exec("nft", "--version"); err != nil {
		runtest.Unavailable(t, fmt.Sprintf("hostiletest: counting segments needs nft: install nftables (%v)", err))
	}
	var b strings.Builder
	b.WriteString("table inet hostiletest {\n chain input {\n  type filter hook input priority 0;\n")
	for _, ap := range aps {
		family := "ip"
		if ap.Addr().Is6() {
			family = "ip6"
		}
		fmt.Fprintf(&b, "  %s daddr %s tcp dport %d counter\n", family, ap.Addr(), ap.Port())
	}
	b.WriteString(" }\n}\n")
	cmd := h.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(b.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hostiletest: nft: %v: %s", err, out)
	}
	return &Counter{h: h}
}

// counted matches a counter of `nft list table inet hostiletest`.
var counted = regexp.MustCompile(`ip6? daddr (\S+) tcp dport (\d+) counter packets (\d+)`)

// Counts returns the segments received per address and port.
func (c *Counter) Counts() (map[netip.AddrPort]int, error) {
	out, err := c.h.Exec("nft", "list", "table", "inet", "hostiletest")
	if err != nil {
		return nil, fmt.Errorf("hostiletest: nft list: %w: %s", err, out)
	}
	got := map[netip.AddrPort]int{}
	for _, m := range counted.FindAllStringSubmatch(out, -1) {
		a, err := netip.ParseAddr(m[1])
		if err != nil {
			return nil, fmt.Errorf("hostiletest: nft list: %q: %w", m[0], err)
		}
		port, _ := strconv.ParseUint(m[2], 10, 16)
		n, _ := strconv.Atoi(m[3])
		got[netip.AddrPortFrom(a, uint16(port))] = n
	}
	return got, nil
}

// Nstat returns the counter name of h's namespace ("TcpInSegs",
// "MPTcpExtMPJoinSynTx"), as `nstat -asz` reads it.
func Nstat(h *netnstest.Host, name string) (int, error) {
	out, err := h.Exec("nstat", "-asz", name)
	if err != nil {
		return 0, fmt.Errorf("hostiletest: nstat %s: %w: %s", name, err, out)
	}
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == name {
			return strconv.Atoi(f[1])
		}
	}
	return 0, fmt.Errorf("hostiletest: nstat knows no %s", name)
}
