// Command mptcpgod-demo runs mptcpgod on a throwaway two-host testbed: a client and a
// server network namespace joined by two rate-limited veth links. The
// server runs an unmodified static busybox httpd and the client downloads a
// file from it with an unmodified static busybox wget, both started through
// `mptcpctl run`, which gives them MPTCP sockets. It measures the download
// over one path, starts the daemon with the fullmesh policy on the client,
// measures it again over every path, prints the subflows with mptcpctl, and
// removes everything. `make demo` runs it as root.
package main

import (
	"bufio"
	"context"
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
)

func main() {
	bin := flag.String("bin", "bin", "directory holding the mptcpgod and mptcpctl binaries")
	mbit := flag.Int("mbit", 50, "rate of each link in Mbit/s")
	dur := flag.Duration("duration", 4*time.Second, "length of each download")
	flag.Parse()

	r := &runner{}
	defer r.cleanup()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, r, *bin, *mbit, *dur); err != nil {
		r.cleanup()
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, r *runner, bin string, mbit int, dur time.Duration) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root: it creates network namespaces (sudo make demo)")
	}
	god, err := filepath.Abs(filepath.Join(bin, "mptcpgod"))
	if err != nil {
		return err
	}
	ctl, err := filepath.Abs(filepath.Join(bin, "mptcpctl"))
	if err != nil {
		return err
	}
	for _, b := range []string{god, ctl} {
		if _, err := os.Stat(b); err != nil {
			return fmt.Errorf("%s is missing: run make build first", b)
		}
	}
	busybox, err := staticBusybox()
	if err != nil {
		return err
	}

	step("building the testbed: client and server namespaces, two links of %d Mbit/s", mbit)
	tb := netnstest.NewTestbed(r, 2)
	for _, l := range tb.Links {
		tb.Client.Shape(l.ClientIf, mbit)
		tb.Server.Shape(l.ServerIf, mbit)
		fmt.Printf("  %-4s client %-13s server %-13s\n", l.ClientIf, l.Client4, l.Server4)
	}

	addr := net.JoinHostPort(tb.Links[0].Server4.String(), "8080")
	step("server: mptcpctl run %s httpd -f -p %s", busybox, addr)
	www := filepath.Join(r.tempDir(), "www")
	if err := bigFile(www); err != nil {
		return err
	}
	httpd := tb.Server.Command(ctl, "run", busybox, "httpd", "-f", "-p", addr, "-h", www)
	httpd.Stderr = prefixed("  httpd| ")
	if err := httpd.Start(); err != nil {
		return fmt.Errorf("start busybox httpd: %w", err)
	}
	if err := waitListener(ctx, tb.Server, addr); err != nil {
		return err
	}
	fmt.Print(indent(mustOutput(tb.Server.Command("ss", "-M", "-l", "-n"))))

	url := "http://" + addr + "/big"
	step("one path: mptcpctl run %s wget %s, no path manager acting", busybox, url)
	single, err := download(ctx, tb.Client, ctl, busybox, url, dur, nil)
	if err != nil {
		return err
	}
	fmt.Printf("  %.1f Mbit/s\n", single)

	step("starting mptcpgod on the client (fullmesh, kernel path manager)")
	cfg := filepath.Join(r.tempDir(), "mptcpgod.toml")
	if err := os.WriteFile(cfg, []byte(demoConfig), 0o644); err != nil {
		return err
	}
	daemon := tb.Client.Command(god, "--config", cfg)
	daemon.Stdout, daemon.Stderr = prefixed("  mptcpgod| "), prefixed("  mptcpgod| ")
	if err := daemon.Start(); err != nil {
		return fmt.Errorf("start mptcpgod: %w", err)
	}
	if err := waitEndpoints(ctx, tb.Client, ctl, 2); err != nil {
		return err
	}
	fmt.Print(indent(mustOutput(tb.Client.Command(ctl, "endpoints"))))

	step("every path: the same download, now meshed by mptcpgod")
	multi, err := download(ctx, tb.Client, ctl, busybox, url, dur, func() {
		fmt.Print(indent(mustOutput(tb.Client.Command(ctl, "subflows"))))
	})
	if err != nil {
		return err
	}
	fmt.Printf("\n  one path %.1f Mbit/s, every path %.1f Mbit/s: %.2f× (links sum to %d Mbit/s)\n",
		single, multi, multi/single, 2*mbit)

	step("stopping mptcpgod: it withdraws its endpoints")
	_ = daemon.Process.Signal(syscall.SIGTERM)
	_ = daemon.Wait()
	fmt.Print(indent(mustOutput(tb.Client.Command(ctl, "endpoints"))))
	step("removing the testbed")
	return nil
}

// staticBusybox returns the path of Debian's static busybox, or says how to
// get it: no preload library reaches a static binary, mptcpctl run does.
func staticBusybox() (string, error) {
	const hint = "the demo runs Debian's static busybox: apt-get install busybox-static"
	p, err := exec.LookPath("busybox")
	if err != nil {
		return "", errors.New("busybox is missing: " + hint)
	}
	f, err := elf.Open(p)
	if err != nil {
		return "", fmt.Errorf("%s: %w", p, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return "", fmt.Errorf("%s is dynamically linked: %s", p, hint)
		}
	}
	return p, nil
}

// bigFile creates dir with a sparse file "big" larger than any download.
func bigFile(dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "big"))
	if err != nil {
		return err
	}
	if err := f.Truncate(8 << 30); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// download runs busybox wget under mptcpctl run in h for d, calls during
// once halfway, stops it and returns the rate in Mbit/s over the last
// three quarters (the first is slow start).
func download(ctx context.Context, h *netnstest.Host, ctl, busybox, url string, d time.Duration, during func()) (float64, error) {
	cmd := h.Command(ctl, "run", busybox, "wget", "-q", "-O", "-", url)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	cmd.Stderr = prefixed("  wget| ")
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start busybox wget: %w", err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	m := netnstest.NewMeter(out)
	_ = m.Rate(d / 4)
	first := m.Rate(d / 4)
	if during != nil {
		during()
	}
	second := m.Rate(d / 2)
	select {
	case <-m.Done():
		return 0, fmt.Errorf("busybox wget ended early: %v", m.Err())
	default:
	}
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	return (first + 2*second) / 3, nil
}

// waitListener polls ss until something listens with MPTCP on addr.
func waitListener(ctx context.Context, h *netnstest.Host, addr string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _ := h.Exec("ss", "-M", "-l", "-n", "-H")
		if strings.Contains(out, addr) {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("busybox httpd did not listen with MPTCP on %s within 30s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// demoConfig includes veth links, which the daemon leaves out by default,
// and turns the control socket off: its default path is the host's.
const demoConfig = `mode = "kernel"

[control]
socket = ""

[links]
include_kinds = ["virtual"]
`

// waitEndpoints polls mptcpctl until the client has n endpoints.
func waitEndpoints(ctx context.Context, h *netnstest.Host, ctl string, n int) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := h.Command(ctl, "endpoints", "--json").Output()
		if err == nil && strings.Count(string(out), `"id"`) >= n {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("mptcpgod did not add %d endpoints within 10s (last: %s)", n, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func mustOutput(cmd *exec.Cmd) string {
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Sprintf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	return string(out)
}

func step(format string, args ...any) {
	fmt.Printf("\n==> "+format+"\n", args...)
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return "  " + strings.Join(lines, "\n  ") + "\n"
}

// prefixed returns a writer that prints each line written to it with prefix.
func prefixed(prefix string) io.Writer {
	pr, pw := io.Pipe()
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			fmt.Println(prefix + sc.Text())
		}
	}()
	return pw
}
