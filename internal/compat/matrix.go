package compat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"golang.org/x/sys/unix"
)

// Options configure a run of the matrix.
type Options struct {
	// GoTool is the go command; ModRoot the module's root directory.
	GoTool, ModRoot string
	// Out is the output directory (bin/compat): the package cache, the
	// binaries, and a directory of results per kernel.
	Out string
	// TimeScale multiplies every test timeout (TCG is slow).
	TimeScale float64
	// MemoryMiB and CPUs size the guests; KVM selects hardware
	// virtualisation.
	MemoryMiB, CPUs int
	KVM             bool
	// Log receives progress lines.
	Log io.Writer
}

// bootAllowance is the time a guest may take to boot and power off,
// beyond its runs, before scaling.
const bootAllowance = 2 * time.Minute

// RunKernel runs the build's tests on kernel k: under qemu for a
// packaged kernel, natively for Running. Failures are in the result.
func RunKernel(ctx context.Context, k Kernel, b *Build, opt Options) *KernelResult {
	res := &KernelResult{Kernel: k.Name}
	dir := filepath.Join(opt.Out, "kernels", k.Name)
	if err := os.RemoveAll(dir); err != nil {
		res.Error = err.Error()
		return res
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		res.Error = err.Error()
		return res
	}
	resultsPath := filepath.Join(dir, "results.log")
	start := time.Now()
	var err error
	if k.Name == Running {
		res.Accel = "native"
		err = runNative(ctx, b, opt, resultsPath)
	} else {
		res.Accel = "tcg"
		if opt.KVM {
			res.Accel = "kvm"
		}
		err = runGuest(ctx, k, b, opt, dir, resultsPath, res)
	}
	res.Wall = time.Since(start)
	if err != nil {
		res.Error = err.Error()
	}
	if cerr := collect(ctx, opt, resultsPath, filepath.Join(dir, "test.json"), res); cerr != nil && res.Error == "" {
		res.Error = cerr.Error()
	}
	if b, err := json.MarshalIndent(res, "", "  "); err == nil {
		_ = os.WriteFile(filepath.Join(dir, "result.json"), b, 0o644)
	}
	return res
}

// runGuest fetches k, builds its initramfs and boots it.
func runGuest(ctx context.Context, k Kernel, b *Build, opt Options, dir, resultsPath string, res *KernelResult) error {
	fmt.Fprintf(opt.Log, "compat: %s: fetching %s\n", k.Name, k.Package)
	img, err := Fetch(ctx, k, filepath.Join(opt.Out, "cache"))
	if err != nil {
		return err
	}
	res.Package, res.Version, res.Release = img.Package, img.Version, img.Release
	fsys, plan, err := GuestInitramfs(img, b, opt.TimeScale)
	if err != nil {
		return err
	}
	initrd := filepath.Join(dir, "initramfs.cpio")
	n, err := fsys.WriteFile(initrd)
	if err != nil {
		return err
	}
	timeout := time.Duration(float64(bootAllowance) * max(opt.TimeScale, 1))
	for _, r := range plan.Runs {
		timeout += r.Timeout
	}
	vm := &VM{Kernel: img.Vmlinuz, Initrd: initrd, Console: filepath.Join(dir, "console.log"), Results: resultsPath,
		MemoryMiB: opt.MemoryMiB, CPUs: opt.CPUs, KVM: opt.KVM, Timeout: timeout}
	fmt.Fprintf(opt.Log, "compat: %s: booting %s (%s, initramfs %d MiB, %d modules, %d packages, at most %v)\n",
		k.Name, img.Release, res.Accel, n>>20, len(plan.Modules), len(plan.Runs), timeout)
	return vm.Boot(ctx)
}

// runNative runs the test binaries on this machine's kernel, writing the
// same results stream a guest writes.
func runNative(ctx context.Context, b *Build, opt Options, resultsPath string) error {
	if os.Geteuid() != 0 {
		return errors.New("compat: the running kernel's tests need root (network namespaces)")
	}
	f, err := os.Create(resultsPath)
	if err != nil {
		return err
	}
	defer f.Close()
	rw := NewRecordWriter(f)
	var u unix.Utsname
	rel := ""
	if err := unix.Uname(&u); err == nil {
		rel = unix.ByteSliceToString(u.Release[:])
	}
	kr := Record{Type: "kernel", Release: rel}
	if entries, err := os.ReadDir("/proc/sys/net/mptcp"); err == nil {
		for _, e := range entries {
			kr.Sysctls = append(kr.Sysctls, e.Name())
		}
	}
	if err := rw.Record(kr); err != nil {
		return err
	}
	env := append(os.Environ(), "CI=true", DaemonBinaryEnv+"="+b.Daemon,
		netnstest.PatienceEnv+"="+strconv.FormatFloat(max(opt.TimeScale, 1), 'g', -1, 64))
	for _, t := range b.Tests {
		fmt.Fprintf(opt.Log, "compat: %s: %s\n", Running, t.Pkg)
		if err := rw.Record(Record{Type: "begin", Name: t.Pkg}); err != nil {
			return err
		}
		rctx, cancel := context.WithTimeout(ctx, t.scaled(opt.TimeScale)+runGrace)
		cmd := exec.CommandContext(rctx, b.TestBinary(t), t.args(opt.TimeScale)...)
		cmd.Dir = filepath.Join(b.ModRoot, t.Pkg)
		cmd.Env = env
		cmd.Stdout, cmd.Stderr = rw, rw
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return unix.Kill(-cmd.Process.Pid, unix.SIGKILL) }
		start := time.Now()
		err := cmd.Run()
		cancel()
		end := Record{Type: "end", Name: t.Pkg, Elapsed: time.Since(start)}
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			end.Exit = ee.ExitCode()
		case err != nil:
			end.Exit, end.Error = -1, err.Error()
		}
		if err := rw.Record(end); err != nil {
			return err
		}
	}
	return rw.Record(Record{Type: "done"})
}

// collect reads a results stream into res and writes its go test -json
// events to jsonPath.
func collect(ctx context.Context, opt Options, resultsPath, jsonPath string, res *KernelResult) error {
	f, err := os.Open(resultsPath)
	if err != nil {
		return err
	}
	defer f.Close()
	rs, err := ReadResults(f)
	if err != nil {
		return err
	}
	if rs.Kernel != nil {
		res.Release, res.Sysctls = rs.Kernel.Release, rs.Kernel.Sysctls
	}
	res.Done = rs.Done
	for _, m := range rs.ModuleErrors {
		res.Error = fmt.Sprintf("module %s: %s", m.File, m.Error)
	}
	out, err := os.Create(jsonPath)
	if err != nil {
		return err
	}
	defer out.Close()
	enc := json.NewEncoder(out)
	for _, s := range rs.Segments {
		evs, err := Convert(ctx, opt.GoTool, s.Name, s.Output)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if err := enc.Encode(ev); err != nil {
				return err
			}
		}
		res.Packages = append(res.Packages, PackageResult{Package: s.Name, Exit: s.Exit, Ended: s.Ended,
			Error: s.Error, Elapsed: s.Elapsed, Tests: Summarise(evs)})
	}
	return nil
}
