package compat

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
)

// HostTool is a program of this machine the tests run, copied into the
// guests with its shared libraries.
type HostTool struct {
	Name string
	// Package is the Debian package that brings it.
	Package string
}

// HostTools are the dynamically linked programs the tests run: iproute2
// is the tests' independent oracle (ip, ss, tc, genl, nstat), setpriv
// drops privileges for the permission tests, and nft counts what a host
// receives (the hostile-peer tests). Busybox's applets
// of the same names lack what the tests use (ip netns, setpriv
// --bounding-set), so the guests get the real ones.
var HostTools = []HostTool{
	{"ip", "iproute2"}, {"ss", "iproute2"}, {"tc", "iproute2"}, {"genl", "iproute2"},
	{"nstat", "iproute2"}, {"setpriv", "util-linux"}, {"nft", "nftables"},
}

// busyboxApplets are the other programs the tests and the tools run,
// links to a static busybox (package busybox-static) in /bin.
var busyboxApplets = []string{
	"sh", "sysctl", "cat", "readlink", "sleep", "true", "false", "ping", "echo",
	"ls", "ps", "kill", "env", "id", "mkdir", "rm", "mount", "umount",
}

// guestPath is the PATH of the guests: the host tools before busybox.
const guestPath = "/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Guest paths of the built binaries.
const (
	guestTests  = "/compat/tests"
	guestDaemon = "/compat/bin/mptcpgod"
	guestCLI    = "/compat/bin/mptcpctl"
	guestSrc    = "/src"
)

// DaemonBinaryEnv names the environment variable that gives tests a
// prebuilt mptcpgod binary instead of building one with the go command,
// which the guests do not have.
const DaemonBinaryEnv = "MPTCPGOD_TEST_BINARY"

// lookTool finds a host tool in PATH or the usual directories.
func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return filepath.EvalSymlinks(p)
	}
	for _, d := range []string{"/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return filepath.EvalSymlinks(p)
		}
	}
	return "", os.ErrNotExist
}

// GuestInitramfs builds the initramfs of a guest booting img: the
// guests' init, the plan, the modules the tests need, the tools and the
// build's binaries, and each package's testdata.
func GuestInitramfs(img *Image, b *Build, scale float64) (*Initramfs, *Plan, error) {
	fsys := NewInitramfs()
	plan := &Plan{Kernel: img.Kernel.Name, Env: []string{
		"PATH=" + guestPath, "HOME=/root", "TMPDIR=/tmp", "CI=true",
		DaemonBinaryEnv + "=" + guestDaemon,
		netnstest.PatienceEnv + "=" + strconv.FormatFloat(max(scale, 1), 'g', -1, 64),
	}}
	if err := addBase(fsys); err != nil {
		return nil, nil, err
	}
	if err := fsys.File("/init", b.Init); err != nil {
		return nil, nil, err
	}

	mods, err := ReadModules(img.ModDir)
	if err != nil {
		return nil, nil, err
	}
	loaded := map[string]bool{}
	// addModules adds the modules names need that are not loaded yet,
	// and returns their guest paths in load order.
	addModules := func(names []string) ([]string, error) {
		order, err := mods.LoadOrder(names...)
		if err != nil {
			return nil, fmt.Errorf("%w (kernel %s)", err, img.Release)
		}
		var paths []string
		for _, m := range order {
			if loaded[m] {
				continue
			}
			loaded[m] = true
			p := path.Join("/lib/modules", img.Release, filepath.ToSlash(m))
			if err := fsys.File(p, filepath.Join(img.ModDir, m)); err != nil {
				return nil, err
			}
			paths = append(paths, p)
		}
		return paths, nil
	}
	if plan.Modules, err = addModules(TestModules); err != nil {
		return nil, nil, err
	}

	if err := addTools(fsys); err != nil {
		return nil, nil, err
	}
	for _, f := range []struct{ guest, host string }{{guestDaemon, b.Daemon}, {guestCLI, b.CLI}} {
		if err := fsys.File(f.guest, f.host); err != nil {
			return nil, nil, err
		}
	}
	if err := fsys.Symlink("/usr/local/bin/mptcpctl", guestCLI); err != nil {
		return nil, nil, err
	}
	added := map[string]bool{} // a package may have several runs
	for _, t := range b.Tests {
		bin := path.Join(guestTests, t.binaryName())
		dir := path.Join(guestSrc, t.Pkg)
		if !added[bin] {
			if err := fsys.File(bin, b.TestBinary(t)); err != nil {
				return nil, nil, err
			}
			if err := fsys.Dir(dir, 0o755); err != nil {
				return nil, nil, err
			}
			if err := addTree(fsys, dir+"/testdata", filepath.Join(b.ModRoot, t.Pkg, "testdata")); err != nil {
				return nil, nil, err
			}
			added[bin] = true
		}
		runMods, err := addModules(t.Modules)
		if err != nil {
			return nil, nil, err
		}
		plan.Runs = append(plan.Runs, Run{Name: t.Pkg, Path: bin, Dir: dir, Args: t.args(scale),
			Timeout: t.scaled(scale) + runGrace, Modules: runMods})
	}
	pb, err := json.MarshalIndent(plan, "", "  ")
	if err != nil {
		return nil, nil, err
	}
	if err := fsys.Bytes(PlanPath, pb, 0o644); err != nil {
		return nil, nil, err
	}
	return fsys, plan, nil
}

// runGrace is how long a run may outlive its -test.timeout, for the
// test binary's own timeout report.
const runGrace = 30 * time.Second

// addBase adds the directories and files every guest has.
func addBase(fsys *Initramfs) error {
	for _, d := range []string{"/proc", "/sys", "/dev", "/run", "/root", "/etc", "/bin", "/sbin",
		"/usr/bin", "/usr/sbin", "/usr/local/bin", "/var"} {
		if err := fsys.Dir(d, 0o755); err != nil {
			return err
		}
	}
	for _, d := range []string{"/tmp", "/var/tmp"} {
		if err := fsys.Dir(d, 0o777|os.ModeSticky); err != nil {
			return err
		}
	}
	files := []struct{ path, data string }{
		{"/etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"},
		{"/etc/group", "root:x:0:\nnogroup:x:65534:\n"},
		{"/etc/hosts", "127.0.0.1 localhost\n::1 localhost\n"},
		{"/etc/hostname", "compat\n"},
	}
	for _, f := range files {
		if err := fsys.Bytes(f.path, []byte(f.data), 0o644); err != nil {
			return err
		}
	}
	// iproute2 keeps its named namespaces in /var/run/netns.
	return fsys.Symlink("/var/run", "/run")
}

// addTools adds the host tools with their libraries, and busybox.
func addTools(fsys *Initramfs) error {
	var paths []string
	for _, t := range HostTools {
		p, err := lookTool(t.Name)
		if err != nil {
			return fmt.Errorf("compat: the guests need %s from this machine: apt-get install %s", t.Name, t.Package)
		}
		if err := fsys.File("/usr/bin/"+t.Name, p); err != nil {
			return err
		}
		paths = append(paths, p)
	}
	libs, err := SharedLibs(paths...)
	if err != nil {
		return err
	}
	for _, l := range libs {
		if err := fsys.File(l, l); err != nil {
			return err
		}
	}
	bb, err := lookTool("busybox")
	if err != nil {
		return fmt.Errorf("compat: the guests need busybox: apt-get install busybox-static")
	}
	if err := checkStatic(bb); err != nil {
		return fmt.Errorf("%w: apt-get install busybox-static", err)
	}
	if err := fsys.File("/bin/busybox", bb); err != nil {
		return err
	}
	for _, a := range busyboxApplets {
		if err := fsys.Symlink("/bin/"+a, "busybox"); err != nil {
			return err
		}
	}
	return nil
}

// addTree adds the regular files below the host directory src as dst;
// a missing src adds nothing.
func addTree(fsys *Initramfs, dst, src string) error {
	if _, err := os.Stat(src); os.IsNotExist(err) {
		return nil
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		g := path.Join(dst, filepath.ToSlash(rel))
		switch {
		case d.IsDir():
			return fsys.Dir(g, 0o755)
		case d.Type().IsRegular():
			return fsys.File(g, p)
		}
		return nil
	})
}
