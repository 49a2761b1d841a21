package compat

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// VM is one boot of a kernel under qemu: no network device
// (-nodefaults), the console on the first serial port and the results
// stream on the second, both written to files.
type VM struct {
	Kernel, Initrd string
	// Console and Results are the files the serial ports write.
	Console, Results string
	// MemoryMiB and CPUs size the machine.
	MemoryMiB, CPUs int
	// KVM selects hardware virtualisation; without it qemu emulates the
	// CPU (TCG).
	KVM bool
	// Timeout bounds the whole boot; qemu is killed past it.
	Timeout time.Duration
	// Shares are host directories the guest may mount read-only over
	// virtio-9p, by their tag (Share.Tag).
	Shares []HostShare
	// Cmdline are more kernel arguments.
	Cmdline []string
}

// HostShare is a host directory shared with the guest under a tag.
type HostShare struct {
	Tag, Path string
}

// qemuBinary is the emulator, from Debian's qemu-system-x86.
const qemuBinary = "qemu-system-x86_64"

// HaveKVM reports whether this machine offers KVM to this process.
func HaveKVM() bool {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	_ = f.Close()
	return true
}

// Args returns qemu's command line.
func (vm *VM) Args() []string {
	accel, cpu := "tcg", "max"
	if vm.KVM {
		accel, cpu = "kvm", "host"
	}
	cmdline := append([]string{"console=ttyS0", "panic=-1", "oops=panic", "loglevel=4", "rdinit=/init"}, vm.Cmdline...)
	args := []string{
		"-nodefaults", "-no-user-config", "-no-reboot", "-display", "none",
		"-machine", "q35,accel=" + accel, "-cpu", cpu,
		"-m", strconv.Itoa(vm.MemoryMiB), "-smp", strconv.Itoa(vm.CPUs),
		"-kernel", vm.Kernel, "-initrd", vm.Initrd,
		// panic=-1 reboots at once on a panic, and -no-reboot turns
		// the reboot into qemu's exit.
		"-append", strings.Join(cmdline, " "),
		"-serial", "file:" + vm.Console,
		"-serial", "file:" + vm.Results,
	}
	for _, s := range vm.Shares {
		args = append(args, "-virtfs", "local,path="+s.Path+",mount_tag="+s.Tag+",security_model=none,readonly=on")
	}
	return args
}

// ErrVMTimeout is the error of a boot killed at its timeout.
var ErrVMTimeout = errors.New("compat: the guest did not power off in time")

// Boot runs the VM until the guest powers off, and returns qemu's error.
func (vm *VM) Boot(ctx context.Context) error {
	if _, err := exec.LookPath(qemuBinary); err != nil {
		return fmt.Errorf("compat: %s not found: apt-get install qemu-system-x86", qemuBinary)
	}
	ctx, cancel := context.WithTimeout(ctx, vm.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemuBinary, vm.Args()...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("%w (%v)", ErrVMTimeout, vm.Timeout)
	}
	if err != nil {
		return fmt.Errorf("compat: %s: %w: %s", qemuBinary, err, strings.TrimSpace(out.String()))
	}
	return nil
}
