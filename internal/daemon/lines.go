package daemon

import (
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// keyLines maps the dotted path of every key, table and array element of
// a TOML document ("engine.workers", "policy.chain[0].config.role") to the
// line that defines it, so errors found after decoding can name the line.
type keyLines map[string]int

// indexLines indexes data. A document that does not parse is indexed up
// to the error; the decoder reports the error itself.
func indexLines(data []byte) keyLines {
	idx := keyLines{}
	arrays := map[string]int{} // path of an array of tables → elements so far
	var p unstable.Parser
	p.Reset(data)
	table := ""
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table:
			parts, line := keyOf(&p, e)
			table = resolve(arrays, "", parts)
			idx.add(table, line)
		case unstable.ArrayTable:
			parts, line := keyOf(&p, e)
			if len(parts) == 0 {
				continue
			}
			path := join(resolve(arrays, "", parts[:len(parts)-1]), parts[len(parts)-1])
			n := arrays[path]
			arrays[path] = n + 1
			idx.add(path, line)
			table = path + "[" + strconv.Itoa(n) + "]"
			idx.add(table, line)
		case unstable.KeyValue:
			idx.keyValue(&p, table, e)
		}
	}
	return idx
}

// keyValue indexes the key-value node e inside the table at path base.
func (idx keyLines) keyValue(p *unstable.Parser, base string, e *unstable.Node) {
	parts, line := keyOf(p, e)
	path := base
	for _, k := range parts {
		path = join(path, k)
	}
	idx.add(path, line)
	idx.value(p, path, line, e.Value())
}

// value indexes what an inline table or array at path holds.
func (idx keyLines) value(p *unstable.Parser, path string, line int, v *unstable.Node) {
	switch v.Kind {
	case unstable.InlineTable:
		it := v.Children()
		for it.Next() {
			idx.keyValue(p, path, it.Node())
		}
	case unstable.Array:
		it := v.Children()
		for i := 0; it.Next(); i++ {
			el := it.Node()
			elPath := path + "[" + strconv.Itoa(i) + "]"
			elLine := line
			if el.Raw.Length > 0 {
				elLine = p.Shape(el.Raw).Start.Line
			} else if k := firstKeyLine(p, el); k > 0 {
				elLine = k
			}
			idx.add(elPath, elLine)
			idx.value(p, elPath, elLine, el)
		}
	}
}

// firstKeyLine returns the line of the first key of an inline table, or 0.
func firstKeyLine(p *unstable.Parser, v *unstable.Node) int {
	if v.Kind != unstable.InlineTable {
		return 0
	}
	it := v.Children()
	if !it.Next() {
		return 0
	}
	_, line := keyOf(p, it.Node())
	return line
}

// keyOf returns the parts of the key of a table, array table or key-value
// node, and the line of its first part.
func keyOf(p *unstable.Parser, n *unstable.Node) ([]string, int) {
	var parts []string
	line := 0
	it := n.Key()
	for it.Next() {
		k := it.Node()
		if line == 0 && k.Raw.Length > 0 {
			line = p.Shape(k.Raw).Start.Line
		}
		parts = append(parts, string(k.Data))
	}
	return parts, line
}

// resolve joins parts onto base, entering the latest element of every
// array of tables on the way ("policy.rules" → "policy.rules[1]").
func resolve(arrays map[string]int, base string, parts []string) string {
	path := base
	for _, k := range parts {
		path = join(path, k)
		if n, ok := arrays[path]; ok {
			path += "[" + strconv.Itoa(n-1) + "]"
		}
	}
	return path
}

func join(base, key string) string {
	if base == "" {
		return key
	}
	return base + "." + key
}

// add records the first line a path is defined on.
func (idx keyLines) add(path string, line int) {
	if _, ok := idx[path]; !ok && line > 0 {
		idx[path] = line
	}
}

// indexed returns key ("policy.rules.peer_port", as go-toml names keys,
// without array indexes) with the indexes of the element defined on line
// ("policy.rules[0].peer_port"), or key itself when the index has none.
func (idx keyLines) indexed(key string, line int) string {
	best := key
	for p, l := range idx {
		if l == line && !strings.HasSuffix(p, "]") && unindexed(p) == key && (best == key || p < best) {
			best = p
		}
	}
	return best
}

// unindexed returns path without its array indexes.
func unindexed(path string) string {
	var b strings.Builder
	depth := 0
	for _, r := range path {
		switch {
		case r == '[':
			depth++
		case r == ']':
			depth--
		case depth == 0:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// line returns the line of path, or of its nearest indexed parent, or 0.
func (idx keyLines) line(path string) int {
	for path != "" {
		if l, ok := idx[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return 0
		}
		path = path[:i]
	}
	return 0
}
