package main

import (
	"cmp"
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
)

// topSortKey is how top sorts connections.
type topSortKey int

// Sort keys, in the order the s key cycles through them.
const (
	sortRate     topSortKey = iota // in + out, fastest first
	sortBytes                      // in + out so far, most first
	sortAge                        // oldest first
	sortSubflows                   // most first
	sortPeer                       // remote address and port
	sortToken                      // token
	sortKeys
)

var sortNames = [sortKeys]string{"rate", "bytes", "age", "subflows", "peer", "token"}

// String returns the key's name, as --sort takes it.
func (k topSortKey) String() string {
	if k >= 0 && k < sortKeys {
		return sortNames[k]
	}
	return "sort(" + strconv.Itoa(int(k)) + ")"
}

// parseSortKey parses --sort.
func parseSortKey(s string) (topSortKey, error) {
	for k, n := range sortNames {
		if n == s {
			return topSortKey(k), nil
		}
	}
	return 0, usagef("--sort %q: expected %s", s, expected(sortNames[:]))
}

// arrange returns the snapshot with the connections the settings' filter
// keeps, in their order; the snapshot is left as it is. A snapshot's
// opened connection is kept only if it is still the one open.
func arrange(snap *topFrame, set topSettings) *topFrame {
	f := *snap
	f.Settings = set
	if f.Detail != nil && f.Detail.Token != set.Open {
		f.Detail = nil
	}
	idx := make([]int32, 0, len(snap.Conns))
	for i := range snap.Conns {
		if set.Filter.match(&snap.Conns[i], snap.LinkNames) {
			idx = append(idx, int32(i))
		}
	}
	slices.SortFunc(idx, func(x, y int32) int { return set.compare(&snap.Conns[x], &snap.Conns[y]) })
	f.Conns = make([]topConnRow, len(idx))
	for i, j := range idx {
		f.Conns[i] = snap.Conns[j]
	}
	return &f
}

// compare orders two connections as the settings sort them; equal keys go
// by token, so that rows keep their places between refreshes.
func (set topSettings) compare(x, y *topConnRow) int {
	var c int
	switch set.Sort {
	case sortRate:
		c = cmp.Compare(y.RateIn+y.RateOut, x.RateIn+x.RateOut)
	case sortBytes:
		c = cmp.Compare(y.In+y.Out, x.In+x.Out)
	case sortAge:
		c = x.FirstSeen.Compare(y.FirstSeen)
	case sortSubflows:
		c = cmp.Compare(y.Subflows, x.Subflows)
	case sortPeer:
		c = x.Remote.Compare(y.Remote)
	case sortToken:
		c = cmp.Compare(x.Token, y.Token)
	}
	if set.Reverse {
		c = -c
	}
	return cmp.Or(c, cmp.Compare(x.Token, y.Token))
}

// topFilter selects connections: every term must match.
type topFilter struct {
	text  string
	terms []filterTerm
}

// filterTerm is one word of a filter.
type filterTerm struct {
	// peer, when valid, must hold the remote address; port, when not 0,
	// must be the local or the remote port; link, when set, is a glob one
	// of the connection's links must match, or (any) a token prefix.
	peer netip.Prefix
	port uint16
	link string
	any  bool
}

// String returns the filter as the user wrote it.
func (f topFilter) String() string { return f.text }

// parseFilter parses a filter: words separated by spaces, each one of
// peer:ADDRESS, peer:PREFIX, port:N, link:NAME (a glob such as eth*), or
// a bare word: an address or prefix is a peer, a number a port, anything
// else a link name or the start of a token.
func parseFilter(s string) (topFilter, error) {
	f := topFilter{text: strings.Join(strings.Fields(s), " ")}
	for w := range strings.FieldsSeq(s) {
		key, val, keyed := strings.Cut(w, ":")
		if keyed && strings.Count(w, ":") > 1 {
			// An IPv6 address or prefix, not key:value.
			key, val, keyed = "", w, false
		}
		if !keyed {
			val = w
		}
		var t filterTerm
		switch {
		case keyed && key == "peer":
			p, err := ctlapi.ParsePeer(val)
			if err != nil {
				return topFilter{}, fmt.Errorf("filter %q: peer %q: not an address or a prefix such as 203.0.113.0/24", w, val)
			}
			t.peer = p
		case keyed && key == "port":
			p, err := strconv.ParseUint(val, 10, 16)
			if err != nil || p == 0 {
				return topFilter{}, fmt.Errorf("filter %q: port %q: expected a number from 1 to 65535", w, val)
			}
			t.port = uint16(p)
		case keyed && key == "link":
			if _, err := path.Match(val, ""); err != nil || val == "" {
				return topFilter{}, fmt.Errorf("filter %q: link %q: expected an interface name or a glob such as eth*", w, val)
			}
			t.link = val
		case keyed:
			return topFilter{}, fmt.Errorf("filter %q: unknown key %q: expected peer, port or link", w, key)
		default:
			if p, err := ctlapi.ParsePeer(val); err == nil {
				t.peer = p
			} else if n, err := strconv.ParseUint(val, 10, 16); err == nil && n > 0 {
				t.port = uint16(n)
			} else if _, err := path.Match(val, ""); err == nil {
				t.link, t.any = val, true
			} else {
				return topFilter{}, fmt.Errorf("filter %q: not an address, a prefix, a port, a link or a token", w)
			}
		}
		f.terms = append(f.terms, t)
	}
	return f, nil
}

// match reports whether the filter keeps the connection; names are the
// links by index.
func (f topFilter) match(r *topConnRow, names map[int32]string) bool {
	for _, t := range f.terms {
		if !t.match(r, names) {
			return false
		}
	}
	return true
}

func (t filterTerm) match(r *topConnRow, names map[int32]string) bool {
	switch {
	case t.peer.IsValid():
		return t.peer.Contains(r.Remote.Addr().Unmap())
	case t.port != 0:
		return r.Remote.Port() == t.port || r.Local.Port() == t.port
	}
	for _, idx := range r.Links[:r.NLinks] {
		if ok, _ := path.Match(t.link, names[idx]); ok {
			return true
		}
	}
	return t.any && strings.HasPrefix(formatToken(r.Token), strings.ToLower(t.link))
}
