package policytest

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mptcpgod/mptcpgod/policy"
)

// NetOpts compares netip values with ==: cmp cannot look into their
// unexported fields.
var NetOpts = cmpopts.EquateComparable(netip.Addr{}, netip.AddrPort{}, netip.Prefix{})

// Addr parses s, panicking when it is not an address.
func Addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// AddrPort parses s, panicking when it is not an address and port.
func AddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// ErrString returns err's text, or "" for nil, for comparing errors with
// the text a table wants.
func ErrString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Chain builds the chain of specs, in order, as the engine runs them,
// and fails the test when a spec is refused.
func Chain(t testing.TB, specs ...policy.Spec) *policy.Chain {
	t.Helper()
	c, err := policy.NewChain(specs)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
