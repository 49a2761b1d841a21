#!/bin/sh
# debchangelog.sh prints the Debian changelog of the package: one entry for
# the version being built, dated with the commit (reproducible), signed by the
# maintainer of dist/nfpm.yaml. `make deb` installs it, gzipped, as
# /usr/share/doc/mptcpgod/changelog.gz (the name for a native package).
#
#   debchangelog.sh VERSION            from git (commit hash and date)
#   debchangelog.sh VERSION HASH DATE  from the given values (used by tests);
#                                      DATE as date -R prints it
set -eu

if [ $# -eq 1 ]; then
	hash=$(git rev-parse --short HEAD 2>/dev/null || true)
	date=$(git log -1 --format=%cD 2>/dev/null || true)
	set -- "$1" "$hash" "$date"
fi
if [ $# -ne 3 ] || [ -z "$1" ]; then
	echo "usage: debchangelog.sh VERSION [HASH DATE]" >&2
	exit 2
fi
version=$1 hash=$2 date=$3
[ -n "$date" ] || date=$(LC_ALL=C date -R)
here=$(dirname "$0")
maintainer=$(sed -n 's/^maintainer: *//p' "$here/nfpm.yaml")
if [ -z "$maintainer" ]; then
	echo "debchangelog.sh: no maintainer: line in $here/nfpm.yaml" >&2
	exit 1
fi
from="the source tree"
[ -z "$hash" ] || from="commit $hash"

cat <<END
mptcpgod ($version) unstable; urgency=medium

  * Built from $from. The changes are in the project's history
    (git log) and its documentation, /usr/share/doc/mptcpgod.

 -- $maintainer  $date
END
