//go:build linux

package daemon_test

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/internal/testing/daemontest"
	"github.com/mptcpgod/mptcpgod/internal/testing/enginetest"
)

// implicitBed is a client and a server joined by two links, the server
// listening on every address and announcing its second one with a signal
// endpoint of its in-kernel path manager: a real ADD_ADDR, which the
// client's in-kernel path manager follows from the address the route
// picks. When that address has no endpoint, the kernel creates an
// implicit one for it.
type implicitBed struct {
	tb  *netnstest.Testbed
	srv netip.AddrPort
}

func newImplicitBed(t *testing.T) *implicitBed {
	t.Helper()
	tb := netnstest.NewTestbed(t, 2)
	acceptJoins(tb.Server)
	tb.Server.MustExec("ip", "mptcp", "endpoint", "add", tb.Links[1].Server4.String(), "dev", "eth1", "signal")
	ln := tb.Server.Listen("tcp4", "0.0.0.0:0")
	go serve(ln)
	return &implicitBed{tb: tb, srv: netip.AddrPortFrom(tb.Links[0].Server4, addrPort(ln).Port())}
}

// waitImplicit waits until the client has an implicit endpoint for addr
// and returns its id.
func (b *implicitBed) waitImplicit(t *testing.T, addr netip.Addr) int {
	t.Helper()
	var id int
	enginetest.Poll(t, "an implicit endpoint for "+addr.String(), func() string {
		eps := endpoints(t, b.tb.Client)
		line := eps[addr.String()]
		m := epID.FindStringSubmatch(line)
		if m == nil || !implicit(line) {
			return fmt.Sprint(eps) + "\n" + b.tb.Client.MPTCPDump()
		}
		id, _ = strconv.Atoi(m[1])
		return ""
	})
	return id
}

// rawFlags is the flags of an `ip mptcp endpoint show` line for flags
// iproute2 has no name for, in hex ("rawflags 10").
var rawFlags = regexp.MustCompile(`\brawflags ([0-9a-f]+)\b`)

// implicit reports whether an `ip mptcp endpoint show` line is of an
// implicit endpoint (flag 0x10, which older iproute2 shows as rawflags).
func implicit(line string) bool {
	if strings.Contains(line, " implicit") {
		return true
	}
	m := rawFlags.FindStringSubmatch(line)
	if m == nil {
		return false
	}
	f, err := strconv.ParseUint(m[1], 16, 32)
	return err == nil && f&0x10 != 0
}

// subflowsFrom returns the established subflows of the client from addr,
// as "LOCAL:PORT->REMOTE:PORT".
func subflowsFrom(t *testing.T, h *netnstest.Host, addr netip.Addr) []string {
	t.Helper()
	var out []string
	for _, rec := range h.SSRecords("-t", "-i", "state", "established") {
		if !strings.Contains(rec, "tcp-ulp-mptcp") {
			continue
		}
		local, remote, err := netnstest.SSAddrs(rec)
		if err != nil {
			t.Fatalf("ss: %v", err)
		}
		if local.Addr() == addr {
			out = append(out, local.String()+"->"+remote.String())
		}
	}
	slices.Sort(out)
	return out
}

// waitEndpointOK waits until the daemon reports the endpoint of addr ok
// and mptcpgod's, and returns its kernel line.
func waitEndpointOK(t *testing.T, r *daemontest.InProcess, h *netnstest.Host, addr netip.Addr, flags, dev string) string {
	t.Helper()
	var line string
	enginetest.Poll(t, "mptcpgod's endpoint for "+addr.String(), func() string {
		st, err := r.Status(context.Background())
		if err != nil {
			return err.Error()
		}
		i := slices.IndexFunc(st.Endpoints, func(e pmstate.Endpoint) bool { return e.Addr == addr && e.Desired })
		line = endpoints(t, h)[addr.String()]
		if i < 0 || st.Endpoints[i].State != pmstate.EndpointOK || !st.Endpoints[i].Owned {
			return fmt.Sprintf("status %+v; kernel %q", st.Endpoints, line)
		}
		if owned(line) && strings.Contains(line, " "+flags+" ") && strings.HasSuffix(line, "dev "+dev) && !implicit(line) {
			return ""
		}
		return fmt.Sprintf("kernel %q", line)
	})
	return line
}

// TestImplicitEndpointReplacedInPlace: the kernel creates an implicit
// endpoint, with the next id of mptcpgod's range, for the address the
// route picks to follow a peer's ADD_ADDR while mptcpgod does not use
// the address (kernel.accept_announces lets the kernel follow it); when
// mptcpgod wants the address, it takes the endpoint over in place: same
// id, mptcpgod's flags and device, and the subflow the kernel opened from
// it stays. (mptcpgod learns of the implicit
// endpoint when its own add with the next id fails: the kernel sends no
// event for it.)
func TestImplicitEndpointReplacedInPlace(t *testing.T) {
	t.Parallel()
	b := newImplicitBed(t)
	l0, l1 := b.tb.Links[0], b.tb.Links[1]
	// Role both: signal subflow endpoints, none fullmesh, so that the
	// kernel follows the announce from the address the route picks; it
	// follows announces only when the configuration trusts peers.
	both := "[[policy.chain]]\nname = \"fullmesh\"\nconfig = { role = \"both\" }\n\n[kernel]\naccept_announces = true\n"
	r := daemontest.Run(t, b.tb.Client, config("kernel", `exclude_names = ["eth1"]`, both))
	waitEndpointOK(t, r, b.tb.Client, l0.Client4, "signal subflow", "eth0")

	dial(t, b.tb.Client, b.srv)
	id := b.waitImplicit(t, l1.Client4)
	if id < 100 || id > 199 {
		t.Fatalf("the implicit endpoint has id %d, outside mptcpgod's range: the test needs one inside", id)
	}
	var before []string
	enginetest.Poll(t, "the subflow the kernel opened to the announced address", func() string {
		if before = subflowsFrom(t, b.tb.Client, l1.Client4); len(before) != 1 {
			return fmt.Sprint(before)
		}
		return ""
	})

	reload(t, r, config("kernel", both))
	line := waitEndpointOK(t, r, b.tb.Client, l1.Client4, "signal subflow", "eth1")
	if !strings.Contains(line, fmt.Sprintf(" id %d ", id)) {
		t.Errorf("the endpoint %q did not keep the implicit endpoint's id %d", line, id)
	}
	// The kernel opens the endpoint's subflows to the peer's initial
	// address; the one it followed the announce with stays.
	if after := subflowsFrom(t, b.tb.Client, l1.Client4); !slices.Contains(after, before[0]) {
		t.Errorf("the subflow %s from the implicit endpoint's address was closed: now %v", before[0], after)
	}
}

// TestImplicitEndpointAtStart: an implicit endpoint the kernel created
// before mptcpgod started, with an id outside mptcpgod's range, on an
// address mptcpgod wants, is deleted and replaced by mptcpgod's; the
// endpoint stays mptcpgod's across a restart, and the connection lives.
func TestImplicitEndpointAtStart(t *testing.T) {
	t.Parallel()
	b := newImplicitBed(t)
	l1 := b.tb.Links[1]
	acceptJoins(b.tb.Client)
	dial(t, b.tb.Client, b.srv)
	id := b.waitImplicit(t, l1.Client4)
	if id >= 100 && id <= 199 {
		t.Fatalf("the implicit endpoint has id %d, inside mptcpgod's range: the test needs one outside", id)
	}

	r := daemontest.Run(t, b.tb.Client, config("kernel"))
	waitEndpointOK(t, r, b.tb.Client, l1.Client4, "subflow fullmesh", "eth1")
	r.Stop()
	r = daemontest.Run(t, b.tb.Client, config("kernel"))
	waitEndpointOK(t, r, b.tb.Client, l1.Client4, "subflow fullmesh", "eth1")
}
