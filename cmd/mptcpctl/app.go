package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
)

// version is the program version, set with
// -ldflags "-X main.version=v1.2.3"; otherwise it comes from the build info.
var version = ""

// programVersion returns version, else the module version of the build.
func programVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// groupKernel is the help group of the commands that talk to the kernel
// directly. The daemon's commands (status, links, paths, policies, usage,
// reload, events) have a group of their own beside it, groupDaemon.
const groupKernel = "kernel"

// app is one invocation of mptcpctl: its output streams and global options.
type app struct {
	stdout, stderr io.Writer
	// json is --json: print documented JSON instead of tables.
	json bool
	// netns is -n/--netns: act in /run/netns/NAME instead of the current
	// network namespace.
	netns string
	// socket is --socket: the daemon's control socket.
	socket string
	// now is the clock used for monitor timestamps.
	now func() time.Time
	// subscribed, if set, is called once monitor is subscribed to events.
	subscribed func()
	// forceEnv is what mptcpctl force touches besides the daemon.
	forceEnv forceEnv
}

// run executes mptcpctl with args (without the program name), writing to
// stdout and stderr, and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return newApp(stdout, stderr).execute(ctx, args)
}

// newApp returns an app writing to stdout and stderr.
func newApp(stdout, stderr io.Writer) *app {
	return &app{stdout: stdout, stderr: stderr, now: time.Now, forceEnv: defaultForceEnv()}
}

// execute runs the command line args and returns the exit code.
func (a *app) execute(ctx context.Context, args []string) int {
	root := a.rootCmd()
	if args == nil {
		args = []string{} // cobra would read os.Args
	}
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(a.stderr, "mptcpctl: %s%s\n", commandPath(cmd), err)
	code := exitCode(err)
	if code == exitUsage && cmd != nil {
		fmt.Fprintf(a.stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

// commandPath returns "endpoints add: " for the command mptcpctl endpoints
// add, "" for the root command.
func commandPath(cmd *cobra.Command) string {
	if cmd == nil || !cmd.HasParent() {
		return ""
	}
	_, p, _ := strings.Cut(cmd.CommandPath(), " ")
	return p + ": "
}

// rootCmd builds the command tree.
func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "mptcpctl",
		Short: "Inspect and control Multipath TCP on Linux",
		Long: `mptcpctl inspects and controls Multipath TCP (MPTCP) on Linux.

The kernel commands talk to the kernel directly, with or without the mptcpgod
daemon: the in-kernel path manager's endpoints and limits, the MPTCP
connections and their subflows, the path-manager event stream, and the
namespace's path manager.

The daemon commands ask the mptcpgod daemon over its control socket
(--socket, default /run/mptcpgod/mptcpgod.sock) for its own state: status,
links, paths, policies, usage, events; reload changes it. When the daemon is not
running they say so; the kernel commands keep working.

The run command gives a program that never asked for MPTCP sockets, with no
change to the program: mptcpctl run PROGRAM [ARGS...].

Every command prints a table by default and documented JSON with --json.
-n NAME acts in the named network namespace /run/netns/NAME, as ip -n does.

Exit status: 0 on success, 1 when the kernel or the system refused (the
kernel's reason is printed), 2 on bad usage (nothing was changed); run exits
as its program does, or 125, 126 or 127 as env(1) does.`,
		Version:           programVersion(),
		SilenceErrors:     true,
		SilenceUsage:      true,
		DisableAutoGenTag: true,
		Args:              subcommandArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return a.validateGlobal()
		},
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetVersionTemplate("mptcpctl {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &usageError{msg: err.Error()}
	})
	pf := root.PersistentFlags()
	pf.BoolVar(&a.json, "json", false, "print JSON (documented, stable field names) instead of a table")
	pf.StringVarP(&a.netns, "netns", "n", "", "act in the network namespace `NAME` (/run/netns/NAME), as ip -n does")
	_ = root.RegisterFlagCompletionFunc("netns", completeNetns)
	pf.StringVar(&a.socket, "socket", ctlapi.DefaultSocket, "reach the daemon through the control socket `PATH` (daemon commands)")

	root.AddGroup(
		&cobra.Group{ID: groupKernel, Title: "Kernel commands (work with or without the daemon):"},
		&cobra.Group{ID: groupDaemon, Title: "Daemon commands (ask mptcpgod over its control socket):"},
		&cobra.Group{ID: groupPrograms, Title: "Programs made Multipath TCP without changing them:"},
	)
	for _, c := range []*cobra.Command{
		a.endpointsCmd(),
		a.limitsCmd(),
		a.connectionsCmd(),
		a.subflowsCmd(),
		a.monitorCmd(),
		a.topCmd(),
		a.pmCmd(),
	} {
		c.GroupID = groupKernel
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{
		a.statusCmd(),
		a.linksCmd(),
		a.pathsCmd(),
		a.policiesCmd(),
		a.usageCmd(),
		a.reloadCmd(),
		a.eventsCmd(),
	} {
		c.GroupID = groupDaemon
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{a.runCmd(), a.forceCmd()} {
		c.GroupID = groupPrograms
		root.AddCommand(c)
	}
	root.AddCommand(a.superviseCmd(), a.genDocsCmd())
	return root
}

// validateGlobal checks the global options before any command acts.
func (a *app) validateGlobal() error {
	if a.netns == "" {
		return nil
	}
	if a.netns == "." || a.netns == ".." || strings.ContainsAny(a.netns, "/\x00") {
		return usagef("--netns %q: invalid namespace name: expected a name from ip netns list", a.netns)
	}
	return nil
}

// subcommandArgs rejects words that name no subcommand, with suggestions.
func subcommandArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 1
	}
	var names []string
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() {
			names = append(names, c.Name())
		}
	}
	msg := fmt.Sprintf("unknown command %q: expected %s", args[0], expected(names))
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean %s?)", expected(s))
	}
	return &usageError{msg: msg}
}

// noArgs rejects any positional word.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected word %q: %s takes no arguments", args[0], cmd.Name())
	}
	return nil
}

// maxArgs accepts at most n words, named by what.
func maxArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > n {
			return usagef("unexpected word %q: expected at most %s", args[n], what)
		}
		return nil
	}
}
