package exec_test

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"

	"github.com/mptcpgod/mptcpgod/internal/daemon"
	"github.com/mptcpgod/mptcpgod/internal/testing/runtest"
	"github.com/mptcpgod/mptcpgod/internal/usage"
	_ "github.com/mptcpgod/mptcpgod/plugins/all"
	_ "github.com/mptcpgod/mptcpgod/plugins/costaware"
)

// tomlBlock matches a fenced TOML block of a Markdown file.
var tomlBlock = regexp.MustCompile("(?s)```toml\n(.*?)```")

// TestDocs: the configurations of docs/plugins.md and the example
// configurations of docs/policies.md are files the daemon reads, and
// their policies build, each block a subtest named by its file and number.
// The [usage] table is checked as package usage reads it.
func TestDocs(t *testing.T) {
	t.Parallel()
	read := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	plugins := read("../../docs/plugins.md")
	_, examples, ok := strings.Cut(read("../../docs/policies.md"), "\n## Example configurations\n")
	if !ok {
		t.Fatal("docs/policies.md has no Example configurations section")
	}
	if i := strings.Index(examples, "\n## "); i >= 0 {
		examples = examples[:i]
	}
	pluginBlocks := tomlBlock.FindAllStringSubmatch(plugins, -1)
	exampleBlocks := tomlBlock.FindAllStringSubmatch(examples, -1)
	if len(pluginBlocks) < 2 || len(exampleBlocks) != 3 {
		t.Fatalf("%d TOML blocks in docs/plugins.md, %d examples in docs/policies.md", len(pluginBlocks), len(exampleBlocks))
	}
	for i, m := range append(pluginBlocks, exampleBlocks...) {
		name := fmt.Sprintf("plugins.md#%d", i+1)
		if i >= len(pluginBlocks) {
			name = fmt.Sprintf("policies.md#%d", i-len(pluginBlocks)+1)
		}
		t.Run(name, func(t *testing.T) {
			block := m[1]
			if strings.Contains(block, "/usr/bin/python3") {
				// exec's Validate checks the program.
				if _, err := os.Stat("/usr/bin/python3"); err != nil {
					runtest.Unavailable(t, fmt.Sprintf("a configuration with python3: %v", err))
				}
			}
			checkConfig(t, block)
		})
	}
}

// checkConfig parses a configuration file's text and builds its policies.
func checkConfig(t *testing.T, text string) {
	t.Helper()
	var tables map[string]any
	if err := toml.Unmarshal([]byte(text), &tables); err != nil {
		t.Fatalf("%v in\n%s", err, text)
	}
	if u, ok := tables["usage"]; ok {
		delete(tables, "usage")
		b, err := toml.Marshal(u)
		if err != nil {
			t.Fatal(err)
		}
		var f usage.File
		d := toml.NewDecoder(bytes.NewReader(b))
		d.DisallowUnknownFields()
		if err := d.Decode(&f); err != nil {
			t.Errorf("[usage]: %v in\n%s", err, text)
		} else if _, _, err := f.Config(); err != nil {
			t.Errorf("[usage]: %v in\n%s", err, text)
		}
	}
	rest, err := toml.Marshal(tables)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := daemon.Parse("example", rest)
	if err != nil {
		t.Fatalf("%v in\n%s", err, text)
	}
	r, err := cfg.BuildPolicy()
	if err != nil {
		t.Fatalf("%v in\n%s", err, text)
	}
	if err := r.Close(); err != nil {
		t.Error(err)
	}
}

// TestDocsError: the error docs/plugins.md shows is the daemon's.
func TestDocsError(t *testing.T) {
	t.Parallel()
	cfg, err := daemon.Parse("/etc/mptcpgod/mptcpgod.toml", []byte(`
[[policy.chain]]
name = "fullmesh"

[[policy.chain]]
name = "exec"
[policy.chain.config]
command = ["/bin/sh"]
timeout = "2s"
`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = cfg.BuildPolicy()
	const want = `key "policy.chain[1].config.timeout": policy/exec: option "timeout": 2s is not in 1ms..1s`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("BuildPolicy: %v, want %s", err, want)
	}
	doc, err := os.ReadFile("../../docs/plugins.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), want) {
		t.Errorf("docs/plugins.md does not show %s", want)
	}
}
