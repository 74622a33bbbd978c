# Shared by the command-line integration scripts (sourced, not a test itself): the recon5t
# binary ($R5_RECON5T, else $R5_BIN/service/recon5t), a temporary folder removed on exit, PASS/FAIL counting, reading "key=value" numbers
# from `recon5t compare` lines, the bad-input check (clear message, non-zero exit, no crash: exit
# codes >= 128 are signals) and the memory estimate's check. End a script with `r5_finish`.
set -uo pipefail
R5=${R5_RECON5T:-${R5_BIN:?set R5_BIN (the build folder) or R5_RECON5T}/service/recon5t}
PY=${PYTHON:-/usr/bin/python3}
# the back end the scripts reconstruct on: cpu, or cpu-device (with R5_CPU_DEVICE=1: the device
# path on the CPU, recon/cpu/backend_cpu_device.h) in the .cpu-device runs (tests/CMakeLists.txt)
backend=${R5_TEST_BACKEND:-cpu}
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
# The memory estimate against the measured resident peak (`recon5t recon --memory-report`: the
# estimate and VmHWM minus VmRSS before the scan is read, see service/cli/cmd_recon.c).
# memory_table_start WIDTH starts the table $memory_table (a case column WIDTH wide); memory_case
# NAME SCAN OUT RECON-OPTIONS... reconstructs $work/SCAN into $work/OUT (log $work/NAME.log), adds
# its row and passes when measured <= estimate <= 2.5 x measured + 16 MiB (the server reserves the
# estimate from its budget before the job runs, so it must never be under).
memory_table_start() {
	memory_width=$1
	memory_table="$work/memory_table.txt"
	printf "%-${memory_width}s %12s %12s %7s\n" "case" "estimate_MiB" "measured_MiB" "ratio" >"$memory_table"
}
memory_case() {
	local name=$1 scan=$2 out=$3 line est meas
	shift 3
	if ! line=$("$R5" recon "$work/$scan" --out "$work/$out" --backend cpu --quiet --memory-report "$@" \
		2>"$work/$name.log" | grep '^memory:'); then
		bad "$name: recon or report failed: $(tail -2 "$work/$name.log")"
		return
	fi
	est=$(echo "$line" | field estimate_mib)
	meas=$(echo "$line" | field peak_rss_delta_mib)
	printf "%-${memory_width}s %12s %12s %7s\n" "$name" "$est" "$meas" \
		"$(awk -v e="$est" -v m="$meas" 'BEGIN { printf "%.2f", (m > 0 ? e / m : 0) }')" >>"$memory_table"
	if ! below "$meas" "$est"; then
		bad "$name: measured peak ${meas} MiB exceeds the estimate ${est} MiB"
	elif ! below "$est" "$(awk -v m="$meas" 'BEGIN { print 2.5 * m + 16 }')"; then
		bad "$name: estimate ${est} MiB is more than 2.5 x the measured ${meas} MiB + 16 MiB"
	else
		ok "$name: estimate ${est} MiB, measured ${meas} MiB"
	fi
}
r5_finish() {
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}
