#!/usr/bin/env bash
# Configures and builds recon5t into build/ (or $R5_BUILD_DIR). The CUDA back end is compiled
# when nvcc is found (/usr/local/cuda), as machine code for sm_75 to sm_120 plus PTX (the default
# in CMakeLists.txt) unless CMAKE_CUDA_ARCHITECTURES is given. Extra arguments go to cmake's configure step (e.g. -DR5_SANITIZE=ON).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${R5_BUILD_DIR:-$top/build}
jobs=${R5_JOBS:-$(nproc)}
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=${R5_BUILD_TYPE:-RelWithDebInfo} "$@" >"$build.configure.log" 2>&1 ||
	{ cat "$build.configure.log"; exit 1; }
grep -E "recon5t:" "$build.configure.log" || true
cmake --build "$build" -j "$jobs"
