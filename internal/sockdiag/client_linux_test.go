//go:build linux

package sockdiag

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

func TestErrors(t *testing.T) {
	errMine := fmt.Errorf("caller: %w", unix.ENOENT)
	tests := []struct {
		name        string
		err         error
		unavailable bool
		notExist    bool
		same        error  // returned as is
		prefix      string // else the message starts with this
	}{
		{
			name:        "no MPTCP diag handler",
			err:         &netlink.OpError{Op: "receive", Err: unix.ENOENT},
			unavailable: true,
			prefix:      "sockdiag: MPTCP socket diag unavailable",
		},
		{
			name:   "other kernel error",
			err:    &netlink.OpError{Op: "receive", Err: unix.EPERM},
			prefix: "sockdiag: list MPTCP connections (IPv4): netlink receive:",
		},
		{
			name:     "callback error, even ENOENT",
			err:      callback{errMine},
			notExist: true,
			same:     errMine,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mptcpError(tt.err, "list MPTCP connections (%s)", "IPv4")
			if errors.Is(got, ErrUnavailable) != tt.unavailable {
				t.Errorf("errors.Is(%v, ErrUnavailable) = %v, want %v", got, !tt.unavailable, tt.unavailable)
			}
			if errors.Is(got, os.ErrNotExist) != tt.notExist {
				t.Errorf("errors.Is(%v, os.ErrNotExist) = %v, want %v", got, !tt.notExist, tt.notExist)
			}
			if tt.same != nil && got != tt.same {
				t.Errorf("got %v, want the callback's error as is", got)
			}
			if !strings.HasPrefix(got.Error(), tt.prefix) {
				t.Errorf("error %q, want prefix %q", got, tt.prefix)
			}
		})
	}

	nf := notFoundError{0xcafe}
	if !errors.Is(nf, os.ErrNotExist) || errors.Is(nf, ErrUnavailable) {
		t.Errorf("notFoundError: want os.ErrNotExist only")
	}
	if got, want := nf.Error(), "sockdiag: no MPTCP connection with token 0000cafe"; got != want {
		t.Errorf("notFoundError = %q, want %q", got, want)
	}
}
