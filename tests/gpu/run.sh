#!/usr/bin/env bash
# The one script for a GPU machine: runs the CPU-vs-GPU parity suite (r5_gpu_suite) and the core
# benchmark (bench_core), writing their tables to $OUT when set (else to ./gpu-results).
#
# Mode 1, from source (a machine with the full toolchain: CUDA, FFTW, HDF5, ISMRMRD, gRPC, ...):
#     tests/gpu/run.sh
#   configures build-gpu/ (or $BUILD) with -DCMAKE_CUDA_ARCHITECTURES=${R5_CUDA_ARCH:-90}
#   (90 = H100/H200), builds r5_gpu_suite and bench_core, and runs both.
#
# Mode 2, from a bundle (a GPU host with only the driver and CUDA toolkit, e.g. the lent
# device machine). Make the bundle on the build machine, built for the host's GPU:
#     cmake -S . -B /tmp/build-gpu -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_BUILD_TYPE=Release
#     cmake --build /tmp/build-gpu --target r5_gpu_suite bench_core -j2
#     ../shared/tools/gpu-bundle .gpu /tmp/build-gpu/tests/r5_gpu_suite /tmp/build-gpu/bench/bench_core
#   then on the GPU host (.gpu is git-ignored: carry it):
#     tests/gpu/run.sh .gpu
#   which sources .gpu/env.sh (bundled libraries + the host's CUDA libraries) and runs the
#   bundled programs.
#
# Options (environment): R5_GPU_SEED=N repeats a suite run; R5_BENCH_QUICK=1 runs the small
# benchmark sizes; R5_BENCH_CPU=1 adds the CPU rows (the default is GPU rows only: the CPU rows
# are measured on the build machine).
# Exit status: the suite's (0 all passed, 1 a check failed, 77 no CUDA device).
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
else
	build=${BUILD:-$repo/build-gpu}
	cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release \
		-DCMAKE_CUDA_ARCHITECTURES="${R5_CUDA_ARCH:-90}" >"$out/configure.log" 2>&1 ||
		{ tail -30 "$out/configure.log"; exit 2; }
	cmake --build "$build" --target r5_gpu_suite bench_core -j"$(nproc)" >"$out/build.log" 2>&1 ||
		{ tail -40 "$out/build.log"; exit 2; }
	suite=$build/tests/r5_gpu_suite
	bench=$build/bench/bench_core
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

if [ "$suite_rc" -ne 77 ]; then
	echo "== bench_core"
	args=()
	[ "${R5_BENCH_CPU:-0}" = 1 ] || args+=(--gpu-only)
	[ "${R5_BENCH_QUICK:-0}" = 1 ] && args+=(--quick)
	"$bench" "${args[@]}" 2>"$out/bench_core.stderr" | tee "$out/bench_core.txt"
fi
# the tables last, so that the end of the output carries them
echo "== summary"
grep -E "FAIL|passed, " "$out/gpu_suite.txt" | tail -20
[ -f "$out/bench_core.txt" ] && cat "$out/bench_core.txt"
exit "$suite_rc"
