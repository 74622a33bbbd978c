#!/usr/bin/env bash
# Runs every test: builds (CUDA included when nvcc is present), runs the whole ctest suite,
# then builds again with AddressSanitizer + UndefinedBehaviorSanitizer (CPU only) and runs the
# unit tests and the service's end-to-end, bad-input, hardening, concurrency, stress, non-Cartesian
# and real-time tests under it, then with ThreadSanitizer for the server's threaded paths (real
# time's frame threads included), then the libFuzzer harnesses of tests/fuzz for ~20 s each.
# Tests that need what this machine lacks (a GPU, ../shared) report SKIP.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
jobs=${R5_JOBS:-$(nproc)}
status=0

echo "== build (release) =="
R5_BUILD_DIR=$top/build bash "$top/scripts/build.sh"
echo "== tests (release) =="
(cd "$top/build" && ctest --output-on-failure -j "$jobs" --timeout 900) || status=1

if [ "${R5_SKIP_SANITIZE:-0}" != 1 ]; then
	echo "== build (ASan + UBSan) =="
	R5_BUILD_DIR=$top/build-asan R5_BUILD_TYPE=Debug bash "$top/scripts/build.sh" -DR5_SANITIZE=ON
	echo "== tests (ASan + UBSan): unit tests (fuzz regressions replayed), the command line, the server's end-to-end, bad-input, hardening, concurrency, stress, non-Cartesian, real-time, security, metrics, PHI and fault tests =="
	# (the load test measures RSS, which ASan's quarantine keeps high by design: release run only)
	export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		LSAN_OPTIONS=suppressions=$top/tests/lsan.supp
	(cd "$top/build-asan" && ctest --output-on-failure -j "$jobs" --timeout 900 \
		-R '^unit\.|integration\.test_cli$|integration\.test_service_(e2e|bad_input|hardening|concurrency|stress|noncart|realtime|auth|metrics|phi|faults2|mrd|mrd_limits|nifti)$') || status=1
fi
if [ "${R5_SKIP_TSAN:-0}" != 1 ]; then
	echo "== build (ThreadSanitizer, CPU only) =="
	R5_BUILD_DIR=$top/build-tsan R5_BUILD_TYPE=Debug bash "$top/scripts/build.sh" -DR5_SANITIZE_THREAD=ON
	echo "== tests (ThreadSanitizer): the server under concurrent, hostile and vanishing clients =="
	# one OpenMP thread: libgomp is not instrumented; tests/tsan.supp names the other
	# uninstrumented libraries (gRPC, abseil) whose internal synchronisation TSan cannot see
	(cd "$top/build-tsan" && OMP_NUM_THREADS=1 ASAN_OPTIONS= UBSAN_OPTIONS= \
		TSAN_OPTIONS="halt_on_error=1 report_signal_unsafe=0 suppressions=$top/tests/tsan.supp" \
		ctest --output-on-failure -j "$jobs" --timeout 900 \
		-R '^unit\.test_fft_threads$|integration\.test_service_(e2e|bad_input|hardening|concurrency|stress|realtime)$') || status=1
fi
if [ "${R5_SKIP_FUZZ:-0}" != 1 ]; then
	# libFuzzer over the decoders of outside input (tests/fuzz): its own small clang-14 build
	# (the decoders' libraries only), seeds from the release build's recon5t phantom, each
	# harness ${R5_FUZZ_SECONDS:-20} s; run.sh exits 77 (skipped) without clang-14 or libFuzzer
	echo "== fuzz (libFuzzer, ${R5_FUZZ_SECONDS:-20} s per harness) =="
	fuzz_rc=0
	RECON5T=$top/build/service/recon5t R5_FUZZ_BUILD=$top/build-fuzz R5_FUZZ_JOBS=$jobs \
		bash "$top/tests/fuzz/run.sh" "${R5_FUZZ_SECONDS:-20}" || fuzz_rc=$?
	if [ $fuzz_rc -eq 77 ]; then
		echo "fuzz: skipped (clang-14 or libFuzzer absent)"
	elif [ $fuzz_rc -ne 0 ]; then
		echo "fuzz: FAILED: the inputs are under $top/build-fuzz/fuzz-out/<harness>/"
		status=1
	fi
fi
exit $status
