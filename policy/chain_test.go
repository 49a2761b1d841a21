package policy

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"testing/quick"

	"github.com/google/go-cmp/cmp"
)

var (
	eth4  = netip.MustParseAddr("192.0.2.1")
	eth6  = netip.MustParseAddr("2001:db8:1::1")
	wwan4 = netip.MustParseAddr("198.51.100.1")
	peer4 = netip.MustParseAddrPort("203.0.113.7:443")
)

func TestChainKernel(t *testing.T) {
	t.Parallel()
	ep := func(a netip.Addr, dev string, idx int32, backup bool) Endpoint {
		return Endpoint{Addr: a, Dev: dev, IfIndex: idx, Subflow: true, Backup: backup}
	}
	tests := []struct {
		name string
		c    *Chain
		next KernelPlan
		want KernelPlan
	}{
		{
			name: "base alone, sorted by address",
			c:    Compose(base()),
			want: KernelPlan{Endpoints: []Endpoint{
				ep(eth4, "eth0", 2, false), ep(wwan4, "wwan0", 3, false), ep(eth6, "eth0", 2, false),
			}},
		},
		{
			name: "modifier annotates what base proposed",
			c:    Compose(base(), backupOn()),
			want: KernelPlan{Endpoints: []Endpoint{
				ep(eth4, "eth0", 2, false), ep(wwan4, "wwan0", 3, true), ep(eth6, "eth0", 2, false),
			}},
		},
		{
			name: "modifiers filter",
			c:    Compose(base(), backupOn(), dropMetered()),
			want: KernelPlan{Endpoints: []Endpoint{ep(eth4, "eth0", 2, false), ep(eth6, "eth0", 2, false)}},
		},
		{
			name: "a modifier before the base sees nothing",
			c:    Compose(backupOn(), base()),
			want: KernelPlan{Endpoints: []Endpoint{
				ep(eth4, "eth0", 2, false), ep(wwan4, "wwan0", 3, false), ep(eth6, "eth0", 2, false),
			}},
		},
		{
			name: "duplicates keep the first proposed",
			c:    Compose(base(), base()),
			next: KernelPlan{Endpoints: []Endpoint{{Addr: eth4, Signal: true}}},
			want: KernelPlan{Endpoints: []Endpoint{
				{Addr: eth4, Signal: true}, ep(wwan4, "wwan0", 3, false), ep(eth6, "eth0", 2, false),
			}},
		},
		{
			name: "empty chain sorts next",
			c:    Compose(),
			next: KernelPlan{
				Endpoints: []Endpoint{{Addr: eth6}, {Addr: eth4, Port: 2}, {Addr: eth4, Port: 1}},
				Limits:    Limits{Subflows: new(uint32(3))},
			},
			want: KernelPlan{
				Endpoints: []Endpoint{{Addr: eth4, Port: 1}, {Addr: eth4, Port: 2}, {Addr: eth6}},
				Limits:    Limits{Subflows: new(uint32(3))},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tt.c.Kernel(testView(), tt.next)
			if diff := cmp.Diff(tt.want, got, netOpts); diff != "" {
				t.Errorf("Kernel (-want +got):\n%s", diff)
			}
		})
	}
}

func TestChainConn(t *testing.T) {
	t.Parallel()
	c := Conn{Token: 1, Side: SideClient, Local: netip.AddrPortFrom(eth4, 40000), Remote: peer4}
	path := func(a netip.Addr, dev string, idx int32, backup bool) Path {
		return Path{Local: a, Dev: dev, IfIndex: idx, Remote: peer4, Backup: backup}
	}
	announce := &fake{name: "announce", conn: func(v View, c Conn, next ConnPlan) ConnPlan {
		next.Announces = append(next.Announces, Announce{Addr: wwan4}, Announce{Addr: eth4}, Announce{Addr: wwan4})
		return next
	}}
	tests := []struct {
		name string
		c    *Chain
		want ConnPlan
	}{
		{
			name: "base, families never mixed by the base",
			c:    Compose(base()),
			want: ConnPlan{Paths: []Path{
				path(eth4, "eth0", 2, false), path(wwan4, "wwan0", 3, false), path(eth6, "eth0", 2, false),
			}},
		},
		{
			name: "annotate and filter",
			c:    Compose(base(), backupOn(), dropMetered()),
			want: ConnPlan{Paths: []Path{path(eth4, "eth0", 2, false), path(eth6, "eth0", 2, false)}},
		},
		{
			name: "annotate",
			c:    Compose(base(), backupOn()),
			want: ConnPlan{Paths: []Path{
				path(eth4, "eth0", 2, false), path(wwan4, "wwan0", 3, true), path(eth6, "eth0", 2, false),
			}},
		},
		{
			name: "announces sorted and deduplicated",
			c:    Compose(announce),
			want: ConnPlan{Announces: []Announce{{Addr: eth4}, {Addr: wwan4}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tt.c.Conn(testView(), c, ConnPlan{})
			if diff := cmp.Diff(tt.want, got, netOpts); diff != "" {
				t.Errorf("Conn (-want +got):\n%s", diff)
			}
		})
	}
}

// TestChainDeterministic checks that the chain's output does not depend
// on the order in which policies propose the same set.
func TestChainDeterministic(t *testing.T) {
	t.Parallel()
	eps := []Endpoint{
		{Addr: eth4}, {Addr: eth4, Port: 80, Signal: true}, {Addr: eth6, Subflow: true},
		{Addr: wwan4, Backup: true}, {Addr: netip.MustParseAddr("2001:db8::9")},
	}
	paths := []Path{
		{Local: eth4, Remote: peer4}, {Local: eth4, Remote: netip.MustParseAddrPort("203.0.113.8:443")},
		{Local: eth4, Remote: netip.MustParseAddrPort("203.0.113.7:80")}, {Local: wwan4, Remote: peer4},
		{Local: eth6, Remote: netip.MustParseAddrPort("[2001:db8:9::1]:443")},
	}
	shuffle := func(seed uint64) *fake {
		r := rand.New(rand.NewPCG(seed, seed))
		return &fake{
			name: "shuffle",
			kernel: func(v View, next KernelPlan) KernelPlan {
				next.Endpoints = append(next.Endpoints, eps...)
				r.Shuffle(len(next.Endpoints), func(i, j int) { next.Endpoints[i], next.Endpoints[j] = next.Endpoints[j], next.Endpoints[i] })
				return next
			},
			conn: func(v View, c Conn, next ConnPlan) ConnPlan {
				next.Paths = append(next.Paths, paths...)
				r.Shuffle(len(next.Paths), func(i, j int) { next.Paths[i], next.Paths[j] = next.Paths[j], next.Paths[i] })
				return next
			},
		}
	}
	want := Compose(&fake{name: "fixed"}).Kernel(View{}, KernelPlan{Endpoints: slices.Clone(eps)})
	wantC := Compose(&fake{name: "fixed"}).Conn(View{}, Conn{}, ConnPlan{Paths: slices.Clone(paths)})
	if !slices.IsSortedFunc(want.Endpoints, func(a, b Endpoint) int { return a.key().Compare(b.key()) }) {
		t.Fatalf("endpoints not sorted: %v", want.Endpoints)
	}
	prop := func(a, b uint64) bool {
		k := Compose(shuffle(a), shuffle(b)).Kernel(View{}, KernelPlan{})
		c := Compose(shuffle(a), shuffle(b)).Conn(View{}, Conn{}, ConnPlan{})
		return cmp.Equal(want, k, netOpts) && cmp.Equal(wantC, c, netOpts)
	}
	if err := quick.Check(prop, nil); err != nil {
		t.Error(err)
	}
}

func TestNewChain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		specs string
		want  string // chain name
		err   string
	}{
		{name: "one", specs: `[{"name":"test-base"}]`, want: "test-base"},
		{name: "two with config", specs: `[{"name":"test-base","config":{}},{"name":"test-opts","config":{"count":2}}]`,
			want: "test-base | test-opts"},
		{name: "empty", specs: `[]`, err: "policy: chain: empty, want at least one policy"},
		{name: "unknown", specs: `[{"name":"test-base"},{"name":"test-nope"}]`,
			err: `policy: chain[1]: policy: unknown policy "test-nope" (known: ` + oneOf(Names()) + `)`},
		{name: "bad option", specs: `[{"name":"test-opts","config":{"count":"x"}}]`,
			err: `policy: chain[0]: policy/test-opts: option "count": cannot use string as int`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var specs []Spec
			if err := json.Unmarshal([]byte(tt.specs), &specs); err != nil {
				t.Fatal(err)
			}
			c, err := NewChain(specs)
			if diff := cmp.Diff(tt.err, errString(err)); diff != "" {
				t.Fatalf("error (-want +got):\n%s", diff)
			}
			if err != nil {
				return
			}
			if c.Name() != tt.want || len(c.Policies()) != len(specs) {
				t.Errorf("chain %q of %d, want %q of %d", c.Name(), len(c.Policies()), tt.want, len(specs))
			}
		})
	}
}

func TestChainClose(t *testing.T) {
	t.Parallel()
	a := &fake{name: "a"}
	b := &fake{name: "b", closeErr: errTest}
	c := &fake{name: "c", closeErr: errTest}
	err := Compose(a, b, &plain{}, c).Close()
	if diff := cmp.Diff("policy/b: close: test error\npolicy/c: close: test error", errString(err)); diff != "" {
		t.Errorf("Close error (-want +got):\n%s", diff)
	}
	if !errors.Is(err, errTest) {
		t.Errorf("Close error %v does not wrap errTest", err)
	}
	if a.closed != 1 || b.closed != 1 || c.closed != 1 {
		t.Errorf("closed a %d, b %d, c %d times, want 1 each", a.closed, b.closed, c.closed)
	}
}

// plain is a Policy that is not a Closer.
type plain struct{}

func (plain) Name() string                                { return "plain" }
func (plain) Kernel(_ View, next KernelPlan) KernelPlan   { return next }
func (plain) Conn(_ View, _ Conn, next ConnPlan) ConnPlan { return next }
