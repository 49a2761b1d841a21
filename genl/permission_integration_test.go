package genl_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
)

// helperEnv makes the test binary run TestHelperProcess as an
// unprivileged helper instead of the tests.
const helperEnv = "MPTCPGOD_GENL_TEST_HELPER"

// helperPrefix starts the line of the helper's output carrying its JSON.
const helperPrefix = "genl-helper-result: "

// helperOp is the outcome of one client call in the helper process.
type helperOp struct {
	Err        string `json:",omitempty"`
	Permission bool   // errors.Is(err, os.ErrPermission)
	KernelErr  bool   // errors.As(err, **genl.Error)
}

// helperResult is what the helper process reports.
type helperResult struct {
	UID, GID    int
	CapEff      string // from /proc/self/status
	Endpoints   []genl.Endpoint
	Endpoint    genl.Endpoint
	Limits      genl.Limits
	PathManager genl.PathManager
	Features    genl.Features
	Ops         map[string]helperOp // every call, by name
}

// TestHelperProcess is not a test: TestPermission runs the test binary
// with helperEnv set, as nobody inside a namespace, and this function
// then exercises the client without privileges and prints the outcome.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("helper process of TestPermission")
	}
	res := helperResult{UID: os.Geteuid(), GID: os.Getegid(), Ops: map[string]helperOp{}}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
				res.CapEff = strings.TrimSpace(v)
			}
		}
	}
	record := func(name string, err error) {
		op := helperOp{}
		if err != nil {
			var ge *genl.Error
			op = helperOp{Err: err.Error(), Permission: errors.Is(err, os.ErrPermission), KernelErr: errors.As(err, &ge)}
		}
		res.Ops[name] = op
	}
	c, err := genl.New(nil)
	record("new", err)
	if err == nil {
		defer c.Close()
		res.Features = c.Features()
		res.Endpoints, err = c.Endpoints()
		record("endpoints", err)
		res.Endpoint, err = c.Endpoint(1)
		record("endpoint", err)
		res.Limits, err = c.Limits()
		record("limits", err)
		res.PathManager, err = c.PathManager()
		record("path manager", err)
		sub, err := c.Subscribe()
		if err == nil {
			_ = sub.Close()
		}
		record("subscribe", err)
		record("add endpoint", c.AddEndpoint(genl.Endpoint{Addr: families[0].docAddr(50), Flags: genl.FlagSignal}))
		record("set endpoint flags", c.SetEndpointFlags(genl.Endpoint{ID: 1}))
		record("delete endpoint", c.DelEndpoint(1))
		record("flush endpoints", c.FlushEndpoints())
		one := uint32(1)
		record("set limits", c.SetLimits(genl.LimitsUpdate{Subflows: &one}))
		record("set path manager", c.SetPathManager(genl.PathManagerUserspace))
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("%s%s\n", helperPrefix, b)
}

// TestPermission runs the client as nobody without capabilities: reading
// endpoints and limits works, subscribing and changing anything fails with
// os.ErrPermission and changes nothing.
func TestPermission(t *testing.T) {
	t.Parallel()
	h := netnstest.NewHost(t, "perm")
	c := newClient(t, h)
	ep := genl.Endpoint{ID: 1, Addr: families[0].docAddr(1), Flags: genl.FlagSubflow | genl.FlagBackup}
	if err := c.AddEndpoint(ep); err != nil {
		t.Fatalf("AddEndpoint: %v", err)
	}
	setLimits(t, c, 3, 5)

	res := runHelper(t, h, "--inh-caps=-all")
	if res.UID == 0 || res.GID == 0 || strings.Trim(res.CapEff, "0") != "" {
		t.Fatalf("helper ran with uid %d gid %d CapEff %q, want an unprivileged process", res.UID, res.GID, res.CapEff)
	}
	want := helperReads(c, ep)
	for _, name := range []string{"subscribe", "add endpoint", "delete endpoint", "set endpoint flags", "flush endpoints", "set limits"} {
		want.Ops[name] = helperOp{Err: res.Ops[name].Err, Permission: true, KernelErr: true}
	}
	// The sysctl is a file: EACCES from open, not a kernel *genl.Error.
	want.Ops["set path manager"] = helperOp{Err: res.Ops["set path manager"].Err, Permission: true}
	if diff := cmp.Diff(want, withoutIdentity(res), cmpOpts); diff != "" {
		t.Errorf("unprivileged client (-want +got):\n%s", diff)
	}
	checkSubscribeSetns(t, res)
	for name, op := range res.Ops {
		if op.Permission && !strings.HasPrefix(op.Err, "genl: ") {
			t.Errorf("%s: error %q lacks the \"genl: \" prefix", name, op.Err)
		}
	}

	// Nothing changed.
	checkEndpoints(t, h, c, []genl.Endpoint{ep})
	if l := ipLimits(t, h); l != (genl.Limits{AddAddrAccepted: 3, Subflows: 5}) {
		t.Errorf("limits after the helper: %+v", l)
	}
	if pm, err := c.PathManager(); err != nil || pm != genl.PathManagerKernel {
		t.Errorf("PathManager after the helper = %q, %v", pm, err)
	}
}

// TestPermissionNetAdmin runs the client as nobody with CAP_NET_ADMIN only,
// as a hardened service would run: everything works, subscribing included.
func TestPermissionNetAdmin(t *testing.T) {
	t.Parallel()
	h := netnstest.NewHost(t, "netadmin")
	c := newClient(t, h)
	ep := genl.Endpoint{ID: 1, Addr: families[0].docAddr(1), Flags: genl.FlagSubflow | genl.FlagBackup}
	if err := c.AddEndpoint(ep); err != nil {
		t.Fatalf("AddEndpoint: %v", err)
	}
	setLimits(t, c, 3, 5)

	res := runHelper(t, h, "--inh-caps=-all,+net_admin", "--ambient-caps=+net_admin")
	const capNetAdmin = "0000000000001000"
	if res.UID == 0 || res.GID == 0 || res.CapEff != capNetAdmin {
		t.Fatalf("helper ran with uid %d gid %d CapEff %q, want nobody with CAP_NET_ADMIN only", res.UID, res.GID, res.CapEff)
	}
	want := helperReads(c, ep)
	for _, name := range []string{"subscribe", "add endpoint", "delete endpoint", "set endpoint flags", "flush endpoints", "set limits", "set path manager"} {
		want.Ops[name] = helperOp{}
	}
	if diff := cmp.Diff(want, withoutIdentity(res), cmpOpts); diff != "" {
		t.Errorf("client with CAP_NET_ADMIN only (-want +got):\n%s", diff)
	}
	checkSubscribeSetns(t, res)
	checkEndpoints(t, h, c, nil)
	if l := ipLimits(t, h); l != (genl.Limits{AddAddrAccepted: 3, Subflows: 1}) {
		t.Errorf("limits after the helper = %+v, want subflows 1", l)
	}
	if pm, err := c.PathManager(); err != nil || pm != genl.PathManagerUserspace {
		t.Errorf("PathManager after the helper = %q, %v; want userspace", pm, err)
	}
}

// checkSubscribeSetns explains a Subscribe that failed in setns: entering
// a namespace needs CAP_SYS_ADMIN, even the one the process is already in,
// so a client must not re-enter its own namespace to open the event socket.
func checkSubscribeSetns(t *testing.T, res helperResult) {
	t.Helper()
	if err := res.Ops["subscribe"].Err; strings.Contains(err, "setns") {
		t.Errorf("Subscribe failed in setns (%q), not in the kernel's group join: the event socket must be opened without setns when the client already is in its namespace", err)
	}
}

// helperReads is the helper's report when its reads succeed in a namespace
// with the endpoint ep, limits 3/5 and the kernel PM; Ops has the reads.
func helperReads(c *genl.Client, ep genl.Endpoint) helperResult {
	return helperResult{
		Endpoints:   []genl.Endpoint{ep},
		Endpoint:    ep,
		Limits:      genl.Limits{AddAddrAccepted: 3, Subflows: 5},
		PathManager: genl.PathManagerKernel,
		Features:    c.Features(),
		Ops: map[string]helperOp{
			"new": {}, "endpoints": {}, "endpoint": {}, "limits": {}, "path manager": {},
		},
	}
}

// withoutIdentity returns res without the process identity fields.
func withoutIdentity(res helperResult) helperResult {
	res.UID, res.GID, res.CapEff = 0, 0, ""
	return res
}

// runHelper runs TestHelperProcess in h as nobody:nogroup without
// supplementary groups, with the capabilities that the setpriv options caps
// give, and decodes its report.
func runHelper(t *testing.T, h *netnstest.Host, caps ...string) helperResult {
	t.Helper()
	// The go tool builds the test binary in a directory only root can
	// enter: give nobody a copy it can run.
	dir, err := os.MkdirTemp("", "genl-helper-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "genl.test")
	copyFile(t, os.Args[0], bin)

	args := append([]string{"--reuid=nobody", "--regid=nogroup", "--clear-groups"}, caps...)
	args = append(args, bin, "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd := h.Command("setpriv", args...)
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper process: %v\n%s", err, out)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if js, ok := strings.CutPrefix(sc.Text(), helperPrefix); ok {
			var res helperResult
			if err := json.Unmarshal([]byte(js), &res); err != nil {
				t.Fatalf("helper report %q: %v", js, err)
			}
			return res
		}
	}
	t.Fatalf("helper process printed no report:\n%s", out)
	return helperResult{}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
