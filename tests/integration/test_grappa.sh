#!/usr/bin/env bash
# GRAPPA end to end through the command line: behaviour, not image quality (the NRMSE bounds of
# the GRAPPA phantoms, 1D R=2, 3 and 2x2 in 3D, and of the real und2x2.cfl against full.cfl are
# rows of tests/cases/e2e.txt, run by test_cases.sh): the g-factor map is >= ~1 in the object;
# and bad input (calibration region smaller than the kernel, a header acceleration that
# contradicts the sampled lines) fails with a clear message, never a crash.
. "$(dirname "$0")/lib.sh"

# g-factor map: >= ~1 in the object, finite, a bit above 1 somewhere at R=3
if "$R5" phantom --matrix 256 --coils 8 --sampling uniform --accel 3 --calib 24 --out "$work/2d-r3-8coils.h5" >/dev/null &&
	"$R5" recon "$work/2d-r3-8coils.h5" --pipeline grappa --out "$work/g3.cfl" --gfactor "$work/g3g.cfl" \
	--backend "$backend" --quiet; then
	"$PY" - "$work/g3" "$work/g3g" <<'PY' && ok "g-factor map R=3" || bad "g-factor map R=3"
import sys, numpy as np
def cfl(p):
    dims = [int(x) for x in open(p + ".hdr").read().split("\n")[1].split()]
    return np.fromfile(p + ".cfl", dtype=np.complex64).reshape(dims, order="F")
img, g = np.abs(np.squeeze(cfl(sys.argv[1]))), np.squeeze(cfl(sys.argv[2])).real
obj = img > 0.2 * img.max()
print(f"g in object: min {g[obj].min():.3f} mean {g[obj].mean():.3f} max {g[obj].max():.3f}")
sys.exit(0 if np.isfinite(g).all() and g[obj].min() > 0.9 and 1.02 < g[obj].max() < 10 else 1)
PY
else
	bad "g-factor recon failed"
fi

if "$R5" phantom --matrix 64 --coils 4 --sampling uniform --accel 2 --calib 4 --out "$work/small.h5" >/dev/null; then
	expect_error "calibration region smaller than the kernel" "calibration region is [0-9]+ wide along ky" \
		"$R5" recon "$work/small.h5" --pipeline grappa --out "$work/x.h5"
fi
if "$PY" -c "import h5py" 2>/dev/null &&
	"$R5" phantom --matrix 64 --coils 4 --sampling uniform --accel 2 --calib 16 --out "$work/lie.h5" >/dev/null; then
	"$PY" - "$work/lie.h5" <<'PY'
import sys, h5py, re
with h5py.File(sys.argv[1], "r+") as f:
    xml = f["dataset/xml"][0]
    xml = xml.decode() if isinstance(xml, bytes) else xml
    xml = re.sub(r"<kspace_encoding_step_1>2</kspace_encoding_step_1>",
                 "<kspace_encoding_step_1>3</kspace_encoding_step_1>", xml)
    del f["dataset/xml"]
    # the ISMRMRD writer stores the header as a variable-length ASCII string
    f.create_dataset("dataset/xml", data=[xml.encode()], dtype=h5py.string_dtype(encoding="ascii"))
PY
	expect_error "header R contradicts the sampled lines" "header says R=3 along ky but sampled lines .* spaced by 2" \
		"$R5" recon "$work/lie.h5" --pipeline grappa --out "$work/x.h5"
fi

r5_finish
