package netnstest

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// ssDev matches the "%dev" suffix ss prints after an address bound to a
// device.
var ssDev = regexp.MustCompile(`%[A-Za-z0-9_.-]+`)

// SSRecords runs `ss -H -n ARGS` in the host, the independent oracle of the
// kernel's sockets, and returns each socket's lines joined by "\n": the
// address line, then its detail lines. It fails the test when ss fails.
func (h *Host) SSRecords(args ...string) []string {
	h.t.Helper()
	out := h.MustExec(append([]string{"ss", "-H", "-n"}, args...)...)
	var recs []string
	for line := range strings.Lines(out) {
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "":
		case line[0] == ' ' || line[0] == '\t':
			if len(recs) > 0 {
				recs[len(recs)-1] += "\n" + line
			}
		default:
			recs = append(recs, line)
		}
	}
	return recs
}

// SSAddrs returns the local and remote address of an SSRecords record:
// the last two fields of its first line, without "%dev", IPv4-mapped
// addresses unmapped.
func SSAddrs(rec string) (local, remote netip.AddrPort, err error) {
	first, _, _ := strings.Cut(rec, "\n")
	f := strings.Fields(first)
	if len(f) < 2 {
		return local, remote, fmt.Errorf("ss line %q: too few fields", first)
	}
	parse := func(s string) (netip.AddrPort, error) {
		ap, err := netip.ParseAddrPort(ssDev.ReplaceAllString(s, ""))
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), err
	}
	if local, err = parse(f[len(f)-2]); err != nil {
		return local, remote, err
	}
	remote, err = parse(f[len(f)-1])
	return local, remote, err
}
