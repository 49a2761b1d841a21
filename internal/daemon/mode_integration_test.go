//go:build linux

package daemon_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/daemon"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/policy"
)

// TestNew: mode "auto" follows net.mptcp.path_manager; an explicit mode
// that the sysctl contradicts is refused with the fix unless
// set_path_manager sets it; a namespace with MPTCP disabled is refused.
func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		sysctl   string // net.mptcp.path_manager before New
		disabled bool   // net.mptcp.enabled=0
		config   string
		mode     policy.Mode // want, when New succeeds
		after    string      // the sysctl after New
		err      string      // in New's error, when it fails
		fix      string      // the command the error suggests
	}{
		{name: "auto kernel", sysctl: "kernel", config: `mode = "auto"`, mode: policy.ModeKernel, after: "kernel"},
		{name: "auto userspace", sysctl: "userspace", config: `mode = "auto"`, mode: policy.ModeUserspace, after: "userspace"},
		{name: "kernel as the sysctl", sysctl: "kernel", config: `mode = "kernel"`, mode: policy.ModeKernel, after: "kernel"},
		{
			name: "userspace against the sysctl", sysctl: "kernel", config: `mode = "userspace"`, after: "kernel",
			err: `mode "userspace", but the path manager (net.mptcp.path_manager) is "kernel"`,
			fix: `"sysctl -w net.mptcp.path_manager=userspace"`,
		},
		{
			name: "set userspace", sysctl: "kernel", config: "mode = \"userspace\"\nset_path_manager = true",
			mode: policy.ModeUserspace, after: "userspace",
		},
		{
			name: "set kernel", sysctl: "userspace", config: "mode = \"kernel\"\nset_path_manager = true",
			mode: policy.ModeKernel, after: "kernel",
		},
		{name: "disabled", sysctl: "kernel", disabled: true, config: `mode = "auto"`, after: "kernel", err: "net.mptcp.enabled=0"},
	}
	// Before 6.15 the sysctl is pm_type, and the errors name it with its
	// numeric value.
	hasPathManager := netnstest.KernelHas(genl.CapPathManagerSysctl)
	readSysctl := func(h *netnstest.Host) string {
		if hasPathManager {
			return strings.TrimSpace(h.MustExec("cat", "/proc/sys/net/mptcp/path_manager"))
		}
		return map[string]string{"0": "kernel", "1": "userspace"}[strings.TrimSpace(h.MustExec("cat", "/proc/sys/net/mptcp/pm_type"))]
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if !hasPathManager && strings.Contains(tt.err, "net.mptcp.path_manager") {
				netnstest.Degraded(t, "no net.mptcp.path_manager (Linux %s): the error names net.mptcp.pm_type", genl.CapPathManagerSysctl.Since)
				tt.err = strings.Replace(tt.err, "net.mptcp.path_manager", "net.mptcp.pm_type", 1)
				tt.fix = `"sysctl -w net.mptcp.pm_type=1"`
			}
			h := netnstest.NewHost(t, "mode")
			h.SetPathManager(tt.sysctl)
			if tt.disabled {
				h.Sysctl("net.mptcp.enabled", "0")
			}
			cfg, err := daemon.Parse("test.toml", []byte(tt.config))
			if err != nil {
				t.Fatal(err)
			}
			d, err := daemon.New(cfg, daemon.Options{NetNS: h.NetNS()})
			switch {
			case tt.err != "":
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), tt.fix) {
					t.Errorf("New: %v, want an error saying %s and the fix %s", err, tt.err, tt.fix)
				}
				if tt.disabled && !errors.Is(err, genl.ErrUnavailable) {
					t.Errorf("New: %v does not match genl.ErrUnavailable", err)
				}
			case err != nil:
				t.Fatalf("New: %v", err)
			default:
				if d.Mode() != tt.mode {
					t.Errorf("Mode = %s, want %s", d.Mode(), tt.mode)
				}
				d.Close()
			}
			if got := readSysctl(h); got != tt.after {
				t.Errorf("path manager = %s after New, want %s", got, tt.after)
			}
		})
	}
}
