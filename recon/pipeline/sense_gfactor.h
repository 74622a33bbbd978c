/* Analytic SENSE g-factor (Pruessmann et al., "SENSE: sensitivity encoding for fast MRI",
 * MRM 42:952-962, 1999, eq. 23) for Cartesian uniform undersampling with ESPIRiT maps:
 * with Ry x Rz uniform sampling each image pixel folds onto R = Ry Rz others spaced by
 * (ny/Ry, nz/Rz) (rounded to the nearest pixel when R does not divide n); per group, E is the C x R matrix of the (first) map set's sensitivities and
 *     g_p = sqrt( [(E^H E)^-1]_pp [E^H E]_pp ),
 * assuming prewhitened (identity covariance) channels. Pixels whose map is zero (ESPIRiT
 * crop) are not unknowns and get g = 0, as do groups the coils cannot separate (E^H E singular). The calibration lines are ignored (the formula is
 * for the pure uniform grid), so g is the worst case of the actual, slightly denser sampling.
 * Non-uniform sampling (Poisson disc) is not supported: r5_grappa_sampling rejects it. */
#ifndef R5_PIPELINE_SENSE_GFACTOR_H
#define R5_PIPELINE_SENSE_GFACTOR_H

#include "../core/array.h"
#include "../core/progress.h"

/* maps: work or host [nx, ny, nz, C, M] (map set 0 used); accel: Ry, Rz (Ry Rz <= 64); gfactor: work [nx, ny, nz] (complex, real part = g). */
r5_status r5_sense_gfactor(r5_ctx *ctx, const r5_array *maps, const int accel[2], r5_array *gfactor);
/* The same in chunks of pixels with a check of progress (NULL: never stop; stage "sense
 * g-factor") after each: 128^3 pixels of 32 coils take ~2 s on 2 cores. */
r5_status r5_sense_gfactor_checked(r5_ctx *ctx, const r5_array *maps, const int accel[2], r5_array *gfactor,
				   const r5_progress *progress);

#endif
