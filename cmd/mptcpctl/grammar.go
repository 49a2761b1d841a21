package main

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/mptcpgod/mptcpgod/genl"
)

// This file holds the ip-mptcp-like positional grammar: keywords after an
// address, each parsed with a precise error. Nothing here touches the
// kernel, so bad input is rejected before anything changes.

// addWords are the keywords `endpoints add` accepts after ADDR, in the order
// error messages list them.
var addWords = []string{"dev", "id", "port", "signal", "subflow", "backup", "fullmesh", "laminar"}

// addFlags maps the flag keywords of `endpoints add` to their bits.
var addFlags = map[string]genl.EndpointFlags{
	"signal":   genl.FlagSignal,
	"subflow":  genl.FlagSubflow,
	"backup":   genl.FlagBackup,
	"fullmesh": genl.FlagFullmesh,
	"laminar":  genl.FlagLaminar,
}

// setWords are the keywords `endpoints set` accepts after ID|ADDR.
var setWords = []string{"backup", "nobackup", "fullmesh", "nofullmesh"}

// limitWords are the keywords `limits set` accepts.
var limitWords = []string{"subflows", "add-addr-accepted"}

// addRequest is a parsed `endpoints add`.
type addRequest struct {
	// Endpoint is what to add; IfIndex is resolved from Dev later.
	Endpoint genl.Endpoint
	// Dev is the interface name given with dev, "" if none.
	Dev string
}

// endpointRef names an endpoint by id or by address: exactly one is set.
type endpointRef struct {
	ID   uint8
	Addr netip.Addr
}

// String returns the reference as the user wrote it.
func (r endpointRef) String() string {
	if r.Addr.IsValid() {
		return r.Addr.String()
	}
	return strconv.Itoa(int(r.ID))
}

// setRequest is a parsed `endpoints set`: the bits to set and to clear.
type setRequest struct {
	Ref        endpointRef
	Set, Clear genl.EndpointFlags
}

// apply returns the flags an endpoint has after the change, keeping the
// bits the request does not mention.
func (s setRequest) apply(cur genl.EndpointFlags) genl.EndpointFlags {
	return (cur | s.Set) &^ s.Clear
}

// expected joins words as "a, b, c or d".
func expected(words []string) string {
	switch len(words) {
	case 0:
		return ""
	case 1:
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// parseAddr parses an endpoint address: IPv4 or IPv6, no zone, no prefix.
func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		if _, perr := netip.ParsePrefix(s); perr == nil {
			return netip.Addr{}, usagef("invalid address %q: give an address without a prefix length", s)
		}
		return netip.Addr{}, usagef("invalid address %q", s)
	}
	if a.Zone() != "" {
		return netip.Addr{}, usagef("invalid address %q: zones are not supported, use dev", s)
	}
	return a, nil
}

// parseUint parses word, the value of keyword, as a number in lo..hi.
func parseUint(keyword, word string, lo, hi uint64) (uint64, error) {
	n, err := strconv.ParseUint(word, 10, 64)
	if err != nil {
		return 0, usagef("%s %q: expected a number %d..%d", keyword, word, lo, hi)
	}
	if n < lo || n > hi {
		return 0, usagef("%s %s: out of range %d..%d", keyword, word, lo, hi)
	}
	return n, nil
}

// uintValue parses the word after args[i], the value of keyword args[i],
// as a number in lo..hi.
func uintValue(args []string, i int, lo, hi uint64) (uint64, error) {
	v, err := value(args, i, fmt.Sprintf("value: expected a number %d..%d", lo, hi))
	if err != nil {
		return 0, err
	}
	return parseUint(args[i], v, lo, hi)
}

// value returns the word after args[i], the value of keyword args[i].
func value(args []string, i int, what string) (string, error) {
	if i+1 >= len(args) {
		return "", usagef("%s: missing %s", args[i], what)
	}
	return args[i+1], nil
}

// validIfName reports whether s can be a Linux interface name.
func validIfName(s string) bool {
	if s == "" || len(s) > 15 || s == "." || s == ".." {
		return false
	}
	return !strings.ContainsAny(s, "/: \t\n")
}

// parseAdd parses the arguments of `endpoints add`.
func parseAdd(args []string) (addRequest, error) {
	var req addRequest
	if len(args) == 0 {
		return req, usagef("missing address: expected ADDR [%s]", strings.Join(addWords, "] ["))
	}
	addr, err := parseAddr(args[0])
	if err != nil {
		return req, err
	}
	req.Endpoint.Addr = addr
	seen := map[string]bool{}
	for i := 1; i < len(args); i++ {
		w := args[i]
		if seen[w] {
			return req, usagef("%q given twice", w)
		}
		switch w {
		case "dev":
			v, err := value(args, i, "interface name")
			if err != nil {
				return req, err
			}
			if !validIfName(v) {
				return req, usagef("dev %q: invalid interface name", v)
			}
			req.Dev = v
			i++
		case "id":
			n, err := uintValue(args, i, 1, 255)
			if err != nil {
				return req, err
			}
			req.Endpoint.ID = uint8(n)
			i++
		case "port":
			n, err := uintValue(args, i, 1, 65535)
			if err != nil {
				return req, err
			}
			req.Endpoint.Port = uint16(n)
			i++
		case "implicit":
			return req, usagef("implicit: the kernel creates implicit endpoints itself; expected %s", expected(addWords))
		default:
			f, ok := addFlags[w]
			if !ok {
				return req, usagef("unknown word %q: expected %s", w, expected(addWords))
			}
			req.Endpoint.Flags |= f
		}
		seen[w] = true
	}
	// The kernel's own rules (net/mptcp/pm_kernel.c), mirrored so the
	// message names the words; the kernel would refuse them anyway.
	f := req.Endpoint.Flags
	if req.Endpoint.Port != 0 && (f&genl.FlagSignal == 0 || f&genl.FlagSubflow != 0) {
		if f&genl.FlagSignal == 0 {
			return req, usagef("port without signal: an endpoint with a port must be signal and not subflow")
		}
		return req, usagef("port with subflow: an endpoint with a port must be signal and not subflow")
	}
	if f&genl.FlagSignal != 0 && f&genl.FlagFullmesh != 0 {
		return req, usagef("signal with fullmesh: an endpoint cannot be both")
	}
	return req, nil
}

// parseRef parses an endpoint given as ID (1..255) or address.
func parseRef(word string) (endpointRef, error) {
	if word != "" && strings.Trim(word, "0123456789") == "" {
		n, err := parseUint("id", word, 1, 255)
		if err != nil {
			return endpointRef{}, err
		}
		return endpointRef{ID: uint8(n)}, nil
	}
	a, err := netip.ParseAddr(word)
	if err != nil || a.Zone() != "" {
		return endpointRef{}, usagef("invalid endpoint %q: expected an id 1..255 or an address", word)
	}
	return endpointRef{Addr: a}, nil
}

// parseDel parses the arguments of `endpoints del`.
func parseDel(args []string) (endpointRef, error) {
	switch len(args) {
	case 0:
		return endpointRef{}, usagef("missing endpoint: expected an id 1..255 or an address")
	case 1:
		return parseRef(args[0])
	}
	return endpointRef{}, usagef("unexpected word %q: expected only ID or ADDR", args[1])
}

// parseSet parses the arguments of `endpoints set`.
func parseSet(args []string) (setRequest, error) {
	var req setRequest
	if len(args) == 0 {
		return req, usagef("missing endpoint: expected ID|ADDR %s", strings.Join(setWords, "|"))
	}
	ref, err := parseRef(args[0])
	if err != nil {
		return req, err
	}
	req.Ref = ref
	if len(args) == 1 {
		return req, usagef("missing change: expected %s", expected(setWords))
	}
	for _, w := range args[1:] {
		var on bool
		var f genl.EndpointFlags
		switch w {
		case "backup", "nobackup":
			on, f = w == "backup", genl.FlagBackup
		case "fullmesh", "nofullmesh":
			on, f = w == "fullmesh", genl.FlagFullmesh
		case "signal", "subflow", "laminar", "implicit":
			return req, usagef("%s: the kernel can change only backup and fullmesh; expected %s", w, expected(setWords))
		default:
			return req, usagef("unknown word %q: expected %s", w, expected(setWords))
		}
		if (req.Set|req.Clear)&f != 0 {
			return req, usagef("%q conflicts with an earlier word: give each of backup and fullmesh once", w)
		}
		if on {
			req.Set |= f
		} else {
			req.Clear |= f
		}
	}
	return req, nil
}

// parseLimits parses the arguments of `limits set`.
func parseLimits(args []string) (genl.LimitsUpdate, error) {
	var u genl.LimitsUpdate
	if len(args) == 0 {
		return u, usagef("nothing to set: expected subflows N or add-addr-accepted N")
	}
	for i := 0; i < len(args); i++ {
		w := args[i]
		var dst **uint32
		switch w {
		case "subflows":
			dst = &u.Subflows
		case "add-addr-accepted":
			dst = &u.AddAddrAccepted
		default:
			return u, usagef("unknown word %q: expected %s", w, expected(limitWords))
		}
		if *dst != nil {
			return u, usagef("%q given twice", w)
		}
		v, err := value(args, i, fmt.Sprintf("value: expected a number 0..%d", genl.MaxLimit))
		if err != nil {
			return u, err
		}
		n, err := parseUint(w, v, 0, genl.MaxLimit)
		if err != nil {
			return u, err
		}
		n32 := uint32(n)
		*dst = &n32
		i++
	}
	return u, nil
}

// parsePM parses the argument of `pm`.
func parsePM(word string) (genl.PathManager, error) {
	switch pm := genl.PathManager(word); pm {
	case genl.PathManagerKernel, genl.PathManagerUserspace:
		return pm, nil
	}
	return "", usagef("unknown path manager %q: expected kernel or userspace", word)
}

// parseToken parses a connection token as printed by mptcpctl, ss and
// `ip mptcp monitor`: hexadecimal, with or without 0x.
func parseToken(word string) (uint32, error) {
	s := strings.TrimPrefix(strings.TrimPrefix(word, "0x"), "0X")
	n, err := strconv.ParseUint(s, 16, 32)
	if err != nil || s == "" {
		return 0, usagef("invalid token %q: expected up to 8 hexadecimal digits", word)
	}
	return uint32(n), nil
}

// formatToken formats a token the way parseToken reads it.
func formatToken(t uint32) string {
	return fmt.Sprintf("%08x", t)
}

// announceWords are the keywords `connections announce` accepts after
// ADDR; id is required.
var announceWords = []string{"id", "port", "dev"}

// subflowWords are the keywords `subflows create` accepts after REMOTE.
var subflowWords = []string{"id", "dev", "backup"}

// announceRequest is a parsed `connections announce`.
type announceRequest struct {
	Token uint32
	// Endpoint is the address to announce, with the signal flag and its
	// id; IfIndex is resolved from Dev later.
	Endpoint genl.Endpoint
	Dev      string
}

// subflowRequest is a parsed `subflows create`, `destroy` or `backup`.
type subflowRequest struct {
	Token uint32
	// Local is the local address, with its port for destroy; its id,
	// flags (backup) and IfIndex (from Dev) are create's.
	Local  genl.Endpoint
	Remote netip.AddrPort
	Dev    string
	// IDSet says create was given the local id; without it, the id the
	// connection already knows the address by is used.
	IDSet bool
	// Backup is backup's on|off.
	Backup bool
}

// localPort returns the local address and port.
func (r subflowRequest) localPort() netip.AddrPort {
	return netip.AddrPortFrom(r.Local.Addr, r.Local.Port)
}

// parseHostPort parses ADDR or ADDR:PORT ([ADDR]:PORT for IPv6), what
// names it in messages; needPort makes the port required.
func parseHostPort(what, word string, needPort bool) (netip.Addr, uint16, error) {
	if ap, err := netip.ParseAddrPort(word); err == nil {
		if ap.Addr().Zone() != "" {
			return netip.Addr{}, 0, usagef("%s %q: zones are not supported, use dev", what, word)
		}
		if ap.Port() == 0 {
			return netip.Addr{}, 0, usagef("%s %q: port 0: give the port or leave it out", what, word)
		}
		return ap.Addr(), ap.Port(), nil
	}
	a, err := netip.ParseAddr(strings.Trim(word, "[]"))
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, 0, usagef("invalid %s %q: expected ADDR or ADDR:PORT ([ADDR]:PORT for IPv6)", what, word)
	}
	if needPort {
		return netip.Addr{}, 0, usagef("%s %q: the port is missing: expected ADDR:PORT ([ADDR]:PORT for IPv6)", what, word)
	}
	return a, 0, nil
}

// parseAnnounce parses the arguments of `connections announce`: TOKEN
// ADDR id N [port P] [dev IFNAME].
func parseAnnounce(args []string) (announceRequest, error) {
	var req announceRequest
	switch len(args) {
	case 0:
		return req, usagef("missing token: expected TOKEN ADDR id N [port P] [dev IFNAME]")
	case 1:
		return req, usagef("missing address: expected TOKEN ADDR id N [port P] [dev IFNAME]")
	}
	tok, err := parseToken(args[0])
	if err != nil {
		return req, err
	}
	req.Token = tok
	addr, err := parseAddr(args[1])
	if err != nil {
		return req, err
	}
	req.Endpoint = genl.Endpoint{Addr: addr, Flags: genl.FlagSignal}
	seen := map[string]bool{}
	for i := 2; i < len(args); i++ {
		w := args[i]
		if seen[w] {
			return req, usagef("%q given twice", w)
		}
		switch w {
		case "id":
			n, err := uintValue(args, i, 1, 255)
			if err != nil {
				return req, err
			}
			req.Endpoint.ID = uint8(n)
		case "port":
			n, err := uintValue(args, i, 1, 65535)
			if err != nil {
				return req, err
			}
			req.Endpoint.Port = uint16(n)
		case "dev":
			v, err := value(args, i, "interface name")
			if err != nil {
				return req, err
			}
			if !validIfName(v) {
				return req, usagef("dev %q: invalid interface name", v)
			}
			req.Dev = v
		default:
			return req, usagef("unknown word %q: expected %s", w, expected(announceWords))
		}
		seen[w] = true
		i++
	}
	if req.Endpoint.ID == 0 {
		// The kernel's "invalid addr id": the peer knows an address
		// by its id, and 0 is the initial subflow's.
		return req, usagef("missing id: an announced address needs an id 1..255, which the peer uses to withdraw it")
	}
	return req, nil
}

// parseRemove parses the arguments of `connections remove`: TOKEN id N.
func parseRemove(args []string) (uint32, uint8, error) {
	if len(args) == 0 {
		return 0, 0, usagef("missing token: expected TOKEN id N")
	}
	tok, err := parseToken(args[0])
	if err != nil {
		return 0, 0, err
	}
	switch {
	case len(args) == 1:
		return 0, 0, usagef("missing id: expected TOKEN id N")
	case args[1] != "id":
		return 0, 0, usagef("unknown word %q: expected id", args[1])
	case len(args) == 2:
		return 0, 0, usagef("id: missing value: expected a number 0..255")
	case len(args) > 3:
		return 0, 0, usagef("unexpected word %q: expected only TOKEN id N", args[3])
	}
	// Id 0 withdraws the initial subflow's address (Linux 6.7).
	n, err := parseUint("id", args[2], 0, 255)
	if err != nil {
		return 0, 0, err
	}
	return tok, uint8(n), nil
}

// parseSubflow parses TOKEN LOCAL REMOTE of the subflows commands, and
// what follows: for create [id N] [dev IFNAME] [backup]; for destroy
// nothing, with both ports required (the kernel finds the subflow by
// them); for backup on|off.
func parseSubflow(op string, args []string) (subflowRequest, error) {
	var req subflowRequest
	syntax := map[string]string{
		"create":  "TOKEN LOCAL REMOTE:PORT [id N] [dev IFNAME] [backup]",
		"destroy": "TOKEN LOCAL:PORT REMOTE:PORT",
		"backup":  "TOKEN LOCAL[:PORT] REMOTE[:PORT] on|off",
	}[op]
	names := []string{"token", "local address", "remote address"}
	if len(args) < 3 {
		return req, usagef("missing %s: expected %s", names[len(args)], syntax)
	}
	tok, err := parseToken(args[0])
	if err != nil {
		return req, err
	}
	req.Token = tok
	addr, port, err := parseHostPort("local address", args[1], op == "destroy")
	if err != nil {
		return req, err
	}
	if op == "create" && port != 0 {
		return req, usagef("local address %q: the kernel picks the local port of a new subflow; give the address alone", args[1])
	}
	req.Local = genl.Endpoint{Addr: addr, Port: port}
	raddr, rport, err := parseHostPort("remote address", args[2], op != "backup")
	if err != nil {
		return req, err
	}
	req.Remote = netip.AddrPortFrom(raddr, rport)
	if addr.Unmap().Is4() != raddr.Unmap().Is4() {
		return req, usagef("local %s and remote %s: the addresses must be of one family", addr, raddr)
	}
	rest := args[3:]
	switch op {
	case "destroy":
		if len(rest) > 0 {
			return req, usagef("unexpected word %q: expected only %s", rest[0], syntax)
		}
	case "backup":
		switch {
		case len(rest) == 0:
			return req, usagef("missing on|off: expected %s", syntax)
		case len(rest) > 1:
			return req, usagef("unexpected word %q: expected only %s", rest[1], syntax)
		case rest[0] != "on" && rest[0] != "off":
			return req, usagef("unknown word %q: expected on or off", rest[0])
		}
		req.Backup = rest[0] == "on"
	case "create":
		seen := map[string]bool{}
		for i := 0; i < len(rest); i++ {
			w := rest[i]
			if seen[w] {
				return req, usagef("%q given twice", w)
			}
			seen[w] = true
			switch w {
			case "backup":
				req.Local.Flags |= genl.FlagBackup
			case "id":
				n, err := uintValue(rest, i, 0, 255)
				if err != nil {
					return req, err
				}
				req.Local.ID, req.IDSet = uint8(n), true
				i++
			case "dev":
				v, err := value(rest, i, "interface name")
				if err != nil {
					return req, err
				}
				if !validIfName(v) {
					return req, usagef("dev %q: invalid interface name", v)
				}
				req.Dev = v
				i++
			default:
				return req, usagef("unknown word %q: expected %s", w, expected(subflowWords))
			}
		}
	}
	return req, nil
}
