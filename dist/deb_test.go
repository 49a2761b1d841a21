package dist

import (
	"bufio"
	"cmp"
	"compress/gzip"
	"debug/elf"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
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
	want["/usr/share/doc/mptcpgod/changelog.gz"] = reg
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
// checks its files, control fields, conffiles, maintainer scripts,
// changelog and binaries (PIE, RELRO, immediate binding, libc their one
// shared library); lintian must report no error and no warning; the unit
// it ships must still rate 1.5 or lower. With root and CI=true or
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

	if diff := gocmp.Diff(wantDeb(t), debContents(t, deb)); diff != "" {
		t.Errorf("package contents (-want +got):\n%s", diff)
	}

	x := filepath.Join(tmp, "x")
	mustRun(t, "", nil, "dpkg-deb", "-x", deb, x)
	bins := []string{filepath.Join(x, "usr/bin/mptcpgod"), filepath.Join(x, "usr/bin/mptcpctl")}

	fields := []string{"Package", "Version", "Architecture", "Section", "Priority", "Depends", "Recommends", "Maintainer"}
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
		"Depends":      "libc6 (>= " + glibcVersion(t, bins...) + "), systemd | systemd-standalone-sysusers | systemd-sysusers",
		"Recommends":   "iproute2",
		"Maintainer":   maintainer,
	}
	if diff := gocmp.Diff(wantFields, gotFields); diff != "" {
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
		if diff := gocmp.Diff(string(want), string(got)); diff != "" {
			t.Errorf("maintainer script %s (-dist/deb +package):\n%s", script, diff)
		}
		if fi, err := os.Stat(filepath.Join(control, script)); err == nil && fi.Mode().Perm() != 0o755 {
			t.Errorf("maintainer script %s has mode %v, want 0755", script, fi.Mode().Perm())
		}
	}

	// The shipped unit is dist/mptcpgod.service unchanged (PREFIX=/usr).
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
	for _, bin := range bins {
		checkHardened(t, bin)
	}
	checkChangelog(t, filepath.Join(x, "usr/share/doc/mptcpgod/changelog.gz"), version)
	checkLintian(t, deb)

	if os.Getenv("MPTCPGOD_TEST_INSTALL") != "1" && os.Getenv("CI") != "true" {
		t.Log("not installing the package: set MPTCPGOD_TEST_INSTALL=1 (root) to install and purge it")
		return
	}
	aptInstallRemove(t, deb)
}

// packageLock is held while a test has the mptcpgod package installed:
// two test runs on one machine (make test twice at once) take turns
// rather than find each other's package installed.
const packageLock = "/run/lock/mptcpgod-test-package.lock"

// lockPackageTests takes packageLock until t and its cleanups end.
func lockPackageTests(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(packageLock, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		t.Fatalf("package test lock: %v", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("package test lock %s: %v", packageLock, err)
	}
	t.Cleanup(func() { f.Close() })
}

// dshState is deb-systemd-helper's record of the unit's enablement.
const dshState = "/var/lib/systemd/deb-systemd-helper-enabled/mptcpgod.service.dsh-also"

// aptInstallRemove installs the package with apt-get, checks it, and purges
// it.
func aptInstallRemove(t *testing.T, deb string) {
	needRoot(t)
	needTool(t, "apt-get")
	lockPackageTests(t)
	if status, err := runCmd("", nil, "dpkg-query", "-W", "-f=${Status}", "mptcpgod"); err == nil && strings.Contains(status, "installed") {
		t.Fatalf("the mptcpgod package is already installed (%s): the test only installs and purges a package it can remove; run apt-get purge mptcpgod first", status)
	}
	apt := []string{"DEBIAN_FRONTEND=noninteractive"}
	// Another apt-get (an install on this machine) holds dpkg's lock
	// for a while: wait for it rather than fail.
	const wait = "DPkg::Lock::Timeout=600"
	purge := func() (string, error) {
		return runCmd("", apt, "apt-get", "-o", wait, "remove", "--purge", "-y", "mptcpgod")
	}
	t.Cleanup(func() {
		if status, err := runCmd("", nil, "dpkg-query", "-W", "-f=${Status}", "mptcpgod"); err == nil && status != "" && !strings.Contains(status, "not-installed") {
			if out, err := purge(); err != nil {
				t.Errorf("cleanup: %v\n%s", err, out)
			}
		}
	})
	mustRun(t, "", apt, "apt-get", "-o", wait, "install", "-y", deb)

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
	// postinst recorded the unit's enablement symlinks, which purge removes.
	if _, err := os.Stat(dshState); err != nil {
		t.Errorf("deb-systemd-helper state after install: %v", err)
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
	// The mask of postrm remove is lifted again by purge.
	for _, dir := range []string{"/etc/mptcpgod", "/var/lib/mptcpgod", "/etc/systemd/system/mptcpgod.service", dshState} {
		if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after purge: %v, want it gone", dir, err)
		}
	}
	t.Logf("installed and purged %s (%d files)", filepath.Base(deb), len(files))
}

// maintainer is the package's Maintainer field, and the changelog's.
const maintainer = "mptcpgod maintainers <maintainers@mptcpgod.org>"

// glibcVersion returns the newest GLIBC_ symbol version the binaries
// import: the C library they need at least.
func glibcVersion(t *testing.T, bins ...string) string {
	t.Helper()
	var newest string
	for _, bin := range bins {
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		syms, err := f.ImportedSymbols()
		_ = f.Close()
		if err != nil {
			t.Fatalf("%s: %v", bin, err)
		}
		for _, s := range syms {
			v, ok := strings.CutPrefix(s.Version, "GLIBC_")
			if ok && (newest == "" || compareVersions(v, newest) > 0) {
				newest = v
			}
		}
	}
	if newest == "" {
		t.Fatalf("%q import no GLIBC_ symbol version", bins)
	}
	return newest
}

// compareVersions compares dotted decimal versions ("2.3.4" < "2.34").
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if c := cmp.Compare(x, y); c != 0 {
			return c
		}
	}
	return 0
}

// checkHardened checks what lintian's hardening checks look for in a
// binary, and that it needs no shared library but libc: a position-
// independent executable, with read-only relocations resolved at start.
func checkHardened(t *testing.T, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Type != elf.ET_DYN {
		t.Errorf("%s is of ELF type %v, want ET_DYN (-buildmode=pie)", bin, f.Type)
	}
	relro := slices.ContainsFunc(f.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_GNU_RELRO })
	if !relro {
		t.Errorf("%s has no PT_GNU_RELRO segment (-z relro)", bin)
	}
	flags, err := f.DynValue(elf.DT_FLAGS)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(flags, func(v uint64) bool { return v&uint64(elf.DF_BIND_NOW) != 0 }) {
		t.Errorf("%s lacks DF_BIND_NOW (-z now): DT_FLAGS %v", bin, flags)
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(libs, []string{"libc.so.6"}) {
		t.Errorf("%s needs %q, want [libc.so.6] (the package depends on libc6 only)", bin, libs)
	}
}

// checkChangelog checks the package's changelog: one entry, for version,
// by the maintainer.
func checkChangelog(t *testing.T, path, version string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if want := "mptcpgod (" + version + ") unstable; urgency=medium"; lines[0] != want {
		t.Errorf("changelog starts %q, want %q", lines[0], want)
	}
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, " -- "+maintainer+"  ") {
		t.Errorf("changelog ends %q, want the maintainer's signature", last)
	}
	if n := strings.Count(string(b), " -- "); n != 1 {
		t.Errorf("changelog has %d entries, want 1:\n%s", n, b)
	}
}

// checkLintian runs lintian on the package: no error, no warning. The
// informational tags are logged.
func checkLintian(t *testing.T, deb string) {
	t.Helper()
	lintian := needTool(t, "lintian")
	out, err := runCmd("", nil, lintian, "--display-info", deb)
	var bad []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "E: ") || strings.HasPrefix(line, "W: ") {
			bad = append(bad, line)
		}
	}
	if len(bad) > 0 || err != nil {
		t.Errorf("lintian %s: %v\n%s", filepath.Base(deb), err, strings.Join(bad, "\n"))
	}
	t.Logf("lintian:\n%s", out)
}
