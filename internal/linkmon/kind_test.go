package linkmon

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	cellular := []string{"wwan*", "usb0"}
	tests := []struct {
		name string
		in   linkFacts
		want Kind
	}{
		{"loopback flag", linkFacts{name: "lo", typ: "device", encap: "loopback", flags: iffLoopback}, KindLoopback},
		{"loopback encap", linkFacts{name: "lo", typ: "device", encap: "loopback"}, KindLoopback},
		{"physical ethernet", linkFacts{name: "enp3s0", typ: "device", encap: "ether"}, KindWired},
		{"veth", linkFacts{name: "eth0", typ: "veth", encap: "ether"}, KindVirtual},
		{"netkit", linkFacts{name: "nk0", typ: "netkit", encap: "ether"}, KindVirtual},
		{"bridge", linkFacts{name: "docker0", typ: "bridge", encap: "ether", sys: sysInfo{devType: "bridge"}}, KindVirtual},
		{"tun", linkFacts{name: "tun0", typ: "tuntap", encap: "none"}, KindVirtual},
		{"wireguard", linkFacts{name: "wg0", typ: "wireguard", encap: "none"}, KindVirtual},
		{"vxlan", linkFacts{name: "vx0", typ: "vxlan", encap: "ether"}, KindVirtual},
		{"macvlan", linkFacts{name: "mv0", typ: "macvlan", encap: "ether"}, KindVirtual},
		{"ipvlan", linkFacts{name: "ipv0", typ: "ipvlan", encap: "ether"}, KindVirtual},
		{"dummy", linkFacts{name: "dummy0", typ: "dummy", encap: "ether"}, KindVirtual},
		{"vrf", linkFacts{name: "vrf0", typ: "vrf", encap: "ether"}, KindVirtual},
		{"gre tunnel", linkFacts{name: "gre1", typ: "gre", encap: "gre"}, KindVirtual},
		{"bond", linkFacts{name: "bond0", typ: "bond", encap: "ether", sys: sysInfo{devType: "bond"}}, KindWired},
		{"team", linkFacts{name: "team0", typ: "team", encap: "ether"}, KindWired},
		{"wwan framework link", linkFacts{name: "wwan0", typ: "wwan", encap: "none"}, KindCellular},
		{"wlan devtype", linkFacts{name: "wlp2s0", typ: "device", encap: "ether", sys: sysInfo{devType: "wlan"}}, KindWifi},
		{"wireless dir", linkFacts{name: "wlan0", typ: "device", encap: "ether", sys: sysInfo{wireless: true}}, KindWifi},
		{"wwan devtype", linkFacts{name: "enx001122", typ: "device", encap: "ether", sys: sysInfo{devType: "wwan"}}, KindCellular},
		{"raw-ip modem", linkFacts{name: "mhi0", typ: "device", encap: "unknown519"}, KindCellular},
		{"arphrd none device", linkFacts{name: "qmi0", typ: "device", encap: "none"}, KindCellular},
		{"cellular name beats ethernet", linkFacts{name: "usb0", typ: "device", encap: "ether"}, KindCellular},
		{"cellular glob", linkFacts{name: "wwan3", typ: "device", encap: "ether"}, KindCellular},
		{"cellular name beats virtual", linkFacts{name: "wwan9", typ: "veth", encap: "ether"}, KindCellular},
		{"veth beats a foreign wifi sysfs entry", linkFacts{name: "wlan0", typ: "veth", encap: "ether", sys: sysInfo{wireless: true}}, KindVirtual},
		{"vlan on wired", linkFacts{name: "eth0.10", typ: "vlan", encap: "ether", parentKind: KindWired}, KindWired},
		{"vlan on veth", linkFacts{name: "v.10", typ: "vlan", encap: "ether", parentKind: KindVirtual}, KindVirtual},
		{"vlan parent unknown", linkFacts{name: "x.10", typ: "vlan", encap: "ether"}, KindUnknown},
		{"ppp", linkFacts{name: "ppp0", typ: "ppp", encap: "ppp"}, KindUnknown},
		{"infiniband", linkFacts{name: "ib0", typ: "ipoib", encap: "infiniband"}, KindUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classify(tt.in, cellular); got != tt.want {
				t.Fatalf("classify(%+v) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestKindText(t *testing.T) {
	t.Parallel()
	for k := range numKinds {
		b, err := k.MarshalText()
		if err != nil {
			t.Fatalf("%d.MarshalText: %v", k, err)
		}
		var got Kind
		if err := got.UnmarshalText(b); err != nil || got != k {
			t.Fatalf("UnmarshalText(%q) = %v, %v; want %v", b, got, err, k)
		}
	}
	if k, err := ParseKind("WiFi"); err != nil || k != KindWifi {
		t.Fatalf("ParseKind(WiFi) = %v, %v", k, err)
	}
	if _, err := ParseKind("modem"); err == nil || !strings.Contains(err.Error(), `"modem"`) {
		t.Fatalf("ParseKind(modem) error = %v, want one naming the input", err)
	}
	if _, err := Kind(42).MarshalText(); err == nil {
		t.Fatal("Kind(42).MarshalText succeeded")
	}
	if got := Kind(42).String(); got != "kind(42)" {
		t.Fatalf("Kind(42).String() = %q", got)
	}
	var cfg struct{ Kinds []Kind }
	if err := json.Unmarshal([]byte(`{"Kinds":["virtual","cellular"]}`), &cfg); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Kind{KindVirtual, KindCellular}, cfg.Kinds); diff != "" {
		t.Fatalf("decoded kinds (-want +got):\n%s", diff)
	}
}

func TestParseUevent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want uevent
	}{
		{"virtio", "INTERFACE=eth0\nIFINDEX=4\n", uevent{iface: "eth0", ifindex: 4}},
		{"wifi", "DEVTYPE=wlan\nINTERFACE=wlp2s0\nIFINDEX=3\n", uevent{iface: "wlp2s0", ifindex: 3, devType: "wlan"}},
		{"qmi", "DEVTYPE=wwan\nINTERFACE=wwp0s20u4i6\nIFINDEX=7", uevent{iface: "wwp0s20u4i6", ifindex: 7, devType: "wwan"}},
		{"bad index", "INTERFACE=x\nIFINDEX=-3\n", uevent{iface: "x"}},
		{"junk", "garbage\n=\nIFINDEX=abc\n\n", uevent{}},
		{"empty", "", uevent{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseUevent([]byte(tt.in))
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(uevent{})); diff != "" {
				t.Fatalf("parseUevent (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzParseUevent(f *testing.F) {
	f.Add([]byte("INTERFACE=eth0\nIFINDEX=4\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		u := parseUevent(b)
		if u.ifindex < 0 {
			t.Fatalf("negative ifindex %d", u.ifindex)
		}
		if strings.Contains(u.devType, "\n") || strings.Contains(u.iface, "\n") {
			t.Fatalf("value spans lines: %+v", u)
		}
	})
}
