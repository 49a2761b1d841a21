//go:build linux

package soak_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
)

// flapper takes a link of the client down and up, or its addresses away
// and back, and restores what the kernel drops with them: the routes of
// the link's table and the permanent neighbours the testbed set.
type flapper struct {
	host    *netnstest.Host
	link    netnstest.Link
	restore []string // ip commands
}

// newFlapper records what must be restored after each flap of l.
func newFlapper(t *testing.T, h *netnstest.Host, l netnstest.Link) *flapper {
	t.Helper()
	// IPv6 addresses stay on a link taken down, as IPv4 ones do.
	h.Sysctl("net.ipv6.conf."+l.ClientIf+".keep_addr_on_down", "1")
	f := &flapper{host: h, link: l}
	for _, fam := range []string{"-4", "-6"} {
		for line := range strings.Lines(h.MustExec("ip", fam, "neigh", "show", "dev", l.ClientIf, "nud", "permanent")) {
			if fl := strings.Fields(line); len(fl) >= 3 && fl[1] == "lladdr" {
				f.restore = append(f.restore, fmt.Sprintf("neigh replace %s lladdr %s dev %s nud permanent", fl[0], fl[2], l.ClientIf))
			}
		}
		for line := range strings.Lines(h.MustExec("ip", fam, "route", "show", "table", "all", "dev", l.ClientIf)) {
			line = strings.TrimSpace(line)
			if line == "" || strings.Contains(line, "proto kernel") || strings.HasPrefix(line, "fe80") ||
				strings.HasPrefix(line, "local ") || strings.HasPrefix(line, "broadcast ") ||
				strings.HasPrefix(line, "multicast ") || strings.HasPrefix(line, "anycast ") {
				continue
			}
			f.restore = append(f.restore, "route replace "+line+" dev "+l.ClientIf+" onlink")
		}
	}
	if len(f.restore) < 4 {
		t.Fatalf("soak: want a neighbour and a route per family to restore on %s, found %q", l.ClientIf, f.restore)
	}
	return f
}

// batch runs ip commands in the host's namespace in one process; each
// command's addresses give its family.
func (f *flapper) batch(cmds ...string) error {
	cmd := exec.Command("ip", "-n", f.host.Name(), "-batch", "-")
	cmd.Stdin = strings.NewReader(strings.Join(cmds, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("soak: ip -batch %q: %v: %s", cmds, err, out)
	}
	return nil
}

// routeDelay is how long the last flap leaves the link's addresses
// without their routes, as a DHCP client does between the address and
// the routes.
const routeDelay = 300 * time.Millisecond

// flap takes the link away and back once: even flaps set the link down
// and up, odd ones delete and add its addresses. The routes and
// neighbours come back routesAfter after the link or the addresses.
func (f *flapper) flap(i int, routesAfter time.Duration) error {
	l := f.link
	p4, p6 := fmt.Sprintf("%s/24", l.Client4), fmt.Sprintf("%s/64", l.Client6)
	var down, up []string
	if i%2 == 0 {
		down = []string{"link set " + l.ClientIf + " down"}
		up = []string{"link set " + l.ClientIf + " up"}
	} else {
		down = []string{"addr del " + p4 + " dev " + l.ClientIf, "addr del " + p6 + " dev " + l.ClientIf}
		up = []string{"addr add " + p4 + " dev " + l.ClientIf, "addr add " + p6 + " dev " + l.ClientIf + " nodad"}
	}
	if err := f.batch(down...); err != nil {
		return err
	}
	time.Sleep(2 * time.Millisecond)
	if routesAfter == 0 {
		return f.batch(append(up, f.restore...)...)
	}
	if err := f.batch(up...); err != nil {
		return err
	}
	time.Sleep(routesAfter)
	return f.batch(f.restore...)
}

// flaps flaps the link up to n times, until ctx is done, and returns how
// many flaps it did. The last one deletes and adds the addresses and
// restores the routes routeDelay later: until then the addresses have no
// route and must not be used.
func (f *flapper) flaps(ctx context.Context, n int) (int, error) {
	done := 0
	for ; done < n-1 && ctx.Err() == nil; done++ {
		if err := f.flap(done, 0); err != nil {
			return done, err
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n > 0 {
		if err := f.flap(1, routeDelay); err != nil {
			return done, err
		}
		done++
	}
	return done, nil
}
