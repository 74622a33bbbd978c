#!/bin/bash
# tests/fuzz/run.sh SECONDS [HARNESS...]: builds the libFuzzer harnesses (R5_FUZZ=ON, clang-14,
# build tree $R5_FUZZ_BUILD, default build-fuzz) if needed, makes seed corpora from `recon5t
# phantom` (make_seeds.py; needs a built recon5t: $RECON5T, else none and the fuzzer starts
# empty), then runs each harness for SECONDS (-max_total_time) with -rss_limit_mb and a per-input
# -timeout. Prints executions, exec/s and cov/ft per harness. A crash, leak, OOM or timeout
# leaves its input in $R5_FUZZ_OUT/<harness>/ (crash-*, leak-*, oom-*, timeout-*) and makes the
# exit status 1. Exit 77 when clang-14 or libFuzzer is absent.
# Environment: R5_FUZZ_BUILD, R5_FUZZ_OUT (default $R5_FUZZ_BUILD/fuzz-out), RECON5T, R5_FUZZ_JOBS
# (build parallelism, default 2), R5_FUZZ_RSS_MB (default 2048).
set -u
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
seconds=${1:?usage: run.sh SECONDS [HARNESS...]}
shift
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || harnesses=(scan_message kspace header cfl config tokens mrd pulseq)
build=${R5_FUZZ_BUILD:-$src/build-fuzz}
out=${R5_FUZZ_OUT:-$build/fuzz-out}
rss=${R5_FUZZ_RSS_MB:-2048}

if ! command -v clang-14 >/dev/null 2>&1; then
	echo "run.sh: SKIP: clang-14 is not installed"
	exit 77
fi
if ! echo 'int LLVMFuzzerTestOneInput(const char *d, long n) { return 0; }' |
	clang-14 -x c -fsanitize=fuzzer -o /dev/null - 2>/dev/null; then
	echo "run.sh: SKIP: clang-14 has no libFuzzer (libclang_rt.fuzzer)"
	exit 77
fi
launcher=()
command -v ccache >/dev/null 2>&1 && launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
if [ ! -f "$build/CMakeCache.txt" ]; then
	nice -n 19 cmake -S "$src" -B "$build" -DR5_FUZZ=ON -DR5_ENABLE_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 "${launcher[@]}" >"$build.configure.log" 2>&1 ||
		{ cat "$build.configure.log"; echo "run.sh: configure failed"; exit 1; }
fi
nice -n 19 cmake --build "$build" -j"${R5_FUZZ_JOBS:-2}" --target fuzz_all >"$build/fuzz-build.log" 2>&1 ||
	{ tail -40 "$build/fuzz-build.log"; echo "run.sh: build failed"; exit 1; }

seeds=$build/fuzz-seeds
recon5t=${RECON5T:-}
if [ -z "$recon5t" ]; then
	for b in "$src"/build*/service/recon5t; do [ -x "$b" ] && recon5t=$b && break; done
fi
if [ ! -d "$seeds" ] && [ -n "$recon5t" ] && [ -x "$recon5t" ]; then
	/usr/bin/python3 "$here/make_seeds.py" "$recon5t" "$seeds" || echo "run.sh: no seeds (make_seeds.py failed)"
fi

status=0
printf '%-14s %12s %10s %8s %8s %s\n' harness executions exec/s cov ft result
for h in "${harnesses[@]}"; do
	exe=$build/tests/fuzz/fuzz_$h
	corpus=$out/$h/corpus
	mkdir -p "$corpus" "$out/$h"
	inputs=("$corpus")
	[ -d "$seeds/$h" ] && inputs+=("$seeds/$h")
	[ -d "$here/regressions/$h" ] && inputs+=("$here/regressions/$h")
	dict=()
	[ -f "$seeds/$h.dict" ] && dict=(-dict="$seeds/$h.dict")
	log=$out/$h/fuzz.log
	# temporary files of the harnesses go to a folder of this run's own
	tmp=$(mktemp -d -p "$([ -d /dev/shm ] && [ -w /dev/shm ] && echo /dev/shm || echo "${TMPDIR:-/tmp}")")
	(cd "$out/$h" && TMPDIR=$tmp nice -n 19 "$exe" -max_total_time="$seconds" -rss_limit_mb="$rss" -timeout=25 \
		-malloc_limit_mb="$rss" -error_exitcode=1 -timeout_exitcode=1 -print_final_stats=1 -artifact_prefix="$out/$h/" "${dict[@]}" "${inputs[@]}" \
		>"$log" 2>&1)
	rc=$?
	rm -rf "$tmp"
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
	ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
	result=ok
	if [ $rc -ne 0 ]; then
		result="FAILED (rc $rc): $(ls "$out/$h" | grep -E '^(crash|leak|oom|timeout|slow-unit)-' | tr '\n' ' ')"
		grep -m3 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error' "$log"
		status=1
	fi
	printf '%-14s %12s %10s %8s %8s %s\n' "$h" "${execs:-?}" "${speed:-?}" "${cov:-?}" "${ft:-?}" "$result"
done
exit $status
