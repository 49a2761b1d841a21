package failover

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/health"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/sockdiag"
	"github.com/mptcpgod/mptcpgod/internal/testing/runtest"
	_ "github.com/mptcpgod/mptcpgod/plugins/backupcell" // backup-cellular
	_ "github.com/mptcpgod/mptcpgod/plugins/fullmesh"   // fullmesh
	"github.com/mptcpgod/mptcpgod/pm"
	"github.com/mptcpgod/mptcpgod/policy"
)

// The scenario.
const (
	rate     = 8 << 20 // bytes per second the sender offers
	chunk    = 32 << 10
	sendFor  = 6 * time.Second
	cutAt    = 1500 * time.Millisecond // after the first byte is sent
	cutFor   = 1500 * time.Millisecond
	StallGap = 50 * time.Millisecond // the shortest gap between reads that is a stall
	// policyConfig marks eth1 cellular by name: linkmon calls veth links
	// virtual.
	policyConfig = `{"cellular_names":["eth1"],"hold_time":"1s"}`
)

// The path managers compared.
const (
	// Mptcpgod is the engine with fullmesh | backup-cellular and the
	// health sampler, in userspace mode.
	Mptcpgod = "mptcpgod"
	// KernelBackup is the in-kernel path manager with a "subflow backup"
	// endpoint on eth1.
	KernelBackup = "kernel-backup"
)

// receiver reads a connection to its end, hashing and timing every read.
type receiver struct {
	mu    sync.Mutex
	marks []Mark
	total int64
	sum   hash.Hash
	err   error
	done  chan struct{}
}

func receive(c net.Conn) *receiver {
	r := &receiver{sum: sha256.New(), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			now := time.Now()
			r.mu.Lock()
			if n > 0 {
				r.sum.Write(buf[:n])
				r.total += int64(n)
				r.marks = append(r.marks, Mark{At: now, Total: r.total})
			}
			r.mu.Unlock()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					r.mu.Lock()
					r.err = err
					r.mu.Unlock()
				}
				return
			}
		}
	}()
	return r
}

func (r *receiver) delivered() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total
}

// sender writes sendFor·rate pseudo-random bytes paced at rate, then
// closes its side.
type sender struct {
	sum   [sha256.Size]byte
	n     int64
	err   error
	start time.Time
	done  chan struct{}
}

func send(c net.Conn) *sender {
	s := &sender{start: time.Now(), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		rng := rand.NewChaCha8([32]byte{'m', 'p', 't', 'c', 'p', 'g', 'o', 'd'})
		h := sha256.New()
		buf := make([]byte, chunk)
		chunks := int(int64(rate) * int64(sendFor/time.Millisecond) / 1000 / chunk)
		for i := range chunks {
			if d := time.Until(s.start.Add(time.Duration(i) * time.Second * chunk / rate)); d > 0 {
				time.Sleep(d)
			}
			_, _ = rng.Read(buf)
			h.Write(buf)
			if _, err := c.Write(buf); err != nil {
				s.err = err
				return
			}
			s.n += chunk
		}
		s.err = c.(*net.TCPConn).CloseWrite()
		copy(s.sum[:], h.Sum(nil))
	}()
	return s
}

// Mark is a read of the receiver: when, and the bytes delivered so far.
type Mark struct {
	At    time.Time
	Total int64
}

// Outcome is what one run of the scenario measured.
type Outcome struct {
	// Marks are the receiver's reads, in order.
	Marks []Mark
	// Cut is when eth0 went silent, Restore when it carried traffic again.
	Cut, Restore       time.Time
	DeliveredBeforeCut int64
	DeliveredAtRestore int64
	// CellBeforeCut is the bytes the client sent over eth1 before the cut.
	CellBeforeCut uint64
	// Promoted is when the cellular subflow stopped being backup during
	// the cut, Demoted when it was backup again after the restore (zero:
	// never; Demoted is watched for Mptcpgod and RunUserspace only).
	Promoted, Demoted time.Time
	SentN, GotN       int64
	SentSum, GotSum   []byte
}

// Stall is a gap of StallGap or more between two reads of the receiver.
type Stall struct {
	At time.Duration // of the read before the gap, since the cut
	D  time.Duration
}

// Stalls returns the gaps of StallGap or more between reads.
func (o *Outcome) Stalls() []Stall {
	var out []Stall
	for i := 1; i < len(o.Marks); i++ {
		if d := o.Marks[i].At.Sub(o.Marks[i-1].At); d >= StallGap {
			out = append(out, Stall{At: o.Marks[i-1].At.Sub(o.Cut), D: d})
		}
	}
	return out
}

// Intact reports whether every byte sent arrived, unchanged.
func (o *Outcome) Intact() bool {
	return o.GotN == o.SentN && bytes.Equal(o.GotSum, o.SentSum)
}

// String lists the stalls and when the cellular subflow was promoted and
// demoted.
func (o *Outcome) String() string {
	var b strings.Builder
	for _, s := range o.Stalls() {
		fmt.Fprintf(&b, " %v at %+v;", s.D.Round(time.Millisecond), s.At.Round(time.Millisecond))
	}
	return fmt.Sprintf("stalls (duration at time since the cut):%s promoted %v after the cut, demoted %v after the restore",
		b.String(), since(o.Promoted, o.Cut), since(o.Demoted, o.Restore))
}

func since(t, ref time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Sub(ref).Round(time.Millisecond).String()
}

// Run runs the scenario with the path manager pmName (Mptcpgod or
// KernelBackup) on a testbed of its own and returns what it measured; it
// fails tb only when the scenario cannot run.
func Run(tb testing.TB, pmName string, log *slog.Logger) *Outcome {
	tb.Helper()
	var setup func(cli *netnstest.Host, cell netnstest.Link)
	switch pmName {
	case Mptcpgod:
		setup = func(cli *netnstest.Host, _ netnstest.Link) {
			cli.SetPathManager("userspace")
			startMptcpgod(tb, cli, log)
		}
	case KernelBackup:
		setup = func(cli *netnstest.Host, cell netnstest.Link) {
			cli.MustExec("ip", "mptcp", "limits", "set", "subflows", "2", "add_addr_accepted", "0")
			cli.MustExec("ip", "mptcp", "endpoint", "add", cell.Client4.String(), "dev", cell.ClientIf, "subflow", "backup")
		}
	default:
		tb.Fatalf("unknown path manager %q", pmName)
	}
	return run(tb, setup, pmName == Mptcpgod)
}

// Starter starts a userspace path manager in the client namespace h,
// which is already in userspace mode, and returns once it is ready; it
// stops the path manager with tb.Cleanup.
type Starter func(tb testing.TB, h *netnstest.Host)

// RunUserspace runs the scenario as Run does with Mptcpgod, with the path
// manager start runs (such as the mptcpgod binary with its configuration
// file) in place of the engine Run wires in this process. The path manager
// must give the connection a backup subflow over eth1, the cellular link;
// its promotion during the cut and its demotion after the restore are
// watched as for Mptcpgod.
func RunUserspace(tb testing.TB, start Starter) *Outcome {
	tb.Helper()
	return run(tb, func(cli *netnstest.Host, _ netnstest.Link) {
		cli.SetPathManager("userspace")
		start(tb, cli)
	}, true)
}

// run runs the scenario on a testbed of its own with the path manager
// setup starts in the client namespace (cell is the cellular link), and
// watches the cellular subflow's demotion after the restore when
// watchDemote is set.
func run(tb testing.TB, setup func(cli *netnstest.Host, cell netnstest.Link), watchDemote bool) *Outcome {
	tb.Helper()
	bed := netnstest.NewTestbed(tb, 2)
	cli, srv := bed.Client, bed.Server
	l0, l1 := bed.Links[0], bed.Links[1]
	srv.MustExec("ip", "mptcp", "limits", "set", "subflows", "8", "add_addr_accepted", "8")
	setup(cli, l1)
	diag, err := sockdiag.Dial(&sockdiag.Config{NetNS: cli.NetNS(), States: sockdiag.StateMask(sockdiag.StateEstablished)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = diag.Close() })
	subflows := func() []sockdiag.Subflow {
		var out []sockdiag.Subflow
		if err := diag.Subflows(func(s *sockdiag.Subflow) error { out = append(out, *s); return nil }); err != nil {
			tb.Fatal(err)
		}
		return out
	}
	over := func(sfs []sockdiag.Subflow, a netip.Addr) []sockdiag.Subflow {
		var out []sockdiag.Subflow
		for _, s := range sfs {
			if s.Local.Addr().Unmap() == a {
				out = append(out, s)
			}
		}
		return out
	}
	// backup reports whether the cellular subflows are all backup, and
	// false when there are none.
	backup := func(sfs []sockdiag.Subflow) bool {
		cell := over(sfs, l1.Client4)
		return len(cell) > 0 && !slices.ContainsFunc(cell, func(s sockdiag.Subflow) bool {
			return s.Flags&sockdiag.SubflowBackupLocal == 0
		})
	}

	ln := srv.Listen("tcp4", netip.AddrPortFrom(l0.Server4, 0).String())
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	c, err := cli.Dial("tcp4", l0.Client4.String(), ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	if ok, err := c.(*net.TCPConn).MultipathTCP(); !ok || err != nil {
		tb.Fatalf("the connection is not MPTCP (%v)", err)
	}
	sc, ok := <-accepted
	if !ok {
		tb.Fatal("accept failed")
	}
	tb.Cleanup(func() { _ = sc.Close() })
	rcv := receive(sc)
	snd := send(c)
	tb.Cleanup(func() { _ = c.Close(); _ = sc.Close(); <-snd.done; <-rcv.done })

	poll(tb, "cellular subflow established as backup", 5*time.Second, func() string {
		if sfs := subflows(); !backup(sfs) {
			return fmt.Sprintf("subflows %v", describe(sfs))
		}
		return ""
	})
	time.Sleep(time.Until(snd.start.Add(cutAt)))

	o := &Outcome{}
	for _, s := range over(subflows(), l1.Client4) {
		o.CellBeforeCut += s.TCP.BytesSent
	}
	o.DeliveredBeforeCut = rcv.delivered()
	o.Cut = time.Now()
	cli.Blackhole(l0.ClientIf)
	srv.Blackhole(l0.ServerIf)
	for time.Since(o.Cut) < cutFor {
		if o.Promoted.IsZero() && !backup(subflows()) {
			o.Promoted = time.Now()
		}
		time.Sleep(5 * time.Millisecond)
	}
	o.DeliveredAtRestore = rcv.delivered()
	o.Restore = time.Now()
	cli.ClearQdisc(l0.ClientIf)
	srv.ClearQdisc(l0.ServerIf)
	if watchDemote {
		poll(tb, "cellular subflow demoted", 10*time.Second, func() string {
			sfs := subflows()
			if !backup(sfs) || len(over(sfs, l0.Client4)) == 0 {
				return fmt.Sprintf("subflows %v", describe(sfs))
			}
			if o.Demoted.IsZero() {
				o.Demoted = time.Now()
			}
			return ""
		})
	}

	select {
	case <-rcv.done:
	case <-time.After(sendFor + 15*time.Second):
		tb.Fatalf("transfer not done: %d bytes delivered", rcv.delivered())
	}
	<-snd.done
	if snd.err != nil {
		tb.Fatalf("send: %v", snd.err)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if rcv.err != nil {
		tb.Fatalf("receive: %v", rcv.err)
	}
	o.Marks = slices.Clone(rcv.marks)
	o.SentN, o.GotN = snd.n, rcv.total
	o.SentSum, o.GotSum = snd.sum[:], rcv.sum.Sum(nil)
	return o
}

// startMptcpgod runs, in h's namespace, the engine with fullmesh |
// backup-cellular in userspace mode and the health sampler feeding it,
// as the daemon wires them, with a hand-built view of the testbed's
// links: both veth (virtual), eth1 cellular by the policy's
// configuration.
func startMptcpgod(tb testing.TB, h *netnstest.Host, log *slog.Logger) *pm.Engine {
	tb.Helper()
	chain, err := policy.NewChain([]policy.Spec{{Name: "fullmesh"},
		{Name: "backup-cellular", Config: json.RawMessage(policyConfig)}})
	if err != nil {
		tb.Fatal(err)
	}
	gc, err := genl.New(&genl.Config{NetNS: h.NetNS()})
	if err != nil {
		tb.Fatal(err)
	}
	sub, err := gc.Subscribe()
	if err != nil {
		tb.Fatal(err)
	}
	e, err := pm.New(pm.Config{
		Mode: policy.ModeUserspace, Policy: chain, Events: sub, Workers: 2, Logger: log,
		NewKernel: func() (pm.Kernel, error) { return genl.New(&genl.Config{NetNS: h.NetNS()}) },
	})
	if err != nil {
		tb.Fatal(err)
	}
	s, err := health.New(health.Config{NetNS: h.NetNS(), Refresh: 250 * time.Millisecond, Logger: log})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { // after the Runs', which stop them
		_ = s.Close()
		_ = sub.Close()
		_ = gc.Close()
		_ = chain.Close()
	})
	engine := runtest.Run(tb, "engine", e.Run)
	runtest.Run(tb, "health sampler", s.Run)
	go func() {
		for rep := range s.Updates() {
			e.SetHealth(rep)
		}
	}()

	var links []policy.Link
	var addrs []policy.LocalAddr
	err = h.Do(func() error {
		for _, name := range []string{"eth0", "eth1"} {
			ifi, err := net.InterfaceByName(name)
			if err != nil {
				return err
			}
			l := policy.Link{Name: name, Index: int32(ifi.Index), Kind: policy.LinkVirtual, Up: true, Usable: true}
			links = append(links, l)
			as, err := ifi.Addrs()
			if err != nil {
				return err
			}
			for _, a := range as {
				if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().IsGlobalUnicast() {
					addrs = append(addrs, policy.LocalAddr{Addr: p.Addr().Unmap(), Link: name, IfIndex: l.Index, Usable: true})
				}
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	e.SetHost(links, addrs)
	engine.WaitReady(tb, e.Ready())
	return e
}

// describe lists subflows as "local (flags)".
func describe(sfs []sockdiag.Subflow) []string {
	var out []string
	for _, s := range sfs {
		out = append(out, fmt.Sprintf("%s (%s)", s.Local, s.Flags))
	}
	return out
}

// poll calls cond until it returns "" or the timeout passes, then fails
// with its last answer.
func poll(tb testing.TB, what string, timeout time.Duration, cond func() string) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: %s", what, msg)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
