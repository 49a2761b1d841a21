package genl_test

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"golang.org/x/sys/unix"
)

// TestEndpointErrors provokes every documented in-kernel PM error and
// checks the typed error: errno, the kernel's extack text, and the os
// sentinel where one applies. The texts are the live 6.18 kernel's.
func TestEndpointErrors(t *testing.T) {
	t.Parallel()
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			t.Parallel()
			tb := netnstest.NewTestbed(t, 1)
			h := tb.Client
			c := newClient(t, h)
			local := fam.client(tb.Links[0])
			addr := fam.docAddr
			add := func(eps ...genl.Endpoint) func(*testing.T) {
				return func(t *testing.T) {
					t.Helper()
					for _, ep := range eps {
						if err := c.AddEndpoint(ep); err != nil {
							t.Fatalf("setup: AddEndpoint(%+v): %v", ep, err)
						}
					}
				}
			}
			var eight []genl.Endpoint
			for i := 1; i <= genl.MaxLimit; i++ {
				eight = append(eight, genl.Endpoint{Addr: addr(i), Flags: genl.FlagSubflow})
			}
			nine := uint32(genl.MaxLimit + 1)
			tests := []struct {
				name     string
				setup    func(*testing.T)
				op       func() error
				errno    unix.Errno
				msg      string
				sentinel error
				// older are the answers of older kernels, oldest first.
				older []olderAnswer
			}{
				{
					name:     "duplicate address",
					setup:    add(genl.Endpoint{Addr: addr(1), Flags: genl.FlagSubflow}),
					op:       func() error { return c.AddEndpoint(genl.Endpoint{Addr: addr(1), Flags: genl.FlagSignal}) },
					errno:    unix.EEXIST,
					msg:      "too many addresses or duplicate one: -17",
					sentinel: os.ErrExist,
					older:    []olderAnswer{{6, 2, unix.EINVAL, "too many addresses or duplicate one", os.ErrExist}},
				},
				{
					name:     "id in use",
					setup:    add(genl.Endpoint{ID: 7, Addr: addr(1), Flags: genl.FlagSubflow}),
					op:       func() error { return c.AddEndpoint(genl.Endpoint{ID: 7, Addr: addr(2), Flags: genl.FlagSubflow}) },
					errno:    unix.EBUSY,
					msg:      "too many addresses or duplicate one: -16",
					sentinel: os.ErrExist,
					older:    []olderAnswer{{6, 2, unix.EINVAL, "too many addresses or duplicate one", os.ErrExist}},
				},
				{
					name:  "ninth endpoint",
					setup: add(eight...),
					op:    func() error { return c.AddEndpoint(genl.Endpoint{Addr: addr(9), Flags: genl.FlagSubflow}) },
					errno: unix.ERANGE,
					msg:   "too many addresses or duplicate one: -34",
					older: []olderAnswer{{6, 2, unix.EINVAL, "too many addresses or duplicate one", os.ErrExist}},
				},
				{
					name:  "port without signal",
					op:    func() error { return c.AddEndpoint(genl.Endpoint{Addr: local, Port: 20001, Flags: genl.FlagSubflow}) },
					errno: unix.EINVAL,
					msg:   "flags must have signal and not subflow when using port",
				},
				{
					name: "port with signal and subflow",
					op: func() error {
						return c.AddEndpoint(genl.Endpoint{Addr: local, Port: 20001, Flags: genl.FlagSignal | genl.FlagSubflow})
					},
					errno: unix.EINVAL,
					msg:   "flags must have signal and not subflow when using port",
				},
				{
					name:  "port on an address the host does not have",
					op:    func() error { return c.AddEndpoint(genl.Endpoint{Addr: addr(1), Port: 20001, Flags: genl.FlagSignal}) },
					errno: unix.EADDRNOTAVAIL,
					msg:   "create listen socket error: -99",
					older: []olderAnswer{{6, 2, unix.EADDRNOTAVAIL, "create listen socket error", nil}},
				},
				{
					name: "signal with fullmesh",
					op: func() error {
						return c.AddEndpoint(genl.Endpoint{Addr: addr(1), Flags: genl.FlagSignal | genl.FlagFullmesh})
					},
					errno: unix.EINVAL,
					msg:   "flags mustn't have both signal and fullmesh",
				},
				{
					name: "implicit",
					op: func() error {
						return c.AddEndpoint(genl.Endpoint{Addr: addr(1), Flags: genl.FlagSubflow | genl.FlagImplicit})
					},
					errno: unix.EINVAL,
					msg:   "can't create IMPLICIT endpoint",
				},
				{
					name:     "delete missing id",
					setup:    add(genl.Endpoint{ID: 1, Addr: addr(1), Flags: genl.FlagSubflow}),
					op:       func() error { return c.DelEndpoint(2) },
					errno:    unix.EINVAL,
					msg:      "address not found",
					sentinel: os.ErrNotExist,
				},
				{
					name:     "get missing id",
					setup:    add(genl.Endpoint{ID: 1, Addr: addr(1), Flags: genl.FlagSubflow}),
					op:       func() error { _, err := c.Endpoint(2); return err },
					errno:    unix.EINVAL,
					msg:      "address not found",
					sentinel: os.ErrNotExist,
				},
				{
					name:     "set flags of missing id",
					setup:    add(genl.Endpoint{ID: 1, Addr: addr(1), Flags: genl.FlagSubflow}),
					op:       func() error { return c.SetEndpointFlags(genl.Endpoint{ID: 2, Flags: genl.FlagBackup}) },
					errno:    unix.EINVAL,
					msg:      "address not found",
					sentinel: os.ErrNotExist,
					older:    []olderAnswer{{6, 9, unix.EINVAL, "", nil}},
				},
				{
					name:     "set flags of missing address",
					setup:    add(genl.Endpoint{ID: 1, Addr: addr(1), Flags: genl.FlagSubflow}),
					op:       func() error { return c.SetEndpointFlags(genl.Endpoint{Addr: addr(2), Flags: genl.FlagBackup}) },
					errno:    unix.EINVAL,
					msg:      "address not found",
					sentinel: os.ErrNotExist,
					older:    []olderAnswer{{6, 9, unix.EINVAL, "", nil}},
				},
				{
					name:  "fullmesh on a signal endpoint",
					setup: add(genl.Endpoint{ID: 1, Addr: addr(1), Flags: genl.FlagSignal}),
					op:    func() error { return c.SetEndpointFlags(genl.Endpoint{ID: 1, Flags: genl.FlagFullmesh}) },
					errno: unix.EINVAL,
					msg:   "invalid addr flags",
					older: []olderAnswer{{6, 9, unix.EINVAL, "", nil}},
				},
				{
					name:  "subflows limit above 8",
					op:    func() error { return c.SetLimits(genl.LimitsUpdate{Subflows: &nine}) },
					errno: unix.EINVAL,
					msg:   fmt.Sprintf("limit greater than maximum (%d)", genl.MaxLimit),
					older: []olderAnswer{{6, 15, unix.EINVAL, "limit greater than maximum", nil}},
				},
				{
					name:  "add_addr_accepted limit above 8",
					op:    func() error { return c.SetLimits(genl.LimitsUpdate{AddAddrAccepted: &nine}) },
					errno: unix.EINVAL,
					msg:   "limit greater than maximum (8)",
					older: []olderAnswer{{6, 15, unix.EINVAL, "limit greater than maximum", nil}},
				},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					if err := c.FlushEndpoints(); err != nil {
						t.Fatalf("FlushEndpoints: %v", err)
					}
					if tt.setup != nil {
						tt.setup(t)
					}
					before, err := c.Endpoints()
					if err != nil {
						t.Fatalf("Endpoints: %v", err)
					}
					limits, err := c.Limits()
					if err != nil {
						t.Fatalf("Limits: %v", err)
					}
					errno, msg, sentinel := tt.errno, tt.msg, tt.sentinel
					if o, ok := olderKernel(tt.older); ok {
						netnstest.Degraded(t, "before Linux %d.%d the kernel answers %v %q", o.major, o.minor, o.errno, o.msg)
						errno, msg, sentinel = o.errno, o.msg, o.sentinel
					}
					wantKernelError(t, tt.op(), errno, msg, sentinel)
					// A refused command changes nothing.
					checkEndpoints(t, h, c, before)
					if got, err := c.Limits(); err != nil || got != limits {
						t.Errorf("Limits after the error = %+v, %v; want %+v", got, err, limits)
					}
				})
			}
		})
	}
}

// TestEndpointBadInput checks the requests the client refuses before the
// kernel sees them: an error naming the field, not a *genl.Error, and the
// namespace unchanged.
func TestEndpointBadInput(t *testing.T) {
	t.Parallel()
	h := netnstest.NewHost(t, "badinput")
	c := newClient(t, h)
	if err := c.AddEndpoint(genl.Endpoint{ID: 1, Addr: families[0].docAddr(1), Flags: genl.FlagSubflow}); err != nil {
		t.Fatalf("AddEndpoint: %v", err)
	}
	want := ipEndpoints(t, h)
	tests := []struct {
		name string
		op   func() error
		text string // a part of the error naming the field
	}{
		{"set flags without id or address", func() error { return c.SetEndpointFlags(genl.Endpoint{Flags: genl.FlagBackup}) }, "ID"},
		{"delete id 0", func() error { return c.DelEndpoint(0) }, "id 0"},
		{"add without address", func() error { return c.AddEndpoint(genl.Endpoint{Flags: genl.FlagSubflow}) }, "Addr"},
		{"delete id 0 without address", func() error { return c.DelEndpointAddr(netip.Addr{}) }, "addr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.op()
			if err == nil {
				t.Fatal("got nil error")
			}
			var ge *genl.Error
			if errors.As(err, &ge) {
				t.Errorf("got kernel error %v, want the client to refuse the request", err)
			}
			if !strings.HasPrefix(err.Error(), "genl: ") || !strings.Contains(err.Error(), tt.text) {
				t.Errorf("error %q: want the prefix \"genl: \" and the field %q", err, tt.text)
			}
		})
	}
	if diff := cmp.Diff(want, ipEndpoints(t, h), cmpOpts); diff != "" {
		t.Errorf("endpoints changed (-want +got):\n%s", diff)
	}
}

// olderAnswer is what kernels before Linux major.minor answer to a
// command instead of the current errno and extack text.
type olderAnswer struct {
	major, minor int
	errno        unix.Errno
	msg          string
	sentinel     error
}

// olderKernel returns the answer of the running kernel among older, the
// oldest release boundary it is below, if any.
func olderKernel(older []olderAnswer) (olderAnswer, bool) {
	for _, o := range older {
		if !netnstest.KernelAtLeast(o.major, o.minor) {
			return o, true
		}
	}
	return olderAnswer{}, false
}
