package mandoc

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cpuguy83/go-md2man/v2/md2man"
	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgod/mptcpgod/internal/testing/mantest"
	"github.com/mptcpgod/mptcpgod/internal/testing/runtest"
)

var testPage = Page{Name: "x.toml", Section: "5", Date: "2026-11-23", Description: "the `x` file", Source: "x", Manual: "x manual",
	Synopsis: []string{".x.toml", "x --check"}, SeeAlso: []string{"x(8)", "y(1)"}}

func TestFromMarkdown(t *testing.T) {
	t.Parallel()
	head := ".\\\" Generated from Markdown by internal/mandoc; edit the Markdown source.\n" +
		".TH \"X.TOML\" \"5\" \"2026-11-23\" \"x\" \"x manual\"\n.nr HY 0\n.nh\n\n" +
		".SH NAME\nx.toml \\- the \\fBx\\fR file\n\n" +
		".SH SYNOPSIS\n\\&.x.toml\n.br\nx --check\n\n" +
		".SH DESCRIPTION\n"
	tail := "\n.SH SEE ALSO\n\\fBx\\fP(8),\n\\fBy\\fP(1)\n"
	tests := []struct {
		name, md, want string
	}{
		{
			name: "headings and paragraphs",
			md:   "# Title\n\nSome `--flag` and **bold**\n.dot line \\\\ back\n\n## Keys `[x]`\n\n### `[links]`: **links**\ntext\n",
			want: "Some \\fB--flag\\fR and \\fBbold\\fP\n\\&.dot line \\\\ back\n\n.SH KEYS [X]\n.SS [links]: links\ntext\n",
		},
		{
			name: "links",
			md:   "See [Policies](#policies), [policies.md](policies.md#backup), [`[usage]`](#usage), [a `b` c](x.md) and <https://example.org>.\n",
			want: "See Policies, policies.md, \\fB[usage]\\fR, a \\fBb\\fR c (x.md) and https://example.org\\&.\n",
		},
		{
			name: "key table",
			md:   "| key | type | default | meaning |\n|---|---|---|---|\n| `a.b` | string | `\"x-y\"` | The `a`. |\n| `c` | table | (required) | C. |\n\nafter\n",
			want: ".TP\n\\fBa.b\\fR (string, default \\fB\"x-y\"\\fR)\nThe \\fBa\\fR\\&.\n\n.TP\n\\fBc\\fR (table, default (required))\nC.\n\n.PP\nafter\n",
		},
		{
			name: "other table",
			md:   "| path | what | mode |\n|---|---|---|\n| `/usr/bin/x` | the binary | 0755 |\n| `/etc/x` | | 0644 |\n| `/run/x` | | |\n",
			want: ".TP\n\\fB/usr/bin/x\\fR\nwhat: the binary; mode: 0755\n\n.TP\n\\fB/etc/x\\fR\nmode: 0644\n\n.TP\n\\fB/run/x\\fR\n",
		},
		{
			name: "code block",
			md:   "text\n\n```toml\n[x]\n.a = 1\n'b\n```\n",
			want: "text\n\n.EX\n[x]\n\\&.a = 1\n\\&'b\n.EE\n",
		},
		{
			name: "list",
			md:   "- one\n  more\n- two\n\nend\n",
			want: ".IP \\(bu 2\none\nmore\n.IP \\(bu 2\ntwo\n\n.PP\nend\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := FromMarkdown(testPage, []byte(tt.md))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(head+tt.want+tail, string(got)); diff != "" {
				t.Errorf("page (-want +got):\n%s", diff)
			}
			path := filepath.Join(t.TempDir(), "x.toml.5")
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			mantest.Lint(t, path)
		})
	}
}

func TestFromMarkdownErrors(t *testing.T) {
	t.Parallel()
	page := Page{Name: "x", Section: "8"}
	tests := []struct {
		name string
		page Page
		md   string
		want string
	}{
		{"no name", Page{Section: "5"}, "x", "mandoc: page name"},
		{"quote in the source", Page{Name: "x", Section: "8", Source: `a "b"`}, "x", `mandoc: page source "a \"b\"": a double quote`},
		{"code block in a list", page, "text\n\n- a\n\n  ```\n  x\n  ```\n- b\n", "mandoc: line 5: a code block in a list item"},
		{"code block in a list, no blank line", page, "- a\n    ~~~sh\n    x\n    ~~~\n", "mandoc: line 2: a code block in a list item"},
	}
	for _, tt := range tests {
		_, err := FromMarkdown(tt.page, []byte(tt.md))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one with %q", tt.name, err, tt.want)
		}
	}
	if _, err := FromMarkdown(page, []byte("```md\n  - a\n```\n\n- b\n")); err != nil {
		t.Errorf("an indented list in a code block: %v", err)
	}
}

// TestLibraryDefects shows what the package rewrites or refuses, as
// go-md2man renders it unaided: when one of these stops failing, the
// rewrite (or the refusal) can go.
func TestLibraryDefects(t *testing.T) {
	t.Parallel()
	render := func(md string) string { return string(md2man.Render([]byte(md))) }

	// The level-1 heading becomes a .TH, after the one the page's header
	// has.
	if out := render("# Title\n\ntext\n"); !strings.Contains(out, ".TH Title\n") {
		t.Errorf("go-md2man renders a level-1 heading without .TH:\n%s\nrewrite can leave it to go-md2man", out)
	}
	// The items after a code block in a list item become text.
	if out := render("- one\n\n  ```ini\n  code\n  ```\n\n  more\n- two\n"); !strings.Contains(out, "\n- two") {
		t.Errorf("go-md2man renders a list with a code block as a list:\n%s\nlift checkFences", out)
	}
	// A link keeps only its first text node: an empty one before a code
	// span, and "a " of "a `b` c".
	if out := render("[`[usage]`](#usage), [a `b` c](x.md)\n"); strings.Contains(out, "usage]\\f") || strings.Contains(out, " c") {
		t.Errorf("go-md2man renders a link's whole text:\n%s\nrewriteLink can leave links to go-md2man", out)
	}
	// A table is tbl's, boxed: too wide for a terminal when its cells
	// are long.
	long := strings.Repeat("A meaning that runs on and on, as docs/config.md's do. ", 8)
	out := render("| key | type | default | meaning |\n|---|---|---|---|\n| `links.exclude_kinds` | array of strings | `[\"virtual\", \"loopback\"]` | " + long + "|\n")
	if !strings.Contains(out, ".TS\nallbox;") {
		t.Errorf("go-md2man renders a table without tbl:\n%s", out)
	}
	groff, err := exec.LookPath("groff")
	if err != nil {
		runtest.Unavailable(t, fmt.Sprintf("groff not found (apt-get install groff-base): the table's width and hyphenation not checked: %v", err))
	}
	cmd := exec.Command(groff, "-t", "-man", "-ww", "-z", "-Tutf8")
	cmd.Stdin = strings.NewReader(".TH X 5\n" + out)
	msgs, _ := cmd.CombinedOutput()
	if !strings.Contains(string(msgs), "table wider than line width") {
		t.Errorf("groff fits go-md2man's table in a terminal (%q): tableList can leave tables to go-md2man", msgs)
	}
	// .EE turns hyphenation back on after go-md2man's .nh.
	cmd = exec.Command(groff, "-man", "-Tutf8")
	cmd.Stdin = strings.NewReader(".TH X 5\n" + render("```\ncode\n```\n\n"+strings.Repeat("Hyphenation is on again after the example: hyphenated. ", 12)+"\n"))
	text, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(text), "‐\n") {
		t.Errorf("no word broken across lines after .EE:\n%s\nthe header can leave HY alone", text)
	}
}
