package compat

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Tests selects the tests of one package to run on every kernel.
type Tests struct {
	// Pkg is the package's directory relative to the module root
	// ("genl", "internal/sockdiag").
	Pkg string
	// Run and Skip are the -test.run and -test.skip patterns ("" for all,
	// none).
	Run, Skip string
	// Args are more flags of the package's tests.
	Args []string
	// Modules are kernel modules these tests need beyond TestModules,
	// loaded in the guests (with their dependencies) just before this
	// run, so that the runs before it see a kernel without them.
	Modules []string
	// Timeout is the package's -test.timeout on a quiet machine with KVM;
	// runs scale it (Options.TimeScale).
	Timeout time.Duration
}

// TestModules are the kernel modules the tests need, loaded in the guests
// with their dependencies: veth links, the tbf and htb qdiscs, and the
// MPTCP, TCP and netlink sock_diag handlers (a system with modprobe loads
// the handlers when a dump first asks; the guests have none). Debian's
// kernels have them as modules; XFRM and netfilter netlink, which a vishvananda/netlink handle
// opened for every family wants, are deliberately left out, as on a stock
// Debian system that never loaded them.
var TestModules = []string{"veth", "sch_tbf", "sch_htb", "mptcp_diag", "tcp_diag", "netlink_diag"}

// Suites are the test selections by name: "full", what make compat runs,
// and "ci", the subset .ci/run runs on Debian 12's kernel under TCG.
var Suites = map[string][]Tests{
	"full": {
		// The genl client: every command, event and error, its wire format
		// against a fake kernel and against this kernel.
		{Pkg: "genl", Skip: "^TestHelperProcess$", Timeout: 4 * time.Minute},
		// sock_diag: connections, subflows, MPTCP_INFO of every length.
		{Pkg: "internal/sockdiag", Skip: "^(TestDeps|TestCaptureSeeds|TestHoldConns|TestUnprivilegedHelper)$", Timeout: 4 * time.Minute},
		// The link monitor's view of real links.
		{Pkg: "internal/linkmon", Run: "^(TestInitialState|TestDefaultConfigExcludesVeth|TestAddrAddRemove|TestDADTentativeThenUsable|TestLinkDownUp|TestNoRoute|TestAddrDeleteFlushesRoutes|TestCompleteChangesSkipSettle|TestSourceResyncsAfterOverflow|TestSourceRelistsRoutesAfterAddrDelete)$", Timeout: 4 * time.Minute},
		// The engine in both path-manager modes.
		{Pkg: "pm", Run: "Kernel$", Timeout: 6 * time.Minute},
		// The daemon end to end: meshes, link loss and return, restarts,
		// the limits it holds, the kernel's implicit endpoints replaced,
		// joins deferred by bytes, the byte counters they read, and
		// forcing with BPF.
		{Pkg: "internal/daemon", Run: "^(TestNew|TestUserspaceMesh|TestKernelModeNewLink|TestLinkLossAndReturn|TestKillAndRestart|TestSignals|TestBurstResync|TestReloadPolicy|TestKernelCapabilities|TestDeferralBytes|TestByteReader|TestKernelLimits|TestImplicitEndpointReplacedInPlace|TestImplicitEndpointAtStart|TestRulesByOwnerServer|TestForceBPF)$", Timeout: 8 * time.Minute},
		// mptcpctl against ip and ss, and against the daemon (forcing
		// with BPF too); the userspace path manager driven by hand.
		{Pkg: "cmd/mptcpctl", Run: "^(TestEndpointsKernel|TestLimitsKernel|TestPMKernel|TestConnectionsAndSubflows|TestConnectionsUserspacePM|TestMonitorKernel|TestBadInputKernel|TestDaemonUserspace|TestDaemonKernel|TestUserspacePMByHand|TestUserspaceCommandsKernelPM|TestForceUnitBPFKernel)$", Timeout: 6 * time.Minute},
		// The corruption reproducer, with short transfers: the bad blocks
		// sit 65 to 120 KB into a stream, so the joins that matter come
		// early (create-early joins on ESTABLISHED, as the in-kernel path
		// manager does).
		{Pkg: "internal/testing/soak", Run: "^TestCorrupt$", Args: []string{
			"-soak.corrupt", "-soak.corrupt.cases", "none,create-early,destroy,kernel-pm",
			"-soak.corrupt.duration", "20s", "-soak.corrupt.size", "262144",
		}, Timeout: 4 * time.Minute},
		// The BPF force mechanism: the decision in the kernel, the probe,
		// and the fmod_ret program attached where the kernel allows it.
		{Pkg: "internal/transparent/bpf", Timeout: 4 * time.Minute},
		// A hostile peer's announces, to the daemon in both modes: the
		// third host counts what reaches it with nftables counters, so
		// this run comes last, after nf_tables (and with it netfilter
		// netlink) is loaded. nf_tables needs libcrc32c, whose crc32c
		// algorithm (crc32c_generic) modprobe would load first (a soft
		// dependency, which modules.dep does not list).
		{Pkg: "internal/daemon", Run: "^TestHostilePeer$", Modules: []string{"crc32c_generic", "nf_tables"}, Timeout: 4 * time.Minute},
	},
	"ci": {
		// Chosen to fit the CI's budget under TCG (about 5 minutes of
		// guest time on a loaded machine): what the kernel lacks, the
		// family, endpoint errors, sock_diag, both engine modes, and the
		// daemon's start, mesh and link loss.
		{Pkg: "genl", Run: "^(TestKernelCapabilities|TestFeaturesKernel|TestPathManager|TestEndpointErrors)$", Timeout: 4 * time.Minute},
		{Pkg: "internal/sockdiag", Run: "^TestIntegration$", Timeout: 4 * time.Minute},
		{Pkg: "pm", Run: "^(TestUserspaceMeshKernel|TestKernelModeKernel)$", Timeout: 4 * time.Minute},
		{Pkg: "internal/daemon", Run: "^(TestNew|TestUserspaceMesh|TestLinkLossAndReturn|TestKernelCapabilities)$", Timeout: 4 * time.Minute},
	},
}

// SuiteNames returns the names of Suites, sorted.
func SuiteNames() []string {
	var names []string
	for n := range Suites {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// LookupSuite returns the named suite.
func LookupSuite(name string) ([]Tests, error) {
	s, ok := Suites[name]
	if !ok {
		return nil, fmt.Errorf("compat: unknown suite %q (want %s)", name, strings.Join(SuiteNames(), " or "))
	}
	return s, nil
}

// binaryName is the file name of a package's test binary.
func (t Tests) binaryName() string {
	return strings.ReplaceAll(t.Pkg, "/", "_") + ".test"
}

// args returns the test binary's flags, with the timeout scaled.
func (t Tests) args(scale float64) []string {
	a := []string{"-test.v=test2json", "-test.count=1", "-test.paniconexit0",
		"-test.timeout=" + t.scaled(scale).String()}
	if t.Run != "" {
		a = append(a, "-test.run="+t.Run)
	}
	if t.Skip != "" {
		a = append(a, "-test.skip="+t.Skip)
	}
	return append(a, t.Args...)
}

// scaled returns the timeout multiplied by scale.
func (t Tests) scaled(scale float64) time.Duration {
	return time.Duration(float64(t.Timeout) * max(scale, 1)).Round(time.Second)
}

// Narrow returns the suite's tests of the package pkg only (all packages
// when pkg is ""), running the tests that match run instead of the
// suite's choice when run is not "": then a package's runs become one, in
// the place of its last, with the modules of all and the longest timeout.
// It is an error when nothing is left.
func Narrow(suite []Tests, pkg, run string) ([]Tests, error) {
	var out []Tests
	for _, t := range suite {
		if pkg != "" && t.Pkg != pkg {
			continue
		}
		if run != "" {
			t.Run, t.Skip = run, ""
			if i := slices.IndexFunc(out, func(o Tests) bool { return o.Pkg == t.Pkg }); i >= 0 {
				t.Modules = append(slices.Clip(out[i].Modules), t.Modules...)
				t.Timeout = max(out[i].Timeout, t.Timeout)
				out = slices.Delete(out, i, i+1)
			}
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		var pkgs []string
		for _, t := range suite {
			if !slices.Contains(pkgs, t.Pkg) {
				pkgs = append(pkgs, t.Pkg)
			}
		}
		return nil, fmt.Errorf("compat: -pkg %q: not in the suite (want one of %s)", pkg, strings.Join(pkgs, ", "))
	}
	return out, nil
}
