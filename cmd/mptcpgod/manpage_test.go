package main

import (
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgod/mptcpgod/internal/mandoc"
	"github.com/mptcpgod/mptcpgod/internal/testing/mantest"
)

var update = flag.Bool("update", false, "regenerate docs/man/mptcpgod.toml.5 from docs/config.md")

const (
	configDoc  = "../../docs/config.md"
	configPage = "../../docs/man/mptcpgod.toml.5"
	daemonPage = "../../docs/man/mptcpgod.8"
)

// tomlPage is mptcpgod.toml(5) beside its body, docs/config.md.
var tomlPage = mandoc.Page{
	Name:        "mptcpgod.toml",
	Section:     "5",
	Date:        "2026-11-23",
	Description: "configuration file of the mptcpgod Multipath TCP path-manager daemon",
	Source:      "mptcpgod",
	Manual:      "mptcpgod manual",
	Synopsis:    []string{"/etc/mptcpgod/mptcpgod.toml"},
	SeeAlso:     []string{"mptcpgod(8)", "mptcpctl(8)", "systemd.journal-fields(7)"},
}

// docKey is a key row of a table in docs/config.md (as the daemon's
// docs test reads them, which checks them against the code).
var docKey = regexp.MustCompile("(?m)^\\| `([a-z_.]+)` \\| ([^|]+) \\| (`[^`]*`|\\(required\\)) \\| [^|]+ \\|$")

// TestConfigManPage checks that docs/man/mptcpgod.toml.5 is generated from
// docs/config.md as it is now (go test ./cmd/mptcpgod -run
// TestConfigManPage -update regenerates it), and that it documents every
// key and option of docs/config.md, whose keys the daemon's tests check
// against the code, with its default.
func TestConfigManPage(t *testing.T) {
	md, err := os.ReadFile(configDoc)
	if err != nil {
		t.Fatal(err)
	}
	want, err := mandoc.FromMarkdown(tomlPage, md)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(configPage, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(configPage)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s is not docs/config.md's: run go test ./cmd/mptcpgod -run TestConfigManPage -update (-want +got):\n%s", configPage, diff)
	}

	rows := docKey.FindAllStringSubmatch(string(md), -1)
	if len(rows) < 30 {
		t.Fatalf("docs/config.md has %d key rows; the pattern no longer matches its tables", len(rows))
	}
	page := string(got)
	for _, r := range rows {
		key := "\\fB" + r[1] + "\\fR (" + strings.TrimSpace(r[2]) + ", default "
		if !strings.Contains(page, key) {
			t.Errorf("%s lacks key %s (%q)", configPage, r[1], key)
		}
	}
	mantest.Lint(t, configPage)
}

// TestDaemonManPage checks that mptcpgod(8) documents every flag and the
// files and variables mptcpgod reads.
func TestDaemonManPage(t *testing.T) {
	b, err := os.ReadFile(daemonPage)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	// The flags, as the usage lists them.
	var usage strings.Builder
	if _, err := parseFlags([]string{"-h"}, &usage); err == nil {
		t.Fatal("parseFlags -h: no error")
	}
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z-]+)`).FindAllStringSubmatch(usage.String(), -1) {
		names = append(names, m[1])
	}
	if len(names) < 4 {
		t.Fatalf("usage lists %d flags:\n%s", len(names), usage.String())
	}
	for _, n := range names {
		if !strings.Contains(page, `\fB\-\-`+strings.ReplaceAll(n, "-", `\-`)+`\fR`) {
			t.Errorf("%s does not document --%s", daemonPage, n)
		}
	}
	for _, s := range []string{"/etc/mptcpgod/mptcpgod.toml", "JOURNAL_STREAM", "NOTIFY_SOCKET", "MPTCPGOD_TOKEN", "SIGHUP", `\fBmptcpgod.toml\fR(5)`} {
		if !strings.Contains(page, s) {
			t.Errorf("%s does not mention %s", daemonPage, s)
		}
	}
	mantest.Lint(t, daemonPage)
}
