#!/usr/bin/env bash
# Non-Cartesian scans end to end (recon/io/scan.h, recon/pipeline/grid.h):
#   the golden-angle radial phantom (recon5t phantom --kind dynamic, trajectory in the
#   acquisitions) -> recon5t recon, pipeline auto (= grid): NRMSE per frame against the phantom's
#   ground truth below bounds measured here (2026-12, 128^2, 8 coils, noise 0.01): 201 spokes a
#   frame (fully sampled radially, pi/2 N) 0.091 rss / 0.082 adaptive -> bound 0.12; 21 spokes a
#   frame 0.27 -> bound 0.32; the DICOM writer takes the frames;
#   the memory estimate against the measured peak (rss and adaptive + Pipe-Menon);
#   bad input at the command line: --traj of other dims, frames larger than the scan, a pipeline
#   that does not take a non-Cartesian scan, --traj on an ISMRMRD file;
#   real data (R5_SHARED/data/gpunufft-radial-cardiac, .cfl + --traj): 256^2 images (also with
#   the RING gradient-delay correction, delay=ring, grid by name: auto is sense here), and the
#   same image as BART's ramp-weighted adjoint (`bart nufft -a` of the samples times |k|;
#   correlation >= 0.999) when bart is installed.
# Real data are skipped (SKIP line) when the shared folder is absent; the phantom part always runs.
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
quality() { grep '^quality vs ground truth' "$1" | field nrmse; }

# grid_case NAME SPOKES BOUND COMBINE: a phantom of 3 frames of SPOKES spokes (object moving per
# frame; made once per SPOKES) and its gridding, frames of SPOKES spokes
grid_case() {
	local name=$1 spokes=$2 bound=$3 combine=$4 nrmse scan="$work/radial$2.h5"
	if [ ! -f "$scan" ] && ! "$R5" phantom --kind dynamic --matrix 128 --coils 8 --frames 3 --frame-spokes "$spokes" \
		--per-frame-motion 1 --out "$scan" >"$work/$name-phantom.log" 2>&1; then
		bad "$name: phantom failed: $(tail -2 "$work/$name-phantom.log")"
		return
	fi
	if ! "$R5" recon "$scan" --backend "$backend" --frame-spokes "$spokes" --combine "$combine" \
		--out "$work/$name-r.h5" --dicom "$work/$name-dcm" >"$work/$name.log" 2>&1; then
		bad "$name: recon failed: $(tail -2 "$work/$name.log")"
		return
	fi
	nrmse=$(quality "$work/$name.log")
	grep -q "pipeline grid" "$work/$name.log" || bad "$name: auto did not choose grid"
	grep -q "images \[128 128 1 1 1 1 1 1 1 1 3\]" "$work/$name.log" || bad "$name: not 3 frames of 128^2: $(grep images "$work/$name.log")"
	local files
	files=$(find "$work/$name-dcm" -name '*.dcm' | wc -l)
	[ "$files" -ge 3 ] || bad "$name: $files DICOM files for 3 frames"
	if [ -n "$nrmse" ] && below "$nrmse" "$bound"; then
		ok "$name: gridding NRMSE $nrmse <= $bound ($files DICOM files)"
	else
		bad "$name: gridding NRMSE '${nrmse}' above $bound"
	fi
}
grid_case radial201 201 0.12 rss
grid_case radial201-adaptive 201 0.12 adaptive
grid_case radial21 21 0.32 rss

# the memory estimate the server reserves (lib.sh: measured <= estimate <= 2.5 x measured + 16 MiB)
memory_table_start 22
memory_case grid-rss radial21.h5 m1.h5 --frame-spokes 21
memory_case grid-adaptive-pipe radial201.h5 m2.h5 --frame-spokes 201 --combine adaptive --dcf pipe
cat "$memory_table"

# bad input
expect_error "frames larger than the scan" "frame_spokes=700 is more than the scan's 603 spokes" \
	"$R5" recon "$work/radial201.h5" --frame-spokes 700 --out "$work/x.h5"
expect_error "a pipeline that does not take a non-Cartesian scan" "does not take a non-Cartesian scan" \
	"$R5" recon "$work/radial201.h5" --pipeline grappa --out "$work/x.h5"
expect_error "--traj on an ISMRMRD file" "carries its trajectory in the acquisitions" \
	"$R5" recon "$work/radial201.h5" --traj "$work/t.cfl" --out "$work/x.h5"

data=${R5_SHARED:-}/data/gpunufft-radial-cardiac
spiral=${R5_SHARED:-}/data/kspace-precond-spiral
if [ -n "${R5_SHARED:-}" ] && [ -f "$data/ksp.cfl" ] && [ -f "$data/traj.cfl" ]; then
	if "$R5" recon "$data/ksp.cfl" --traj "$data/traj.cfl" --pipeline grid --backend "$backend" --out "$work/card.cfl" >"$work/card.log" 2>&1 &&
		grep -q "images \[256 256\]" "$work/card.log"; then
		ok "real radial (25 spokes, 12 coils): $(grep '^timings' "$work/card.log")"
	else
		bad "real radial: $(tail -3 "$work/card.log")"
	fi
	if "$R5" recon "$data/ksp.cfl" --traj "$data/traj.cfl" --pipeline grid --backend "$backend" --param delay=ring --out "$work/card-ring.cfl" \
		>"$work/card-ring.log" 2>&1 && grep -q "gradient delays (RING)" "$work/card-ring.log"; then
		ok "real radial, delay=ring: $(grep -o 'gradient delays.*' "$work/card-ring.log")"
	else
		bad "real radial, delay=ring: $(tail -3 "$work/card-ring.log")"
	fi
	[ -f "$spiral/traj.cfl" ] && expect_error "--traj of other dims" "n_read and n_spokes must match" \
		"$R5" recon "$data/ksp.cfl" --traj "$spiral/traj.cfl" --out "$work/x.cfl"
	if command -v bart >/dev/null && [ -f "$work/card.cfl" ]; then
		if corr=$("$PY" - "$data" "$work" <<'PYEOF'
import subprocess, sys
import numpy as np
data, w = sys.argv[1], sys.argv[2]
def read(p):
    dims = [int(x) for x in open(p + ".hdr").read().split("\n")[1].split()]
    return np.fromfile(p + ".cfl", np.complex64).reshape(dims, order="F")
def write(p, a):
    open(p + ".hdr", "w").write("# Dimensions\n" + " ".join(map(str, a.shape)) + "\n")
    a.astype(np.complex64).ravel(order="F").tofile(p + ".cfl")
t, k = read(data + "/traj"), read(data + "/ksp")
r = np.sqrt(t[0].real ** 2 + t[1].real ** 2)
write(w + "/kw", k * np.maximum(r, 0.25)[None, :, :, None])
subprocess.run(["bart", "nufft", "-a", "-d", "256:256:1", data + "/traj", w + "/kw", w + "/bart"], check=True,
               capture_output=True)
b = np.sqrt((np.abs(read(w + "/bart")) ** 2).sum(axis=3)).squeeze()
m = np.abs(read(w + "/card")).squeeze()
print("%.6f" % np.corrcoef(b.ravel(), m.ravel())[0, 1])
PYEOF
		) && above "$corr" 0.999; then
			ok "real radial: correlation with BART's ramp-weighted adjoint $corr"
		else
			bad "real radial: correlation with BART '${corr:-}' below 0.999"
		fi
	fi
else
	echo "SKIP: real radial data (${data} absent)"
fi
r5_finish
