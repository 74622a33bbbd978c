#!/usr/bin/env bash
# The one script for a GPU machine: runs the CPU-vs-GPU parity suite (r5_gpu_suite), the
# end-to-end case table (tests/cases/e2e.txt through tests/integration/test_cases.sh, GPU back
# end), the core benchmark (bench_core) and the NUFFT's issue cases (bench_nufft --gpu: 3D 256^3
# with 1e8 points, 2D 256^2 x 8 coils; predictions in gpu/NOTES.md), writing their tables to
# $OUT when set (else to ./gpu-results). The suite includes the NUFFT rows (suite_nufft.c).
#
# Mode 1, from source (a machine with the full toolchain: CUDA, FFTW, HDF5, ISMRMRD, gRPC, ...):
#     tests/gpu/run.sh
#   configures build-gpu/ (or $BUILD) with -DCMAKE_CUDA_ARCHITECTURES=${R5_CUDA_ARCH:-90}
#   (90 = H100/H200), builds r5_gpu_suite, recon5t, bench_core and bench_nufft, and runs them.
#
# Mode 2, from a bundle (a GPU host with only the driver and CUDA toolkit, e.g. the lent
# device machine). Make the bundle on the build machine, built for the host's GPU:
#     cmake -S . -B /tmp/build-gpu -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_BUILD_TYPE=Release
#     cmake --build /tmp/build-gpu --target r5_gpu_suite bench_core bench_nufft recon5t -j2
#     ../shared/tools/gpu-bundle .gpu /tmp/build-gpu/tests/r5_gpu_suite /tmp/build-gpu/bench/bench_core \
#         /tmp/build-gpu/bench/bench_nufft /tmp/build-gpu/service/recon5t
#   (recon5t is optional: without it the case table is reported SKIP)
#   then on the GPU host (.gpu is git-ignored: carry it):
#     tests/gpu/run.sh .gpu
#   which sources .gpu/env.sh (bundled libraries + the host's CUDA libraries) and runs the
#   bundled programs.
#
# Options (environment): R5_GPU_SEED=N repeats a suite run; R5_BENCH_QUICK=1 runs the small
# benchmark sizes; R5_BENCH_CPU=1 adds the CPU rows (the default is GPU rows only: the CPU rows
# are measured on the build machine); R5_NUFFT_POINTS=N sets bench_nufft's 3D point count
# (default 1e8; its quick size is 1e7).
# Exit status: the suite's (0 all passed, 1 a check failed, 77 no CUDA device), or 1 when the
# suite passed and a case of the table failed.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${OUT:-$PWD/gpu-results}
mkdir -p "$out"

if [ $# -ge 1 ]; then
	bundle=$(cd "$1" && pwd) || { echo "run.sh: no bundle directory $1" >&2; exit 2; }
	[ -f "$bundle/env.sh" ] || { echo "run.sh: $bundle/env.sh missing (make it with gpu-bundle)" >&2; exit 2; }
	# shellcheck disable=SC1091
	source "$bundle/env.sh"
	suite=$bundle/bin/r5_gpu_suite
	bench=$bundle/bin/bench_core
	bench_nufft=$bundle/bin/bench_nufft
	recon5t=$bundle/bin/recon5t
else
	build=${BUILD:-$repo/build-gpu}
	cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release \
		-DCMAKE_CUDA_ARCHITECTURES="${R5_CUDA_ARCH:-90}" >"$out/configure.log" 2>&1 ||
		{ tail -30 "$out/configure.log"; exit 2; }
	cmake --build "$build" --target r5_gpu_suite bench_core bench_nufft recon5t -j"$(nproc)" >"$out/build.log" 2>&1 ||
		{ tail -40 "$out/build.log"; exit 2; }
	suite=$build/tests/r5_gpu_suite
	bench=$build/bench/bench_core
	bench_nufft=$build/bench/bench_nufft
	recon5t=$build/service/recon5t
fi

{
	date -u +"%Y-%m-%dT%H:%M:%SZ"
	nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 || true
} >"$out/device.txt"
cat "$out/device.txt"

echo "== r5_gpu_suite"
"$suite" 2>"$out/gpu_suite.stderr" | tee "$out/gpu_suite.txt"
suite_rc=${PIPESTATUS[0]}
echo "suite exit status $suite_rc"

cases_rc=0
if [ "$suite_rc" -ne 77 ]; then
	echo "== end-to-end cases (tests/cases/e2e.txt), GPU back end"
	if [ -x "$recon5t" ]; then
		R5_RECON5T=$recon5t R5_SHARED=${R5_SHARED:-$repo/../shared} \
			bash "$repo/tests/integration/test_cases.sh" --backends gpu 2>&1 | tee "$out/cases.txt"
		cases_rc=${PIPESTATUS[0]}
	else
		echo "SKIP: no recon5t at $recon5t (bundle it to run the case table)" | tee "$out/cases.txt"
	fi
	echo "== bench_core"
	args=()
	[ "${R5_BENCH_CPU:-0}" = 1 ] || args+=(--gpu-only)
	[ "${R5_BENCH_QUICK:-0}" = 1 ] && args+=(--quick)
	"$bench" "${args[@]}" 2>"$out/bench_core.stderr" | tee "$out/bench_core.txt"
	echo "== bench_nufft --gpu"
	if [ -x "$bench_nufft" ]; then
		points=${R5_NUFFT_POINTS:-100000000}
		[ "${R5_BENCH_QUICK:-0}" = 1 ] && points=${R5_NUFFT_POINTS:-10000000}
		"$bench_nufft" --gpu --points "$points" 2>"$out/bench_nufft.stderr" | tee "$out/bench_nufft.txt"
	else
		echo "SKIP: no bench_nufft at $bench_nufft" | tee "$out/bench_nufft.txt"
	fi
fi
# the tables last, so that the end of the output carries them
echo "== summary"
grep -E "FAIL|passed, " "$out/gpu_suite.txt" | tail -20
grep -E "\| FAIL|^cases: |^SKIP" "$out/cases.txt" 2>/dev/null | tail -20
[ -f "$out/bench_core.txt" ] && cat "$out/bench_core.txt"
[ -f "$out/bench_nufft.txt" ] && cat "$out/bench_nufft.txt"
[ "$suite_rc" -eq 0 ] && [ "$cases_rc" -eq 1 ] && exit 1
exit "$suite_rc"
