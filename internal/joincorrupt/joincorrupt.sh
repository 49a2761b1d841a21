#!/bin/sh
# joincorrupt.sh: reproduce the corruption of MPTCP data on subflow joins.
#
# Builds two network namespaces joined by two veth links (iproute2 only),
# runs main.go's server in one and its client in the other, and prints
# what the client found and the MPTcpExt counters of both ends. Needs
# root, iproute2 (ip, nstat) and Go. Everything it creates is removed on
# exit.
#
#   sudo ./joincorrupt.sh -at 0-10ms -duration 2m        # userspace PM joins
#   sudo PM=kernel ./joincorrupt.sh -duration 2m          # in-kernel PM endpoint
#   sudo CSUM=1 ./joincorrupt.sh -bytes 0-256KiB          # with DSS checksums
#
# Environment:
#   PM=userspace  the client's extra subflow is opened by main.go through
#                 MPTCP_PM_CMD_SUBFLOW_CREATE at the moment -at or -bytes says
#   PM=kernel     the client's in-kernel path manager has a "subflow"
#                 endpoint on the second link: it joins every connection as
#                 soon as it is established (-at and -bytes do not apply)
#   PM=none       no extra subflow (the control)
#   CSUM=1        net.mptcp.checksum_enabled=1 on both ends
#   GO            the go command (default: go)
#   NS_PREFIX     prefix of the two namespaces' names (default: jc<pid>)
#   NSTAT=all     print every non-zero counter of both ends, not only MPTCP's
#                 mapping, join and reset counters
# Other arguments go to the client (main.go client -h lists them).
set -eu

PM=${PM:-userspace}
CSUM=${CSUM:-0}
GO=${GO:-go}
case $PM in userspace | kernel | none) ;; *)
	echo "joincorrupt.sh: PM=$PM: want userspace, kernel or none" >&2
	exit 2
	;;
esac
case $CSUM in 0 | 1) ;; *)
	echo "joincorrupt.sh: CSUM=$CSUM: want 0 or 1" >&2
	exit 2
	;;
esac
if [ "$(id -u)" != 0 ]; then
	echo "joincorrupt.sh: needs root (network namespaces)" >&2
	exit 1
fi

here=$(cd "$(dirname "$0")" && pwd)
prefix=${NS_PREFIX:-jc$$}
case $prefix in *[!A-Za-z0-9_.-]* | "")
	echo "joincorrupt.sh: NS_PREFIX=$prefix: want letters, digits, '_', '.' or '-'" >&2
	exit 2
	;;
esac
cli=$prefix-cli
srv=$prefix-srv
tmp=$(mktemp -d)
server_pid=
cleanup() {
	[ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true
	ip netns del "$cli" 2>/dev/null || true
	ip netns del "$srv" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

(cd "$here" && "$GO" build -o "$tmp/joincorrupt" main.go)

ip netns add "$cli"
ip netns add "$srv"
for ns in "$cli" "$srv"; do
	ip -n "$ns" link set lo up
	ip netns exec "$ns" sysctl -qw net.mptcp.enabled=1
	ip netns exec "$ns" sysctl -qw net.mptcp.checksum_enabled="$CSUM"
done
# Link 0 carries the initial subflow, link 1 the join.
ip link add eth0 netns "$cli" type veth peer name eth0 netns "$srv"
ip link add eth1 netns "$cli" type veth peer name eth1 netns "$srv"
ip -n "$cli" addr add 192.0.2.1/24 dev eth0
ip -n "$srv" addr add 192.0.2.2/24 dev eth0
ip -n "$cli" addr add 198.51.100.1/24 dev eth1
ip -n "$srv" addr add 198.51.100.2/24 dev eth1
for ns in "$cli" "$srv"; do
	ip -n "$ns" link set eth0 up
	ip -n "$ns" link set eth1 up
done
ip -n "$srv" mptcp limits set subflows 8 add_addr_accepted 8

join=
case $PM in
userspace)
	# net.mptcp.pm_type=1 on kernels older than 6.15.
	ip netns exec "$cli" sysctl -qw net.mptcp.path_manager=userspace 2>/dev/null ||
		ip netns exec "$cli" sysctl -qw net.mptcp.pm_type=1
	join="-join-from 198.51.100.1 -join-to 198.51.100.2 -join-dev eth1"
	;;
kernel)
	ip -n "$cli" mptcp limits set subflows 8 add_addr_accepted 8
	ip -n "$cli" mptcp endpoint add 198.51.100.1 dev eth1 id 1 subflow
	;;
esac

ip netns exec "$srv" "$tmp/joincorrupt" server -listen 0.0.0.0:5201 >"$tmp/server.log" 2>&1 &
server_pid=$!
# Wait for the listener (go build is done, so this is quick).
i=0
until ip netns exec "$srv" ss -Hltn 'sport = :5201' | grep -q .; do
	i=$((i + 1))
	if [ $i -gt 300 ] || ! kill -0 "$server_pid" 2>/dev/null; then
		echo "joincorrupt.sh: the server did not start:" >&2
		cat "$tmp/server.log" >&2
		exit 1
	fi
	sleep 0.1
done

echo "kernel $(uname -r); PM=$PM CSUM=$CSUM; loadavg before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs"
# shellcheck disable=SC2086 # $join is a list of arguments
ip netns exec "$cli" "$tmp/joincorrupt" client -server 192.0.2.2:5201 $join "$@"
echo "loadavg after: $(cut -d' ' -f1-3 /proc/loadavg)"
pattern='^MPTcpExt(MPJoin(SynTx|SynRx|AckRx)|DSSNotMatching|MPRstTx|MPRstRx|MPFailTx|MPFailRx|DataCsumErr|InfiniteMapTx|InfiniteMapRx|DSSNoMatchTCP|MPFallback)'
[ "${NSTAT:-}" != all ] || pattern=.
for side in client:"$cli" server:"$srv"; do
	printf '%s MPTcpExt:' "${side%%:*}"
	ip netns exec "${side#*:}" nstat -asz |
		awk -v re="$pattern" '$1 ~ re && $1 !~ /^#/ && $2 != 0 { sub(/^MPTcpExt/, "", $1); printf " %s=%s", $1, $2 }'
	echo
done
