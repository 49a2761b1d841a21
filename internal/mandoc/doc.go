// Package mandoc turns a Markdown document of the subset the docs/ pages
// use into a man page (man(7) macros), so that a page such as
// mptcpgod.toml(5) is generated from docs/config.md and cannot drift from
// it.
//
// The subset: "#" (the title, dropped: the page's NAME replaces it), "##"
// and "###" headings, paragraphs, "- " lists (continuation lines indented),
// fenced code blocks, pipe tables, and inline `code`, **bold** and
// [links](target). A table whose columns are key (or option), type,
// default and meaning becomes a list of tagged paragraphs, one per key;
// any other table one tagged paragraph per row.
package mandoc
