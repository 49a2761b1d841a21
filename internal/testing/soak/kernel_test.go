//go:build linux

package soak_test

import (
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
)

// endpoint is a line of `ip mptcp endpoint show`.
type endpoint struct {
	addr netip.Addr
	id   int
	line string
}

// epID is the id in an `ip mptcp endpoint show` line.
var epID = regexp.MustCompile(`\bid (\d+)\b`)

// endpoints returns h's endpoints as `ip mptcp endpoint show` prints them.
func endpoints(t *testing.T, h *netnstest.Host) []endpoint {
	t.Helper()
	var eps []endpoint
	for line := range strings.Lines(h.MustExec("ip", "mptcp", "endpoint", "show")) {
		line = strings.TrimSpace(line)
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		addr, err := netip.ParseAddr(f[0])
		m := epID.FindStringSubmatch(line)
		if err != nil || m == nil {
			t.Fatalf("ip mptcp endpoint show: cannot parse %q", line)
		}
		id, _ := strconv.Atoi(m[1])
		eps = append(eps, endpoint{addr: addr, id: id, line: line})
	}
	return eps
}

// ss's MPTCP details: the msk's token and a subflow's tokens ("token:
// 0000(id:0)/db1dfe16(id:0)": the remote and the local one).
var (
	ssMskToken = regexp.MustCompile(`\btoken:([0-9a-f]+)`)
	ssSubToken = regexp.MustCompile(`tcp-ulp-mptcp .*token:[0-9a-f]+\(id:\d+\)/([0-9a-f]+)\(id:\d+\)`)
)

// kernelConns is what ss says of h's established MPTCP connections: the
// subflows of each ("LOCALADDR->REMOTE:PORT", sorted, duplicates kept) by
// the local address of its initial subflow, and the subflows whose
// connection ss did not list.
type kernelConns struct {
	conns    map[netip.AddrPort][]string
	orphans  []string
	subflows int
}

// readConns reads h's established MPTCP connections and subflows.
func readConns(t *testing.T, h *netnstest.Host) kernelConns {
	t.Helper()
	byToken := map[string]netip.AddrPort{}
	kc := kernelConns{conns: map[netip.AddrPort][]string{}}
	for _, rec := range h.SSRecords("-M", "-i", "state", "established") {
		m := ssMskToken.FindStringSubmatch(rec)
		local, _, err := netnstest.SSAddrs(rec)
		if m == nil || err != nil {
			continue
		}
		byToken[m[1]] = local
		kc.conns[local] = nil
	}
	for _, rec := range h.SSRecords("-t", "-i", "state", "established") {
		m := ssSubToken.FindStringSubmatch(rec)
		if m == nil {
			continue
		}
		local, remote, err := netnstest.SSAddrs(rec)
		if err != nil {
			t.Fatalf("ss: %v", err)
		}
		path := local.Addr().String() + "->" + remote.String()
		kc.subflows++
		conn, ok := byToken[m[1]]
		if !ok {
			kc.orphans = append(kc.orphans, path+" token "+m[1])
			continue
		}
		kc.conns[conn] = append(kc.conns[conn], path)
	}
	for _, ps := range kc.conns {
		slices.Sort(ps)
	}
	return kc
}

// pathSet returns every local address to remote, sorted.
func pathSet(locals []netip.Addr, remote netip.AddrPort) []string {
	var ps []string
	for _, l := range locals {
		ps = append(ps, l.String()+"->"+remote.String())
	}
	slices.Sort(ps)
	return ps
}
