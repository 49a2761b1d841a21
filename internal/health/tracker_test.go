package health

import (
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mptcpgod/mptcpgod/internal/sockdiag"
	"github.com/mptcpgod/mptcpgod/pm"
	"github.com/mptcpgod/mptcpgod/policy"
)

var (
	t0     = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	netOpt = cmpopts.EquateComparable(netip.AddrPort{})
	srv    = netip.MustParseAddrPort("203.0.113.2:443")
)

const ms = time.Millisecond

// sub is a subflow of a sample.
type sub struct {
	token   uint32
	local   string
	ifindex int32
	unacked uint32
	lastAck time.Duration
	rto     time.Duration
	backoff uint8
}

func (s sub) observed() observed {
	rto := s.rto
	if rto == 0 {
		rto = 201 * ms
	}
	return observed{ifindex: s.ifindex, sf: sockdiag.Subflow{
		Local: netip.MustParseAddrPort(s.local), Remote: srv, State: sockdiag.StateEstablished, Token: s.token,
		TCP: sockdiag.TCPInfo{RTO: rto, Backoff: s.backoff, Unacked: s.unacked, LastAckRecv: s.lastAck,
			RTT: 300 * time.Microsecond, BytesSent: 1000, BytesRetrans: 10},
	}}
}

// step is one sample at t0+at and what it must give.
type step struct {
	at   time.Duration
	subs []sub
	// stalled lists the "token/local" of the stalled subflows, links
	// the stalled links.
	stalled  []string
	links    []int32
	emit     bool
	deadline time.Duration // from t0; -1 for none
}

func stalledOf(rep pm.Health) (subs []string, links []int32) {
	for _, s := range rep.Subflows {
		if s.Health.Stalled {
			subs = append(subs, s.Local.String())
		}
	}
	for _, l := range rep.Links {
		if l.Health.Stalled {
			links = append(links, l.IfIndex)
		}
	}
	return subs, links
}

func TestTracker(t *testing.T) {
	t.Parallel()
	a := "192.0.2.1:40000"
	b := "198.51.100.1:40001"
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "bulk transfer with ACKs",
			steps: []step{
				{at: 0, subs: []sub{{token: 1, local: a, ifindex: 2, unacked: 10, lastAck: 0}}, emit: true, deadline: 201 * ms},
				{at: 25 * ms, subs: []sub{{token: 1, local: a, ifindex: 2, unacked: 10, lastAck: 1 * ms}}, deadline: 225 * ms},
			},
		},
		{
			name: "the path goes silent",
			steps: []step{
				{at: 0, subs: []sub{{token: 1, local: a, ifindex: 2, unacked: 10}}, emit: true, deadline: 201 * ms},
				{at: 100 * ms, subs: []sub{{token: 1, local: a, ifindex: 2, unacked: 30, lastAck: 100 * ms}}, deadline: 201 * ms},
				{at: 201 * ms, subs: []sub{{token: 1, local: a, ifindex: 2, unacked: 30, lastAck: 201 * ms}}, deadline: 201 * ms},
				// The RTO fired: the backed-off RTO does not move the threshold.
				{at: 202 * ms, subs: []sub{{token: 1, local: a, ifindex: 2, unacked: 30, lastAck: 202 * ms, rto: 402 * ms, backoff: 1}},
					stalled: []string{a}, links: []int32{2}, emit: true, deadline: -1},
				{at: 400 * ms, subs: []sub{{token: 1, local: a, ifindex: 2, unacked: 30, lastAck: 400 * ms, rto: 402 * ms, backoff: 1}},
					stalled: []string{a}, links: []int32{2}, deadline: -1},
				// An ACK: recovered.
				{at: 420 * ms, subs: []sub{{token: 1, local: a, ifindex: 2, unacked: 5, lastAck: 1 * ms}}, emit: true, deadline: 620 * ms},
			},
		},
		{
			name: "sending after a long idle time is no stall",
			steps: []step{
				{at: 0, subs: []sub{{token: 1, local: a, ifindex: 2, lastAck: 10 * time.Second}}, emit: true, deadline: -1},
				// The data left after the last sample that saw none.
				{at: 25 * ms, subs: []sub{{token: 1, local: a, ifindex: 2, unacked: 3, lastAck: 10*time.Second + 25*ms}}, deadline: 201 * ms},
				{at: 200 * ms, subs: []sub{{token: 1, local: a, ifindex: 2, unacked: 3, lastAck: 10*time.Second + 200*ms}}, deadline: 201 * ms},
				{at: 202 * ms, subs: []sub{{token: 1, local: a, ifindex: 2, unacked: 3, lastAck: 10*time.Second + 202*ms}},
					stalled: []string{a}, links: []int32{2}, emit: true, deadline: -1},
			},
		},
		{
			name: "a subflow first seen with data in flight gets its threshold from then",
			steps: []step{
				{at: 0, subs: []sub{{token: 1, local: a, ifindex: 2, unacked: 3, lastAck: 5 * time.Second}}, emit: true, deadline: 201 * ms},
				{at: 202 * ms, subs: []sub{{token: 1, local: a, ifindex: 2, unacked: 3, lastAck: 5*time.Second + 202*ms}},
					stalled: []string{a}, links: []int32{2}, emit: true, deadline: -1},
			},
		},
		{
			name: "thresholds within min and max",
			steps: []step{
				{at: 0, subs: []sub{
					{token: 1, local: a, ifindex: 2, unacked: 1, rto: 5 * ms},
					{token: 2, local: b, ifindex: 3, unacked: 1, rto: 10 * time.Second},
				}, emit: true, deadline: 150 * ms},
				{at: 151 * ms, subs: []sub{
					{token: 1, local: a, ifindex: 2, unacked: 1, rto: 5 * ms, lastAck: 151 * ms},
					{token: 2, local: b, ifindex: 3, unacked: 1, rto: 10 * time.Second, lastAck: 151 * ms},
				}, stalled: []string{a}, links: []int32{2}, emit: true, deadline: 2 * time.Second},
			},
		},
		{
			name: "a link with ACKs on another subflow is not stalled",
			steps: []step{
				{at: 0, subs: []sub{{token: 1, local: a, ifindex: 2, unacked: 5}, {token: 2, local: "192.0.2.1:40010", ifindex: 2}},
					emit: true, deadline: 201 * ms},
				{at: 250 * ms, subs: []sub{{token: 1, local: a, ifindex: 2, unacked: 5, lastAck: 250 * ms},
					{token: 2, local: "192.0.2.1:40010", ifindex: 2, lastAck: 10 * ms}},
					stalled: []string{a}, emit: true, deadline: -1},
				// The other subflow goes quiet too: the link is stalled.
				{at: 300 * ms, subs: []sub{{token: 1, local: a, ifindex: 2, unacked: 5, lastAck: 300 * ms},
					{token: 2, local: "192.0.2.1:40010", ifindex: 2, lastAck: 220 * ms}},
					stalled: []string{a}, links: []int32{2}, emit: true, deadline: -1},
			},
		},
		{
			name: "a stalled link keeps its verdict without subflows, a healthy one is dropped",
			steps: []step{
				{at: 0, subs: []sub{{token: 1, local: a, ifindex: 2, unacked: 5}, {token: 2, local: b, ifindex: 3, unacked: 5}},
					emit: true, deadline: 201 * ms},
				{at: 202 * ms, subs: []sub{{token: 1, local: a, ifindex: 2, unacked: 5, lastAck: 202 * ms},
					{token: 2, local: b, ifindex: 3, unacked: 5, lastAck: 2 * ms}},
					stalled: []string{a}, links: []int32{2}, emit: true, deadline: 401 * ms},
				{at: 230 * ms, links: []int32{2}, deadline: -1},
				{at: 1300 * ms, links: []int32{2}, emit: true, deadline: -1},
				// A new subflow over link 2 that gets ACKs: recovered.
				{at: 1400 * ms, subs: []sub{{token: 3, local: "192.0.2.1:40020", ifindex: 2}}, emit: true, deadline: -1},
			},
		},
		{
			name: "unplaced subflows count for no link",
			steps: []step{
				{at: 0, subs: []sub{{token: 1, local: a, unacked: 5}}, emit: true, deadline: 201 * ms},
				{at: 202 * ms, subs: []sub{{token: 1, local: a, unacked: 5, lastAck: 202 * ms}}, stalled: []string{a},
					emit: true, deadline: -1},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tr := newTracker(DefaultThreshold, time.Second, slog.New(slog.DiscardHandler))
			for i, st := range tt.steps {
				var obs []observed
				for _, s := range st.subs {
					obs = append(obs, s.observed())
				}
				rep, emit, deadline := tr.update(t0.Add(st.at), obs)
				if emit != st.emit {
					t.Fatalf("step %d: emit %v, want %v", i, emit, st.emit)
				}
				wantDeadline := time.Time{}
				if st.deadline >= 0 {
					wantDeadline = t0.Add(st.deadline)
				}
				if !deadline.Equal(wantDeadline) {
					t.Errorf("step %d: deadline %v, want %v", i, deadline.Sub(t0), st.deadline)
				}
				if !emit {
					rep = tr.report()
				}
				subs, links := stalledOf(rep)
				if diff := cmp.Diff(st.stalled, subs); diff != "" {
					t.Errorf("step %d: stalled subflows (-want +got):\n%s", i, diff)
				}
				if diff := cmp.Diff(st.links, links); diff != "" {
					t.Errorf("step %d: stalled links (-want +got):\n%s", i, diff)
				}
			}
		})
	}
}

// TestTrackerReport checks a report's contents: the subflows' numbers,
// sorted, the link summaries, and the times stalls began and ended.
func TestTrackerReport(t *testing.T) {
	t.Parallel()
	tr := newTracker(DefaultThreshold, time.Second, slog.New(slog.DiscardHandler))
	mk := func(token uint32, local string, ifindex int32, unacked uint32, lastAck, rtt time.Duration) observed {
		o := sub{token: token, local: local, ifindex: ifindex, unacked: unacked, lastAck: lastAck}.observed()
		o.sf.TCP.RTT, o.sf.TCP.RTTVar, o.sf.TCP.LastDataRecv, o.sf.TCP.Retransmits = rtt, rtt/2, 7*ms, uint8(token)
		return o
	}
	obs := []observed{
		mk(2, "198.51.100.1:40001", 3, 0, 30*ms, 40*ms),
		mk(1, "192.0.2.1:40000", 2, 4, 0, 2*ms),
		mk(3, "192.0.2.1:40010", 2, 6, 3*ms, time.Millisecond),
		{sf: sockdiag.Subflow{Token: 9, State: sockdiag.StateSynSent}}, // not established: ignored
	}
	tr.update(t0, obs)
	obs[1].sf.TCP.LastAckRecv, obs[2].sf.TCP.LastAckRecv = 250*ms, 250*ms
	rep, emit, _ := tr.update(t0.Add(250*ms), obs)
	if !emit {
		t.Fatal("no report after a stall")
	}
	at := t0.Add(250 * ms)
	h := func(rtt time.Duration, unacked uint32, lastAck time.Duration, retr uint32, stalled bool) policy.Health {
		out := policy.Health{RTT: rtt, RTTVar: rtt / 2, RTO: 201 * ms, Loss: 0.01, Retransmits: retr, Unacked: unacked,
			LastAckRecv: lastAck, LastDataRecv: 7 * ms, Stalled: stalled, Sampled: at}
		if stalled {
			out.StalledChanged = at
		}
		return out
	}
	want := pm.Health{
		Subflows: []pm.SubflowHealth{
			{Token: 1, Local: netip.MustParseAddrPort("192.0.2.1:40000"), Remote: srv, Health: h(2*ms, 4, 250*ms, 1, true)},
			{Token: 2, Local: netip.MustParseAddrPort("198.51.100.1:40001"), Remote: srv, Health: h(40*ms, 0, 30*ms, 2, false)},
			{Token: 3, Local: netip.MustParseAddrPort("192.0.2.1:40010"), Remote: srv, Health: h(time.Millisecond, 6, 250*ms, 3, true)},
		},
		Links: []pm.LinkHealth{
			{IfIndex: 2, Health: policy.Health{RTT: time.Millisecond, RTTVar: time.Millisecond / 2, RTO: 201 * ms, Loss: 0.01,
				Retransmits: 3, Unacked: 10, LastAckRecv: 250 * ms, LastDataRecv: 7 * ms, Stalled: true, StalledChanged: at, Sampled: at}},
			{IfIndex: 3, Health: h(40*ms, 0, 30*ms, 2, false)},
		},
	}
	if diff := cmp.Diff(want, rep, netOpt); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
}

// TestTrackerRefresh: without a stall beginning or ending, reports go out
// at most every refresh period, and not at all once nothing is left.
func TestTrackerRefresh(t *testing.T) {
	t.Parallel()
	tr := newTracker(DefaultThreshold, time.Second, slog.New(slog.DiscardHandler))
	one := []observed{sub{token: 1, local: "192.0.2.1:40000", ifindex: 2}.observed()}
	var got []time.Duration
	for at := time.Duration(0); at <= 2500*ms; at += 25 * ms {
		obs := one
		if at >= 2500*ms {
			obs = nil
		}
		if _, emit, _ := tr.update(t0.Add(at), obs); emit {
			got = append(got, at)
		}
	}
	for at := 2525 * ms; at <= 6*time.Second; at += 500 * ms {
		if _, emit, _ := tr.update(t0.Add(at), nil); emit {
			got = append(got, at)
		}
	}
	// Every second while the subflow lives; its end (at 2.5 s) a refresh
	// period after the last report; then silence.
	if diff := cmp.Diff([]time.Duration{0, time.Second, 2 * time.Second, 3025 * ms}, got); diff != "" {
		t.Errorf("reports at (-want +got):\n%s", diff)
	}
}

func TestThreshold(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   Threshold
		rto  time.Duration
		want time.Duration
		err  string
	}{
		{in: Threshold{}, rto: 201 * ms, want: 201 * ms},
		{in: Threshold{}, rto: 0, want: 150 * ms},
		{in: Threshold{}, rto: time.Minute, want: 2 * time.Second},
		{in: Threshold{RTOFactor: 1.5}, rto: 200 * ms, want: 300 * ms},
		{in: Threshold{Min: 50 * ms, RTOFactor: 0.5}, rto: 200 * ms, want: 100 * ms},
		{in: Threshold{Min: 3 * time.Second}, rto: 200 * ms, want: 3 * time.Second},
		{in: Threshold{Min: -1}, err: "health: stall threshold: min -1ns is negative"},
		{in: Threshold{Min: time.Second, Max: 500 * ms}, err: "health: stall threshold: max 500ms is below min 1s"},
		{in: Threshold{RTOFactor: -2}, err: "health: stall threshold: rto factor -2 is not a positive number"},
	}
	for _, tt := range tests {
		th, err := tt.in.withDefaults()
		if got := errString(err); got != tt.err {
			t.Errorf("%+v: error %q, want %q", tt.in, got, tt.err)
			continue
		}
		if err == nil {
			if got := th.For(tt.rto); got != tt.want {
				t.Errorf("%+v.For(%v) = %v, want %v", tt.in, tt.rto, got, tt.want)
			}
		}
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   Config
		want Config
		err  string
	}{
		{in: Config{}, want: Config{Interval: DefaultInterval, IdleInterval: DefaultIdleInterval, Refresh: DefaultRefresh, Stall: DefaultThreshold}},
		{in: Config{Interval: time.Second}, want: Config{Interval: time.Second, IdleInterval: time.Second, Refresh: DefaultRefresh, Stall: DefaultThreshold}},
		{in: Config{NetNS: -1}, err: "health: netns: -1 is not a file descriptor"},
		{in: Config{Interval: -ms}, err: "health: interval: -1ms is negative"},
		{in: Config{Refresh: -ms}, err: "health: refresh: -1ms is negative"},
		{in: Config{Interval: 50 * ms, IdleInterval: 10 * ms}, err: "health: idle interval: 10ms is shorter than interval 50ms"},
		{in: Config{Stall: Threshold{Max: -1}}, err: "health: stall threshold: max -1ns is below min 150ms"},
	}
	for _, tt := range tests {
		got, err := tt.in.withDefaults()
		if e := errString(err); e != tt.err {
			t.Errorf("%+v: error %q, want %q", tt.in, e, tt.err)
			continue
		}
		if err != nil {
			continue
		}
		got.Logger = nil
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%+v (-want +got):\n%s", tt.in, diff)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
