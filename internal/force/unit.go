package force

import (
	"fmt"
	"strings"
)

// maxUnitName is systemd's limit on a unit name (UNIT_NAME_MAX).
const maxUnitName = 255

// CheckServiceName checks that name is a systemd service unit name that
// can be forced: NAME.service or an instance NAME@INSTANCE.service, of
// the characters systemd allows, not a template (NAME@.service).
func CheckServiceName(name string) error {
	base, ok := strings.CutSuffix(name, ".service")
	switch {
	case name == "":
		return fmt.Errorf("an empty unit name: want NAME.service")
	case !ok:
		return fmt.Errorf("%q is not a service: want NAME.service", name)
	case strings.HasSuffix(base, "@") && len(name) <= maxUnitName:
		return fmt.Errorf("%q is a template: force an instance such as %sNAME.service", name, base)
	}
	return checkUnit(name, base, ".service")
}

// cgroupUnitTypes are the unit types whose units have a cgroup of their
// own that their processes run in.
var cgroupUnitTypes = []string{".service", ".scope", ".slice"}

// CheckUnitName checks that name is the name of a systemd unit that has
// a cgroup its processes run in: a service (NAME.service, or an instance
// NAME@INSTANCE.service), a scope (NAME.scope) or a slice (NAME.slice),
// of the characters systemd allows, not a template.
func CheckUnitName(name string) error {
	if name == "" {
		return fmt.Errorf("an empty unit name: want NAME.service, NAME.scope or NAME.slice")
	}
	for _, typ := range cgroupUnitTypes {
		if base, ok := strings.CutSuffix(name, typ); ok {
			return checkUnit(name, base, typ)
		}
	}
	return fmt.Errorf("%q is not a service, scope or slice: want NAME.service, NAME.scope or NAME.slice", name)
}

// checkUnit checks the unit name, base before its type suffix typ.
func checkUnit(name, base, typ string) error {
	switch {
	case base == "":
		return fmt.Errorf("%q has no name before %s", name, typ)
	case len(name) > maxUnitName:
		return fmt.Errorf("%q is longer than %d characters", name, maxUnitName)
	case strings.HasSuffix(base, "@"):
		return fmt.Errorf("%q is a template: name an instance such as %sNAME%s", name, base, typ)
	case strings.HasPrefix(base, "@"):
		return fmt.Errorf("%q has no name before @", name)
	}
	for _, r := range base {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(":-_.\\@", r)) {
			return fmt.Errorf("%q contains %q, which systemd does not allow in a unit name", name, r)
		}
	}
	if strings.Count(base, "@") > 1 {
		return fmt.Errorf("%q contains more than one @", name)
	}
	if strings.Contains(base, "@") && typ != ".service" {
		return fmt.Errorf("%q: only services have instances (NAME@INSTANCE.service)", name)
	}
	return nil
}

// SlicePath returns the cgroup path, relative to the cgroup root, of the
// slice unit slice: "system.slice" for system.slice, "a.slice/a-b.slice"
// for a-b.slice, "" for the root slice -.slice.
func SlicePath(slice string) (string, error) {
	base, ok := strings.CutSuffix(slice, ".slice")
	if !ok || base == "" {
		return "", fmt.Errorf("%q is not a slice unit", slice)
	}
	if base == "-" {
		return "", nil
	}
	parts := strings.Split(base, "-")
	var path []string
	for i := range parts {
		if parts[i] == "" {
			return "", fmt.Errorf("%q is not a valid slice name", slice)
		}
		path = append(path, strings.Join(parts[:i+1], "-")+".slice")
	}
	return strings.Join(path, "/"), nil
}

// CgroupPath returns the cgroup path, relative to the cgroup root, of the
// unit in the slice: "system.slice/nginx.service".
func CgroupPath(slice, unit string) (string, error) {
	sp, err := SlicePath(slice)
	if err != nil {
		return "", err
	}
	if sp == "" {
		return unit, nil
	}
	return sp + "/" + unit, nil
}
