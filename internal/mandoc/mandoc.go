package mandoc

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/cpuguy83/go-md2man/v2/md2man"
	"github.com/russross/blackfriday/v2"
)

// Page is what a man page has beside its Markdown body.
type Page struct {
	// Name is the page's name ("mptcpgod.toml") and Section its section
	// ("5").
	Name, Section string
	// Description is the NAME section's one-line description, in
	// Markdown.
	Description string
	// Date is the page's date in the .TH line, as YYYY-MM-DD.
	Date string
	// Source and Manual are the .TH footer and header texts ("mptcpgod",
	// "mptcpgod manual").
	Source, Manual string
	// Synopsis, when not empty, is the SYNOPSIS section: lines of
	// Markdown, each its own line in the output.
	Synopsis []string
	// SeeAlso are the SEE ALSO references ("mptcpgod(8)").
	SeeAlso []string
}

// header is the first line of every page.
const header = `.\" Generated from Markdown by internal/mandoc; edit the Markdown source.`

// FromMarkdown returns the man page of p with md, Markdown, as its
// DESCRIPTION: md's level-1 heading is dropped, its tables become tagged
// paragraphs and its links their text (see the package doc); go-md2man
// writes the roff. It fails when p has no name or section, when a field
// of the .TH line holds a double quote or a line break, and on a code
// block in a list item, which the parser mangles.
func FromMarkdown(p Page, md []byte) ([]byte, error) {
	if p.Name == "" || p.Section == "" {
		return nil, fmt.Errorf("mandoc: page name %q, section %q: both are needed", p.Name, p.Section)
	}
	if err := checkFences(md); err != nil {
		return nil, err
	}
	for _, f := range []struct{ name, value string }{
		{"name", p.Name}, {"section", p.Section}, {"date", p.Date}, {"source", p.Source}, {"manual", p.Manual},
	} {
		if strings.ContainsAny(f.value, "\"\n") {
			return nil, fmt.Errorf("mandoc: page %s %q: a double quote or a line break cannot be in the .TH line", f.name, f.value)
		}
	}
	r := md2man.NewRoffRenderer()
	parse := func(md string) *blackfriday.Node {
		return blackfriday.New(blackfriday.WithExtensions(r.GetExtensions())).Parse([]byte(md))
	}

	var head strings.Builder
	fmt.Fprintf(&head, "## NAME\n\n%s - %s\n\n", p.Name, p.Description)
	if len(p.Synopsis) > 0 {
		// Two trailing spaces are a hard line break.
		fmt.Fprintf(&head, "## SYNOPSIS\n\n%s\n\n", strings.Join(p.Synopsis, "  \n"))
	}
	head.WriteString("## DESCRIPTION\n")
	doc := parse(head.String())
	body := parse(string(md))
	rewrite(body)
	appendChildren(doc, body)
	if len(p.SeeAlso) > 0 {
		refs := make([]string, len(p.SeeAlso))
		for i, ref := range p.SeeAlso {
			name, sec, _ := strings.Cut(ref, "(")
			refs[i] = "**" + name + "**(" + sec
		}
		appendChildren(doc, parse("## SEE ALSO\n\n"+strings.Join(refs, ",\n")+"\n"))
	}

	// The header is ours, not go-md2man's RenderHeader (which writes
	// only .nh, and the tbl line that tables, rewritten, no longer need):
	// hyphenation off for good, HY being what .EE turns it back on to.
	var out bytes.Buffer
	out.WriteString(header + "\n")
	fmt.Fprintf(&out, ".TH \"%s\" \"%s\" \"%s\" \"%s\" \"%s\"\n", strings.ToUpper(p.Name), p.Section, p.Date, p.Source, p.Manual)
	out.WriteString(".nr HY 0\n.nh\n")
	doc.Walk(func(n *blackfriday.Node, entering bool) blackfriday.WalkStatus {
		return r.RenderNode(&out, n, entering)
	})
	r.RenderFooter(&out, doc)
	return out.Bytes(), nil
}

// checkFences fails on an indented code fence outside a code block: a
// code block in a list item, after which blackfriday v2.1.0 takes the
// rest of the list for text (russross/blackfriday#526, #536).
func checkFences(md []byte) error {
	inCode := false
	for i, l := range strings.Split(string(md), "\n") {
		t := strings.TrimLeft(l, " \t")
		if !strings.HasPrefix(t, "```") && !strings.HasPrefix(t, "~~~") {
			continue
		}
		if len(t) < len(l) && !inCode {
			return fmt.Errorf("mandoc: line %d: a code block in a list item, which go-md2man's parser cannot read: move it out of the list", i+1)
		}
		inCode = !inCode
	}
	return nil
}

// rewrite turns the parts of a Markdown document that read badly in a
// man page into ones that read well: it drops the level-1 heading (the
// page's NAME says it), makes headings plain text (and the .SH ones upper
// case), tables lists of tagged paragraphs and links their text.
func rewrite(doc *blackfriday.Node) {
	var headings, tables, links []*blackfriday.Node
	doc.Walk(func(n *blackfriday.Node, entering bool) blackfriday.WalkStatus {
		if !entering {
			return blackfriday.GoToNext
		}
		switch n.Type {
		case blackfriday.Heading:
			headings = append(headings, n)
			return blackfriday.SkipChildren
		case blackfriday.Table:
			tables = append(tables, n)
		case blackfriday.Link:
			links = append(links, n)
		}
		return blackfriday.GoToNext
	})
	for _, h := range headings {
		if h.Level == 1 {
			h.Unlink()
			continue
		}
		text := plainText(h)
		if h.Level == 2 {
			text = strings.ToUpper(text)
		}
		for h.FirstChild != nil {
			h.FirstChild.Unlink()
		}
		h.AppendChild(textNode(text))
	}
	for _, l := range links {
		rewriteLink(l)
	}
	for _, t := range tables {
		t.InsertBefore(tableList(t))
		t.Unlink()
	}
}

// rewriteLink replaces a link by its text, followed by its target in
// parentheses unless the target is in the page ("#keys") or is the text
// (an autolink, or "[a.md](a.md#b)").
func rewriteLink(l *blackfriday.Node) {
	dest, text := string(l.Destination), plainText(l)
	if !strings.HasPrefix(dest, "#") && dest != text && !strings.HasPrefix(dest, text+"#") {
		l.AppendChild(textNode(" (" + dest + ")"))
	}
	for l.FirstChild != nil {
		l.InsertBefore(l.FirstChild)
	}
	l.Unlink()
}

// tableList is the definition list of a table: one term per row, its
// first cell. A table whose columns are key (or option), type, default
// and meaning gives "KEY (TYPE, default DEFAULT)" and the meaning; any
// other "HEADER: CELL" for each further cell that is not empty, joined
// by "; ".
func tableList(table *blackfriday.Node) *blackfriday.Node {
	var header []string
	var rows [][]*blackfriday.Node
	table.Walk(func(n *blackfriday.Node, entering bool) blackfriday.WalkStatus {
		if !entering || n.Type != blackfriday.TableRow {
			return blackfriday.GoToNext
		}
		var cells []*blackfriday.Node
		for c := n.FirstChild; c != nil; c = c.Next {
			cells = append(cells, c)
		}
		if n.Parent.Type == blackfriday.TableHead {
			for _, c := range cells {
				header = append(header, plainText(c))
			}
		} else {
			rows = append(rows, cells)
		}
		return blackfriday.SkipChildren
	})
	keyed := len(header) == 4 && (header[0] == "key" || header[0] == "option") &&
		header[1] == "type" && header[2] == "default" && header[3] == "meaning"

	list := blackfriday.NewNode(blackfriday.List)
	list.ListFlags = blackfriday.ListTypeDefinition
	for _, row := range rows {
		term, def := blackfriday.NewNode(blackfriday.Paragraph), blackfriday.NewNode(blackfriday.Paragraph)
		appendChildren(term, row[0])
		switch {
		case keyed && len(row) == 4:
			term.AppendChild(textNode(" ("))
			appendChildren(term, row[1])
			term.AppendChild(textNode(", default "))
			appendChildren(term, row[2])
			term.AppendChild(textNode(")"))
			appendChildren(def, row[3])
		default:
			for j, c := range row[1:] {
				if c.FirstChild == nil {
					continue
				}
				if def.FirstChild != nil {
					def.AppendChild(textNode("; "))
				}
				if j+1 < len(header) && header[j+1] != "" {
					def.AppendChild(textNode(header[j+1] + ": "))
				}
				appendChildren(def, c)
			}
		}
		list.AppendChild(item(blackfriday.ListTypeDefinition|blackfriday.ListTypeTerm, term))
		if def.FirstChild != nil {
			list.AppendChild(item(blackfriday.ListTypeDefinition, def))
		}
	}
	return list
}

// item is a list item of flags holding para.
func item(flags blackfriday.ListType, para *blackfriday.Node) *blackfriday.Node {
	it := blackfriday.NewNode(blackfriday.Item)
	it.ListFlags = flags
	it.AppendChild(para)
	return it
}

// textNode is a text node of s.
func textNode(s string) *blackfriday.Node {
	n := blackfriday.NewNode(blackfriday.Text)
	n.Literal = []byte(s)
	return n
}

// appendChildren moves the children of from to the end of to's.
func appendChildren(to, from *blackfriday.Node) {
	for from.FirstChild != nil {
		to.AppendChild(from.FirstChild)
	}
}

// plainText is the text of n's leaves, without markup.
func plainText(n *blackfriday.Node) string {
	var sb strings.Builder
	n.Walk(func(c *blackfriday.Node, entering bool) blackfriday.WalkStatus {
		if entering && (c.Type == blackfriday.Text || c.Type == blackfriday.Code) {
			sb.Write(c.Literal)
		}
		return blackfriday.GoToNext
	})
	return sb.String()
}
