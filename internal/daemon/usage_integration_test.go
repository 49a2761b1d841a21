//go:build linux

package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/daemon"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/daemontest"
	"github.com/mptcpgod/mptcpgod/internal/testing/enginetest"
)

// usageQuota is eth1's quota in TestCostAwareQuota.
const usageQuota = 1_000_000

// TestCostAwareQuota runs fullmesh | cost-aware, in both modes, with eth1
// metered and a quota of 1 MB: while eth0 works, eth1 has no endpoint or
// subflow and carries next to nothing; when eth0 goes silent (blackholed
// at both ends, which health sampling sees as a stall), eth1 gets a
// subflow and carries the traffic until its quota, when it is withdrawn.
// The usage, over the control socket and in the metrics, says so; a
// restarted daemon keeps it, and a reload with a larger quota puts eth1
// back in use.
func TestCostAwareQuota(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"kernel", "userspace"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			testCostAwareQuota(t, mode)
		})
	}
}

func testCostAwareQuota(t *testing.T, mode string) {
	tb := netnstest.NewTestbed(t, 2)
	acceptJoins(tb.Server)
	l0, l1 := tb.Links[0], tb.Links[1]
	stateDir := t.TempDir()
	conf := func(socket, quota string) string {
		return fmt.Sprintf(`mode = %q
set_path_manager = true

[control]
socket = %q
group = ""

[links]
include_kinds = ["virtual"]

[[policy.chain]]
name = "fullmesh"
config = { families = "ipv4" }

[[policy.chain]]
name = "cost-aware"

[usage]
state_dir = %q
interval = "50ms"
save_interval = "0s"

[[usage.links]]
name = "eth1"
metered = "yes"
quota = %q
`, mode, socket, stateDir, quota)
	}
	sock := filepath.Join(t.TempDir(), "a.sock")
	r := daemontest.Run(t, tb.Client, conf(sock, "1MB"))
	ctl := &ctlapi.Client{Socket: sock}

	if mode == "kernel" {
		waitEndpoints(t, tb.Client, l0.Client4)
	}
	ln := tb.Server.Listen("tcp", netip.AddrPortFrom(l0.Server4, 0).String())
	var received atomic.Int64
	go countBytes(ln, &received)
	conn := bulk(t, tb.Client, addrPort(ln))
	// eth1InUse reports whether eth1 has an endpoint (kernel mode) or
	// carries a subflow of the connection.
	eth1InUse := func() (bool, string) {
		ps := paths(t, tb.Client, conn)
		eps := endpoints(t, tb.Client)
		used := slices.ContainsFunc(ps, func(p string) bool { return strings.HasPrefix(p, l1.Client4.String()+"->") })
		return used || eps[l1.Client4.String()] != "", fmt.Sprintf("subflows %v, endpoints %v", ps, eps)
	}

	// eth0 works: 2 MB go over it, and eth1 neither gets an endpoint nor
	// carries more than the odd neighbour discovery packet.
	enginetest.Poll(t, "2 MB received over eth0", func() string {
		if n := received.Load(); n < 2_000_000 {
			return fmt.Sprint(n, " bytes")
		}
		return ""
	})
	if used, desc := eth1InUse(); used {
		t.Errorf("metered eth1 in use while eth0 works: %s", desc)
	}
	rep, err := ctl.Usage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if eth1 := usageOf(rep, "eth1"); eth1 == nil || !eth1.Metered || eth1.UsedBytes > 64<<10 || eth1.OverQuota {
		t.Fatalf("eth1 while eth0 works: %+v, want metered with at most 64 KiB used", eth1)
	}

	// eth0 goes silent: eth1 carries the traffic up to its quota, and is
	// withdrawn.
	tb.Client.Blackhole(l0.ClientIf)
	tb.Server.Blackhole(l0.ServerIf)
	var over *ctlapi.UsageLink
	enginetest.Poll(t, "eth1 over its quota", func() string {
		rep, err := ctl.Usage(context.Background())
		if err != nil {
			return err.Error()
		}
		if over = usageOf(rep, "eth1"); over != nil && over.OverQuota {
			return ""
		}
		return fmt.Sprintf("%+v", over)
	})
	if over.UsedBytes < usageQuota || over.QuotaBytes != usageQuota || over.RemainingBytes == nil || *over.RemainingBytes != 0 {
		t.Errorf("eth1 over quota: %+v, want used ≥ %d of a quota of %d, 0 remaining", over, usageQuota, usageQuota)
	}
	enginetest.Poll(t, "eth1 withdrawn at the quota", func() string {
		if used, desc := eth1InUse(); used {
			return desc
		}
		return ""
	})
	metrics, err := ctl.Metrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`mptcpgod_usage_quota_bytes{link="eth1"} 1e+06`,
		`mptcpgod_usage_quota_reached_total{link="eth1"} 1`, `mptcpgod_usage_used_bytes{link="eth1"} `} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	// A restarted daemon keeps the usage and leaves eth1 withdrawn.
	r.Stop()
	sock2 := filepath.Join(t.TempDir(), "b.sock")
	r = daemontest.Run(t, tb.Client, conf(sock2, "1MB"))
	ctl = &ctlapi.Client{Socket: sock2}
	rep, err = ctl.Usage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if kept := usageOf(rep, "eth1"); kept == nil || kept.UsedBytes < over.UsedBytes || !kept.OverQuota {
		t.Errorf("eth1 after a restart: %+v, want at least the %d bytes used before, over quota", kept, over.UsedBytes)
	}
	if used, desc := eth1InUse(); used {
		t.Errorf("eth1 in use after a restart, over its quota: %s", desc)
	}

	// A reload with a larger quota puts eth1 back in use while eth0 is
	// silent.
	cfg, err := daemon.Parse("test.toml", []byte(conf(sock2, "1GB")))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	enginetest.Poll(t, "eth1 below its new quota", func() string {
		rep, err := ctl.Usage(context.Background())
		if err != nil {
			return err.Error()
		}
		if l := usageOf(rep, "eth1"); l == nil || l.QuotaBytes != 1_000_000_000 || l.OverQuota {
			return fmt.Sprintf("%+v", l)
		}
		return ""
	})
	enginetest.Poll(t, "eth1 in use again", func() string {
		if used, desc := eth1InUse(); !used {
			return desc
		}
		return ""
	})
}

// usageOf returns the usage of the link name in rep, nil when absent.
func usageOf(rep *ctlapi.Usage, name string) *ctlapi.UsageLink {
	for i := range rep.Links {
		if rep.Links[i].Name == name {
			return &rep.Links[i]
		}
	}
	return nil
}

// countBytes accepts connections on ln until it is closed and adds what
// they send to n.
func countBytes(ln net.Listener, n *atomic.Int64) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			buf := make([]byte, 64<<10)
			for {
				k, err := c.Read(buf)
				n.Add(int64(k))
				if err != nil {
					_ = c.Close()
					return
				}
			}
		}()
	}
}

// bulk opens an MPTCP connection from h to addr that sends as fast as it
// can until the test ends, and returns the local address and port of its
// initial subflow. A write that times out (no path carries data) is
// retried; any other write error fails the test.
func bulk(t *testing.T, h *netnstest.Host, addr netip.AddrPort) netip.AddrPort {
	t.Helper()
	c, err := h.Dial("tcp", "", addr.String())
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	local := netip.MustParseAddrPort(c.LocalAddr().String())
	done := make(chan struct{})
	broke := make(chan error, 1)
	go func() {
		defer close(broke)
		buf := make([]byte, 32<<10)
		for {
			select {
			case <-done:
				return
			default:
			}
			_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			if _, err := c.Write(buf); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				broke <- err
				return
			}
		}
	}()
	t.Cleanup(func() {
		close(done)
		if err := <-broke; err != nil && !errors.Is(err, io.EOF) {
			t.Errorf("connection to %s broke: %v", addr, err)
		}
		_ = c.Close()
	})
	return netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
}
