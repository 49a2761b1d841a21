package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
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

func TestNewLogger(t *testing.T) {
	tests := []struct {
		name    string
		journal bool
		level   slog.Level
		want    []string
		notWant []string
	}{
		{name: "terminal", level: slog.LevelInfo, want: []string{"time=", `level=INFO msg="subflow created" token=7`}, notWant: []string{"level=DEBUG"}},
		{name: "journal", journal: true, level: slog.LevelDebug, want: []string{`level=INFO msg="subflow created" token=7`, "level=DEBUG"}, notWant: []string{"time="}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			lv := new(slog.LevelVar)
			lv.Set(tt.level)
			log := newLogger(&buf, lv, tt.journal)
			log.Info("subflow created", "token", 7)
			log.Debug("details")
			for _, s := range tt.want {
				if !strings.Contains(buf.String(), s) {
					t.Errorf("log lacks %q:\n%s", s, buf.String())
				}
			}
			for _, s := range tt.notWant {
				if strings.Contains(buf.String(), s) {
					t.Errorf("log has %q:\n%s", s, buf.String())
				}
			}
		})
	}
}
