package exec_test

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/sockdiag"
	"github.com/mptcpgod/mptcpgod/internal/testing/enginetest"
	"github.com/mptcpgod/mptcpgod/plugins/exec"
	"github.com/mptcpgod/mptcpgod/plugins/fullmesh"
	"github.com/mptcpgod/mptcpgod/pm"
	"github.com/mptcpgod/mptcpgod/policy"
)

// TestChainKernel runs the engine in userspace mode on a testbed (eth0
// wired, eth1 wifi, eth2 cellular, by the host view) with the chain
// fullmesh → exec. Over three links the Python example (--drop cellular)
// decides the real connection's subflows: eth0, and eth1 as backup, not
// eth2. Over two links a plugin that hangs or crashes leaves fullmesh's
// mesh: both links, neither backup.
func TestChainKernel(t *testing.T) {
	t.Parallel()
	type want struct {
		local  int // link index
		backup bool
	}
	tests := []struct {
		name  string
		links int
		cfg   func(t *testing.T) exec.Config
		want  []want
		check func(exec.Stats) string
	}{
		{
			name:  "python",
			links: 3,
			cfg: func(t *testing.T) exec.Config {
				cfg := exec.DefaultConfig()
				cfg.Command = pythonExample(t, "--drop", "cellular")
				cfg.Timeout = exec.MaxTimeout
				return cfg
			},
			want: []want{{0, false}, {1, true}},
			check: func(s exec.Stats) string {
				if s.Answers == 0 || s.Fallbacks != 0 {
					return "want answers and no fallback"
				}
				return ""
			},
		},
		{
			name:  "hang",
			links: 2,
			cfg: func(t *testing.T) exec.Config {
				cfg := fakeConfig(t, "hang")
				cfg.Timeout = 50 * time.Millisecond
				return cfg
			},
			want: []want{{0, false}, {1, false}},
			check: func(s exec.Stats) string {
				if s.Timeouts == 0 || s.Answers != 0 {
					return "want timeouts and no answer"
				}
				return ""
			},
		},
		{
			name:  "crash",
			links: 2,
			cfg:   func(t *testing.T) exec.Config { return fakeConfig(t, "crash:0") },
			want:  []want{{0, false}, {1, false}},
			check: func(s exec.Stats) string {
				if s.Crashes == 0 || s.Answers != 0 {
					return "want crashes and no answer"
				}
				return ""
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tb := netnstest.NewTestbed(t, tt.links)
			tb.Client.SetPathManager("userspace")
			log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))

			p, err := exec.New(tt.cfg(t))
			if err != nil {
				t.Fatal(err)
			}
			p.SetLogger(log)
			t.Cleanup(func() { _ = p.Close() })
			start(t, p, policy.ModeUserspace)
			fm, err := fullmesh.New(fullmesh.DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			chain := policy.Compose(fm, p)
			e := runEngine(t, tb.Client, chain, log)
			// Decisions made while the plugin was down were fullmesh's:
			// once it is back, the engine decides again.
			p.OnReady(func() { e.SetPolicy(chain) })
			e.SetHost(testbedView(t, tb))
			enginetest.WaitReady(t, e)

			srv := tb.Links[0].Server4
			ln := tb.Server.Listen("tcp4", netip.AddrPortFrom(srv, 0).String())
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go func() { _, _ = io.Copy(io.Discard, c) }()
				}
			}()
			c, err := tb.Client.Dial("tcp4", tb.Links[0].Client4.String(), ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := c.(*net.TCPConn).MultipathTCP(); !ok || err != nil {
				t.Fatalf("the connection is not MPTCP (%v)", err)
			}
			local := c.LocalAddr().(*net.TCPAddr).AddrPort()
			remote := c.RemoteAddr().(*net.TCPAddr).AddrPort()
			if _, err := c.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}

			var wantSubs []string
			for _, w := range tt.want {
				wantSubs = append(wantSubs, subflowString(tb.Links[w.local].Client4, remote, w.backup))
			}
			slices.Sort(wantSubs)
			enginetest.Poll(t, "subflows", func() string {
				got := clientSubflows(t, tb.Client, local)
				if !slices.Equal(got, wantSubs) {
					return fmt.Sprintf("subflows %q, want %q", got, wantSubs)
				}
				return ""
			})
			// The engine wants exactly these paths, so no other subflow
			// is on its way.
			st, err := enginetest.Status(t.Context(), e)
			if err != nil {
				t.Fatal(err)
			}
			var desired []string
			for _, c := range st.Conns {
				for _, ps := range c.Paths {
					if ps.Desired {
						desired = append(desired, subflowString(ps.Local, ps.Remote, ps.WantBackup))
					}
				}
			}
			slices.Sort(desired)
			if !slices.Equal(desired, wantSubs) {
				t.Errorf("desired paths %q, want %q", desired, wantSubs)
			}
			// A crash is counted when the plugin's exit is reaped, which
			// can come after the fallback its broken pipe caused.
			enginetest.Poll(t, "the plugin's counters", func() string {
				if msg := tt.check(p.Stats()); msg != "" {
					return fmt.Sprintf("Stats %+v: %s", p.Stats(), msg)
				}
				return ""
			})
		})
	}
}

func subflowString(local netip.Addr, remote netip.AddrPort, backup bool) string {
	s := local.Unmap().String() + " -> " + netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port()).String()
	if backup {
		s += " backup"
	}
	return s
}

// runEngine runs a userspace-mode engine in h's namespace with policy p,
// stopped at cleanup.
func runEngine(t *testing.T, h *netnstest.Host, p policy.Policy, log *slog.Logger) *pm.Engine {
	t.Helper()
	return enginetest.Run(t, pm.Config{
		Mode:      policy.ModeUserspace,
		Policy:    p,
		NewKernel: enginetest.NewKernel(h.NetNS()),
		Workers:   2,
		Events:    enginetest.Subscribe(t, h.NetNS()),
		Conns:     enginetest.NoConns{},
		Logger:    log,
	})
}

// testbedView is the client's links and IPv4 addresses, by hand: eth0
// wired, eth1 wifi, eth2 cellular.
func testbedView(t *testing.T, tb *netnstest.Testbed) ([]policy.Link, []policy.LocalAddr) {
	t.Helper()
	kinds := []policy.LinkKind{policy.LinkWired, policy.LinkWiFi, policy.LinkCellular}
	var links []policy.Link
	var addrs []policy.LocalAddr
	err := tb.Client.Do(func() error {
		for i, l := range tb.Links {
			ifi, err := net.InterfaceByName(l.ClientIf)
			if err != nil {
				return err
			}
			links = append(links, policy.Link{Name: l.ClientIf, Index: int32(ifi.Index), Kind: kinds[i], Up: true, Usable: true})
			addrs = append(addrs, policy.LocalAddr{Addr: l.Client4, Link: l.ClientIf, IfIndex: int32(ifi.Index), Usable: true})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return links, addrs
}

// clientSubflows returns the established subflows of the connection whose
// initial subflow is local, from sock_diag, as subflowString gives them,
// sorted.
func clientSubflows(t *testing.T, h *netnstest.Host, local netip.AddrPort) []string {
	t.Helper()
	d, err := sockdiag.Dial(&sockdiag.Config{NetNS: h.NetNS()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var token uint32
	err = d.Connections(func(c *sockdiag.Connection) error {
		if c.Local.Addr().Unmap() == local.Addr().Unmap() && c.Local.Port() == local.Port() {
			token = c.Token
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	err = d.Subflows(func(s *sockdiag.Subflow) error {
		if token != 0 && s.Token == token && s.State == sockdiag.StateEstablished {
			out = append(out, subflowString(s.Local.Addr(), s.Remote, s.Flags.Backup()))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}
