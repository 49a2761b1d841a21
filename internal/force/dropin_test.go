package force

import (
	"flag"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/dropin")

// TestDropInGolden reads each testdata/dropin/CASE directory's unit files
// in name order, as systemd would apply them, and compares the drop-in
// (golden.conf) or the error (golden.err) with the golden file.
func TestDropInGolden(t *testing.T) {
	cases, err := os.ReadDir("testdata/dropin")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.Name(), func(t *testing.T) {
			dir := filepath.Join("testdata/dropin", c.Name())
			ents, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var files []UnitFile
			for _, e := range ents {
				if filepath.Ext(e.Name()) == ".service" || filepath.Ext(e.Name()) == ".conf" && e.Name() != "golden.conf" {
					b, err := os.ReadFile(filepath.Join(dir, e.Name()))
					if err != nil {
						t.Fatal(err)
					}
					files = append(files, UnitFile{Path: e.Name(), Data: b})
				}
			}
			sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
			var got []byte
			golden := filepath.Join(dir, "golden.conf")
			lines, err := ExecStarts(files)
			if err == nil {
				got, err = DropIn(c.Name()+".service", lines, "/usr/bin/mptcpctl")
			}
			if err != nil {
				golden = filepath.Join(dir, "golden.err")
				got = []byte(err.Error() + "\n")
			}
			if *update {
				_ = os.Remove(filepath.Join(dir, "golden.conf"))
				_ = os.Remove(filepath.Join(dir, "golden.err"))
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test -update writes it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s (-want +got):\n%s", golden, diff)
			}
		})
	}
}

func TestWrap(t *testing.T) {
	tests := []struct {
		line, mptcpctl, want string
		ok                   bool
	}{
		{"/bin/true", "/usr/bin/mptcpctl", "/usr/bin/mptcpctl run -- /bin/true", true},
		{"-/bin/true", "/usr/bin/mptcpctl", "-/usr/bin/mptcpctl run -- /bin/true", true},
		{"+-/bin/true", "/usr/bin/mptcpctl", "+-/usr/bin/mptcpctl run -- /bin/true", true},
		{"/bin/true", "/opt/my tools/mptcpctl", `"/opt/my tools/mptcpctl" run -- /bin/true`, true},
		{"/bin/true", "/opt/100%/mptcpctl", `/opt/100%%/mptcpctl run -- /bin/true`, true},
		{"/bin/true", "/opt/$x/mptcpctl", `/opt/$$x/mptcpctl run -- /bin/true`, true},
		{":/bin/true", "/opt/$x/mptcpctl", `:/opt/$x/mptcpctl run -- /bin/true`, true},
		{`/bin/true`, `/opt/a"b\c/mptcpctl`, `"/opt/a\"b\\c/mptcpctl" run -- /bin/true`, true},
		{"@/bin/busybox httpd", "/usr/bin/mptcpctl", "", false},
		{"|echo hi", "/usr/bin/mptcpctl", "", false},
		{"+!/bin/true", "/usr/bin/mptcpctl", "", false},
		{"-", "/usr/bin/mptcpctl", "", false},
	}
	for _, tt := range tests {
		got, err := Wrap(tt.line, tt.mptcpctl)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("Wrap(%q, %q) = %q, %v; want %q, ok %v", tt.line, tt.mptcpctl, got, err, tt.want, tt.ok)
		}
	}
}

func TestCheckServiceName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"nginx.service", true},
		{"getty@tty1.service", true},
		{"foo-bar_baz:1.2.service", true},
		{`sys-dev\x2dfoo.service`, true},
		{"", false},
		{"nginx", false},
		{"nginx.socket", false},
		{".service", false},
		{"getty@.service", false},
		{"@x.service", false},
		{"a@b@c.service", false},
		{"ng inx.service", false},
		{"../etc.service", false},
		{"a/b.service", false},
		{string(make([]byte, 300)) + ".service", false},
	}
	for _, tt := range tests {
		if err := CheckServiceName(tt.name); (err == nil) != tt.ok {
			t.Errorf("CheckServiceName(%q) = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}

func TestCheckUnitName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"backup.service", true},
		{"getty@tty1.service", true},
		{"session-2.scope", true},
		{"app-firefox-1234.scope", true},
		{"user-1000.slice", true},
		{"-.slice", true},
		{"user@1000.service", true},
		{"", false},
		{"backup", false},
		{"backup.socket", false},
		{"backup.timer", false},
		{".scope", false},
		{"getty@.service", false},
		{"a@b.slice", false},
		{"a@b.scope", false},
		{"a/b.slice", false},
		{"sys tem.slice", false},
		{string(make([]byte, 300)) + ".scope", false},
	}
	for _, tt := range tests {
		if err := CheckUnitName(tt.name); (err == nil) != tt.ok {
			t.Errorf("CheckUnitName(%q) = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}

func TestCgroupPath(t *testing.T) {
	tests := []struct {
		slice, unit, want string
		ok                bool
	}{
		{"system.slice", "nginx.service", "system.slice/nginx.service", true},
		{"-.slice", "init.scope", "init.scope", true},
		{"a-b-c.slice", "x.service", "a.slice/a-b.slice/a-b-c.slice/x.service", true},
		{"user-1000.slice", "x.service", "user.slice/user-1000.slice/x.service", true},
		{"system", "x.service", "", false},
		{"a--b.slice", "x.service", "", false},
		{".slice", "x.service", "", false},
	}
	for _, tt := range tests {
		got, err := CgroupPath(tt.slice, tt.unit)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("CgroupPath(%q, %q) = %q, %v; want %q, ok %v", tt.slice, tt.unit, got, err, tt.want, tt.ok)
		}
	}
}
