#!/usr/bin/env bash
# recon5t against the ISMRMRD reference tools: ismrmrd_generate_cartesian_shepp_logan writes an
# 8-coil Shepp-Logan scan with 2x readout oversampling and noise scans; ismrmrd_recon_cartesian_2d
# reconstructs it (variable dataset/cpp: rss magnitude); `recon5t recon` must give the same
# magnitude image up to a scale: NRMSE < 0.02 after least-squares scaling. Exercises the header
# parser, the scan builder (oversampling removal, noise kept apart) and the ISMRMRD image writer.
set -u
for tool in ismrmrd_generate_cartesian_shepp_logan ismrmrd_recon_cartesian_2d; do
	command -v "$tool" >/dev/null 2>&1 || { echo "SKIP: $tool not installed (Debian package ismrmrd-tools)"; exit 77; }
done
PY=${PYTHON:-/usr/bin/python3}
"$PY" -c 'import h5py, numpy' 2>/dev/null || { echo "SKIP: $PY lacks h5py/numpy"; exit 77; }
RECON5T=${R5_BIN:-.}/service/recon5t
[ -x "$RECON5T" ] || { echo "FAIL: $RECON5T not built"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1

ismrmrd_generate_cartesian_shepp_logan -o raw.h5 -m 128 -c 8 -C -n 0.02 >gen.log 2>&1 ||
	{ cat gen.log; echo "FAIL: phantom generator"; exit 1; }
cp raw.h5 ref.h5
# the reference tool writes its image into the input file (dataset/cpp)
ismrmrd_recon_cartesian_2d ref.h5 >ref.log 2>&1 || { cat ref.log; echo "FAIL: ismrmrd_recon_cartesian_2d"; exit 1; }
"$RECON5T" recon raw.h5 --out ours.h5 >ours.log 2>&1 || { cat ours.log; echo "FAIL: recon5t recon"; exit 1; }

"$PY" - <<'PYEOF'
import sys
import h5py, numpy as np

def image_var(path, var):
    with h5py.File(path, "r") as f:
        d = np.array(f["dataset/%s/data" % var])
        h = np.array(f["dataset/%s/header" % var])
    if d.dtype.names:
        d = d["real"] + 1j * d["imag"]
    return np.abs(d).squeeze().astype(np.float64), h

ref, _ = image_var("ref.h5", "cpp")
ours, head = image_var("ours.h5", "images")
if ref.shape != ours.shape:
    print("FAIL: shapes differ: reference %s, recon5t %s" % (ref.shape, ours.shape)); sys.exit(1)
scale = np.vdot(ours.ravel(), ref.ravel()).real / np.vdot(ours.ravel(), ours.ravel()).real
nrmse = np.linalg.norm(scale * ours - ref) / np.linalg.norm(ref)
print("nrmse=%.3g (scale %.4g) matrix %s fov %s" % (nrmse, scale, head["matrix_size"][0], head["field_of_view"][0]))
if not nrmse < 0.02:
    print("FAIL: nrmse %.4f >= 0.02" % nrmse); sys.exit(1)
# recon FOV in the image header (the generator's reconSpace: 300 mm in-plane)
if abs(float(head["field_of_view"][0][0]) - 300.0) > 1e-3:
    print("FAIL: image field_of_view %s, header reconSpace says 300 mm" % head["field_of_view"][0]); sys.exit(1)
PYEOF
rc=$?
[ $rc -eq 0 ] && echo "PASS: recon5t matches ismrmrd_recon_cartesian_2d"
exit $rc
