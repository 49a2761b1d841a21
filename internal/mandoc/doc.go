// Package mandoc turns a Markdown document into a man page (man(7)
// macros), so that mptcpgod.toml(5) is generated from docs/config.md and
// cannot drift from it, and mptcpctl(8) and its commands' pages from their
// help (cmd/mptcpctl/gendocs.go).
//
// github.com/cpuguy83/go-md2man/v2 writes the roff, from the Markdown
// that github.com/russross/blackfriday/v2 parses: the converter cobra's
// man page generator uses. Before rendering, the package rewrites the
// parts that go-md2man renders badly in a man page; TestLibraryDefects
// renders each of them with go-md2man alone and fails once the library
// gets one right, so that its rewrite can go:
//
//   - The document's level-1 heading is dropped: the page's NAME says it,
//     and go-md2man makes it a second .TH, which starts the page anew.
//     Headings become plain text, those of .SH upper case.
//   - A table becomes a list of tagged paragraphs (.TP), one per row. A
//     table whose columns are key (or option), type, default and meaning
//     gives "KEY (TYPE, default DEFAULT)" and the meaning; any other its
//     first cell and "HEADER: CELL" for each further cell. go-md2man
//     renders a table with tbl, in boxed columns: docs/config.md's
//     tables of keys, whose meanings run to several lines, are wider than
//     an 80-column terminal, and groff says so ("table wider than line
//     width", for 8 of its 10 tables).
//   - A link becomes its text, followed by its target in parentheses
//     unless the target is in the page ("#keys") or is the text. go-md2man
//     writes only a link's first text node, unescaped, and the target in
//     angle brackets: "[a `b` c](x.md)" became "a ⟨x.md⟩" and
//     "[`[usage]`](#usage)" "⟨#usage⟩".
//
// One thing is refused: a code block in a list item. blackfriday v2.1.0
// parses the item, then takes the rest of the list for text, the "- " of
// each item included (russross/blackfriday#526 and #536, open; go-md2man
// v2.0.7 no better), whatever the indentation; docs/config.md keeps its
// code blocks out of lists.
//
// The page's header is written here too, with hyphenation off: go-md2man
// writes .nh, but each code block's .EE turns hyphenation back on, so
// that an option in the text broke across lines ("--con-" "fig"); the
// header sets HY, the hyphenation .EE restores, to none.
package mandoc
