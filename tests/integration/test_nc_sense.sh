#!/usr/bin/env bash
# Non-Cartesian `sense` (recon/pipeline/nc_sense_pipeline.c: NLINV maps from all spokes, then
# CG-SENSE through the Toeplitz normal) end to end: a golden-angle radial phantom (recon5t phantom
# --kind dynamic, 96^2, 8 coils, one frame of 40 spokes: R ~ 3.8 against radial Nyquist, noise
# 0.01) -> recon5t recon with pipeline auto, which must choose sense for one frame of several
# coils; its NRMSE against the phantom's truth below a bound measured here (2026-12: 0.093 ->
# bound 0.12) and at most 0.7 x plain gridding's (0.162); frames (frame_spokes 20 -> 2 frames,
# sense asked by name); the memory estimate against the measured peak.
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
quality() { grep '^quality vs ground truth' "$1" | field nrmse; }

scan=$work/radial40.h5
if ! "$R5" phantom --kind dynamic --matrix 96 --coils 8 --frames 1 --frame-spokes 40 --per-frame-motion 1 \
	--out "$scan" >"$work/phantom.log" 2>&1; then
	bad "phantom failed: $(tail -2 "$work/phantom.log")"
	r5_finish
	exit
fi
"$R5" recon "$scan" --backend "$backend" --pipeline grid --out "$work/grid.h5" >"$work/grid.log" 2>&1 ||
	bad "grid failed: $(tail -2 "$work/grid.log")"
if "$R5" recon "$scan" --backend "$backend" --out "$work/sense.h5" >"$work/sense.log" 2>&1; then
	grep -q "pipeline auto chose sense" "$work/sense.log" && ok "auto chose sense for one frame of 8 coils" ||
		bad "auto did not choose sense: $(grep 'auto chose' "$work/sense.log")"
	g=$(quality "$work/grid.log") s=$(quality "$work/sense.log")
	if [ -n "$s" ] && [ -n "$g" ] && below "$s" 0.12 && below "$s" "$(awk -v g="$g" 'BEGIN { print 0.7 * g }')"; then
		ok "nc sense NRMSE $s <= 0.12 and <= 0.7 x gridding's $g ($(grep '^timings' "$work/sense.log"))"
	else
		bad "nc sense NRMSE '$s' (gridding '$g'): above 0.12 or 0.7 x gridding"
	fi
else
	bad "sense failed: $(tail -2 "$work/sense.log")"
fi
if "$R5" recon "$scan" --backend "$backend" --pipeline sense --frame-spokes 20 --out "$work/frames.h5" >"$work/frames.log" 2>&1 &&
	grep -q "images \[96 96 1 1 1 1 1 1 1 1 2\]" "$work/frames.log"; then
	ok "nc sense, frames of 20 spokes: $(grep 'images' "$work/frames.log" | head -1)"
else
	bad "nc sense frames: $(tail -2 "$work/frames.log")"
fi
memory_table_start 12
memory_case nc-sense radial40.h5 mem.h5 --pipeline sense
cat "$memory_table"
r5_finish
