//go:build linux

package daemon_test

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/enginetest"
)

// limits returns the namespace's limits as iproute2 prints them
// ("add_addr_accepted 0 subflows 2"), and their values.
func limits(t *testing.T, h *netnstest.Host) (raw string, subflows, accepted int) {
	t.Helper()
	raw = strings.TrimSpace(h.MustExec("ip", "mptcp", "limits", "show"))
	f := strings.Fields(raw)
	for i := 0; i+1 < len(f); i += 2 {
		n, err := strconv.Atoi(f[i+1])
		if err != nil {
			t.Fatalf("ip mptcp limits show: %q", raw)
		}
		switch f[i] {
		case "subflows":
			subflows = n
		case "add_addr_accepted":
			accepted = n
		}
	}
	return raw, subflows, accepted
}

// TestKernelLimits: in kernel mode add_addr_accepted stays 0 (a higher
// value found is lowered) unless kernel.accept_announces trusts the peers'
// announces, and when the daemon stops on SIGTERM the kernel's limits are
// byte for byte what they were before it started.
func TestKernelLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		accept   bool
		found    []string // ip mptcp limits set ...
		accepted int      // while the daemon runs
	}{
		{name: "defaults", found: nil, accepted: 0},
		{name: "set by hand", found: []string{"subflows", "3", "add_addr_accepted", "4"}, accepted: 0},
		{name: "accept announces", accept: true, found: []string{"subflows", "1"}, accepted: 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tb := netnstest.NewTestbed(t, 1)
			if tt.found != nil {
				tb.Client.MustExec(append([]string{"ip", "mptcp", "limits", "set"}, tt.found...)...)
			}
			before, _, _ := limits(t, tb.Client)
			more := ""
			if tt.accept {
				more = "[kernel]\naccept_announces = true\n"
			}
			p := run(t, tb.Client, writeConfig(t, "", config("kernel", more)))
			waitEndpoints(t, tb.Client, tb.Links[0].Client4, tb.Links[0].Client6)
			enginetest.Poll(t, "the policy's limits", func() string {
				raw, subflows, accepted := limits(t, tb.Client)
				if subflows == 8 && accepted == tt.accepted {
					return ""
				}
				return fmt.Sprintf("%q", raw)
			})
			p.Signal(t, syscall.SIGTERM)
			if code := p.Wait(t); code != 0 {
				t.Fatalf("exit status after SIGTERM: %d", code)
			}
			if after, _, _ := limits(t, tb.Client); after != before {
				t.Errorf("limits after the daemon stopped:\n%s\nwant as before it started:\n%s", after, before)
			}
			if !strings.Contains(p.Log(), `msg="limits put back"`) {
				t.Errorf("the daemon did not log that it put the limits back:\n%s", p.Log())
			}
		})
	}
}
