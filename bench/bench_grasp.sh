#!/usr/bin/env bash
# GRASP on the dynamic phantom (issue 14): per-frame NRMSE/SSIM against each frame's truth for
# plain gridding, non-Cartesian SENSE per frame and GRASP (bench_grasp, which prints the table and
# says whether GRASP's mean NRMSE is at least 30% below NC-SENSE's), and, when `bart` is on PATH,
# BART's equivalent on the same k-space, trajectory and maps as a cross-check:
#     bart pics -t traj -R T:1024:0:L -i BENCH_BART_ITERS ksp maps out
# (temporal TV over dim 10, the frames; ADMM, BART's default for TV), at each L of
# BENCH_BART_LAMBDAS, scored by `bench_grasp --score` the same way (magnitudes, least-squares
# scale per frame). It is not a test: a missed target is a line that says "not met".
#
#   BIN              build directory (default build-grasp beside this script's parent)
#   BENCH_ARGS       extra bench_grasp options (e.g. "--matrix 256", "--sweep")
#   BENCH_OUT        where the phantom file and the cfl files go (default: a new temp dir, kept)
#   BENCH_BART_LAMBDAS  (default "0.001 0.003 0.01 0.03"), BENCH_BART_ITERS (default 50)
#
# The phantom: `recon5t phantom --kind dynamic` (128^2, 2 mm, 8 coils, 24 frames x 21 spokes,
# readout x2, TR 4 ms, noise 0.01) is written once to show the file's summary; bench_grasp
# simulates the same scan in memory (the same function, the same seed). Wall and user seconds
# (/usr/bin/time); on a shared machine run it under `nice -n 19`. recon5t's FFTs are planned with
# FFTW_MEASURE into R5_FFT_WISDOM (default ~/.cache/recon5t/fftw-wisdom; "none": FFTW_ESTIMATE,
# 2.5x slower GRASP here), after one untimed warm-up run of the same shapes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:-$here/../build-grasp}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
out=${BENCH_OUT:-$(mktemp -d /tmp/bench_grasp.XXXXXX)}
mkdir -p "$out"
echo "threads: $OMP_NUM_THREADS, load average: $(cut -d' ' -f1-3 /proc/loadavg), output: $out"

wisdom=${R5_FFT_WISDOM:-${XDG_CACHE_HOME:-$HOME/.cache}/recon5t/fftw-wisdom}
if [ "$wisdom" != none ]; then
	mkdir -p "$(dirname "$wisdom")"
	export R5_FFT_WISDOM=$wisdom
	# shellcheck disable=SC2086
	"$BIN/bench/bench_grasp" ${BENCH_ARGS:-} --frames 2 --iters 1 --sense-iters 1 > /dev/null
fi
"$BIN/service/recon5t" phantom --kind dynamic --out "$out/dynamic.h5"
# shellcheck disable=SC2086
/usr/bin/time -f "bench_grasp: %e s wall, %U s user, %M KB" \
	"$BIN/bench/bench_grasp" ${BENCH_ARGS:-} --write-cfl "$out/dyn"

if ! command -v bart > /dev/null; then
	echo "bart not on PATH: no BART cross-check"
	exit 0
fi
iters=${BENCH_BART_ITERS:-50}
for L in ${BENCH_BART_LAMBDAS:-0.001 0.003 0.01 0.03}; do
	/usr/bin/time -f "bart pics -R T:1024:0:$L -i $iters: %e s wall, %U s user" \
		bart pics -t "$out/dyn_traj" -R T:1024:0:"$L" -i "$iters" "$out/dyn_ksp" "$out/dyn_maps" \
		"$out/bart_$L" > "$out/bart_$L.log" 2>&1 || { tail -3 "$out/bart_$L.log"; continue; }
	tail -1 "$out/bart_$L.log"
	# shellcheck disable=SC2086
	"$BIN/bench/bench_grasp" ${BENCH_ARGS:-} --score "$out/bart_$L"
done
