package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Hook is the kernel function the program modifies the return of.
const Hook = "update_socket_protocol"

// Selection is the maps the decision reads: the selected uids and
// cgroup ids. Its methods may be called from many goroutines at once.
type Selection struct {
	uids, cgroups *ebpf.Map
}

// newSelection creates empty maps.
func newSelection() (*Selection, error) {
	uids, err := ebpf.NewMap(&ebpf.MapSpec{Name: uidMapName, Type: ebpf.Hash, KeySize: 4, ValueSize: 1, MaxEntries: MaxEntries})
	if err != nil {
		return nil, fmt.Errorf("bpf: create the uid map: %w", err)
	}
	cgroups, err := ebpf.NewMap(&ebpf.MapSpec{Name: cgroupMapName, Type: ebpf.Hash, KeySize: 8, ValueSize: 1, MaxEntries: MaxEntries})
	if err != nil {
		_ = uids.Close()
		return nil, fmt.Errorf("bpf: create the cgroup map: %w", err)
	}
	return &Selection{uids: uids, cgroups: cgroups}, nil
}

// program returns the decision with the maps of s associated.
func (s *Selection) program() (asm.Instructions, error) {
	insns := Decision()
	if err := insns.AssociateMap(uidMapName, s.uids); err != nil {
		return nil, fmt.Errorf("bpf: %w", err)
	}
	if err := insns.AssociateMap(cgroupMapName, s.cgroups); err != nil {
		return nil, fmt.Errorf("bpf: %w", err)
	}
	return insns, nil
}

// AddUID selects the tasks whose real uid is uid.
func (s *Selection) AddUID(uid uint32) error {
	if err := s.uids.Put(uid, uint8(1)); err != nil {
		return fmt.Errorf("bpf: select uid %d: %w", uid, err)
	}
	return nil
}

// RemoveUID unselects uid; removing a uid that is not selected is no
// error.
func (s *Selection) RemoveUID(uid uint32) error {
	if err := s.uids.Delete(uid); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("bpf: unselect uid %d: %w", uid, err)
	}
	return nil
}

// AddCgroup selects the tasks of the cgroup id and of every cgroup below
// it (CgroupID gives a cgroup's id).
func (s *Selection) AddCgroup(id uint64) error {
	if err := s.cgroups.Put(id, uint8(1)); err != nil {
		return fmt.Errorf("bpf: select cgroup %d: %w", id, err)
	}
	return nil
}

// RemoveCgroup unselects the cgroup id; removing an id that is not
// selected is no error.
func (s *Selection) RemoveCgroup(id uint64) error {
	if err := s.cgroups.Delete(id); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("bpf: unselect cgroup %d: %w", id, err)
	}
	return nil
}

// Cgroups returns the selected cgroup ids, in no order.
func (s *Selection) Cgroups() ([]uint64, error) {
	var ids []uint64
	var id uint64
	var v uint8
	it := s.cgroups.Iterate()
	for it.Next(&id, &v) {
		ids = append(ids, id)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("bpf: list cgroups: %w", err)
	}
	return ids, nil
}

func (s *Selection) close() error {
	return errors.Join(s.uids.Close(), s.cgroups.Close())
}

// CgroupID returns the id of the cgroup v2 directory at path (such as
// /sys/fs/cgroup/system.slice/nginx.service), the id
// bpf_get_current_ancestor_cgroup_id returns: the kernfs node id the
// kernel puts in the directory's file handle.
func CgroupID(path string) (uint64, error) {
	h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, path, 0)
	if err != nil {
		return 0, fmt.Errorf("bpf: cgroup id of %s: %w", path, err)
	}
	b := h.Bytes()
	if len(b) != 8 {
		return 0, fmt.Errorf("bpf: cgroup id of %s: a file handle of %d bytes, want 8 (not cgroup v2?)", path, len(b))
	}
	return binary.NativeEndian.Uint64(b), nil
}

// Forcer is the decision attached to update_socket_protocol: while it is
// open, the selected tasks' TCP sockets are MPTCP.
type Forcer struct {
	*Selection
	prog *ebpf.Program
	link link.Link
}

// Attach loads the decision as an fmod_ret program with empty maps and
// attaches it to update_socket_protocol. When the kernel or the process's
// privileges do not allow it, the error is an *UnavailableError saying
// why.
func Attach() (*Forcer, error) {
	if err := checkKernel(); err != nil {
		return nil, err
	}
	sel, err := newSelection()
	if err != nil {
		if errors.Is(err, unix.EPERM) {
			return nil, unavailable(StepCapabilities, err)
		}
		return nil, err
	}
	f := &Forcer{Selection: sel}
	if f.prog, err = sel.load(); err != nil {
		_ = sel.close()
		return nil, err
	}
	f.link, err = link.AttachTracing(link.TracingOptions{Program: f.prog, AttachType: ebpf.AttachModifyReturn})
	if err != nil {
		_ = f.prog.Close()
		_ = sel.close()
		return nil, unavailable(StepAttach, err)
	}
	return f, nil
}

// load loads the fmod_ret program.
func (s *Selection) load() (*ebpf.Program, error) {
	insns, err := s.program()
	if err != nil {
		return nil, err
	}
	prog, err := ebpf.NewProgramWithOptions(&ebpf.ProgramSpec{
		Name:         "mptcp_force",
		Type:         ebpf.Tracing,
		AttachType:   ebpf.AttachModifyReturn,
		AttachTo:     Hook,
		License:      "GPL",
		Instructions: insns,
	}, ebpf.ProgramOptions{})
	if err != nil {
		return nil, unavailable(StepLoad, err)
	}
	return prog, nil
}

// Close detaches the program and releases the maps; from then on no
// socket is changed.
func (f *Forcer) Close() error {
	return errors.Join(f.link.Close(), f.prog.Close(), f.Selection.close())
}

// Tester is the decision loaded as a raw tracepoint program, never
// attached: Decide runs it with BPF_PROG_TEST_RUN in the calling task's
// context, on kernels that refuse the fmod_ret program too.
type Tester struct {
	*Selection
	prog *ebpf.Program
}

// NewTester loads the decision as a raw tracepoint program with empty
// maps.
func NewTester() (*Tester, error) {
	sel, err := newSelection()
	if err != nil {
		return nil, err
	}
	insns, err := sel.program()
	if err != nil {
		_ = sel.close()
		return nil, err
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "mptcp_force_t",
		Type:         ebpf.RawTracepoint,
		License:      "GPL",
		Instructions: insns,
	})
	if err != nil {
		_ = sel.close()
		return nil, fmt.Errorf("bpf: load the test program: %w", err)
	}
	return &Tester{Selection: sel, prog: prog}, nil
}

// Decide runs the decision once for socket(family, typ, protocol) in the
// calling thread's context (its uid and cgroup) and returns the protocol
// it chose.
func (t *Tester) Decide(family, typ, protocol int32) (int32, error) {
	ctx := []uint64{uint64(uint32(family)), uint64(uint32(typ)), uint64(uint32(protocol))}
	ret, err := t.prog.Run(&ebpf.RunOptions{Context: ctx})
	if err != nil {
		return 0, fmt.Errorf("bpf: test run: %w", err)
	}
	return int32(ret), nil
}

// Close releases the program and the maps.
func (t *Tester) Close() error {
	return errors.Join(t.prog.Close(), t.Selection.close())
}
