#!/usr/bin/env bash
# The decoupled 3D cs frame streamed through device memory (issue 13, item 4; cs_slab.h
# r5_cs_streamed), on the cpu-device back end with its memory capped (R5_CPU_DEVICE_MIB, the
# CPU posing as a small GPU: recon/cpu/backend_cpu_device.h). A 96 x 96 x 64, 8-coil Poisson R=4
# frame holds 36 MiB of k-space and 36 MiB of maps:
#   - capped at 40, 48 and 64 MiB, stream=-1 (the default) streams it (k-space and maps on the host,
#     slabs sized to the free memory: the log says how many) and the image is the CPU back end's,
#     bit for bit (psnr inf), whatever the slab width;
#   - stream=1 with slab=7 and with two map sets: the same images as the CPU's;
#   - stream=0 under the 48 MiB cap: a clear "out of device memory" error, no crash;
#   - no cap: not streamed (the frame fits), the same image;
#   - the whole chain before it streams too: with prewhitening (the phantom's noise scan) and
#     coil compression to 6 virtual coils, geometric (the 3D default) and svd, capped at 48 MiB
#     (the raw frame alone is 36 MiB): each image equal to the CPU's;
#   - bad values: stream=1 without decouple=1, stream=2.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
export R5_CPU_DEVICE=1
common=(--pipeline cs --kernel 4 --param decouple=1 --param prewhiten=0 --iters 5)

if ! "$R5" phantom --kind shepp-logan-3d --matrix 96,96,64 --coils 8 --sampling poisson --accel 4 --noise 0.002 \
	--oversampling 1 --out "$work/p.h5" >"$work/phantom.log" 2>&1; then
	bad "phantom: $(tail -1 "$work/phantom.log")"
	r5_finish
fi
for maps in 1 2; do
	if ! "$R5" recon "$work/p.h5" --backend cpu "${common[@]}" --maps $maps --out "$work/cpu$maps.cfl" \
		>"$work/cpu$maps.log" 2>&1; then
		bad "cpu reference (maps $maps): $(tail -1 "$work/cpu$maps.log")"
		r5_finish
	fi
done

# run NAME CAP(MiB, - none) MAPS ARGS...: recon on cpu-device into $work/NAME.cfl, log $work/NAME.log
run() {
	local name=$1 cap=$2 maps=$3
	shift 3
	if [ "$cap" = - ]; then
		"$R5" recon "$work/p.h5" --backend cpu-device "${common[@]}" --maps "$maps" "$@" --out "$work/$name.cfl" \
			>"$work/$name.log" 2>&1
	else
		R5_CPU_DEVICE_MIB=$cap "$R5" recon "$work/p.h5" --backend cpu-device "${common[@]}" --maps "$maps" "$@" \
			--out "$work/$name.cfl" >"$work/$name.log" 2>&1
	fi
}
# same NAME MAPS WHAT: the image equals the cpu one bit for bit
same() {
	local line
	line=$("$R5" compare "$work/cpu$2.cfl" "$work/$1.cfl" 2>&1)
	if echo "$line" | grep -q "psnr=inf"; then ok "$3: identical to the cpu image"; else bad "$3: $line"; fi
}
slabs() { grep -o "streamed, [0-9]* slab(s) of [0-9]* readout position(s)" "$work/$1.log"; }

for cap in 40 48 64; do
	if run "auto$cap" "$cap" 1 && [ -n "$(slabs "auto$cap")" ]; then
		same "auto$cap" 1 "cap $cap MiB, stream auto: $(slabs "auto$cap")"
	else
		bad "cap $cap MiB, stream auto: not streamed or failed: $(grep -v ' INFO ' "$work/auto$cap.log" | tail -2)"
	fi
done
if run forced 48 1 --param stream=1 --param slab=7 && [ -n "$(slabs forced)" ]; then
	same forced 1 "cap 48 MiB, stream=1 slab=7: $(slabs forced)"
else
	bad "stream=1 slab=7: $(grep -v ' INFO ' "$work/forced.log" | tail -2)"
fi
if run maps2 64 2 --param stream=1 && [ -n "$(slabs maps2)" ]; then
	same maps2 2 "two map sets, cap 64 MiB, stream=1: $(slabs maps2)"
else
	bad "two map sets streamed: $(grep -v ' INFO ' "$work/maps2.log" | tail -2)"
fi
if run unstreamed - 1 && [ -z "$(slabs unstreamed)" ]; then
	same unstreamed 1 "no cap, stream auto: not streamed"
else
	bad "no cap: streamed or failed: $(tail -2 "$work/unstreamed.log")"
fi
# the chain before the solve (coil_compress.h: streamed coil mixing and geometric compression)
chain=(--pipeline cs --kernel 4 --param decouple=1 --iters 5 --coils-virtual 6)
for mode in geometric svd; do
	if ! "$R5" recon "$work/p.h5" --backend cpu "${chain[@]}" --param cc_mode=$mode --out "$work/cpu-$mode.cfl" \
		>"$work/cpu-$mode.log" 2>&1; then
		bad "cpu, prewhitened and compressed ($mode): $(tail -1 "$work/cpu-$mode.log")"
		continue
	fi
	if R5_CPU_DEVICE_MIB=48 "$R5" recon "$work/p.h5" --backend cpu-device "${chain[@]}" --param cc_mode=$mode \
		--out "$work/chain-$mode.cfl" >"$work/chain-$mode.log" 2>&1 && [ -n "$(slabs "chain-$mode")" ] &&
		grep -q "prewhitening" "$work/chain-$mode.log"; then
		line=$("$R5" compare "$work/cpu-$mode.cfl" "$work/chain-$mode.cfl" 2>&1)
		if echo "$line" | grep -q "psnr=inf"; then
			ok "prewhitened, $mode compression to 6 coils, cap 48 MiB: $(slabs "chain-$mode"): identical to the cpu image"
		else
			bad "prewhitened, $mode compression, cap 48 MiB: $line"
		fi
	else
		bad "prewhitened, $mode compression, cap 48 MiB: $(grep -v ' INFO ' "$work/chain-$mode.log" | tail -2)"
	fi
done
expect_error "stream=0 under a 48 MiB cap" "out of device memory" \
	env R5_CPU_DEVICE_MIB=48 "$R5" recon "$work/p.h5" --backend cpu-device "${common[@]}" --param stream=0 \
	--out "$work/x.cfl"
expect_error "stream=1 without decouple" "stream=1 needs decouple=1" \
	"$R5" recon "$work/p.h5" --backend cpu-device --pipeline cs --param stream=1 --out "$work/x.cfl"
expect_error "stream=2" "stream" \
	"$R5" recon "$work/p.h5" --backend cpu-device "${common[@]}" --param stream=2 --out "$work/x.cfl"
r5_finish
