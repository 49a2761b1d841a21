package compat

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// The unit guest boots systemd, from this machine's /usr shared over
// virtio-9p, with mptcpgod.service as dist/ ships it, the BPF drop-in
// dist/mptcpgod-bpf.conf, the sysusers.d entry and the shipped
// configuration with [force] units naming a test service and [force] uids
// the uid another runs as. A check unit forces a third service with
// mptcpctl force unit, and reports on the second serial port whether each
// service's plain TCP listener is MPTCP: the unit's as first started and
// after a restart, the uid's, the third's restarted once forced and again
// once let go, and the unforced one's, then the first's over BusyRestarts
// restarts with every guest CPU busy, then powers off.

// unitShareTag is the mount tag of this machine's /usr in the unit guest.
const unitShareTag = "usr"

// unitHostTools are the programs of this machine's /usr the unit guest
// runs.
var unitHostTools = []struct{ path, pkg string }{
	{"/usr/lib/systemd/systemd", "systemd"}, {"/usr/bin/dbus-daemon", "dbus-daemon"},
	{"/usr/bin/busybox", "busybox-static"}, {"/usr/bin/ss", "iproute2"},
}

// UnitModules are the modules the unit guest loads before systemd starts:
// the 9p client over virtio, and the sock_diag handlers of TCP and MPTCP
// for ss (the guest has no modprobe for this kernel).
var UnitModules = []string{"9p", "9pnet_virtio", "tcp_diag", "mptcp_diag"}

// Ports of the unit guest's test services: the one forced by [force]
// units, the one left alone, the one forced by [force] uids and the one
// forced at run time.
const (
	forcedPort  = 8081
	plainPort   = 8082
	uidPort     = 8083
	runtimePort = 8084
)

// forcedUID is the uid of the unit guest's service forced by [force]
// uids, a user of the guest's /etc/passwd beyond the system users'
// range, where sysusers.d allocates none.
const forcedUID = 1001

// BusyRestarts is how many times the unit guest's check restarts the
// service of [force] units with every CPU busy: each restart gives the
// service a new cgroup, which the daemon must select before the service
// opens its listener, though busy loops delay the daemon as much as
// systemd's start of the service.
const BusyRestarts = 10

// resultPrefix starts the unit guest's verdict lines on the results port.
const resultPrefix = "result "

// unitFiles are the unit guest's files besides the shipped ones.
var unitFiles = map[string]string{
	"/etc/systemd/system/mptcpgod.service.d/zz-test.conf": `# The binary built for the guest, in place of /usr/bin/mptcpgod.
[Service]
ExecStart=
ExecStart=` + guestDaemon + ` --config /etc/mptcpgod/mptcpgod.toml
`,
	// In a slice of its own, which the daemon must ask systemd for.
	"/etc/systemd/system/forced.service": fmt.Sprintf(`[Unit]
Description=plain TCP server forced to MPTCP by [force] units
After=mptcpgod.service

[Service]
Slice=test.slice
ExecStart=/usr/bin/busybox httpd -f -p 127.0.0.1:%d -h /tmp
`, forcedPort),
	"/etc/systemd/system/plain.service": fmt.Sprintf(`[Unit]
Description=plain TCP server left alone
After=mptcpgod.service

[Service]
ExecStart=/usr/bin/busybox httpd -f -p 127.0.0.1:%d -h /tmp
`, plainPort),
	"/etc/systemd/system/byuid.service": fmt.Sprintf(`[Unit]
Description=plain TCP server forced to MPTCP by [force] uids
After=mptcpgod.service

[Service]
User=%d
ExecStart=/usr/bin/busybox httpd -f -p 127.0.0.1:%d -h /tmp
`, forcedUID, uidPort),
	// Not in the configuration: the check forces it with mptcpctl.
	"/etc/systemd/system/runtime.service": fmt.Sprintf(`[Unit]
Description=plain TCP server forced to MPTCP with mptcpctl force unit
After=mptcpgod.service

[Service]
ExecStart=/usr/bin/busybox httpd -f -p 127.0.0.1:%d -h /tmp
`, runtimePort),
	"/etc/systemd/system/check.service": `[Unit]
Description=reports whether the forced services' listeners are MPTCP
Wants=basic.target dbus.socket mptcpgod.service forced.service plain.service byuid.service runtime.service
After=mptcpgod.service forced.service plain.service byuid.service runtime.service
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=oneshot
ExecStart=/bin/sh /compat/check.sh
StandardOutput=tty
StandardError=inherit
TTYPath=/dev/ttyS1
TTYReset=no
TTYVHangup=no
TimeoutStartSec=10min
`,
	"/compat/check.sh": fmt.Sprintf(`# Reports on the results port what kind each service's listener is: of
# the service of [force] units as started after mptcpgod.service, then
# restarted (a new cgroup, which the daemon follows); of the service of
# [force] uids; of the service forced with mptcpctl force unit, restarted
# after it, then after force unit --off and another restart; and of the
# service left alone. The first two restarts are one systemctl call. It
# also reads the TCP sockets mptcpctl force status counts for the service
# forced at run time: its listener, opened before, then none once it
# restarted.
# Then it restarts the first %[7]d times with two busy loops per CPU,
# and counts the restarts whose listener was MPTCP.
set -u
PATH=/usr/sbin:/usr/bin
listening() { ss -Hltn "sport = :$1" | grep -q . || ss -HMln "sport = :$1" | grep -q .; }
# await waits until something listens on each port given.
await() {
	for p; do
		i=0
		while ! listening "$p"; do
			i=$((i + 1))
			if [ $i -gt 300 ]; then echo "nothing listens on port $p after 300 tries"; break; fi
			sleep 0.2
		done
	done
}
# kinds lists the MPTCP listeners once (each ss is slow under emulation);
# kind PORT then says what PORT's listener was in that list: mptcp or tcp.
kinds() { mptcp=$(ss -HMln); }
kind() { case "$mptcp" in *":$1 "*) echo mptcp ;; *) echo tcp ;; esac; }
await %[1]d %[2]d %[3]d %[4]d
kinds
first=$(kind %[1]d)
uid=$(kind %[3]d)
echo "== mptcpctl force unit --mechanism bpf runtime.service"
%[5]s force unit --mechanism bpf runtime.service 2>&1
# early UNIT reads the count of TCP sockets opened before in the force
# status on stdin; 0 when there is none.
early() { n=$(sed -n "s/^$1 .*opened before, TCP until it restarts: \([0-9]*\).*/\1/p"); echo "${n:-0}"; }
early=$(%[5]s force status 2>&1 | early runtime.service)
systemctl restart forced.service runtime.service
await %[1]d %[4]d
kinds
restarted=$(kind %[1]d)
runtime=$(kind %[4]d)
status=$(%[5]s force status 2>&1)
early_restarted=$(echo "$status" | early runtime.service)
echo "== mptcpctl force unit --off runtime.service"
%[5]s force unit --off runtime.service 2>&1
systemctl restart runtime.service
await %[4]d
kinds
runtime_off=$(kind %[4]d)
plain=$(kind %[2]d)
hogs=
for i in $(seq $(($(nproc) * 2))); do
	(while :; do :; done) &
	hogs="$hogs $!"
done
n=0
busy=0
while [ $n -lt %[7]d ]; do
	n=$((n + 1))
	# Or systemd refuses the sixth start within 10 s (StartLimitBurst=).
	systemctl reset-failed forced.service
	systemctl restart forced.service
	await %[1]d
	kinds
	[ "$(kind %[1]d)" = mptcp ] && busy=$((busy + 1))
done
kill $hogs
echo "== systemctl status"
systemctl --no-pager --full status mptcpgod.service forced.service plain.service byuid.service runtime.service 2>&1 | sed 's/^/    /' 
echo "== mptcpctl force status (runtime.service forced)"
echo "$status"
echo "== ss -Mln (MPTCP)"
ss -Mln
echo "== ss -tln (TCP)"
ss -tln
echo "== journalctl -u mptcpgod"
journalctl --no-pager -o short-monotonic -u mptcpgod.service 2>&1
echo "== the daemon's warnings with their fields"
journalctl --no-pager -o verbose -p warning -u mptcpgod.service 2>&1 | grep -E '^ +(MESSAGE|MPTCPGOD_[A-Z_]+)='
echo "%[6]sdaemon=$(systemctl is-active mptcpgod.service) first=$first restarted=$restarted uid=$uid runtime=$runtime runtime-off=$runtime_off plain=$plain busy=$busy/$n early=$early early-restarted=$early_restarted"
`, forcedPort, plainPort, uidPort, runtimePort, guestCLI, resultPrefix, BusyRestarts),
}

// UnitGuestInitramfs builds the initramfs of the unit guest booting img:
// the guests' init with a plan that boots systemd, the modules, the
// built daemon and CLI, and an /etc holding the unit, its BPF drop-in,
// the sysusers.d entry and the configuration from the source tree at
// b.ModRoot. It returns the shares the VM must offer.
func UnitGuestInitramfs(img *Image, b *Build) (*Initramfs, []HostShare, error) {
	for _, t := range unitHostTools {
		if _, err := os.Stat(t.path); err != nil {
			return nil, nil, fmt.Errorf("compat: the unit guest runs %s from this machine's /usr: apt-get install %s", t.path, t.pkg)
		}
	}
	fsys := NewInitramfs()
	for _, d := range []string{"/proc", "/sys", "/dev", "/run", "/root", "/home", "/var", "/usr", "/mnt"} {
		if err := fsys.Dir(d, 0o755); err != nil {
			return nil, nil, err
		}
	}
	if err := fsys.Dir("/tmp", 0o777|os.ModeSticky); err != nil {
		return nil, nil, err
	}
	// The merged /usr of Debian: /usr itself comes from this machine.
	for _, d := range []string{"bin", "sbin", "lib", "lib64"} {
		if err := fsys.Symlink("/"+d, "usr/"+d); err != nil {
			return nil, nil, err
		}
	}
	if err := fsys.File("/init", b.Init); err != nil {
		return nil, nil, err
	}
	for _, f := range []struct{ guest, host string }{{guestDaemon, b.Daemon}, {guestCLI, b.CLI}} {
		if err := fsys.File(f.guest, f.host); err != nil {
			return nil, nil, err
		}
	}
	etc, err := unitEtc(b.ModRoot)
	if err != nil {
		return nil, nil, err
	}
	for p, data := range etc {
		if err := fsys.Bytes(p, []byte(data), 0o644); err != nil {
			return nil, nil, err
		}
	}
	if err := fsys.Symlink("/etc/os-release", "../usr/lib/os-release"); err != nil {
		return nil, nil, err
	}

	mods, err := ReadModules(img.ModDir)
	if err != nil {
		return nil, nil, err
	}
	order, err := mods.LoadOrder(UnitModules...)
	if err != nil {
		return nil, nil, fmt.Errorf("%w (kernel %s)", err, img.Release)
	}
	plan := &Plan{Kernel: img.Kernel.Name, Env: []string{"PATH=/usr/sbin:/usr/bin"}, Boot: &Boot{
		Shares: []Share{{Tag: unitShareTag, Target: "/usr"}},
		Exec:   []string{"/usr/lib/systemd/systemd"},
	}}
	for _, m := range order {
		p := path.Join("/compat/modules", filepath.ToSlash(m))
		if err := fsys.File(p, filepath.Join(img.ModDir, m)); err != nil {
			return nil, nil, err
		}
		plan.Modules = append(plan.Modules, p)
	}
	pb, err := json.MarshalIndent(plan, "", "  ")
	if err != nil {
		return nil, nil, err
	}
	if err := fsys.Bytes(PlanPath, pb, 0o644); err != nil {
		return nil, nil, err
	}
	return fsys, []HostShare{{Tag: unitShareTag, Path: "/usr"}}, nil
}

// UnitCmdline are the kernel arguments of the unit guest: systemd starts
// the check unit (and with it the daemon and the services) and nothing
// the machine would start by default beyond the base system.
var UnitCmdline = []string{"systemd.unit=check.service", "systemd.show_status=1"}

// unitEtc returns the unit guest's files by guest path, the shipped
// ones read from the source tree at modRoot.
func unitEtc(modRoot string) (map[string]string, error) {
	read := func(rel string) (string, error) {
		b, err := os.ReadFile(filepath.Join(modRoot, rel))
		return string(b), err
	}
	files := map[string]string{
		"/etc/machine-id": "0123456789abcdef0123456789abcdef\n",
		"/etc/hostname":   "unitguest\n",
		"/etc/passwd":     fmt.Sprintf("root:x:0:0:root:/root:/bin/sh\nbyuid:x:%[1]d:%[1]d::/:/usr/sbin/nologin\n", forcedUID),
		"/etc/group":      fmt.Sprintf("root:x:0:\nbyuid:x:%d:\n", forcedUID),
	}
	for guest, rel := range map[string]string{
		"/etc/systemd/system/mptcpgod.service":            "dist/mptcpgod.service",
		"/etc/systemd/system/mptcpgod.service.d/bpf.conf": "dist/mptcpgod-bpf.conf",
		"/etc/sysusers.d/mptcpgod.conf":                   "dist/sysusers.d/mptcpgod.conf",
	} {
		s, err := read(rel)
		if err != nil {
			return nil, fmt.Errorf("compat: %w", err)
		}
		files[guest] = s
	}
	conf, err := read("dist/mptcpgod.toml")
	if err != nil {
		return nil, fmt.Errorf("compat: %w", err)
	}
	if conf, err = forceConfig(conf, "forced.service", forcedUID); err != nil {
		return nil, err
	}
	files["/etc/mptcpgod/mptcpgod.toml"] = conf
	for p, s := range unitFiles {
		files[p] = s
	}
	return files, nil
}

// forceConfig sets [force] units and uids of a configuration file to the
// one unit and the one uid.
func forceConfig(conf, unit string, uid int) (string, error) {
	start := strings.Index(conf, "\n[force]\n")
	if start < 0 {
		return "", errors.New("compat: dist/mptcpgod.toml: no [force] section")
	}
	start++
	end := len(conf)
	if i := strings.Index(conf[start:], "\n["); i >= 0 {
		end = start + i + 1
	}
	sec := conf[start:end]
	for _, kv := range []struct{ key, value string }{{"units", fmt.Sprintf("[%q]", unit)}, {"uids", fmt.Sprintf("[%d]", uid)}} {
		empty := "\n" + kv.key + " = []\n"
		if !strings.Contains(sec, empty) {
			return "", fmt.Errorf("compat: dist/mptcpgod.toml: no %q in its [force] section", strings.TrimSpace(empty))
		}
		sec = strings.Replace(sec, empty, "\n"+kv.key+" = "+kv.value+"\n", 1)
	}
	return conf[:start] + sec + conf[end:], nil
}

// UnitVerdict is what the unit guest's check reported.
type UnitVerdict struct {
	// Daemon is systemctl is-active of mptcpgod.service.
	Daemon string
	// First and Restarted are the kind, "mptcp" or "tcp", of the listener
	// of the service of [force] units as started after mptcpgod.service
	// and after a restart; UID of the service of [force] uids; RunTime of
	// the service forced with mptcpctl force unit and restarted, and
	// RunTimeOff of it after force unit --off and another restart; Plain of
	// the service left alone.
	First, Restarted, UID, RunTime, RunTimeOff, Plain string
	// Early and EarlyRestarted are the TCP sockets mptcpctl force status
	// counts for the service forced at run time, as forced and once
	// restarted.
	Early, EarlyRestarted string
	// BusyMPTCP is how many of the BusyRuns restarts of the service of
	// [force] units with every CPU busy gave an MPTCP listener.
	BusyMPTCP, BusyRuns int
}

// OK reports whether the daemon ran and forced the forced services only,
// the one forced at run time only until it was let go, and the service of
// [force] units at every restart with the CPUs busy, and counted the
// early listener of the service forced at run time until it restarted.
func (v *UnitVerdict) OK() bool {
	return v.Daemon == "active" && v.First == "mptcp" && v.Restarted == "mptcp" && v.UID == "mptcp" &&
		v.RunTime == "mptcp" && v.RunTimeOff == "tcp" && v.Plain == "tcp" &&
		v.BusyRuns == BusyRestarts && v.BusyMPTCP == v.BusyRuns && v.Early == "1" && v.EarlyRestarted == "0"
}

// ReadUnitVerdict finds the verdict line in the unit guest's results
// port output; it is an error when there is none.
func ReadUnitVerdict(r io.Reader) (*UnitVerdict, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(bytes.TrimRight(sc.Bytes(), "\r"), []byte(resultPrefix))
		if !ok {
			continue
		}
		v := &UnitVerdict{}
		for f := range strings.FieldsSeq(string(rest)) {
			k, val, _ := strings.Cut(f, "=")
			switch k {
			case "daemon":
				v.Daemon = val
			case "first":
				v.First = val
			case "restarted":
				v.Restarted = val
			case "uid":
				v.UID = val
			case "runtime":
				v.RunTime = val
			case "runtime-off":
				v.RunTimeOff = val
			case "plain":
				v.Plain = val
			case "early":
				v.Early = val
			case "early-restarted":
				v.EarlyRestarted = val
			case "busy":
				hits, runs, _ := strings.Cut(val, "/")
				v.BusyMPTCP, _ = strconv.Atoi(hits)
				v.BusyRuns, _ = strconv.Atoi(runs)
			}
		}
		return v, nil
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("compat: read the unit guest's results: %w", err)
	}
	return nil, fmt.Errorf("compat: the unit guest reported no %q line", strings.TrimSpace(resultPrefix))
}
