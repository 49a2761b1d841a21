// Command demo runs mptcpgod on a throwaway two-host testbed: a client and a
// server network namespace joined by two rate-limited veth links. It measures
// a transfer over one path, starts the daemon with the fullmesh policy on the
// client, measures the same transfer again over every path, prints the
// subflows with mptcpctl, and removes everything. `make demo` runs it as root.
package main

import (
	"bufio"
	"context"
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
	dur := flag.Duration("duration", 4*time.Second, "length of each transfer")
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

	step("building the testbed: client and server namespaces, two links of %d Mbit/s", mbit)
	tb := netnstest.NewTestbed(r, 2)
	for _, l := range tb.Links {
		tb.Client.Shape(l.ClientIf, mbit)
		tb.Server.Shape(l.ServerIf, mbit)
		fmt.Printf("  %-4s client %-13s server %-13s\n", l.ClientIf, l.Client4, l.Server4)
	}
	server := tb.Links[0].Server4.String()
	ln := tb.Server.Listen("tcp", net.JoinHostPort(server, "5201"))
	go sink(ln)

	step("one path: an MPTCP transfer with no path manager acting")
	single, err := transfer(ctx, tb.Client, ln.Addr().String(), dur)
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

	step("every path: the same transfer, now meshed by mptcpgod")
	conn, err := tb.Client.Dial("tcp", "", ln.Addr().String())
	if err != nil {
		return err
	}
	multi, err := send(ctx, conn, dur, func() {
		fmt.Print(indent(mustOutput(tb.Client.Command(ctl, "subflows"))))
	})
	if err != nil {
		return err
	}
	fmt.Printf("  %.1f Mbit/s, %.2f× the single path (links sum to %d Mbit/s)\n", multi, multi/single, 2*mbit)

	step("stopping mptcpgod: it withdraws its endpoints")
	_ = daemon.Process.Signal(syscall.SIGTERM)
	_ = daemon.Wait()
	fmt.Print(indent(mustOutput(tb.Client.Command(ctl, "endpoints"))))
	step("removing the testbed")
	return nil
}

// demoConfig includes veth links, which the daemon leaves out by default,
// and turns the control socket off: its default path is the host's.
const demoConfig = `mode = "kernel"

[control]
socket = ""

[links]
include_kinds = ["virtual"]
`

// transfer sends for d over a new MPTCP connection and returns Mbit/s.
func transfer(ctx context.Context, h *netnstest.Host, addr string, d time.Duration) (float64, error) {
	conn, err := h.Dial("tcp", "", addr)
	if err != nil {
		return 0, err
	}
	return send(ctx, conn, d, nil)
}

// send writes to conn for d, calls during once halfway, closes conn and
// returns the rate in Mbit/s.
func send(ctx context.Context, conn net.Conn, d time.Duration, during func()) (float64, error) {
	defer conn.Close()
	buf := make([]byte, 64<<10)
	start := time.Now()
	half := start.Add(d / 2)
	var sent int64
	for time.Since(start) < d {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if during != nil && time.Now().After(half) {
			during()
			during = nil
		}
		_ = conn.SetWriteDeadline(start.Add(d))
		n, err := conn.Write(buf)
		sent += int64(n)
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return 0, err
		}
	}
	return float64(sent) * 8 / time.Since(start).Seconds() / 1e6, nil
}

// sink accepts connections and discards what they carry.
func sink(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			_, _ = io.Copy(io.Discard, c)
		}()
	}
}

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
