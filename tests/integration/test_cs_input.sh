#!/usr/bin/env bash
# `recon5t recon --pipeline cs` options and bad input, end to end on the command line:
#   --reg sets the parameter reg (--reg tv gives the same bytes as --param reg=tv, and other
#   bytes than l1); the usage lists cs, --reg, lambda_l1 and lambda_tv; auto picks cs for a
#   Poisson-disc mask (the log says why);
#   bad input, each refused with exit status 2 (not 1, not a signal) and a message naming it:
#   weights negative (-1, -0.5), not finite (nan, inf, -inf), zero iterations, an unknown
#   regulariser (--reg and --param), more virtual coils than the scan's channels, a --mask with
#   no fully sampled calibration region (centre not sampled, a 1 x 1 and an 8 x 8 centre; with
#   cs, sense and auto), the parameter calib below what ESPIRiT's kernel needs, and an ISMRMRD
#   phantom whose sampling has no calibration region (cs, sense, auto);
#   after all of them the same input reconstructs.
# The k-space is synthetic (numpy: ellipses, 8 smooth coils, [1, 96, 80, 8], BART layout), so
# the test needs no shared data.
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

k="$work/k.cfl"
if ! "$PY" - "$work" <<'PYEOF'; then bad "synthetic k-space and masks"; r5_finish; exit 1; fi
import sys, numpy as np
w = sys.argv[1]
ny, nz, nc = 96, 80, 8
y, z = np.meshgrid(np.linspace(-1, 1, ny), np.linspace(-1, 1, nz), indexing="ij")
img = ((y / 0.8) ** 2 + (z / 0.7) ** 2 <= 1) * 1.0 + ((y / 0.3 - 0.5) ** 2 + (z / 0.2) ** 2 <= 1) * 0.5
img = img - (((y + 0.3) / 0.2) ** 2 + ((z - 0.2) / 0.3) ** 2 <= 1) * 0.7
k = np.zeros((nc, nz, ny), np.complex64)  # C order (coil, z, y): y fastest, as BART's [1, Y, Z, C]
for c in range(nc):
    a = 2 * np.pi * c / nc
    coil = np.exp(-((y - 1.2 * np.cos(a)) ** 2 + (z - 1.2 * np.sin(a)) ** 2) / 1.5) * np.exp(1j * a)
    f = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(img * coil), norm="ortho"))
    k[c] = f.T
k.tofile(w + "/k.cfl")
open(w + "/k.hdr", "w").write("# Dimensions\n1 %d %d %d 1\n" % (ny, nz, nc))
rng = np.random.default_rng(3)
def mask(name, centre):
    m = (rng.random((nz, ny)) < 0.25).astype(np.float32)
    cy, cz = ny // 2, nz // 2
    m[cz - 8:cz + 8, cy - 8:cy + 8] = 0
    if centre:
        m[cz - centre // 2:cz - centre // 2 + centre, cy - centre // 2:cy - centre // 2 + centre] = 1
    m.astype(np.complex64).tofile(w + "/" + name + ".cfl")
    open(w + "/" + name + ".hdr", "w").write("# Dimensions\n1 %d %d 1 1\n" % (ny, nz))
mask("nocentre", 0)
mask("centre1", 1)
mask("centre8", 8)
PYEOF

# bad input: exit status 2 exactly, the message matches, nothing written
expect_bad() {
	local what=$1 pattern=$2
	shift 2
	rm -f "$work/bad.cfl" "$work/bad.hdr"
	"$R5" recon "$@" --out "$work/bad.cfl" --backend "$backend" --quiet >"$work/out.txt" 2>&1
	local rc=$?
	if [ $rc -eq 2 ] && grep -qiE "$pattern" "$work/out.txt" && [ ! -e "$work/bad.cfl" ]; then
		ok "$what: exit 2: $(grep -iE "$pattern" "$work/out.txt" | head -1 | cut -c1-200)"
	else
		bad "$what (exit $rc, want 2 and /$pattern/): $(grep -v INFO "$work/out.txt" | head -c 300)"
	fi
}

"$R5" mask --poisson --accel 4 --calib 24 --seed 4 --dims 96,80 --out "$work/p4.cfl" >/dev/null 2>&1 ||
	bad "recon5t mask for the good case"
good() { # name, options...: reconstructs; the log in $work/$name.log
	local name=$1
	shift
	if "$R5" recon "$k" --mask "$work/p4.cfl" --backend "$backend" --out "$work/$name.cfl" "$@" >"$work/$name.log" 2>&1; then
		return 0
	fi
	bad "$name: $(grep -v INFO "$work/$name.log" | head -c 300)"
	return 1
}

if good auto --iters 10 && grep -q "pipeline auto chose cs: sampling irregular, variable density" "$work/auto.log" &&
	grep -q "pipeline cs" "$work/auto.log"; then
	ok "auto picks cs for a Poisson-disc mask: $(grep -o 'auto chose cs: .*' "$work/auto.log" | cut -c1-150)"
else
	bad "auto on a Poisson-disc mask: $(grep -E 'auto chose|recon:' "$work/auto.log" | head -c 300)"
fi
if command -v bart >/dev/null 2>&1; then
	# BART's own variable-density Poisson disc (R = 2 x 2 asked, 24 x 24 calibration)
	(cd "$work" && bart poisson -Y 96 -Z 80 -y 2 -z 2 -v -C 24 bartmask >/dev/null 2>&1)
	if "$R5" recon "$k" --mask "$work/bartmask.cfl" --backend "$backend" --iters 5 --out "$work/bart.cfl" >"$work/bart.log" 2>&1 &&
		grep -q "pipeline auto chose cs: sampling irregular, variable density" "$work/bart.log"; then
		ok "auto picks cs for bart poisson -v: $(grep -o 'auto chose cs: .*' "$work/bart.log" | cut -c1-150)"
	else
		bad "auto on bart poisson -v: $(grep -E 'auto chose|recon:' "$work/bart.log" | head -c 300)"
	fi
else
	echo "SKIP: bart is not installed (auto on a BART Poisson mask)"
fi
if good reg_flag --pipeline cs --reg tv --iters 8 && good reg_param --pipeline cs --param reg=tv --iters 8 &&
	good reg_l1 --pipeline cs --reg l1 --iters 8; then
	if cmp -s "$work/reg_flag.cfl" "$work/reg_param.cfl" && ! cmp -s "$work/reg_flag.cfl" "$work/reg_l1.cfl"; then
		ok "--reg tv = --param reg=tv (same bytes), and not --reg l1"
	else
		bad "--reg tv does not act as --param reg=tv (or equals l1)"
	fi
fi
usage=$("$R5" recon --help 2>&1)
if echo "$usage" | grep -q -- "--pipeline P .*| cs" && echo "$usage" | grep -q -- "--reg R .*l1.*tv.*l1+tv" &&
	echo "$usage" | grep -q "lambda_l1" && echo "$usage" | grep -q "lambda_tv"; then
	ok "usage lists cs, --reg, lambda_l1, lambda_tv"
else
	bad "usage: $(echo "$usage" | grep -E 'pipeline|reg|lambda')"
fi

m=(--mask "$work/p4.cfl")
expect_bad "lambda_l1=-1" "lambda_l1.*-1" "$k" "${m[@]}" --pipeline cs --param lambda_l1=-1
expect_bad "lambda_l1=-0.5" "lambda_l1.*-0.5" "$k" "${m[@]}" --pipeline cs --param lambda_l1=-0.5
expect_bad "lambda_tv=-1" "lambda_tv.*-1" "$k" "${m[@]}" --pipeline cs --reg tv --param lambda_tv=-1
expect_bad "lambda_l1=nan" "lambda_l1.*nan.*not a finite" "$k" "${m[@]}" --pipeline cs --param lambda_l1=nan
expect_bad "lambda_tv=inf" "lambda_tv.*inf.*not a finite" "$k" "${m[@]}" --pipeline cs --reg l1+tv --param lambda_tv=inf
expect_bad "lambda_tv=-inf" "lambda_tv.*not a finite" "$k" "${m[@]}" --pipeline cs --param lambda_tv=-inf
expect_bad "--iters 0" "iters.*0" "$k" "${m[@]}" --pipeline cs --iters 0
expect_bad "--reg l2" "reg.*unknown value 'l2'" "$k" "${m[@]}" --pipeline cs --reg l2
expect_bad "--param reg=wavelet" "reg.*unknown value 'wavelet'" "$k" "${m[@]}" --pipeline cs --param reg=wavelet
expect_bad "--coils-virtual 12 of 8" "coils_virtual 12 exceeds the scan's 8 receive channels" \
	"$k" "${m[@]}" --pipeline cs --coils-virtual 12
for pipe in cs sense auto; do
	expect_bad "$pipe, mask without its centre" "mask .*nocentre.*no fully sampled calibration region.*centre .*not sampled" \
		"$k" --mask "$work/nocentre.cfl" --pipeline $pipe
	expect_bad "$pipe, mask with a 1 x 1 centre" "mask .*centre1.*calibration region.*1 x 1" \
		"$k" --mask "$work/centre1.cfl" --pipeline $pipe
done
expect_bad "cs, mask with an 8 x 8 centre" "calibration region.*8 x 8.*12 x 12" "$k" --mask "$work/centre8.cfl" --pipeline cs
expect_bad "cs, calib 8 < 2 x kernel" "calib 8 .*kernel 6" "$k" "${m[@]}" --pipeline cs --calib 8

if "$R5" phantom --out "$work/nocal.h5" --matrix 64 --coils 4 --sampling uniform --accel 3 --calib 0 >/dev/null 2>&1; then
	for pipe in cs sense auto; do
		expect_bad "ISMRMRD scan without calibration, $pipe" "nocal.h5.*calibration region.*1 ky line" \
			"$work/nocal.h5" --pipeline $pipe
	done
else
	bad "phantom without calibration lines"
fi

if good after --pipeline cs --iters 5; then ok "after the bad input the same k-space and mask reconstruct"; fi
r5_finish
