#!/usr/bin/env bash
# The recon5t command line end to end: phantoms reconstruct (with PNG previews; the header picks
# the pipeline and prewhitening), the real ESPIRiT example k-space reconstructs to a brain image
# that matches an independent numpy reconstruction, and bad input gets a clear message and a
# non-zero exit (never a crash). Image-quality bounds are rows of tests/cases/e2e.txt.
. "$(dirname "$0")/lib.sh"

# 1. a fully sampled 2D phantom (readout oversampling, 8 coils, oblique) reconstructs and writes
#    a PNG preview (its image quality, and that of the adaptive combination and of a 3D phantom,
#    are rows of tests/cases/e2e.txt)
if "$R5" phantom --kind shepp-logan --matrix 128 --coils 8 --oblique 20 --out "$work/p2.h5" >/dev/null &&
	"$R5" recon "$work/p2.h5" --out "$work/r2.h5" --png "$work/png" --backend cpu --quiet; then
	ok "2D phantom: $("$R5" compare "$work/p2.h5" "$work/r2.h5" --scale)"
	[ "$(ls "$work/png" | wc -l)" -ge 1 ] && ok "PNG preview written" || bad "no PNG preview"
else
	bad "2D phantom pipeline failed"
fi

# 2. the header drives it: noise scan + embedded calibration at R=3, no flags given (its NRMSE is
#    the e2e.txt row prewhiten-auto-r3)
if "$R5" phantom --kind shepp-logan --matrix 128 --coils 16 --sampling uniform --accel 3 --calib 24 \
	--noise 0.001 --out "$work/r3.h5" >/dev/null &&
	"$R5" recon "$work/r3.h5" --out "$work/r3r.h5" --backend cpu >"$work/r3.log" 2>&1; then
	if grep -q "pipeline sense" "$work/r3.log" && grep -q "prewhitening: 16 channels" "$work/r3.log"; then
		ok "header-driven R=3 with noise scan: sense + prewhitening"
	else
		bad "header-driven R=3: $(grep -E 'pipeline|prewhiten' "$work/r3.log" | head -3)"
	fi
else
	bad "header-driven R=3 recon failed: $(tail -3 "$work/r3.log")"
fi

# 3. real data: full.cfl (8-coil brain) reconstructs to a brain image
full=${R5_SHARED:-/nonexistent}/data/espirit-matlab-examples/full
if [ -f "$full.cfl" ]; then
	if "$R5" recon "$full.cfl" --out "$work/brain.cfl" --backend cpu --quiet; then
		"$PY" - "$full" "$work/brain" <<'PY' && ok "full.cfl: brain image matches numpy rss" || bad "full.cfl check"
import sys, numpy as np
def cfl(p):
    dims = [int(x) for x in open(p + ".hdr").read().split("\n")[1].split()]
    return np.fromfile(p + ".cfl", dtype=np.complex64).reshape(dims, order="F")
k = np.squeeze(cfl(sys.argv[1]))            # 230 x 180 x 8
img = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=(0, 1)), axes=(0, 1), norm="ortho"), axes=(0, 1))
ref = np.sqrt((abs(img) ** 2).sum(axis=2))
ours = np.abs(np.squeeze(cfl(sys.argv[2])))
err = np.linalg.norm(ours - ref) / np.linalg.norm(ref)
h, w = ref.shape
centre = ref[h // 4:3 * h // 4, w // 4:3 * w // 4].mean()
corner = np.mean([ref[:h // 10, :w // 10].mean(), ref[-h // 10:, -w // 10:].mean()])
print(f"full.cfl: nrmse vs numpy {err:.2e}, centre/corner contrast {centre / corner:.1f}")
sys.exit(0 if err < 1e-5 and centre > 5 * corner else 1)
PY
	else
		bad "full.cfl recon failed"
	fi
else
	echo "SKIP: ../shared/data/espirit-matlab-examples absent (real-data check)"
fi

expect_error "missing file" "nosuch" "$R5" recon "$work/nosuch.h5" --out "$work/x.h5"
head -c 100000 /dev/urandom >"$work/corrupt.h5"
expect_error "corrupt file" "corrupt.h5" "$R5" recon "$work/corrupt.h5" --out "$work/x.h5"
printf '# Dimensions\n64 64 1 4\n' >"$work/short.hdr"
head -c 1000 /dev/zero >"$work/short.cfl"
expect_error "cfl size contradicts header" "short" "$R5" recon "$work/short.cfl" --out "$work/x.cfl"
printf '# Dimensions\n100000 100000 100000 64\n' >"$work/huge.hdr"
: >"$work/huge.cfl"
expect_error "absurd sizes" "huge|size|large|GiB" "$R5" recon "$work/huge.cfl" --out "$work/x.cfl"
expect_error "unknown option" "unknown option" "$R5" recon "$work/p2.h5" --out "$work/x.h5" --frobnicate 3
expect_error "unknown pipeline" "pipeline" "$R5" recon "$work/p2.h5" --out "$work/x.h5" --pipeline magic
expect_error "gpu without CUDA device" "CUDA|gpu" env CUDA_VISIBLE_DEVICES= "$R5" recon "$work/p2.h5" --out "$work/x.h5" --backend gpu
# a header that contradicts the data: the phantom's XML says 8 channels, rewrite it to 12
if "$PY" -c "import h5py" 2>/dev/null; then
	cp "$work/p2.h5" "$work/lie.h5"
	"$PY" - "$work/lie.h5" <<'PY'
import sys, h5py, re
with h5py.File(sys.argv[1], "r+") as f:
    ds = f["dataset/xml"]
    xml = ds[0]
    xml = xml.decode() if isinstance(xml, bytes) else xml
    ds[0] = re.sub(r"<receiverChannels>\d+</receiverChannels>", "<receiverChannels>12</receiverChannels>", xml)
PY
	expect_error "header contradicts channels" "channel" "$R5" recon "$work/lie.h5" --out "$work/x.h5"
fi

r5_finish
