package metrics

import (
	"bytes"
	"fmt"
	"strconv"
)

// Netstat is the content of /proc/net/netstat: counters by section
// ("TcpExt", "IpExt", "MPTcpExt") and name ("MPJoinSynRx").
type Netstat map[string]map[string]uint64

// maxNetstat bounds the input ParseNetstat accepts; the kernel's file is a
// few kilobytes.
const maxNetstat = 1 << 20

// ParseNetstat parses /proc/net/netstat (and /proc/net/snmp, which has
// the same form): pairs of lines, the first naming the section's counters,
// the second giving their values in the same order,
//
//	MPTcpExt: MPCapableSYNRX MPCapableSYNTX ...
//	MPTcpExt: 3 5 ...
//
// Counters are read by name, so a kernel that adds, removes or reorders
// them is read right. A section without values, a count of values that
// differs from the count of names, a value that is not an unsigned
// decimal, and a repeated section or name are errors naming the line.
func ParseNetstat(data []byte) (Netstat, error) {
	if len(data) > maxNetstat {
		return nil, fmt.Errorf("metrics: netstat: %d bytes, more than %d", len(data), maxNetstat)
	}
	out := Netstat{}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) == 1 && len(lines[0]) == 0 {
		return out, nil
	}
	for i := 0; i < len(lines); i += 2 {
		hsec, names, err := splitLine(lines[i], i+1)
		if err != nil {
			return nil, err
		}
		if i+1 >= len(lines) {
			return nil, fmt.Errorf("metrics: netstat: line %d: section %s has no line of values", i+1, hsec)
		}
		vsec, values, err := splitLine(lines[i+1], i+2)
		if err != nil {
			return nil, err
		}
		switch {
		case vsec != hsec:
			return nil, fmt.Errorf("metrics: netstat: line %d: section %s where the values of %s belong", i+2, vsec, hsec)
		case len(values) != len(names):
			return nil, fmt.Errorf("metrics: netstat: line %d: %s has %d names but %d values", i+2, hsec, len(names), len(values))
		case out[hsec] != nil:
			return nil, fmt.Errorf("metrics: netstat: line %d: section %s repeated", i+1, hsec)
		}
		sec := make(map[string]uint64, len(names))
		for j, n := range names {
			name := string(n)
			if _, dup := sec[name]; dup {
				return nil, fmt.Errorf("metrics: netstat: line %d: %s: counter %s repeated", i+1, hsec, name)
			}
			v, err := strconv.ParseUint(string(values[j]), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("metrics: netstat: line %d: %s %s: %q is not an unsigned decimal", i+2, hsec, name, values[j])
			}
			sec[name] = v
		}
		out[hsec] = sec
	}
	return out, nil
}

// splitLine splits "Section: a b c" into the section and its fields.
func splitLine(line []byte, n int) (string, [][]byte, error) {
	sec, rest, ok := bytes.Cut(line, []byte(":"))
	if !ok || len(sec) == 0 || bytes.ContainsAny(sec, " \t") {
		return "", nil, fmt.Errorf("metrics: netstat: line %d: no \"Section:\" at the start", n)
	}
	return string(sec), bytes.Fields(rest), nil
}
