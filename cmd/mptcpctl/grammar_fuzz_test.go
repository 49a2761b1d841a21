package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/mptcpgod/mptcpgod/genl"
)

// FuzzGrammar feeds command lines to every parser of the positional
// grammar: none may panic, every refusal is a usage error, and what they
// accept keeps the kernel's rules.
func FuzzGrammar(f *testing.F) {
	for _, s := range []string{
		"192.0.2.1 dev eth0 id 7 subflow backup fullmesh laminar",
		"2001:db8::1 signal port 8080",
		"192.0.2.1 port 80",
		"3 backup nofullmesh",
		"subflows 4 add-addr-accepted 8",
		"0x3f97be70",
		"userspace",
		"3f97be70 192.0.2.1 id 5 port 8080 dev eth1",
		"3f97be70 id 0",
		"3f97be70 192.0.2.1 203.0.113.1:443 id 3 dev eth1 backup",
		"3f97be70 [2001:db8::2]:40000 [2001:db8::1]:443 on",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Fields(line)
		usage := func(err error) {
			var u *usageError
			if err != nil && !errors.As(err, &u) {
				t.Fatalf("%q: error %v is not a usage error", line, err)
			}
		}
		add, err := parseAdd(args)
		usage(err)
		if err == nil {
			fl := add.Endpoint.Flags
			if !add.Endpoint.Addr.IsValid() || add.Endpoint.Addr.Zone() != "" {
				t.Fatalf("%q: accepted address %v", line, add.Endpoint.Addr)
			}
			if add.Endpoint.Port != 0 && (fl&genl.FlagSignal == 0 || fl&genl.FlagSubflow != 0) {
				t.Fatalf("%q: accepted a port without signal or with subflow", line)
			}
			if fl&genl.FlagSignal != 0 && fl&genl.FlagFullmesh != 0 {
				t.Fatalf("%q: accepted signal with fullmesh", line)
			}
			if fl&genl.FlagImplicit != 0 {
				t.Fatalf("%q: accepted implicit", line)
			}
		}
		ref, err := parseDel(args)
		usage(err)
		if err == nil && ref.ID == 0 && !ref.Addr.IsValid() {
			t.Fatalf("%q: accepted an empty endpoint reference", line)
		}
		set, err := parseSet(args)
		usage(err)
		if err == nil && (set.Set|set.Clear)&^(genl.FlagBackup|genl.FlagFullmesh) != 0 {
			t.Fatalf("%q: set changes %v", line, set.Set|set.Clear)
		}
		u, err := parseLimits(args)
		usage(err)
		for _, v := range []*uint32{u.Subflows, u.AddAddrAccepted} {
			if err == nil && v != nil && *v > genl.MaxLimit {
				t.Fatalf("%q: accepted limit %d", line, *v)
			}
		}
		ann, err := parseAnnounce(args)
		usage(err)
		if err == nil && (ann.Endpoint.ID == 0 || ann.Endpoint.Flags != genl.FlagSignal || !ann.Endpoint.Addr.IsValid()) {
			t.Fatalf("%q: accepted announce %+v", line, ann)
		}
		_, _, err = parseRemove(args)
		usage(err)
		for _, op := range []string{"create", "destroy", "backup"} {
			sf, err := parseSubflow(op, args)
			usage(err)
			if err != nil {
				continue
			}
			if !sf.Local.Addr.IsValid() || !sf.Remote.Addr().IsValid() || sf.Local.Addr.Unmap().Is4() != sf.Remote.Addr().Unmap().Is4() {
				t.Fatalf("%q: %s accepted %+v", line, op, sf)
			}
			if (op == "create" && (sf.Remote.Port() == 0 || sf.Local.Port != 0)) ||
				(op == "destroy" && (sf.Remote.Port() == 0 || sf.Local.Port == 0)) {
				t.Fatalf("%q: %s accepted ports %d and %d", line, op, sf.Local.Port, sf.Remote.Port())
			}
		}
		_, err = parsePM(line)
		usage(err)
		tok, err := parseToken(line)
		usage(err)
		if err == nil {
			if back, err := parseToken(formatToken(tok)); err != nil || back != tok {
				t.Fatalf("%q: token %x does not round-trip", line, tok)
			}
		}
	})
}
