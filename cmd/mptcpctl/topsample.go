package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/internal/sockdiag"
)

// topKernel is the kernel as top reads it: the links with their byte
// counters, the MPTCP connections and their subflows.
type topKernel interface {
	// Links returns the links and, for each local address, the index of
	// the link holding it.
	Links() ([]topKernelLink, map[netip.Addr]int32, error)
	Connections(fn func(*sockdiag.Connection) error) error
	Subflows(fn func(*sockdiag.Subflow) error) error
}

// topDaemonClient is the daemon as top asks it; *ctlapi.Client through
// ctlDaemon.
type topDaemonClient interface {
	Status(ctx context.Context) (*ctlapi.Status, error)
	Usage(ctx context.Context) (*ctlapi.Usage, error)
	Conn(ctx context.Context, token uint32) (*ctlapi.Paths, error)
	Metrics(ctx context.Context) ([]byte, error)
	Events(ctx context.Context) (topEventStream, error)
}

// topEventStream is an open GET /v1/events.
type topEventStream interface {
	Next() (ctlapi.Event, error)
	Close() error
}

// ctlDaemon is a topDaemonClient of the control socket.
type ctlDaemon struct{ *ctlapi.Client }

// Events implements topDaemonClient.
func (d ctlDaemon) Events(ctx context.Context) (topEventStream, error) { return d.Client.Events(ctx) }

// sessionKernel is the topKernel of a session's namespace.
type sessionKernel struct{ s *session }

// Links implements topKernel.
func (k sessionKernel) Links() ([]topKernelLink, map[netip.Addr]int32, error) {
	links, addrs, err := k.s.dumpLinks()
	if err != nil {
		return nil, nil, err
	}
	out := make([]topKernelLink, 0, len(links))
	for _, l := range links {
		at := l.Attrs()
		kl := topKernelLink{
			Name:     at.Name,
			Index:    int32(at.Index),
			Up:       at.OperState == netlink.OperUp || at.OperState == netlink.OperUnknown && at.RawFlags&linkFlagsUp == linkFlagsUp,
			Loopback: at.RawFlags&flagLoopback != 0,
		}
		if st := at.Statistics; st != nil {
			kl.RxBytes, kl.TxBytes = st.RxBytes, st.TxBytes
		}
		out = append(out, kl)
	}
	return out, addrIndex(addrs), nil
}

// Interface flags (IFF_*) top reads: a link whose operational state is
// unknown (loopback, some tunnels) is up when it is up with a carrier.
const (
	flagUp       = 0x1
	flagLoopback = 0x8
	flagLowerUp  = 0x10000
	linkFlagsUp  = flagUp | flagLowerUp
)

// topEventBuffer is how many of the daemon's decisions wait for the next
// refresh; more are counted as missed.
const topEventBuffer = 4096

// Connections implements topKernel.
func (k sessionKernel) Connections(fn func(*sockdiag.Connection) error) error {
	sd, err := k.s.diag()
	if err != nil {
		return err
	}
	return sd.Connections(fn)
}

// Subflows implements topKernel.
func (k sessionKernel) Subflows(fn func(*sockdiag.Subflow) error) error {
	sd, err := k.s.diag()
	if err != nil {
		return err
	}
	return sd.Subflows(fn)
}

// topSampler reads the kernel and, when there is one, the daemon into a
// topState, and turns it into frames. One goroutine runs it (run); the
// daemon's event stream has a goroutine of its own.
type topSampler struct {
	kernel topKernel
	daemon topDaemonClient // nil: the kernel's view only
	state  *topState
	// timeout bounds the daemon's answers of one refresh.
	timeout time.Duration

	// events carries the daemon's decisions from the stream's goroutine;
	// streamEnd its end. streaming reports that a stream goroutine runs.
	events    chan ctlapi.Event
	streamEnd chan error
	streaming bool
	// missed counts the decisions events had no room for.
	missed chan uint64

	errs []string
}

// newTopSampler returns a sampler refreshing every interval.
func newTopSampler(k topKernel, d topDaemonClient, interval time.Duration) *topSampler {
	return &topSampler{
		kernel:    k,
		daemon:    d,
		state:     newTopState(interval),
		timeout:   min(max(interval, time.Second), daemonTimeout),
		events:    make(chan ctlapi.Event, topEventBuffer),
		streamEnd: make(chan error, 1),
		missed:    make(chan uint64, 1),
	}
}

// run hands deliver a frame after every refresh until ctx is done. Two
// goroutines share the work: one reads the kernel and the daemon every
// interval, and at once when a connection is opened, into snapshots; the
// other arranges the latest snapshot with the latest settings, again at
// once when they change, so that a key that sorts or filters never waits
// for a walk of the kernel's sockets.
func (ts *topSampler) run(ctx context.Context, interval time.Duration, set topSettings, settings <-chan topSettings,
	deliver func(*topFrame)) {
	snaps := make(chan *topFrame, 1)
	opens := make(chan uint32, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { ts.read(ctx, interval, set.Open, opens, snaps) })
	var snap *topFrame
	for {
		select {
		case <-ctx.Done():
			return
		case snap = <-snaps:
		case next := <-settings:
			if next.Open != set.Open {
				latest(opens, next.Open)
			}
			set = next
		}
		if snap != nil {
			deliver(arrange(snap, set))
		}
	}
}

// read puts a snapshot in snaps every interval, and when a connection is
// opened (opens), until ctx is done.
func (ts *topSampler) read(ctx context.Context, interval time.Duration, open uint32, opens <-chan uint32, snaps chan *topFrame) {
	latest(snaps, ts.sample(ctx, open))
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			latest(snaps, ts.sample(ctx, open))
		case open = <-opens:
			if open != 0 {
				latest(snaps, ts.detailNow(ctx, open))
			}
		}
	}
}

// latest puts v in ch, a channel of capacity 1 with one sender, in place
// of what still waits there.
func latest[T any](ch chan T, v T) {
	for {
		select {
		case ch <- v:
			return
		default:
		}
		select {
		case <-ch:
		default:
		}
	}
}

// snapshot is the state's snapshot with this refresh's errors.
func (ts *topSampler) snapshot() *topFrame {
	f := ts.state.snapshot()
	f.Errors = ts.errs
	return f
}

// sample reads everything once, with the connection open opened, and
// returns the snapshot.
func (ts *topSampler) sample(ctx context.Context, open uint32) *topFrame {
	st := ts.state
	ts.errs = nil
	st.begin(time.Now(), open)
	links, byAddr, err := ts.kernel.Links()
	if err != nil {
		ts.errs = append(ts.errs, "links: "+err.Error())
	} else {
		st.setLinks(time.Now(), links, byAddr)
	}
	st.beginConns(time.Now())
	if err := ts.kernel.Connections(func(c *sockdiag.Connection) error { st.addConn(c); return nil }); err != nil {
		ts.errs = append(ts.errs, "connections: "+err.Error())
	}
	st.beginSubflows(time.Now())
	if err := ts.kernel.Subflows(func(sf *sockdiag.Subflow) error { st.addSubflow(sf); return nil }); err != nil {
		ts.errs = append(ts.errs, "subflows: "+err.Error())
	}
	st.end()
	if ts.daemon != nil {
		ts.readDaemon(ctx, open)
	}
	return ts.snapshot()
}

// detailNow reads the subflows of the connection just opened, without
// counting a refresh, and returns the snapshot.
func (ts *topSampler) detailNow(ctx context.Context, open uint32) *topFrame {
	st := ts.state
	st.open = open
	st.detail = st.detail[:0]
	if err := ts.kernel.Subflows(func(sf *sockdiag.Subflow) error { st.peekSubflow(sf, false); return nil }); err != nil {
		ts.errs = append(ts.errs, "subflows: "+err.Error())
	}
	st.sortDetail()
	if ts.daemon != nil && st.daemon.status != nil {
		ctx, cancel := context.WithTimeout(ctx, ts.timeout)
		defer cancel()
		ts.readConn(ctx, open)
	}
	return ts.snapshot()
}

// readDaemon asks the daemon for its status, usage, programs and the
// opened connection, and keeps its event stream open until ctx is done.
func (ts *topSampler) readDaemon(life context.Context, open uint32) {
	st := ts.state
	ctx, cancel := context.WithTimeout(life, ts.timeout)
	defer cancel()
	status, err := ts.daemon.Status(ctx)
	st.setStatus(status, err)
	ts.drainEvents(life)
	if err != nil {
		return
	}
	u, err := ts.daemon.Usage(ctx)
	switch {
	case errors.Is(err, ctlapi.ErrNotFound):
		st.setUsage(nil)
	case err != nil:
		ts.errs = append(ts.errs, "usage: "+oneLine(err))
	default:
		st.setUsage(u)
	}
	if runsPrograms(status.Policy) {
		if text, err := ts.daemon.Metrics(ctx); err != nil {
			ts.errs = append(ts.errs, "metrics: "+oneLine(err))
		} else if ps, err := parsePlugins(text); err != nil {
			ts.errs = append(ts.errs, err.Error())
		} else {
			st.setPlugins(ps)
		}
	}
	if open != 0 {
		ts.readConn(ctx, open)
	}
}

// readConn asks the daemon for the paths of the connection token.
func (ts *topSampler) readConn(ctx context.Context, token uint32) {
	ps, err := ts.daemon.Conn(ctx, token)
	st := &ts.state.daemon
	st.conn, st.connErr = nil, ""
	switch {
	case errors.Is(err, ctlapi.ErrNotFound):
		st.connErr = "the daemon does not run this connection"
		if st.status != nil && st.status.Mode == pmstate.ModeKernel {
			st.connErr = "the in-kernel path manager runs the connections (kernel mode)"
		}
	case err != nil:
		st.connErr = oneLine(err)
	case len(ps.Conns) == 1:
		st.conn = &ps.Conns[0]
	}
}

// drainEvents hands the state the decisions the stream received, and
// opens the stream, until life is done, when it is not open.
func (ts *topSampler) drainEvents(life context.Context) {
	st := ts.state
	select {
	case err := <-ts.streamEnd:
		ts.streaming = false
		st.daemon.eventsErr = oneLine(err)
	default:
	}
	for {
		select {
		case ev := <-ts.events:
			st.addDecision(ev)
			continue
		case n := <-ts.missed:
			st.addDecision(ctlapi.Event{Decision: pmstate.Decision{Time: st.now, Kind: ctlapi.EventDropped}, Dropped: n})
			continue
		default:
		}
		break
	}
	if !ts.streaming && st.daemon.status != nil {
		ts.streaming = true
		st.daemon.eventsErr = ""
		go ts.stream(life)
	}
}

// stream reads the daemon's decisions until the stream ends or ctx is
// done.
func (ts *topSampler) stream(ctx context.Context) {
	es, err := ts.daemon.Events(ctx)
	if err != nil {
		ts.streamEnd <- err
		return
	}
	defer es.Close()
	var missed uint64
	for {
		ev, err := es.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("the daemon closed its event stream")
			}
			ts.streamEnd <- err
			return
		}
		select {
		case ts.events <- ev:
		default:
			missed++
			select {
			case ts.missed <- missed:
				missed = 0
			default:
			}
		}
	}
}

// oneLine is an error's text for a one-line field.
func oneLine(err error) string {
	if err == nil {
		return ""
	}
	return fmt.Sprint(err)
}
