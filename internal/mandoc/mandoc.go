package mandoc

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// Page is what a man page has beside its Markdown body.
type Page struct {
	// Name is the page's name ("mptcpgod.toml") and Section its section
	// ("5").
	Name, Section string
	// Description is the NAME section's one-line description.
	Description string
	// Source and Manual are the .TH footer and header texts ("mptcpgod",
	// "mptcpgod manual").
	Source, Manual string
	// Synopsis, when not empty, is the SYNOPSIS section: lines of text,
	// each its own line in the output.
	Synopsis []string
	// SeeAlso are the SEE ALSO references ("mptcpgod(8)").
	SeeAlso []string
}

// FromMarkdown returns the man page of p with md, Markdown of the subset
// the package describes, as its body. It fails on an unterminated code
// block or a table row whose cell count differs from the header's.
func FromMarkdown(p Page, md []byte) ([]byte, error) {
	if p.Name == "" || p.Section == "" {
		return nil, fmt.Errorf("mandoc: page name %q, section %q: both are needed", p.Name, p.Section)
	}
	w := &writer{}
	w.line(".\\\" Generated from Markdown by internal/mandoc; edit the Markdown source.")
	w.line(fmt.Sprintf(".TH %s %s \"\" %s %s", quote(strings.ToUpper(p.Name)), p.Section, quote(p.Source), quote(p.Manual)))
	w.line(".SH NAME")
	w.line(escape(p.Name) + " \\- " + inline(p.Description))
	if len(p.Synopsis) > 0 {
		w.line(".SH SYNOPSIS")
		w.line(".nf")
		for _, s := range p.Synopsis {
			w.text(inline(s))
		}
		w.line(".fi")
	}
	w.line(".SH DESCRIPTION")
	if err := w.body(strings.Split(strings.TrimRight(string(md), "\n"), "\n")); err != nil {
		return nil, err
	}
	if len(p.SeeAlso) > 0 {
		w.line(".SH SEE ALSO")
		refs := make([]string, len(p.SeeAlso))
		for i, r := range p.SeeAlso {
			name, sec, _ := strings.Cut(r, "(")
			refs[i] = "\\fB" + escape(name) + "\\fR(" + sec
		}
		w.line(strings.Join(refs, ",\n"))
	}
	return w.buf.Bytes(), nil
}

// writer accumulates the page.
type writer struct{ buf bytes.Buffer }

// line writes a line as it is.
func (w *writer) line(s string) {
	w.buf.WriteString(s)
	w.buf.WriteByte('\n')
}

// text writes a line of text, guarded against reading as a request.
func (w *writer) text(s string) {
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = "\\&" + s
	}
	w.line(s)
}

// body writes the Markdown lines.
func (w *writer) body(lines []string) error {
	for i := 0; i < len(lines); {
		l := lines[i]
		switch {
		case strings.TrimSpace(l) == "":
			i++
		case strings.HasPrefix(l, "# "):
			i++ // the title: NAME says it
		case strings.HasPrefix(l, "## "):
			w.line(".SH " + quote(strings.ToUpper(plain(l[3:]))))
			i++
		case strings.HasPrefix(l, "### "):
			w.line(".SS " + quote(plain(l[4:])))
			i++
		case strings.HasPrefix(strings.TrimSpace(l), "```"):
			n, err := w.code(lines[i:], false)
			if err != nil {
				return err
			}
			i += n
		case strings.HasPrefix(l, "|"):
			n, err := w.table(lines[i:])
			if err != nil {
				return err
			}
			i += n
		case strings.HasPrefix(l, "- "):
			n, err := w.list(lines[i:])
			if err != nil {
				return err
			}
			i += n
		default:
			w.line(".PP")
			for ; i < len(lines) && isText(lines[i]); i++ {
				w.text(inline(strings.TrimSpace(lines[i])))
			}
		}
	}
	return nil
}

// isText reports whether l continues a paragraph.
func isText(l string) bool {
	t := strings.TrimSpace(l)
	return t != "" && !strings.HasPrefix(l, "#") && !strings.HasPrefix(t, "```") &&
		!strings.HasPrefix(l, "|") && !strings.HasPrefix(l, "- ")
}

// code writes the fenced code block at the start of lines, indented as
// in the Markdown, and returns the lines it took; in a list item it stays
// in the item.
func (w *writer) code(lines []string, inList bool) (int, error) {
	indent := len(lines[0]) - len(strings.TrimLeft(lines[0], " "))
	if !inList {
		w.line(".PP")
	}
	w.line(".RS 4")
	w.line(".nf")
	for i := 1; i < len(lines); i++ {
		if strings.HasPrefix(strings.TrimSpace(lines[i]), "```") {
			w.line(".fi")
			w.line(".RE")
			return i + 1, nil
		}
		l := lines[i]
		if len(l) >= indent && strings.TrimSpace(l[:indent]) == "" {
			l = l[indent:]
		}
		w.text(escape(l))
	}
	return 0, fmt.Errorf("mandoc: code block %q is not closed", lines[0])
}

// list writes the list at the start of lines, each item with its
// indented continuation lines and code blocks, and returns the lines it
// took.
func (w *writer) list(lines []string) (int, error) {
	i := 0
	for i < len(lines) && strings.HasPrefix(lines[i], "- ") {
		w.line(".IP \\(bu 2")
		w.text(inline(strings.TrimSpace(lines[i][2:])))
		i++
		for more := true; more && i < len(lines); {
			l := lines[i]
			switch {
			case strings.HasPrefix(l, "  ") && strings.HasPrefix(strings.TrimSpace(l), "```"):
				n, err := w.code(lines[i:], true)
				if err != nil {
					return 0, err
				}
				i += n
			case strings.HasPrefix(l, "  ") && strings.TrimSpace(l) != "":
				w.text(inline(strings.TrimSpace(l)))
				i++
			case strings.TrimSpace(l) == "" && i+1 < len(lines) && strings.HasPrefix(lines[i+1], "  "):
				w.line(".IP \"\" 2")
				i++
			default:
				more = false
			}
		}
	}
	w.line(".PP")
	return i, nil
}

// table writes the pipe table at the start of lines and returns the
// lines it took.
func (w *writer) table(lines []string) (int, error) {
	header := cells(lines[0])
	if len(lines) < 2 || !strings.HasPrefix(lines[1], "|-") && !strings.HasPrefix(lines[1], "|:") && !strings.HasPrefix(lines[1], "| -") {
		return 0, fmt.Errorf("mandoc: table %q has no separator line", lines[0])
	}
	keyed := len(header) == 4 && (header[0] == "key" || header[0] == "option") &&
		header[1] == "type" && header[2] == "default" && header[3] == "meaning"
	i := 2
	for ; i < len(lines) && strings.HasPrefix(lines[i], "|"); i++ {
		row := cells(lines[i])
		if len(row) != len(header) {
			return 0, fmt.Errorf("mandoc: table row %q has %d cells, the header %d", lines[i], len(row), len(header))
		}
		w.line(".TP")
		if keyed {
			w.text(inline(row[0]) + " (" + inline(row[1]) + ", default " + inline(row[2]) + ")")
			w.text(inline(row[3]))
			continue
		}
		w.text(inline(row[0]))
		var rest []string
		for j, c := range row[1:] {
			if c == "" {
				continue
			}
			if h := header[j+1]; h != "" {
				c = h + ": " + c
			}
			rest = append(rest, inline(c))
		}
		w.text(strings.Join(rest, "; "))
	}
	w.line(".PP")
	return i, nil
}

// cells splits a table row into its trimmed cells.
func cells(row string) []string {
	row = strings.TrimSpace(row)
	row = strings.TrimPrefix(row, "|")
	row = strings.TrimSuffix(row, "|")
	parts := strings.Split(row, "|")
	for i, p := range parts {
		parts[i] = strings.TrimSpace(p)
	}
	return parts
}

var (
	codeSpan = regexp.MustCompile("`([^`]*)`")
	bold     = regexp.MustCompile(`\*\*([^*]+)\*\*`)
	link     = regexp.MustCompile(`\[((?:[^\[\]]|\[[^\]]*\])+)\]\(([^)]+)\)`)
)

// inline converts a line of Markdown text: code and bold spans to bold,
// links to their text, followed by the target when it is a file or a URL.
func inline(s string) string {
	s = link.ReplaceAllStringFunc(s, func(m string) string {
		sm := link.FindStringSubmatch(m)
		text, target := sm[1], sm[2]
		if strings.HasPrefix(target, "#") || target == text || strings.HasPrefix(target, text+"#") {
			return text
		}
		return text + " (" + target + ")"
	})
	var out strings.Builder
	for {
		loc := codeSpan.FindStringSubmatchIndex(s)
		if loc == nil {
			out.WriteString(prose(s))
			return out.String()
		}
		out.WriteString(prose(s[:loc[0]]))
		out.WriteString("\\fB" + escapeCode(s[loc[2]:loc[3]]) + "\\fR")
		s = s[loc[1]:]
	}
}

// prose converts text outside code spans: bold spans.
func prose(s string) string {
	return bold.ReplaceAllString(escape(s), `\fB$1\fR`)
}

// plain is a heading's text: Markdown marks dropped.
func plain(s string) string {
	s = strings.NewReplacer("`", "", "**", "").Replace(s)
	return escape(link.ReplaceAllString(s, "$1"))
}

// escape escapes the characters roff reads in text: the backslash.
func escape(s string) string { return strings.ReplaceAll(s, `\`, `\e`) }

// escapeCode escapes code: the backslash, and "-" as the minus sign that
// options and command lines need.
func escapeCode(s string) string { return strings.ReplaceAll(escape(s), "-", `\-`) }

// quote quotes a macro argument.
func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\(dq`) + `"` }
