package mandoc

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFromMarkdown(t *testing.T) {
	t.Parallel()
	page := Page{Name: "x.toml", Section: "5", Description: "the `x` file", Source: "x", Manual: "x manual",
		Synopsis: []string{".x.toml"}, SeeAlso: []string{"x(8)", "y(1)"}}
	head := ".\\\" Generated from Markdown by internal/mandoc; edit the Markdown source.\n" +
		".TH \"X.TOML\" 5 \"\" \"x\" \"x manual\"\n.SH NAME\nx.toml \\- the \\fBx\\fR file\n" +
		".SH SYNOPSIS\n.nf\n\\&.x.toml\n.fi\n.SH DESCRIPTION\n"
	tail := ".SH SEE ALSO\n\\fBx\\fR(8),\n\\fBy\\fR(1)\n"
	tests := []struct {
		name, md, want string
	}{
		{
			name: "headings and paragraphs",
			md:   "# Title\n\nSome `--flag` and **bold**\n.dot line \\ back\n\n## Keys `[x]`\n\n### `[links]`: links\ntext\n",
			want: ".PP\nSome \\fB\\-\\-flag\\fR and \\fBbold\\fR\n\\&.dot line \\e back\n.SH \"KEYS [X]\"\n.SS \"[links]: links\"\n.PP\ntext\n",
		},
		{
			name: "links",
			md:   "See [Policies](#policies), [policies.md](policies.md#backup), [`[usage]`](#usage) and [the site](https://example.com).\n",
			want: ".PP\nSee Policies, policies.md, \\fB[usage]\\fR and the site (https://example.com).\n",
		},
		{
			name: "key table",
			md:   "| key | type | default | meaning |\n|---|---|---|---|\n| `a.b` | string | `\"x-y\"` | The `a`. |\n| `c` | table | (required) | C. |\n",
			want: ".TP\n\\fBa.b\\fR (string, default \\fB\"x\\-y\"\\fR)\nThe \\fBa\\fR.\n.TP\n\\fBc\\fR (table, default (required))\nC.\n.PP\n",
		},
		{
			name: "other table",
			md:   "| path | |\n|---|---|\n| `/usr/bin/x` | the binary |\n",
			want: ".TP\n\\fB/usr/bin/x\\fR\nthe binary\n.PP\n",
		},
		{
			name: "code block",
			md:   "```toml\n[x]\n.a = \"\\n\"\n```\n",
			want: ".PP\n.RS 4\n.nf\n[x]\n\\&.a = \"\\en\"\n.fi\n.RE\n",
		},
		{
			name: "list with code",
			md:   "- one\n  more\n\n  ```ini\n  [c]\n  ```\n\n  after\n- two\n\nend\n",
			want: ".IP \\(bu 2\none\nmore\n.IP \"\" 2\n.RS 4\n.nf\n[c]\n.fi\n.RE\n.IP \"\" 2\nafter\n.IP \\(bu 2\ntwo\n.PP\n.PP\nend\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := FromMarkdown(page, []byte(tt.md))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(head+tt.want+tail, string(got)); diff != "" {
				t.Errorf("page (-want +got):\n%s", diff)
			}
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
		{"open code block", page, "```\nx\n", "mandoc: code block"},
		{"open code block in a list", page, "- a\n  ```\n  x\n", "mandoc: code block"},
		{"short row", page, "| a | b |\n|---|---|\n| c |\n", "has 1 cells, the header 2"},
		{"no separator", page, "| a | b |\n| c | d |\n", "has no separator line"},
	}
	for _, tt := range tests {
		_, err := FromMarkdown(tt.page, []byte(tt.md))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one with %q", tt.name, err, tt.want)
		}
	}
}
