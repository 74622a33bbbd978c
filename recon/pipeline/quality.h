/* Image quality against a reference (phantom ground truth, a fully sampled reconstruction):
 *   nrmse = ||a·|img| − |ref||| / |||ref|||           (a = 1, or least squares with scaling)
 *   psnr  = 20 log10(max |ref| / rmse)                (dB)
 *   ssim  = mean structural similarity (Wang et al., IEEE TIP 13:600, 2004): 11x11 Gaussian
 *           window (sigma 1.5), K1 = 0.01, K2 = 0.03, L = max |ref|, computed on each 2D x-y
 *           plane and averaged over all planes.
 * Both arrays are host arrays of the same shape; magnitudes are compared. */
#ifndef R5_PIPELINE_QUALITY_H
#define R5_PIPELINE_QUALITY_H

#include "../core/array.h"

typedef struct r5_quality {
	double nrmse, psnr, ssim, scale;
} r5_quality;

r5_status r5_quality_compare(const r5_array *ref, const r5_array *img, int least_squares_scale, r5_quality *q);

/* The same after dropping size-1 dimensions from both shapes, so that layouts from different
 * tools line up (a BART [1 230 180] image against an ISMRMRD [230 180] one). With
 * leading_block, img may have further dimensions after ref's and its first ref-sized block is
 * compared (map 0 of two ESPIRiT map sets); otherwise the squeezed shapes must be equal. */
r5_status r5_quality_compare_squeezed(const r5_array *ref, const r5_array *img, int least_squares_scale,
				      int leading_block, r5_quality *q);

#endif
