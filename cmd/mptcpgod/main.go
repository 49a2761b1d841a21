package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
	sdjournal "github.com/coreos/go-systemd/v22/journal"

	"github.com/mptcpgod/mptcpgod/internal/daemon"
	"github.com/mptcpgod/mptcpgod/internal/journal"
	_ "github.com/mptcpgod/mptcpgod/plugins/all" // the built-in policies
)

// version is the program version, set with
// -ldflags "-X main.version=v1.2.3"; otherwise it comes from the build info.
var version = ""

// Exit statuses.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

func main() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, sigs))
}

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

// options are the command line's.
type options struct {
	config      string
	configSet   bool // --config was given
	checkConfig bool
	version     bool
	logLevel    string
}

// parseFlags parses args; the error has been printed with the usage.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fset := flag.NewFlagSet("mptcpgod", flag.ContinueOnError)
	fset.SetOutput(stderr)
	fset.StringVar(&o.config, "config", daemon.DefaultPath, "the configuration `file`")
	fset.BoolVar(&o.checkConfig, "check-config", false,
		`check the configuration and exit: print "config ok" and exit 0, or print the errors and exit 2`)
	fset.BoolVar(&o.version, "version", false, "print the version and exit")
	fset.StringVar(&o.logLevel, "log-level", "",
		"log `level`: debug, info, warn or error (default: log_level of the configuration)")
	fset.Usage = func() {
		fmt.Fprintf(stderr, "Usage: mptcpgod [--config FILE] [--log-level LEVEL] | --check-config | --version\n\n")
		fset.PrintDefaults()
	}
	if err := fset.Parse(args); err != nil {
		return o, err
	}
	if fset.NArg() > 0 {
		err := fmt.Errorf("unexpected argument %q", fset.Arg(0))
		fmt.Fprintf(stderr, "mptcpgod: %v\n", err)
		fset.Usage()
		return o, err
	}
	fset.Visit(func(f *flag.Flag) { o.configSet = o.configSet || f.Name == "config" })
	if o.logLevel != "" {
		if _, err := daemon.ParseLevel(o.logLevel); err != nil {
			fmt.Fprintf(stderr, "mptcpgod: --log-level: %q is not debug, info, warn or error\n", o.logLevel)
			return o, err
		}
	}
	return o, nil
}

// run is mptcpgod with args (without the program name), writing to
// stdout and stderr, handling the signals that arrive on sigs; it returns
// the exit status.
func run(args []string, stdout, stderr io.Writer, sigs <-chan os.Signal) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return exitUsage
	}
	if o.version {
		fmt.Fprintln(stdout, "mptcpgod", programVersion())
		return exitOK
	}
	if o.checkConfig {
		return checkConfig(o, stdout, stderr)
	}

	level := new(slog.LevelVar)
	onJournal := false
	if stderr == io.Writer(os.Stderr) {
		// A JOURNAL_STREAM that does not parse is not the journal's.
		onJournal, _ = sdjournal.StderrIsJournalStream()
	}
	log, closeLog := newLogger(stderr, level, onJournal)
	defer closeLog()
	cfg, err := loadConfig(o, log)
	if err != nil {
		printErrors(stderr, err)
		return exitUsage
	}
	d, err := daemon.New(cfg, daemon.Options{Logger: log, Level: level, Version: programVersion(), ConfigFile: o.config,
		LoadConfig: func() (*daemon.Config, error) { return loadConfig(o, log) }})
	if err != nil {
		log.Error("cannot start", "error", err)
		return exitFailed
	}
	return serve(d, o, log, sigs)
}

// reloadTimeout bounds a reload's wait for the engine, so that a stuck
// engine cannot hold up the signals that follow.
const reloadTimeout = 10 * time.Second

// serve runs d until SIGINT or SIGTERM, reloading on SIGHUP.
func serve(d *daemon.Daemon, o options, log *slog.Logger, sigs <-chan os.Signal) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	for {
		select {
		case err := <-done:
			if err != nil {
				log.Error("stopped", "error", err)
				return exitFailed
			}
			return exitOK
		case sig := <-sigs:
			if sig != syscall.SIGHUP {
				log.Info("stopping", "signal", sig.String())
				_, _ = sd.SdNotify(false, sd.SdNotifyStopping)
				cancel()
				continue
			}
			log.Info("reloading", "config", o.config)
			cfg, err := loadConfig(o, log)
			if err == nil {
				rctx, rcancel := context.WithTimeout(ctx, reloadTimeout)
				err = d.Reload(rctx, cfg)
				rcancel()
			}
			if err != nil {
				log.Error("configuration refused; the running one stays", "error", err)
			}
		}
	}
}

// loadConfig loads the configuration file, or returns the defaults when
// the default file does not exist, and applies --log-level.
func loadConfig(o options, log *slog.Logger) (*daemon.Config, error) {
	cfg, err := daemon.Load(o.config)
	if errors.Is(err, fs.ErrNotExist) && !o.configSet {
		log.Info("no configuration file, using the defaults", "config", o.config)
		cfg, err = daemon.DefaultConfig(), nil
	}
	if err != nil {
		return nil, err
	}
	if o.logLevel != "" {
		cfg.LogLevel, _ = daemon.ParseLevel(o.logLevel)
	}
	for _, w := range cfg.Warnings {
		log.Warn("configuration", "warning", w.Error())
	}
	return cfg, nil
}

// checkConfig is --check-config: the file must parse and its policies
// build.
func checkConfig(o options, stdout, stderr io.Writer) int {
	cfg, err := daemon.Load(o.config)
	if err == nil {
		var r interface{ Close() error }
		if r, err = cfg.BuildPolicy(); err == nil {
			err = r.Close()
		}
	}
	if err != nil {
		printErrors(stderr, err)
		return exitUsage
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stderr, "mptcpgod: warning: %v\n", w)
	}
	fmt.Fprintln(stdout, "config ok")
	return exitOK
}

// printErrors prints err, one line per joined error, each prefixed with
// "mptcpgod: ".
func printErrors(w io.Writer, err error) {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			printErrors(w, e)
		}
		return
	}
	fmt.Fprintf(w, "mptcpgod: %v\n", err)
}

// journalSocket is the journal's native socket; tests point it at a
// stand-in.
var journalSocket = journal.DefaultSocket

// newLogger returns the logger at level. When stderr is the journal's
// stream (onJournal: systemd started mptcpgod with StandardError=journal
// and JOURNAL_STREAM names stderr's device and inode) it writes native
// journal entries, each attribute a field (docs/logging.md), and falls
// back to text on stderr without timestamps, which the journal adds, for
// an entry the journal socket does not take. Otherwise it writes text on
// stderr. The returned function closes the journal socket.
func newLogger(stderr io.Writer, level slog.Leveler, onJournal bool) (*slog.Logger, func()) {
	if !onJournal {
		return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})), func() {}
	}
	text := slog.NewTextHandler(stderr, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})
	h, err := journal.NewHandler(&journal.Options{Socket: journalSocket, Level: level, Fallback: text})
	if err != nil {
		log := slog.New(text)
		log.Warn("logging as text: no journal socket", "error", err)
		return log, func() {}
	}
	return slog.New(h), func() { _ = h.Close() }
}
