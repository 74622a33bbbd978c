#!/usr/bin/env bash
# `recon5t mask` and `recon5t recon ... --mask` end to end:
#   the mask file: BART layout [1, Y, Z], values 0/1, the achieved R printed and within 5 % of
#   the request, the same seed the same bytes, another seed other bytes; BART reads it
#   (`bart show -m` prints its dims; SKIP when bart is not installed);
#   retrospective undersampling of the real brain (R5_SHARED/data/espirit-matlab-examples/
#   full.cfl, 230 x 180, 8 coils) at R = 4, 24 x 24 calibration, seed 4: CG-SENSE of the masked
#   k-space against CG-SENSE of the full k-space, NRMSE printed and bounded (0.110 measured,
#   bound 0.145 = 1.3x; SKIP when the shared folder is absent);
#   bad input: a mask whose dims do not fit (both shapes named), a value not 0/1, a mask that
#   leaves nothing, --mask on an ISMRMRD file, absurd mask parameters.
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

out=$("$R5" mask --poisson --accel 4 --calib 24 --seed 4 --dims 230,180 --out "$work/m4.cfl" 2>&1)
achieved=$(echo "$out" | sed -n 's/.*achieved R \([0-9.]*\).*/\1/p')
if [ -n "$achieved" ] && above "$achieved" 3.8 && below "$achieved" 4.2 && grep -q '^1 230 180' "$work/m4.hdr"; then
	ok "mask R=4 230x180: achieved R $achieved, dims $(sed -n 2p "$work/m4.hdr")"
else
	bad "mask R=4: $out / $(cat "$work/m4.hdr" 2>/dev/null)"
fi
if "$PY" - "$work/m4.cfl" <<'PYEOF'; then ok "mask values are 0/1 with imaginary 0"; else bad "mask values"; fi
import sys, numpy as np
v = np.fromfile(sys.argv[1], dtype=np.complex64)
sys.exit(0 if v.size == 230 * 180 and np.all(v.imag == 0) and set(np.unique(v.real)) == {0.0, 1.0} else 1)
PYEOF
"$R5" mask --poisson --accel 4 --calib 24 --seed 4 --dims 230,180 --out "$work/m4b.cfl" >/dev/null 2>&1
"$R5" mask --poisson --accel 4 --calib 24 --seed 5 --dims 230,180 --out "$work/m4c.cfl" >/dev/null 2>&1
if cmp -s "$work/m4.cfl" "$work/m4b.cfl" && ! cmp -s "$work/m4.cfl" "$work/m4c.cfl"; then
	ok "seed 4 twice: the same bytes; seed 5: other bytes"
else
	bad "seeds: same-seed files differ or different seeds agree"
fi

if command -v bart >/dev/null 2>&1; then
	dims=$(cd "$work" && bart show -m m4 2>&1 | sed -n 's/^AoD:[[:space:]]*//p' | awk '{print $1, $2, $3}')
	if [ "$dims" = "1 230 180" ]; then ok "bart show -m reads the mask: $dims"; else bad "bart show -m: '$dims'"; fi
else
	echo "SKIP: bart is not installed (bart show -m)"
fi

full=${R5_SHARED:-$(dirname "$0")/../../../shared}/data/espirit-matlab-examples/full.cfl
if [ -f "$full" ]; then
	if "$R5" recon "$full" --pipeline sense --backend cpu --quiet --out "$work/full_sense.cfl" 2>"$work/err.txt" &&
		"$R5" recon "$full" --mask "$work/m4.cfl" --pipeline sense --backend cpu --quiet \
			--out "$work/r4.cfl" 2>>"$work/err.txt"; then
		nrmse=$("$R5" compare "$work/full_sense.cfl" "$work/r4.cfl" | field nrmse)
		if [ -n "$nrmse" ] && below "$nrmse" 0.145 && above "$nrmse" 0.01; then
			ok "brain R=4 masked CG-SENSE vs full: nrmse $nrmse (bound 0.145)"
		else
			bad "brain R=4 masked CG-SENSE vs full: nrmse '$nrmse' (bound 0.145; 0 would mean no mask)"
		fi
	else
		bad "recon with --mask failed: $(grep -v INFO "$work/err.txt" | head -c 300)"
	fi
	"$R5" mask --poisson --accel 4 --dims 128,128 --out "$work/m128.cfl" >/dev/null 2>&1
	expect_error "mask dims do not fit" "\[1 128 128\].*\[1 230 180 8\]" \
		"$R5" recon "$full" --mask "$work/m128.cfl" --out "$work/x.cfl"
	printf '# Dimensions\n1 230 180 1 1\n' >"$work/half.hdr"
	"$PY" -c "import numpy as np; np.full(230 * 180, 0.5, np.complex64).tofile('$work/half.cfl')"
	expect_error "mask value 0.5" "not 0 or 1" "$R5" recon "$full" --mask "$work/half.cfl" --out "$work/x.cfl"
	cp "$work/half.hdr" "$work/zero.hdr"
	"$PY" -c "import numpy as np; np.zeros(230 * 180, np.complex64).tofile('$work/zero.cfl')"
	expect_error "empty mask" "no sampled line" "$R5" recon "$full" --mask "$work/zero.cfl" --out "$work/x.cfl"
	expect_error "missing mask file" "[-]-mask: .*nothere" "$R5" recon "$full" --mask "$work/nothere.cfl" --out "$work/x.cfl"
else
	echo "SKIP: $full is absent (no shared data): masked reconstruction not run"
fi
expect_error "--mask on ISMRMRD" "applies to BART .cfl" "$R5" recon "$work/scan.h5" --mask "$work/m4.cfl" --out "$work/x.cfl"
expect_error "R < 1" "accel" "$R5" mask --poisson --accel 0.5 --dims 64,64 --out "$work/x.cfl"
expect_error "calib > dims" "calibration 80 x 80" "$R5" mask --poisson --accel 2 --calib 80 --dims 64,64 --out "$work/x.cfl"
expect_error "zero dims" "dims" "$R5" mask --poisson --accel 2 --dims 0,64 --out "$work/x.cfl"
expect_error "no --poisson" "poisson" "$R5" mask --accel 2 --dims 64,64 --out "$work/x.cfl"
r5_finish
