#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine: install packages, build, start recon5td on its
# default configuration (127.0.0.1:50051), make a phantom scan, stream it to the server with
# `recon5t send` as a console would, and receive DICOM images back. Then compare with the
# phantom's ground truth and write PNG previews. Everything lands in demo/ (or $R5_DEMO_DIR).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=${R5_DEMO_DIR:-$top/demo}
bin=$top/build/service

if [ "${R5_SKIP_INSTALL:-0}" != 1 ]; then
	echo "== installing Debian packages =="
	bash "$top/scripts/install-deps.sh"
fi
echo "== building =="
R5_BUILD_DIR=$top/build bash "$top/scripts/build.sh"

mkdir -p "$out"
rm -rf "$out/received" "$out/png"
echo "== phantom: 2D Shepp-Logan, 256x256, 16 coils, noise, noise scan, oblique 20 deg =="
"$bin/recon5t" phantom --kind shepp-logan --matrix 256 --coils 16 --sampling full --noise 0.002 \
	--oblique 20 --out "$out/phantom.h5"

echo "== starting recon5td on its defaults =="
"$bin/recon5td" >"$out/recon5td.log" 2>&1 &
server=$!
trap 'kill -TERM $server 2>/dev/null || true; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
	"$bin/recon5t" health --server 127.0.0.1:50051 >/dev/null 2>&1 && break
	sleep 0.1
done

echo "== sending the scan; DICOM comes back =="
"$bin/recon5t" send "$out/phantom.h5" --server 127.0.0.1:50051 --format dicom --out "$out/received"
"$bin/recon5t" send "$out/phantom.h5" --server 127.0.0.1:50051 --format float32 --out "$out/received/float32" --quiet

echo "== offline reconstruction, PNG previews and quality against the ground truth =="
"$bin/recon5t" recon "$out/phantom.h5" --out "$out/recon.h5" --png "$out/png"
"$bin/recon5t" compare "$out/phantom.h5" "$out/recon.h5" --scale

n=$(find "$out/received" -name '*.dcm' | wc -l)
echo "== done: $n DICOM files under $out/received, previews in $out/png, server log $out/recon5td.log =="
[ "$n" -gt 0 ]
