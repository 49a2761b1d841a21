package compat

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// PlanPath is where the guest's init reads its plan.
const PlanPath = "/compat/plan.json"

// Plan is what the guest's init does after mounting the usual file
// systems: load the modules in order, then run each test binary, writing
// everything to the results stream; or, with Boot, boot a system.
type Plan struct {
	// Kernel is the label of the kernel being tested.
	Kernel string `json:"kernel"`
	// Modules are the guest paths of the modules to load, in load order.
	Modules []string `json:"modules"`
	// Env is the environment of every run.
	Env []string `json:"env"`
	// Runs are the test binaries to run, one after the other.
	Runs []Run `json:"runs"`
	// Boot, when set, replaces the runs: the init loads the modules,
	// mounts nothing of its own, and executes a system's init instead.
	Boot *Boot `json:"boot,omitempty"`
}

// Boot is a system the guest boots: the init mounts the host directories
// shared with the guest (qemu's -virtfs) and executes Exec as PID 1.
type Boot struct {
	// Shares are the 9p shares to mount read-only, in order.
	Shares []Share `json:"shares"`
	// Exec is the program to execute, with its arguments.
	Exec []string `json:"exec"`
}

// Share is a directory of the host shared with the guest over virtio-9p.
type Share struct {
	// Tag is the share's mount tag; Target where the guest mounts it.
	Tag    string `json:"tag"`
	Target string `json:"target"`
}

// Run is one test binary run.
type Run struct {
	// Name is the package's import path.
	Name string `json:"name"`
	// Path is the test binary; Dir the working directory (the package's
	// directory, with its testdata).
	Path string `json:"path"`
	Dir  string `json:"dir"`
	// Args are the test binary's flags.
	Args []string `json:"args"`
	// Timeout bounds the run; the binary is killed past it.
	Timeout time.Duration `json:"timeout"`
	// Modules are the guest paths of more modules to load, in load
	// order, just before the run.
	Modules []string `json:"modules,omitempty"`
}

// recordPrefix starts every line of the results stream that is a record
// rather than a test binary's output.
const recordPrefix = "@compat "

// Record is one record of the results stream.
type Record struct {
	// Type is "kernel", "module", "begin", "end" or "done".
	Type string `json:"type"`
	// Release is the guest's uname -r (kernel).
	Release string `json:"release,omitempty"`
	// Sysctls are the names below /proc/sys/net/mptcp (kernel).
	Sysctls []string `json:"sysctls,omitempty"`
	// File is a module's guest path (module).
	File string `json:"file,omitempty"`
	// Name is a run's name (begin, end).
	Name string `json:"name,omitempty"`
	// Exit is the run's exit status, -1 when it was killed (end).
	Exit int `json:"exit"`
	// Elapsed is the run's wall time (end).
	Elapsed time.Duration `json:"elapsed,omitempty"`
	// Error says what failed (module, end).
	Error string `json:"error,omitempty"`
}

// RecordWriter writes the results stream: records, and between a begin
// and an end record, a test binary's raw output.
type RecordWriter struct {
	w io.Writer
	// midLine is set when the last output byte was not a newline.
	midLine bool
}

// NewRecordWriter returns a writer of the results stream on w.
func NewRecordWriter(w io.Writer) *RecordWriter { return &RecordWriter{w: w} }

// Record writes a record on a line of its own.
func (rw *RecordWriter) Record(r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if rw.midLine {
		buf.WriteByte('\n')
		rw.midLine = false
	}
	buf.WriteString(recordPrefix)
	buf.Write(b)
	buf.WriteByte('\n')
	_, err = rw.w.Write(buf.Bytes())
	return err
}

// Write writes a test binary's output.
func (rw *RecordWriter) Write(p []byte) (int, error) {
	if len(p) > 0 {
		rw.midLine = p[len(p)-1] != '\n'
	}
	return rw.w.Write(p)
}

// Segment is the output of one run, read back from the results stream.
type Segment struct {
	Name   string
	Output []byte
	// Ended is set when the end record was seen; Exit, Elapsed and Error
	// come from it.
	Ended   bool
	Exit    int
	Elapsed time.Duration
	Error   string
}

// Results is the results stream read back.
type Results struct {
	// Kernel is the kernel record, if the guest got that far.
	Kernel *Record
	// ModuleErrors are the module records, each a failed load.
	ModuleErrors []Record
	Segments     []*Segment
	// Done is set when the guest finished its plan.
	Done bool
	// Noise is output seen outside any run (it should be empty).
	Noise []byte
}

// ReadResults parses a results stream. A stream cut short (the guest
// crashed or timed out) is not an error: the last segment is then not
// Ended and Done is false.
func ReadResults(r io.Reader) (*Results, error) {
	res := &Results{}
	var cur *Segment
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			if rest, ok := bytes.CutPrefix(line, []byte(recordPrefix)); ok {
				var rec Record
				if jerr := json.Unmarshal(bytes.TrimRight(rest, "\r\n"), &rec); jerr != nil {
					return nil, fmt.Errorf("compat: results record %q: %w", bytes.TrimSpace(line), jerr)
				}
				cur = res.apply(rec, cur)
			} else if cur != nil {
				cur.Output = append(cur.Output, line...)
			} else {
				res.Noise = append(res.Noise, line...)
			}
		}
		if err == io.EOF {
			return res, nil
		}
		if err != nil {
			return nil, fmt.Errorf("compat: read results: %w", err)
		}
	}
}

// apply folds a record into the results and returns the open segment.
func (res *Results) apply(rec Record, cur *Segment) *Segment {
	switch rec.Type {
	case "kernel":
		res.Kernel = &rec
	case "module":
		res.ModuleErrors = append(res.ModuleErrors, rec)
	case "begin":
		cur = &Segment{Name: rec.Name}
		res.Segments = append(res.Segments, cur)
		return cur
	case "end":
		if cur != nil && cur.Name == rec.Name {
			cur.Ended, cur.Exit, cur.Elapsed, cur.Error = true, rec.Exit, rec.Elapsed, rec.Error
		}
		return nil
	case "done":
		res.Done = true
	}
	return cur
}
