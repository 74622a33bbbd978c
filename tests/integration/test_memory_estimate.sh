#!/usr/bin/env bash
# r5_recon_memory_estimate against the memory a reconstruction really holds: `recon5t recon
# --memory-report` prints the estimate and the measured resident peak (VmHWM minus VmRSS before
# the scan is read, see service/cli/cmd_recon.c) for phantoms with readout oversampling and a
# noise scan, one per pipeline and shape. The estimate must never be under the measured peak
# (the server reserves it from its budget before the job runs) and not wastefully over it:
#   measured <= estimate <= 2.5 x measured + 16 MiB
# Prints a table of estimate vs measured. About 40 s on 2 cores.
. "$(dirname "$0")/lib.sh"

if [ ! -r /proc/self/status ]; then
	echo "SKIP: /proc/self/status is not readable"
	exit 77
fi
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

# 2D: 192^2 (readout x2), 16 coils; 3D: 64^3 and 96^3, 8 coils; all with a noise scan
phantoms_ok=1
"$R5" phantom --kind shepp-logan --matrix 192 --coils 16 --noise 0.001 --out "$work/full2d.h5" >/dev/null &&
	"$R5" phantom --kind shepp-logan --matrix 192 --coils 16 --sampling uniform --accel 3 --calib 24 \
		--noise 0.001 --out "$work/r3.h5" >/dev/null &&
	"$R5" phantom --kind shepp-logan-3d --matrix 64,64,64 --coils 8 --sampling uniform --accel 2,2 --calib 24 \
		--noise 0.001 --out "$work/r22_64.h5" >/dev/null &&
	"$R5" phantom --kind shepp-logan-3d --matrix 96,96,96 --coils 8 --sampling uniform --accel 2,2 --calib 24 \
		--noise 0.001 --out "$work/r22_96.h5" >/dev/null || phantoms_ok=0
[ $phantoms_ok -eq 1 ] && ok "phantoms written" || bad "phantom generation failed"

memory_table_start 34
# case NAME SCAN RECON-OPTIONS...
case_() {
	local name=$1 scan=$2
	shift 2
	memory_case "$name" "$scan" "$name.cfl" "$@"
}

case_ cartesian-2d full2d.h5 --pipeline cartesian
case_ cartesian-2d-adaptive full2d.h5 --pipeline cartesian --combine adaptive
case_ auto-2d-r3 r3.h5 --pipeline auto
case_ sense-2d-r3 r3.h5 --pipeline sense
case_ sense-2d-r3-maps2 r3.h5 --pipeline sense --maps 2
case_ sense-2d-r3-cc8-gfactor r3.h5 --pipeline sense --coils-virtual 8 --gfactor "$work/g1.cfl"
case_ grappa-2d-r3 r3.h5 --pipeline grappa
case_ grappa-2d-r3-gfactor r3.h5 --pipeline grappa --gfactor "$work/g2.cfl"
case_ sense-3d-64-r2x2 r22_64.h5 --pipeline sense
case_ grappa-3d-64-r2x2-cc6 r22_64.h5 --pipeline grappa --coils-virtual 6
case_ grappa-3d-96-r2x2 r22_96.h5 --pipeline grappa

cat "$memory_table"
r5_finish
