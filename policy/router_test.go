package policy

import (
	"encoding/json"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMatch(t *testing.T) {
	t.Parallel()
	client := Conn{Side: SideClient, Local: netip.MustParseAddrPort("192.0.2.1:40000"), Remote: netip.MustParseAddrPort("203.0.113.7:443")}
	server := Conn{Side: SideServer, Local: netip.MustParseAddrPort("[2001:db8:1::1]:8080"), Remote: netip.MustParseAddrPort("[2001:db8:9::5]:51000")}
	mapped := Conn{Side: SideServer, Local: netip.MustParseAddrPort("[::ffff:192.0.2.1]:8080"), Remote: netip.MustParseAddrPort("[::ffff:203.0.113.7]:51000")}
	owned := func(uid uint32, cgroup string) Conn {
		c := client
		c.Owner = &Owner{UID: uid, Cgroup: cgroup}
		return c
	}
	backup := owned(0, "/system.slice/backup.service")
	backupWorker := owned(0, "/system.slice/backup.service/worker")
	userBackup := owned(1000, "/user.slice/user-1000.slice/user@1000.service/app.slice/backup.service")
	browser := owned(1000, "/user.slice/user-1000.slice/user@1000.service/app.slice/app-firefox-1234.scope")
	noCgroup := owned(0, "")
	tests := []struct {
		name string
		m    Match
		c    Conn
		want bool
	}{
		{"zero matches client", Match{}, client, true},
		{"zero matches server", Match{}, server, true},
		{"prefix", Match{PeerPrefix: mustPrefix("203.0.113.0/24")}, client, true},
		{"prefix other", Match{PeerPrefix: mustPrefix("198.51.100.0/24")}, client, false},
		{"prefix family", Match{PeerPrefix: mustPrefix("2001:db8::/32")}, client, false},
		{"prefix v6", Match{PeerPrefix: mustPrefix("2001:db8:9::/48")}, server, true},
		{"prefix v4 matches mapped", Match{PeerPrefix: mustPrefix("203.0.113.0/24")}, mapped, true},
		{"prefix host", Match{PeerPrefix: mustPrefix("203.0.113.7/32")}, client, true},
		{"peer port", Match{PeerPort: 443}, client, true},
		{"peer port other", Match{PeerPort: 80}, client, false},
		{"local port", Match{LocalPort: 8080}, server, true},
		{"local port mapped", Match{LocalPort: 8080}, mapped, true},
		{"local port other", Match{LocalPort: 8080}, client, false},
		{"side client", Match{Side: SideClient}, client, true},
		{"side client on server", Match{Side: SideClient}, server, false},
		{"side server", Match{Side: SideServer}, server, true},
		{"all fields", Match{PeerPrefix: mustPrefix("203.0.113.0/24"), PeerPort: 443, Side: SideClient}, client, true},
		{"all fields but one", Match{PeerPrefix: mustPrefix("203.0.113.0/24"), PeerPort: 443, Side: SideServer}, client, false},
		{"unit", Match{Unit: "backup.service"}, backup, true},
		{"unit below", Match{Unit: "backup.service"}, backupWorker, true},
		{"unit's slice", Match{Unit: "system.slice"}, backup, true},
		{"unit of a user", Match{Unit: "backup.service"}, userBackup, true},
		{"unit other", Match{Unit: "backup.service"}, browser, false},
		{"unit prefix of another", Match{Unit: "backup"}, backup, false},
		{"unit, owner unknown", Match{Unit: "backup.service"}, client, false},
		{"unit, cgroup unknown", Match{Unit: "backup.service"}, noCgroup, false},
		{"uid", Match{UID: new(uint32(1000))}, browser, true},
		{"uid other", Match{UID: new(uint32(1000))}, backup, false},
		{"uid root", Match{UID: new(uint32(0))}, backup, true},
		{"uid root, owner unknown", Match{UID: new(uint32(0))}, client, false},
		{"uid and unit", Match{UID: new(uint32(1000)), Unit: "backup.service"}, userBackup, true},
		{"uid and unit but one", Match{UID: new(uint32(0)), Unit: "backup.service"}, userBackup, false},
		{"unit and port", Match{Unit: "backup.service", PeerPort: 443}, backup, true},
		{"unit and port but one", Match{Unit: "backup.service", PeerPort: 80}, backup, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.m.Matches(tt.c); got != tt.want {
				t.Errorf("%+v.Matches(%+v) = %v, want %v", tt.m, tt.c, got, tt.want)
			}
		})
	}
}

func TestRouter(t *testing.T) {
	t.Parallel()
	def, web, v6 := &fake{name: "def"}, &fake{name: "web"}, &fake{name: "v6"}
	r, err := NewRouter(def,
		Rule{Match: Match{PeerPort: 443, Side: SideClient}, Policy: web},
		Rule{Match: Match{PeerPrefix: mustPrefix("2001:db8:9::1/48")}, Policy: v6},
		Rule{Match: Match{PeerPort: 443}, Policy: v6},
	)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		remote string
		side   Side
		want   Policy
		index  int
	}{
		{"first rule", "203.0.113.7:443", SideClient, web, 0},
		{"first match wins", "[2001:db8:9::1]:443", SideClient, web, 0},
		{"masked prefix", "[2001:db8:9::2]:80", SideClient, v6, 1},
		{"third rule", "203.0.113.7:443", SideServer, v6, 2},
		{"default", "203.0.113.7:80", SideClient, def, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := Conn{Side: tt.side, Remote: netip.MustParseAddrPort(tt.remote)}
			p, i := r.Route(c)
			if p != tt.want || i != tt.index {
				t.Errorf("Route = %s, %d; want %s, %d", p.Name(), i, tt.want.Name(), tt.index)
			}
		})
	}
	if got, want := r.Name(), "def (+3 rules)"; got != want {
		t.Errorf("Name() = %q, want %q", got, want)
	}
	if r.ReadsOwner() {
		t.Error("ReadsOwner() = true without a rule by unit or uid")
	}
	if r.Rules() != 3 {
		t.Errorf("Rules() = %d, want 3", r.Rules())
	}
}

// TestRouterOwner: rules by unit and by uid route by Conn.Owner, a
// connection whose owner is unknown takes the next rule, and the Router
// reads the owner only when a rule needs it.
func TestRouterOwner(t *testing.T) {
	t.Parallel()
	def, backup, alice := &fake{name: "def"}, &fake{name: "backup"}, &fake{name: "alice"}
	uid := uint32(1000)
	r, err := NewRouter(def,
		Rule{Match: Match{Unit: "backup.service"}, Policy: backup},
		Rule{Match: Match{UID: &uid}, Policy: alice},
	)
	if err != nil {
		t.Fatal(err)
	}
	uid = 0 // the router keeps its own copy
	if !r.ReadsOwner() {
		t.Error("ReadsOwner() = false with rules by unit and uid")
	}
	tests := []struct {
		name  string
		owner *Owner
		want  Policy
	}{
		{"the service", &Owner{UID: 0, Cgroup: "/system.slice/backup.service"}, backup},
		{"the service as the user", &Owner{UID: 1000, Cgroup: "/system.slice/backup.service"}, backup},
		{"the user's browser", &Owner{UID: 1000, Cgroup: "/user.slice/user-1000.slice/session-2.scope"}, alice},
		{"root elsewhere", &Owner{UID: 0, Cgroup: "/system.slice/sshd.service"}, def},
		{"owner unknown", nil, def},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if p, _ := r.Route(Conn{Side: SideClient, Owner: tt.owner}); p != tt.want {
				t.Errorf("Route = %s, want %s", p.Name(), tt.want.Name())
			}
		})
	}
	only, err := NewRouter(def, Rule{Match: Match{UID: new(uint32(0))}, Policy: alice})
	if err != nil || !only.ReadsOwner() {
		t.Errorf("a router with a rule by uid 0: ReadsOwner() = %v, %v; want true", only.ReadsOwner(), err)
	}
}

// TestRouterPlans checks that Conn runs the routed chain and Kernel the
// default one, both sorted.
func TestRouterPlans(t *testing.T) {
	t.Parallel()
	r, err := NewRouter(Compose(base()), Rule{Match: Match{PeerPort: 443}, Policy: Compose(base(), dropMetered())})
	if err != nil {
		t.Fatal(err)
	}
	v := testView()
	got := r.Conn(v, Conn{Side: SideClient, Remote: peer4}, ConnPlan{})
	want := ConnPlan{Paths: []Path{
		{Local: eth4, Dev: "eth0", IfIndex: 2, Remote: peer4},
		{Local: eth6, Dev: "eth0", IfIndex: 2, Remote: peer4},
	}}
	if diff := cmp.Diff(want, got, netOpts); diff != "" {
		t.Errorf("Conn (-want +got):\n%s", diff)
	}
	other := netip.MustParseAddrPort("203.0.113.7:80")
	got = r.Conn(v, Conn{Side: SideClient, Remote: other}, ConnPlan{})
	if len(got.Paths) != 3 {
		t.Errorf("default chain gave %d paths, want 3: %v", len(got.Paths), got.Paths)
	}
	k := r.Kernel(v, KernelPlan{})
	if len(k.Endpoints) != 3 || k.Endpoints[0].Addr != eth4 {
		t.Errorf("Kernel = %v, want the default chain's 3 endpoints, sorted", k.Endpoints)
	}
}

func TestNewRouterErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		def   Policy
		rules []Rule
		err   string
	}{
		{"no default", nil, nil, "policy: router: no default policy"},
		{"no rule policy", &fake{}, []Rule{{Match: Match{PeerPort: 1}, Policy: &fake{}}, {}}, "policy: rules[1]: no policy"},
		{"bad side", &fake{}, []Rule{{Match: Match{Side: 7}, Policy: &fake{}}}, "policy: rules[0].side: invalid side 7"},
		{"mapped prefix", &fake{}, []Rule{{Match: Match{PeerPrefix: mustPrefix("::ffff:192.0.2.0/120")}, Policy: &fake{}}},
			"policy: rules[0].peer_prefix: ::ffff:192.0.2.0/120 is IPv4-mapped; write the IPv4 prefix"},
		{"unit path", &fake{}, []Rule{{Match: Match{PeerPort: 1}, Policy: &fake{}}, {Match: Match{Unit: "system.slice/a.service"}, Policy: &fake{}}},
			`policy: rules[1].unit: "system.slice/a.service" is not a unit name such as "backup.service"`},
		{"unit dot", &fake{}, []Rule{{Match: Match{Unit: ".."}, Policy: &fake{}}},
			`policy: rules[0].unit: ".." is not a unit name such as "backup.service"`},
		{"uid -1", &fake{}, []Rule{{Match: Match{UID: new(uint32(1<<32 - 1))}, Policy: &fake{}}},
			"policy: rules[0].uid: 4294967295 is not a valid uid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewRouter(tt.def, tt.rules...)
			if diff := cmp.Diff(tt.err, errString(err)); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}

// TestBuild decodes configurations the daemon would produce from its
// TOML file.
func TestBuild(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		config string
		routes map[string]int // peer address:port (client side) → rule index
		err    string
	}{
		{
			name:   "default only",
			config: `{"chain":[{"name":"test-base"},{"name":"test-backup"}]}`,
			routes: map[string]int{"203.0.113.7:443": -1},
		},
		{
			name: "rules",
			config: `{"chain":[{"name":"test-base"}],"rules":[
				{"peer_prefix":"198.51.100.0/24","chain":[{"name":"test-opts","config":{"count":2}}]},
				{"peer_port":443,"side":"client","chain":[{"name":"test-base"},{"name":"test-backup"}]}]}`,
			routes: map[string]int{"198.51.100.9:443": 0, "203.0.113.7:443": 1, "203.0.113.7:22": -1},
		},
		{name: "no chain", config: `{}`, err: "policy: chain: empty, want at least one policy"},
		{
			name:   "bad rule chain",
			config: `{"chain":[{"name":"test-base"}],"rules":[{"peer_port":443,"chain":[{"name":"test-opts","config":{"bogus":1}}]}]}`,
			err:    `policy: rules[0]: policy: chain[0]: policy/test-opts: unknown option "bogus"`,
		},
		{
			name:   "empty rule chain",
			config: `{"chain":[{"name":"test-base"}],"rules":[{"peer_port":443}]}`,
			err:    `policy: rules[0]: policy: chain: empty, want at least one policy`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var cfg Config
			d := json.NewDecoder(strings.NewReader(tt.config))
			d.DisallowUnknownFields()
			if err := d.Decode(&cfg); err != nil {
				t.Fatal(err)
			}
			r, err := Build(cfg)
			if diff := cmp.Diff(tt.err, errString(err)); diff != "" {
				t.Fatalf("error (-want +got):\n%s", diff)
			}
			if err != nil {
				return
			}
			for remote, want := range tt.routes {
				if _, got := r.Route(Conn{Side: SideClient, Remote: netip.MustParseAddrPort(remote)}); got != want {
					t.Errorf("Route(%s) = rule %d, want %d", remote, got, want)
				}
			}
			if err := r.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}

func TestRouterClose(t *testing.T) {
	t.Parallel()
	def, a, b := &fake{name: "def"}, &fake{name: "a", closeErr: errTest}, &fake{name: "b"}
	r, err := NewRouter(def, Rule{Policy: a}, Rule{Policy: Compose(b, plain{})})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); errString(err) != "test error" {
		t.Errorf("Close() = %v, want test error", err)
	}
	if def.closed != 1 || a.closed != 1 || b.closed != 1 {
		t.Errorf("closed def %d, a %d, b %d times, want 1 each", def.closed, a.closed, b.closed)
	}
}

// openClosers counts the "test-closer" policies built and not closed; only
// TestBuildClosesOnError builds them.
var openClosers atomic.Int32

type counted struct{ fake }

func (c *counted) Close() error {
	openClosers.Add(-1)
	return nil
}

func init() {
	Register("test-closer", func(json.RawMessage) (Policy, error) {
		openClosers.Add(1)
		return &counted{fake{name: "test-closer"}}, nil
	})
}

func TestBuildClosesOnError(t *testing.T) {
	t.Parallel()
	cfg := Config{
		Chain: []Spec{{Name: "test-closer"}},
		Rules: []RuleSpec{
			{Match: Match{PeerPort: 443}, Chain: []Spec{{Name: "test-closer"}, {Name: "test-closer"}}},
			{Match: Match{PeerPort: 80}, Chain: []Spec{{Name: "test-closer"}, {Name: "test-nope"}}},
		},
	}
	if _, err := Build(cfg); err == nil {
		t.Fatal("Build succeeded, want an error")
	}
	if n := openClosers.Load(); n != 0 {
		t.Errorf("%d policies left open", n)
	}
	r, err := Build(Config{Chain: cfg.Chain, Rules: cfg.Rules[:1]})
	if err != nil {
		t.Fatal(err)
	}
	if n := openClosers.Load(); n != 3 {
		t.Errorf("%d policies open, want 3", n)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if n := openClosers.Load(); n != 0 {
		t.Errorf("%d policies left open after Close", n)
	}
}
