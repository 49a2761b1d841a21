//go:build linux

package genl

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// sysctlDir holds the per-namespace MPTCP sysctls.
const sysctlDir = "/proc/sys/net/mptcp"

// readSysctl reads net.mptcp.<name> in the client's namespace.
func (c *client) readSysctl(name string) (string, error) {
	var b []byte
	err := c.ns.do(func() error {
		var err error
		b, err = os.ReadFile(filepath.Join(sysctlDir, name))
		return err
	})
	if err != nil {
		return "", sysctlError("read", name, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// writeSysctl writes net.mptcp.<name> in the client's namespace.
func (c *client) writeSysctl(name, value string) error {
	err := c.ns.do(func() error {
		// No O_CREATE: a sysctl the kernel lacks must fail with ENOENT.
		f, err := os.OpenFile(filepath.Join(sysctlDir, name), os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			return err
		}
		_, err = f.WriteString(value + "\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	})
	if err != nil {
		return sysctlError("write", name, err)
	}
	return nil
}

func sysctlError(verb, name string, err error) error {
	if errors.Is(err, os.ErrNotExist) {
		if _, serr := os.Stat(sysctlDir); errors.Is(serr, os.ErrNotExist) {
			return fmt.Errorf("%w: no net.mptcp sysctls (CONFIG_MPTCP disabled?): %w", ErrUnavailable, err)
		}
	}
	return fmt.Errorf("genl: %s net.mptcp.%s: %w", verb, name, err)
}

func (c *client) enabled() (bool, error) { return c.boolSysctl("enabled") }

func (c *client) checksums() (bool, error) { return c.boolSysctl("checksum_enabled") }

func (c *client) setChecksums(on bool) error {
	v := "0"
	if on {
		v = "1"
	}
	return c.writeSysctl("checksum_enabled", v)
}

// boolSysctl reads net.mptcp.<name>, which holds 0 or 1.
func (c *client) boolSysctl(name string) (bool, error) {
	v, err := c.readSysctl(name)
	if err != nil {
		return false, err
	}
	switch v {
	case "0":
		return false, nil
	case "1":
		return true, nil
	}
	return false, fmt.Errorf("genl: read net.mptcp.%s: unexpected value %q", name, v)
}

func (c *client) pathManager() (PathManager, error) {
	v, err := c.readSysctl("path_manager")
	if err == nil {
		return PathManager(v), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	// Kernels before 6.15 have only pm_type.
	v, err = c.readSysctl("pm_type")
	if err != nil {
		return "", err
	}
	switch v {
	case "0":
		return PathManagerKernel, nil
	case "1":
		return PathManagerUserspace, nil
	}
	return "", fmt.Errorf("genl: read net.mptcp.pm_type: unexpected value %q", v)
}

func (c *client) setPathManager(pm PathManager) error {
	var pmType string
	switch pm {
	case PathManagerKernel:
		pmType = "0"
	case PathManagerUserspace:
		pmType = "1"
	default:
		return fmt.Errorf("genl: set path manager: invalid path manager %q (want %q or %q)", pm, PathManagerKernel, PathManagerUserspace)
	}
	err := c.writeSysctl("path_manager", string(pm))
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return c.writeSysctl("pm_type", pmType)
}
