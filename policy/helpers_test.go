package policy

import (
	"encoding/json"
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp/cmpopts"
)

// fake is a Policy made of functions; nil functions pass next through.
type fake struct {
	name     string
	kernel   func(View, KernelPlan) KernelPlan
	conn     func(View, Conn, ConnPlan) ConnPlan
	closeErr error
	closed   int
}

func (f *fake) Name() string { return f.name }

func (f *fake) Kernel(v View, next KernelPlan) KernelPlan {
	if f.kernel == nil {
		return next
	}
	return f.kernel(v, next)
}

func (f *fake) Conn(v View, c Conn, next ConnPlan) ConnPlan {
	if f.conn == nil {
		return next
	}
	return f.conn(v, c, next)
}

func (f *fake) Close() error {
	f.closed++
	return f.closeErr
}

// base proposes an endpoint for every usable address and a path from
// every usable address to the connection's peer.
func base() *fake {
	return &fake{
		name: "base",
		kernel: func(v View, next KernelPlan) KernelPlan {
			for _, a := range v.UsableAddrs() {
				next.Endpoints = append(next.Endpoints, Endpoint{Addr: a.Addr, Dev: a.Link, IfIndex: a.IfIndex, Subflow: true})
			}
			return next
		},
		conn: func(v View, c Conn, next ConnPlan) ConnPlan {
			for _, a := range v.UsableAddrs() {
				next.Paths = append(next.Paths, Path{Local: a.Addr, Dev: a.Link, IfIndex: a.IfIndex, Remote: c.Remote})
			}
			return next
		},
	}
}

// backupOn marks endpoints and paths on cellular links backup.
func backupOn() *fake {
	cellular := func(v View, ifindex int32) bool {
		l, ok := v.Link(ifindex)
		return ok && l.Kind == LinkCellular
	}
	return &fake{
		name: "backup",
		kernel: func(v View, next KernelPlan) KernelPlan {
			for i := range next.Endpoints {
				next.Endpoints[i].Backup = cellular(v, next.Endpoints[i].IfIndex)
			}
			return next
		},
		conn: func(v View, c Conn, next ConnPlan) ConnPlan {
			for i := range next.Paths {
				next.Paths[i].Backup = cellular(v, next.Paths[i].IfIndex)
			}
			return next
		},
	}
}

// dropMetered removes endpoints and paths on metered links.
func dropMetered() *fake {
	metered := func(v View, ifindex int32) bool {
		l, ok := v.Link(ifindex)
		return ok && l.Metered
	}
	return &fake{
		name: "drop",
		kernel: func(v View, next KernelPlan) KernelPlan {
			eps := next.Endpoints[:0]
			for _, e := range next.Endpoints {
				if !metered(v, e.IfIndex) {
					eps = append(eps, e)
				}
			}
			next.Endpoints = eps
			return next
		},
		conn: func(v View, c Conn, next ConnPlan) ConnPlan {
			ps := next.Paths[:0]
			for _, p := range next.Paths {
				if !metered(v, p.IfIndex) {
					ps = append(ps, p)
				}
			}
			next.Paths = ps
			return next
		},
	}
}

// opts is the configuration of the registered test policy "test-opts".
type opts struct {
	Prefix netip.Prefix `json:"prefix"`
	Count  int          `json:"count"`
	Nested struct {
		Limit *uint32 `json:"limit"`
	} `json:"nested"`
	Fail   string         `json:"fail"`
	Items  []item         `json:"items"`
	Labels map[string]int `json:"labels"`
}

// item is an element of opts.Items.
type item struct {
	Name string `json:"name"`
}

// optsPolicy is a registered test policy with options, a Validator and a
// Describer.
type optsPolicy struct {
	fake
	cfg opts
}

func (p *optsPolicy) Validate() error {
	if p.cfg.Fail != "" {
		return errors.New(p.cfg.Fail)
	}
	return nil
}

func (p *optsPolicy) Describe() Doc {
	return Doc{Summary: "test", Options: []Option{{Name: "count", Type: "integer", Default: 1, Help: "how many"}}}
}

func init() {
	Register("test-opts", func(raw json.RawMessage) (Policy, error) {
		p := &optsPolicy{fake: fake{name: "test-opts"}, cfg: opts{Count: 1}}
		if err := DecodeConfig(raw, &p.cfg); err != nil {
			return nil, err
		}
		if p.cfg.Count < 0 {
			return nil, errors.New(`option "count": must not be negative`)
		}
		return p, nil
	})
	Register("test-base", func(raw json.RawMessage) (Policy, error) {
		if err := DecodeConfig(raw, &struct{}{}); err != nil {
			return nil, err
		}
		b := base()
		b.name = "test-base"
		return b, nil
	})
	Register("test-backup", func(raw json.RawMessage) (Policy, error) {
		if err := DecodeConfig(raw, &struct{}{}); err != nil {
			return nil, err
		}
		b := backupOn()
		b.name = "test-backup"
		return b, nil
	})
	Register("test-nil", func(json.RawMessage) (Policy, error) { return nil, nil })
	Register("test-plain", func(json.RawMessage) (Policy, error) { return &fake{name: "test-plain"}, nil })
}

// testView has a wired link (2) with an IPv4 and an IPv6 address, a
// metered cellular link (3), and a down wifi link (4).
func testView() View {
	return View{
		Mode: ModeUserspace,
		Links: []Link{
			{Name: "eth0", Index: 2, Kind: LinkWired, Up: true, Usable: true},
			{Name: "wwan0", Index: 3, Kind: LinkCellular, Up: true, Usable: true, Metered: true},
			{Name: "wlan0", Index: 4, Kind: LinkWiFi},
		},
		Addrs: []LocalAddr{
			{Addr: netip.MustParseAddr("2001:db8:1::1"), Link: "eth0", IfIndex: 2, Usable: true},
			{Addr: netip.MustParseAddr("198.51.100.1"), Link: "wwan0", IfIndex: 3, Usable: true},
			{Addr: netip.MustParseAddr("192.0.2.1"), Link: "eth0", IfIndex: 2, Usable: true},
			{Addr: netip.MustParseAddr("203.0.113.1"), Link: "wlan0", IfIndex: 4, Usable: true},
			{Addr: netip.MustParseAddr("192.0.2.9"), Link: "eth0", IfIndex: 2, Reason: "tentative"},
		},
	}
}

// mustPanic runs fn and returns the panic message, failing if there is
// none.
func mustPanic(t *testing.T, fn func()) (msg string) {
	t.Helper()
	defer func() {
		r := recover()
		if r == nil {
			t.Fatal("no panic")
		}
		msg, _ = r.(string)
	}()
	fn()
	return ""
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

var errTest = errors.New("test error")

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// netOpts compares netip values with ==.
var netOpts = cmpopts.EquateComparable(netip.Addr{}, netip.AddrPort{}, netip.Prefix{})
