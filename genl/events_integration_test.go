package genl_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
)

// TestEventsKernelPM observes every event type on both hosts, driven by
// real connections and the in-kernel PM's endpoints, and checks each
// event's attributes against the sockets and sock_diag.
func TestEventsKernelPM(t *testing.T) {
	t.Parallel()
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			t.Parallel()
			tb := netnstest.NewTestbed(t, 2)
			cc, sc := newClient(t, tb.Client), newClient(t, tb.Server)
			cev, sev := subscribe(t, cc, "client"), subscribe(t, sc, "server")
			setLimits(t, cc, 2, 2)
			sigAddr := fam.server(tb.Links[1])

			ln, lnAddr := listen(t, tb.Server, fam.network)
			sev.waitListener(t, genl.EventListenerCreated, lnAddr)

			srv := netip.AddrPortFrom(fam.server(tb.Links[0]), lnAddr.Port())
			c := connect(t, tb.Client, tb.Server, fam.network, fam.client(tb.Links[0]), ln, srv)
			for _, typ := range []genl.EventType{genl.EventCreated, genl.EventEstablished} {
				cev.waitEqual(t, genl.Event{Type: typ, Token: c.clientToken, Local: c.clientAddr, Remote: c.serverAddr})
				sev.waitEqual(t, genl.Event{
					Type: typ, Token: c.serverToken, Local: c.serverAddr, Remote: c.clientAddr,
					Flags: serverSide(t), ServerSide: true,
				})
			}

			// A signal endpoint on the server is announced to the client,
			// which accepts it (add_addr_accepted 2) and joins it.
			if err := sc.AddEndpoint(genl.Endpoint{Addr: sigAddr, Flags: genl.FlagSignal}); err != nil {
				t.Fatalf("AddEndpoint: %v", err)
			}
			eps, err := sc.Endpoints()
			if err != nil || len(eps) != 1 {
				t.Fatalf("Endpoints = %+v, %v; want the signal endpoint", eps, err)
			}
			sigID := eps[0].ID
			cev.waitEqual(t, genl.Event{
				Type: genl.EventAnnounced, Token: c.clientToken, RemoteID: sigID,
				Remote: netip.AddrPortFrom(sigAddr, c.serverAddr.Port()),
			})
			toSig := func(ev genl.Event) bool { return ev.Remote.Addr() == sigAddr }
			fromSig := func(ev genl.Event) bool { return ev.Local.Addr() == sigAddr }
			csub := cev.wait(t, "client sub_established to the signal address", and(ofType(genl.EventSubEstablished, c.clientToken), toSig))
			ssub := sev.wait(t, "server sub_established on the signal address", and(ofType(genl.EventSubEstablished, c.serverToken), fromSig))
			// The kernel PM joins from the address routing picks: the
			// client's address on the signal address's link.
			wantC := genl.Event{
				Type: genl.EventSubEstablished, Token: c.clientToken,
				Local:   netip.AddrPortFrom(fam.client(tb.Links[1]), csub.Local.Port()),
				Remote:  netip.AddrPortFrom(sigAddr, c.serverAddr.Port()),
				LocalID: csub.LocalID, RemoteID: sigID,
			}
			if diff := cmp.Diff(wantC, csub, cmpOpts); diff != "" {
				t.Errorf("client sub_established (-want +got):\n%s", diff)
			}
			wantS := genl.Event{
				Type: genl.EventSubEstablished, Token: c.serverToken,
				Local: wantC.Remote, Remote: wantC.Local,
				LocalID: sigID, RemoteID: csub.LocalID,
			}
			if diff := cmp.Diff(wantS, ssub, cmpOpts); diff != "" {
				t.Errorf("server sub_established (-want +got):\n%s", diff)
			}
			checkSubflowEvent(t, tb.Client, csub)
			checkSubflowEvent(t, tb.Server, ssub)
			if n := waitConnSubflows(t, tb.Client, c, 1).Subflows; n != 1 {
				t.Errorf("ss -M: client connection has %d extra subflows, want 1", n)
			}

			// Backup on the endpoint sends MP_PRIO over the subflow; the
			// client reports the priority change, by id then by address.
			for _, step := range []struct {
				name string
				req  genl.Endpoint
			}{
				{"backup by id", genl.Endpoint{ID: sigID, Flags: genl.FlagBackup}},
				{"nobackup by address", genl.Endpoint{Addr: sigAddr}},
			} {
				if err := sc.SetEndpointFlags(step.req); err != nil {
					t.Fatalf("%s: SetEndpointFlags(%+v): %v", step.name, step.req, err)
				}
				want := wantC
				want.Type = genl.EventSubPriority
				want.Backup = step.req.Flags&genl.FlagBackup != 0
				cev.waitEqual(t, want)
				if s := checkSubflowEvent(t, tb.Client, want); strings.Contains(s.Flags, "B") != want.Backup {
					t.Errorf("%s: sock_diag flags %q of the client subflow, want backup (B) %v", step.name, s.Flags, want.Backup)
				}
			}

			// Deleting the endpoint withdraws the address (RM_ADDR) and
			// closes the subflow on both sides.
			if err := sc.DelEndpoint(sigID); err != nil {
				t.Fatalf("DelEndpoint(%d): %v", sigID, err)
			}
			cev.waitEqual(t, genl.Event{Type: genl.EventRemoved, Token: c.clientToken, RemoteID: sigID})
			sameSubflow := func(want genl.Event) func(genl.Event) bool {
				return func(ev genl.Event) bool {
					return ev.Type == genl.EventSubClosed && ev.Token == want.Token && ev.Local == want.Local &&
						ev.Remote == want.Remote && ev.LocalID == want.LocalID && ev.RemoteID == want.RemoteID
				}
			}
			cev.wait(t, "client sub_closed", sameSubflow(wantC))
			sev.wait(t, "server sub_closed", sameSubflow(wantS))
			waitSubflows(t, tb.Client, c.clientToken, 1)
			c.pingPong(t)

			// Closing ends the connection on both sides; closing the
			// listener ends it.
			_ = c.client.Close()
			_ = c.server.Close()
			cev.waitEqual(t, genl.Event{Type: genl.EventClosed, Token: c.clientToken})
			sev.waitEqual(t, genl.Event{Type: genl.EventClosed, Token: c.serverToken})
			_ = ln.Close()
			sev.waitListener(t, genl.EventListenerClosed, lnAddr)

			// Events are per namespace: the client saw no listener events.
			if evs := cev.all(func(ev genl.Event) bool { return ev.Type == genl.EventListenerCreated }); len(evs) != 0 {
				t.Errorf("client got the server's listener events: %+v", evs)
			}
		})
	}
}

// TestDelEndpointAddrIDZero removes a connection's initial address (DEL_ADDR
// with id 0 and the address) while a second subflow, opened from a subflow
// endpoint bound to a device, keeps the connection alive.
func TestDelEndpointAddrIDZero(t *testing.T) {
	t.Parallel()
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			t.Parallel()
			tb := netnstest.NewTestbed(t, 2)
			cc, sc := newClient(t, tb.Client), newClient(t, tb.Server)
			cev, sev := subscribe(t, cc, "client"), subscribe(t, sc, "server")
			eth1 := ifIndex(t, tb.Client, tb.Links[1].ClientIf)
			second := fam.client(tb.Links[1])
			if err := cc.AddEndpoint(genl.Endpoint{ID: 4, Addr: second, Flags: genl.FlagSubflow, IfIndex: eth1}); err != nil {
				t.Fatalf("AddEndpoint: %v", err)
			}

			ln, lnAddr := listen(t, tb.Server, fam.network)
			srv := netip.AddrPortFrom(fam.server(tb.Links[0]), lnAddr.Port())
			c := connect(t, tb.Client, tb.Server, fam.network, fam.client(tb.Links[0]), ln, srv)
			sub := cev.wait(t, "sub_established from the subflow endpoint", and(
				ofType(genl.EventSubEstablished, c.clientToken),
				func(ev genl.Event) bool { return ev.Local.Addr() == second }))
			want := genl.Event{
				Type: genl.EventSubEstablished, Token: c.clientToken,
				Local: sub.Local, Remote: c.serverAddr, LocalID: 4, IfIndex: eth1,
			}
			if diff := cmp.Diff(want, sub, cmpOpts); diff != "" {
				t.Errorf("sub_established (-want +got):\n%s", diff)
			}
			checkSubflowEvent(t, tb.Client, sub)
			waitSubflows(t, tb.Client, c.clientToken, 2)

			if err := cc.DelEndpointAddr(c.clientAddr.Addr()); err != nil {
				t.Fatalf("DelEndpointAddr(%v): %v", c.clientAddr.Addr(), err)
			}
			sev.waitEqual(t, genl.Event{Type: genl.EventRemoved, Token: c.serverToken, RemoteID: 0})
			cev.wait(t, "sub_closed of the initial subflow", func(ev genl.Event) bool {
				return ev.Type == genl.EventSubClosed && ev.Token == c.clientToken && ev.Local == c.clientAddr && ev.Remote == c.serverAddr
			})
			left := waitSubflows(t, tb.Client, c.clientToken, 1)
			if left[0].Local != sub.Local {
				t.Errorf("the subflow left is %v→%v, want the endpoint's %v", left[0].Local, left[0].Remote, sub.Local)
			}
			c.transfer(t, 256<<10)
		})
	}
}

// TestEventsLost overflows a tiny receive buffer: Receive reports
// ErrEventsLost, and the stream goes on delivering new events.
func TestEventsLost(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 1)
	sc := newClient(t, tb.Server)
	sub, err := sc.Subscribe()
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	// The kernel doubles the value and enforces a minimum of a few KB;
	// each event takes a whole skb (several hundred bytes of truesize at
	// least), so 64 connections' CREATED and ESTABLISHED cannot fit.
	if err := sub.SetReadBuffer(1024); err != nil {
		t.Fatalf("SetReadBuffer: %v", err)
	}
	fam := families[0]
	ln, lnAddr := listen(t, tb.Server, fam.network)
	srv := netip.AddrPortFrom(fam.server(tb.Links[0]), lnAddr.Port())
	for range 64 {
		connect(t, tb.Client, tb.Server, fam.network, fam.client(tb.Links[0]), ln, srv)
	}

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	var before int
	for {
		evs, err := sub.Receive(ctx)
		if errors.Is(err, genl.ErrEventsLost) {
			break
		}
		if err != nil {
			t.Fatalf("Receive after %d events: %v, want ErrEventsLost", before, err)
		}
		before += len(evs)
	}
	t.Logf("%d events delivered before the loss was reported", before)

	// The kernel marks the socket congested and drops every new event,
	// without reporting ENOBUFS again, until a read finds the queue
	// empty: drain what is queued (nothing produces events now, so a
	// quiet Receive means the queue is empty).
	var after int
	for {
		dctx, dcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		evs, err := sub.Receive(dctx)
		dcancel()
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			break
		}
		if err != nil {
			t.Fatalf("Receive while draining after %d events: %v", after, err)
		}
		after += len(evs)
	}
	t.Logf("%d queued events drained after the loss", after)
	if total := before + after; total >= 2*64 {
		t.Errorf("%d events delivered of %d sent, want some lost", total, 2*64)
	}

	// A daemon resynchronises and gives itself more room; the same
	// subscription then carries the events of a new connection.
	if err := sub.SetReadBuffer(1 << 20); err != nil {
		t.Fatalf("SetReadBuffer: %v", err)
	}
	c := connect(t, tb.Client, tb.Server, fam.network, fam.client(tb.Links[0]), ln, srv)
	want := genl.Event{
		Type: genl.EventEstablished, Token: c.serverToken, Local: c.serverAddr, Remote: c.clientAddr,
		Flags: serverSide(t), ServerSide: true,
	}
	for {
		evs, err := sub.Receive(ctx)
		if err != nil {
			t.Fatalf("Receive after the loss: %v (waiting for %+v)", err, want)
		}
		for _, ev := range evs {
			if ev == want {
				return
			}
		}
	}
}

// TestReceiveCancel checks that Receive returns promptly when its context
// is cancelled or its deadline passes, and that the subscription still
// works afterwards.
func TestReceiveCancel(t *testing.T) {
	t.Parallel()
	h := netnstest.NewHost(t, "cancel")
	c := newClient(t, h)
	sub, err := c.Subscribe()
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	t.Cleanup(func() { _ = sub.Close() })

	const prompt = 2 * time.Second
	receive := func(ctx context.Context) (time.Duration, error) {
		start := time.Now()
		evs, err := sub.Receive(ctx)
		if len(evs) != 0 {
			t.Errorf("Receive returned events %+v in a silent namespace", evs)
		}
		return time.Since(start), err
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if d, err := receive(ctx); !errors.Is(err, context.Canceled) || d > prompt {
		t.Errorf("Receive with a cancelled context: %v after %v, want context.Canceled at once", err, d)
	}

	ctx, cancel = context.WithCancel(context.Background())
	timer := time.AfterFunc(100*time.Millisecond, cancel)
	defer timer.Stop()
	if d, err := receive(ctx); !errors.Is(err, context.Canceled) || d > prompt {
		t.Errorf("Receive cancelled while blocked: %v after %v, want context.Canceled promptly", err, d)
	}

	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if d, err := receive(ctx); !errors.Is(err, context.DeadlineExceeded) || d > prompt {
		t.Errorf("Receive with a deadline: %v after %v, want context.DeadlineExceeded promptly", err, d)
	}

	// The subscription survives the interruptions: it gets the event of
	// a new listener or, on kernels without listener events (before
	// 6.2), of a connection to it.
	ln, lnAddr := listen(t, h, "tcp4")
	defer ln.Close()
	want := genl.Event{Type: genl.EventListenerCreated, Local: lnAddr}
	if !netnstest.KernelHas(genl.CapListenerEvents) {
		netnstest.Degraded(t, "no listener events (Linux %s): waited for a connection's created event instead", genl.CapListenerEvents.Since)
		c, err := h.Dial("tcp4", "", netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), lnAddr.Port()).String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		want = genl.Event{Type: genl.EventCreated}
	}
	ctx, cancel = context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	evs, err := sub.Receive(ctx)
	if err != nil {
		t.Fatalf("Receive after cancellations: %v", err)
	}
	if len(evs) == 0 {
		t.Fatal("Receive after cancellations: no event")
	}
	if want.Type == genl.EventCreated {
		evs[0] = genl.Event{Type: evs[0].Type}
		evs = evs[:1]
	}
	if diff := cmp.Diff([]genl.Event{want}, evs, cmpOpts); diff != "" {
		t.Errorf("Receive after cancellations (-want +got):\n%s", diff)
	}
}

// and matches events that match all of fns.
func and(fns ...func(genl.Event) bool) func(genl.Event) bool {
	return func(ev genl.Event) bool {
		for _, fn := range fns {
			if !fn(ev) {
				return false
			}
		}
		return true
	}
}

// waitConnSubflows polls `ss -MHni` until the connection c shows n extra
// subflows on the client.
func waitConnSubflows(t *testing.T, h *netnstest.Host, c *conn, n int) ssSock {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		s := ssConnection(t, h, c.clientAddr, c.serverAddr)
		if s.Subflows == n || time.Now().After(deadline) {
			return s
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSetReadBufferForce: with CAP_NET_ADMIN the event socket's buffer
// may exceed net.core.rmem_max, which caps SO_RCVBUF.
func TestSetReadBufferForce(t *testing.T) {
	t.Parallel()
	h := netnstest.NewHost(t, "rcvbuf")
	sub, err := newClient(t, h).Subscribe()
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	raw, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Fatal(err)
	}
	rmemMax, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	want := 2 * rmemMax
	if err := sub.SetReadBuffer(want); err != nil {
		t.Fatalf("SetReadBuffer(%d): %v", want, err)
	}
	got, err := sub.ReadBuffer()
	if err != nil {
		t.Fatal(err)
	}
	// The kernel reports twice what it granted.
	if got != 2*want {
		t.Errorf("ReadBuffer after SetReadBuffer(%d) = %d, want %d (net.core.rmem_max is %d)", want, got, 2*want, rmemMax)
	}
}
