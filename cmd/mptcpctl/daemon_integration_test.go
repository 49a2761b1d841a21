package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/daemon/ctlhttp"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/internal/testing/daemontest"
	"github.com/mptcpgod/mptcpgod/internal/testing/syncbuf"
)

// These tests run the real daemon (internal/daemon) in a test namespace
// with its control socket in a temporary directory, and mptcpctl's daemon
// commands against it, in-process and, for the access checks, as nobody.

// liveDaemon is a daemon run by startDaemon.
type liveDaemon struct {
	*daemontest.InProcess
	sock string
}

// readGroup is the group the test daemons let read; nobody is put in it.
const readGroup = 4248

// daemonConfig is a configuration for a testbed's client in mode, with
// its control socket at sock and more TOML appended.
func daemonConfig(mode, sock string, more ...string) string {
	return fmt.Sprintf("mode = %q\nset_path_manager = true\n\n[control]\nsocket = %q\ngroup = \"%d\"\n\n"+
		"[links]\ninclude_kinds = [\"virtual\"]\n%s", mode, sock, readGroup, strings.Join(more, "\n"))
}

// startDaemon runs a daemon in h in mode, with more configuration, until
// the test ends; its control socket is in a directory anyone may enter.
func startDaemon(t *testing.T, h *netnstest.Host, mode string, more ...string) *liveDaemon {
	t.Helper()
	dir, err := os.MkdirTemp("", "mptcpctl-daemon-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "mptcpgod.sock")
	t.Cleanup(func() {
		if _, err := os.Lstat(sock); !os.IsNotExist(err) {
			t.Errorf("the socket outlived the daemon: %v", err)
		}
	})
	return &liveDaemon{InProcess: daemontest.Run(t, h, daemonConfig(mode, sock, more...)), sock: sock}
}

// ask runs mptcpctl --socket SOCK args in-process and fails the test
// unless it exits 0.
func (ld *liveDaemon) ask(t *testing.T, args ...string) string {
	t.Helper()
	r := mptcpctl(t, append([]string{"--socket", ld.sock}, args...)...)
	if r.code != exitOK {
		t.Fatalf("mptcpctl %s: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

// server is an echo server on every address of a testbed's server.
func server(t *testing.T, tb *netnstest.Testbed) netip.AddrPort {
	t.Helper()
	tb.Server.MustExec("ip", "mptcp", "limits", "set", "subflows", "8", "add_addr_accepted", "8")
	ln := tb.Server.Listen("tcp", "0.0.0.0:0")
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	port := netip.MustParseAddrPort(ln.Addr().String()).Port()
	return netip.AddrPortFrom(tb.Links[0].Server4, port)
}

// open dials an MPTCP connection from tb.Client to srv, closed when the
// test ends, and returns its local address.
func open(t *testing.T, tb *netnstest.Testbed, srv netip.AddrPort) netip.AddrPort {
	t.Helper()
	c, err := tb.Client.Dial("tcp", "", srv.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort(c.LocalAddr().String())
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// connOf returns the daemon's view of the connection whose initial
// subflow has the local address local.
func connOf(t *testing.T, ld *liveDaemon, local netip.AddrPort) (pmstate.Conn, bool) {
	t.Helper()
	ps := decode[ctlapi.Paths](t, ld.ask(t, "paths", "--json"))
	for _, c := range ps.Conns {
		if c.Local == local {
			return c, true
		}
	}
	return pmstate.Conn{}, false
}

// meshed reports whether the connection has an established subflow from
// every client address of the testbed to the server.
func meshed(c pmstate.Conn, tb *netnstest.Testbed) bool {
	n := 0
	for _, p := range c.Paths {
		for _, l := range tb.Links {
			if p.Local == l.Client4 && p.State == "established" {
				n++
			}
		}
	}
	return n == len(tb.Links)
}

// scrape fetches /metrics over the socket and parses it with the
// Prometheus text parser.
func scrape(t *testing.T, ld *liveDaemon) map[string]*dto.MetricFamily {
	t.Helper()
	b, err := (&ctlapi.Client{Socket: ld.sock}).Metrics(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("parse metrics: %v\n%s", err, b)
	}
	return fams
}

// sample returns the value of the sample of name with the label
// name=value (none when label is empty).
func sample(fams map[string]*dto.MetricFamily, name, label, value string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
	for _, m := range f.Metric {
		ok := label == ""
		for _, lp := range m.Label {
			ok = ok || lp.GetName() == label && lp.GetValue() == value
		}
		if !ok {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// TestDaemonUserspace: every daemon command, as a table and with --json,
// against a real userspace-mode daemon managing real connections; the
// event stream shows its decisions; the metrics move with connections;
// a reload applies a new policy and refuses a broken file.
func TestDaemonUserspace(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 2)
	ld := startDaemon(t, tb.Client, "userspace")
	srv := server(t, tb)
	before := scrape(t, ld)

	// The event stream, open before the connection.
	evOut := &syncbuf.Buffer{}
	evCtx, stopEvents := context.WithCancel(t.Context())
	subscribed := make(chan struct{})
	evApp := newApp(evOut, &syncbuf.Buffer{})
	evApp.subscribed = func() { close(subscribed) }
	evDone := make(chan int, 1)
	go func() { evDone <- evApp.execute(evCtx, []string{"--socket", ld.sock, "events", "--json"}) }()
	<-subscribed

	local := open(t, tb, srv)
	var conn pmstate.Conn
	waitFor(t, "the connection meshed over both links", func() bool {
		c, ok := connOf(t, ld, local)
		conn = c
		return ok && meshed(c, tb)
	})
	token := formatToken(conn.Token)

	// The daemon's token is the kernel's.
	conns := decode[[]connectionOut](t, mustCtl(t, tb.Client, "connections", "--json"))
	if !slices.ContainsFunc(conns, func(c connectionOut) bool { return c.Token == token && c.Local == local.String() }) {
		t.Errorf("the kernel has no connection %s from %s: %+v", token, local, conns)
	}

	// status
	st := decode[ctlapi.Status](t, ld.ask(t, "status", "--json"))
	if st.Mode != pmstate.ModeUserspace || !st.Ready || st.Version != daemontest.Version || st.ConfigFile != ld.ConfigFile ||
		st.Connections < 1 || st.Counters.Actions["create_subflow"] < 1 || st.Policy.Name != "fullmesh" {
		t.Errorf("status: %+v", st)
	}
	table := ld.ask(t, "status")
	for _, want := range []string{"mptcpgod v0.0.0-test, mode userspace, ready, up ", "policy    fullmesh\n",
		"create_subflow", "eth0  virtual", "no recent errors"} {
		if !strings.Contains(table, want) {
			t.Errorf("status lacks %q:\n%s", want, table)
		}
	}

	// links
	ls := decode[ctlapi.Links](t, ld.ask(t, "links", "--json"))
	uses := map[netip.Addr]pmstate.Addr{}
	for _, l := range ls.Links {
		for _, a := range l.Addrs {
			uses[a.Addr] = a
		}
	}
	for _, l := range tb.Links {
		if a := uses[l.Client4]; !a.Used || !a.Usable || a.Subflows < 1 || !strings.HasSuffix(a.Use, "subflow") && !strings.HasSuffix(a.Use, "subflows") {
			t.Errorf("links: %s is %+v, want used by subflows", l.Client4, a)
		}
	}
	if a, ok := uses[netip.MustParseAddr("127.0.0.1")]; ok && (a.Used || !strings.HasPrefix(a.Use, "not usable: ")) {
		t.Errorf("links: 127.0.0.1 is %+v", a)
	}
	if table := ld.ask(t, "links"); !strings.Contains(table, tb.Links[1].Client4.String()) || !strings.Contains(table, "LINK  ") {
		t.Errorf("links table:\n%s", table)
	}

	// paths, all and one
	one := decode[ctlapi.Paths](t, ld.ask(t, "paths", token, "--json"))
	if len(one.Conns) != 1 || one.Conns[0].Token != conn.Token || !meshed(one.Conns[0], tb) || one.Mode != pmstate.ModeUserspace {
		t.Errorf("paths %s: %+v", token, one)
	}
	table = ld.ask(t, "paths", token)
	if !strings.HasPrefix(table, "token "+token+"  client  "+local.String()+" → "+srv.String()+"  pm userspace\n") ||
		strings.Count(table, "established") < 2 {
		t.Errorf("paths %s table:\n%s", token, table)
	}
	if all := ld.ask(t, "paths"); !strings.Contains(all, "token "+token) {
		t.Errorf("paths table:\n%s", all)
	}

	// policies
	pol := decode[ctlapi.Policies](t, ld.ask(t, "policies", "--json"))
	if !slices.ContainsFunc(pol.Policies, func(d ctlapi.PolicyDoc) bool { return d.Name == "fullmesh" && len(d.Options) > 0 }) {
		t.Errorf("policies: %+v", pol)
	}
	if table := ld.ask(t, "policies"); !strings.Contains(table, "fullmesh: ") || !strings.Contains(table, "OPTION") {
		t.Errorf("policies table:\n%s", table)
	}

	// usage: off without [usage] links
	u := mptcpctl(t, "--socket", ld.sock, "usage")
	if want := "mptcpctl: usage: usage accounting is off: no [usage] links configured\n"; u.code != exitRefused || u.stderr != want {
		t.Errorf("usage: exit %d, stderr %q, want %q", u.code, u.stderr, want)
	}

	// events: the daemon's subflow creations for this connection
	waitFor(t, "the create_subflow decisions in the event stream", func() bool {
		return strings.Count(evOut.String(), `"op":"create_subflow"`) >= len(tb.Links)-1
	})
	stopEvents()
	if code := <-evDone; code != exitOK {
		t.Errorf("events: exit %d", code)
	}
	var created int
	for line := range strings.Lines(evOut.String()) {
		var ev ctlapi.Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("events --json line %q: %v", line, err)
		}
		if ev.Kind == pmstate.DecisionAction && ev.Op == "create_subflow" && ev.Token == conn.Token && ev.Error == "" {
			created++
			if ev.Latency <= 0 || ev.Took <= 0 || ev.Remote != srv {
				t.Errorf("create_subflow decision without latency or to the wrong peer: %+v", ev)
			}
		}
	}
	if created < len(tb.Links)-1 {
		t.Errorf("%d create_subflow decisions for %s:\n%s", created, token, evOut)
	}

	// metrics move with a second connection
	mid := scrape(t, ld)
	second := open(t, tb, srv)
	waitFor(t, "the second connection meshed", func() bool {
		c, ok := connOf(t, ld, second)
		return ok && meshed(c, tb)
	})
	after := scrape(t, ld)
	// The client's count of join SYNs: MPJoinSynTx, which older kernels
	// (6.1) lack; their count of join SYN/ACKs received says the same.
	joins := "MPJoinSynTx"
	if sample(after, "mptcpgod_kernel_mptcpext_total", "name", joins) < 0 && !netnstest.KernelAtLeast(6, 12) {
		netnstest.Degraded(t, "no MPJoinSynTx counter on Linux %s: checked MPJoinSynAckRx", netnstest.KernelRelease())
		joins = "MPJoinSynAckRx"
	}
	for _, m := range []struct {
		name, label, value string
		counter            bool
	}{
		{"mptcpgod_engine_actions_total", "op", "create_subflow", true},
		{"mptcpgod_engine_kernel_events_total", "type", "established", true},
		{"mptcpgod_event_to_action_seconds", "op", "create_subflow", true},
		{"mptcpgod_kernel_mptcpext_total", "name", joins, true},
		{"mptcpgod_kernel_mptcpext_total", "name", "MPCapableSYNTX", true},
		{"mptcpgod_kernel_connections", "", "", false},
		{"mptcpgod_engine_connections", "", "", false},
	} {
		b, m1, a := sample(before, m.name, m.label, m.value), sample(mid, m.name, m.label, m.value), sample(after, m.name, m.label, m.value)
		if a <= m1 || m.counter && m1 <= max(b, 0) {
			t.Errorf("%s{%s=%q}: %v before, %v after one connection, %v after two; want it to grow", m.name, m.label, m.value, b, m1, a)
		}
	}
	if v := sample(after, "mptcpgod_kernel_subflows", "link", "eth1"); v < 2 {
		t.Errorf("subflows on eth1: %v, want 2 (one per connection)", v)
	}
	if v := sample(after, "mptcpgod_engine_up", "", ""); v != 1 {
		t.Errorf("mptcpgod_engine_up %v", v)
	}

	// reload: a new policy applies; a broken file is refused
	writeFile(t, ld.ConfigFile, daemonConfig("userspace", ld.sock, "[[policy.chain]]\nname = \"fullmesh\"\nconfig = { max_subflows = 1 }\n"))
	if out := ld.ask(t, "reload"); out != "reloaded; policy fullmesh\n" {
		t.Errorf("reload printed %q", out)
	}
	st = decode[ctlapi.Status](t, ld.ask(t, "status", "--json"))
	if st.Counters.PolicySwaps != 1 || len(st.Policy.Chain) != 1 || !strings.Contains(string(st.Policy.Chain[0].Config), "max_subflows") {
		t.Errorf("status after reload: policy %+v, swaps %d", st.Policy, st.Counters.PolicySwaps)
	}
	good, _ := os.ReadFile(ld.ConfigFile)
	writeFile(t, ld.ConfigFile, string(good)+"polcy = 1\n")
	r := mptcpctl(t, "--socket", ld.sock, "reload")
	wantErr := fmt.Sprintf("mptcpctl: reload: reload refused, the running configuration stays: %s:%d: unknown key \"policy.chain[0].polcy\"\n",
		ld.ConfigFile, strings.Count(string(good), "\n")+1)
	if r.code != exitRefused || r.stderr != wantErr {
		t.Errorf("broken reload: exit %d, stderr %q, want %q", r.code, r.stderr, wantErr)
	}
	if st := decode[ctlapi.Status](t, ld.ask(t, "status", "--json")); st.Counters.PolicySwaps != 1 {
		t.Errorf("a refused reload swapped the policy: %d swaps", st.Counters.PolicySwaps)
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDaemonKernel: the daemon commands against a kernel-mode daemon:
// its endpoints in status and links, no per-connection paths.
func TestDaemonKernel(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 2)
	ld := startDaemon(t, tb.Client, "kernel", "[metrics]\nlisten = \"127.0.0.1:9464\"\n")
	var st ctlapi.Status
	waitFor(t, "the endpoints in the kernel", func() bool {
		st = decode[ctlapi.Status](t, ld.ask(t, "status", "--json"))
		ok := 0
		for _, e := range st.Endpoints {
			if e.Owned && e.Present && e.State == "ok" {
				ok++
			}
		}
		return ok == 4 // two links, IPv4 and IPv6
	})
	if st.Mode != pmstate.ModeKernel || st.Limits == nil || st.Limits.Subflows != 8 {
		t.Errorf("status: mode %s limits %+v", st.Mode, st.Limits)
	}
	eps := decode[[]endpointOut](t, mustCtl(t, tb.Client, "endpoints", "--json"))
	for _, e := range st.Endpoints {
		if !slices.ContainsFunc(eps, func(k endpointOut) bool { return k.ID == e.ID && k.Address == e.Addr.String() }) {
			t.Errorf("the daemon's endpoint %d %s is not the kernel's: %+v", e.ID, e.Addr, eps)
		}
	}
	table := ld.ask(t, "status")
	if !strings.Contains(table, "limits    subflows 8 (want 8)") || !strings.Contains(table, "OWNED  STATE") {
		t.Errorf("status table:\n%s", table)
	}
	ls := decode[ctlapi.Links](t, ld.ask(t, "links", "--json"))
	for _, l := range ls.Links {
		for _, a := range l.Addrs {
			if a.Addr == tb.Links[0].Client4 && (!a.Used || a.Endpoint == nil || !strings.HasPrefix(a.Use, "endpoint id 1")) {
				t.Errorf("links: %+v", a)
			}
		}
	}
	if out := ld.ask(t, "paths"); !strings.HasPrefix(out, "mode kernel: ") {
		t.Errorf("paths in kernel mode: %q", out)
	}
	if ps := decode[ctlapi.Paths](t, ld.ask(t, "paths", "--json")); ps.Mode != pmstate.ModeKernel || len(ps.Conns) != 0 {
		t.Errorf("paths --json in kernel mode: %+v", ps)
	}

	// The metrics, on the socket and on [metrics] listen, in the daemon's
	// namespace.
	fams := scrape(t, ld)
	if v := sample(fams, "mptcpgod_engine_actions_total", "op", "add_endpoint"); v != 4 {
		t.Errorf("add_endpoint actions %v, want 4", v)
	}
	if v := sample(fams, "mptcpgod_engine_endpoints", "state", "ok"); v != 4 {
		t.Errorf("endpoints ok %v, want 4", v)
	}
	var body string
	waitFor(t, "the metrics listener", func() bool {
		b, err := tb.Client.HTTPGet("127.0.0.1:9464", "/metrics")
		body = b
		return err == nil
	})
	p := expfmt.NewTextParser(model.UTF8Validation)
	tcp, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if v := sample(tcp, "mptcpgod_engine_info", "mode", "kernel"); v != 1 {
		t.Errorf("mptcpgod_engine_info{mode=kernel} over TCP: %v", v)
	}
}

// TestDaemonAccess: nobody in the daemon's group reads with every
// command and is refused a reload with 403 and a clear message; nobody
// outside the group cannot open the socket.
func TestDaemonAccess(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 1)
	ld := startDaemon(t, tb.Client, "userspace")
	member := &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{readGroup}}
	for _, cmd := range [][]string{{"status"}, {"links", "--json"}, {"paths"}, {"policies"}} {
		if r := asUser(t, member, append([]string{"--socket", ld.sock}, cmd...)...); r.code != exitOK || r.stdout == "" {
			t.Errorf("%v as nobody in the group: exit %d, stderr %q", cmd, r.code, r.stderr)
		}
	}
	r := asUser(t, member, "--socket", ld.sock, "reload")
	if want := "mptcpctl: reload: /v1/reload changes the daemon's state and needs root (uid 0); you are uid 65534 (try sudo)\n"; r.code != exitRefused || r.stderr != want {
		t.Errorf("reload as nobody: exit %d, stderr %q, want %q", r.code, r.stderr, want)
	}
	r = asUser(t, &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}, "--socket", ld.sock, "status")
	if r.code != exitRefused || !strings.Contains(r.stderr, "permission denied") {
		t.Errorf("status as nobody outside the group: exit %d, stderr %q", r.code, r.stderr)
	}
	if st := decode[ctlapi.Status](t, ld.ask(t, "status", "--json")); st.Counters.PolicySwaps != 0 {
		t.Errorf("nobody's reload reached the engine: %d policy swaps", st.Counters.PolicySwaps)
	}
}

// rawRequest writes req on a new connection to the socket and returns
// the connection.
func rawRequest(t *testing.T, sock, req string) net.Conn {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if req != "" {
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// answer reads the HTTP answer on c.
func answer(t *testing.T, c net.Conn) (int, string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read the answer: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// TestDaemonBadRequests: malformed JSON, an unknown route, a 10 MB body,
// a client that connects and sends nothing and one that sends its
// headers a byte at a time are each answered or dropped, and meanwhile
// the engine meshes a new connection as fast as ever.
func TestDaemonBadRequests(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 2)
	ld := startDaemon(t, tb.Client, "userspace")
	srv := server(t, tb)

	// Baseline: how long a connection takes to get meshed.
	start := time.Now()
	first := open(t, tb, srv)
	waitFor(t, "the first connection meshed", func() bool {
		c, ok := connOf(t, ld, first)
		return ok && meshed(c, tb)
	})
	baseline := time.Since(start)

	idle := rawRequest(t, ld.sock, "")
	slow := rawRequest(t, ld.sock, "GET /v1/status HTTP/1.1\r\n")
	var wg sync.WaitGroup
	stopSlow := make(chan struct{})
	wg.Go(func() {
		for _, b := range []byte("Host: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa") {
			select {
			case <-stopSlow:
				return
			case <-time.After(200 * time.Millisecond):
			}
			if _, err := slow.Write([]byte{b}); err != nil {
				return
			}
		}
	})
	big := rawRequest(t, ld.sock, "POST /v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 10485760\r\n\r\n")
	wg.Go(func() {
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for range 160 {
			if _, err := big.Write(chunk); err != nil {
				return
			}
		}
	})
	malformed := rawRequest(t, ld.sock, "POST /v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n{")
	unknown := rawRequest(t, ld.sock, "GET /v1/nope HTTP/1.1\r\nHost: x\r\n\r\n")

	// With all of that going on, a new connection is meshed in time.
	start = time.Now()
	second := open(t, tb, srv)
	limit := 10*baseline + 2*time.Second
	for {
		c, ok := connOf(t, ld, second)
		if ok && meshed(c, tb) {
			break
		}
		if time.Since(start) > limit {
			t.Fatalf("the second connection was not meshed within %v (the first took %v)", limit, baseline)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("meshed in %v, %v before the bad clients", time.Since(start), baseline)

	for _, tt := range []struct {
		name string
		c    net.Conn
		code int
		body string
	}{
		{"malformed JSON", malformed, 400, `{"error":"malformed JSON body: unexpected EOF"}`},
		{"unknown route", unknown, 404, `{"error":"no such route \"/v1/nope\" (routes: /v1/status, /v1/links, /v1/paths, /v1/paths/{token}, /v1/policies, /v1/usage, /v1/reload, /v1/events, /v1/force, /v1/force/units, /metrics)"}`},
		{"10 MB body", big, 413, `{"error":"request body of 10485760 bytes is too large (at most 65536)"}`},
	} {
		if code, body := answer(t, tt.c); code != tt.code || body != tt.body {
			t.Errorf("%s: %d %s, want %d %s", tt.name, code, body, tt.code, tt.body)
		}
	}
	// The silent client and the slow one are dropped after the header
	// timeout.
	for name, c := range map[string]net.Conn{"silent": idle, "slow": slow} {
		_ = c.SetReadDeadline(time.Now().Add(ctlhttp.DefaultLimits.ReadHeaderTimeout + 5*time.Second))
		b, err := io.ReadAll(c)
		// A daemon that closes a connection with the slow client's
		// bytes unread resets it: closed all the same.
		if err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("%s client: %v, want the daemon to close the connection", name, err)
		}
		if name == "slow" && len(b) > 0 && !strings.Contains(string(b), "408") {
			t.Errorf("slow client got %q", b)
		}
	}
	close(stopSlow)
	wg.Wait()
	// The daemon still answers.
	if st := decode[ctlapi.Status](t, ld.ask(t, "status", "--json")); !st.Ready || st.Counters.PolicySwaps != 0 {
		t.Errorf("status after the bad requests: ready %v, %d policy swaps", st.Ready, st.Counters.PolicySwaps)
	}
}
