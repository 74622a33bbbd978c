#!/usr/bin/env bash
# Non-Cartesian `cs` (recon/pipeline/nc_cs_pipeline.c: NLINV maps from all spokes, then L1
# wavelets through E = NUFFT . maps scaled to |E| = 1) end to end: a golden-angle radial phantom
# (recon5t phantom --kind dynamic, 96^2, 8 coils, one frame of 24 spokes: R ~ 6 against radial
# Nyquist, noise 0.01) -> recon5t recon --pipeline cs and --pipeline sense on the same scan; cs's
# NRMSE against the phantom's truth below a bound measured here (2026-12: sense 0.112, cs l1 0.081,
# tv 0.076 -> bound 0.10) and at most 0.85 x sense's, for reg l1 and tv; frames (frame_spokes 12
# -> 2 frames); bad input (a key cs does not read, frames larger than the scan, an unknown
# regulariser); the memory estimate against the measured peak.
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
quality() { grep '^quality vs ground truth' "$1" | field nrmse; }

scan=$work/radial24.h5
if ! "$R5" phantom --kind dynamic --matrix 96 --coils 8 --frames 1 --frame-spokes 24 --per-frame-motion 1 \
	--out "$scan" >"$work/phantom.log" 2>&1; then
	bad "phantom failed: $(tail -2 "$work/phantom.log")"
	r5_finish
	exit
fi
"$R5" recon "$scan" --backend "$backend" --pipeline sense --out "$work/sense.h5" >"$work/sense.log" 2>&1 ||
	bad "sense failed: $(tail -2 "$work/sense.log")"
for reg in l1 tv; do
	if "$R5" recon "$scan" --backend "$backend" --pipeline cs --reg $reg --out "$work/cs_$reg.h5" >"$work/cs_$reg.log" 2>&1; then
		echo "cs $reg: $(grep '^quality vs ground truth' "$work/cs_$reg.log") $(grep '^timings' "$work/cs_$reg.log")"
	else
		bad "cs $reg failed: $(tail -2 "$work/cs_$reg.log")"
	fi
done
s=$(quality "$work/sense.log") c=$(quality "$work/cs_l1.log") t=$(quality "$work/cs_tv.log")
for pair in "l1 $c" "tv $t"; do
	set -- $pair
	if [ -n "${2:-}" ] && [ -n "$s" ] && below "$2" 0.10 && below "$2" "$(awk -v s="$s" 'BEGIN { print 0.85 * s }')"; then
		ok "cs $1 NRMSE $2 <= 0.10 and <= 0.85 x nc sense's $s"
	else
		bad "cs $1 NRMSE '${2:-}' (sense '$s'): above 0.10 or 0.85 x sense"
	fi
done
if "$R5" recon "$scan" --backend "$backend" --pipeline cs --frame-spokes 12 --iters 10 --out "$work/frames.h5" \
	>"$work/frames.log" 2>&1 && grep -q "images \[96 96 1 1 1 1 1 1 1 1 2\]" "$work/frames.log"; then
	ok "cs, frames of 12 spokes: $(grep 'images' "$work/frames.log" | head -1)"
else
	bad "cs frames: $(tail -2 "$work/frames.log")"
fi
# bad input
expect_error "a key cs does not read" "parameter dcf does not apply to pipeline cs" \
	"$R5" recon "$scan" --backend "$backend" --pipeline cs --dcf ramp --out "$work/x.h5"
expect_error "frames larger than the scan" "frame_spokes=30 is more than the scan's 24 spokes" \
	"$R5" recon "$scan" --backend "$backend" --pipeline cs --frame-spokes 30 --out "$work/x.h5"
expect_error "an unknown regulariser" "reg" \
	"$R5" recon "$scan" --backend "$backend" --pipeline cs --reg l2 --out "$work/x.h5"
memory_table_start 12
memory_case nc-cs radial24.h5 mem.h5 --pipeline cs
cat "$memory_table"
r5_finish
