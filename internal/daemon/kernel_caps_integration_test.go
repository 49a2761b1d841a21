//go:build linux

package daemon_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
)

// TestKernelCapabilities: the mptcpgod binary names every capability the
// kernel lacks at start, with the Linux release that brings it and what
// it does instead, in its log and in its status; it names none that the
// kernel has. The oracle is the kernel's release against the releases of
// docs/compatibility.md.
func TestKernelCapabilities(t *testing.T) {
	t.Parallel()
	h := netnstest.NewHost(t, "caps")
	sock := filepath.Join(t.TempDir(), "ctl.sock")
	path := writeConfig(t, "", fmt.Sprintf("mode = \"auto\"\n\n[control]\nsocket = %q\ngroup = \"\"\n\n[links]\ninclude_kinds = [\"virtual\"]\n", sock))
	p := run(t, h, path)
	log := p.Log()

	release := netnstest.KernelRelease()
	if !strings.Contains(log, `msg=kernel release=`+release) {
		t.Errorf("the log does not name the kernel release %s:\n%s", release, log)
	}
	var want []string
	for _, c := range genl.Capabilities {
		logged := false
		for line := range strings.Lines(log) {
			if strings.Contains(line, `msg="kernel lacks a capability"`) && strings.Contains(line, c.Name) &&
				strings.Contains(line, `since="Linux `+c.Since+`"`) {
				logged = true
			}
		}
		has := netnstest.KernelHas(c)
		if has == logged {
			t.Errorf("Linux %s: has %s (since %s) %v, logged as lacking it %v", release, c.ID, c.Since, has, logged)
		}
		if !has {
			want = append(want, c.ID)
			netnstest.Degraded(t, "%s missing (Linux %s): logged and in the status", c.Name, c.Since)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	var st *ctlapi.Status
	err := h.Do(func() error {
		var err error
		st, err = (&ctlapi.Client{Socket: sock}).Status(ctx)
		return err
	})
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	var got []string
	for _, c := range st.Kernel.Missing {
		got = append(got, c.ID)
		if c.Since == "" || c.Without == "" {
			t.Errorf("status: capability %+v without its release or what mptcpgod does", c)
		}
	}
	if st.Kernel.Release != release || !slices.Equal(got, want) {
		t.Errorf("status kernel = %s lacking %v, want %s lacking %v", st.Kernel.Release, got, release, want)
	}
}
