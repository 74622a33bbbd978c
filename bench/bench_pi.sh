#!/usr/bin/env bash
# Parallel imaging benchmark: recon5t (ESPIRiT + CG-SENSE, CPU) vs BART (ecalib + pics -l2) on
# the SAME k-space. Each phantom is written by `recon5t phantom`, converted to a BART .cfl
# k-space (bench/ismrmrd_to_cfl.py: oversampling removed, unsampled points zero), then
#   BART:    bart ecalib -m1 -t T K maps ; bart pics -S -l2 -r L -i N K maps img
#   recon5t: recon5t recon K.cfl --pipeline sense --lambda L --iters N (ESPIRiT + CG timings
#            from its stage report)
# and prints: case | tool | ecalib s | SENSE s | total s | NRMSE (vs ground truth; the last
# column of the recon5t row is the NRMSE between the two tools' images, --scale).
# Wall-clock seconds; OMP_NUM_THREADS applies to both (default 1: on a shared 2-core machine
# wall time with 2 threads measures the other load more than the tools), OMP_WAIT_POLICY
# passive (spinning threads bill CPU time for waiting). User CPU seconds are printed too.
# recon5t plans its FFTs with FFTW_MEASURE into a wisdom file (R5_FFT_WISDOM, default
# ~/.cache/recon5t/fftw-wisdom; R5_FFT_WISDOM=none: FFTW_ESTIMATE): one untimed warm-up run per
# case (one CG iteration: the same shapes) measures what the file lacks, then the timed run plans
# from it.
# usage: bench/bench_pi.sh [BUILD_DIR] [cases...]   cases: 2d256 3d128 (default both)
set -euo pipefail
build=${1:-${R5_BIN:-build}}
shift || true
cases=${*:-2d256 3d128}
R5=$build/service/recon5t
PY=/usr/bin/python3
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
lambda=0.001 iters=30 threshold=0.02
. "$here/lib.sh"

printf '%-10s | %-7s | %9s | %9s | %9s | %8s | %s\n' case tool "ecalib s" "SENSE s" "total s" "user s" "NRMSE"
for c in $cases; do
	case $c in
	2d256) pargs=(--kind shepp-logan --matrix 256 --coils 8 --sampling uniform --accel 2 --calib 24) ;;
	3d128) pargs=(--kind shepp-logan-3d --matrix 128,128,128 --coils 8 --sampling uniform --accel 2,2 --calib 24) ;;
	*) echo "unknown case $c" >&2; exit 2 ;;
	esac
	"$R5" phantom "${pargs[@]}" --noise 0 --out "$work/$c.h5" >/dev/null 2>&1
	"$PY" "$here/ismrmrd_to_cfl.py" "$work/$c.h5" "$work/$c"
	# BART
	/usr/bin/time -f "%e %U" bart ecalib -m1 -t "$threshold" "$work/$c" "$work/$c-maps" >/dev/null 2>"$work/t1"
	/usr/bin/time -f "%e %U" bart pics -S -l2 -r "$lambda" -i "$iters" "$work/$c" "$work/$c-maps" "$work/$c-bart" \
		>/dev/null 2>"$work/t2"
	e=$(tail -1 "$work/t1" | cut -d' ' -f1) s=$(tail -1 "$work/t2" | cut -d' ' -f1)
	u=$(awk '{s += $2} END {print s}' <(tail -1 "$work/t1") <(tail -1 "$work/t2"))
	nb=$("$R5" compare "$work/${c}_truth.cfl" "$work/$c-bart.cfl" --scale | field nrmse)
	printf '%-10s | %-7s | %9.2f | %9.2f | %9.2f | %8.2f | %s (vs truth)\n' "$c" bart "$e" "$s" \
		"$(echo "$e + $s" | bc -l)" "$u" "$nb"
	# recon5t (the warm-up measures the FFT plans the wisdom lacks; only the second run is timed)
	r5_args=("$work/$c.cfl" --pipeline sense --backend cpu --lambda "$lambda" --iters "$iters" \
		--param espirit_threshold="$threshold" --out "$work/$c-r5.cfl" "${wisdom_args[@]}")
	if [ ${#wisdom_args[@]} -gt 0 ]; then
		/usr/bin/time -f "%e" "$R5" recon "${r5_args[@]}" --iters 1 >"$work/r5.log" 2>&1
		echo "$c: warm-up run $(tail -1 "$work/r5.log") s, $(grep -c 'measured in' "$work/r5.log" || true) plans measured"
	fi
	/usr/bin/time -f "%e %U" "$R5" recon "${r5_args[@]}" >"$work/r5.log" 2>&1
	tl=$(grep timings "$work/r5.log")
	e=$(echo "$tl" | field espirit) s=$(echo "$tl" | field cg-sense)
	w=$(tail -1 "$work/r5.log" | cut -d' ' -f1) u=$(tail -1 "$work/r5.log" | cut -d' ' -f2)
	nr=$("$R5" compare "$work/${c}_truth.cfl" "$work/$c-r5.cfl" --scale | field nrmse)
	nx=$("$R5" compare "$work/$c-bart.cfl" "$work/$c-r5.cfl" --scale | field nrmse)
	printf '%-10s | %-7s | %9.2f | %9.2f | %9.2f | %8.2f | %s (vs truth), %s (vs BART)\n' "$c" recon5t "$e" "$s" \
		"$w" "$u" "$nr" "$nx"
done
