package netnstest

import (
	"net"
	"strconv"
	"strings"
)

// ifNameMax is the longest interface name the kernel accepts (IFNAMSIZ-1).
const ifNameMax = 15

// Shape parameters: the bucket holds 10 ms worth of the rate but at least
// shapeMinBurst bytes (ten full-size frames, so one TSO burst is not cut
// into drops), and a packet waits at most shapeLatency in the queue before
// it is dropped.
const (
	shapeMinBurst = 10 * 1514
	shapeLatency  = "50ms"
)

// Connect creates a veth pair, aIf in a and bIf in b, in one step and sets
// both ends up.
func Connect(a *Host, aIf string, b *Host, bIf string) {
	a.t.Helper()
	connect(a, aIf, nil, b, bIf, nil)
}

// connect is Connect with optional fixed MAC addresses (nil: random).
func connect(a *Host, aIf string, aMAC net.HardwareAddr, b *Host, bIf string, bMAC net.HardwareAddr) {
	a.t.Helper()
	for _, n := range []string{aIf, bIf} {
		if n == "" || len(n) > ifNameMax || strings.ContainsAny(n, "/: \t\n") {
			a.t.Fatalf("netnstest: connect: interface name %q: want 1 to %d characters without '/', ':' or spaces", n, ifNameMax)
		}
	}
	end := func(h *Host, ifname string, mac net.HardwareAddr) []string {
		args := []string{"name", ifname}
		if mac != nil {
			args = append(args, "address", mac.String())
		}
		return append(args, "netns", h.name)
	}
	args := append([]string{"link", "add"}, end(a, aIf, aMAC)...)
	args = append(append(args, "type", "veth", "peer"), end(b, bIf, bMAC)...)
	if out, err := run("ip", args...); err != nil {
		a.t.Fatalf("netnstest: connect %s/%s to %s/%s: %v\n%s", a.name, aIf, b.name, bIf, err, out)
	}
	a.SetLinkUp(aIf, true)
	b.SetLinkUp(bIf, true)
}

// Blackhole makes ifname drop everything it sends (root qdisc blackhole), a
// silent dead path. Apply it on both ends to silence a link both ways.
func (h *Host) Blackhole(ifname string) {
	h.t.Helper()
	h.tc("qdisc", "replace", "dev", ifname, "root", "blackhole")
}

// ClearQdisc removes the root qdisc of ifname (Blackhole, Shape); an
// interface without one is left alone.
func (h *Host) ClearQdisc(ifname string) {
	h.t.Helper()
	out, err := run("tc", "-n", h.name, "qdisc", "del", "dev", ifname, "root")
	if err != nil && !strings.Contains(out, "handle of zero") {
		h.t.Fatal(err)
	}
}

// Shape limits what ifname sends to mbit Mbit/s with a token bucket (tbf);
// see shapeMinBurst and shapeLatency for the bucket and queue sizes.
func (h *Host) Shape(ifname string, mbit int) {
	h.t.Helper()
	if mbit <= 0 {
		h.t.Fatalf("netnstest: shape %s: mbit %d: want a positive rate", ifname, mbit)
	}
	burst := max(mbit*1_000_000/8/100, shapeMinBurst)
	h.tc("qdisc", "replace", "dev", ifname, "root", "tbf",
		"rate", strconv.Itoa(mbit)+"mbit",
		"burst", strconv.Itoa(burst),
		"latency", shapeLatency)
}

// tc runs `tc -n NAME args...` and fails the test on error.
func (h *Host) tc(args ...string) {
	h.t.Helper()
	if _, err := run("tc", append([]string{"-n", h.name}, args...)...); err != nil {
		h.t.Fatal(err)
	}
}
