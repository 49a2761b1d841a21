package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/enginetest"
	"github.com/mptcpgod/mptcpgod/internal/testing/syncbuf"
)

// These tests run mptcpctl in-process against the real kernel, in
// namespaces of their own (-n), and check what it prints against iproute2
// (ip mptcp, ss) and sysctl run in the same namespace.

// ctl runs mptcpctl -n h args... in-process.
func ctl(t *testing.T, h *netnstest.Host, args ...string) result {
	t.Helper()
	return mptcpctl(t, append([]string{"-n", h.Name()}, args...)...)
}

// mustCtl runs ctl and fails the test unless it exits 0.
func mustCtl(t *testing.T, h *netnstest.Host, args ...string) string {
	t.Helper()
	r := ctl(t, h, args...)
	if r.code != exitOK {
		t.Fatalf("mptcpctl %s: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

// decode unmarshals JSON output, failing the test on error.
func decode[T any](t *testing.T, out string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("bad JSON: %v\n%s", err, out)
	}
	return v
}

// ipEndpoints returns `ip -j mptcp endpoint show` in h, converted to
// endpointOut (without ifindex, which ip does not print).
func ipEndpoints(t *testing.T, h *netnstest.Host) []endpointOut {
	t.Helper()
	var raw []map[string]any
	if err := json.Unmarshal([]byte(h.MustExec("ip", "-j", "mptcp", "endpoint", "show")), &raw); err != nil {
		t.Fatalf("ip -j mptcp endpoint show: %v", err)
	}
	out := []endpointOut{}
	for _, m := range raw {
		e := endpointOut{Flags: []string{}}
		e.Address, _ = m["address"].(string)
		if id, ok := m["id"].(float64); ok {
			e.ID = uint8(id)
		}
		if p, ok := m["port"].(float64); ok {
			e.Port = uint16(p)
		}
		e.Dev, _ = m["dev"].(string)
		for _, f := range []string{"signal", "subflow", "backup", "fullmesh", "implicit", "laminar"} {
			if b, _ := m[f].(bool); b {
				e.Flags = append(e.Flags, f)
			}
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(x, y endpointOut) int { return int(x.ID) - int(y.ID) })
	return out
}

// ctlEndpoints returns mptcpctl endpoints --json in h, without ifindex.
func ctlEndpoints(t *testing.T, h *netnstest.Host, args ...string) []endpointOut {
	t.Helper()
	eps := decode[[]endpointOut](t, mustCtl(t, h, append([]string{"endpoints", "--json"}, args...)...))
	for i := range eps {
		if (eps[i].IfIndex == 0) != (eps[i].Dev == "") {
			t.Errorf("endpoint %d: dev %q with ifindex %d", eps[i].ID, eps[i].Dev, eps[i].IfIndex)
		}
		eps[i].IfIndex = 0
	}
	return eps
}

// checkEndpoints compares mptcpctl's and ip's view of h's endpoints with
// want.
func checkEndpoints(t *testing.T, h *netnstest.Host, want []endpointOut) {
	t.Helper()
	// iproute2 before 6.18 does not know the laminar flag and omits it.
	var ipWant []endpointOut
	for _, e := range want {
		e.Flags = slices.DeleteFunc(slices.Clone(e.Flags), func(f string) bool { return f == "laminar" })
		ipWant = append(ipWant, e)
	}
	if ipWant == nil {
		ipWant = []endpointOut{}
	}
	if diff := cmp.Diff(ipWant, ipEndpoints(t, h)); diff != "" {
		t.Errorf("ip mptcp endpoint show (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, ctlEndpoints(t, h)); diff != "" {
		t.Errorf("mptcpctl endpoints --json (-want +got):\n%s", diff)
	}
}

func TestEndpointsKernel(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 2)
	h := tb.Client
	l0, l1 := tb.Links[0], tb.Links[1]
	ep := func(id uint8, addr netip.Addr, port uint16, dev string, flags ...string) endpointOut {
		if flags == nil {
			flags = []string{}
		}
		return endpointOut{ID: id, Address: addr.String(), Port: port, Dev: dev, Flags: flags}
	}
	checkEndpoints(t, h, []endpointOut{})

	// Adding prints nothing; with --json it prints the endpoints after.
	if out := mustCtl(t, h, "endpoints", "add", l0.Client4.String(), "dev", "eth0", "subflow"); out != "" {
		t.Errorf("endpoints add printed %q", out)
	}
	after := decode[[]endpointOut](t, mustCtl(t, h, "--json", "endpoints", "add", l1.Client6.String(), "id", "7", "signal", "port", "8080"))
	if len(after) != 2 || after[1].ID != 7 || after[1].Port != 8080 {
		t.Errorf("endpoints add --json printed %+v", after)
	}
	mustCtl(t, h, "endpoint", "add", l1.Client4.String(), "dev", "eth1", "id", "9", "subflow", "backup", "fullmesh")
	// Laminar endpoints came with 6.18: before, the add is refused with
	// the release that brings them, and the endpoint added without.
	laminar := []string{"laminar"}
	if !netnstest.KernelHas(genl.CapLaminar) {
		netnstest.Degraded(t, "no laminar endpoints (Linux %s): endpoints add ... laminar is refused", genl.CapLaminar.Since)
		r := ctl(t, h, "endpoints", "add", l0.Client6.String(), "laminar")
		if r.code == exitOK || !strings.Contains(r.stderr, "Linux "+genl.CapLaminar.Since) {
			t.Errorf("endpoints add laminar on Linux %s: exit %d, stderr %q; want a refusal naming Linux %s",
				netnstest.KernelRelease(), r.code, r.stderr, genl.CapLaminar.Since)
		}
		laminar = nil
	}
	mustCtl(t, h, append([]string{"endpoints", "add", l0.Client6.String()}, laminar...)...)
	want := []endpointOut{
		ep(1, l0.Client4, 0, "eth0", "subflow"),
		ep(7, l1.Client6, 8080, "", "signal"),
		ep(9, l1.Client4, 0, "eth1", "subflow", "backup", "fullmesh"),
		ep(10, l0.Client6, 0, "", laminar...), // after the highest id
	}
	checkEndpoints(t, h, want)

	// show ID prints one object; the table names the same endpoints.
	one := decode[endpointOut](t, mustCtl(t, h, "endpoints", "show", "9", "--json"))
	one.IfIndex = 0
	if diff := cmp.Diff(want[2], one); diff != "" {
		t.Errorf("endpoints show 9 --json (-want +got):\n%s", diff)
	}
	table := mustCtl(t, h, "endpoints", "show")
	for _, line := range []string{
		"ID  ADDRESS        PORT  FLAGS                    DEV",
		"1   192.0.2.1      -     subflow                  eth0",
		"7   2001:db8:2::1  8080  signal                   -",
		"9   198.51.100.1   -     subflow,backup,fullmesh  eth1",
	} {
		if !strings.Contains(table, line+"\n") {
			t.Errorf("endpoints table lacks %q:\n%s", line, table)
		}
	}

	// set is a read-modify-write: the flag not named keeps its value.
	mustCtl(t, h, "endpoints", "set", "9", "nobackup")
	want[2] = ep(9, l1.Client4, 0, "eth1", "subflow", "fullmesh")
	checkEndpoints(t, h, want)
	mustCtl(t, h, "endpoints", "set", l0.Client4.String(), "backup")
	want[0] = ep(1, l0.Client4, 0, "eth0", "subflow", "backup")
	checkEndpoints(t, h, want)
	mustCtl(t, h, "endpoints", "set", "1", "fullmesh")
	want[0] = ep(1, l0.Client4, 0, "eth0", "subflow", "backup", "fullmesh")
	checkEndpoints(t, h, want)
	mustCtl(t, h, "endpoints", "set", "9", "backup", "nofullmesh")
	want[2] = ep(9, l1.Client4, 0, "eth1", "subflow", "backup")
	checkEndpoints(t, h, want)

	// del by id and by address.
	mustCtl(t, h, "endpoints", "del", "10")
	mustCtl(t, h, "endpoints", "del", l1.Client6.String())
	want = []endpointOut{want[0], want[2]}
	checkEndpoints(t, h, want)

	if out := decode[[]endpointOut](t, mustCtl(t, h, "endpoints", "flush", "--json")); len(out) != 0 {
		t.Errorf("endpoints flush --json printed %+v", out)
	}
	checkEndpoints(t, h, []endpointOut{})
}

func TestLimitsKernel(t *testing.T) {
	t.Parallel()
	h := netnstest.NewHost(t, "limits")
	// iproute2 6.1 prints "add_addr_accepted N subflows N", even with -j.
	ipLimits := func() limitsOut {
		var l limitsOut
		out := h.MustExec("ip", "mptcp", "limits")
		if _, err := fmt.Sscanf(out, "add_addr_accepted %d subflows %d", &l.AddAddrAccepted, &l.Subflows); err != nil {
			t.Fatalf("ip mptcp limits: %q: %v", out, err)
		}
		return l
	}
	check := func(want limitsOut) {
		t.Helper()
		if got := ipLimits(); got != want {
			t.Errorf("ip mptcp limits = %+v, want %+v", got, want)
		}
		if got := decode[limitsOut](t, mustCtl(t, h, "limits", "--json")); got != want {
			t.Errorf("mptcpctl limits --json = %+v, want %+v", got, want)
		}
		table := fmt.Sprintf("SUBFLOWS  ADD_ADDR_ACCEPTED\n%-8d  %d\n", want.Subflows, want.AddAddrAccepted)
		if diff := cmp.Diff(table, mustCtl(t, h, "limits")); diff != "" {
			t.Errorf("mptcpctl limits (-want +got):\n%s", diff)
		}
	}
	check(ipLimits())
	if out := mustCtl(t, h, "limits", "set", "subflows", "4"); out != "" {
		t.Errorf("limits set printed %q", out)
	}
	check(limitsOut{Subflows: 4})
	got := decode[limitsOut](t, mustCtl(t, h, "limits", "set", "add-addr-accepted", "8", "--json"))
	if want := (limitsOut{Subflows: 4, AddAddrAccepted: 8}); got != want {
		t.Errorf("limits set --json = %+v, want %+v", got, want)
	}
	check(limitsOut{Subflows: 4, AddAddrAccepted: 8})
	mustCtl(t, h, "limits", "set", "add-addr-accepted", "0", "subflows", "0")
	check(limitsOut{})
}

func TestPMKernel(t *testing.T) {
	t.Parallel()
	h := netnstest.NewHost(t, "pm")
	sysctl := func() string {
		return strings.TrimSpace(h.MustExec("sysctl", "-n", "net.mptcp.path_manager"))
	}
	// Before 6.15 only net.mptcp.pm_type says it: 0 kernel, 1 userspace.
	if !netnstest.KernelHas(genl.CapPathManagerSysctl) {
		netnstest.Degraded(t, "no net.mptcp.path_manager (Linux %s): checked net.mptcp.pm_type", genl.CapPathManagerSysctl.Since)
		sysctl = func() string {
			v := strings.TrimSpace(h.MustExec("sysctl", "-n", "net.mptcp.pm_type"))
			return map[string]string{"0": "kernel", "1": "userspace"}[v]
		}
	}
	for _, pm := range []string{"userspace", "kernel", "userspace"} {
		if out := mustCtl(t, h, "pm", pm); out != "" {
			t.Errorf("pm %s printed %q", pm, out)
		}
		if got := sysctl(); got != pm {
			t.Errorf("after pm %s, sysctl net.mptcp.path_manager = %q", pm, got)
		}
		if got := mustCtl(t, h, "pm"); got != pm+"\n" {
			t.Errorf("pm = %q, want %q", got, pm+"\n")
		}
		if got := decode[pmOut](t, mustCtl(t, h, "pm", "--json")); got.PathManager != pm {
			t.Errorf("pm --json = %+v, want %s", got, pm)
		}
	}
	h.SetPathManager("kernel")
	if got := decode[pmOut](t, mustCtl(t, h, "pm", "kernel", "--json")); got.PathManager != "kernel" {
		t.Errorf("pm kernel --json = %+v", got)
	}
}

// ssConn is one connection as ss -MHni shows it.
type ssConn struct {
	local, remote string
	token         uint32
	subflows      int // all subflows: ss shows the extra ones
}

// ssSubflow is one subflow as ss -tinH shows it.
type ssSubflow struct {
	local, remote     string
	dev               string // the device the socket is bound to, if any
	token             uint32 // local token
	localID, remoteID uint8
	flags             string // ss letters, without v (valid mapping comes and goes)
}

// ssRecords splits ss output into records: a line starting a socket plus
// its indented continuation lines.
func ssRecords(out string) [][]string {
	var recs [][]string
	for _, line := range strings.Split(out, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		if line[0] != ' ' && line[0] != '\t' || len(recs) == 0 {
			recs = append(recs, nil)
		}
		recs[len(recs)-1] = append(recs[len(recs)-1], strings.Fields(line)...)
	}
	return recs
}

var (
	ssToken    = regexp.MustCompile(`^token:([0-9a-f]+)$`)
	ssSubflows = regexp.MustCompile(`^subflows:(\d+)$`)
	ssULP      = regexp.MustCompile(`^token:([0-9a-f]+)\(id:(\d+)\)/([0-9a-f]+)\(id:(\d+)\)$`)
	ssFlags    = regexp.MustCompile(`^flags:([A-Za-z]+)$`)
	ssBound    = regexp.MustCompile(`^(.*)%([^%:\]]+)(:\d+)$`) // 192.0.2.1%eth1:40000
)

// ssConns returns `ss -MHni` in h.
func ssConns(t *testing.T, h *netnstest.Host) []ssConn {
	t.Helper()
	var out []ssConn
	for _, f := range ssRecords(h.MustExec("ss", "-MHni")) {
		c := ssConn{local: f[3], remote: f[4], subflows: 1}
		for _, w := range f[5:] {
			if m := ssToken.FindStringSubmatch(w); m != nil {
				n, _ := strconv.ParseUint(m[1], 16, 32)
				c.token = uint32(n)
			}
			if m := ssSubflows.FindStringSubmatch(w); m != nil {
				n, _ := strconv.Atoi(m[1])
				c.subflows = n + 1
			}
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(x, y ssConn) int { return strings.Compare(x.local+x.remote, y.local+y.remote) })
	return out
}

// ssSubflowList returns the MPTCP subflows of `ss -tinH` in h.
func ssSubflowList(t *testing.T, h *netnstest.Host) []ssSubflow {
	t.Helper()
	var out []ssSubflow
	for _, f := range ssRecords(h.MustExec("ss", "-tinH")) {
		s := ssSubflow{local: f[3], remote: f[4]}
		if m := ssBound.FindStringSubmatch(s.local); m != nil {
			s.local, s.dev = m[1]+m[3], m[2]
		}
		mptcp := false
		for _, w := range f[5:] {
			if m := ssULP.FindStringSubmatch(w); m != nil {
				mptcp = true
				n, _ := strconv.ParseUint(m[3], 16, 32)
				s.token = uint32(n)
				rid, _ := strconv.Atoi(m[2])
				lid, _ := strconv.Atoi(m[4])
				s.localID, s.remoteID = uint8(lid), uint8(rid)
			}
			if m := ssFlags.FindStringSubmatch(w); m != nil {
				s.flags = strings.ReplaceAll(m[1], "v", "")
			}
		}
		if mptcp {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(x, y ssSubflow) int { return strings.Compare(x.local+x.remote, y.local+y.remote) })
	return out
}

// waitFor polls cond until it holds (enginetest.Poll).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	enginetest.Poll(t, what, func() string {
		if cond() {
			return ""
		}
		return "not yet"
	})
}

// mptcpPair dials an MPTCP connection from tb.Client to srv:8080 and
// exchanges some bytes; both ends are closed at cleanup. The server listens
// on every address, so that joins to the addresses it announces find the
// listener.
func mptcpPair(t *testing.T, tb *netnstest.Testbed, network string, srv netip.Addr) net.Conn {
	t.Helper()
	any := "0.0.0.0:8080"
	if network == "tcp6" {
		any = "[::]:8080"
	}
	ln := tb.Server.Listen(network, any)
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	c, err := tb.Client.Dial(network, "", netip.AddrPortFrom(srv, 8080).String())
	if err != nil {
		t.Fatal(err)
	}
	s, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { _ = s.Close() })
	if _, err := c.Write(make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(s, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(make([]byte, 500)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 500)); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConnectionsAndSubflows(t *testing.T) {
	t.Parallel()
	for _, family := range []string{"tcp4", "tcp6"} {
		for n := 1; n <= 4; n++ {
			t.Run(fmt.Sprintf("%s/%d", family, n), func(t *testing.T) {
				t.Parallel()
				testConnections(t, family, n)
			})
		}
	}
}

// testConnections builds a connection with n subflows and compares
// mptcpctl connections and subflows with ss on both hosts.
func testConnections(t *testing.T, family string, n int) {
	links := min(max(n, 1), netnstest.MaxLinks)
	tb := netnstest.NewTestbed(t, links)
	addr := func(l netnstest.Link, client bool) netip.Addr {
		switch {
		case family == "tcp4" && client:
			return l.Client4
		case family == "tcp4":
			return l.Server4
		case client:
			return l.Client6
		}
		return l.Server6
	}
	extra := fmt.Sprint(n - 1)
	for _, h := range []*netnstest.Host{tb.Client, tb.Server} {
		mustCtl(t, h, "limits", "set", "subflows", extra)
	}
	// Subflow endpoints on links 1 and 2 give one subflow each; the fourth
	// subflow goes from the link-1 endpoint to an address the server
	// announces.
	for i := 1; i < min(n, netnstest.MaxLinks); i++ {
		mustCtl(t, tb.Client, "endpoints", "add", addr(tb.Links[i], true).String(), "dev", tb.Links[i].ClientIf, "subflow")
	}
	if n == 4 {
		mustCtl(t, tb.Client, "limits", "set", "add-addr-accepted", "1")
		mustCtl(t, tb.Server, "endpoints", "add", addr(tb.Links[1], false).String(), "dev", tb.Links[1].ServerIf, "signal")
	}
	mptcpPair(t, tb, family, addr(tb.Links[0], false))
	waitFor(t, fmt.Sprintf("%d subflows in ss -MHni", n), func() bool {
		cs := ssConns(t, tb.Client)
		return len(cs) == 1 && cs[0].subflows == n
	})
	// The server's side joins when the client's SYNs arrive.
	waitFor(t, fmt.Sprintf("%d subflows on the server", n), func() bool {
		return len(ssSubflowList(t, tb.Server)) == n
	})

	devOf := map[string]string{}
	for _, l := range tb.Links {
		devOf[addr(l, true).String()] = l.ClientIf
		devOf[addr(l, false).String()] = l.ServerIf
	}
	for _, h := range []*netnstest.Host{tb.Client, tb.Server} {
		ss := ssConns(t, h)
		conns := decode[[]connectionOut](t, mustCtl(t, h, "connections", "--json"))
		if len(conns) != len(ss) || len(conns) != 1 {
			t.Fatalf("%s: connections %+v, ss shows %+v", h.Name(), conns, ss)
		}
		c := conns[0]
		got := ssConn{local: c.Local, remote: c.Remote, subflows: c.Subflows}
		fmt.Sscanf(c.Token, "%x", &got.token)
		if diff := cmp.Diff(ss[0], got, cmp.AllowUnexported(ssConn{})); diff != "" {
			t.Errorf("%s: connection vs ss -MHni (-ss +mptcpctl):\n%s", h.Name(), diff)
		}
		pm, minBytes := wantConnPM(t, "kernel"), uint64(500)
		if !netnstest.KernelAtLeast(6, 5) {
			// struct mptcp_info has no byte counters before 6.5.
			netnstest.Degraded(t, "mptcp_info has no byte counters before Linux 6.5: connections shows 0 bytes")
			minBytes = 0
		}
		if c.State != "established" || c.Fallback || c.PathManager != pm || c.BytesSent < minBytes || c.BytesReceived < minBytes {
			t.Errorf("%s: connection %+v: want established, no fallback, %s PM, >= %d bytes each way", h.Name(), c, pm, minBytes)
		}
		table := mustCtl(t, h, "connections")
		if !strings.Contains(table, c.Token+"  "+c.Local) || !strings.HasPrefix(table, "TOKEN ") {
			t.Errorf("%s: connections table lacks %s:\n%s", h.Name(), c.Token, table)
		}

		groups := decode[[]subflowGroupOut](t, mustCtl(t, h, "subflows", "--json"))
		if len(groups) != 1 || groups[0].Token != c.Token || groups[0].PathManager != pm {
			t.Fatalf("%s: subflows groups %+v, want one for %s", h.Name(), groups, c.Token)
		}
		var mine []ssSubflow
		for _, s := range groups[0].Subflows {
			sf := ssSubflow{local: s.Local, remote: s.Remote, dev: s.Dev, token: got.token, localID: s.LocalID, remoteID: s.RemoteID,
				flags: strings.ReplaceAll(subflowLetters(s.Flags), "v", "")}
			mine = append(mine, sf)
			local, _ := netip.ParseAddrPort(s.Local)
			if want := devOf[local.Addr().String()]; s.Dev != want {
				t.Errorf("%s: subflow %s dev %q, want %q", h.Name(), s.Local, s.Dev, want)
			}
			if s.State != "established" || s.RTTMicros == 0 {
				t.Errorf("%s: subflow %+v: want established with an rtt", h.Name(), s)
			}
		}
		slices.SortFunc(mine, func(x, y ssSubflow) int { return strings.Compare(x.local+x.remote, y.local+y.remote) })
		ssSfs := ssSubflowList(t, h)
		for i := range ssSfs {
			// ss names the device of bound sockets only; mptcpctl names
			// one for every subflow, checked above.
			if i < len(mine) && ssSfs[i].dev == "" {
				mine[i].dev = ""
			}
		}
		if diff := cmp.Diff(ssSfs, mine, cmp.AllowUnexported(ssSubflow{})); diff != "" {
			t.Errorf("%s: subflows vs ss -tinH (-ss +mptcpctl):\n%s", h.Name(), diff)
		}
		// The initial subflow comes first; the filter by token gives the same.
		if f := groups[0].Subflows[0].Flags; !slices.Contains(f, "mp_capable_local") && !slices.Contains(f, "mp_capable_remote") {
			t.Errorf("%s: first subflow is not the MP_CAPABLE one: %v", h.Name(), f)
		}
		byToken := decode[[]subflowGroupOut](t, mustCtl(t, h, "subflows", c.Token, "--json"))
		if len(byToken) != 1 || len(byToken[0].Subflows) != n {
			t.Errorf("%s: subflows %s: %+v", h.Name(), c.Token, byToken)
		}
		table = mustCtl(t, h, "subflows", "0x"+c.Token)
		if !strings.HasPrefix(table, "token "+c.Token+"  "+c.Local+" → "+c.Remote+"  pm "+pm) ||
			strings.Count(table, "\n") != n+2 {
			t.Errorf("%s: subflows table:\n%s", h.Name(), table)
		}
	}
}

func TestConnectionsUserspacePM(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 1)
	mustCtl(t, tb.Client, "pm", "userspace")
	mptcpPair(t, tb, "tcp4", tb.Links[0].Server4)
	for _, tt := range []struct {
		h  *netnstest.Host
		pm string
	}{{tb.Client, wantConnPM(t, "userspace")}, {tb.Server, wantConnPM(t, "kernel")}} {
		conns := decode[[]connectionOut](t, mustCtl(t, tt.h, "connections", "--json"))
		if len(conns) != 1 || conns[0].PathManager != tt.pm || conns[0].Subflows != 1 {
			t.Errorf("%s: connections %+v, want one with pm %s and 1 subflow", tt.h.Name(), conns, tt.pm)
		}
		groups := decode[[]subflowGroupOut](t, mustCtl(t, tt.h, "subflows", "--json"))
		if len(groups) != 1 || groups[0].PathManager != tt.pm {
			t.Errorf("%s: subflows %+v, want pm %s", tt.h.Name(), groups, tt.pm)
		}
	}
}

var eventLineRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d) [a-z_]+( [a-z_]+=\S+)*$`)

func TestMonitorKernel(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 2)
	// The server announces its link-1 address; the client's fullmesh
	// endpoint, bound to eth1, opens a subflow to it and one to the
	// server's first address.
	for _, h := range []*netnstest.Host{tb.Client, tb.Server} {
		mustCtl(t, h, "limits", "set", "subflows", "2", "add-addr-accepted", "1")
	}
	mustCtl(t, tb.Server, "endpoints", "add", tb.Links[1].Server4.String(), "dev", "eth1", "signal")
	mustCtl(t, tb.Client, "endpoints", "add", tb.Links[1].Client4.String(), "dev", "eth1", "subflow", "fullmesh")

	type monitor struct {
		out, errb syncbuf.Buffer
		done      chan int
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := func(args ...string) *monitor {
		m := &monitor{done: make(chan int, 1)}
		a := newApp(&m.out, &m.errb)
		ready := make(chan struct{})
		a.subscribed = func() { close(ready) }
		go func() { m.done <- a.execute(ctx, append([]string{"-n", tb.Client.Name(), "monitor"}, args...)) }()
		select {
		case <-ready:
		case code := <-m.done:
			t.Fatalf("monitor exited with %d: %s", code, m.errb.String())
		}
		return m
	}
	text, js := start(), start("--json")

	c := mptcpPair(t, tb, "tcp4", tb.Links[0].Server4)
	conns := decode[[]connectionOut](t, mustCtl(t, tb.Client, "connections", "--json"))
	if len(conns) != 1 {
		t.Fatalf("connections: %+v", conns)
	}
	token := conns[0].Token
	waitFor(t, "sub_established in monitor output", func() bool {
		return strings.Contains(text.out.String(), " sub_established token="+token+" local="+tb.Links[1].Client4.String()) &&
			strings.Contains(js.out.String(), `"type":"sub_established"`)
	})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "closed in monitor output", func() bool {
		return strings.Contains(text.out.String(), " closed token="+token) &&
			strings.Contains(js.out.String(), `"type":"closed"`)
	})

	cancel()
	for _, m := range []*monitor{text, js} {
		select {
		case code := <-m.done:
			if code != exitOK {
				t.Errorf("monitor exited with %d: %s", code, m.errb.String())
			}
		case <-time.After(netnstest.Patience(10 * time.Second)):
			t.Fatal("monitor did not stop on context cancel")
		}
	}

	var types []string
	for _, line := range strings.Split(strings.TrimSuffix(text.out.String(), "\n"), "\n") {
		if !eventLineRE.MatchString(line) {
			t.Errorf("bad event line %q", line)
		}
		if strings.Contains(line, "token="+token) {
			types = append(types, strings.Fields(line)[1])
		}
	}
	for _, want := range []string{"created", "established", "announced", "sub_established", "closed"} {
		if !slices.Contains(types, want) {
			t.Errorf("monitor printed %v for %s, want %s among them", types, token, want)
		}
	}
	for _, re := range []string{
		fmt.Sprintf(` announced token=%s remote=%s:8080 remote_id=\d+\n`, token, tb.Links[1].Server4),
		fmt.Sprintf(` sub_established token=%s local=%s:\d+ remote=%s:8080 local_id=\d+ remote_id=\d+ backup=false dev=eth1 ifindex=\d+\n`,
			token, tb.Links[1].Client4, tb.Links[1].Server4),
	} {
		if !regexp.MustCompile(re).MatchString(text.out.String()) {
			t.Errorf("no match for %q in:\n%s", re, text.out.String())
		}
	}
	var jsTypes []string
	for _, line := range strings.Split(strings.TrimSuffix(js.out.String(), "\n"), "\n") {
		ev := decode[eventOut](t, line)
		if _, err := time.Parse(time.RFC3339, ev.Time); err != nil || !strings.Contains(ev.Time, ".") {
			t.Errorf("event time %q: want RFC 3339 with milliseconds", ev.Time)
		}
		if ev.Token == token {
			jsTypes = append(jsTypes, ev.Type)
		}
	}
	if diff := cmp.Diff(types, jsTypes); diff != "" {
		t.Errorf("--json event types differ from the text ones (-text +json):\n%s", diff)
	}
}

func TestBadInputKernel(t *testing.T) {
	t.Parallel()
	// Before 6.2 the kernel gave no errno in its text.
	dupDetail := func(errno string) string {
		if netnstest.KernelAtLeast(6, 2) {
			return ": " + errno
		}
		netnstest.Degraded(t, "before Linux 6.2 the kernel's text for a refused endpoint has no errno")
		return ""
	}
	tb := netnstest.NewTestbed(t, 2)
	h := tb.Client
	mustCtl(t, h, "endpoints", "add", "192.0.2.1", "dev", "eth0", "id", "1", "subflow")
	mustCtl(t, h, "endpoints", "add", "198.51.100.1", "dev", "eth1", "id", "2", "signal")
	mustCtl(t, h, "limits", "set", "subflows", "3")
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"endpoints", "add", "192.0.2.300"}, exitUsage, `endpoints add: invalid address "192.0.2.300"`},
		{[]string{"endpoints", "add", "203.0.113.1", "id", "300"}, exitUsage, "endpoints add: id 300: out of range 1..255"},
		{[]string{"endpoints", "add", "203.0.113.1", "--backup"}, exitUsage, "endpoints add: unknown flag: --backup"},
		{[]string{"endpoints", "add", "203.0.113.1", "bakup"}, exitUsage, `endpoints add: unknown word "bakup": expected dev, id, port, signal, subflow, backup, fullmesh or laminar`},
		{[]string{"endpoints", "add", "203.0.113.1", "signal", "fullmesh"}, exitUsage, "endpoints add: signal with fullmesh: an endpoint cannot be both"},
		{[]string{"endpoints", "add", "203.0.113.1", "port", "80"}, exitUsage, "endpoints add: port without signal: an endpoint with a port must be signal and not subflow"},
		{[]string{"endpoints", "set", "1", "signal"}, exitUsage, "endpoints set: signal: the kernel can change only backup and fullmesh; expected backup, nobackup, fullmesh or nofullmesh"},
		{[]string{"limits", "set", "subflows", "9"}, exitUsage, "limits set: subflows 9: out of range 0..8"},
		{[]string{"subflows", "nothex"}, exitUsage, `subflows: invalid token "nothex": expected up to 8 hexadecimal digits`},
		// The kernel or the system refuses: its own text is shown.
		{[]string{"endpoints", "add", "192.0.2.1", "subflow"}, exitRefused, "endpoints add: 192.0.2.1: too many addresses or duplicate one" + dupDetail("-17")},
		{[]string{"endpoints", "add", "203.0.113.1", "id", "1"}, exitRefused, "endpoints add: 203.0.113.1: too many addresses or duplicate one" + dupDetail("-16")},
		{[]string{"endpoints", "add", "203.0.113.1", "dev", "eth7"}, exitRefused, `endpoints add: dev "eth7": no such interface`},
		{[]string{"endpoints", "del", "9"}, exitRefused, "endpoints del: endpoint 9: address not found"},
		{[]string{"endpoints", "show", "9"}, exitRefused, "endpoints show: endpoint 9: address not found"},
		{[]string{"endpoints", "del", "203.0.113.1"}, exitRefused, "endpoints del: no endpoint with address 203.0.113.1"},
		{[]string{"endpoints", "set", "2", "fullmesh"}, exitRefused, "endpoints set: endpoint 2 is a signal endpoint: it cannot be fullmesh"},
		{[]string{"subflows", "deadbeef"}, exitRefused, "subflows: no MPTCP connection with token deadbeef"},
	}
	limits := mustCtl(t, h, "limits")
	for _, tt := range tests {
		before := ipEndpoints(t, h)
		r := ctl(t, h, tt.args...)
		if r.code != tt.code {
			t.Errorf("%q: exit code %d, want %d (%s)", tt.args, r.code, tt.code, r.stderr)
		}
		if first, _, _ := strings.Cut(r.stderr, "\n"); first != "mptcpctl: "+tt.msg {
			t.Errorf("%q: stderr %q, want %q", tt.args, first, "mptcpctl: "+tt.msg)
		}
		if diff := cmp.Diff(before, ipEndpoints(t, h)); diff != "" {
			t.Errorf("%q changed the endpoints (-before +after):\n%s", tt.args, diff)
		}
	}
	if got := mustCtl(t, h, "limits"); got != limits {
		t.Errorf("limits changed: %q, was %q", got, limits)
	}
}

func TestCompletionKernel(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 1)
	h := tb.Client
	mustCtl(t, h, "endpoints", "add", "192.0.2.1", "id", "5", "subflow")
	mptcpPair(t, tb, "tcp4", tb.Links[0].Server4)
	conns := decode[[]connectionOut](t, mustCtl(t, h, "connections", "--json"))
	if len(conns) != 1 {
		t.Fatalf("connections: %+v", conns)
	}
	complete := func(args ...string) []string {
		t.Helper()
		r := ctl(t, h, append([]string{"__complete"}, args...)...)
		lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		if r.code != exitOK || len(lines) == 0 || lines[len(lines)-1] != ":4" {
			t.Fatalf("__complete %q: exit %d, %q %q", args, r.code, r.stdout, r.stderr)
		}
		return lines[:len(lines)-1]
	}
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"endpoints", "del", ""}, []string{"5\t192.0.2.1 subflow", "192.0.2.1\tid 5 subflow"}},
		{[]string{"endpoints", "set", "5", ""}, []string{"backup", "nobackup", "fullmesh", "nofullmesh"}},
		{[]string{"endpoints", "add", ""}, []string{"192.0.2.1\teth0", "2001:db8:1::1\teth0"}},
		{[]string{"endpoints", "add", "192.0.2.1", "dev", ""}, []string{"eth0", "lo"}},
		{[]string{"subflows", ""}, []string{
			"backup\tMake a subflow of a connection backup, or not (MP_PRIO)",
			"create\tOpen a subflow of a connection (MP_JOIN)",
			"destroy\tClose a subflow of a connection",
			conns[0].Token + "\t" + conns[0].Local + " → " + conns[0].Remote,
		}},
		{[]string{"subflows", "destroy", ""}, []string{conns[0].Token + "\t" + conns[0].Local + " → " + conns[0].Remote}},
		{[]string{"connections", "announce", ""}, []string{conns[0].Token + "\t" + conns[0].Local + " → " + conns[0].Remote}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, complete(tt.args...)); diff != "" {
			t.Errorf("__complete %q (-want +got):\n%s", tt.args, diff)
		}
	}
}

// wantConnPM returns the path manager mptcpctl names for a connection of
// pm: "unknown" before 6.9, whose kernels cannot tell (they ignore the
// token of a per-connection address dump).
func wantConnPM(t *testing.T, pm string) string {
	t.Helper()
	if netnstest.KernelHas(genl.CapConnAddrDump) {
		return pm
	}
	netnstest.Degraded(t, "no per-connection address dump (Linux %s): connections name the path manager unknown", genl.CapConnAddrDump.Since)
	return "unknown"
}
