package main

import (
	"bytes"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgod/mptcpgod/internal/journal"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.toml", "mode = \"kernel\"\n[links]\ninclude_kinds = [\"virtual\"]\n")
	bad := write("bad.toml", "mode = \"kernal\"\n\n[engine]\nworkers = 0\nwokers = 2\n")
	badPolicy := write("policy.toml", "[[policy.chain]]\nname = \"fullmesh\"\nconfig = { max_subflow = 2 }\n")
	missing := filepath.Join(dir, "missing.toml")
	everywhere := write("metrics.toml", "[metrics]\nlisten = \":9464\"\n")
	longSocket := write("socket.toml", "[control]\nsocket = \"/run/"+strings.Repeat("x", 98)+".sock\"\n")

	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     string
		stderrHas  []string
		stderrNone bool
	}{
		{name: "version", args: []string{"--version"}, code: 0, stdout: "mptcpgod v1.2.3\n", stderrNone: true},
		{name: "check good", args: []string{"--check-config", "--config", good}, code: 0, stdout: "config ok\n", stderrNone: true},
		{name: "check dist", args: []string{"--check-config", "--config", "../../dist/mptcpgod.toml"}, code: 0, stdout: "config ok\n", stderrNone: true},
		{
			name: "check bad", args: []string{"--check-config", "--config", bad}, code: 2,
			stderrHas: []string{
				"mptcpgod: " + bad + ":5: unknown key \"engine.wokers\"\n",
			},
		},
		{
			name: "check bad policy", args: []string{"-check-config", "-config", badPolicy}, code: 2,
			stderrHas: []string{
				"mptcpgod: " + badPolicy + ":3: key \"policy.chain[0].config.max_subflow\": policy/fullmesh: unknown option \"max_subflow\"\n",
			},
		},
		{
			name: "check metrics everywhere", args: []string{"--check-config", "--config", everywhere}, code: 0, stdout: "config ok\n",
			stderrHas: []string{"mptcpgod: warning: " + everywhere + ":2: key \"metrics.listen\": \":9464\" serves the metrics"},
		},
		{
			name: "check socket path", args: []string{"--check-config", "--config", longSocket}, code: 2,
			stderrHas: []string{"mptcpgod: " + longSocket + ":2: key \"control.socket\": ", "is 108 bytes long; a Unix socket's path has at most 107\n"},
		},
		{name: "check missing", args: []string{"--check-config", "--config", missing}, code: 2, stderrHas: []string{missing, "no such file"}},
		{name: "help", args: []string{"-h"}, code: 0, stderrHas: []string{"Usage: mptcpgod", "-check-config", "-log-level"}},
		{name: "unknown flag", args: []string{"--verbose"}, code: 2, stderrHas: []string{"flag provided but not defined: -verbose"}},
		{name: "argument", args: []string{"extra"}, code: 2, stderrHas: []string{`unexpected argument "extra"`}},
		{name: "bad log level", args: []string{"--log-level", "loud"}, code: 2, stderrHas: []string{`--log-level: "loud" is not debug, info, warn or error`}},
		{name: "run with a bad config", args: []string{"--config", bad}, code: 2, stderrHas: []string{bad + ":1: key \"mode\": \"kernal\" is not auto, kernel or userspace"}},
	}
	version = "v1.2.3"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tt.args, &stdout, &stderr, nil)
			if code != tt.code {
				t.Errorf("exit status %d, want %d; stderr:\n%s", code, tt.code, stderr.String())
			}
			if diff := cmp.Diff(tt.stdout, stdout.String()); diff != "" {
				t.Errorf("stdout (-want +got):\n%s", diff)
			}
			if tt.stderrNone && stderr.Len() > 0 {
				t.Errorf("stderr: %s", stderr.String())
			}
			for _, s := range tt.stderrHas {
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr.String())
				}
			}
		})
	}
}

// standInJournal listens on a datagram socket in a test directory, as
// the journal's native socket, and returns its path and the entries'
// reader: each entry's KEY=VALUE fields by name (the entries here have no
// multi-line values).
func standInJournal(t *testing.T) (string, func() map[string]string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "journal.socket")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return path, func() map[string]string {
		t.Helper()
		if err := conn.SetReadDeadline(time.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1<<16)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("stand-in journal: %v", err)
		}
		fields := map[string]string{}
		for line := range strings.Lines(string(buf[:n])) {
			k, v, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
			if k != "CODE_FILE" && k != "CODE_LINE" && k != "CODE_FUNC" {
				fields[k] = v
			}
		}
		return fields
	}
}

// TestNewLogger checks the logger's choice: native journal entries when
// stderr is the journal's stream, text otherwise, and text without
// timestamps when the journal's socket is gone. (Whether stderr is the
// journal's stream is go-systemd's StderrIsJournalStream; dist's
// TestUnitRunsDaemon sees the entries arrive in a real journal.)
func TestNewLogger(t *testing.T) {
	socket, next := standInJournal(t)
	journalSocket = socket
	t.Cleanup(func() { journalSocket = journal.DefaultSocket })
	missing := filepath.Join(t.TempDir(), "missing.socket")

	tests := []struct {
		name      string
		onJournal bool
		socket    string
		level     slog.Level
		journal   map[string]string // the entry of the Info line, nil for none
		want      []string          // in the text on stderr
		notWant   []string
	}{
		{
			name: "terminal", socket: socket, level: slog.LevelInfo,
			want: []string{"time=", `level=INFO msg="subflow created" component=pm token=0000abcd link=wlan0`}, notWant: []string{"level=DEBUG"},
		},
		{
			name: "terminal, debug", socket: socket, level: slog.LevelDebug,
			want: []string{"time=", `level=INFO msg="subflow created" component=pm token=0000abcd link=wlan0`, "level=DEBUG"},
		},
		{
			name: "journal", onJournal: true, socket: socket, level: slog.LevelInfo,
			journal: map[string]string{
				"MESSAGE": "subflow created", "PRIORITY": "6", "SYSLOG_IDENTIFIER": "mptcpgod",
				"MPTCPGOD_COMPONENT": "pm", "MPTCPGOD_TOKEN": "0000abcd", "MPTCPGOD_LINK": "wlan0",
			},
			notWant: []string{"subflow created"},
		},
		{
			name: "journal gone", onJournal: true, socket: missing, level: slog.LevelDebug,
			want: []string{`level=INFO msg="subflow created" component=pm token=0000abcd link=wlan0`, "level=DEBUG"}, notWant: []string{"time="},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			journalSocket = tt.socket
			var stderr bytes.Buffer
			lv := new(slog.LevelVar)
			lv.Set(tt.level)
			log, closeLog := newLogger(&stderr, lv, tt.onJournal)
			log = log.With("component", "pm")
			log.Info("subflow created", "token", "0000abcd", "link", "wlan0")
			log.Debug("details")
			closeLog()
			if tt.journal != nil {
				if diff := cmp.Diff(tt.journal, next()); diff != "" {
					t.Errorf("journal entry (-want +got):\n%s", diff)
				}
			}
			text := stderr.String()
			for _, s := range tt.want {
				if !strings.Contains(text, s) {
					t.Errorf("stderr lacks %q:\n%s", s, text)
				}
			}
			for _, s := range tt.notWant {
				if strings.Contains(text, s) {
					t.Errorf("stderr has %q:\n%s", s, text)
				}
			}
		})
	}
}
