#!/usr/bin/env bash
# Prints, one per line, the Debian packages that own the shared libraries the given programs
# load (ldd), so the image's run stage installs exactly those. libcuda.so.1 is left out: the
# host's driver provides it at run time (NVIDIA Container Toolkit). A library no package owns,
# or one ldd cannot find, is an error: the image would not run.
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 PROGRAM..." >&2; exit 2; }
owner() { # the package owning a file, trying the merged-/usr spellings of its path
	local f=$1 p
	for p in "$f" "$(readlink -f "$f")" "${f#/usr}" "/usr$f"; do
		dpkg-query -S "$p" 2>/dev/null | head -n1 | cut -d: -f1 && return 0
	done
	return 1
}
missing=$(ldd "$@" | grep 'not found' | grep -v 'libcuda\.so' || true)
if [ -n "$missing" ]; then
	echo "runtime-packages: ldd cannot find:" >&2
	echo "$missing" >&2
	exit 1
fi
libs=$(ldd "$@" | awk '/=> \// {print $3} /^\t\// {print $1}' | grep -v 'libcuda\.so' | sort -u)
pkgs=""
for lib in $libs; do
	pkg=$(owner "$lib") || { echo "runtime-packages: no Debian package owns $lib" >&2; exit 1; }
	pkgs+="$pkg"$'\n'
done
printf '%s' "$pkgs" | sort -u
