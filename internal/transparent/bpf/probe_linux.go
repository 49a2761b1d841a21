package bpf

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"
)

// Step names what a Probe or Attach could not do.
type Step string

// The steps, in the order they are tried.
const (
	// StepKernel: the kernel has no BTF or no update_socket_protocol.
	StepKernel Step = "kernel"
	// StepCapabilities: the process lacks the capabilities to load.
	StepCapabilities Step = "capabilities"
	// StepLoad: the kernel refused to load the fmod_ret program.
	StepLoad Step = "load"
	// StepAttach: the program loaded but did not attach.
	StepAttach Step = "attach"
)

// UnavailableError says why the BPF mechanism cannot run here.
type UnavailableError struct {
	// Step is what failed.
	Step Step
	// Reason explains it in a sentence, with what was found (errno,
	// capabilities held, kernel lockdown).
	Reason string
	// Err is the underlying error, if any.
	Err error
}

// Error returns "bpf: unavailable (STEP): REASON".
func (e *UnavailableError) Error() string {
	return fmt.Sprintf("bpf: unavailable (%s): %s", e.Step, e.Reason)
}

// Unwrap returns the underlying error.
func (e *UnavailableError) Unwrap() error { return e.Err }

// vmlinuxBTF is the kernel's own BTF.
const vmlinuxBTF = "/sys/kernel/btf/vmlinux"

// lockdownFile tells the kernel's lockdown level when securityfs is
// mounted.
const lockdownFile = "/sys/kernel/security/lockdown"

// Probe reports whether this kernel and this process can run the
// mechanism: it loads the fmod_ret program and attaches it with empty
// maps (which changes no socket), then detaches it. It returns nil, or an
// *UnavailableError.
func Probe() error {
	f, err := Attach()
	if err != nil {
		return err
	}
	return f.Close()
}

// checkKernel checks what comes before loading: BTF, the hook, the
// capabilities.
func checkKernel() error {
	if _, err := os.Stat(vmlinuxBTF); err != nil {
		return &UnavailableError{Step: StepKernel, Err: err,
			Reason: "the kernel has no BTF (" + vmlinuxBTF + ": CONFIG_DEBUG_INFO_BTF), which fmod_ret programs need"}
	}
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return &UnavailableError{Step: StepKernel, Err: err, Reason: "the kernel's BTF does not load: " + err.Error()}
	}
	var fn *btf.Func
	if err := spec.TypeByName(Hook, &fn); err != nil {
		return &UnavailableError{Step: StepKernel, Err: err,
			Reason: "the kernel has no " + Hook + " hook (Linux 6.6 and later have it)"}
	}
	if missing := missingCapabilities(); missing != "" {
		return &UnavailableError{Step: StepCapabilities, Err: unix.EPERM,
			Reason: "this process lacks " + missing + " (loading a tracing program needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN)"}
	}
	return nil
}

// Capability numbers newer than some of x/sys/unix's users expect.
const (
	capSysAdmin = 21
	capPerfmon  = 38
	capBPF      = 39
)

// effectiveCaps returns the calling thread's effective capability set.
func effectiveCaps() (uint64, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return 0, err
	}
	return uint64(data[0].Effective) | uint64(data[1].Effective)<<32, nil
}

// missingCapabilities names the capabilities the load needs and the
// process lacks, or returns "".
func missingCapabilities() string {
	eff, err := effectiveCaps()
	if err != nil {
		return "capabilities that could not be read (" + err.Error() + ")"
	}
	has := func(c uint) bool { return eff&(1<<c) != 0 }
	if has(capSysAdmin) || (has(capBPF) && has(capPerfmon)) {
		return ""
	}
	var missing []string
	if !has(capBPF) {
		missing = append(missing, "CAP_BPF")
	}
	if !has(capPerfmon) {
		missing = append(missing, "CAP_PERFMON")
	}
	return strings.Join(missing, " and ")
}

// unavailable explains err, from step load or attach.
func unavailable(step Step, err error) *UnavailableError {
	e := &UnavailableError{Step: step, Err: err}
	var ve *ebpf.VerifierError
	switch {
	case errors.As(err, &ve):
		e.Reason = "the verifier rejected the program: " + lastLine(ve)
	case errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES):
		e.Reason = fmt.Sprintf("the kernel refused the %s of the fmod_ret program on %s with %s, before the verifier ran, "+
			"although this process holds %s; %s", step, Hook, errnoName(err), heldCapabilities(), lockdown())
	case errors.Is(err, ebpf.ErrNotSupported), errors.Is(err, unix.ENOTSUP), errors.Is(err, unix.EOPNOTSUPP):
		e.Reason = "this kernel or architecture has no BPF trampolines for fmod_ret programs: " + err.Error()
	default:
		e.Reason = fmt.Sprintf("%s of the fmod_ret program on %s failed: %v", step, Hook, err)
	}
	return e
}

// lastLine is the verifier's last log line before its statistics
// ("processed N insns ...", "verification time ...", "stack depth ..."):
// its reason.
func lastLine(ve *ebpf.VerifierError) string {
	for i := len(ve.Log) - 1; i >= 0; i-- {
		l := strings.TrimSpace(ve.Log[i])
		if l != "" && !strings.HasPrefix(l, "processed ") && !strings.HasPrefix(l, "verification time ") &&
			!strings.HasPrefix(l, "stack depth ") {
			return l
		}
	}
	return ve.Error()
}

// errnoName is "EPERM" or "EACCES".
func errnoName(err error) string {
	if errors.Is(err, unix.EACCES) {
		return "EACCES"
	}
	return "EPERM"
}

// heldCapabilities names the capabilities the load needs that the
// process holds.
func heldCapabilities() string {
	eff, err := effectiveCaps()
	if err != nil {
		return "capabilities that could not be read"
	}
	var held []string
	for _, c := range []struct {
		n    uint
		name string
	}{{capBPF, "CAP_BPF"}, {capPerfmon, "CAP_PERFMON"}, {capSysAdmin, "CAP_SYS_ADMIN"}} {
		if eff&(1<<c.n) != 0 {
			held = append(held, c.name)
		}
	}
	if len(held) == 0 {
		return "none of CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN"
	}
	return strings.Join(held, ", ")
}

// lockdown describes the kernel's lockdown, the usual reason a kernel
// refuses tracing programs to a privileged process.
func lockdown() string {
	level, err := LockdownLevel()
	switch {
	case err != nil:
		return "the kernel's lockdown level is unknown (" + err.Error() + "); a locked-down kernel or a security module refuses tracing programs"
	case level == "none":
		return "the kernel is not locked down, so a security module (a BPF LSM, SELinux) refused it"
	}
	return "the kernel is locked down (" + level + "), under which this kernel refuses tracing programs"
}

// LockdownLevel returns the kernel's lockdown level, "none", "integrity"
// or "confidentiality", from securityfs.
func LockdownLevel() (string, error) {
	b, err := os.ReadFile(lockdownFile)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", errors.New(lockdownFile + " does not exist: securityfs is not mounted or the kernel has no lockdown")
		}
		return "", err
	}
	for _, f := range strings.Fields(string(b)) {
		if strings.HasPrefix(f, "[") && strings.HasSuffix(f, "]") {
			return strings.Trim(f, "[]"), nil
		}
	}
	return "", fmt.Errorf("%s: no [level] in %q", lockdownFile, strings.TrimSpace(string(b)))
}
