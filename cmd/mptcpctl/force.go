package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/force"
	"github.com/mptcpgod/mptcpgod/internal/transparent"
	"github.com/mptcpgod/mptcpgod/internal/transparent/bpf"
)

// groupPrograms is the help group of the commands that make programs
// MPTCP.
const groupPrograms = "programs"

// Mechanisms of mptcpctl force.
const (
	mechAuto   = "auto"
	mechBPF    = "bpf"
	mechDropIn = "drop-in"
)

// forceEnv is what mptcpctl force touches outside the daemon; tests
// replace it.
type forceEnv struct {
	// systemdDir is where drop-ins are written: DIR/NAME.service.d/.
	systemdDir string
	// systemctl runs systemctl with args and returns its output.
	systemctl func(ctx context.Context, args ...string) (string, error)
	// euid is the effective uid.
	euid func() int
	// booted reports that systemd runs (sd_booted).
	booted func() bool
	// mptcpctl is this program's path, for the drop-in's ExecStart=.
	mptcpctl func() (string, error)
	// probe tells whether this kernel runs the BPF mechanism (bpf.Probe),
	// for force status when the daemon cannot say.
	probe func() error
	// runProbe tells whether mptcpctl run works here (transparent.Probe):
	// a drop-in runs the service through it.
	runProbe func() error
}

// defaultForceEnv is the real system's.
func defaultForceEnv() forceEnv {
	return forceEnv{
		systemdDir: "/etc/systemd/system",
		systemctl: func(ctx context.Context, args ...string) (string, error) {
			cmd := exec.CommandContext(ctx, "systemctl", args...)
			cmd.Env = append(os.Environ(), "SYSTEMD_COLORS=0", "SYSTEMD_PAGER=")
			out, err := cmd.CombinedOutput()
			if err != nil {
				return string(out), fmt.Errorf("systemctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
			}
			return string(out), nil
		},
		euid: os.Geteuid,
		booted: func() bool {
			fi, err := os.Stat("/run/systemd/system")
			return err == nil && fi.IsDir()
		},
		mptcpctl: func() (string, error) {
			p, err := os.Executable()
			if err != nil {
				return "", err
			}
			return filepath.EvalSymlinks(p)
		},
		probe:    bpf.Probe,
		runProbe: transparent.Probe,
	}
}

func (a *app) forceCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "force",
		Short: "Make systemd services use Multipath TCP without changing them",
		Long: `Make a systemd service's TCP sockets Multipath TCP, with no change to its
program: every socket(AF_INET or AF_INET6, SOCK_STREAM, 0 or IPPROTO_TCP) its
processes make opens an MPTCP socket instead.

Two mechanisms do it, chosen automatically:

  bpf      the mptcpgod daemon's BPF program on the kernel's
           update_socket_protocol selects the unit's cgroup (Linux 6.6 or
           later, a kernel that allows BPF tracing programs, and the daemon's
           BPF capabilities: dist/mptcpgod-bpf.conf). No per-call cost; the
           daemon follows the unit across restarts.
  drop-in  a systemd drop-in runs the service's own ExecStart= command lines
           through "mptcpctl run", keeping its type, PID and notifications.

"mptcpctl force status" lists what is forced, by which mechanism, and why the
other one is unavailable.`,
		Args: subcommandArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(a.forceUnitCmd(), a.forceStatusCmd())
	return cmd
}

func (a *app) forceUnitCmd() *cobra.Command {
	var off, now bool
	var mechanism string
	cmd := &cobra.Command{
		Use:   "unit NAME.service",
		Short: "Make a service's TCP sockets MPTCP, or stop with --off",
		Long: `Make the systemd service NAME.service use Multipath TCP for its TCP sockets, or,
with --off, stop.

With the bpf mechanism (the default when the daemon runs and the kernel allows
it), the daemon adds the unit to its BPF program's selection and keeps it
across restarts of the unit and of the daemon (in its state directory; units
of the configuration's [force] units are forced the same way and are changed
there, not here). New sockets of the unit's processes are MPTCP at once;
sockets opened before stay TCP until the service reopens them: --now restarts
it.

With the drop-in mechanism, mptcpctl writes
/etc/systemd/system/NAME.service.d/zz-mptcpgod-force.conf, which resets
ExecStart= and runs each of the service's ExecStart= command lines through
"mptcpctl run --", with its prefixes, quoting, specifiers and variables as
written, then runs systemctl daemon-reload. The service keeps its Type=, its
main PID and its notification socket. The change applies at the next start:
--now restarts the service if it runs. A command line with @ (its own
argv[0]) or | (a shell command line) is refused.

--off removes what force unit did, by whichever mechanism.

Needs root. Bad input (not a .service, a unit systemd does not know, a unit
already forced or not forced) is an error that changes nothing.`,
		Example: "  sudo mptcpctl force unit nginx.service\n" +
			"  sudo mptcpctl force unit --now nginx.service\n" +
			"  sudo mptcpctl force unit --mechanism drop-in nginx.service\n" +
			"  sudo mptcpctl force unit --off nginx.service",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("expected one unit, NAME.service; got %d words", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			switch mechanism {
			case mechAuto, mechBPF, mechDropIn:
			default:
				return usagef("--mechanism %q: expected auto, bpf or drop-in", mechanism)
			}
			if err := force.CheckServiceName(args[0]); err != nil {
				return usagef("%v", err)
			}
			if off && mechanism != mechAuto {
				return usagef("--off takes no --mechanism: it undoes whichever forced the unit")
			}
			if off {
				return a.unforce(cmd.Context(), args[0], now)
			}
			return a.force(cmd.Context(), args[0], mechanism, now)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&off, "off", false, "stop forcing the unit")
	f.BoolVar(&now, "now", false, "restart the service (if it runs) so that all its sockets are reopened")
	f.StringVar(&mechanism, "mechanism", mechAuto, "`auto`, bpf or drop-in")
	return cmd
}

// forceError is a refusal of mptcpctl force, exit status 1.
func forceError(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return &refusedError{msg: msg, err: errors.New(msg)}
}

// unitInfo is what systemctl show says of a unit.
type unitInfo struct {
	loadState, fragment string
	dropIns             []string
	activeState         string
}

// showUnit asks systemd about unit; a unit systemd does not know is an
// error.
func (a *app) showUnit(ctx context.Context, unit string) (unitInfo, error) {
	out, err := a.forceEnv.systemctl(ctx, "show", "--no-pager",
		"-p", "LoadState", "-p", "FragmentPath", "-p", "DropInPaths", "-p", "ActiveState", "--", unit)
	if err != nil {
		return unitInfo{}, forceError("%v", err)
	}
	var ui unitInfo
	for _, line := range strings.Split(out, "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "LoadState":
			ui.loadState = v
		case "FragmentPath":
			ui.fragment = v
		case "DropInPaths":
			ui.dropIns = strings.Fields(v)
		case "ActiveState":
			ui.activeState = v
		}
	}
	switch ui.loadState {
	case "loaded":
		return ui, nil
	case "not-found", "":
		return ui, forceError("unit %s not found: systemctl show says LoadState=%s", unit, ui.loadState)
	}
	return ui, forceError("unit %s is %s, not loaded", unit, ui.loadState)
}

// dropInPath is the drop-in of unit.
func (a *app) dropInPath(unit string) string {
	return filepath.Join(a.forceEnv.systemdDir, unit+".d", force.DropInName)
}

// needRoot refuses unless mptcpctl runs as root.
func (a *app) needRoot(what string) error {
	if a.forceEnv.euid() != 0 {
		return forceError("%s needs root: try sudo", what)
	}
	return nil
}

// daemonForce asks the daemon what it forces; the error says why BPF
// cannot be had through it.
func (a *app) daemonForce(ctx context.Context) (*ctlapi.Force, error) {
	f, err := ask(ctx, a, (*ctlapi.Client).Force)
	if err == nil {
		return f, nil
	}
	if errors.Is(err, ctlapi.ErrNotRunning) {
		return nil, fmt.Errorf("mptcpgod is not running (start it with: %s), and the BPF mechanism is its", startHint)
	}
	if errors.Is(err, ctlapi.ErrNotFound) {
		return nil, errors.New("this mptcpgod does not force units (an older version)")
	}
	return nil, err
}

// forcedBy returns how unit is forced now: "drop-in", "bpf" or "", with
// the daemon's view (nil when unreachable).
func (a *app) forcedBy(ctx context.Context, unit string) (string, *ctlapi.ForcedUnit, *ctlapi.Force, error) {
	df, derr := a.daemonForce(ctx)
	if _, err := os.Lstat(a.dropInPath(unit)); err == nil {
		return mechDropIn, nil, df, derr
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", nil, df, forceError("%v", err)
	}
	if df != nil {
		for i := range df.Units {
			if df.Units[i].Unit == unit {
				return mechBPF, &df.Units[i], df, nil
			}
		}
	}
	return "", nil, df, derr
}

// force forces unit with mechanism.
func (a *app) force(ctx context.Context, unit, mechanism string, now bool) error {
	if err := a.needRoot("forcing a unit"); err != nil {
		return err
	}
	ui, err := a.showUnit(ctx, unit)
	if err != nil {
		return err
	}
	by, fu, df, derr := a.forcedBy(ctx, unit)
	switch {
	case by == mechDropIn:
		return forceError("%s is already forced, with the drop-in %s", unit, a.dropInPath(unit))
	case by == mechBPF:
		return forceError("%s is already forced, with BPF (%s)", unit, sourceText(fu.Source))
	}
	bpfOK := df != nil && df.BPF.Available
	if mechanism == mechAuto {
		mechanism = mechDropIn
		if bpfOK {
			mechanism = mechBPF
		}
	}
	if mechanism == mechBPF {
		if !bpfOK {
			return forceError("the BPF mechanism is unavailable: %s", bpfReason(df, derr))
		}
		f, err := ask(ctx, a, func(c *ctlapi.Client, ctx context.Context) (*ctlapi.Force, error) {
			return c.ForceUnit(ctx, unit, false)
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "%s forced to MPTCP with BPF: its new TCP sockets are MPTCP\n", unit)
		without := "sockets it opened before stay TCP until it reopens them"
		for _, u := range f.Units {
			if u.Unit == unit && u.TCPSockets > 0 {
				without = fmt.Sprintf("the TCP sockets it opened before (%d now) stay TCP until it reopens them", u.TCPSockets)
			}
		}
		return a.restartAfter(ctx, unit, ui, now, without)
	}
	if reason := a.dropInUnavailable(); reason != "" {
		return forceError("the drop-in mechanism is unavailable: %s", reason)
	}
	if err := a.writeDropIn(ctx, unit, ui); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "%s forced to MPTCP with the drop-in %s (its ExecStart= runs through mptcpctl run)\n", unit, a.dropInPath(unit))
	return a.restartAfter(ctx, unit, ui, now, "the change applies when it next starts")
}

// writeDropIn reads unit's files, writes the drop-in and reloads systemd;
// on any error nothing is left written.
func (a *app) writeDropIn(ctx context.Context, unit string, ui unitInfo) error {
	if ui.fragment == "" {
		return forceError("%s has no unit file (a transient or generated unit): it cannot be forced with a drop-in", unit)
	}
	var files []force.UnitFile
	for _, p := range append([]string{ui.fragment}, ui.dropIns...) {
		b, err := os.ReadFile(p)
		if err != nil {
			return forceError("read %s's unit: %v", unit, err)
		}
		files = append(files, force.UnitFile{Path: p, Data: b})
	}
	lines, err := force.ExecStarts(files)
	if err != nil {
		return forceError("%s: %v", unit, err)
	}
	self, err := a.forceEnv.mptcpctl()
	if err != nil {
		return forceError("cannot find mptcpctl's own path for the drop-in: %v", err)
	}
	data, err := force.DropIn(unit, lines, self)
	if err != nil {
		return forceError("%v", err)
	}
	path := a.dropInPath(unit)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return forceError("%v", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+force.DropInName+".*")
	if err != nil {
		return forceError("%v", err)
	}
	_, err = tmp.Write(data)
	err = errors.Join(err, tmp.Chmod(0o644), tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return forceError("write %s: %v", path, err)
	}
	if _, err := a.forceEnv.systemctl(ctx, "daemon-reload"); err != nil {
		_ = os.Remove(path)
		return forceError("%v (the drop-in was removed again)", err)
	}
	return nil
}

// restartAfter restarts unit with --now when it runs, or says what a
// restart would do.
func (a *app) restartAfter(ctx context.Context, unit string, ui unitInfo, now bool, without string) error {
	switch {
	case ui.activeState != "active" && ui.activeState != "activating" && ui.activeState != "reloading":
		fmt.Fprintf(a.stdout, "%s is %s: the change applies when it starts\n", unit, ui.activeState)
		return nil
	case !now:
		fmt.Fprintf(a.stdout, "%s runs: %s; restart it with: systemctl restart %s (or --now)\n", unit, without, unit)
		return nil
	}
	if _, err := a.forceEnv.systemctl(ctx, "try-restart", "--", unit); err != nil {
		return forceError("%v", err)
	}
	fmt.Fprintf(a.stdout, "%s restarted\n", unit)
	return nil
}

// unforce undoes force unit.
func (a *app) unforce(ctx context.Context, unit string, now bool) error {
	if err := a.needRoot("unforcing a unit"); err != nil {
		return err
	}
	by, fu, _, _ := a.forcedBy(ctx, unit)
	switch by {
	case "":
		return forceError("%s is not forced (no drop-in %s, and the daemon does not force it)", unit, a.dropInPath(unit))
	case mechBPF:
		if fu.Source == ctlapi.SourceConfig {
			return forceError("%s is forced by the daemon's configuration ([force] units): remove it there and run mptcpctl reload", unit)
		}
		if _, err := ask(ctx, a, func(c *ctlapi.Client, ctx context.Context) (*ctlapi.Force, error) {
			return c.ForceUnit(ctx, unit, true)
		}); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "%s no longer forced: its new TCP sockets are TCP\n", unit)
	case mechDropIn:
		path := a.dropInPath(unit)
		if err := os.Remove(path); err != nil {
			return forceError("%v", err)
		}
		_ = os.Remove(filepath.Dir(path)) // only when empty
		if _, err := a.forceEnv.systemctl(ctx, "daemon-reload"); err != nil {
			return forceError("%v", err)
		}
		fmt.Fprintf(a.stdout, "%s no longer forced: removed %s\n", unit, path)
	}
	ui, err := a.showUnit(ctx, unit)
	if err != nil {
		return err
	}
	return a.restartAfter(ctx, unit, ui, now, "its sockets stay MPTCP until it restarts")
}

// sourceText says where a BPF-forced unit comes from.
func sourceText(source string) string {
	if source == ctlapi.SourceConfig {
		return "the daemon's configuration, [force] units"
	}
	return "mptcpctl force unit"
}

// bpfReason says why BPF is unavailable.
func bpfReason(df *ctlapi.Force, derr error) string {
	switch {
	case derr != nil:
		var re *refusedError
		if errors.As(derr, &re) {
			return re.msg
		}
		return derr.Error()
	case df != nil && df.BPF.Reason != "":
		return df.BPF.Reason
	}
	return "unknown"
}

// forceStatus is mptcpctl force status's answer (--json).
type forceStatus struct {
	// Units are the forced units.
	Units []forceStatusUnit `json:"units"`
	// UIDs are the users the daemon forces ([force] uids).
	UIDs []uint32 `json:"uids"`
	// Mechanisms say which mechanism is available, and why not.
	Mechanisms struct {
		BPF    ctlapi.Mechanism `json:"bpf"`
		DropIn ctlapi.Mechanism `json:"drop_in"`
	} `json:"mechanisms"`
}

// forceStatusUnit is one forced unit.
type forceStatusUnit struct {
	Unit string `json:"unit"`
	// Mechanism is "bpf" or "drop-in".
	Mechanism string `json:"mechanism"`
	// Source is, for bpf, "config" or "mptcpctl"; for drop-in, the
	// drop-in's path.
	Source string `json:"source"`
	// Cgroup, CgroupID, Selected and TCPSockets are the daemon's (bpf).
	Cgroup     string `json:"cgroup,omitempty"`
	CgroupID   uint64 `json:"cgroup_id,omitempty"`
	Selected   bool   `json:"selected,omitempty"`
	TCPSockets int    `json:"tcp_sockets,omitempty"`
}

func (a *app) forceStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "List the forced services, by mechanism, and what is available",
		Long: `List the services made MPTCP: those the daemon forces with BPF (from its
[force] units or mptcpctl force unit, with their cgroup, whether it is in the
BPF program's selection now and how many TCP sockets the service opened before
it was, which stay TCP until it restarts) and those forced with a drop-in (the
drop-ins /etc/systemd/system/*.service.d/zz-mptcpgod-force.conf), then whether
each mechanism is available here and, when not, why: a kernel that refuses BPF
tracing programs, a daemon without the BPF capabilities, a daemon that does not
run, no systemd, a kernel on which mptcpctl run cannot work (the drop-in's).

With --json: {"units": [{"unit", "mechanism", "source", "cgroup", "cgroup_id",
"selected", "tcp_sockets"}], "uids": [...], "mechanisms": {"bpf": {"available",
"reason"}, "drop_in": {"available", "reason"}}}.`,
		Example: "  mptcpctl force status\n  mptcpctl force status --json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.forceStatus(cmd.Context())
			if err != nil {
				return err
			}
			if a.json {
				return writeJSON(a.stdout, st)
			}
			return writeForceStatus(a.stdout, st)
		},
	}
}

// forceStatus gathers the daemon's and the drop-ins' forced units.
func (a *app) forceStatus(ctx context.Context) (*forceStatus, error) {
	st := &forceStatus{Units: []forceStatusUnit{}, UIDs: []uint32{}}
	df, derr := a.daemonForce(ctx)
	if df != nil {
		st.Mechanisms.BPF = df.BPF
		st.UIDs = append(st.UIDs, df.UIDs...)
		for _, u := range df.Units {
			st.Units = append(st.Units, forceStatusUnit{Unit: u.Unit, Mechanism: mechBPF, Source: u.Source,
				Cgroup: u.Cgroup, CgroupID: u.CgroupID, Selected: u.Selected, TCPSockets: u.TCPSockets})
		}
	} else {
		st.Mechanisms.BPF = ctlapi.Mechanism{Reason: bpfReason(nil, derr)}
		if a.forceEnv.euid() == 0 {
			if err := a.forceEnv.probe(); err != nil {
				st.Mechanisms.BPF.Reason += "; besides, " + err.Error()
			} else {
				st.Mechanisms.BPF.Reason += "; this kernel allows it"
			}
		}
	}
	paths, err := filepath.Glob(filepath.Join(a.forceEnv.systemdDir, "*.service.d", force.DropInName))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	for _, p := range paths {
		unit := strings.TrimSuffix(filepath.Base(filepath.Dir(p)), ".d")
		st.Units = append(st.Units, forceStatusUnit{Unit: unit, Mechanism: mechDropIn, Source: p})
	}
	st.Mechanisms.DropIn.Reason = a.dropInUnavailable()
	st.Mechanisms.DropIn.Available = st.Mechanisms.DropIn.Reason == ""
	return st, nil
}

// dropInUnavailable says why the drop-in mechanism cannot work here, or
// "" when it can: it needs systemd, and the service's commands run
// through mptcpctl run, which needs seccomp user notification.
func (a *app) dropInUnavailable() string {
	if !a.forceEnv.booted() {
		return "systemd is not running (no /run/systemd/system)"
	}
	if err := a.forceEnv.runProbe(); err != nil {
		var ue *transparent.UnavailableError
		if errors.As(err, &ue) {
			return "mptcpctl run cannot work here: " + ue.Reason
		}
		return "mptcpctl run cannot work here: " + err.Error()
	}
	return ""
}

// writeForceStatus prints the forced units and the mechanisms.
func writeForceStatus(w io.Writer, st *forceStatus) error {
	if len(st.Units) == 0 {
		fmt.Fprintln(w, "no unit is forced")
	} else {
		t := newTable(w)
		fmt.Fprintln(t, "UNIT\tMECHANISM\tSOURCE\tSTATE")
		for _, u := range st.Units {
			state := "-"
			if u.Mechanism == mechBPF {
				state = "not running"
				if u.Selected {
					state = fmt.Sprintf("selected (cgroup %d)", u.CgroupID)
					if u.TCPSockets > 0 {
						state += fmt.Sprintf("; TCP sockets opened before, TCP until it restarts: %d", u.TCPSockets)
					}
				} else if u.CgroupID != 0 {
					state = "running, not selected"
				}
			}
			fmt.Fprintf(t, "%s\t%s\t%s\t%s\n", u.Unit, u.Mechanism, u.Source, state)
		}
		if err := t.Flush(); err != nil {
			return err
		}
	}
	if len(st.UIDs) > 0 {
		var uids []string
		for _, u := range st.UIDs {
			uids = append(uids, fmt.Sprint(u))
		}
		fmt.Fprintf(w, "users forced with BPF: %s\n", strings.Join(uids, ", "))
	}
	mech := func(name string, m ctlapi.Mechanism) {
		if m.Available {
			fmt.Fprintf(w, "%s: available\n", name)
		} else {
			fmt.Fprintf(w, "%s: unavailable: %s\n", name, m.Reason)
		}
	}
	fmt.Fprintln(w)
	mech("bpf", st.Mechanisms.BPF)
	mech("drop-in", st.Mechanisms.DropIn)
	return nil
}
