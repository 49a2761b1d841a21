package compat

import (
	"bufio"
	_ "embed"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
)

// Running names the kernel the machine runs: its tests run natively.
const Running = "running"

// Kernel is one line of the kernel list: a label and the Debian package
// that brings the kernel.
type Kernel struct {
	// Name labels the kernel ("6.1"); the release must start with it.
	Name string
	// Package is a linux-image package or a metapackage depending on one;
	// empty for Running.
	Package string
}

// KernelList is the repository's kernel list, kernels.txt.
//
//go:embed kernels.txt
var KernelList string

// kernelName is what a NAME of the list may be.
var kernelName = regexp.MustCompile(`^[0-9]+\.[0-9]+[A-Za-z0-9.+~-]*$`)

// debPackage is a Debian package name (Debian policy §5.6.1).
var debPackage = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)

// ParseKernels reads a kernel list: lines "NAME PACKAGE", blank lines and
// "#" comments. Names must be unique, and "running" is reserved.
func ParseKernels(r io.Reader) ([]Kernel, error) {
	var ks []Kernel
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
			continue
		case len(f) != 2:
			return nil, fmt.Errorf("compat: kernel list line %d: want NAME PACKAGE, got %q", n, strings.TrimSpace(line))
		case f[0] == Running:
			return nil, fmt.Errorf("compat: kernel list line %d: name %q is reserved for the machine's own kernel", n, f[0])
		case !kernelName.MatchString(f[0]):
			return nil, fmt.Errorf("compat: kernel list line %d: name %q: want a kernel version such as 6.1", n, f[0])
		case !debPackage.MatchString(f[1]):
			return nil, fmt.Errorf("compat: kernel list line %d: package %q: not a Debian package name", n, f[1])
		case slices.ContainsFunc(ks, func(k Kernel) bool { return k.Name == f[0] }):
			return nil, fmt.Errorf("compat: kernel list line %d: name %q listed twice", n, f[0])
		}
		ks = append(ks, Kernel{Name: f[0], Package: f[1]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("compat: read kernel list: %w", err)
	}
	return ks, nil
}

// SelectKernels returns the kernels that sel names, in sel's order: each
// word of sel is a NAME of list, "running", or a linux-image package
// name not in the list (it is then labelled by its own name). An empty sel
// selects the whole list, then the running kernel.
func SelectKernels(list []Kernel, sel string) ([]Kernel, error) {
	words := strings.FieldsFunc(sel, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	if len(words) == 0 {
		return append(slices.Clone(list), Kernel{Name: Running}), nil
	}
	var out []Kernel
	for _, w := range words {
		var k Kernel
		i := slices.IndexFunc(list, func(k Kernel) bool { return k.Name == w })
		switch {
		case w == Running:
			k = Kernel{Name: Running}
		case i >= 0:
			k = list[i]
		case strings.HasPrefix(w, "linux-image-") && debPackage.MatchString(w):
			k = Kernel{Name: w, Package: w}
		default:
			names := []string{}
			for _, k := range list {
				names = append(names, k.Name)
			}
			return nil, fmt.Errorf("compat: KERNELS: unknown kernel %q (want one of %s, %s, or a linux-image package name)",
				w, strings.Join(names, ", "), Running)
		}
		if slices.ContainsFunc(out, func(o Kernel) bool { return o.Name == k.Name }) {
			return nil, fmt.Errorf("compat: KERNELS: kernel %q named twice", w)
		}
		out = append(out, k)
	}
	return out, nil
}

// SelectListed returns the kernels that sel names from the repository's
// list, KernelList, as SelectKernels does.
func SelectListed(sel string) ([]Kernel, error) {
	list, err := ParseKernels(strings.NewReader(KernelList))
	if err != nil {
		return nil, err
	}
	return SelectKernels(list, sel)
}

// matchesRelease reports whether a kernel release ("6.1.0-57-amd64")
// belongs to the kernel labelled name ("6.1"): the release starts with
// the name, followed by the end or a non-digit.
func matchesRelease(name, release string) bool {
	rest, ok := strings.CutPrefix(release, name)
	return ok && (rest == "" || rest[0] < '0' || rest[0] > '9')
}
