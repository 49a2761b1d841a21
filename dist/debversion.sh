#!/bin/sh
# debversion.sh prints the Debian package version of the source tree.
#
#   debversion.sh                     from git (describe, commit date, hash)
#   debversion.sh DESCRIBE DATE HASH  from the given values (used by tests)
#
# A release tag vX.Y.Z gives X.Y.Z; commits after it give X.Y.Z+gitN.HASH; a
# pre-release tag vX.Y.Z-rc1 gives X.Y.Z~rc1, which dpkg sorts before X.Y.Z.
# Without a tag the version is 0.0.0~gitDATE.HASH, DATE being the commit date
# (UTC, YYYYMMDD), so every later release sorts after it.
set -eu

if [ $# -eq 0 ]; then
	desc=$(git describe --tags --match 'v[0-9]*' 2>/dev/null || true)
	date=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d 2>/dev/null || true)
	hash=$(git rev-parse --short HEAD 2>/dev/null || true)
	set -- "$desc" "$date" "$hash"
fi
if [ $# -ne 3 ]; then
	echo "usage: debversion.sh [DESCRIBE DATE HASH]" >&2
	exit 2
fi

desc=$1 date=$2 hash=$3
if [ -n "$desc" ]; then
	printf '%s\n' "$desc" | sed -E \
		-e 's/^v//' \
		-e 's/-([0-9]+)-g([0-9a-f]+)$/+git\1.\2/' \
		-e 's/-/~/g' \
		-e 's/[^A-Za-z0-9.+~]/./g'
	exit 0
fi
[ -n "$date" ] || date=$(date -u +%Y%m%d)
version="0.0.0~git$date"
[ -z "$hash" ] || version="$version.$hash"
printf '%s\n' "$version"
