package policy

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"strconv"
	"strings"
)

// DecodeConfig decodes a policy's JSON configuration into v, a pointer to
// the policy's config struct already holding the defaults. It is strict:
// raw must be a JSON object (or empty, or null, which leave v as it is),
// every key must name a field of v as its json tag spells it (encoding/json
// alone would take "Max_Subflows" for "max_subflows") and come once, in
// nested objects too, and nothing may follow the object. Errors name the
// option: `unknown option "max_subflow"`, `unknown option "limits.subflow"`,
// `option "limits.subflows": cannot use number -1 as uint32`.
func DecodeConfig(raw json.RawMessage, v any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	if raw[0] != '{' {
		return errors.New("config must be a JSON object")
	}
	if err := checkKeys(raw, reflect.TypeOf(v), ""); err != nil {
		return err
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return configError(err)
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return errors.New("config: unexpected data after the object")
	}
	return nil
}

// configError rewrites encoding/json's errors in the words of a config
// file.
func configError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return fmt.Errorf("config: cannot use %s as %s", te.Value, te.Type)
		}
		return fmt.Errorf("option %q: cannot use %s as %s", te.Field, te.Value, te.Type)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("config: invalid JSON at offset %d: %w", se.Offset, err)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("config: truncated JSON")
	}
	// DisallowUnknownFields reports `json: unknown field "name"` as a
	// plain error.
	const unknown = `unknown field `
	if _, rest, ok := strings.Cut(err.Error(), unknown); ok {
		if name, uerr := strconv.Unquote(rest); uerr == nil {
			return fmt.Errorf("unknown option %q", name)
		}
	}
	return fmt.Errorf("config: %w", err)
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// checkKeys fails on a key of the JSON value raw, decoded into a t, that
// names no field of its struct exactly, or that an object repeats; path
// is the option's name so far ("limits."). What is not an object or
// array where t wants one is left to the decoder to name.
func checkKeys(raw json.RawMessage, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler) {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		var obj []keyValue
		if !decodeObject(raw, &obj) {
			return nil
		}
		fields := jsonFields(t)
		seen := make(map[string]bool, len(obj))
		for _, kv := range obj {
			name := path + kv.key
			if seen[kv.key] {
				return fmt.Errorf("option %q given twice", name)
			}
			seen[kv.key] = true
			var ft reflect.Type
			if t.Kind() == reflect.Map {
				ft = t.Elem()
			} else if ft = fields[kv.key]; ft == nil {
				return unknownOption(name, kv.key, fields)
			}
			if err := checkKeys(kv.value, ft, name+"."); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		var elems []json.RawMessage
		if json.Unmarshal(raw, &elems) != nil {
			return nil
		}
		for i, el := range elems {
			if err := checkKeys(el, t.Elem(), fmt.Sprintf("%s[%d].", strings.TrimSuffix(path, "."), i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// unknownOption is the error of a key that names no field, with the field
// it differs from only by case, if any.
func unknownOption(name, key string, fields map[string]reflect.Type) error {
	for f := range fields {
		if strings.EqualFold(f, key) {
			return fmt.Errorf("unknown option %q (did you mean %q? options are lower case)", name, f)
		}
	}
	return fmt.Errorf("unknown option %q", name)
}

// keyValue is a member of a JSON object.
type keyValue struct {
	key   string
	value json.RawMessage
}

// decodeObject reads the members of the JSON object raw, in order and
// with their repeats, into obj; false when raw is not an object.
func decodeObject(raw json.RawMessage, obj *[]keyValue) bool {
	d := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		return false
	}
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return false
		}
		var kv keyValue
		kv.key, _ = tok.(string)
		if err := d.Decode(&kv.value); err != nil {
			return false
		}
		*obj = append(*obj, kv)
	}
	return true
}

// jsonFields returns the fields encoding/json decodes a struct t's keys
// into, by the name their tag gives (the Go name without one), embedded
// structs' fields included.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if t.Kind() != reflect.Struct {
		return nil
	}
	fields := make(map[string]reflect.Type)
	for f := range t.Fields() {
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			et := f.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			maps.Copy(fields, jsonFields(et))
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = f.Type
	}
	return fields
}
