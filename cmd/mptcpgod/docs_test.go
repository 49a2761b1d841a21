package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestQuickstartConfigs checks every TOML block of docs/quickstart.md
// with --check-config, and the error it shows for a misspelt key.
func TestQuickstartConfigs(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/quickstart.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```toml\n(.*?)```\n").FindAllSubmatch(doc, -1)
	if len(blocks) != 2 {
		t.Fatalf("docs/quickstart.md has %d TOML blocks, want the laptop's and the server's", len(blocks))
	}
	dir := t.TempDir()
	check := func(name string, text []byte) (int, string) {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, text, 0o644); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		code := run([]string{"--check-config", "--config", path}, &stdout, &stderr, nil)
		return code, strings.ReplaceAll(stderr.String(), path, "/etc/mptcpgod/mptcpgod.toml")
	}
	for i, b := range blocks {
		if code, stderr := check("block.toml", b[1]); code != exitOK {
			t.Errorf("TOML block %d: --check-config exit %d:\n%s\n%s", i, code, stderr, b[1])
		}
	}
	bad := bytes.Replace(blocks[0][1], []byte("hold_time"), []byte("hold_tim"), 1)
	code, stderr := check("bad.toml", bad)
	if code != exitUsage || stderr == "" || !bytes.Contains(doc, []byte(stderr)) {
		t.Errorf("the laptop's file with hold_tim: exit %d, stderr %q; docs/quickstart.md should show that", code, stderr)
	}
}
