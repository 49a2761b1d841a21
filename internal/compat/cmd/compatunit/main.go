// Command compatunit runs mptcpgod under its shipped systemd unit with the
// BPF drop-in on a Debian kernel under qemu (make compat-unit): it boots
// systemd from this machine's /usr, shared read-only over virtio-9p, with
// dist/mptcpgod.service, dist/mptcpgod-bpf.conf, dist/sysusers.d and
// dist/mptcpgod.toml whose [force] units name a test service and whose
// [force] uids name the uid of another, forces a third with mptcpctl force
// unit and lets it go again, restarts the first ten times with every CPU
// busy, and checks that each forced service's plain TCP listener is MPTCP,
// after every restart too, and an unforced one's is not. It prints what the
// guest reported and exits 1 when the check failed. See
// docs/transparent-services.md.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/compat"
)

func main() {
	kernel := flag.String("kernel", "6.12", "the kernel: a name in kernels.txt or a linux-image package")
	out := flag.String("out", "bin/compat", "output directory: package cache, binaries, results")
	mem := flag.Int("mem", 2048, "guest memory in MiB")
	cpus := flag.Int("cpus", 2, "guest CPUs")
	timeout := flag.Duration("timeout", 15*time.Minute, "how long the guest may run")
	goTool := flag.String("go", "go", "the go command")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ok, err := run(ctx, *kernel, *out, *mem, *cpus, *timeout, *goTool)
	if err != nil {
		fmt.Fprintln(os.Stderr, "compatunit:", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

func run(ctx context.Context, kernel, out string, mem, cpus int, timeout time.Duration, goTool string) (bool, error) {
	ks, err := compat.SelectListed(kernel)
	if err != nil {
		return false, err
	}
	if len(ks) != 1 || ks[0].Name == compat.Running {
		return false, errors.New("-kernel: want one packaged kernel")
	}
	k := ks[0]
	modRoot, err := compat.ModuleRoot(goTool)
	if err != nil {
		return false, err
	}
	if out, err = filepath.Abs(out); err != nil {
		return false, err
	}
	b, err := compat.BuildBinaries(ctx, goTool, modRoot, filepath.Join(out, "build"), nil)
	if err != nil {
		return false, err
	}
	fmt.Fprintf(os.Stderr, "compatunit: %s: fetching %s\n", k.Name, k.Package)
	img, err := compat.Fetch(ctx, k, filepath.Join(out, "cache"))
	if err != nil {
		return false, err
	}
	fsys, shares, err := compat.UnitGuestInitramfs(img, b)
	if err != nil {
		return false, err
	}
	dir := filepath.Join(out, "unit", k.Name)
	if err := os.RemoveAll(dir); err != nil {
		return false, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	initrd := filepath.Join(dir, "initramfs.cpio")
	if _, err := fsys.WriteFile(initrd); err != nil {
		return false, err
	}
	kvm := compat.HaveKVM()
	vm := &compat.VM{Kernel: img.Vmlinuz, Initrd: initrd, Console: filepath.Join(dir, "console.log"),
		Results: filepath.Join(dir, "results.log"), MemoryMiB: mem, CPUs: cpus, KVM: kvm, Timeout: timeout,
		Shares: shares, Cmdline: compat.UnitCmdline}
	accel := "TCG"
	if kvm {
		accel = "KVM"
	}
	fmt.Fprintf(os.Stderr, "compatunit: %s: booting %s (%s) with systemd from /usr, at most %v\n", k.Name, img.Release, accel, timeout)
	start := time.Now()
	bootErr := vm.Boot(ctx)
	fmt.Fprintf(os.Stderr, "compatunit: %s: the guest ran %v; console: %s\n", k.Name, time.Since(start).Round(time.Second), vm.Console)
	results, err := os.ReadFile(vm.Results)
	if err != nil {
		return false, err
	}
	os.Stdout.Write(bytes.ReplaceAll(results, []byte("\r\n"), []byte("\n")))
	if bootErr != nil {
		return false, bootErr
	}
	v, err := compat.ReadUnitVerdict(bytes.NewReader(results))
	if err != nil {
		return false, err
	}
	verdict := "FAIL"
	if v.OK() {
		verdict = "ok"
	}
	fmt.Printf("\n%s: %s under mptcpgod.service with the BPF drop-in: daemon %s; the listener of the service of [force] units %s, "+
		"after a restart %s; of the service of [force] uids %s; of the service forced with mptcpctl force unit %s, "+
		"after force unit --off %s; of the unforced service %s; of the service of [force] units restarted with every CPU busy, "+
		"%d of %d MPTCP; TCP sockets opened before forced, of the service forced at run time %s, after its restart %s\n",
		verdict, img.Release, v.Daemon, v.First, v.Restarted, v.UID, v.RunTime, v.RunTimeOff, v.Plain, v.BusyMPTCP, v.BusyRuns,
		v.Early, v.EarlyRestarted)
	return v.OK(), nil
}
