#!/bin/sh
# prereqs.sh: the programs the tests run that a fresh Debian machine may
# lack, by Debian package. make test runs it first.
#
#   sh internal/testing/prereqs.sh [--compat]
#
# With nothing missing it says nothing. Run as root with apt-get, it
# installs what is missing; otherwise it names the packages and the
# apt-get command, and fails. PREREQS=check only names them (and fails);
# PREREQS=off skips the check. --compat adds what make compat needs
# (qemu, kmod).
set -eu

case "${PREREQS:-install}" in
off) exit 0 ;;
install | check) ;;
*) echo "prereqs: PREREQS=${PREREQS}: want install, check or off" >&2; exit 2 ;;
esac

missing=""        # packages installed with their recommends
missing_norec=""  # packages installed without (promtool's prometheus)

add() {
	case " $missing $missing_norec " in
	*" $1 "*) ;;
	*) missing="$missing $1" ;;
	esac
}

# need COMMAND PACKAGE: PACKAGE provides COMMAND (in the PATH, or in an
# sbin directory a user's PATH may lack).
need() {
	command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ] || add "$2"
}

# Real-kernel tests: namespaces, links, qdiscs, sockets.
need ip iproute2
need ss iproute2
need tc iproute2
# Tests that change uid (the control socket's access, mptcpctl run).
need setpriv util-linux
# The exec plugin's examples (docs/examples).
need python3 python3
# The unit's checks and the sandbox tests, which boot a container.
need systemd-analyze systemd
need systemd-nspawn systemd-container
need dbus-daemon dbus-daemon
need curl curl
# mptcpctl run's tests and the demo want a statically linked busybox.
dpkg-query -W -f '${Status}\n' busybox-static 2>/dev/null | grep -q ' installed$' || add busybox-static
# The man pages' lint (internal/testing/mantest) formats them with both.
need groff groff-base
need mandoc mandoc
# The hostile-peer tests count a third host's segments with nftables.
need nft nftables
# mptcpd: the coexistence test runs it beside mptcpgod; the benchmarks too.
[ -x /usr/libexec/mptcpd ] || add mptcpd
# make build links through the C compiler; the package's test runs lintian.
need gcc gcc
need readelf binutils
need lintian lintian
# promtool checks the alert rules; its recommended node exporter is not
# needed.
command -v promtool >/dev/null 2>&1 || missing_norec="$missing_norec prometheus"

if [ "${1:-}" = "--compat" ]; then
	need qemu-system-x86_64 qemu-system-x86
	need depmod kmod
fi

[ -n "$missing$missing_norec" ] || exit 0

if [ "${PREREQS:-install}" = install ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "prereqs: installing${missing}${missing_norec}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	[ -z "$missing" ] || apt-get -o DPkg::Lock::Timeout=600 install -y -qq $missing
	[ -z "$missing_norec" ] || apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing_norec
	exit 0
fi

{
	echo "prereqs: the tests need these Debian packages:${missing}${missing_norec}"
	echo "install them as root with:"
	[ -z "$missing" ] || echo "    apt-get install$missing"
	[ -z "$missing_norec" ] || echo "    apt-get install --no-install-recommends$missing_norec"
	echo "(make test installs them itself when run as root; PREREQS=off skips this check)"
} >&2
exit 1
