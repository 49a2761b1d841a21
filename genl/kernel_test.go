//go:build linux

package genl

import (
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

func TestParseRelease(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in           string
		major, minor int
		ok           bool
	}{
		{"6.1.0-57-amd64", 6, 1, true},
		{"6.12.118+deb12-amd64", 6, 12, true},
		{"6.18.44-fc-v1272", 6, 18, true},
		{"5.19", 5, 19, true},
		{"6.9-rc1", 6, 9, true},
		{"6", 0, 0, false},
		{"x.1", 0, 0, false},
		{"6.x", 0, 0, false},
		{"", 0, 0, false},
	}
	for _, tt := range tests {
		major, minor, err := ParseRelease(tt.in)
		if (err == nil) != tt.ok || major != tt.major || minor != tt.minor {
			t.Errorf("ParseRelease(%q) = %d, %d, %v; want %d, %d, ok %v", tt.in, major, minor, err, tt.major, tt.minor, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "MAJOR.MINOR") {
			t.Errorf("ParseRelease(%q) error %q does not say what it wants", tt.in, err)
		}
	}
}

// TestDetect checks each capability's detection on the kernels of the
// compatibility matrix, from what each one offers.
func TestDetect(t *testing.T) {
	t.Parallel()
	all := []Command{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
	sysctls := func(names ...string) func(string) bool {
		return func(n string) bool {
			for _, s := range names {
				if s == n {
					return true
				}
			}
			return false
		}
	}
	dump := func(ok bool, err error) func() (bool, error) { return func() (bool, error) { return ok, err } }
	ids := func(cs ...Capability) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.ID)
		}
		return out
	}
	tests := []struct {
		name string
		p    probes
		want []string
	}{
		{
			name: "6.18",
			p:    probes{release: "6.18.44", commands: all, sysctl: sysctls("pm_type", "path_manager", "scheduler"), connAddrDump: dump(true, nil)},
		},
		{
			name: "6.12",
			p:    probes{release: "6.12.118+deb12-amd64", commands: all, sysctl: sysctls("pm_type", "scheduler"), connAddrDump: dump(true, nil)},
			want: ids(CapPathManagerSysctl, CapUnprivSubflowInfo, CapLaminar, CapServerSideFlag),
		},
		{
			name: "6.1",
			p:    probes{release: "6.1.0-57-amd64", commands: all, sysctl: sysctls("pm_type"), connAddrDump: dump(false, nil)},
			want: ids(CapListenerEvents, CapConnBytes, CapSchedulers, CapConnAddrDump, CapSubflowFlags, CapPathManagerSysctl,
				CapUnprivSubflowInfo, CapLaminar, CapServerSideFlag),
		},
		{
			name: "5.15 without the userspace path manager",
			p:    probes{release: "5.15.0", commands: all[:7], sysctl: sysctls(), connAddrDump: dump(false, nil)},
			want: ids(Capabilities...),
		},
		{
			name: "a failed probe falls back to the release",
			p:    probes{release: "6.10.0", commands: all, sysctl: sysctls("pm_type", "scheduler"), connAddrDump: dump(false, unix.EPERM)},
			want: ids(CapPathManagerSysctl, CapUnprivSubflowInfo, CapLaminar, CapServerSideFlag),
		},
		{
			name: "what the kernel offers wins over its release",
			p:    probes{release: "6.8.0", commands: all, sysctl: sysctls("pm_type", "scheduler"), connAddrDump: dump(true, nil)},
			want: ids(CapSubflowFlags, CapPathManagerSysctl, CapUnprivSubflowInfo, CapLaminar, CapServerSideFlag),
		},
	}
	for _, tt := range tests {
		k := tt.p.detect()
		if diff := cmp.Diff(tt.want, ids(k.Missing...)); diff != "" {
			t.Errorf("%s: missing capabilities (-want +got):\n%s", tt.name, diff)
		}
		if k.Release != tt.p.release {
			t.Errorf("%s: Release = %q, want %q", tt.name, k.Release, tt.p.release)
		}
		for _, c := range Capabilities {
			if k.Has(c) == contains(tt.want, c.ID) {
				t.Errorf("%s: Has(%s) = %v disagrees with Missing", tt.name, c.ID, k.Has(c))
			}
		}
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestCapabilitiesTable: every capability has an id, a name, a release
// and what mptcpgod does without it, and they are listed oldest first.
func TestCapabilitiesTable(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	lastMaj, lastMin := 0, 0
	for _, c := range Capabilities {
		if c.ID == "" || c.Name == "" || c.Without == "" || seen[c.ID] {
			t.Errorf("capability %+v: empty field or duplicate id", c)
		}
		seen[c.ID] = true
		maj, min, err := ParseRelease(c.Since)
		if err != nil {
			t.Errorf("capability %s: Since: %v", c.ID, err)
		}
		if maj < lastMaj || maj == lastMaj && min < lastMin {
			t.Errorf("capability %s (Linux %s) listed after a newer one", c.ID, c.Since)
		}
		lastMaj, lastMin = maj, min
	}
}

// TestConnectionAddrsUnsupported: on a kernel without the per-connection
// dump, ConnectionAddrs sends nothing and names the release that brings
// it, instead of returning the endpoints as the kernel would.
func TestConnectionAddrsUnsupported(t *testing.T) {
	t.Parallel()
	k := Kernel{Release: "6.1.0-57-amd64", Missing: []Capability{CapConnAddrDump}}
	c := testClientOn(t, k, func(genetlink.Message, netlink.Message) ([]genetlink.Message, error) {
		t.Error("ConnectionAddrs sent a request to a kernel without the per-connection dump")
		return nil, nil
	})
	_, err := c.ConnectionAddrs(1)
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("ConnectionAddrs = %v, want ErrUnsupported", err)
	}
	for _, s := range []string{"Linux 6.9", "6.1.0-57-amd64", CapConnAddrDump.Name} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
	if got := c.Kernel(); !cmp.Equal(got, k) {
		t.Errorf("Kernel() = %+v, want %+v", got, k)
	}
}

// TestOldErrorTexts: the errors of older kernels map to the same
// sentinels where they say the same thing.
func TestOldErrorTexts(t *testing.T) {
	t.Parallel()
	e := &Error{Op: "add endpoint", Err: unix.EINVAL, Message: "too many addresses or duplicate one"}
	if !errors.Is(e, os.ErrExist) {
		t.Errorf("%v does not match os.ErrExist", e)
	}
	n := &Error{Op: "announce", Err: unix.EINVAL, Message: "invalid request; userspace PM not selected"}
	if !errors.Is(n, ErrNotUserspacePM) {
		t.Errorf("%v does not match ErrNotUserspacePM", n)
	}
	if other := (&Error{Op: "add endpoint", Err: unix.EINVAL, Message: "invalid addr flags"}); errors.Is(other, os.ErrExist) {
		t.Errorf("%v matches os.ErrExist", other)
	}
}

// TestLaminarUnsupported: a laminar endpoint on a kernel without laminar
// endpoints is refused before anything is sent; others go through.
func TestLaminarUnsupported(t *testing.T) {
	t.Parallel()
	k := Kernel{Release: "6.12.118+deb12-amd64", Missing: []Capability{CapLaminar}}
	sent := 0
	c := testClientOn(t, k, func(genetlink.Message, netlink.Message) ([]genetlink.Message, error) {
		sent++
		return []genetlink.Message{{}}, nil
	})
	ep := Endpoint{Addr: netip.MustParseAddr("192.0.2.1"), Flags: FlagSubflow | FlagLaminar}
	err := c.AddEndpoint(ep)
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "laminar endpoints came with Linux 6.18") {
		t.Errorf("AddEndpoint(laminar) on 6.12 = %v, want ErrUnsupported naming Linux 6.18", err)
	}
	if sent != 0 {
		t.Errorf("%d requests sent for a refused endpoint", sent)
	}
	ep.Flags = FlagSubflow
	if err := c.AddEndpoint(ep); err != nil || sent != 1 {
		t.Errorf("AddEndpoint(subflow) = %v after %d requests, want it sent", err, sent)
	}
}
