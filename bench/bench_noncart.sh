#!/usr/bin/env bash
# Non-Cartesian benchmark (issue 14): BART and recon5t side by side, same run, same machine, same
# data and trajectory, on
#   phantom  2D 256^2, 8 coils, 201 radial spokes of 512 samples (2x readout oversampling):
#            bart traj -x 512 -y 201 -r, scaled by 0.5 (BART's -x 512 spans [-256, 256): a 512^2
#            image; halved it is the 256^2 case of the issue), bart phantom -k -s 8 -t, the
#            coils bart phantom -S 8 -x 256 (the ones it simulated with), normalised (sum |S|^2 = 1:
#            the same SENSE model; raw, they reach 1e5 in the corners and pics -l1 diverges)
#   radial   ../shared gpunufft-radial-cardiac (25 spokes, 12 coils, 256^2)
#   spiral   ../shared kspace-precond-spiral (3 interleaves, 8 coils, 320^2)
# BART commands and the recon5t equivalents (bench_noncart, the driver: bench/bench_noncart.c):
#   adjoint   bart nufft -a -d N:N:1                     | A^H y per coil (+ rss)
#   inverse   bart nufft -i -d N:N:1 (its defaults)      | per-coil CG, 30 iterations, Toeplitz
#   pics-l2   bart pics -l2 -r 0.001 -i 30 -t (maps)      | nc CG-SENSE, 30 iterations, same maps
#   pics-l1   bart pics -l1 -r 0.01 -t (maps), 30 its     | the cs pipeline's frame solve
#             (r5_nc_cs_solve, nc_cs.h: L1 wavelets by r5_cs_solve, FISTA, 30 iterations, on
#             E = NUFFT . maps scaled by its largest singular value from a power iteration,
#             20 steps at most: FISTA's step assumes |E^H E| <= 1). Real data: the ecalib maps
#             of the row above for both, and BART with -s 0.05: without a step size BART warns
#             "No step size specified" and does not converge (a smooth blur on the radial set,
#             inf on the phantom); with -s 0.05 its image and recon5t's correlate 0.996 on the
#             radial set, the same lambda meaning the same there.
#   nlinv-cs  (recon5t only) NLINV maps + that CS solve, `recon5t recon --pipeline cs`'s
#             chain (lambda 0.01 here, the pipeline's default is auto), against bart nlinv
#   nlinv     bart nlinv -i 10 -t                          | r5_nlinv_nc, 10 Newton steps
#   ecalib+pics (real radial: the issue's edge-only case) bart nufft -a, fft, ecalib -m1 -r 24,
#             pics -l2 -t                                 | ESPIRiT on the gridded centre + CG-SENSE
# Columns: wall s, user s (both from /usr/bin/time for BART, its start-up and .cfl I/O included;
# recon5t's from the driver around the reconstruction call, I/O excluded — a few ms here),
# BART/recon5t wall ratio, and the magnitude correlation (Pearson on the common 256^2 / 320^2
# FOV: BART's nlinv -t image is on the recon matrix, its coils on the 2x grid, so no resizing)
# of the recon5t image with BART's image of the same row (nlinv row: with `bart nlinv`).
# Threads: OMP_NUM_THREADS (default 1, lib.sh) for both, OMP_WAIT_POLICY passive. The machine is
# shared (the load average is printed): compare within a run, never across runs.
# PNGs of every real-data result (magnitude, windowed to the 99.5th percentile) go to OUT_DIR.
# usage: bench/bench_noncart.sh [BUILD_DIR] [OUT_DIR] [cases...]  cases: phantom radial spiral
set -euo pipefail
build=${1:-${R5_BIN:-build}}
out=${2:-/work/exp/noncart}
shift 2 || shift $# || true
cases=${*:-phantom radial spiral}
here=$(cd "$(dirname "$0")" && pwd)
shared=${R5_SHARED:-$here/../../shared}
[ -d "$shared/data" ] || shared=/work/shared
DRV=$build/bench/bench_noncart
PY=/usr/bin/python3
CMP="$PY $here/nc_compare.py"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
. "$here/lib.sh"
[ "$wisdom" != none ] && export R5_FFT_WISDOM=$wisdom

printf '%-8s | %-12s | %8s %8s | %8s %8s | %6s | %s\n' case op "bart s" "user s" "r5 s" "user s" ratio \
	"corr(|r5|, |bart|)"
bart_time() { # output file, then the command: runs it, prints "wall user"
	local log=$work/time.log
	/usr/bin/time -f "%e %U" "${@:2}" >/dev/null 2>"$log" || { cat "$log" >&2; return 1; }
	tail -1 "$log" | sed "s/\x1b\[[0-9;]*m//g"
}
r5_time() { # method ksp traj out N: prints "wall user"
	local line
	line=$("$DRV" "$@" 2>"$work/r5.err") || { cat "$work/r5.err" >&2; return 1; }
	echo "$line" | sed -n 's/.*seconds=\([0-9.]*\) user=\([0-9.]*\).*/\1 \2/p'
}
row() { # case op "bart wall user" "r5 wall user" bart_img r5_img
	local b=($3) r=($4) c="-"
	[ -n "$5" ] && [ -n "$6" ] && c=$($CMP corr "$5" "$6" | sed 's/ cosine.*//')
	local ratio="-"
	[ "${b[0]:-}" != "" ] && [ "${r[0]:-}" != "" ] && ratio=$(echo "${b[0]} / ${r[0]}" | bc -l | xargs printf '%.2f')
	printf '%-8s | %-12s | %8s %8s | %8s %8s | %6s | %s\n' "$1" "$2" "${b[0]:--}" "${b[1]:--}" "${r[0]:--}" \
		"${r[1]:--}" "$ratio" "$c"
}

for c in $cases; do
	case $c in
	phantom)
		n=256
		bart traj -x 512 -y 201 -r "$work/t512"
		bart scale 0.5 "$work/t512" "$work/traj"
		bart phantom -k -s 8 -t "$work/traj" "$work/ksp"
		bart phantom -S 8 -x $n "$work/maps0"
		bart normalize 8 "$work/maps0" "$work/maps" # BART's coil model grows to 1e5 in the corners
		ksp=$work/ksp traj=$work/traj
		;;
	radial) n=256 ksp=$shared/data/gpunufft-radial-cardiac/ksp traj=$shared/data/gpunufft-radial-cardiac/traj ;;
	spiral) n=320 ksp=$shared/data/kspace-precond-spiral/ksp traj=$shared/data/kspace-precond-spiral/traj ;;
	*) echo "unknown case $c" >&2; exit 2 ;;
	esac
	if [ ! -f "$ksp.cfl" ]; then
		echo "$c: SKIP ($ksp.cfl absent)"
		continue
	fi
	w=$work/$c
	if [ "$c" = phantom ]; then
		# warm-up: FFTW plans of these shapes into the wisdom (untimed)
		"$DRV" inverse "$ksp" "$traj" "$w-warm" $n 1 >/dev/null 2>&1 || true
		row $c adjoint "$(bart_time x bart nufft -a -d $n:$n:1 "$traj" "$ksp" "$w-ba")" \
			"$(r5_time adjoint "$ksp" "$traj" "$w-ra" $n)" "$work/none" ""
		bart rss 8 "$w-ba" "$w-bar" >/dev/null
		echo "         adjoint rss images: $($CMP corr "$w-bar" "$w-ra")"
		row $c inverse "$(bart_time x bart nufft -i -d $n:$n:1 "$traj" "$ksp" "$w-bi")" \
			"$(r5_time inverse "$ksp" "$traj" "$w-ri" $n 30)" "" ""
		bart rss 8 "$w-bi" "$w-bir" >/dev/null
		echo "         inverse rss images: $($CMP corr "$w-bir" "$w-ri")"
		row $c pics-l2 "$(bart_time x bart pics -S -l2 -r 0.001 -i 30 -t "$traj" "$ksp" "$work/maps" "$w-bp")" \
			"$(R5_MAPS=$work/maps r5_time sense-maps "$ksp" "$traj" "$w-rp" $n 30)" "$w-bp" "$w-rp"
		row $c pics-l1 "$(bart_time x bart pics -S -l1 -r 0.01 -i 30 -t "$traj" "$ksp" "$work/maps" "$w-bl")" \
			"$(R5_MAPS=$work/maps r5_time cs-maps "$ksp" "$traj" "$w-rl" $n 30)" "$w-bl" "$w-rl"
	else
		# warm-up (untimed): every FFT shape of the timed rows into the wisdom — the gridding, ESPIRiT
		# and the Toeplitz grid of `sense` (one CG step), nlinv's (one Newton step). Without it the
		# first `sense` measured its plans inside the timing: 2 of its 4.2 user-s on the spiral.
		"$DRV" sense "$ksp" "$traj" "$w-warm" $n 1 >/dev/null 2>&1 || true
		R5_NLINV_STEPS=1 "$DRV" nlinv "$ksp" "$traj" "$w-warm" $n >/dev/null 2>&1 || true
		# the issue's ESPIRiT-from-gridded-data path
		bt=$(bart_time x bash -c "bart nufft -a -d $n:$n:1 '$traj' '$ksp' '$w-g' && bart fft -u 3 '$w-g' '$w-gk' &&
			bart ecalib -m1 -r 24 '$w-gk' '$w-em' && bart pics -S -l2 -r 0.001 -i 30 -t '$traj' '$ksp' '$w-em' '$w-be'")
		row $c ecalib+pics "$bt" "$(r5_time sense "$ksp" "$traj" "$w-re" $n 30)" "$w-be" "$w-re"
	fi
	if [ "$c" != phantom ]; then
		row $c pics-l1 "$(bart_time x bart pics -S -l1 -r 0.01 -i 30 -s 0.05 -t "$traj" "$ksp" "$w-em" "$w-bl")" \
			"$(R5_MAPS=$w-em r5_time cs-maps "$ksp" "$traj" "$w-rl" $n 30)" "$w-bl" "$w-rl"
	fi
	row $c nlinv "$(bart_time x bart nlinv -i 10 -t "$traj" "$ksp" "$w-bn")" \
		"$(r5_time nlinv "$ksp" "$traj" "$w-rn" $n 2>/dev/null)" "$w-bn" "$w-rn"
	if [ "$c" != phantom ]; then
		row $c nlinv-cs "" "$(r5_time nlinv-cs "$ksp" "$traj" "$w-rc" $n 30)" "$w-bn" "$w-rc"
	fi
	if [ "$c" != phantom ]; then
		echo "         recon5t ecalib+sense vs bart nlinv: $($CMP corr "$w-bn" "$w-re")," \
			"bart ecalib+pics vs bart nlinv: $($CMP corr "$w-bn" "$w-be")"
		for img in bn:bart_nlinv rn:r5_nlinv be:bart_ecalib_pics re:r5_espirit_sense rc:r5_nlinv_cs; do
			$CMP png "$w-${img%%:*}" "$out/${c}_${img##*:}.png"
		done
	fi
done
echo "PNGs in $out"
