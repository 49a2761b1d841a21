package daemon

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/pelletier/go-toml/v2"

	"github.com/mptcpgod/mptcpgod/policy"
)

const (
	docsPath = "../../docs/config.md"
	distPath = "../../dist/mptcpgod.toml"
)

// schemaKey is one key of File: its dotted path (array elements left
// out: "policy.rules.side"), its Go type, its default, and whether it sits
// inside an array element (and so has no default of its own).
type schemaKey struct {
	path    string
	typ     reflect.Type
	def     reflect.Value
	element bool
}

// schemaKeys lists every key of File, tables first, depth first.
func schemaKeys() []schemaKey {
	var keys []schemaKey
	var walk func(prefix string, t reflect.Type, v reflect.Value, element bool)
	walk = func(prefix string, t reflect.Type, v reflect.Value, element bool) {
		for i := range t.NumField() {
			f := t.Field(i)
			name := join(prefix, f.Tag.Get("toml"))
			var fv reflect.Value
			if v.IsValid() {
				fv = v.Field(i)
			}
			switch {
			case f.Type.Kind() == reflect.Struct:
				walk(name, f.Type, fv, element)
			case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
				keys = append(keys, schemaKey{name, f.Type, fv, element})
				walk(name, f.Type.Elem(), reflect.Value{}, true)
			default:
				keys = append(keys, schemaKey{name, f.Type, fv, element})
			}
		}
	}
	walk("", reflect.TypeFor[File](), reflect.ValueOf(DefaultFile()), false)
	return keys
}

// docRow is a row of a key table in docs/config.md.
var docRow = regexp.MustCompile("(?m)^\\| `([a-z_.]+)` \\| ([^|]+) \\| (`[^`]*`|\\(required\\)) \\| [^|]+ \\|$")

// docRows returns the key tables' rows of a section of docs/config.md, by
// key: the default column.
func docRows(t *testing.T, doc string) map[string]string {
	t.Helper()
	rows := map[string]string{}
	for _, m := range docRow.FindAllStringSubmatch(doc, -1) {
		if _, dup := rows[m[1]]; dup {
			t.Errorf("docs: key %q documented twice", m[1])
		}
		rows[m[1]] = strings.Trim(m[3], "`")
	}
	return rows
}

// decodeValue decodes a TOML value written in the docs ("\"1ms\"", "[]",
// "[{name = \"fullmesh\"}]") into a new value of type typ.
func decodeValue(typ reflect.Type, text string) (reflect.Value, error) {
	holder := reflect.New(reflect.StructOf([]reflect.StructField{{
		Name: "V", Type: typ, Tag: `toml:"v"`,
	}}))
	d := toml.NewDecoder(strings.NewReader("v = " + text))
	d.DisallowUnknownFields()
	err := d.Decode(holder.Interface())
	return holder.Elem().Field(0), err
}

// TestDocsAndDist checks docs/config.md and dist/mptcpgod.toml against
// the code: every key is documented with its default, the docs document
// no other key, and the dist file decodes to exactly the defaults and
// shows every key.
func TestDocsAndDist(t *testing.T) {
	docBytes, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(docBytes)
	keysSection, policiesSection, _ := strings.Cut(doc, "\n## Policies\n")
	rows := docRows(t, keysSection)

	dist, err := os.ReadFile(distPath)
	if err != nil {
		t.Fatal(err)
	}
	f := DefaultFile()
	d := toml.NewDecoder(bytes.NewReader(dist))
	d.DisallowUnknownFields()
	if err := d.Decode(&f); err != nil {
		t.Fatalf("dist: %v", decodeError(distPath, nil, err))
	}
	// The dist file must say everything itself: decoded into zero values,
	// it gives the defaults too.
	var fromZero File
	if err := toml.Unmarshal(dist, &fromZero); err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]File{"into the defaults": f, "into zero": fromZero} {
		if diff := cmp.Diff(DefaultFile(), got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("dist decoded %s differs from DefaultFile (-want +got):\n%s", name, diff)
		}
	}
	distLines := indexLines(dist)
	indexRE := regexp.MustCompile(`\[\d+\]`)
	inDist := map[string]bool{}
	for path := range distLines {
		inDist[indexRE.ReplaceAllString(path, "")] = true
	}

	documented := map[string]bool{}
	for _, k := range schemaKeys() {
		documented[k.path] = true
		text, ok := rows[k.path]
		switch {
		case !ok:
			t.Errorf("docs: key %q is not documented", k.path)
		case !k.element:
			got, err := decodeValue(k.typ, text)
			if err != nil {
				t.Errorf("docs: key %q: default %s: %v", k.path, text, err)
			} else if diff := cmp.Diff(k.def.Interface(), got.Interface(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("docs: key %q: default %s differs from the code's (-code +docs):\n%s", k.path, text, diff)
			}
		}
		// Keys inside array elements with no default element appear in
		// the dist file's commented example.
		last := k.path[strings.LastIndex(k.path, ".")+1:]
		example := regexp.MustCompile(`(?m)^#\s+(` + regexp.QuoteMeta(last) + ` = |\[\[` + regexp.QuoteMeta(k.path) + `\]\])`)
		if !inDist[k.path] && !(k.element && example.Match(dist)) {
			t.Errorf("dist: key %q is missing", k.path)
		}
	}
	for key := range rows {
		if !documented[key] {
			t.Errorf("docs: key %q is documented but the configuration has no such key", key)
		}
	}

	// Every registered policy has a section; one with an option table
	// documents every option with its default, one without links to
	// where the policy is documented.
	for _, name := range policy.Names() {
		pd, err := policy.Describe(name)
		if err != nil {
			t.Fatal(err)
		}
		_, section, ok := strings.Cut(policiesSection, "\n### `"+name+"`\n")
		if !ok {
			t.Errorf("docs: policy %q has no section under Policies", name)
			continue
		}
		section, _, _ = strings.Cut(section, "\n### ")
		opts := docRows(t, section)
		if len(opts) == 0 {
			if !strings.Contains(section, ".md#") {
				t.Errorf("docs: policy %q: the section has neither its options nor a link to them", name)
			}
			continue
		}
		var names []string
		for _, o := range pd.Options {
			names = append(names, o.Name)
			text, ok := opts[o.Name]
			if !ok {
				t.Errorf("docs: policy %q: option %q is not documented", name, o.Name)
				continue
			}
			got, err := decodeValue(reflect.TypeFor[any](), text)
			if err != nil {
				t.Errorf("docs: policy %q: option %q: default %s: %v", name, o.Name, text, err)
				continue
			}
			want, _ := json.Marshal(o.Default)
			gotJSON, _ := json.Marshal(got.Interface())
			if !bytes.Equal(want, gotJSON) {
				t.Errorf("docs: policy %q: option %q: default %s, the policy says %s", name, o.Name, gotJSON, want)
			}
		}
		for opt := range opts {
			if !slices.Contains(names, opt) {
				t.Errorf("docs: policy %q: option %q is documented but the policy has no such option", name, opt)
			}
		}
	}
}

// TestRulesExamples: the configurations of docs/policies.md's "Rules per
// application" and docs/transparent.md's are files the daemon
// reads (alice is uid 1000 here), and their policies build.
func TestRulesExamples(t *testing.T) {
	for _, doc := range []struct{ path, section string }{
		{"../../docs/policies.md", "\n## Rules per application\n"},
		{"../../docs/transparent.md", "\n## Rules per application\n"},
	} {
		b, err := os.ReadFile(doc.path)
		if err != nil {
			t.Fatal(err)
		}
		_, section, ok := strings.Cut(string(b), doc.section)
		if !ok {
			t.Fatalf("%s has no section %q", doc.path, strings.TrimSpace(doc.section))
		}
		section, _, _ = strings.Cut(section, "\n## ")
		blocks := regexp.MustCompile("(?s)```toml\n(.*?)```").FindAllStringSubmatch(section, -1)
		if len(blocks) != 1 {
			t.Fatalf("%s: %d TOML blocks in the section, want 1", doc.path, len(blocks))
		}
		cfg, err := Parse(doc.path, []byte(blocks[0][1]))
		if err != nil {
			t.Fatalf("%s: %v", doc.path, err)
		}
		r, err := cfg.BuildPolicy()
		if err != nil {
			t.Fatalf("%s: %v", doc.path, err)
		}
		if !r.ReadsOwner() {
			t.Errorf("%s: the example's router does not read owners", doc.path)
		}
		_ = r.Close()
	}
}
