package peeraddr

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr string
		want Class
	}{
		{"192.0.2.1", Public},
		{"198.51.100.7", Public},
		{"203.0.113.200", Public},
		{"8.8.8.8", Public},
		{"2001:db8::1", Public},
		{"2a00:1450::1", Public},
		{"10.0.0.1", Private},
		{"10.99.0.2", Private},
		{"172.16.0.1", Private},
		{"172.31.255.255", Private},
		{"172.32.0.1", Public},
		{"192.168.1.1", Private},
		{"fec0::1", Private},
		{"64:ff9b:1::a00:1", Private},
		{"100.64.0.1", Shared},
		{"100.127.255.254", Shared},
		{"100.128.0.1", Public},
		{"100.63.255.255", Public},
		{"fc00::1", UniqueLocal},
		{"fd12:3456::1", UniqueLocal},
		{"169.254.1.1", LinkLocal},
		{"fe80::1", LinkLocal},
		{"fe80::1%eth0", LinkLocal},
		{"127.0.0.1", Loopback},
		{"127.255.0.9", Loopback},
		{"::1", Loopback},
		{"0.0.0.0", Unspecified},
		{"0.1.2.3", Unspecified},
		{"::", Unspecified},
		{"224.0.0.1", Multicast},
		{"239.255.255.250", Multicast},
		{"ff02::1", Multicast},
		{"255.255.255.255", Broadcast},
		{"240.0.0.1", Reserved},
		{"255.255.255.254", Reserved},
		{"::192.0.2.1", Reserved},
		{"100::1", Reserved},
		// IPv4-mapped and NAT64 addresses are their IPv4 address's.
		{"::ffff:10.0.0.1", Private},
		{"::ffff:127.0.0.1", Loopback},
		{"::ffff:192.0.2.1", Public},
		{"64:ff9b::10.1.2.3", Private},
		{"64:ff9b::100.64.0.1", Shared},
		{"64:ff9b::127.0.0.1", Loopback},
		{"64:ff9b::192.0.2.1", Public},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			t.Parallel()
			if got := Classify(netip.MustParseAddr(tt.addr)); got != tt.want {
				t.Errorf("Classify(%s) = %s, want %s", tt.addr, got, tt.want)
			}
		})
	}
	if got := Classify(netip.Addr{}); got != Reserved {
		t.Errorf("Classify(zero) = %s, want reserved", got)
	}
}

// host is a client with a public address and a private one, as a laptop
// behind a home router with a second, public uplink.
var host = NewHost([]netip.Prefix{
	netip.MustParsePrefix("192.0.2.2/24"),
	netip.MustParsePrefix("10.99.0.7/16"),
	netip.MustParsePrefix("2001:db8:1::2/64"),
	netip.MustParsePrefix("127.0.0.1/8"),
	netip.MustParsePrefix("203.0.113.9/31"),
	netip.MustParsePrefix("198.51.100.1/32"),
})

func TestCheck(t *testing.T) {
	t.Parallel()
	public := netip.MustParseAddrPort("203.0.113.80:443")
	private := netip.MustParseAddrPort("10.1.0.1:443")
	cgnat := netip.MustParseAddrPort("100.64.0.1:443")
	public6 := netip.MustParseAddrPort("[2001:db8:9::1]:443")
	ula6 := netip.MustParseAddrPort("[fd00::1]:443")
	deny := Config{Deny: []netip.Prefix{netip.MustParsePrefix("203.0.113.64/26")}}
	allow := Config{Allow: []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16"), netip.MustParsePrefix("203.0.113.0/24")}}
	tests := []struct {
		name    string
		cfg     Config
		initial netip.AddrPort
		ap      string
		want    Refusal
		why     string
	}{
		{"public from public", Config{}, public, "203.0.113.81:443", Accepted, ""},
		{"port 0 is the connection's", Config{}, public, "203.0.113.81:0", Accepted, ""},
		{"the initial address again", Config{}, public, "203.0.113.80:443", Accepted, ""},
		{"public6 from public6", Config{}, public6, "[2001:db8:9::2]:443", Accepted, ""},
		{"loopback", Config{}, public, "127.0.0.1:443", RefusedClass, "127.0.0.1 is a loopback address"},
		{"loopback6", Config{}, public6, "[::1]:443", RefusedClass, "::1 is a loopback address"},
		{"mapped loopback", Config{}, public6, "[::ffff:127.0.0.1]:443", RefusedClass, "127.0.0.1 is a loopback address"},
		{"unspecified", Config{}, public, "0.0.0.0:443", RefusedClass, "0.0.0.0 is an unspecified address"},
		{"multicast", Config{}, public, "224.0.0.1:443", RefusedClass, "224.0.0.1 is a multicast address"},
		{"limited broadcast", Config{}, public, "255.255.255.255:443", RefusedClass, "255.255.255.255 is a broadcast address"},
		{"link-local", Config{}, public, "169.254.0.9:443", RefusedClass, "169.254.0.9 is a link-local address"},
		{"link-local from link-local", Config{}, netip.MustParseAddrPort("[fe80::1]:443"), "[fe80::2]:443", RefusedClass,
			"fe80::2 is a link-local address"},
		{"reserved", Config{}, public, "240.1.2.3:443", RefusedClass, "240.1.2.3 is a reserved address"},
		{"own address", Config{}, public, "192.0.2.2:443", RefusedOwn, "192.0.2.2 is an address of this host"},
		{"own address, other port", Config{}, public, "192.0.2.2:25", RefusedOwn, "192.0.2.2 is an address of this host"},
		{"own /32", Config{}, public, "198.51.100.1:443", RefusedOwn, "198.51.100.1 is an address of this host"},
		{"own private address from private", Config{}, private, "10.99.0.7:443", RefusedOwn, "10.99.0.7 is an address of this host"},
		{"own address6", Config{}, public6, "[2001:db8:1::2]:443", RefusedOwn, "2001:db8:1::2 is an address of this host"},
		{"directed broadcast", Config{}, public, "192.0.2.255:443", RefusedBroadcast,
			"192.0.2.255 is the broadcast address of this host's subnet 192.0.2.0/24"},
		{"directed broadcast of a private subnet", Config{}, private, "10.99.255.255:443", RefusedBroadcast,
			"10.99.255.255 is the broadcast address of this host's subnet 10.99.0.0/16"},
		{"a /31 has no broadcast", Config{}, public, "203.0.113.8:443", Accepted, ""},
		{"private from public", Config{}, public, "10.99.0.2:443", RefusedPrivate,
			"10.99.0.2 is a private address, more private than the peer's public address 203.0.113.80"},
		{"cgnat from public", Config{}, public, "100.64.1.2:443", RefusedPrivate,
			"100.64.1.2 is a shared address, more private than the peer's public address 203.0.113.80"},
		{"ula from public6", Config{}, public6, "[fd00::5]:443", RefusedPrivate,
			"fd00::5 is a unique-local address, more private than the peer's public address 2001:db8:9::1"},
		{"nat64 private from public6", Config{}, public6, "[64:ff9b::a00:1]:443", RefusedPrivate,
			"64:ff9b::a00:1 is a private address, more private than the peer's public address 2001:db8:9::1"},
		{"site-local from public6", Config{}, public6, "[fec0::1]:443", RefusedPrivate,
			"fec0::1 is a private address, more private than the peer's public address 2001:db8:9::1"},
		{"private from private", Config{}, private, "10.2.0.1:443", Accepted, ""},
		{"cgnat from private", Config{}, private, "100.64.0.9:443", Accepted, ""},
		{"private from cgnat", Config{}, cgnat, "192.168.0.1:443", Accepted, ""},
		{"ula from ula", Config{}, ula6, "[fd00::2]:443", Accepted, ""},
		{"public from private", Config{}, private, "203.0.113.81:443", Accepted, ""},
		{"public from ula", Config{}, ula6, "[2001:db8:9::2]:443", Accepted, ""},
		{"other port", Config{}, public, "203.0.113.81:25", RefusedPort, "port 25 is not the connection's port 443"},
		{"listed port", Config{Ports: []uint16{25, 8443}}, public, "203.0.113.81:8443", Accepted, ""},
		{"unlisted port", Config{Ports: []uint16{8443}}, public, "203.0.113.81:25", RefusedPort,
			"port 25 is not the connection's port 443"},
		{"any port", Config{AnyPort: true}, public, "203.0.113.81:25", Accepted, ""},
		{"any port still not private", Config{AnyPort: true}, public, "10.99.0.2:25", RefusedPrivate,
			"10.99.0.2 is a private address, more private than the peer's public address 203.0.113.80"},
		{"denied", deny, public, "203.0.113.66:443", RefusedDenied, "203.0.113.66 is in the denied prefix 203.0.113.64/26"},
		{"not denied", deny, public, "203.0.113.2:443", Accepted, ""},
		{"allowed public", allow, public, "203.0.113.2:443", Accepted, ""},
		{"allowed private from public", allow, public, "10.20.1.1:443", Accepted, ""},
		{"not allowed", allow, public, "198.51.100.9:443", RefusedNotAllowed, "198.51.100.9 is in none of the allowed prefixes"},
		{"not allowed private", allow, private, "10.21.0.1:443", RefusedNotAllowed, "10.21.0.1 is in none of the allowed prefixes"},
		{"allowed still not loopback", Config{Allow: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}}, public, "127.0.0.1:443",
			RefusedClass, "127.0.0.1 is a loopback address"},
		{"allowed still not own", Config{Allow: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}}, public, "10.99.0.7:443",
			RefusedOwn, "10.99.0.7 is an address of this host"},
		{"deny wins over allow", Config{Allow: allow.Allow, Deny: deny.Deny}, public, "203.0.113.70:443", RefusedDenied,
			"203.0.113.70 is in the denied prefix 203.0.113.64/26"},
		{"allowed still other port", allow, public, "10.20.1.1:25", RefusedPort, "port 25 is not the connection's port 443"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, why := tt.cfg.Check(host, tt.initial, netip.MustParseAddrPort(tt.ap))
			if got != tt.want || why != tt.why {
				t.Errorf("Check(%s, %s) = %s %q, want %s %q", tt.initial, tt.ap, got, why, tt.want, tt.why)
			}
		})
	}
}

// TestCheckNoHost: without a Host, only the host's addresses and
// broadcasts go unchecked.
func TestCheckNoHost(t *testing.T) {
	t.Parallel()
	var c Config
	initial := netip.MustParseAddrPort("203.0.113.80:443")
	for ap, want := range map[string]Refusal{
		"192.0.2.2:443":   Accepted,
		"192.0.2.255:443": Accepted,
		"127.0.0.1:443":   RefusedClass,
		"10.0.0.1:443":    RefusedPrivate,
	} {
		if got, _ := c.Check(nil, initial, netip.MustParseAddrPort(ap)); got != want {
			t.Errorf("Check(nil host, %s) = %s, want %s", ap, got, want)
		}
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		err  string
	}{
		{"zero", Config{}, ""},
		{"full", Config{Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
			Deny: []netip.Prefix{netip.MustParsePrefix("2001:db8::/32")}, Ports: []uint16{8443}, Tries: MaxTries}, ""},
		{"bad allow", Config{Allow: []netip.Prefix{{}}}, "peeraddr: allow[0]: not a prefix"},
		{"mapped deny", Config{Deny: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::ffff:10.0.0.0/104")}},
			"peeraddr: deny[1]: ::ffff:10.0.0.0/104 is IPv4-mapped; write the IPv4 prefix"},
		{"port 0", Config{Ports: []uint16{443, 0}}, "peeraddr: ports[1]: 0 is not a port"},
		{"negative tries", Config{Tries: -1}, "peeraddr: tries: -1 is not in 0..10 (0 means 1)"},
		{"too many tries", Config{Tries: 11}, "peeraddr: tries: 11 is not in 0..10 (0 means 1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if diff := cmp.Diff(tt.err, got); diff != "" {
				t.Errorf("Validate (-want +got):\n%s", diff)
			}
		})
	}
	if got := (Config{}).TriesOrDefault(); got != DefaultTries {
		t.Errorf("TriesOrDefault of zero = %d, want %d", got, DefaultTries)
	}
}

func TestNames(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for c := Public; c < numClasses; c++ {
		if n := c.String(); n == "" || seen[n] {
			t.Errorf("class %d: name %q empty or repeated", c, n)
		} else {
			seen[n] = true
		}
	}
	for _, r := range Refusals() {
		if n := r.String(); n == "" || seen[n] || n == "accepted" {
			t.Errorf("refusal %d: name %q empty or repeated", r, n)
		} else {
			seen[n] = true
		}
	}
	if got := Class(200).String(); got != "class(200)" {
		t.Errorf("Class(200) = %q", got)
	}
	if got := Refusal(200).String(); got != "refusal(200)" {
		t.Errorf("Refusal(200) = %q", got)
	}
}
