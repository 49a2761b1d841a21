#!/bin/sh
# debdepends.sh prints the Debian dependency on the C library that the given
# binaries need, as dpkg-shlibdeps would: "libc6 (>= X.Y)", X.Y being the
# newest GLIBC_X.Y symbol version they use (readelf, binutils). It fails if a
# binary needs a shared library other than libc, or none at all, since the
# package would then lack a dependency.
#
#   debdepends.sh bin/mptcpgod bin/mptcpctl
set -eu

if [ $# -eq 0 ]; then
	echo "usage: debdepends.sh BINARY..." >&2
	exit 2
fi
for b in "$@"; do
	needed=$(readelf -dW "$b" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p')
	if [ "$needed" != libc.so.6 ]; then
		echo "debdepends.sh: $b needs [$(echo $needed)], want exactly libc.so.6 (make build links it)" >&2
		exit 1
	fi
done
version=$(readelf -VW "$@" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/^GLIBC_//' | sort -uV | tail -n 1)
if [ -z "$version" ]; then
	echo "debdepends.sh: no GLIBC_ symbol version in $*" >&2
	exit 1
fi
printf 'libc6 (>= %s)\n' "$version"
