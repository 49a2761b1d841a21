package journal

import (
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// FuzzEncode encodes a record with one attribute and decodes it as the
// journal would: the fields must come back whole, with valid names.
func FuzzEncode(f *testing.F) {
	h, err := NewHandler(&Options{Socket: "/nonexistent"})
	if err != nil {
		f.Fatal(err)
	}
	defer h.Close()
	f.Fuzz(func(t *testing.T, msg, group, key, value string) {
		var l slog.Handler = h
		if group != "" {
			l = l.WithGroup(group)
		}
		r := slog.NewRecord(time.Time{}, slog.LevelInfo, msg, 0)
		r.AddAttrs(slog.String(key, value))
		got, err := parseEntry(l.(*Handler).encode(r))
		if err != nil {
			t.Fatal(err)
		}
		want := []field{{"MESSAGE", msg}, {"PRIORITY", "6"}, {"SYSLOG_IDENTIFIER", "mptcpgod"}}
		if key != "" {
			prefix := ""
			if group != "" {
				prefix = group + "_"
			}
			want = append(want, field{FieldName(DefaultPrefix, prefix+key), value})
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("fields (-want +got):\n%s", diff)
		}
		for _, fd := range got {
			if !validName(fd.Name) {
				t.Errorf("field name %q is not valid", fd.Name)
			}
		}
	})
}
