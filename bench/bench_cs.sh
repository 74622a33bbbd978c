#!/usr/bin/env bash
# Compressed-sensing benchmark (issue 13): recon5t --pipeline cs against BART pics on the SAME
# k-space, maps settings and iterations. Prints tables; it is not a test (a missed target is a
# line that says "not met", not a failure).
#
#   full      real brain, espirit-matlab-examples/full.cfl [1,230,180,8] (already inverse
#             transformed along x: 2D ky-kz). Masks `recon5t mask --poisson --calib 24` at R=4
#             (seed 4) and R=8 (seed 8), applied with `bart fmac`; maps `bart ecalib -m1` of the
#             undersampled data. Reference: `bart pics -S` of the FULL k-space with those maps (the
#             fully sampled image combined with the same maps, not RSS). BART oracle: pics -l1 -r L
#             and pics -R T:7:0:L, 100 iterations, each at the best L of BENCH_LAMBDAS by NRMSE
#             (T:7 = TV over x, y, z; x has size 1 here, so it acts on ky-kz: T:3 would act on y
#             alone). recon5t: its defaults, and reg=l1+tv when that is not the default (found by
#             comparing the two images). Seconds: wall, calibration included (BART: ecalib +
#             pics). Also recon5t against a reference made with its own maps (SENSE of the full
#             k-space, 100 CG iterations, lambda 0), for information. Per R, bench/cs_floor.py:
#             the noise sigma, the NRMSE floor the reference's own noise sets, and how much of
#             each image's excess over it the target asks to remove.
#   workshop  bart-workshop-pics-brain/ksp.cfl (real VD-Poisson, R ~ 7.9) against its img.cfl,
#             the SENSE image of the fully sampled data with 2 map sets, combined by rss (as
#             recon5t combines --maps 2). BART pics -S -l1 -r L on ecalib -m2 maps (its 2 images
#             combined by rss) at 30 (BART's default) and 100 iterations, best L of the sweep;
#             recon5t defaults and --maps 2 (the setting of the README's 0.058). PNGs of recon5t's
#             images and of the reference go to BENCH_OUT (default: a new temp dir, kept).
#   timing    CPU side by side on `recon5t phantom` Shepp-Logan data, 8 coils, Poisson R=4, 24
#             calibration (2d256: 256^2, ky lines; 3d128: 128^3, ky-kz disc), noise
#             BENCH_PHANTOM_NOISE (default 0.002). The same ESPIRiT settings (1 map, kernel 6,
#             threshold 0.02, calibration 24) and 30 iterations: BART ecalib + pics -S -l1 -r
#             BENCH_BART_L1 (default 0.01) and pics -S -R T:7:0:BENCH_BART_TV (default 0.05) — the
#             best of 0.002..0.1 on 2d256 at 30 iterations when this was written; 2d256 prints that
#             sweep again — vs recon5t --pipeline cs --param reg=l1|tv --iters 30 (its own
#             weights). BART calibrates once per case, so both of its rows show that ecalib.
#             Peak RSS from /usr/bin/time %M (BART: the larger of ecalib and pics).
#             BENCH_TIMING_CASES="2d256" runs one of the two, BENCH_TIMING_REGS="tv" one regulariser
#             (default "l1 tv"; the 2d256 lambda sweep runs only with both).
#
# Wall-clock seconds; OMP_NUM_THREADS applies to both (default 1: on a shared 2-core machine wall
# time with 2 threads measures the other load more than the tools), OMP_WAIT_POLICY passive.
# User CPU seconds are printed in the timing table too. recon5t plans its FFTs with FFTW_MEASURE
# into a wisdom file (R5_FFT_WISDOM, default ~/.cache/recon5t/fftw-wisdom; none: FFTW_ESTIMATE):
# one untimed warm-up run (one iteration, the same shapes) per input, then the timed run.
# On a shared machine run it under `nice -n 19`.
#
# usage: bench/bench_cs.sh [BUILD_DIR] [cases...]   cases: full workshop timing (default all)
set -euo pipefail
build=${1:-${R5_BIN:-build}}
shift || true
cases=${*:-full workshop timing}
R5=$build/service/recon5t
PY=/usr/bin/python3
here=$(cd "$(dirname "$0")" && pwd)
data=$(cd "${R5_DATA:-$here/../../shared/data}" && pwd)
lambdas=${BENCH_LAMBDAS:-0.0005 0.001 0.002 0.005 0.01 0.02 0.05}
[ -x "$R5" ] || { echo "no recon5t at $R5 (usage: bench/bench_cs.sh BUILD_DIR [cases])" >&2; exit 2; }
command -v bart >/dev/null || { echo "bart not found on PATH" >&2; exit 2; }
for c in $cases; do
	case $c in full | workshop | timing) ;; *) echo "unknown case $c (full workshop timing)" >&2; exit 2 ;; esac
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "recon5t: $R5, $(bart version 2>/dev/null | sed 's/^/BART /')"
. "$here/lib.sh"

# timed NAME cmd...: runs cmd with its output in $work/NAME.log and "wall user peak-KB" in
# $work/NAME.time; a failure stops the benchmark with the log's tail
timed() {
	local name=$1
	shift
	if ! /usr/bin/time -f '%e %U %M' -o "$work/$name.time" "$@" >"$work/$name.log" 2>&1; then
		echo "failed: $*" >&2
		tail -5 "$work/$name.log" >&2
		exit 1
	fi
}
wall() { tail -1 "$work/$1.time" | cut -d' ' -f1; }
user() { tail -1 "$work/$1.time" | cut -d' ' -f2; }
rss_mb() { echo "$(tail -1 "$work/$1.time" | cut -d' ' -f3) / 1024" | bc -l; }
add() { echo "$1 + $2" | bc -l; }
less() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }
# quality REF IMG: sets nrmse psnr ssim (magnitudes, least-squares scaled)
quality() {
	local q
	q=$("$R5" compare "$1" "$2" --scale)
	nrmse=$(echo "$q" | field nrmse) psnr=$(echo "$q" | field psnr) ssim=$(echo "$q" | field ssim)
}
# r5 NAME IN.cfl args...: untimed warm-up (one iteration: FFT plans into the wisdom), then the
# timed run writing $work/NAME.cfl
r5() {
	local name=$1 input=$2
	shift 2
	if [ ${#wisdom_args[@]} -gt 0 ]; then
		timed warm "$R5" recon "$input" "$@" --iters 1 --out "$work/warm.cfl" "${wisdom_args[@]}"
	fi
	timed "$name" "$R5" recon "$input" "$@" --out "$work/$name.cfl" "${wisdom_args[@]}"
}
r5_timing() { grep timings "$work/$1.log" | field "$2"; }
same_image() { # same_image A B: the two images equal (the second run was the default's settings)
	[ "$("$R5" compare "$1" "$2" | field nrmse)" = 0.000000 ]
}

# bart_sweep NAME REG ITERS K MAPS REF [combine]: pics over $lambdas, best by NRMSE against REF;
# sets best_l best_n best_p best_s best_t (pics wall s) and appends the sweep to $work/sweeps
bart_sweep() {
	local name=$1 reg=$2 iters=$3 k=$4 maps=$5 ref=$6 combine=${7:-} l line=
	local -a reg_args
	best_n=
	for l in $lambdas; do
		case $reg in
		l1) reg_args=(-l1 -r "$l") ;;
		tv) reg_args=(-R "T:7:0:$l") ;;
		esac
		timed pics bart pics -S "${reg_args[@]}" -i "$iters" "$k" "$maps" "$work/$name-$l"
		if [ -n "$combine" ]; then
			bart rss 16 "$work/$name-$l" "$work/$name-$l-rss"
			mv "$work/$name-$l-rss.cfl" "$work/$name-$l.cfl"
			mv "$work/$name-$l-rss.hdr" "$work/$name-$l.hdr"
		fi
		quality "$ref" "$work/$name-$l.cfl"
		line="$line $l:$nrmse"
		if [ -z "$best_n" ] || less "$nrmse" "$best_n"; then
			best_l=$l best_n=$nrmse best_p=$psnr best_s=$ssim best_t=$(wall pics)
			cp "$work/$name-$l.cfl" "$work/$name.cfl"
			cp "$work/$name-$l.hdr" "$work/$name.hdr"
		fi
	done
	echo "  $name NRMSE by lambda:$line" >>"$work/sweeps"
}

qrow() { printf '%-3s | %-24s | %11s | %8s | %7s | %8s | %7.2f\n' "$@"; }
qhead() { printf '%-3s | %-24s | %11s | %8s | %7s | %8s | %7s\n' R tool "best lambda" NRMSE PSNR SSIM seconds; }

case_full() {
	local full=$data/espirit-matlab-examples/full R seed ecal t bn bs n_def s_def reg label
	echo
	echo "== full: $full.cfl; reference bart pics -S on the full k-space with the same maps;"
	echo "   BART oracle at the best lambda of {$lambdas}, 100 iterations; recon5t defaults =="
	: >"$work/sweeps"
	: >"$work/own"
	timed own "$R5" recon "$full.cfl" --pipeline sense --calib 24 --iters 100 --lambda 0 --out "$work/ref_own.cfl"
	qhead
	for R in 4 8; do
		seed=$R
		timed mask "$R5" mask --poisson --accel "$R" --calib 24 --seed "$seed" --dims 230,180 --out "$work/mask$R.cfl"
		bart fmac "$full" "$work/mask$R" "$work/u$R"
		timed ecalib bart ecalib -m1 "$work/u$R" "$work/maps$R"
		ecal=$(wall ecalib)
		bart pics -S "$full" "$work/maps$R" "$work/ref$R" >/dev/null 2>&1
		bn=1 bs=0
		for reg in l1 tv; do
			bart_sweep "bart-$reg-R$R" "$reg" 100 "$work/u$R" "$work/maps$R" "$work/ref$R.cfl"
			label="bart pics -l1"
			[ "$reg" = tv ] && label="bart pics -R T"
			qrow "$R" "$label" "$best_l" "$best_n" "$best_p" "$best_s" \
				"$(add "$ecal" "$best_t")"
			if less "$best_n" "$bn"; then bn=$best_n bs=$best_s; fi
			quality "$work/ref_own.cfl" "$work/bart-$reg-R$R.cfl"
			echo "  R=$R bart $reg (lambda $best_l): nrmse=$nrmse psnr=$psnr ssim=$ssim" >>"$work/own"
		done
		r5 "r5-def-R$R" "$work/u$R.cfl" --pipeline cs
		quality "$work/ref$R.cfl" "$work/r5-def-R$R.cfl"
		n_def=$nrmse s_def=$ssim
		qrow "$R" "recon5t defaults" - "$nrmse" "$psnr" "$ssim" "$(wall "r5-def-R$R")"
		quality "$work/ref_own.cfl" "$work/r5-def-R$R.cfl"
		echo "  R=$R recon5t defaults: nrmse=$nrmse psnr=$psnr ssim=$ssim" >>"$work/own"
		r5 "r5-l1tv-R$R" "$work/u$R.cfl" --pipeline cs --param reg=l1+tv
		if same_image "$work/r5-def-R$R.cfl" "$work/r5-l1tv-R$R.cfl"; then
			echo "    (reg=l1+tv gives the defaults' image: it is the default)"
		else
			quality "$work/ref$R.cfl" "$work/r5-l1tv-R$R.cfl"
			qrow "$R" "recon5t reg=l1+tv" - "$nrmse" "$psnr" "$ssim" "$(wall "r5-l1tv-R$R")"
			quality "$work/ref_own.cfl" "$work/r5-l1tv-R$R.cfl"
			echo "  R=$R recon5t reg=l1+tv: nrmse=$nrmse psnr=$psnr ssim=$ssim" >>"$work/own"
		fi
		t=$(echo "0.9 * $bn" | bc -l)
		printf '    target: recon5t NRMSE <= 0.9 x best BART (= %.4f), SSIM >= %s: %s\n' "$t" "$bs" \
			"$( (! less "$t" "$n_def") && (! less "$s_def" "$bs") && echo met || echo not met)"
		# what the reference's own noise leaves removable (bench/cs_floor.py): the floor, and the
		# share of each image's excess over it that the target asks to remove
		$PY "$here/cs_floor.py" "$full" "$work/maps$R" "$work/mask$R" "$work/ref$R" "$work/r5-def-R$R" \
			"$work/bart-l1-R$R" "$work/bart-tv-R$R" --target "$t" | sed 's/^/    /'
	done
	echo "BART sweeps (NRMSE against the same-maps reference):"
	cat "$work/sweeps"
	echo "For information, against recon5t's own-maps reference (SENSE of the full k-space, 100 CG"
	echo "iterations, lambda 0, calibration 24; $(wall own) s):"
	cat "$work/own"
}

case_workshop() {
	local dir=$data/bart-workshop-pics-brain out=${BENCH_OUT:-} ecal it
	if [ -z "$out" ]; then out=$(mktemp -d /tmp/bench_cs.XXXXXX); fi
	mkdir -p "$out"
	echo
	echo "== workshop: $dir/ksp.cfl vs img.cfl (its 2 map sets combined by rss); BART pics -S -l1 on"
	echo "   ecalib -m2 maps (images rss-combined), best lambda of {$lambdas}; recon5t defaults =="
	: >"$work/sweeps"
	bart rss 16 "$dir/img" "$work/wref"
	timed ecalib bart ecalib -m2 "$dir/ksp" "$work/wmaps"
	ecal=$(wall ecalib)
	qhead
	for it in 30 100; do
		bart_sweep "bart-l1-i$it" l1 "$it" "$dir/ksp" "$work/wmaps" "$work/wref.cfl" rss
		qrow 7.9 "bart pics -l1 -i $it" "$best_l" "$best_n" "$best_p" "$best_s" "$(add "$ecal" "$best_t")"
	done
	r5 w-def "$dir/ksp.cfl" --pipeline cs --png "$out/recon5t-defaults"
	quality "$work/wref.cfl" "$work/w-def.cfl"
	qrow 7.9 "recon5t defaults" - "$nrmse" "$psnr" "$ssim" "$(wall w-def)"
	printf '    target (issue): recon5t defaults NRMSE <= 0.055: %s\n' "$(less 0.055 "$nrmse" && echo not met || echo met)"
	r5 w-maps2 "$dir/ksp.cfl" --pipeline cs --maps 2 --png "$out/recon5t-maps2"
	quality "$work/wref.cfl" "$work/w-maps2.cfl"
	qrow 7.9 "recon5t --maps 2" - "$nrmse" "$psnr" "$ssim" "$(wall w-maps2)"
	r5 w-l1tv "$dir/ksp.cfl" --pipeline cs --param reg=l1+tv
	if same_image "$work/w-def.cfl" "$work/w-l1tv.cfl"; then
		echo "    (reg=l1+tv gives the defaults' image: it is the default)"
	else
		quality "$work/wref.cfl" "$work/w-l1tv.cfl"
		qrow 7.9 "recon5t reg=l1+tv" - "$nrmse" "$psnr" "$ssim" "$(wall w-l1tv)"
	fi
	echo "BART sweeps:"
	cat "$work/sweeps"
	# the reference's PNG through the same writer: its image as 1-coil k-space, reconstructed by
	# the cartesian pipeline (the rss of one coil is its magnitude)
	bart fft -u 7 "$work/wref" "$work/wref-k"
	timed refpng "$R5" recon "$work/wref-k.cfl" --pipeline cartesian --out "$work/wref-png.cfl" --png "$out/reference"
	echo "PNGs (recon5t defaults, --maps 2, reference): $out/{recon5t-defaults,recon5t-maps2,reference}/"
}

case_timing() {
	local c l1=${BENCH_BART_L1:-0.01} tv=${BENCH_BART_TV:-0.05} noise=${BENCH_PHANTOM_NOISE:-0.002}
	local -a pargs reg_args
	local reg l ecal sp nb nr bt bu bm rt rm keep
	echo
	echo "== timing: Shepp-Logan phantoms, 8 coils, Poisson R=4, calib 24, noise $noise; ESPIRiT 1 map,"
	echo "   kernel 6, threshold 0.02; 30 iterations; BART lambda l1 $l1, tv $tv; recon5t its own weights =="
	: >"$work/speed"
	printf '%-6s | %-3s | %-7s | %7s | %7s | %7s | %7s | %8s | %8s | %s\n' case reg tool "calib s" "solve s" \
		"total s" "user s" "peak MB" "NRMSE" "NRMSE tools"
	for c in ${BENCH_TIMING_CASES:-2d256 3d128}; do
		case $c in
		2d256) pargs=(--kind shepp-logan --matrix 256) ;;
		3d128) pargs=(--kind shepp-logan-3d --matrix 128,128,128) ;;
		*) echo "unknown timing case $c (2d256 3d128)" >&2; exit 2 ;;
		esac
		timed phantom "$R5" phantom "${pargs[@]}" --coils 8 --sampling poisson --accel 4 --calib 24 \
			--noise "$noise" --out "$work/$c.h5"
		"$PY" "$here/ismrmrd_to_cfl.py" "$work/$c.h5" "$work/$c"
		rm -f "$work/$c.h5"
		timed "$c-ecalib" bart ecalib -m1 -k 6 -t 0.02 -r 24 "$work/$c" "$work/$c-maps"
		ecal=$(wall "$c-ecalib")
		for reg in ${BENCH_TIMING_REGS:-l1 tv}; do
			case $reg in
			l1) l=$l1 reg_args=(-l1 -r "$l1") ;;
			tv) l=$tv reg_args=(-R "T:7:0:$tv") ;;
			*) echo "unknown timing regulariser $reg (l1 tv)" >&2; exit 2 ;;
			esac
			timed "$c-bart-$reg" bart pics -S "${reg_args[@]}" -i 30 "$work/$c" "$work/$c-maps" "$work/$c-bart-$reg"
			quality "$work/${c}_truth.cfl" "$work/$c-bart-$reg.cfl"
			nb=$nrmse
			bt=$(add "$ecal" "$(wall "$c-bart-$reg")")
			bu=$(add "$(user "$c-ecalib")" "$(user "$c-bart-$reg")")
			bm=$(rss_mb "$c-ecalib")
			less "$bm" "$(rss_mb "$c-bart-$reg")" && bm=$(rss_mb "$c-bart-$reg")
			printf '%-6s | %-3s | %-7s | %7.2f | %7.2f | %7.2f | %7.2f | %8.0f | %8s |\n' "$c" "$reg" bart "$ecal" \
				"$(wall "$c-bart-$reg")" "$bt" "$bu" "$bm" "$nb"
			r5 "$c-r5-$reg" "$work/$c.cfl" --pipeline cs --backend cpu --param reg="$reg" --iters 30 --maps 1 \
				--calib 24 --param kernel=6 --param espirit_threshold=0.02
			quality "$work/${c}_truth.cfl" "$work/$c-r5-$reg.cfl"
			nr=$nrmse
			quality "$work/$c-bart-$reg.cfl" "$work/$c-r5-$reg.cfl"
			rt=$(wall "$c-r5-$reg") rm=$(rss_mb "$c-r5-$reg")
			printf '%-6s | %-3s | %-7s | %7.2f | %7.2f | %7.2f | %7.2f | %8.0f | %8s | %s\n' "$c" "$reg" recon5t \
				"$(r5_timing "$c-r5-$reg" espirit)" "$(r5_timing "$c-r5-$reg" cs)" "$rt" "$(user "$c-r5-$reg")" \
				"$rm" "$nr" "$nrmse"
			sp=$(echo "$bt / $rt" | bc -l)
			printf '  %s %s: speed-up %.2fx wall, %.2fx user; NRMSE recon5t %s vs BART %s; target (>= 1.5x, NRMSE no worse): %s\n' \
				"$c" "$reg" "$sp" "$(echo "$bu / $(user "$c-r5-$reg")" | bc -l)" "$nr" "$nb" \
				"$( (! less "$sp" 1.5) && (! less "$nb" "$nr") && echo met || echo not met)" >>"$work/speed"
			if [ "$c$reg" = 3d128l1 ]; then
				printf '  memory, 3d128 l1: recon5t %.0f MB vs BART %.0f MB peak RSS: %s\n' "$rm" "$bm" \
					"$(less "$rm" "$bm" && echo met || echo not met)" >>"$work/speed"
			fi
		done
		if [ "$c" = 2d256 ] && [ "${BENCH_TIMING_REGS:-l1 tv}" = "l1 tv" ]; then # is the fixed BART lambda near its best? (information)
			: >"$work/sweeps"
			keep=$lambdas
			lambdas="0.002 0.005 0.01 0.02 0.05 0.1"
			for reg in l1 tv; do
				bart_sweep "2d256-bart-$reg" "$reg" 30 "$work/$c" "$work/$c-maps" "$work/${c}_truth.cfl"
			done
			lambdas=$keep
		fi
		rm -f "$work/$c".cfl "$work/$c"-*.cfl
	done
	cat "$work/speed"
	if [ -s "$work/sweeps" ]; then
		echo "BART NRMSE vs truth by lambda on 2d256, 30 iterations (is the fixed lambda near its best?):"
		cat "$work/sweeps"
	fi
}

for c in $cases; do
	"case_$c"
done
