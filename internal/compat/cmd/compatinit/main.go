//go:build linux

// Command compatinit is the init of the compatibility matrix's guests
// (make compat): PID 1 of a kernel booted under qemu with an initramfs
// that internal/compat built. It mounts the usual file systems, loads the
// kernel modules the tests need in dependency order, runs every test
// binary of its plan (compat.PlanPath) and writes their output, framed by
// records, to the second serial port, which the host reads back. Then it
// powers the machine off. Its own messages go to the console (the first
// serial port). A plan with Boot makes it load the modules, mount the
// host's 9p shares and execute the plan's program (systemd) as PID 1
// instead.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/compat"
	"golang.org/x/sys/unix"
)

// resultsPort is the serial port the host reads the results stream from.
const resultsPort = "/dev/ttyS1"

// moduleInitCompressedFile is finit_module's MODULE_INIT_COMPRESSED_FILE
// flag (Linux 5.17): the kernel decompresses the module itself.
// TODO: get this into x/sys/unix.
const moduleInitCompressedFile = 4

func main() {
	err := run()
	if err != nil {
		fmt.Fprintln(os.Stderr, "compatinit:", err)
	}
	unix.Sync()
	// PID 1 must not exit: the kernel would panic. Power off instead.
	if perr := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); perr != nil {
		fmt.Fprintln(os.Stderr, "compatinit: power off:", perr)
	}
	select {}
}

func run() error {
	b, err := os.ReadFile(compat.PlanPath)
	if err != nil {
		return err
	}
	var plan compat.Plan
	if err := json.Unmarshal(b, &plan); err != nil {
		return fmt.Errorf("%s: %w", compat.PlanPath, err)
	}
	if plan.Boot != nil {
		return boot(&plan)
	}
	if err := mountAll(); err != nil {
		return err
	}
	port, err := openRaw(resultsPort)
	if err != nil {
		return err
	}
	defer port.Close()
	rw := compat.NewRecordWriter(port)

	if err := rw.Record(kernelRecord()); err != nil {
		return err
	}
	if err := loadModules(plan.Modules, rw); err != nil {
		return err
	}
	for _, r := range plan.Runs {
		if err := loadModules(r.Modules, rw); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "compatinit: run %s\n", r.Name)
		if err := rw.Record(compat.Record{Type: "begin", Name: r.Name}); err != nil {
			return err
		}
		start := time.Now()
		exit, rerr := runTest(r, plan.Env, rw)
		end := compat.Record{Type: "end", Name: r.Name, Exit: exit, Elapsed: time.Since(start)}
		if rerr != nil {
			end.Error = rerr.Error()
		}
		fmt.Fprintf(os.Stderr, "compatinit: %s exited %d after %v\n", r.Name, exit, end.Elapsed.Round(time.Millisecond))
		if err := rw.Record(end); err != nil {
			return err
		}
	}
	return rw.Record(compat.Record{Type: "done"})
}

// boot loads the plan's modules, mounts its shares and executes its
// program, which leaves the file systems of the guest to itself.
func boot(plan *compat.Plan) error {
	if err := loadModules(plan.Modules, compat.NewRecordWriter(os.Stderr)); err != nil {
		return err
	}
	for _, s := range plan.Boot.Shares {
		if err := os.MkdirAll(s.Target, 0o755); err != nil {
			return err
		}
		// msize: 9p's default of 8 KiB makes every read of a program a
		// crawl under emulation.
		if err := unix.Mount(s.Tag, s.Target, "9p", unix.MS_RDONLY,
			"trans=virtio,version=9p2000.L,msize=512000,cache=loose"); err != nil {
			return fmt.Errorf("mount the share %s on %s: %w", s.Tag, s.Target, err)
		}
	}
	if len(plan.Boot.Exec) == 0 {
		return fmt.Errorf("%s: boot without a program", compat.PlanPath)
	}
	fmt.Fprintf(os.Stderr, "compatinit: executing %s\n", strings.Join(plan.Boot.Exec, " "))
	return unix.Exec(plan.Boot.Exec[0], plan.Boot.Exec, plan.Env)
}

// mountAll mounts what the tests and the tools they run expect.
func mountAll() error {
	mounts := []struct {
		fstype, target, data string
		flags                uintptr
	}{
		{"proc", "/proc", "", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
		{"sysfs", "/sys", "", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
		{"devtmpfs", "/dev", "mode=0755", unix.MS_NOSUID},
		{"tmpfs", "/run", "mode=0755", unix.MS_NOSUID | unix.MS_NODEV},
		{"tmpfs", "/tmp", "mode=1777", unix.MS_NOSUID | unix.MS_NODEV},
		{"tmpfs", "/dev/shm", "mode=1777", unix.MS_NOSUID | unix.MS_NODEV},
		{"cgroup2", "/sys/fs/cgroup", "", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
		// The kernel's lockdown level, which the BPF tests read.
		{"securityfs", "/sys/kernel/security", "", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
	}
	for _, m := range mounts {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(m.fstype, m.target, m.fstype, m.flags, m.data); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.target, err)
		}
	}
	return nil
}

// openRaw opens a serial port for writing with the terminal's output
// processing off, so that the bytes arrive as written.
func openRaw(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	t, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("%s: get termios: %w", path, err)
	}
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag = t.Cflag&^(unix.CBAUD|unix.CSIZE|unix.PARENB) | unix.CS8 | unix.B115200
	if err := unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, t); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("%s: set termios: %w", path, err)
	}
	return f, nil
}

// kernelRecord describes the guest's kernel.
func kernelRecord() compat.Record {
	rec := compat.Record{Type: "kernel"}
	var u unix.Utsname
	if err := unix.Uname(&u); err == nil {
		rec.Release = unix.ByteSliceToString(u.Release[:])
	}
	if entries, err := os.ReadDir("/proc/sys/net/mptcp"); err == nil {
		for _, e := range entries {
			rec.Sysctls = append(rec.Sysctls, e.Name())
		}
	}
	return rec
}

// loadModules loads module files in order; a module that fails to load
// is recorded, and the rest still loaded.
func loadModules(files []string, rw *compat.RecordWriter) error {
	for _, m := range files {
		if err := loadModule(m); err != nil {
			fmt.Fprintf(os.Stderr, "compatinit: load %s: %v\n", m, err)
			if err := rw.Record(compat.Record{Type: "module", File: m, Error: err.Error()}); err != nil {
				return err
			}
		}
	}
	return nil
}

// loadModule loads a module file, letting the kernel decompress it.
func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	flags := 0
	if strings.HasSuffix(path, ".xz") || strings.HasSuffix(path, ".zst") || strings.HasSuffix(path, ".gz") {
		flags = moduleInitCompressedFile
	}
	err = unix.FinitModule(int(f.Fd()), "", flags)
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	return err
}

// runTest runs one test binary, its output going to w, and returns its
// exit status (-1 when it did not exit by itself).
func runTest(r compat.Run, env []string, w *compat.RecordWriter) (int, error) {
	cmd := exec.Command(r.Path, r.Args...)
	cmd.Dir = r.Dir
	cmd.Env = env
	cmd.Stdout = w
	cmd.Stderr = w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return -1, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var timeout <-chan time.Time
	if r.Timeout > 0 {
		timeout = time.After(r.Timeout)
	}
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), nil
		}
		if err != nil {
			return -1, err
		}
		return 0, nil
	case <-timeout:
		_ = unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
		<-done
		return -1, fmt.Errorf("killed after %v", r.Timeout)
	}
}
