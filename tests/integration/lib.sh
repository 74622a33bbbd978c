# Shared by the command-line integration scripts (sourced, not a test itself): the recon5t
# binary ($R5_RECON5T, else $R5_BIN/service/recon5t), a temporary folder removed on exit, PASS/FAIL counting, reading "key=value" numbers
# from `recon5t compare` lines, and the bad-input check (clear message, non-zero exit, no
# crash: exit codes >= 128 are signals). End a script with `r5_finish`.
set -uo pipefail
R5=${R5_RECON5T:-${R5_BIN:?set R5_BIN (the build folder) or R5_RECON5T}/service/recon5t}
PY=${PYTHON:-/usr/bin/python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
ok() { echo "PASS: $*"; passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }
# value of key=... in a compare line
field() { sed -n "s/.*$1=\([0-9.eE+-]*\).*/\1/p"; }
below() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 <= b + 0) }'; }
above() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }
expect_error() {
	local what=$1 pattern=$2
	shift 2
	"$@" >"$work/out.txt" 2>&1
	local rc=$?
	if [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -qiE "$pattern" "$work/out.txt"; then
		ok "$what: $(grep -iE "$pattern" "$work/out.txt" | head -1 | cut -c1-240)"
	else
		bad "$what (rc=$rc): $(head -c 300 "$work/out.txt")"
	fi
}
r5_finish() {
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}
