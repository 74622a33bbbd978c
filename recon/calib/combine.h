/* Coil combination of coil images [x, y, z, coil, 1, ...] (work residency) into [x, y, z, 1, ...]:
 *   rss       sqrt(sum_c |x_c|^2), magnitude only
 *   adaptive  Walsh et al., MRM 43:682 (2000): per-region coil covariance R = sum x x^H over
 *             block x block pixel windows, its dominant eigenvector v (zheev_batched), and
 *             image = v^H x. Keeps phase; equals rss in magnitude where one coil pattern
 *             dominates, and has better SNR where noise is correlated. The eigenvector phase is
 *             referenced to the coil sum so that it varies smoothly between windows. */
#ifndef R5_CALIB_COMBINE_H
#define R5_CALIB_COMBINE_H

#include "../core/array.h"
#include "../core/progress.h"

/* progress (NULL: never stop): checked per volume, and for adaptive inside it (per coil of the
 * covariance, per chunk of the block eigenproblems), stage "coil combination". */
r5_status r5_coil_combine(r5_ctx *ctx, const char *method, const r5_array *coil_images, r5_array *out,
			  const r5_progress *progress);

#endif
