package linkmon

import (
	"bytes"
	"fmt"
	"path"
	"strconv"
	"strings"
)

// Kind is what a link is made of, as far as path policies care.
type Kind uint8

// The kinds of links. KindUnknown is a link that none of the rules in the
// package documentation recognised.
const (
	KindUnknown Kind = iota
	KindWired
	KindWifi
	KindCellular
	KindVirtual
	KindLoopback
	numKinds
)

var kindNames = [numKinds]string{"unknown", "wired", "wifi", "cellular", "virtual", "loopback"}

// String returns the kind's name: "unknown", "wired", "wifi", "cellular",
// "virtual" or "loopback".
func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// ParseKind returns the Kind named s (as printed by String, case-insensitive).
func ParseKind(s string) (Kind, error) {
	for k, name := range kindNames {
		if strings.EqualFold(s, name) {
			return Kind(k), nil
		}
	}
	return KindUnknown, fmt.Errorf("linkmon: unknown link kind %q (want one of %s)", s, strings.Join(kindNames[:], ", "))
}

// MarshalText implements encoding.TextMarshaler.
func (k Kind) MarshalText() ([]byte, error) {
	if k >= numKinds {
		return nil, fmt.Errorf("linkmon: invalid link kind %d", uint8(k))
	}
	return []byte(k.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *Kind) UnmarshalText(b []byte) error {
	v, err := ParseKind(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// typeKinds maps rtnetlink link types (IFLA_INFO_KIND, as named by
// vishvananda/netlink's Link.Type) to kinds. "device" (no link info: a driver's
// own netdev) and "vlan" are decided by the other rules.
var typeKinds = map[string]Kind{
	// Virtual: software devices, tunnels and container plumbing.
	"veth": KindVirtual, "netkit": KindVirtual, "bridge": KindVirtual, "openvswitch": KindVirtual,
	"tuntap": KindVirtual, "tun": KindVirtual, "wireguard": KindVirtual, "vxlan": KindVirtual,
	"geneve": KindVirtual, "bareudp": KindVirtual, "macvlan": KindVirtual, "macvtap": KindVirtual,
	"ipvlan": KindVirtual, "ipvtap": KindVirtual, "dummy": KindVirtual, "ifb": KindVirtual,
	"vrf": KindVirtual, "gre": KindVirtual, "gretap": KindVirtual, "ip6gre": KindVirtual,
	"ip6gretap": KindVirtual, "erspan": KindVirtual, "ip6erspan": KindVirtual, "ipip": KindVirtual,
	"ip6tnl": KindVirtual, "sit": KindVirtual, "vti": KindVirtual, "vti6": KindVirtual,
	"xfrm": KindVirtual, "gtp": KindVirtual, "nlmon": KindVirtual, "macsec": KindVirtual,
	"batadv": KindVirtual, "hsr": KindVirtual, "amt": KindVirtual, "vcan": KindVirtual,
	"vxcan": KindVirtual,
	// Aggregates of physical ports.
	"bond": KindWired, "team": KindWired,
	// The kernel's WWAN framework (mhi_net, iosm, t7xx).
	"wwan": KindCellular,
}

// sysInfo is what sysfs says about a network device. It is only trusted when
// its ifindex and address match the link: sysfs shows the devices of the
// network namespace it was mounted in, not necessarily the monitored one.
type sysInfo struct {
	ifindex  int
	addr     string // hardware address as in /sys/class/net/NAME/address
	devType  string // DEVTYPE from uevent: "wlan", "wwan", "bridge", "vlan", ...
	wireless bool   // a wireless/ or phy80211 entry exists
}

// linkFacts is everything classify looks at.
type linkFacts struct {
	name       string
	typ        string // netlink link type: "device", "veth", "vlan", ...
	encap      string // ARPHRD name from netlink: "ether", "none", "loopback", "unknown519", ...
	flags      uint32 // IFF_* flags
	parentKind Kind   // for a vlan: the kind of the link it sits on
	sys        sysInfo
}

// classify decides the kind of a link. cellular holds the Config's
// CellularNames globs, already validated.
func classify(f linkFacts, cellular []string) Kind {
	if f.flags&iffLoopback != 0 || f.encap == "loopback" {
		return KindLoopback
	}
	if matchAny(cellular, f.name) {
		return KindCellular
	}
	if k, ok := typeKinds[f.typ]; ok {
		return k
	}
	switch f.sys.devType {
	case "wwan":
		return KindCellular
	case "wlan":
		return KindWifi
	}
	if f.sys.wireless {
		return KindWifi
	}
	if f.typ == "vlan" {
		return f.parentKind
	}
	switch f.encap {
	case "none", "unknown519": // ARPHRD_NONE, ARPHRD_RAWIP: raw-IP modems (qmi_wwan, cdc_mbim)
		return KindCellular
	case "ether":
		if f.typ == "device" {
			return KindWired
		}
	}
	return KindUnknown
}

// matchAny reports whether name matches one of the path.Match globs.
func matchAny(globs []string, name string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

// uevent is the part of a sysfs uevent file linkmon uses.
type uevent struct {
	iface   string // INTERFACE
	ifindex int    // IFINDEX, 0 if absent or malformed
	devType string // DEVTYPE
}

// parseUevent decodes the KEY=VALUE lines of /sys/class/net/NAME/uevent.
// Unknown keys and malformed lines are ignored.
func parseUevent(b []byte) uevent {
	var u uevent
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		key, value, ok := bytes.Cut(line, []byte("="))
		if !ok {
			continue
		}
		switch string(key) {
		case "INTERFACE":
			u.iface = string(value)
		case "IFINDEX":
			if n, err := strconv.Atoi(string(value)); err == nil && n > 0 {
				u.ifindex = n
			}
		case "DEVTYPE":
			u.devType = string(value)
		}
	}
	return u
}
