package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// DecodeConfig decodes a policy's JSON configuration into v, a pointer to
// the policy's config struct already holding the defaults. It is strict:
// raw must be a JSON object (or empty, or null, which leave v as it is),
// every key must be a field of v, and nothing may follow the object.
// Errors name the option: `unknown option "max_subflow"`,
// `option "limits.subflows": cannot use number -1 as uint32`.
func DecodeConfig(raw json.RawMessage, v any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	if raw[0] != '{' {
		return errors.New("config must be a JSON object")
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
