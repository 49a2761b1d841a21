package dist

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// wantInstalled is the file set `make install` puts below DESTDIR for the
// given PREFIX and zsh completion directory (relative to PREFIX/share).
func wantInstalled(t *testing.T, prefix, zshDir string) map[string]fileInfo {
	t.Helper()
	p := strings.TrimPrefix(prefix, "/")
	want := map[string]fileInfo{
		p + "/bin/mptcpgod":                                  {0o755},
		p + "/bin/mptcpctl":                                  {0o755},
		p + "/lib/systemd/system/mptcpgod.service":           {0o644},
		p + "/lib/sysusers.d/mptcpgod.conf":                  {0o644},
		"etc/mptcpgod/mptcpgod.toml":                         {0o644},
		p + "/share/bash-completion/completions/mptcpctl":    {0o644},
		p + "/share/" + zshDir + "/_mptcpctl":                {0o644},
		p + "/share/fish/vendor_completions.d/mptcpctl.fish": {0o644},
	}
	for _, m := range manPages(t) {
		want[p+"/share/man/"+m] = fileInfo{0o644}
	}
	for _, d := range docFiles(t) {
		want[p+"/share/doc/mptcpgod/"+d] = fileInfo{0o644}
	}
	return want
}

// TestMakeInstall installs into a scratch DESTDIR with PREFIX=/usr/local,
// checks the files, that the unit names the installed binary and docs, that a second
// install keeps an edited configuration, and that uninstall removes all but
// the configuration.
func TestMakeInstall(t *testing.T) {
	t.Parallel()
	needInstallInputs(t)
	root := repoRoot(t)
	tmp := t.TempDir()
	dest := filepath.Join(tmp, "dest")
	vars := []string{"DESTDIR=" + dest, "PREFIX=/usr/local", "BIN=" + filepath.Join(tmp, "bin")}

	runMake(t, append([]string{"install"}, vars...)...)
	if diff := cmp.Diff(wantInstalled(t, "/usr/local", "zsh/site-functions"), walkFiles(t, dest)); diff != "" {
		t.Fatalf("installed files (-want +got):\n%s", diff)
	}

	// The unit is dist/mptcpgod.service with the binary and the
	// configuration at their installed paths, and nothing else changed.
	src, err := os.ReadFile(filepath.Join(root, "dist", "mptcpgod.service"))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(string(src),
		"\nExecStart=/usr/bin/mptcpgod --config /etc/mptcpgod/mptcpgod.toml\n",
		"\nExecStart=/usr/local/bin/mptcpgod --config /etc/mptcpgod/mptcpgod.toml\n", 1)
	want = strings.Replace(want,
		"\nDocumentation=file:/usr/share/doc/mptcpgod/install.md\n",
		"\nDocumentation=file:/usr/local/share/doc/mptcpgod/install.md\n", 1)
	got, err := os.ReadFile(filepath.Join(dest, "usr/local/lib/systemd/system/mptcpgod.service"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("installed unit (-want +got):\n%s", diff)
	}

	// The binaries run.
	for _, bin := range []string{"mptcpgod", "mptcpctl"} {
		mustRun(t, "", nil, filepath.Join(dest, "usr/local/bin", bin), "--help")
	}

	// An existing configuration survives a reinstall.
	conf := filepath.Join(dest, "etc/mptcpgod/mptcpgod.toml")
	const edited = "# edited by the administrator\n"
	if err := os.WriteFile(conf, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	runMake(t, append([]string{"install"}, vars...)...)
	if b, err := os.ReadFile(conf); err != nil || string(b) != edited {
		t.Errorf("configuration after a second install = %q, %v; want %q", b, err, edited)
	}

	runMake(t, append([]string{"uninstall"}, vars...)...)
	wantLeft := map[string]fileInfo{"etc/mptcpgod/mptcpgod.toml": {0o644}}
	if diff := cmp.Diff(wantLeft, walkFiles(t, dest)); diff != "" {
		t.Errorf("files left after uninstall (-want +got):\n%s", diff)
	}
}

// TestInstalledUnitVerifies installs into a scratch PREFIX without DESTDIR,
// so that the unit names binaries that exist, and runs systemd-analyze
// verify on it, man page check included (MANPATH points at the installed
// pages). A copy whose binary is missing must fail, or the check proves
// nothing.
func TestInstalledUnitVerifies(t *testing.T) {
	t.Parallel()
	needInstallInputs(t)
	sa := needTool(t, "systemd-analyze")
	tmp := t.TempDir()
	prefix := filepath.Join(tmp, "prefix")
	runMake(t, "install", "PREFIX="+prefix, "SYSCONFDIR="+filepath.Join(tmp, "etc"), "BIN="+filepath.Join(tmp, "bin"))
	unit := filepath.Join(prefix, "lib/systemd/system/mptcpgod.service")

	args := verifyArgs()
	env := []string{"MANPATH=" + filepath.Join(prefix, "share/man"), "SYSTEMD_COLORS=0"}
	if out, err := runCmd("", env, sa, append(args, unit)...); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, out)
	}

	b, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(tmp, "mptcpgod.service")
	missing := strings.Replace(string(b), filepath.Join(prefix, "bin/mptcpgod"), filepath.Join(prefix, "bin/missing"), 1)
	if err := os.WriteFile(broken, []byte(missing), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runCmd("", env, sa, append(args, broken)...); err == nil {
		t.Errorf("systemd-analyze verify accepted a unit whose binary is missing:\n%s", out)
	}
}

// verifyArgs are the arguments of systemd-analyze verify: it checks the
// man pages of Documentation= with man(1), when there is one.
func verifyArgs() []string {
	if _, err := exec.LookPath("man"); err != nil {
		return []string{"verify", "--man=no"}
	}
	return []string{"verify"}
}
