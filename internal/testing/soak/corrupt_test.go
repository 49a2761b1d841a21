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
	"github.com/mptcpgod/mptcpgod/internal/testing/runtest"
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
// no daemon: checksummed transfers (-soak.corrupt.workers at a time,
// -soak.corrupt.size each) run on a three-link testbed whose client is in
// userspace mode while the test itself, through package genl, creates and
// destroys subflows, flips backup bits and drops its event subscription
// ("kernel-pm": the in-kernel path manager opens the subflows instead,
// with no churn; "create-early": the test opens them on the ESTABLISHED
// event, as early as that path manager does). The "join" case gives each
// connection one extra subflow at a set moment instead (-soak.corrupt.join-*
// flags) and counts corruptions by that moment. Each case of
// -soak.corrupt.cases (default none,create,destroy) runs for
// -soak.corrupt.duration, "none" (no subflow ever added) being the
// control; any checksum mismatch or failed transfer fails the case. See
// docs/soak.md and docs/kernel-issues.md.
func TestCorrupt(t *testing.T) {
	if !*soakCorrupt {
		t.Skip("soak: opt-in; run with -soak.corrupt")
	}
	if os.Geteuid() != 0 {
		runtest.Unavailable(t, "soak: needs root to build network namespaces")
	}
	names := strings.Split(*soakCorruptCases, ",")
	for _, name := range names {
		if _, ok := corruptCases[name]; !ok && name != "join" {
			t.Fatalf("soak: -soak.corrupt.cases: unknown case %q", name)
		}
	}
	jc, err := corruptFlags()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) { corrupt(t, name, jc, *soakCorruptDuration) })
	}
}

// corruptFlags checks TestCorrupt's flags and returns the setting of its
// cases.
func corruptFlags() (joinConfig, error) {
	jc := joinConfig{point: *soakCorruptJoinAt, workers: *soakCorruptWorkers, csum: *soakCorruptCsum, flood: *soakCorruptFlood, out: *soakCorruptOut}
	if jc.workers < 1 {
		return jc, fmt.Errorf("soak: -soak.corrupt.workers %d: want at least 1", jc.workers)
	}
	size, err := parseSize(*soakCorruptSize)
	if err != nil || size < 1 || size > 1<<30 {
		return jc, fmt.Errorf("soak: -soak.corrupt.size %q: want 1 byte to 1GiB (%v)", *soakCorruptSize, err)
	}
	jc.size = int(size)
	if jc.at, err = parseJoinPoint(*soakCorruptJoinAt); err != nil {
		return jc, fmt.Errorf("soak: -soak.corrupt.join-at: %w", err)
	}
	switch *soakCorruptJoinSide {
	case "sender":
	case "receiver":
		jc.receiver = true
	default:
		return jc, fmt.Errorf("soak: -soak.corrupt.join-side %q: want sender or receiver", *soakCorruptJoinSide)
	}
	switch *soakCorruptJoinPM {
	case "userspace":
	case "kernel":
		jc.kernelPM = true
	default:
		return jc, fmt.Errorf("soak: -soak.corrupt.join-pm %q: want userspace or kernel", *soakCorruptJoinPM)
	}
	return jc, nil
}

// corrupt runs the TestCorrupt case name for d.
func corrupt(t *testing.T, name string, jc joinConfig, d time.Duration) {
	tb := netnstest.NewTestbed(t, 3)
	tb.Server.MustExec("ip", "mptcp", "limits", "set", "subflows", "8", "add_addr_accepted", "8")
	ops := corruptCases[name]
	if ops.kernelPM {
		tb.Client.MustExec("ip", "mptcp", "limits", "set", "subflows", "8", "add_addr_accepted", "8")
		for _, l := range tb.Links[1:] {
			tb.Client.MustExec("ip", "mptcp", "endpoint", "add", l.Client4.String(), "dev", l.ClientIf, "subflow")
		}
	} else if name != "join" {
		tb.Client.SetPathManager("userspace")
	}
	if jc.csum {
		tb.Client.Sysctl("net.mptcp.checksum_enabled", "1")
		tb.Server.Sysctl("net.mptcp.checksum_enabled", "1")
	}
	// On every address: the in-kernel path manager's joins after an
	// ADD_ADDR go to the announced address.
	ln := tb.Server.Listen("tcp4", "0.0.0.0:0")
	t.Cleanup(func() { _ = ln.Close() })
	k := &keeper{publish: name == "join" && jc.receiver}
	go k.serve(ln)
	srv := netip.AddrPortFrom(tb.Links[0].Server4, netip.MustParseAddrPort(ln.Addr().String()).Port())

	ld := startLoad()
	// Not a context deadline: the dials would share it and time out
	// before ctx.Err() tells the workers to stop.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(d, cancel)
	// The flood is load of another kind: connections set up and torn
	// down by the thousand, as in the soak's flood phase.
	floods := &stats{forget: k.forget}
	var flooding sync.WaitGroup
	if jc.flood {
		tb.Client.Sysctl("net.ipv4.tcp_tw_reuse", "1")
		tb.Client.Sysctl("net.ipv4.ip_local_port_range", "1024 65000")
		var seeds atomic.Uint64
		seeds.Store(1 << 40)
		flooding.Go(func() {
			for !ended(ctx) {
				flood(ctx, tb.Client, srv, floodBurst, floodWorkers, &seeds, floods)
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
	var summary string
	var records []joinRecord
	if name == "join" {
		e := setupJoin(t, tb, jc, srv, k)
		e.run(ctx)
		records = e.records
		summary = fmt.Sprintf("%v: %s", d, describeJoinCase(jc))
	} else {
		summary = churnCase(t, ctx, tb, k, srv, ops, jc, d)
	}
	flooding.Wait()
	if jc.flood {
		summary += fmt.Sprintf("; floods alongside: %d short transfers, %d failed", floods.transfers.Load(), len(floods.failed()))
		for i, f := range floods.failed() {
			if i == 20 {
				t.Errorf("... and %d more failed flood transfers", len(floods.failed())-20)
				break
			}
			t.Errorf("flood transfer failed: %s", f)
		}
	}
	t.Logf("%s; %s", summary, ld.end())
	t.Logf("client MPTcpExt: %s", mptcpCounters(tb.Client))
	t.Logf("server MPTcpExt: %s", mptcpCounters(tb.Server))
	t.Logf("server: %s", serverCounters(tb.Server))
	if name == "join" {
		t.Logf("joins:\n%s", summarizeJoins(records))
		for _, r := range records {
			if r.Failed != "" {
				t.Errorf("transfer %d failed: %s", r.Seed, r.Failed)
			}
		}
		if len(records) == 0 {
			t.Errorf("no transfer completed in %v", d)
		}
	}
}

// churnCase runs the churn case ops until ctx is done, fails t for every
// failed transfer and returns a summary.
func churnCase(t *testing.T, ctx context.Context, tb *netnstest.Testbed, k *keeper, srv netip.AddrPort, ops churnOps, jc joinConfig, d time.Duration) string {
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

	ifindex := make([]int32, len(tb.Links))
	for i, l := range tb.Links {
		if ifindex[i], err = interfaceIndex(tb.Client, l.ClientIf); err != nil {
			t.Fatal(err)
		}
	}

	st := &stats{explain: k.explain, forget: k.forget}
	var seeds atomic.Uint64
	wait := bulk(ctx, tb.Client, srv, jc.workers, jc.size, &seeds, st)
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
	netnstest.Figure(t, "%s: %v, %d transfers of %d bytes, %d corrupted, %d failed, %d joins created, %d destroyed",
		t.Name(), d, st.transfers.Load(), jc.size, st.corrupt.Load(), len(st.failed()), cs.creates.Load(), cs.destroys.Load())
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
	return fmt.Sprintf("%v, %d workers × %d bytes: %d transfers (%d MiB), %d corrupted, %d failed; %d creates, %d destroys, %d initial destroys, %d backup flips, %d resubscribes, %d duplicates, %d genl errors; %d of %d sampled connections with DSS checksums%s",
		d, jc.workers, jc.size, st.transfers.Load(), st.bytes.Load()>>20, st.corrupt.Load(), len(st.failed()), cs.creates.Load(), cs.destroys.Load(),
		cs.initials.Load(), cs.backups.Load(), cs.resubscribes.Load(), cs.duplicates.Load(), cs.errs.Load(), cs.csum.Load(), cs.sampled.Load(), cs.errors())
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

// keepLast is how many connections' bytes a keeper keeps at most: the
// transfers forget theirs once checked, so this only bounds what failed
// ones leave behind.
const keepLast = 64

// keeper is a serveSums server that also keeps what the last keepLast
// connections received, by the client's address, so that a corrupted
// transfer can be compared byte by byte with what was sent. With publish
// set, it also hands every accepted connection to accepted.
type keeper struct {
	publish bool

	mu    sync.Mutex
	order []netip.AddrPort
	got   map[netip.AddrPort][]byte
	slots map[netip.AddrPort]chan *net.TCPConn
}

// serve accepts connections on ln until it is closed, answering as
// serveSums does once it has kept the bytes.
func (k *keeper) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		remote := netip.MustParseAddrPort(c.RemoteAddr().String())
		remote = netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
		if tc, ok := c.(*net.TCPConn); ok && k.publish {
			k.slot(remote) <- tc
		}
		go func() {
			defer c.Close()
			var b bytes.Buffer
			h := sha256.New()
			n, err := io.Copy(io.MultiWriter(h, &b), c)
			if err != nil {
				return
			}
			k.keep(remote, b.Bytes())
			_ = c.SetWriteDeadline(time.Now().Add(ioLimit))
			_, _ = c.Write(h.Sum(binary.BigEndian.AppendUint64(nil, uint64(n))))
		}()
	}
}

// slot is the channel that hands over the connection from client.
func (k *keeper) slot(client netip.AddrPort) chan *net.TCPConn {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.slots == nil {
		k.slots = map[netip.AddrPort]chan *net.TCPConn{}
	}
	ch, ok := k.slots[client]
	if !ok {
		ch = make(chan *net.TCPConn, 1)
		k.slots[client] = ch
	}
	return ch
}

// accepted returns a channel that delivers the server's side of the
// connection from client once it is accepted (with publish set).
func (k *keeper) accepted(client netip.AddrPort) <-chan *net.TCPConn { return k.slot(client) }

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

// forget drops what the keeper holds of the connection from client.
func (k *keeper) forget(client netip.AddrPort) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.got, client)
	delete(k.slots, client)
	if i := slices.Index(k.order, client); i >= 0 {
		k.order = slices.Delete(k.order, i, i+1)
	}
}

// sentBytes returns the size bytes the stream with seed sent in chunks
// of chunk.
func sentBytes(seed uint64, size, chunk int) []byte {
	want := make([]byte, size)
	rng := seedRand(seed)
	for off := 0; off < size; off += chunk {
		_, _ = rng.Read(want[off:min(off+chunk, size)])
	}
	return want
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
	return describeDiff(sentBytes(seed, size, chunk), got)
}

// blocks returns the ranges where what the server received from local
// differs from what the stream with seed sent; nil if the server's copy
// is gone or has another length.
func (k *keeper) blocks(seed uint64, local netip.AddrPort, size, chunk int) []badBlock {
	k.mu.Lock()
	got, ok := k.got[local]
	k.mu.Unlock()
	if !ok || len(got) != size {
		return nil
	}
	return diffBlocks(sentBytes(seed, size, chunk), got)
}

// maxBlocks is how many differing ranges diffBlocks traces.
const maxBlocks = 4

// diffBlocks returns the byte ranges where got differs from want (ranges
// closer than 64 bytes are merged; the first maxBlocks traced to where in
// want their bytes come from, if anywhere). want and got have the same
// length.
func diffBlocks(want, got []byte) []badBlock {
	var bs []badBlock
	for i := range want {
		if want[i] == got[i] {
			continue
		}
		if n := len(bs); n > 0 && i-bs[n-1].End < 64 {
			bs[n-1].End = i + 1
		} else {
			bs = append(bs, badBlock{Start: i, End: i + 1, From: -1})
		}
	}
	for i := range bs[:min(len(bs), maxBlocks)] {
		probe := got[bs[i].Start:min(bs[i].Start+32, bs[i].End)]
		if len(probe) >= 16 && bytes.Count(probe, []byte{0}) != len(probe) {
			bs[i].From = bytes.Index(want, probe)
		}
	}
	return bs
}

// describeDiff describes the byte ranges where got differs from want
// (ranges closer than 64 bytes are merged) and, for each of the first
// few, where in want its bytes come from, if anywhere.
func describeDiff(want, got []byte) string {
	if len(want) != len(got) {
		return fmt.Sprintf("length %d, want %d", len(got), len(want))
	}
	bs := diffBlocks(want, got)
	var b strings.Builder
	fmt.Fprintf(&b, "%d differing ranges", len(bs))
	for i, bl := range bs {
		if i == maxBlocks {
			fmt.Fprintf(&b, " ...")
			break
		}
		fmt.Fprintf(&b, "; [%d, %d) (%d bytes)", bl.Start, bl.End, bl.End-bl.Start)
		probe := got[bl.Start:min(bl.Start+32, bl.End)]
		switch {
		case len(probe) < 16:
			b.WriteString(" too short to trace")
		case bytes.Count(probe, []byte{0}) == len(probe):
			b.WriteString(" zeros")
		case bl.From < 0:
			b.WriteString(" from nowhere in the stream")
		default:
			fmt.Fprintf(&b, " = sent bytes at offset %d (%+d)", bl.From, bl.From-bl.Start)
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
