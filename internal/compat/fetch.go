package compat

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// Image is a kernel package unpacked in the cache.
type Image struct {
	Kernel Kernel
	// Package and Version name the concrete linux-image package.
	Package, Version string
	// Release is the kernel's release, as uname -r prints it.
	Release string
	// Root is where the package is unpacked; Vmlinuz the kernel image and
	// ModDir its modules directory (with the modules.dep depmod wrote).
	Root, Vmlinuz, ModDir string
}

// unpackedStamp marks a completely unpacked image directory.
const unpackedStamp = ".unpacked"

// maxMetaDepth bounds how many metapackages resolve follows.
const maxMetaDepth = 4

// Fetch resolves k's package with the apt lists, downloads it into
// cacheDir with `apt-get download` unless it is already unpacked there,
// unpacks it with `dpkg-deb -x` and writes its modules.dep with depmod.
// Nothing is installed.
func Fetch(ctx context.Context, k Kernel, cacheDir string) (*Image, error) {
	pkg, ver, err := resolvePackage(ctx, k.Package)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(filepath.Join(cacheDir, pkg+"_"+sanitizeVersion(ver)))
	if err != nil {
		return nil, err
	}
	root := filepath.Join(dir, "root")
	if _, err := os.Stat(filepath.Join(dir, unpackedStamp)); err != nil {
		if err := unpack(ctx, pkg, ver, dir, root); err != nil {
			return nil, err
		}
	}
	img, err := openImage(root)
	if err != nil {
		return nil, fmt.Errorf("compat: %s %s: %w", pkg, ver, err)
	}
	img.Kernel, img.Package, img.Version = k, pkg, ver
	if !matchesRelease(k.Name, img.Release) {
		return nil, fmt.Errorf("compat: kernel %s: package %s brings release %s, which is not %s (fix kernels.txt)",
			k.Name, pkg, img.Release, k.Name)
	}
	return img, nil
}

// unpack downloads pkg=ver into dir, unpacks it into root and runs depmod.
func unpack(ctx context.Context, pkg, ver, dir, root string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	if _, err := run(ctx, dir, "apt-get", "download", "-q", pkg+"="+ver); err != nil {
		return fmt.Errorf("compat: download %s %s (apt-get update first?): %w", pkg, ver, err)
	}
	debs, err := filepath.Glob(filepath.Join(dir, pkg+"_*.deb"))
	if err != nil || len(debs) != 1 {
		return fmt.Errorf("compat: download %s %s: want one .deb in %s, found %d", pkg, ver, dir, len(debs))
	}
	if _, err := run(ctx, dir, "dpkg-deb", "-x", debs[0], root); err != nil {
		return fmt.Errorf("compat: unpack %s: %w", debs[0], err)
	}
	if err := os.Remove(debs[0]); err != nil {
		return err
	}
	img, err := openImage(root)
	if err != nil {
		return fmt.Errorf("compat: %s %s: %w", pkg, ver, err)
	}
	// Debian's packages ship no modules.dep: the postinst runs depmod.
	if _, err := run(ctx, dir, "depmod", "-b", root, img.Release); err != nil {
		return fmt.Errorf("compat: depmod for %s: %w", img.Release, err)
	}
	return os.WriteFile(filepath.Join(dir, unpackedStamp), []byte(pkg+" "+ver+"\n"), 0o644)
}

// openImage finds the kernel image and the modules of an unpacked
// linux-image package.
func openImage(root string) (*Image, error) {
	var mods []string
	for _, d := range []string{"lib/modules", "usr/lib/modules"} {
		entries, err := os.ReadDir(filepath.Join(root, d))
		if err != nil {
			continue
		}
		for _, e := range entries {
			if e.IsDir() {
				mods = append(mods, filepath.Join(root, d, e.Name()))
			}
		}
	}
	if len(mods) != 1 {
		return nil, fmt.Errorf("want one modules directory in the package, found %d", len(mods))
	}
	release := filepath.Base(mods[0])
	vmlinuz := filepath.Join(root, "boot", "vmlinuz-"+release)
	if _, err := os.Stat(vmlinuz); err != nil {
		return nil, fmt.Errorf("no kernel image for %s: %w", release, err)
	}
	return &Image{Release: release, Root: root, Vmlinuz: vmlinuz, ModDir: mods[0]}, nil
}

// resolvePackage follows metapackages to the linux-image package that
// holds a kernel, and returns its name and the candidate version.
func resolvePackage(ctx context.Context, pkg string) (name, version string, err error) {
	for range maxMetaDepth {
		out, err := run(ctx, "", "apt-cache", "show", "--no-all-versions", pkg)
		if err != nil {
			return "", "", fmt.Errorf("compat: package %s unknown to apt (run apt-get update?): %w", pkg, err)
		}
		st, err := parseStanza(out)
		if err != nil {
			return "", "", fmt.Errorf("compat: apt-cache show %s: %w", pkg, err)
		}
		dep := kernelDepends(pkg, st["Depends"])
		if dep == "" {
			return pkg, st["Version"], nil
		}
		pkg = dep
	}
	return "", "", fmt.Errorf("compat: package %s: more than %d metapackages deep", pkg, maxMetaDepth)
}

// parseStanza parses the first stanza of apt-cache show output.
func parseStanza(s string) (map[string]string, error) {
	st := map[string]string{}
	var last string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if len(st) > 0 {
				return checkStanza(st)
			}
		case line[0] == ' ' || line[0] == '\t':
			if last != "" {
				st[last] += "\n" + strings.TrimSpace(line)
			}
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				return nil, fmt.Errorf("line %q: want Field: value", line)
			}
			last = k
			st[k] = strings.TrimSpace(v)
		}
	}
	return checkStanza(st)
}

func checkStanza(st map[string]string) (map[string]string, error) {
	if st["Package"] == "" || st["Version"] == "" {
		return nil, errors.New("no Package or Version field")
	}
	return st, nil
}

// linuxImageDep matches a dependency on a kernel image package.
var linuxImageDep = regexp.MustCompile(`^linux-image-[0-9][^\s(]*$`)

// kernelDepends returns the linux-image package a metapackage depends on,
// or "" when depends names none (pkg itself holds the kernel).
func kernelDepends(pkg, depends string) string {
	for alt := range strings.SplitSeq(depends, ",") {
		for d := range strings.SplitSeq(alt, "|") {
			name, _, _ := strings.Cut(strings.TrimSpace(d), " ")
			name, _, _ = strings.Cut(name, ":")
			if name != pkg && linuxImageDep.MatchString(name) && !strings.HasSuffix(name, "-dbg") {
				return name
			}
		}
	}
	return ""
}

// sanitizeVersion makes a Debian version usable in a file name.
func sanitizeVersion(v string) string {
	return strings.NewReplacer(":", "%3a", "/", "_").Replace(v)
}

// run runs a command in dir and returns its output; the error includes
// the command and its combined output.
func run(ctx context.Context, dir, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err,
			strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}
