// Command compat runs mptcpgod's real-kernel tests on every kernel of the
// compatibility matrix (make compat): each Debian kernel package of
// internal/compat/kernels.txt is fetched and booted under qemu with an
// initramfs holding the tests, and the running kernel's tests run
// natively. It prints a summary, writes the report to OUT/report.md and
// OUT/report.json and per kernel the console, the raw results and the go
// test -json events below OUT/kernels/, and exits 1 when any kernel
// failed. See docs/compatibility.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/compat"
)

func main() {
	kernels := flag.String("kernels", os.Getenv("KERNELS"), "kernels to test, by name in kernels.txt, \"running\", or linux-image package (default: all of kernels.txt, then running)")
	suite := flag.String("suite", "full", "test selection: "+strings.Join(compat.SuiteNames(), " or "))
	out := flag.String("out", "bin/compat", "output directory: package cache, binaries, results")
	scale := flag.Float64("timescale", 0, "multiply test timeouts by this (0: 1 with KVM, 4 under TCG)")
	mem := flag.Int("mem", 2048, "guest memory in MiB")
	cpus := flag.Int("cpus", 2, "guest CPUs")
	goTool := flag.String("go", "go", "the go command")
	pkg := flag.String("pkg", "", "run only this package of the suite (\"genl\", \"internal/daemon\")")
	runRE := flag.String("run", "", "run only the tests matching this regular expression, as go test -run")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ok, err := run(ctx, *kernels, *suite, *pkg, *runRE, *out, *scale, *mem, *cpus, *goTool)
	if err != nil {
		fmt.Fprintln(os.Stderr, "compat:", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

func run(ctx context.Context, kernels, suiteName, pkg, runRE, out string, scale float64, mem, cpus int, goTool string) (bool, error) {
	ks, err := compat.SelectListed(kernels)
	if err != nil {
		return false, err
	}
	suite, err := compat.LookupSuite(suiteName)
	if err != nil {
		return false, err
	}
	if suite, err = compat.Narrow(suite, pkg, runRE); err != nil {
		return false, err
	}
	if mem < 512 || cpus < 1 {
		return false, errors.New("-mem: at least 512 MiB; -cpus: at least 1")
	}
	modRoot, err := compat.ModuleRoot(goTool)
	if err != nil {
		return false, err
	}
	out, err = filepath.Abs(out)
	if err != nil {
		return false, err
	}
	kvm := compat.HaveKVM()
	opt := compat.Options{GoTool: goTool, ModRoot: modRoot, Out: out, MemoryMiB: mem, CPUs: cpus, KVM: kvm,
		TimeScale: scale, Log: os.Stderr}
	if opt.TimeScale == 0 {
		opt.TimeScale = 1
		if !kvm {
			opt.TimeScale = 4
		}
	}
	conditions := describeMachine(kvm, suiteName, opt.TimeScale)
	fmt.Fprintf(os.Stderr, "compat: %s\n", conditions)

	start := time.Now()
	b, err := compat.BuildBinaries(ctx, goTool, modRoot, filepath.Join(out, "build"), suite)
	if err != nil {
		return false, err
	}
	fmt.Fprintf(os.Stderr, "compat: built the test binaries of %d runs in %v\n", len(suite), time.Since(start).Round(time.Second))

	var results []*compat.KernelResult
	ok := true
	for _, k := range ks {
		kopt := opt
		if k.Name == compat.Running {
			kopt.TimeScale = 1
			if scale != 0 {
				kopt.TimeScale = scale
			}
		}
		r := compat.RunKernel(ctx, k, b, kopt)
		results = append(results, r)
		ok = ok && r.OK()
		if r.Error != "" {
			fmt.Fprintf(os.Stderr, "compat: %s: %s\n", k.Name, r.Error)
		}
		if ctx.Err() != nil {
			break
		}
	}
	fmt.Println()
	if err := compat.WriteSummary(os.Stdout, results); err != nil {
		return false, err
	}
	conditions += fmt.Sprintf("; whole run %v", time.Since(start).Round(time.Second))
	md, err := os.Create(filepath.Join(out, "report.md"))
	if err != nil {
		return false, err
	}
	defer md.Close()
	if err := compat.WriteMarkdown(md, results, conditions); err != nil {
		return false, err
	}
	js, err := json.MarshalIndent(struct {
		Conditions string                 `json:"conditions"`
		Kernels    []*compat.KernelResult `json:"kernels"`
	}{conditions, results}, "", "  ")
	if err != nil {
		return false, err
	}
	if err := os.WriteFile(filepath.Join(out, "report.json"), js, 0o644); err != nil {
		return false, err
	}
	fmt.Printf("\nreport: %s\n", md.Name())
	return ok, nil
}

// describeMachine says under what conditions the matrix ran, for the
// report: timings on a shared, loaded machine mean little without it.
func describeMachine(kvm bool, suite string, scale float64) string {
	accel := "TCG (no KVM)"
	if kvm {
		accel = "KVM"
	}
	load := "unknown"
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			load = strings.Join(f[:3], " ")
		}
	}
	return fmt.Sprintf("%s, suite %s, %d CPUs, load average %s at start, guests under %s, timeouts ×%g",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), suite, runtime.NumCPU(), load, accel, scale)
}
