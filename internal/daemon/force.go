package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"golang.org/x/sys/unix"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/daemon/ctlhttp"
	"github.com/mptcpgod/mptcpgod/internal/force"
	"github.com/mptcpgod/mptcpgod/internal/sockdiag"
	"github.com/mptcpgod/mptcpgod/internal/transparent/bpf"
)

// forceStateFile is the file, in the state directory, of the units forced
// with mptcpctl force unit.
const forceStateFile = "force.json"

// maxForceState bounds the state file.
const maxForceState = 1 << 20

// forceResync is how often the units' cgroups are looked at again besides
// the inotify events: for a slice directory that did not exist yet.
const forceResync = 2 * time.Second

// bpfDropIn is the fix for a daemon without the BPF capabilities.
const bpfDropIn = "install dist/mptcpgod-bpf.conf as /etc/systemd/system/mptcpgod.service.d/bpf.conf and restart mptcpgod (docs/install.md)"

// selector is what forcing changes: the BPF program's maps
// (*bpf.Selection).
type selector interface {
	AddCgroup(id uint64) error
	RemoveCgroup(id uint64) error
	AddUID(uid uint32) error
	RemoveUID(uid uint32) error
}

// forceState is the state file's content.
type forceState struct {
	Units []string `json:"units"`
}

// forcing keeps the BPF program's maps equal to the forced units' current
// cgroups and the forced uids: units of [force] and of the state file
// (mptcpctl force unit). The program is attached while something is
// forced. run follows the units' cgroups, which systemd re-creates, with
// a new id, at every start of a unit.
type forcing struct {
	log       *slog.Logger
	stateFile string
	// cgroupRoot is where the cgroup v2 hierarchy is mounted; slice
	// names a unit's slice (systemd's Slice property).
	cgroupRoot string
	slice      func(ctx context.Context, unit string) (string, error)
	// attach loads and attaches the program; probe tells whether it
	// could, without keeping it.
	attach func() (selector, io.Closer, error)
	probe  func() error
	// tcpSockets counts the plain TCP sockets (not MPTCP subflows) of
	// the cgroups ids, by id.
	tcpSockets func(ids map[uint64]bool) (map[uint64]int, error)
	// checks are run's checkEarly calls, which it waits for.
	checks sync.WaitGroup

	kick chan struct{} // one slot: sync again
	// synced is closed once run has synced the first time.
	synced chan struct{}

	mu       sync.Mutex
	cfg      ForceConfig
	runtime  []string // the state file's units
	sel      selector
	closer   io.Closer
	reason   string // why BPF is unavailable; "" when it is or is unknown
	probed   bool   // reason is known
	slices   map[string]string
	selected map[string]uint64 // unit → its cgroup id in the map
	uids     map[uint32]bool   // in the map
	watched  map[string]bool   // directories with an inotify watch
	inotify  *os.File
}

// newForcing prepares forcing with the [force] configuration and the
// state directory's file; nothing is attached until run syncs.
func newForcing(log *slog.Logger, cfg ForceConfig, stateDir string) (*forcing, error) {
	f := &forcing{
		log:       log.With("component", "force"),
		stateFile: filepath.Join(stateDir, forceStateFile),
		slice:     systemdSlice,
		attach: func() (selector, io.Closer, error) {
			fc, err := bpf.Attach()
			if err != nil {
				return nil, nil, err
			}
			return fc, fc, nil
		},
		probe:      bpf.Probe,
		tcpSockets: tcpSocketCounter(0),
		kick:       make(chan struct{}, 1),
		synced:     make(chan struct{}),
		cfg:        cfg,
		slices:     map[string]string{},
		selected:   map[string]uint64{},
		uids:       map[uint32]bool{},
		watched:    map[string]bool{},
	}
	var err error
	if f.runtime, err = f.load(); err != nil {
		return nil, err
	}
	return f, nil
}

// stateDir is the daemon's state directory: Options.StateDir, else
// systemd's $STATE_DIRECTORY, else /var/lib/mptcpgod.
func stateDir(opts Options) string {
	if opts.StateDir != "" {
		return opts.StateDir
	}
	if d, _, _ := strings.Cut(os.Getenv("STATE_DIRECTORY"), ":"); d != "" {
		return d
	}
	return "/var/lib/mptcpgod"
}

// load reads the state file; a missing one is no unit. A file that does
// not parse is renamed aside, logged, and read as no unit.
func (f *forcing) load() ([]string, error) {
	fd, err := unix.Open(f.stateFile, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("daemon: open %s: %w", f.stateFile, err)
	}
	file := os.NewFile(uintptr(fd), f.stateFile)
	defer file.Close()
	b, err := io.ReadAll(io.LimitReader(file, maxForceState+1))
	if err != nil {
		return nil, fmt.Errorf("daemon: read %s: %w", f.stateFile, err)
	}
	units, perr := parseForceState(b)
	if perr != nil {
		bad := f.stateFile + ".bad-" + time.Now().UTC().Format("20060102T150405Z")
		if err := os.Rename(f.stateFile, bad); err != nil {
			return nil, fmt.Errorf("daemon: %s: %v, and it cannot be moved aside: %w", f.stateFile, perr, err)
		}
		f.log.Error("the file of the units forced with mptcpctl does not parse; it was moved aside and no unit is forced from it",
			"file", f.stateFile, "moved_to", bad, "error", perr)
		return nil, nil
	}
	return units, nil
}

// parseForceState decodes the state file strictly and checks its units.
func parseForceState(b []byte) ([]string, error) {
	if len(b) > maxForceState {
		return nil, fmt.Errorf("larger than %d bytes", maxForceState)
	}
	var st forceState
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&st); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, errors.New("data after the JSON object")
	}
	var units []string
	for _, u := range st.Units {
		if err := force.CheckServiceName(u); err != nil {
			return nil, err
		}
		if slices.Contains(units, u) {
			return nil, fmt.Errorf("%q is listed twice", u)
		}
		units = append(units, u)
	}
	return units, nil
}

// save writes the state file atomically; f.mu is held.
func (f *forcing) save(units []string) error {
	b, err := json.MarshalIndent(forceState{Units: append([]string{}, units...)}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(f.stateFile), 0o750); err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.stateFile), forceStateFile+".tmp*")
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	_, err = tmp.Write(append(b, '\n'))
	err = errors.Join(err, tmp.Sync(), tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), f.stateFile)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("daemon: write %s: %w", f.stateFile, err)
	}
	return nil
}

// systemdSlice asks systemd for the service's Slice property, which its
// org.freedesktop.systemd1.Service interface has (the Unit interface
// does not: asking it fails with "Unknown interface ... or property").
func systemdSlice(ctx context.Context, unit string) (string, error) {
	conn, err := sddbus.NewSystemConnectionContext(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	p, err := conn.GetServicePropertyContext(ctx, unit, "Slice")
	if err != nil {
		return "", err
	}
	s, ok := p.Value.Value().(string)
	if !ok || s == "" {
		return "", fmt.Errorf("systemd gives %s no slice", unit)
	}
	return s, nil
}

// setConfig applies a reloaded [force] table.
func (f *forcing) setConfig(cfg ForceConfig) {
	f.mu.Lock()
	f.cfg = cfg
	f.mu.Unlock()
	f.poke()
}

// poke asks run to sync again.
func (f *forcing) poke() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// run syncs the maps at once, at every inotify event in the units'
// slices, at every poke, and every forceResync, until ctx is done; then
// it detaches the program.
func (f *forcing) run(ctx context.Context) error {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("daemon: inotify: %w", err)
	}
	in := os.NewFile(uintptr(fd), "inotify")
	f.mu.Lock()
	f.inotify = in
	f.mu.Unlock()
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, err := in.Read(buf); err != nil {
				return
			}
			f.poke()
		}
	}()
	defer func() {
		f.checks.Wait()
		f.mu.Lock()
		defer f.mu.Unlock()
		_ = in.Close()
		f.inotify = nil
		f.detach()
	}()
	tick := time.NewTicker(forceResync)
	defer tick.Stop()
	f.checkEarly(f.sync(ctx))
	close(f.synced)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-f.kick:
		case <-tick.C:
		}
		f.checkEarly(f.sync(ctx))
	}
}

// checkEarly warns of the plain TCP sockets that the units just selected
// (unit → cgroup directory) opened before they were: those stay TCP
// until the service opens them again. It counts off the caller's
// goroutine, so that a long sock_diag walk delays no selection.
func (f *forcing) checkEarly(fresh map[string]string) {
	if len(fresh) == 0 {
		return
	}
	f.checks.Go(func() { f.warnEarly(f.earlySockets(fresh)) })
}

// warnEarly logs each unit's count of TCP sockets opened before it was
// selected.
func (f *forcing) warnEarly(counts map[string]int) {
	for unit, n := range counts {
		f.log.Warn("a forced unit has TCP sockets it opened before it was forced; they stay TCP until it restarts",
			"unit", unit, "tcp_sockets", n, "fix", "systemctl restart "+unit)
	}
}

// earlySockets counts the plain TCP sockets of each unit's cgroup
// (unit → directory) and the cgroups below it; units without one are
// left out. A failed count is logged and counts nothing.
func (f *forcing) earlySockets(units map[string]string) map[string]int {
	owner := map[uint64]string{}
	ids := map[uint64]bool{}
	for unit, dir := range units {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			if id, err := bpf.CgroupID(p); err == nil {
				owner[id], ids[id] = unit, true
			}
			return nil
		})
	}
	counts, err := f.tcpSockets(ids)
	if err != nil {
		f.log.Warn("cannot count the forced units' TCP sockets", "error", err)
		return nil
	}
	out := map[string]int{}
	for id, n := range counts {
		if n > 0 && owner[id] != "" {
			out[owner[id]] += n
		}
	}
	return out
}

// tcpSocketCounter counts plain TCP sockets by cgroup id with sock_diag
// in the network namespace netns (0: the caller's).
func tcpSocketCounter(netns int) func(ids map[uint64]bool) (map[uint64]int, error) {
	return func(ids map[uint64]bool) (map[uint64]int, error) {
		c, err := sockdiag.Dial(&sockdiag.Config{NetNS: netns})
		if err != nil {
			return nil, err
		}
		defer c.Close()
		n := map[uint64]int{}
		err = c.TCPSockets(func(s *sockdiag.TCPSocket) error {
			if ids[s.CgroupID] {
				n[s.CgroupID]++
			}
			return nil
		})
		return n, err
	}
}

// units returns every forced unit with its source; f.mu is held.
func (f *forcing) units() []ctlapi.ForcedUnit {
	var out []ctlapi.ForcedUnit
	for _, u := range f.cfg.Units {
		out = append(out, ctlapi.ForcedUnit{Unit: u, Source: ctlapi.SourceConfig})
	}
	for _, u := range f.runtime {
		if !slices.Contains(f.cfg.Units, u) {
			out = append(out, ctlapi.ForcedUnit{Unit: u, Source: ctlapi.SourceControl})
		}
	}
	return out
}

// sync attaches the program when something is forced (detaches it when
// nothing is), and makes its maps hold the current cgroup of every forced
// unit and every forced uid. It returns the units whose cgroup it just
// selected, with its directory.
func (f *forcing) sync(ctx context.Context) (fresh map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	units := f.units()
	nothing := len(units) == 0 && len(f.cfg.UIDs) == 0
	if nothing && f.sel == nil {
		return nil
	}
	if f.sel == nil && !f.ensureAttached() {
		return nil
	}
	// With nothing forced, the maps are emptied below, then the program
	// detached.
	defer func() {
		if nothing {
			f.detach()
		}
	}()
	want := map[string]uint64{}
	dirs := map[string]string{}
	for _, u := range units {
		path := f.cgroupPath(ctx, u.Unit)
		if path == "" {
			continue
		}
		f.watch(filepath.Dir(path))
		id, err := bpf.CgroupID(path)
		switch {
		case err == nil:
			want[u.Unit], dirs[u.Unit] = id, path
		case !errors.Is(err, fs.ErrNotExist):
			f.log.Warn("cannot read a forced unit's cgroup", "unit", u.Unit, "cgroup", path, "error", err)
		}
	}
	for unit, id := range f.selected {
		if want[unit] != id {
			if err := f.sel.RemoveCgroup(id); err != nil {
				f.log.Warn("unforce cgroup", "unit", unit, "error", err)
				continue
			}
			delete(f.selected, unit)
		}
	}
	for unit, id := range want {
		if f.selected[unit] == id {
			continue
		}
		if err := f.sel.AddCgroup(id); err != nil {
			f.log.Warn("force cgroup", "unit", unit, "error", err)
			continue
		}
		f.selected[unit] = id
		f.log.Info("unit forced to MPTCP", "unit", unit, "cgroup_id", id)
		if fresh == nil {
			fresh = map[string]string{}
		}
		fresh[unit] = dirs[unit]
	}
	for uid := range f.uids {
		if !slices.Contains(f.cfg.UIDs, uid) {
			if err := f.sel.RemoveUID(uid); err == nil {
				delete(f.uids, uid)
			}
		}
	}
	for _, uid := range f.cfg.UIDs {
		if !f.uids[uid] {
			if err := f.sel.AddUID(uid); err != nil {
				f.log.Warn("force uid", "uid", uid, "error", err)
				continue
			}
			f.uids[uid] = true
		}
	}
	return fresh
}

// ensureAttached attaches the program; false, with f.reason set and
// logged, when it cannot. f.mu is held.
func (f *forcing) ensureAttached() bool {
	sel, closer, err := f.attach()
	if err != nil {
		reason := explain(err)
		if reason != f.reason {
			f.log.Warn("cannot force units with BPF", "reason", reason)
		}
		f.reason, f.probed = reason, true
		return false
	}
	f.sel, f.closer, f.reason, f.probed = sel, closer, "", true
	f.log.Info("BPF program attached", "hook", bpf.Hook)
	return true
}

// explain turns an Attach or Probe error into a reason with its fix.
func explain(err error) string {
	var ue *bpf.UnavailableError
	if errors.As(err, &ue) {
		switch ue.Step {
		case bpf.StepCapabilities:
			return ue.Reason + ": " + bpfDropIn
		default:
			return ue.Reason + "; mptcpctl force unit uses the drop-in (mptcpctl run) instead"
		}
	}
	return err.Error()
}

// detach closes the program; f.mu is held.
func (f *forcing) detach() {
	if f.closer == nil {
		return
	}
	if err := f.closer.Close(); err != nil {
		f.log.Warn("detach the BPF program", "error", err)
	}
	f.sel, f.closer = nil, nil
	clear(f.selected)
	clear(f.uids)
	f.log.Info("BPF program detached: nothing is forced")
}

// cgroupPath returns the absolute cgroup directory of unit, or "" when it
// cannot be known; f.mu is held.
func (f *forcing) cgroupPath(ctx context.Context, unit string) string {
	root := f.cgroupRoot
	if root == "" {
		r, err := bpf.CgroupRoot()
		if err != nil {
			f.log.Warn("cannot follow the forced units' cgroups", "error", err)
			return ""
		}
		f.cgroupRoot, root = r, r
	}
	slice, ok := f.slices[unit]
	if !ok {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		s, err := f.slice(qctx, unit)
		cancel()
		if err != nil {
			f.log.Warn("cannot ask systemd for a forced unit's slice; assuming system.slice", "unit", unit, "error", err)
			s = "system.slice"
		}
		f.slices[unit], slice = s, s
	}
	rel, err := force.CgroupPath(slice, unit)
	if err != nil {
		f.log.Warn("forced unit in a slice that has no cgroup path", "unit", unit, "slice", slice, "error", err)
		return ""
	}
	return filepath.Join(root, rel)
}

// watch adds an inotify watch on dir for subdirectories created and
// removed; a directory that does not exist is tried again at the next
// sync. f.mu is held.
func (f *forcing) watch(dir string) {
	if f.inotify == nil || f.watched[dir] {
		return
	}
	_, err := unix.InotifyAddWatch(int(f.inotify.Fd()), dir, unix.IN_CREATE|unix.IN_DELETE|unix.IN_MOVED_TO|unix.IN_ONLYDIR)
	if err == nil {
		f.watched[dir] = true
	}
}

// status returns what is forced and whether BPF runs, with the plain TCP
// sockets of the selected units, counted once f.mu is released; the first
// call with nothing attached probes the kernel.
func (f *forcing) status() ctlapi.Force {
	out, selected := f.statusLocked()
	if len(selected) == 0 {
		return out
	}
	counts := f.earlySockets(selected)
	for i, u := range out.Units {
		out.Units[i].TCPSockets = counts[u.Unit]
	}
	return out
}

// statusLocked is status without the counts, and the selected units'
// cgroup directories.
func (f *forcing) statusLocked() (ctlapi.Force, map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sel == nil && !f.probed {
		if err := f.probe(); err != nil {
			f.reason = explain(err)
		}
		f.probed = true
	}
	out := ctlapi.Force{BPF: ctlapi.Mechanism{Available: f.sel != nil || f.reason == "", Reason: f.reason},
		Units: []ctlapi.ForcedUnit{}, UIDs: append([]uint32{}, f.cfg.UIDs...)}
	selected := map[string]string{}
	for _, u := range f.units() {
		if path := f.cgroupPathCached(u.Unit); path != "" {
			u.Cgroup = path
			if id, err := bpf.CgroupID(path); err == nil {
				u.CgroupID = id
			}
		}
		_, u.Selected = f.selected[u.Unit]
		if u.Selected && u.Cgroup != "" {
			selected[u.Unit] = u.Cgroup
		}
		out.Units = append(out.Units, u)
	}
	return out, selected
}

// cgroupPathCached is cgroupPath without asking systemd; "" when the
// unit's slice is not known yet. f.mu is held.
func (f *forcing) cgroupPathCached(unit string) string {
	slice, ok := f.slices[unit]
	if !ok || f.cgroupRoot == "" {
		return ""
	}
	rel, err := force.CgroupPath(slice, unit)
	if err != nil {
		return ""
	}
	return filepath.Join(f.cgroupRoot, rel)
}

// forceUnit forces unit, or unforces it with off, in the state file, and
// syncs the maps.
func (f *forcing) forceUnit(ctx context.Context, unit string, off bool) (ctlapi.Force, error) {
	if err := force.CheckServiceName(unit); err != nil {
		return ctlapi.Force{}, fmt.Errorf("%w: %v", ctlhttp.ErrInvalid, err)
	}
	if err := f.changeUnit(unit, off); err != nil {
		return ctlapi.Force{}, err
	}
	// The answer counts the early sockets of every selected unit: the
	// warning takes the just selected one's from it, one walk for both.
	fresh := f.sync(ctx)
	st := f.status()
	counts := map[string]int{}
	for _, u := range st.Units {
		if _, ok := fresh[u.Unit]; ok && u.TCPSockets > 0 {
			counts[u.Unit] = u.TCPSockets
		}
	}
	f.warnEarly(counts)
	return st, nil
}

// changeUnit changes the state file's units.
func (f *forcing) changeUnit(unit string, off bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	inConfig, inState := slices.Contains(f.cfg.Units, unit), slices.Contains(f.runtime, unit)
	switch {
	case inConfig && off:
		return fmt.Errorf("%w: %s is forced by the configuration file ([force] units): remove it there and reload", ctlhttp.ErrConflict, unit)
	case inConfig:
		return fmt.Errorf("%w: %s is already forced by the configuration file ([force] units)", ctlhttp.ErrConflict, unit)
	case off && !inState:
		return fmt.Errorf("%w: %s is not forced", ctlhttp.ErrConflict, unit)
	case !off && inState:
		return fmt.Errorf("%w: %s is already forced", ctlhttp.ErrConflict, unit)
	}
	if !off && f.sel == nil && !f.ensureAttached() {
		return fmt.Errorf("%w: BPF: %s", ctlhttp.ErrUnavailable, f.reason)
	}
	next := append([]string{}, f.runtime...)
	if off {
		next = slices.DeleteFunc(next, func(u string) bool { return u == unit })
	} else {
		next = append(next, unit)
	}
	if err := f.save(next); err != nil {
		return err
	}
	f.runtime = next
	return nil
}
