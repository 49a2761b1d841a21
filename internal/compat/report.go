package compat

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
)

// Event is one event of `go test -json` (cmd/test2json).
type Event struct {
	Time    time.Time `json:"Time"`
	Action  string    `json:"Action"`
	Package string    `json:"Package,omitempty"`
	Test    string    `json:"Test,omitempty"`
	Elapsed float64   `json:"Elapsed,omitempty"`
	Output  string    `json:"Output,omitempty"`
}

// TestResult is the outcome of one top-level test.
type TestResult struct {
	Name string `json:"name"`
	// Result is "pass", "fail" or "skip"; "" when the test never ended
	// (its binary died).
	Result string `json:"result"`
	// Degraded holds what the test said it asserted as the kernel's
	// documented degraded behaviour (netnstest.Degraded), if anything.
	Degraded []string `json:"degraded,omitempty"`
	// Figures are the outcomes it measured (netnstest.Figure).
	Figures []string      `json:"figures,omitempty"`
	Elapsed time.Duration `json:"elapsed"`
}

// PackageResult is the outcome of one package's test binary.
type PackageResult struct {
	Package string        `json:"package"`
	Exit    int           `json:"exit"`
	Ended   bool          `json:"ended"`
	Error   string        `json:"error,omitempty"`
	Elapsed time.Duration `json:"elapsed"`
	Tests   []TestResult  `json:"tests"`
}

// KernelResult is the outcome of one kernel of the matrix.
type KernelResult struct {
	Kernel  string `json:"kernel"`
	Package string `json:"package,omitempty"`
	Version string `json:"version,omitempty"`
	Release string `json:"release"`
	// Accel is "kvm", "tcg" or "native".
	Accel   string        `json:"accel"`
	Wall    time.Duration `json:"wall"`
	Sysctls []string      `json:"sysctls,omitempty"`
	// Done is set when every run of the plan finished.
	Done     bool            `json:"done"`
	Error    string          `json:"error,omitempty"`
	Packages []PackageResult `json:"packages"`
}

// Counts are a kernel's test counts: every top-level test run, those
// that passed, those among them that asserted degraded behaviour, and
// those that failed (or never ended) or skipped.
type Counts struct {
	Run, Passed, Degraded, Failed, Skipped int
}

// Counts counts the kernel's tests.
func (k *KernelResult) Counts() Counts {
	var c Counts
	for _, p := range k.Packages {
		for _, t := range p.Tests {
			c.Run++
			switch t.Result {
			case "pass":
				c.Passed++
				if len(t.Degraded) > 0 {
					c.Degraded++
				}
			case "skip":
				c.Skipped++
			default:
				c.Failed++
			}
		}
	}
	return c
}

// OK reports whether every run finished and no test failed or skipped:
// the real-kernel tests run with CI=true, so a skip means the kernel was
// not exercised.
func (k *KernelResult) OK() bool {
	if !k.Done || k.Error != "" {
		return false
	}
	for _, p := range k.Packages {
		if p.Exit != 0 || !p.Ended {
			return false
		}
	}
	c := k.Counts()
	return c.Failed == 0 && c.Skipped == 0 && c.Run > 0
}

// Convert turns a run's raw output (-test.v=test2json) into go test -json
// events with `go tool test2json`.
func Convert(ctx context.Context, goTool, pkg string, output []byte) ([]Event, error) {
	cmd := exec.CommandContext(ctx, goTool, "tool", "test2json", "-t", "-p", pkg)
	cmd.Stdin = bytes.NewReader(output)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("compat: go tool test2json: %w: %s", err, stderr.String())
	}
	return ParseEvents(bytes.NewReader(out))
}

// ParseEvents reads a go test -json stream.
func ParseEvents(r io.Reader) ([]Event, error) {
	var evs []Event
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return nil, fmt.Errorf("compat: test event %q: %w", sc.Text(), err)
		}
		evs = append(evs, ev)
	}
	return evs, sc.Err()
}

// Summarise folds a package's events into its top-level tests' results,
// in the order they started.
func Summarise(evs []Event) []TestResult {
	var out []TestResult
	index := map[string]int{}
	for _, ev := range evs {
		if ev.Test == "" {
			continue
		}
		top, _, _ := strings.Cut(ev.Test, "/")
		i, ok := index[top]
		if !ok {
			i = len(out)
			index[top] = i
			out = append(out, TestResult{Name: top})
		}
		t := &out[i]
		switch ev.Action {
		case "output":
			if _, msg, ok := strings.Cut(ev.Output, netnstest.DegradedPrefix); ok {
				msg = strings.TrimSpace(msg)
				if !slices.Contains(t.Degraded, msg) {
					t.Degraded = append(t.Degraded, msg)
				}
			}
			if _, msg, ok := strings.Cut(ev.Output, netnstest.FigurePrefix); ok {
				t.Figures = append(t.Figures, strings.TrimSpace(msg))
			}
		case "pass", "fail", "skip":
			if ev.Test == top {
				t.Result = ev.Action
				t.Elapsed = time.Duration(ev.Elapsed * float64(time.Second)).Round(time.Millisecond)
			}
		}
	}
	return out
}

// WriteSummary writes the table of the kernels' counts and wall times.
func WriteSummary(w io.Writer, ks []*KernelResult) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KERNEL\tRELEASE\tRUN ON\tTESTS\tPASSED\tDEGRADED\tFAILED\tSKIPPED\tWALL\tRESULT")
	for _, k := range ks {
		c := k.Counts()
		res := "ok"
		if !k.OK() {
			res = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%v\t%s\n", k.Kernel, k.Release, k.Accel,
			c.Run, c.Passed, c.Degraded, c.Failed, c.Skipped, k.Wall.Round(time.Second), res)
	}
	return tw.Flush()
}

// WriteMarkdown writes the report in Markdown: the summary table, then
// per kernel its packages, its failed tests and the degraded behaviour
// its tests asserted.
func WriteMarkdown(w io.Writer, ks []*KernelResult, conditions string) error {
	var b strings.Builder
	b.WriteString("# Compatibility matrix results\n\n")
	if conditions != "" {
		fmt.Fprintf(&b, "%s\n\n", conditions)
	}
	b.WriteString("| kernel | release | run on | tests | passed | asserted degraded | failed | skipped | wall time |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, k := range ks {
		c := k.Counts()
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | %d | %d | %d | %v |\n", k.Kernel, k.Release, k.Accel,
			c.Run, c.Passed, c.Degraded, c.Failed, c.Skipped, k.Wall.Round(time.Second))
	}
	for _, k := range ks {
		fmt.Fprintf(&b, "\n## %s (%s)\n\n", k.Kernel, k.Release)
		if k.Package != "" {
			fmt.Fprintf(&b, "Package %s %s.\n\n", k.Package, k.Version)
		}
		if k.Error != "" {
			fmt.Fprintf(&b, "**Error:** %s\n\n", k.Error)
		}
		if !k.Done {
			b.WriteString("**The plan did not finish.**\n\n")
		}
		b.WriteString("| package | tests | passed | asserted degraded | failed | skipped | time |\n|---|---|---|---|---|---|---|\n")
		for _, p := range k.Packages {
			pk := &KernelResult{Packages: []PackageResult{p}}
			c := pk.Counts()
			fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %v |\n", p.Package, c.Run, c.Passed, c.Degraded, c.Failed, c.Skipped,
				p.Elapsed.Round(time.Second))
		}
		for _, p := range k.Packages {
			if p.Error != "" || (p.Exit != 0 && p.Ended) {
				fmt.Fprintf(&b, "\n- %s: exit %d %s", p.Package, p.Exit, p.Error)
			}
			for _, t := range p.Tests {
				switch {
				case t.Result != "pass" && t.Result != "skip":
					fmt.Fprintf(&b, "\n- FAIL %s %s", p.Package, t.Name)
				case t.Result == "skip":
					fmt.Fprintf(&b, "\n- SKIP %s %s", p.Package, t.Name)
				}
			}
		}
		b.WriteString("\n\nAsserted degraded behaviour:\n")
		none := true
		for _, p := range k.Packages {
			for _, t := range p.Tests {
				for _, d := range t.Degraded {
					none = false
					fmt.Fprintf(&b, "\n- %s %s: %s", p.Package, t.Name, d)
				}
			}
		}
		if none {
			b.WriteString("\nnone")
		}
		b.WriteString("\n")
		heading := "\nFigures:\n"
		for _, p := range k.Packages {
			for _, t := range p.Tests {
				for _, f := range t.Figures {
					b.WriteString(heading)
					heading = ""
					fmt.Fprintf(&b, "\n- %s %s", p.Package, f)
				}
			}
		}
		if heading == "" {
			b.WriteString("\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
