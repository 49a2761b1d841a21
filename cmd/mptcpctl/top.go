package main

import (
	"context"
	"errors"
	"io"
	"os"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
)

// topOptions are top's flags.
type topOptions struct {
	interval time.Duration
	once     bool
	count    int
	limit    int
	sort     string
	reverse  bool
	filter   string
}

// Bounds of --interval.
const (
	minTopInterval = 100 * time.Millisecond
	maxTopInterval = time.Hour
)

func (a *app) topCmd() *cobra.Command {
	var o topOptions
	cmd := &cobra.Command{
		Use:   "top",
		Short: "Watch links, connections and subflows live, with the daemon's events",
		Long: `Show MPTCP at work, refreshed every second (--interval), on a full screen:

- LINKS: each interface but loopback, with its state, kind (wired, wifi,
  cellular, virtual, ...), whether it is metered and how much of its quota
  it used this period, its throughput in and out with a sparkline of the
  last minute, and the live subflows on it (a closing one, which on a dead
  link stays in the kernel's list for minutes, is left out here and of a
  connection's links; an opened connection lists it).
- CONNECTIONS: the MPTCP connections, fastest first: token, peer, local
  address, age (since top first saw it; ">" when it was already there),
  bytes received and acknowledged, rates in and out, subflows, links.
- EVENTS: the last notable events, newest first: failover (a backup
  subflow or endpoint made active), failback, withdraw (an address,
  subflow or endpoint taken away), path_failed, failed (a kernel command),
  quota (a metered link at 90% or 100% of its quota, or a new period),
  plugin (a policy program down, crashed, late, back), link (up, down,
  added, removed), daemon (reachable or not), policy (the daemon's policy
  replaced, as by a reload), and the daemon's other decisions (resync,
  unmanaged, newer kinds) by their names.

Keys: up/down (k/j), page up/down, home/end select a connection; enter opens
it: each subflow's local → remote, link, address ids, backup (yes: this host
asked, peer: the peer did), TCP state, RTT, congestion window, retransmits
and rates; with the daemon, the paths its policy wants beside those that
exist, why a wanted one is missing (failures, next try, the kernel's error;
a deferred one waits for the connection to be old enough or to move enough
bytes: until when, and how many), the addresses announced to the peer and
those the peer announced (refused and why, given up after its tries), and its
decisions for the connection; esc goes back. s and S change the sort (rate,
bytes, age, subflows, peer, token), r reverses it. / types a
filter, esc clears it: words that must all match, each peer:ADDRESS or
peer:PREFIX, port:N (local or remote), link:NAME (a glob such as eth*), or a
bare address, prefix, port, link name or start of a token. q quits.

Without the daemon top shows the kernel's view (sock_diag and the interface
counters, like ss -M and ip -s link) and needs no privilege; with it (its
--socket, readable by root and the daemon's group) it adds the links' kinds,
usage and quotas, a line of the daemon's connections, paths by state
(deferred among them), commands and the kernel's mapping errors (once there
are any: mptcpctl status), the daemon's paths and decisions, and the events. With -n
NAME it shows that namespace's kernel view, and asks a daemon only when
--socket is given too.

When the output is not a terminal, or with --once, --count or --json, top
prints plain tables (or one JSON object per line with --json) every interval
instead: --once prints one refresh (taken an interval after a first reading,
for the rates) and exits. The JSON fields are listed in docs/mptcpctl.md.`,
		Example: "  mptcpctl top\n  mptcpctl top --interval 2s --sort bytes --filter 'link:wwan*'\n" +
			"  mptcpctl top --once\n  mptcpctl top --json --count 10 --limit 20 > top.jsonl\n  mptcpctl -n ns1 top",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.top(cmd.Context(), o, cmd.Flags().Changed("socket"))
		},
	}
	f := cmd.Flags()
	f.DurationVar(&o.interval, "interval", time.Second, "refresh every `DURATION` (100ms to 1h)")
	f.BoolVar(&o.once, "once", false, "print one refresh as plain tables (or JSON with --json) and exit")
	f.IntVar(&o.count, "count", 0, "print `N` refreshes as plain tables (or JSON) and exit; 0: until interrupted")
	f.IntVar(&o.limit, "limit", 0, "print at most `N` connections in plain or JSON output; 0: all")
	f.StringVar(&o.sort, "sort", "rate", "sort the connections by `KEY`: rate, bytes, age, subflows, peer or token")
	f.BoolVar(&o.reverse, "reverse", false, "reverse the sort")
	f.StringVar(&o.filter, "filter", "", "show only the connections matching `WORDS` (peer:ADDRESS|PREFIX port:N link:NAME)")
	_ = cmd.RegisterFlagCompletionFunc("sort", cobra.FixedCompletions(sortNames[:], cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// settings checks the options and returns the initial settings.
func (o topOptions) settings() (topSettings, error) {
	var set topSettings
	if o.interval < minTopInterval || o.interval > maxTopInterval {
		return set, usagef("--interval %s: expected %s to %s", o.interval, minTopInterval, maxTopInterval)
	}
	if o.count < 0 {
		return set, usagef("--count %d: expected 0 or more", o.count)
	}
	if o.limit < 0 {
		return set, usagef("--limit %d: expected 0 or more", o.limit)
	}
	k, err := parseSortKey(o.sort)
	if err != nil {
		return set, err
	}
	flt, err := parseFilter(o.filter)
	if err != nil {
		return set, usagef("--%s", err)
	}
	return topSettings{Sort: k, Reverse: o.reverse, Filter: flt}, nil
}

// top implements the top command; socketGiven reports that --socket was
// on the command line.
func (a *app) top(ctx context.Context, o topOptions, socketGiven bool) error {
	set, err := o.settings()
	if err != nil {
		return err
	}
	s, err := a.open()
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := s.diag(); err != nil {
		return err
	}
	var d topDaemonClient
	if a.netns == "" || socketGiven {
		d = ctlDaemon{&ctlapi.Client{Socket: a.socketPath()}}
	}
	ts := newTopSampler(sessionKernel{s}, d, o.interval)
	out, screen := a.stdout.(*os.File)
	screen = screen && isTerminal(out) && !o.once && o.count == 0 && !a.json
	if !screen {
		count := o.count
		if o.once {
			count = 1
		}
		return a.topPlain(ctx, ts, set, o, count)
	}
	return a.topScreen(ctx, ts, set, o, out)
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// topPlain prints count refreshes (0: until ctx is done) as tables or JSON
// lines. The first reading only starts the rates: the first refresh
// printed is the second reading, an interval later.
func (a *app) topPlain(ctx context.Context, ts *topSampler, set topSettings, o topOptions, count int) error {
	ts.sample(ctx, 0)
	tick := time.NewTicker(o.interval)
	defer tick.Stop()
	var seq uint64
	for n := 0; count == 0 || n < count; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		f := arrange(ts.sample(ctx, 0), set)
		fo := frameOut(f, a.netns, o.limit, seq)
		if len(f.Events) > 0 {
			seq = f.Events[len(f.Events)-1].Seq
		}
		var err error
		if a.json {
			err = writeJSONLine(a.stdout, fo)
		} else {
			err = writeTopPlain(a.stdout, fo)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// topScreen runs the full-screen view until the user quits or ctx is done.
// The sampler runs on a goroutine of its own and hands the screen finished
// frames; the screen hands it the settings the keys change.
func (a *app) topScreen(parent context.Context, ts *topSampler, set topSettings, o topOptions, out *os.File) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	settings := make(chan topSettings, 1)
	send := func(s topSettings) { latest(settings, s) }
	opts := []tea.ProgramOption{tea.WithContext(ctx), tea.WithAltScreen(), tea.WithOutput(out)}
	if !isTerminal(os.Stdin) {
		opts = append(opts, tea.WithInputTTY())
	}
	p := tea.NewProgram(newTopModel(set, send, lipgloss.NewRenderer(out), a.netns), opts...)
	done := make(chan struct{})
	go func() {
		defer close(done)
		ts.run(ctx, o.interval, set, settings, func(f *topFrame) { p.Send(topFrameMsg{f}) })
	}()
	_, err := p.Run()
	cancel()
	<-done
	if errors.Is(err, tea.ErrProgramKilled) && parent.Err() != nil {
		return nil
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return &refusedError{msg: "the screen failed: " + err.Error(), err: err}
	}
	return nil
}
