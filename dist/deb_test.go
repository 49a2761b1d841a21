package dist

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// debVersion runs dist/debversion.sh with the given arguments.
func debVersion(t *testing.T, args ...string) string {
	t.Helper()
	out := mustRun(t, repoRoot(t), nil, "sh", append([]string{"dist/debversion.sh"}, args...)...)
	return strings.TrimSpace(out)
}

func TestDebVersion(t *testing.T) {
	t.Parallel()
	dpkg := needTool(t, "dpkg")
	tests := []struct {
		name                 string
		describe, date, hash string
		want                 string
	}{
		{"no tag", "", "20261123", "7321bf3", "0.0.0~git20261123.7321bf3"},
		{"no tag, later commit", "", "20261124", "0a1b2c3", "0.0.0~git20261124.0a1b2c3"},
		{"no git", "", "20261125", "", "0.0.0~git20261125"},
		{"pre-release", "v1.2.0-rc1", "", "", "1.2.0~rc1"},
		{"after a pre-release", "v1.2.0-rc1-3-gabc1234", "", "", "1.2.0~rc1+git3.abc1234"},
		{"release", "v1.2.0", "", "", "1.2.0"},
		{"after a release", "v1.2.0-12-gdeadbee", "", "", "1.2.0+git12.deadbee"},
		{"odd characters", "v1.2_1", "", "", "1.2.1"},
		{"next pre-release", "v1.3.0-beta.2", "", "", "1.3.0~beta.2"},
	}
	var got []string
	for _, tt := range tests {
		v := debVersion(t, tt.describe, tt.date, tt.hash)
		if v != tt.want {
			t.Errorf("%s: debversion.sh %q %q %q = %q, want %q", tt.name, tt.describe, tt.date, tt.hash, v, tt.want)
		}
		if out, err := runCmd("", nil, dpkg, "--validate-version", v); err != nil {
			t.Errorf("%s: %q is not a Debian version: %v\n%s", tt.name, v, err, out)
		}
		got = append(got, v)
	}
	// The table is in upgrade order: each version must sort after the last.
	for i := 1; i < len(got); i++ {
		if _, err := runCmd("", nil, dpkg, "--compare-versions", got[i-1], "lt", got[i]); err != nil {
			t.Errorf("dpkg sorts %q (%s) before %q (%s), want after", got[i], tests[i].name, got[i-1], tests[i-1].name)
		}
	}
	// From git, in this tree.
	v := debVersion(t)
	if out, err := runCmd("", nil, dpkg, "--validate-version", v); err != nil {
		t.Errorf("debversion.sh in the source tree = %q, not a Debian version: %v\n%s", v, err, out)
	}
}

// debEntry is a file of a package, as dpkg-deb -c lists it.
type debEntry struct {
	Mode  string
	Owner string
}

// debContents lists the non-directory entries of a package by absolute path.
func debContents(t *testing.T, deb string) map[string]debEntry {
	t.Helper()
	out := mustRun(t, "", nil, "dpkg-deb", "-c", deb)
	files := make(map[string]debEntry)
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		// -rwxr-xr-x root/root   6050057 2026-11-23 14:08 ./usr/bin/mptcpctl
		f := strings.Fields(sc.Text())
		if len(f) < 6 {
			t.Fatalf("dpkg-deb -c: unexpected line %q", sc.Text())
		}
		if strings.HasPrefix(f[0], "d") {
			continue
		}
		files[strings.TrimPrefix(f[5], ".")] = debEntry{Mode: f[0], Owner: f[1]}
	}
	return files
}

// wantDeb is the file set of the package.
func wantDeb(t *testing.T) map[string]debEntry {
	t.Helper()
	exe := debEntry{"-rwxr-xr-x", "root/root"}
	reg := debEntry{"-rw-r--r--", "root/root"}
	want := map[string]debEntry{
		"/usr/bin/mptcpgod":                                  exe,
		"/usr/bin/mptcpctl":                                  exe,
		"/usr/lib/systemd/system/mptcpgod.service":           reg,
		"/usr/lib/sysusers.d/mptcpgod.conf":                  reg,
		"/etc/mptcpgod/mptcpgod.toml":                        reg,
		"/usr/share/bash-completion/completions/mptcpctl":    reg,
		"/usr/share/zsh/vendor-completions/_mptcpctl":        reg,
		"/usr/share/fish/vendor_completions.d/mptcpctl.fish": reg,
	}
	for _, m := range manPages(t) {
		want["/usr/share/man/"+m+".gz"] = reg
	}
	for _, d := range docFiles(t) {
		want["/usr/share/doc/mptcpgod/"+d] = reg
	}
	return want
}

// debArch is dpkg's name of the architecture `make deb` builds for.
func debArch(t *testing.T) string {
	t.Helper()
	goarch := strings.TrimSpace(mustRun(t, "", nil, "go", "env", "GOARCH"))
	arch := map[string]string{"386": "i386", "ppc64le": "ppc64el", "mipsle": "mipsel", "mips64le": "mips64el"}[goarch] // as nfpm names them
	if arch == "" {
		arch = goarch
	}
	return arch
}

// TestDeb builds the package with `make deb` into a scratch directory and
// checks its files, control fields, conffiles and maintainer scripts; the
// unit it ships must still rate 1.5 or lower. With root and CI=true or
// MPTCPGOD_TEST_INSTALL=1 it then installs the package with apt-get, checks
// the files, the user and the installed unit, and purges it again.
func TestDeb(t *testing.T) {
	t.Parallel()
	needInstallInputs(t)
	needTool(t, "dpkg-deb")
	root := repoRoot(t)
	tmp := t.TempDir()
	out := filepath.Join(tmp, "out")
	runMake(t, "deb", "BIN="+filepath.Join(tmp, "bin"), "DEBDIR="+out)

	debs, err := filepath.Glob(filepath.Join(out, "*.deb"))
	if err != nil || len(debs) != 1 {
		t.Fatalf("make deb made %q (%v), want one .deb", debs, err)
	}
	deb := debs[0]
	version := debVersion(t)
	if got, want := filepath.Base(deb), "mptcpgod_"+version+"_"+debArch(t)+".deb"; got != want {
		t.Errorf("package file %s, want %s", got, want)
	}

	if diff := cmp.Diff(wantDeb(t), debContents(t, deb)); diff != "" {
		t.Errorf("package contents (-want +got):\n%s", diff)
	}

	fields := []string{"Package", "Version", "Architecture", "Section", "Priority", "Depends", "Recommends"}
	gotFields := make(map[string]string)
	for _, line := range strings.Split(strings.TrimSpace(mustRun(t, "", nil, "dpkg-deb", append([]string{"-f", deb}, fields...)...)), "\n") {
		k, v, _ := strings.Cut(line, ": ")
		gotFields[k] = v
	}
	wantFields := map[string]string{
		"Package":      "mptcpgod",
		"Version":      version,
		"Architecture": debArch(t),
		"Section":      "net",
		"Priority":     "optional",
		"Depends":      "systemd | systemd-standalone-sysusers | systemd-sysusers",
		"Recommends":   "iproute2",
	}
	if diff := cmp.Diff(wantFields, gotFields); diff != "" {
		t.Errorf("control fields (-want +got):\n%s", diff)
	}

	control := filepath.Join(tmp, "control")
	mustRun(t, "", nil, "dpkg-deb", "-e", deb, control)
	if b, err := os.ReadFile(filepath.Join(control, "conffiles")); err != nil || string(b) != "/etc/mptcpgod/mptcpgod.toml\n" {
		t.Errorf("conffiles = %q, %v; want the configuration", b, err)
	}
	for _, script := range []string{"postinst", "prerm", "postrm"} {
		got, err := os.ReadFile(filepath.Join(control, script))
		if err != nil {
			t.Errorf("maintainer script %s: %v", script, err)
			continue
		}
		want, err := os.ReadFile(filepath.Join(root, "dist", "deb", script))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(want), string(got)); diff != "" {
			t.Errorf("maintainer script %s (-dist/deb +package):\n%s", script, diff)
		}
		if fi, err := os.Stat(filepath.Join(control, script)); err == nil && fi.Mode().Perm() != 0o755 {
			t.Errorf("maintainer script %s has mode %v, want 0755", script, fi.Mode().Perm())
		}
	}

	// The shipped unit is dist/mptcpgod.service unchanged (PREFIX=/usr).
	x := filepath.Join(tmp, "x")
	mustRun(t, "", nil, "dpkg-deb", "-x", deb, x)
	shipped := filepath.Join(x, "usr/lib/systemd/system/mptcpgod.service")
	want, err := os.ReadFile(filepath.Join(root, "dist", "mptcpgod.service"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(shipped); err != nil || string(got) != string(want) {
		t.Errorf("the package's unit differs from dist/mptcpgod.service (err %v)", err)
	}
	if got := exposure(t, shipped); got > maxExposure {
		t.Errorf("exposure of the package's unit is %.1f, want %.1f or lower", got, maxExposure)
	}

	if os.Getenv("MPTCPGOD_TEST_INSTALL") != "1" && !ci() {
		t.Log("not installing the package: set MPTCPGOD_TEST_INSTALL=1 (root) to install and purge it")
		return
	}
	aptInstallRemove(t, deb)
}

// aptInstallRemove installs the package with apt-get, checks it, and purges
// it.
func aptInstallRemove(t *testing.T, deb string) {
	needRoot(t)
	needTool(t, "apt-get")
	if status, err := runCmd("", nil, "dpkg-query", "-W", "-f=${Status}", "mptcpgod"); err == nil && strings.Contains(status, "installed") {
		t.Fatalf("the mptcpgod package is already installed (%s): the test only installs and purges a package it can remove; run apt-get purge mptcpgod first", status)
	}
	apt := []string{"DEBIAN_FRONTEND=noninteractive"}
	purge := func() (string, error) {
		return runCmd("", apt, "apt-get", "remove", "--purge", "-y", "mptcpgod")
	}
	t.Cleanup(func() {
		if status, err := runCmd("", nil, "dpkg-query", "-W", "-f=${Status}", "mptcpgod"); err == nil && status != "" && !strings.Contains(status, "not-installed") {
			if out, err := purge(); err != nil {
				t.Errorf("cleanup: %v\n%s", err, out)
			}
		}
	})
	mustRun(t, "", apt, "apt-get", "install", "-y", deb)

	if status := mustRun(t, "", nil, "dpkg-query", "-W", "-f=${Status}", "mptcpgod"); status != "install ok installed" {
		t.Fatalf("dpkg status after apt-get install = %q", status)
	}
	files := debContents(t, deb)
	for p := range files {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("installed file: %v", err)
		}
	}
	// postinst created the service user and the control group.
	for _, db := range []string{"passwd", "group"} {
		if out, err := runCmd("", nil, "getent", db, "mptcpgod"); err != nil {
			t.Errorf("getent %s mptcpgod after install: %v\n%s", db, err, out)
		}
	}
	if sa, err := exec.LookPath("systemd-analyze"); err == nil {
		if out, err := runCmd("", []string{"SYSTEMD_COLORS=0"}, sa, append(verifyArgs(), "/usr/lib/systemd/system/mptcpgod.service")...); err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("systemd-analyze verify of the installed unit: %v\n%s", err, out)
		}
	}

	if out, err := purge(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if status, err := runCmd("", nil, "dpkg-query", "-W", "-f=${Status}", "mptcpgod"); err == nil && !strings.Contains(status, "not-installed") {
		t.Errorf("dpkg status after purge = %q", status)
	}
	for p := range files {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after purge: %v, want it gone", p, err)
		}
	}
	for _, dir := range []string{"/etc/mptcpgod", "/var/lib/mptcpgod"} {
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after purge: %v, want it gone", dir, err)
		}
	}
	t.Logf("installed and purged %s (%d files)", filepath.Base(deb), len(files))
}
