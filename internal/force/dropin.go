package force

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
)

// DropInName is the file name of the drop-in that forces a service. It
// sorts after override.conf (systemctl edit), so it applies last.
const DropInName = "zz-mptcpgod-force.conf"

// UnitFile is one file of a unit: its unit file or a drop-in, in the
// order systemd applies them.
type UnitFile struct {
	Path string
	Data []byte
}

// ExecStarts returns the ExecStart= command lines in force after
// applying files in order, each as written (prefixes, quoting,
// specifiers), its continuation lines joined.
func ExecStarts(files []UnitFile) ([]string, error) {
	var lines []string
	for _, f := range files {
		entries, err := serviceEntries(f.Data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Path, err)
		}
		for _, e := range entries {
			if e.key != "ExecStart" {
				continue
			}
			if e.value == "" {
				lines = nil
				continue
			}
			lines = append(lines, e.value)
		}
	}
	return lines, nil
}

// entry is one assignment of the [Service] section.
type entry struct {
	key, value string
	line       int
}

// serviceEntries parses a unit file the way systemd does and returns the
// assignments of its [Service] section.
func serviceEntries(data []byte) ([]entry, error) {
	var out []entry
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var cont *entry // an assignment continued on the next line
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if cont != nil {
			// Comment lines inside a continuation are skipped.
			if strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") {
				continue
			}
			more, next := strings.CutSuffix(line, `\`)
			cont.value += " " + strings.TrimSpace(more)
			if !next {
				out = append(out, *cont)
				cont = nil
			}
			continue
		}
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
			continue
		case strings.HasPrefix(line, "["):
			if !strings.HasSuffix(line, "]") {
				return nil, fmt.Errorf("line %d: a section header without ]: %q", n, line)
			}
			section = line[1 : len(line)-1]
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: want KEY=VALUE, got %q", n, line)
		}
		if section != "Service" {
			continue
		}
		e := entry{key: strings.TrimSpace(k), line: n}
		v, next := strings.CutSuffix(strings.TrimSpace(v), `\`)
		e.value = strings.TrimSpace(v)
		if next {
			cont = &e
			continue
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if cont != nil {
		out = append(out, *cont)
	}
	return out, nil
}

// Wrap returns the command line line run through `mptcpctl run --`, with
// mptcpctl the program's path: its prefixes first, then mptcpctl run,
// then the rest as written.
func Wrap(line, mptcpctl string) (string, error) {
	i := 0
	for i < len(line) && strings.IndexByte("@-:+!|", line[i]) >= 0 {
		i++
	}
	prefix, cmd := line[:i], strings.TrimSpace(line[i:])
	switch {
	case strings.Contains(prefix, "@"):
		return "", fmt.Errorf("%q sets the program's argv[0] with @, which mptcpctl run cannot pass on: "+
			"drop the @ and the name after the program in a drop-in of your own, or force the unit with BPF", line)
	case strings.Contains(prefix, "|"):
		return "", fmt.Errorf("%q is a shell command line (|), which mptcpctl run cannot run: "+
			"write it as /bin/sh -c '...' in a drop-in of your own", line)
	case strings.Contains(prefix, "!") && strings.Contains(prefix, "+"):
		return "", fmt.Errorf("%q combines + and !, which systemd refuses", line)
	case cmd == "":
		return "", fmt.Errorf("%q has no command after its prefixes", line)
	}
	return prefix + quoteWord(mptcpctl, !strings.Contains(prefix, ":")) + " run -- " + cmd, nil
}

// quoteWord writes s as one word of a systemd command line: specifiers
// (%) doubled, variables ($) doubled unless expand is false (the :
// prefix turns expansion off), and quoted when it has a space, a quote or
// a backslash.
func quoteWord(s string, expand bool) string {
	s = strings.ReplaceAll(s, "%", "%%")
	if expand {
		s = strings.ReplaceAll(s, "$", "$$")
	}
	if !strings.ContainsAny(s, " \t\"'\\;") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}

// DropIn returns the drop-in that forces unit: a comment saying what it
// is, ExecStart= to reset the list, then every line of execStarts
// wrapped (Wrap).
func DropIn(unit string, execStarts []string, mptcpctl string) ([]byte, error) {
	if len(execStarts) == 0 {
		return nil, fmt.Errorf("%s has no ExecStart= to run through mptcpctl run", unit)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Written by \"mptcpctl force unit %s\": runs the service's own command\n", unit)
	fmt.Fprintf(&b, "# lines through \"mptcpctl run\", so that its TCP sockets are Multipath TCP.\n")
	fmt.Fprintf(&b, "# \"mptcpctl force unit --off %s\" removes this file.\n", unit)
	b.WriteString("[Service]\nExecStart=\n")
	for _, l := range execStarts {
		w, err := Wrap(l, mptcpctl)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", unit, err)
		}
		b.WriteString("ExecStart=" + w + "\n")
	}
	return b.Bytes(), nil
}
