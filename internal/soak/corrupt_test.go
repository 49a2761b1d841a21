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
	"maps"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/sockdiag"
)

// churnOps are the subflow operations of a TestCorrupt case.
type churnOps struct {
	create      bool // open a subflow from every link's IPv4 address that has none
	destroy     bool // destroy a random joined subflow
	initial     bool // destroy the initial subflow once joined ones are up
	backup      bool // flip the backup bit of a random subflow
	resubscribe bool // close the event subscription and open it again, like kill -9
	duplicate   bool // open a second subflow from an address, then destroy one of the two
	once        bool // create subflows on a connection only once, never again after a destroy
	kernelPM    bool // no churn: the client's in-kernel path manager opens the subflows
	early       bool // open the subflows on the ESTABLISHED event, as the in-kernel path manager does
}

// corruptCases are TestCorrupt's cases by name, "none" the control.
var corruptCases = map[string]churnOps{
	"none":            {},
	"create":          {create: true},
	"destroy":         {create: true, destroy: true},
	"destroy-initial": {create: true, initial: true},
	"backup":          {create: true, backup: true},
	"resubscribe":     {create: true, resubscribe: true},
	"duplicate":       {create: true, duplicate: true},
	"destroy-once":    {create: true, destroy: true, once: true},
	"kernel-pm":       {kernelPM: true},
	"create-early":    {early: true},
	"all":             {create: true, destroy: true, initial: true, backup: true, resubscribe: true, duplicate: true},
}

// churnStats count the churn's operations, safe for concurrent use.
type churnStats struct {
	creates, destroys, initials, backups, resubscribes, duplicates, errs atomic.Int64
	// sampled connections, and how many of them use DSS checksums
	sampled, csum atomic.Int64

	mu     sync.Mutex
	errMsg map[string]int // genl errors by operation and text
}

// failed records a failed operation.
func (c *churnStats) failed(op string, err error) {
	c.errs.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.errMsg == nil {
		c.errMsg = map[string]int{}
	}
	c.errMsg[op+": "+err.Error()]++
}

// errors returns the failed operations' texts with their counts.
func (c *churnStats) errors() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(c.errMsg)) {
		fmt.Fprintf(&b, "\n  %d× %s", c.errMsg[k], k)
	}
	return b.String()
}

// TestCorrupt looks for transfers corrupted by the kernel while a
// userspace path manager changes the subflows of live connections, with
// no daemon: checksummed transfers (-soak.corrupt.size, 8 MiB) run on a three-link testbed whose
// client is in userspace mode while the test itself, through package genl,
// creates and destroys subflows, flips backup bits and drops its event
// subscription ("kernel-pm": the in-kernel path manager opens the
// subflows instead, with no churn; "create-early": the test opens them on
// the ESTABLISHED event, as early as that path manager does). Each case of -soak.corrupt.cases
// (default none,create,destroy) runs for -soak.corrupt.duration, "none"
// (no subflow ever added) being the control; any checksum mismatch or
// failed transfer fails the case. See docs/soak.md.
func TestCorrupt(t *testing.T) {
	if !*soakCorrupt {
		t.Skip("soak: opt-in; run with -soak.corrupt")
	}
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("soak: needs root to build network namespaces")
		}
		t.Skip("soak: needs root to build network namespaces")
	}
	if *soakCorruptSize < 1 {
		t.Fatalf("soak: -soak.corrupt.size %d: want a positive number of bytes", *soakCorruptSize)
	}
	names := strings.Split(*soakCorruptCases, ",")
	for _, name := range names {
		if _, ok := corruptCases[name]; !ok {
			t.Fatalf("soak: -soak.corrupt.cases: unknown case %q", name)
		}
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) { corrupt(t, corruptCases[name], *soakCorruptDuration) })
	}
}

// corrupt runs one TestCorrupt case for d.
func corrupt(t *testing.T, ops churnOps, d time.Duration) {
	tb := netnstest.NewTestbed(t, 3)
	tb.Server.MustExec("ip", "mptcp", "limits", "set", "subflows", "8", "add_addr_accepted", "8")
	if ops.kernelPM {
		tb.Client.MustExec("ip", "mptcp", "limits", "set", "subflows", "8", "add_addr_accepted", "8")
		for _, l := range tb.Links[1:] {
			tb.Client.MustExec("ip", "mptcp", "endpoint", "add", l.Client4.String(), "dev", l.ClientIf, "subflow")
		}
	} else {
		tb.Client.SetPathManager("userspace")
	}
	if *soakCorruptCsum {
		tb.Client.Sysctl("net.mptcp.checksum_enabled", "1")
		tb.Server.Sysctl("net.mptcp.checksum_enabled", "1")
	}
	ln := tb.Server.Listen("tcp", netip.AddrPortFrom(tb.Links[0].Server4, 0).String())
	t.Cleanup(func() { _ = ln.Close() })
	k := &keeper{}
	go k.serve(ln)
	srv := netip.MustParseAddrPort(ln.Addr().String())
	srv = netip.AddrPortFrom(srv.Addr().Unmap(), srv.Port())

	gc, err := genl.New(&genl.Config{NetNS: tb.Client.NetNS()})
	if err != nil {
		t.Fatal(err)
	}
	defer gc.Close()
	diag, err := sockdiag.Dial(&sockdiag.Config{NetNS: tb.Client.NetNS()})
	if err != nil {
		t.Fatal(err)
	}
	defer diag.Close()

	// Not a context deadline: the dials would share it and time out
	// before ctx.Err() tells the workers to stop.
	ifindex := make([]int32, len(tb.Links))
	for i, l := range tb.Links {
		err := tb.Client.Do(func() error {
			ifi, err := net.InterfaceByName(l.ClientIf)
			if err == nil {
				ifindex[i] = int32(ifi.Index)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(d, cancel)
	st := &stats{explain: k.explain}
	var seeds atomic.Uint64
	wait := bulk(ctx, tb.Client, srv, bulkWorkers, *soakCorruptSize, &seeds, st)
	// The event listener's own client, for ops.early.
	ec, err := genl.New(&genl.Config{NetNS: tb.Client.NetNS()})
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	cs := &churnStats{}
	err = churn(ctx, gc, ec, diag, tb.Links, ifindex, srv, ops, cs)
	wait()
	if err != nil {
		t.Fatal(err)
	}

	t.Logf("%v: %d transfers (%d MiB), %d corrupted, %d failed; %d creates, %d destroys, %d initial destroys, %d backup flips, %d resubscribes, %d duplicates, %d genl errors; %d of %d sampled connections with DSS checksums%s",
		d, st.transfers.Load(), st.bytes.Load()>>20, st.corrupt.Load(), len(st.failed()), cs.creates.Load(), cs.destroys.Load(),
		cs.initials.Load(), cs.backups.Load(), cs.resubscribes.Load(), cs.duplicates.Load(), cs.errs.Load(), cs.csum.Load(), cs.sampled.Load(), cs.errors())
	netnstest.Figure(t, "%s: %v, %d transfers of %d bytes, %d corrupted, %d failed, %d joins created, %d destroyed",
		t.Name(), d, st.transfers.Load(), *soakCorruptSize, st.corrupt.Load(), len(st.failed()), cs.creates.Load(), cs.destroys.Load())
	t.Logf("client MPTcpExt: %s", mptcpCounters(tb.Client))
	t.Logf("server MPTcpExt: %s", mptcpCounters(tb.Server))
	for i, f := range st.failed() {
		if i == 20 {
			t.Errorf("... and %d more failed transfers", len(st.failed())-20)
			break
		}
		t.Errorf("transfer failed: %s", f)
	}
	if st.transfers.Load() == 0 {
		t.Errorf("no transfer completed in %v", d)
	}
}

// churn changes the subflows of every connection of the namespace as ops
// say until ctx is done, keeping an event subscription open (but for the
// resubscribe gaps) as a userspace path manager does.
func churn(ctx context.Context, gc, ec *genl.Client, diag *sockdiag.Client, links []netnstest.Link, ifindex []int32, srv netip.AddrPort, ops churnOps, cs *churnStats) error {
	listener := func() (stop func(), err error) {
		sub, err := gc.Subscribe()
		if err != nil {
			return nil, err
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				evs, err := sub.Receive(ctx)
				if err != nil && !errors.Is(err, genl.ErrEventsLost) {
					return
				}
				for _, ev := range evs {
					if !ops.early || ev.Type != genl.EventEstablished {
						continue
					}
					for i, l := range links[1:] {
						ep := genl.Endpoint{ID: uint8(i + 1), Addr: l.Client4, IfIndex: ifindex[i+1]}
						if err := ec.CreateSubflow(ev.Token, ep, srv); err != nil {
							cs.failed("create early", err)
						} else {
							cs.creates.Add(1)
						}
					}
				}
			}
		})
		return func() { _ = sub.Close(); wg.Wait() }, nil
	}
	stopSub, err := listener()
	if err != nil {
		return err
	}
	defer func() { stopSub() }()

	rng := rand.New(rand.NewPCG(1, 2))
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	nextSub := time.Now()
	ticks := 0
	created := map[uint32]bool{} // with ops.once, the connections given subflows
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if ops.resubscribe && time.Now().After(nextSub) {
			stopSub()
			cs.resubscribes.Add(1)
			time.Sleep(time.Duration(rng.IntN(5)) * 100 * time.Millisecond)
			if stopSub, err = listener(); err != nil {
				return err
			}
			nextSub = time.Now().Add(time.Second)
		}
		ticks++
		if ticks%100 == 0 {
			err := diag.Connections(func(c *sockdiag.Connection) error {
				cs.sampled.Add(1)
				if c.Info.CsumEnabled {
					cs.csum.Add(1)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		conns := map[uint32][]*sockdiag.Subflow{}
		err := diag.Subflows(func(s *sockdiag.Subflow) error {
			if s.State == sockdiag.StateEstablished || s.State == sockdiag.StateSynSent {
				conns[s.Token] = append(conns[s.Token], s)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for token, subs := range conns {
			o := ops
			if ops.once {
				o.create = !created[token]
				if slices.ContainsFunc(subs, func(s *sockdiag.Subflow) bool { return s.Flags&sockdiag.SubflowJoinLocal != 0 }) {
					created[token] = true
				}
			}
			churnConn(gc, token, subs, links, ifindex, srv, o, rng, cs)
		}
	}
}

// churnConn applies ops once to the connection token with subflows subs.
func churnConn(gc *genl.Client, token uint32, subs []*sockdiag.Subflow, links []netnstest.Link, ifindex []int32, srv netip.AddrPort, ops churnOps, rng *rand.Rand, cs *churnStats) {
	count := func(op string, err error, n *atomic.Int64) {
		if err != nil {
			cs.failed(op, err)
			return
		}
		n.Add(1)
	}
	if ops.create {
		for i, l := range links {
			if slices.ContainsFunc(subs, func(s *sockdiag.Subflow) bool { return s.Local.Addr() == l.Client4 }) {
				continue
			}
			count("create", gc.CreateSubflow(token, genl.Endpoint{ID: uint8(i), Addr: l.Client4, IfIndex: ifindex[i]}, srv), &cs.creates)
		}
	}
	var up []*sockdiag.Subflow
	for _, s := range subs {
		if s.State == sockdiag.StateEstablished {
			up = append(up, s)
		}
	}
	if ops.duplicate && rng.IntN(10) == 0 {
		for i, l := range links[1:] {
			var from []*sockdiag.Subflow
			for _, s := range subs {
				if s.Local.Addr() == l.Client4 {
					from = append(from, s)
				}
			}
			switch {
			case len(from) == 1 && from[0].State == sockdiag.StateEstablished:
				count("duplicate", gc.CreateSubflow(token, genl.Endpoint{ID: uint8(i + 1), Addr: l.Client4, IfIndex: ifindex[i+1]}, srv), &cs.duplicates)
			case len(from) == 2 && from[0].State == sockdiag.StateEstablished && from[1].State == sockdiag.StateEstablished:
				s := from[rng.IntN(2)]
				count("destroy duplicate", gc.DestroySubflow(token, s.Local, s.Remote), &cs.destroys)
			}
		}
	}
	if len(up) < 2 {
		return
	}
	if ops.initial && rng.IntN(10) == 0 {
		for _, s := range up {
			if s.Flags&sockdiag.SubflowMCapLocal != 0 {
				count("destroy initial", gc.DestroySubflow(token, s.Local, s.Remote), &cs.initials)
				return
			}
		}
	}
	if ops.destroy && rng.IntN(10) == 0 {
		var joined []*sockdiag.Subflow
		for _, s := range up {
			if s.Flags&sockdiag.SubflowJoinLocal != 0 {
				joined = append(joined, s)
			}
		}
		if len(joined) > 0 {
			s := joined[rng.IntN(len(joined))]
			count("destroy", gc.DestroySubflow(token, s.Local, s.Remote), &cs.destroys)
			return
		}
	}
	if ops.backup && rng.IntN(10) == 0 {
		s := up[rng.IntN(len(up))]
		count("backup", gc.SetSubflowBackup(token, s.Local, s.Remote, s.Flags&sockdiag.SubflowBackupLocal == 0), &cs.backups)
	}
}

// mptcpCounter matches the MPTcpExt counters that tell of data checksums,
// fallbacks, resets and mappings in `nstat -asz` output.
var mptcpCounter = regexp.MustCompile(`^MPTcpExt\S*(Csum|Infinite|Fail|Fallback|DSS|Corrupt|Rst|Reset|Dup|OFO|Join|Retrans|Reinject)\S*$`)

// mptcpCounters returns h's non-zero MPTcpExt counters that mptcpCounter
// selects, as "name=value" pairs.
func mptcpCounters(h *netnstest.Host) string {
	out, err := h.Exec("nstat", "-asz")
	if err != nil {
		return fmt.Sprintf("nstat: %v: %s", err, out)
	}
	var b strings.Builder
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) < 2 || f[1] == "0" || !mptcpCounter.MatchString(f[0]) {
			continue
		}
		fmt.Fprintf(&b, " %s=%s", strings.TrimPrefix(f[0], "MPTcpExt"), f[1])
	}
	return b.String()
}

// keepLast is how many connections' bytes a keeper keeps.
const keepLast = 8

// keeper is a serveSums server that also keeps what the last keepLast
// connections received, by the client's address, so that a corrupted
// transfer can be compared byte by byte with what was sent.
type keeper struct {
	mu    sync.Mutex
	order []netip.AddrPort
	got   map[netip.AddrPort][]byte
}

// serve accepts connections on ln until it is closed, answering as
// serveSums does once it has kept the bytes.
func (k *keeper) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			var b bytes.Buffer
			h := sha256.New()
			n, err := io.Copy(io.MultiWriter(h, &b), c)
			if err != nil {
				return
			}
			remote := netip.MustParseAddrPort(c.RemoteAddr().String())
			k.keep(netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port()), b.Bytes())
			_ = c.SetWriteDeadline(time.Now().Add(ioLimit))
			_, _ = c.Write(h.Sum(binary.BigEndian.AppendUint64(nil, uint64(n))))
		}()
	}
}

// keep stores what the connection from client received, forgetting the
// oldest beyond keepLast.
func (k *keeper) keep(client netip.AddrPort, b []byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.got == nil {
		k.got = map[netip.AddrPort][]byte{}
	}
	k.got[client] = b
	k.order = append(k.order, client)
	if len(k.order) > keepLast {
		delete(k.got, k.order[0])
		k.order = k.order[1:]
	}
}

// explain describes how what the server received from local differs from
// the size bytes the stream with seed sent in chunks of chunk.
func (k *keeper) explain(seed uint64, local netip.AddrPort, size, chunk int) string {
	k.mu.Lock()
	got, ok := k.got[local]
	k.mu.Unlock()
	if !ok {
		return "the server's copy is gone"
	}
	want := make([]byte, size)
	rng := seedRand(seed)
	for off := 0; off < size; off += chunk {
		_, _ = rng.Read(want[off:min(off+chunk, size)])
	}
	return describeDiff(want, got)
}

// describeDiff describes the byte ranges where got differs from want
// (ranges closer than 64 bytes are merged) and, for each of the first
// few, where in want its bytes come from, if anywhere.
func describeDiff(want, got []byte) string {
	if len(want) != len(got) {
		return fmt.Sprintf("length %d, want %d", len(got), len(want))
	}
	type span struct{ start, end int }
	var spans []span
	for i := range want {
		if want[i] == got[i] {
			continue
		}
		if n := len(spans); n > 0 && i-spans[n-1].end < 64 {
			spans[n-1].end = i + 1
		} else {
			spans = append(spans, span{i, i + 1})
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d differing ranges", len(spans))
	for i, s := range spans {
		if i == 4 {
			fmt.Fprintf(&b, " ...")
			break
		}
		fmt.Fprintf(&b, "; [%d, %d) (%d bytes)", s.start, s.end, s.end-s.start)
		probe := got[s.start:min(s.start+32, s.end)]
		switch from := bytes.Index(want, probe); {
		case len(probe) < 16:
			b.WriteString(" too short to trace")
		case bytes.Count(probe, []byte{0}) == len(probe):
			b.WriteString(" zeros")
		case from < 0:
			b.WriteString(" from nowhere in the stream")
		default:
			fmt.Fprintf(&b, " = sent bytes at offset %d (%+d)", from, from-s.start)
		}
	}
	return b.String()
}

// TestDescribeDiff: corrupted ranges are found, merged when close, and
// traced to where their bytes come from.
func TestDescribeDiff(t *testing.T) {
	t.Parallel()
	want := make([]byte, 4096)
	_, _ = seedRand(7).Read(want)
	with := func(f func(b []byte)) []byte {
		b := bytes.Clone(want)
		f(b)
		return b
	}
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{name: "same", got: want, want: "0 differing ranges"},
		{name: "short", got: want[:10], want: "length 10, want 4096"},
		{name: "moved", got: with(func(b []byte) { copy(b[1000:1100], want[200:300]) }),
			want: "1 differing ranges; [1000, 1100) (100 bytes) = sent bytes at offset 200 (-800)"},
		{name: "zeros and two close flips", got: with(func(b []byte) {
			clear(b[100:150])
			b[3000] ^= 1
			b[3040] ^= 1
			b[4000] ^= 1
		}), want: "3 differing ranges; [100, 150) (50 bytes) zeros; [3000, 3041) (41 bytes) from nowhere in the stream; [4000, 4001) (1 bytes) too short to trace"},
		{name: "foreign", got: with(func(b []byte) { _, _ = seedRand(8).Read(b[2000:2048]) }),
			want: "1 differing ranges; [2000, 2048) (48 bytes) from nowhere in the stream"},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, describeDiff(want, tt.got)); diff != "" {
			t.Errorf("%s: describeDiff (-want +got):\n%s", tt.name, diff)
		}
	}
}
