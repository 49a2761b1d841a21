package compat

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cavaliergopher/cpio"
	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgod/mptcpgod/internal/testing/runtest"
)

func TestParseKernels(t *testing.T) {
	t.Parallel()
	ks, err := ParseKernels(strings.NewReader(KernelList))
	if err != nil {
		t.Fatalf("the repository's kernels.txt: %v", err)
	}
	if len(ks) == 0 || ks[0].Name != "6.1" {
		t.Errorf("kernels.txt = %+v, want Debian 12's 6.1 first", ks)
	}

	tests := []struct {
		name, in string
		want     []Kernel
		err      string
	}{
		{name: "comments and blanks", in: "# x\n\n6.1 linux-image-amd64 # default\n 6.12\tlinux-image-6.12-amd64\n",
			want: []Kernel{{"6.1", "linux-image-amd64"}, {"6.12", "linux-image-6.12-amd64"}}},
		{name: "one field", in: "6.1\n", err: "line 1: want NAME PACKAGE"},
		{name: "three fields", in: "6.1 a b\n", err: "line 1: want NAME PACKAGE"},
		{name: "reserved", in: "running linux-image-amd64\n", err: `"running" is reserved`},
		{name: "bad name", in: "sid linux-image-amd64\n", err: `name "sid"`},
		{name: "bad package", in: "6.1 Linux_Image\n", err: `package "Linux_Image"`},
		{name: "duplicate", in: "6.1 linux-image-amd64\n6.1 linux-image-6.1.0-57-amd64\n", err: "line 2: name \"6.1\" listed twice"},
	}
	for _, tt := range tests {
		got, err := ParseKernels(strings.NewReader(tt.in))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: error %v, want one containing %q", tt.name, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestSelectKernels(t *testing.T) {
	t.Parallel()
	list := []Kernel{{"6.1", "linux-image-amd64"}, {"6.12", "linux-image-6.12-amd64"}}
	tests := []struct {
		sel  string
		want []Kernel
		err  string
	}{
		{sel: "", want: []Kernel{list[0], list[1], {Name: Running}}},
		{sel: "6.12,running", want: []Kernel{list[1], {Name: Running}}},
		{sel: "  6.1  ", want: []Kernel{list[0]}},
		{sel: "linux-image-6.1.0-47-amd64", want: []Kernel{{"linux-image-6.1.0-47-amd64", "linux-image-6.1.0-47-amd64"}}},
		{sel: "6.6", err: `unknown kernel "6.6" (want one of 6.1, 6.12, running`},
		{sel: "6.1 6.1", err: `kernel "6.1" named twice`},
	}
	for _, tt := range tests {
		got, err := SelectKernels(list, tt.sel)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("SelectKernels(%q): error %v, want one containing %q", tt.sel, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("SelectKernels(%q): %v", tt.sel, err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("SelectKernels(%q) (-want +got):\n%s", tt.sel, diff)
		}
	}
}

func TestMatchesRelease(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, release string
		want          bool
	}{
		{"6.1", "6.1.0-57-amd64", true},
		{"6.1", "6.12.118+deb12-amd64", false},
		{"6.12", "6.12.118+deb12-amd64", true},
		{"6.1", "6.1", true},
		{"6.1", "5.10.0", false},
	}
	for _, tt := range tests {
		if got := matchesRelease(tt.name, tt.release); got != tt.want {
			t.Errorf("matchesRelease(%q, %q) = %v, want %v", tt.name, tt.release, got, tt.want)
		}
	}
}

// TestResolveStanza: a metapackage is followed to the kernel it depends
// on; a kernel package depends on no other kernel.
func TestResolveStanza(t *testing.T) {
	t.Parallel()
	meta := "Package: linux-image-amd64\nSource: linux-signed-amd64 (6.1.192+3)\nVersion: 6.1.192-3\n" +
		"Depends: linux-image-6.1.0-57-amd64 (= 6.1.192-3)\nDescription: Linux for\n 64-bit PCs (meta-package)\n\n" +
		"Package: linux-image-amd64\nVersion: 6.1.176-1\n"
	st, err := parseStanza(meta)
	if err != nil {
		t.Fatal(err)
	}
	if st["Version"] != "6.1.192-3" || !strings.Contains(st["Description"], "64-bit PCs") {
		t.Errorf("parseStanza = %v; want the first stanza with its continuation lines", st)
	}
	if got := kernelDepends("linux-image-amd64", st["Depends"]); got != "linux-image-6.1.0-57-amd64" {
		t.Errorf("kernelDepends of the metapackage = %q", got)
	}
	kernel := "kmod, linux-base (>= 4.3~), initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool"
	if got := kernelDepends("linux-image-6.1.0-57-amd64", kernel); got != "" {
		t.Errorf("kernelDepends of a kernel package = %q, want none", got)
	}
	if got := kernelDepends("linux-image-6.12-amd64", "linux-image-6.12.118+deb12-amd64 (= 6.12.118-1~deb12u1)"); got != "linux-image-6.12.118+deb12-amd64" {
		t.Errorf("kernelDepends of the 6.12 metapackage = %q", got)
	}
	if _, err := parseStanza("Description: no package\n"); err == nil {
		t.Error("parseStanza accepted a stanza without Package and Version")
	}
	if got := sanitizeVersion("1:6.1/x"); got != "1%3a6.1_x" {
		t.Errorf("sanitizeVersion = %q", got)
	}
}

func TestLoadOrder(t *testing.T) {
	t.Parallel()
	dep := "kernel/net/mptcp/mptcp_diag.ko.xz: kernel/net/ipv4/inet_diag.ko.xz\n" +
		"kernel/net/ipv4/tcp_diag.ko.xz: kernel/net/ipv4/inet_diag.ko.xz\n" +
		"kernel/net/ipv4/inet_diag.ko.xz:\n" +
		"kernel/drivers/net/veth.ko.xz:\n" +
		"kernel/a/top.ko: kernel/a/mid.ko kernel/a/low.ko\n" +
		"kernel/a/mid.ko: kernel/a/low.ko\n" +
		"kernel/a/low.ko:\n" +
		"kernel/a/loop1.ko: kernel/a/loop2.ko\n" +
		"kernel/a/loop2.ko: kernel/a/loop1.ko\n"
	m, err := parseModulesDep(strings.NewReader(dep))
	if err != nil {
		t.Fatal(err)
	}
	m.builtin["sch_blackhole"] = true
	got, err := m.LoadOrder("veth", "mptcp_diag", "tcp-diag", "sch_blackhole", "top")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"kernel/drivers/net/veth.ko.xz", "kernel/net/ipv4/inet_diag.ko.xz", "kernel/net/mptcp/mptcp_diag.ko.xz",
		"kernel/net/ipv4/tcp_diag.ko.xz", "kernel/a/low.ko", "kernel/a/mid.ko", "kernel/a/top.ko"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LoadOrder (-want +got):\n%s", diff)
	}
	if _, err := m.LoadOrder("nosuch"); err == nil || !strings.Contains(err.Error(), "no module nosuch") {
		t.Errorf("LoadOrder(nosuch) = %v, want an error naming it", err)
	}
	if _, err := m.LoadOrder("loop1"); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("LoadOrder(loop1) = %v, want a cycle error", err)
	}
	if _, err := parseModulesDep(strings.NewReader("no colon here\n")); err == nil {
		t.Error("parseModulesDep accepted a line without a colon")
	}
	if got := ModuleName("kernel/net/sched/sch-tbf.ko.zst"); got != "sch_tbf" {
		t.Errorf("ModuleName = %q, want sch_tbf", got)
	}
}

// TestInitramfs writes an archive and reads it back with the cpio
// library's reader: parents first, modes, contents, links.
func TestInitramfs(t *testing.T) {
	t.Parallel()
	src := filepath.Join(t.TempDir(), "tool")
	if err := os.WriteFile(src, []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	fs := NewInitramfs()
	steps := []error{
		fs.File("/usr/bin/tool", src),
		fs.Bytes("/etc/passwd", []byte("root:x:0:0::/root:/bin/sh\n"), 0o644),
		fs.Symlink("/bin/sh", "busybox"),
		fs.Dir("/tmp", 0o777|os.ModeSticky),
		fs.Dir("/usr", 0o755), // again: fine
	}
	if err := errors.Join(steps...); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []error{
		fs.Bytes("/etc/passwd", nil, 0o644),
		fs.Bytes("relative", nil, 0o644),
		fs.Bytes("/a/../b", nil, 0o644),
		fs.Bytes("/etc/passwd/x", nil, 0o644),
		fs.Symlink("/x", ""),
		fs.File("/y", filepath.Dir(src)),
	} {
		if bad == nil {
			t.Error("a bad entry was accepted")
		}
	}
	var buf bytes.Buffer
	n, err := fs.WriteTo(&buf)
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("WriteTo = %d, %v; wrote %d", n, err, buf.Len())
	}
	type file struct {
		Mode cpio.FileMode
		Data string
	}
	got := map[string]file{}
	var order []string
	r := cpio.NewReader(&buf)
	for {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if h.Linkname != "" {
			b = []byte(h.Linkname)
		}
		got[h.Name] = file{h.Mode, string(b)}
		order = append(order, h.Name)
	}
	want := map[string]file{
		"bin":          {cpio.TypeDir | 0o755, ""},
		"bin/sh":       {cpio.TypeSymlink | 0o777, "busybox"},
		"etc":          {cpio.TypeDir | 0o755, ""},
		"etc/passwd":   {cpio.TypeReg | 0o644, "root:x:0:0::/root:/bin/sh\n"},
		"tmp":          {cpio.TypeDir | cpio.ModeSticky | 0o777, ""},
		"usr":          {cpio.TypeDir | 0o755, ""},
		"usr/bin":      {cpio.TypeDir | 0o755, ""},
		"usr/bin/tool": {cpio.TypeReg | 0o755, "#!/bin/true\n"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("archive (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"bin", "bin/sh", "etc", "etc/passwd", "tmp", "usr", "usr/bin", "usr/bin/tool"}, order); diff != "" {
		t.Errorf("archive order (-want +got):\n%s", diff)
	}
}

// TestResultsStream: what the guest writes is read back into segments,
// also when the output does not end in a newline and when the guest
// died in the middle of a run.
func TestResultsStream(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	rw := NewRecordWriter(&buf)
	write := func(s string) {
		if _, err := rw.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	rec := func(r Record) {
		if err := rw.Record(r); err != nil {
			t.Fatal(err)
		}
	}
	rec(Record{Type: "kernel", Release: "6.1.0-57-amd64", Sysctls: []string{"enabled", "pm_type"}})
	rec(Record{Type: "module", File: "/lib/modules/x/veth.ko", Error: "exec format error"})
	rec(Record{Type: "begin", Name: "genl"})
	write("=== RUN   TestA\n--- PASS: TestA (0.00s)\nPASS")
	rec(Record{Type: "end", Name: "genl", Exit: 0, Elapsed: 1500 * time.Millisecond})
	rec(Record{Type: "begin", Name: "pm"})
	write("=== RUN   TestB\n")
	complete := buf.String()
	rec(Record{Type: "end", Name: "pm", Exit: 1})
	rec(Record{Type: "done"})

	res, err := ReadResults(strings.NewReader(buf.String()))
	if err != nil {
		t.Fatal(err)
	}
	if res.Kernel == nil || res.Kernel.Release != "6.1.0-57-amd64" || !res.Done || len(res.ModuleErrors) != 1 || len(res.Noise) != 0 {
		t.Errorf("ReadResults = %+v", res)
	}
	want := []*Segment{
		{Name: "genl", Output: []byte("=== RUN   TestA\n--- PASS: TestA (0.00s)\nPASS\n"), Ended: true, Elapsed: 1500 * time.Millisecond},
		{Name: "pm", Output: []byte("=== RUN   TestB\n"), Ended: true, Exit: 1},
	}
	if diff := cmp.Diff(want, res.Segments); diff != "" {
		t.Errorf("segments (-want +got):\n%s", diff)
	}

	cut, err := ReadResults(strings.NewReader(complete))
	if err != nil {
		t.Fatal(err)
	}
	if cut.Done || len(cut.Segments) != 2 || cut.Segments[1].Ended {
		t.Errorf("a stream cut in a run: Done %v, segments %+v", cut.Done, cut.Segments)
	}
	if _, err := ReadResults(strings.NewReader(recordPrefix + "{not json\n")); err == nil {
		t.Error("ReadResults accepted a broken record")
	}
}

// TestSummarise counts top-level tests, their subtests folded in, and the
// degraded behaviour they asserted.
func TestSummarise(t *testing.T) {
	t.Parallel()
	stream := `{"Action":"run","Test":"TestA"}
{"Action":"output","Test":"TestA","Output":"    x_test.go:9: netnstest: degraded: Linux 6.1.0: no listener events\n"}
{"Action":"run","Test":"TestA/sub"}
{"Action":"output","Test":"TestA/sub","Output":"    x_test.go:9: netnstest: degraded: Linux 6.1.0: no listener events\n"}
{"Action":"output","Test":"TestA/sub","Output":"    x_test.go:9: netnstest: figure: TestA/sub: 3 transfers, 0 corrupted\n"}
{"Action":"pass","Test":"TestA/sub","Elapsed":0.5}
{"Action":"pass","Test":"TestA","Elapsed":1.25}
{"Action":"run","Test":"TestB"}
{"Action":"fail","Test":"TestB/x","Elapsed":0.1}
{"Action":"fail","Test":"TestB","Elapsed":0.2}
{"Action":"run","Test":"TestC"}
{"Action":"skip","Test":"TestC"}
{"Action":"run","Test":"TestD"}
{"Action":"output","Output":"FAIL\n"}
`
	evs, err := ParseEvents(strings.NewReader(stream))
	if err != nil {
		t.Fatal(err)
	}
	got := Summarise(evs)
	want := []TestResult{
		{Name: "TestA", Result: "pass", Degraded: []string{"Linux 6.1.0: no listener events"},
			Figures: []string{"TestA/sub: 3 transfers, 0 corrupted"}, Elapsed: 1250 * time.Millisecond},
		{Name: "TestB", Result: "fail", Elapsed: 200 * time.Millisecond},
		{Name: "TestC", Result: "skip"},
		{Name: "TestD"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Summarise (-want +got):\n%s", diff)
	}
	k := &KernelResult{Done: true, Packages: []PackageResult{{Package: "x", Ended: true, Exit: 1, Tests: got}}}
	if c := k.Counts(); c != (Counts{Run: 4, Passed: 1, Degraded: 1, Failed: 2, Skipped: 1}) {
		t.Errorf("Counts = %+v", c)
	}
	if k.OK() {
		t.Error("a kernel with failed tests is OK")
	}
	ok := &KernelResult{Done: true, Packages: []PackageResult{{Package: "x", Ended: true, Tests: got[:1]}}}
	if !ok.OK() {
		t.Error("a kernel whose tests all passed is not OK")
	}
	var md bytes.Buffer
	if err := WriteMarkdown(&md, []*KernelResult{k}, "conditions"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"| tests | passed | asserted degraded |", "FAIL x TestB", "SKIP x TestC", "x TestA: Linux 6.1.0: no listener events", "Figures:\n\n- x TestA/sub: 3 transfers, 0 corrupted"} {
		if !strings.Contains(md.String(), s) {
			t.Errorf("report lacks %q:\n%s", s, md.String())
		}
	}
}

// TestGuestArgs: the test binaries' flags, with the timeout scaled.
func TestGuestArgs(t *testing.T) {
	t.Parallel()
	tt := Tests{Pkg: "internal/testing/soak", Run: "^TestCorrupt$", Skip: "X", Args: []string{"-soak.corrupt"}, Timeout: time.Minute}
	want := []string{"-test.v=test2json", "-test.count=1", "-test.paniconexit0", "-test.timeout=4m0s",
		"-test.run=^TestCorrupt$", "-test.skip=X", "-soak.corrupt"}
	if diff := cmp.Diff(want, tt.args(4)); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}
	if got := tt.scaled(0.5); got != time.Minute {
		t.Errorf("a scale below 1 shortened the timeout to %v", got)
	}
	if tt.binaryName() != "internal_testing_soak.test" {
		t.Errorf("binaryName = %q", tt.binaryName())
	}
	for _, name := range SuiteNames() {
		s, err := LookupSuite(name)
		if err != nil || len(s) == 0 {
			t.Errorf("suite %s: %v", name, err)
		}
		for _, tt := range s {
			if _, err := os.Stat(filepath.Join("..", "..", tt.Pkg)); err != nil || tt.Timeout <= 0 {
				t.Errorf("suite %s: package %s: %v, timeout %v", name, tt.Pkg, err, tt.Timeout)
			}
		}
	}
	if _, err := LookupSuite("nightly"); err == nil || !strings.Contains(err.Error(), "ci or full") {
		t.Errorf("LookupSuite(nightly) = %v", err)
	}
}

// TestQemuArgs: no network device, both serial ports to files, KVM only
// when asked.
func TestQemuArgs(t *testing.T) {
	t.Parallel()
	vm := &VM{Kernel: "vmlinuz", Initrd: "initrd", Console: "c.log", Results: "r.log", MemoryMiB: 1024, CPUs: 2}
	args := strings.Join(vm.Args(), " ")
	for _, s := range []string{"-nodefaults", "accel=tcg", "-cpu max", "-serial file:c.log -serial file:r.log", "console=ttyS0", "-m 1024 -smp 2"} {
		if !strings.Contains(args, s) {
			t.Errorf("qemu args %q lack %q", args, s)
		}
	}
	for _, s := range []string{"-netdev", "-nic", "-device"} {
		if strings.Contains(args, s) {
			t.Errorf("qemu args %q have %q", args, s)
		}
	}
	vm.KVM = true
	if args := strings.Join(vm.Args(), " "); !strings.Contains(args, "accel=kvm") || !strings.Contains(args, "-cpu host") {
		t.Errorf("KVM args %q", args)
	}
	vm.Shares = []HostShare{{Tag: "usr", Path: "/usr"}}
	vm.Cmdline = []string{"systemd.unit=check.service"}
	args = strings.Join(vm.Args(), " ")
	for _, s := range []string{"-virtfs local,path=/usr,mount_tag=usr,security_model=none,readonly=on",
		"rdinit=/init systemd.unit=check.service -serial"} {
		if !strings.Contains(args, s) {
			t.Errorf("qemu args %q lack %q", args, s)
		}
	}
}

// TestSharedLibs finds the interpreter and libraries of a dynamic
// executable of this machine, and nothing for a static one.
func TestSharedLibs(t *testing.T) {
	t.Parallel()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if libs, err := SharedLibs(self); err == nil && len(libs) > 0 {
		// The test binary may be dynamic (cgo, race): then it needs libc.
		if !strings.Contains(strings.Join(libs, " "), "libc.so") {
			t.Errorf("SharedLibs(test binary) = %v without libc", libs)
		}
	}
	sh, err := lookTool("sh")
	if err != nil {
		t.Skip("no sh on this machine")
	}
	if err := checkStatic(sh); err == nil {
		t.Skip("sh is static here")
	}
	libs, err := SharedLibs(sh)
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(libs, " ")
	if !strings.Contains(joined, "ld-linux") || !strings.Contains(joined, "libc.so") {
		t.Errorf("SharedLibs(%s) = %v, want the interpreter and libc", sh, libs)
	}
	if _, err := SharedLibs(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("SharedLibs of a missing file succeeded")
	}
}

// handleCall matches the start of a vishvananda/netlink handle
// constructor call.
var handleCall = regexp.MustCompile(`netlink\.NewHandle(At|AtFrom)?\(`)

// callArgs returns the arguments of the call whose opening parenthesis
// ends src[:open], up to the matching closing one.
func callArgs(src string, open int) string {
	depth := 1
	for i := open; i < len(src); i++ {
		switch src[i] {
		case '(':
			depth++
		case ')':
			if depth--; depth == 0 {
				return src[open:i]
			}
		}
	}
	return src[open:]
}

// TestNetlinkHandlesNameFamilies: every vishvananda/netlink handle in the
// module names the netlink families it uses. A handle opened for every
// family also opens XFRM and netfilter netlink sockets, which fail with
// "protocol not supported" on kernels that have them as modules nobody
// loaded, such as Debian's.
func TestNetlinkHandlesNameFamilies(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..")
	calls := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "bin" || strings.HasPrefix(d.Name(), ".")) && p != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		src := string(b)
		for _, m := range handleCall.FindAllStringIndex(src, -1) {
			calls++
			if args := callArgs(src, m[1]); !strings.Contains(args, "NETLINK_") {
				t.Errorf("%s: %s%s) opens every netlink family; name the ones it uses (unix.NETLINK_ROUTE)", p, src[m[0]:m[1]], args)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls == 0 {
		t.Error("found no netlink handle at all: the pattern is stale")
	}
}

// TestNarrow: one package, other tests.
func TestNarrow(t *testing.T) {
	t.Parallel()
	suite := []Tests{{Pkg: "genl", Skip: "X"}, {Pkg: "pm", Run: "Kernel$"}}
	got, err := Narrow(suite, "pm", "")
	if err != nil || len(got) != 1 || got[0].Run != "Kernel$" {
		t.Errorf("Narrow(pm) = %+v, %v", got, err)
	}
	got, err = Narrow(suite, "", "^TestA$")
	if err != nil || len(got) != 2 || got[0].Run != "^TestA$" || got[0].Skip != "" {
		t.Errorf("Narrow(run) = %+v, %v", got, err)
	}
	if _, err := Narrow(suite, "nosuch", ""); err == nil || !strings.Contains(err.Error(), "genl, pm") {
		t.Errorf("Narrow(nosuch) = %v", err)
	}

	// A package with two runs: both kept as they are, or made one by
	// -run, in the place of the last, with the modules of both.
	two := []Tests{
		{Pkg: "internal/daemon", Run: "^TestA$", Timeout: 8 * time.Minute},
		{Pkg: "genl", Timeout: time.Minute},
		{Pkg: "internal/daemon", Run: "^TestB$", Modules: []string{"nf_tables"}, Timeout: 4 * time.Minute},
	}
	if got, err := Narrow(two, "internal/daemon", ""); err != nil || len(got) != 2 {
		t.Errorf("Narrow(internal/daemon) = %+v, %v; want both runs", got, err)
	}
	got, err = Narrow(two, "", "^TestB$")
	want := []Tests{
		{Pkg: "genl", Run: "^TestB$", Timeout: time.Minute},
		{Pkg: "internal/daemon", Run: "^TestB$", Modules: []string{"nf_tables"}, Timeout: 8 * time.Minute},
	}
	if diff := cmp.Diff(want, got); err != nil || diff != "" {
		t.Errorf("Narrow(run) of a package with two runs: %v (-want +got):\n%s", err, diff)
	}
	if two[0].Run != "^TestA$" || len(two[0].Modules) != 0 {
		t.Errorf("Narrow changed the suite: %+v", two[0])
	}
	if _, err := Narrow(two, "nosuch", ""); err == nil || !strings.Contains(err.Error(), "internal/daemon, genl)") {
		t.Errorf("Narrow(nosuch) = %v, want each package once", err)
	}
}

// TestGuestInitramfsRunModules: a package with two runs has its binary
// once; a run's own modules are loaded just before it, their
// dependencies already loaded not again, and nothing before it loads
// them.
func TestGuestInitramfsRunModules(t *testing.T) {
	t.Parallel()
	for _, tool := range append(HostTools, HostTool{"busybox", "busybox-static"}) {
		if _, err := lookTool(tool.Name); err != nil {
			runtest.Unavailable(t, fmt.Sprintf("%s: apt-get install %s", tool.Name, tool.Package))
		}
	}
	mods := fakeModules(t,
		"kernel/drivers/net/veth.ko.xz:",
		"kernel/net/sched/sch_tbf.ko.xz:",
		"kernel/net/sched/sch_htb.ko.xz:",
		"kernel/net/ipv4/inet_diag.ko.xz:",
		"kernel/net/mptcp/mptcp_diag.ko.xz: kernel/net/ipv4/inet_diag.ko.xz",
		"kernel/net/ipv4/tcp_diag.ko.xz: kernel/net/ipv4/inet_diag.ko.xz",
		"kernel/net/netlink/netlink_diag.ko.xz:",
		"kernel/net/netfilter/nfnetlink.ko.xz: kernel/lib/libcrc32c.ko.xz",
		"kernel/lib/libcrc32c.ko.xz:",
		"kernel/net/netfilter/nf_tables.ko.xz: kernel/net/netfilter/nfnetlink.ko.xz kernel/lib/libcrc32c.ko.xz",
	)
	b := fakeBuild(t, []Tests{
		{Pkg: "genl", Timeout: time.Minute},
		{Pkg: "internal/daemon", Run: "^TestA$", Timeout: time.Minute},
		{Pkg: "internal/daemon", Run: "^TestB$", Modules: []string{"nf_tables"}, Timeout: time.Minute},
	})
	img := &Image{Kernel: Kernel{Name: "6.1"}, Release: "6.1.0-57-amd64", ModDir: mods}
	fsys, plan, err := GuestInitramfs(img, b, 4)
	if err != nil {
		t.Fatal(err)
	}
	lib := "/lib/modules/6.1.0-57-amd64/kernel/"
	want := []string{lib + "drivers/net/veth.ko.xz", lib + "net/sched/sch_tbf.ko.xz", lib + "net/sched/sch_htb.ko.xz",
		lib + "net/ipv4/inet_diag.ko.xz", lib + "net/mptcp/mptcp_diag.ko.xz", lib + "net/ipv4/tcp_diag.ko.xz",
		lib + "net/netlink/netlink_diag.ko.xz"}
	if diff := cmp.Diff(want, plan.Modules); diff != "" {
		t.Errorf("modules loaded at boot (-want +got):\n%s", diff)
	}
	var runs [][]string
	for _, r := range plan.Runs {
		runs = append(runs, []string{r.Name, r.Path, strings.Join(r.Modules, " ")})
	}
	wantRuns := [][]string{
		{"genl", "/compat/tests/genl.test", ""},
		{"internal/daemon", "/compat/tests/internal_daemon.test", ""},
		{"internal/daemon", "/compat/tests/internal_daemon.test",
			lib + "lib/libcrc32c.ko.xz " + lib + "net/netfilter/nfnetlink.ko.xz " + lib + "net/netfilter/nf_tables.ko.xz"},
	}
	if diff := cmp.Diff(wantRuns, runs); diff != "" {
		t.Errorf("runs: name, binary, modules (-want +got):\n%s", diff)
	}
	paths := fsys.Paths()
	for _, p := range []string{"/usr/bin/nft", lib + "net/netfilter/nf_tables.ko.xz", "/compat/tests/internal_daemon.test"} {
		if !slices.Contains(paths, p) {
			t.Errorf("the initramfs has no %s", p)
		}
	}

	b.Tests[2].Modules = []string{"nosuch"}
	if _, _, err := GuestInitramfs(img, b, 4); err == nil || !strings.Contains(err.Error(), "no module nosuch") {
		t.Errorf("a run's unknown module: %v, want an error naming it", err)
	}
}

// fakeModules returns a modules directory whose modules.dep has the
// lines, and whose module files exist.
func fakeModules(t *testing.T, lines ...string) string {
	t.Helper()
	mods := t.TempDir()
	var dep strings.Builder
	for _, line := range lines {
		dep.WriteString(line + "\n")
		f, _, _ := strings.Cut(line, ":")
		if err := os.MkdirAll(filepath.Join(mods, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(mods, f), []byte("module"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(mods, "modules.dep"), []byte(dep.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return mods
}

// fakeBuild returns a build of the source tree with stand-ins for its
// binaries.
func fakeBuild(t *testing.T, suite []Tests) *Build {
	t.Helper()
	dir := t.TempDir()
	b := &Build{Dir: dir, ModRoot: filepath.Join("..", ".."), Tests: suite,
		Daemon: filepath.Join(dir, "mptcpgod"), CLI: filepath.Join(dir, "mptcpctl"), Init: filepath.Join(dir, "compatinit")}
	for _, p := range append([]string{b.Daemon, b.CLI, b.Init}, b.testBinaries()...) {
		if err := os.WriteFile(p, []byte("binary"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return b
}
