/* Image quality against a reference (phantom ground truth, a fully sampled reconstruction):
 *   nrmse = ||a·|img| − |ref||| / |||ref|||           (a = 1, or least squares with scaling)
 *   psnr  = 20 log10(max |ref| / rmse)                (dB)
 *   ssim  = mean structural similarity (Wang et al., IEEE TIP 13:600, 2004): 11x11 Gaussian
 *           window (sigma 1.5), K1 = 0.01, K2 = 0.03, L = max |ref|, computed on each 2D x-y
 *           plane and averaged over all planes.
 * Both arrays are host arrays of the same shape; magnitudes are compared.
 *
 * Inside a 0/1 mask M (r5_quality_compare_masked; the vessel-wall phantom's "wall_mask"):
 *   nrmse = sqrt(sum_M (|ref| - a |img|)^2 / sum_M |ref|^2), a from the WHOLE image, so a
 *           uniform intensity loss inside the mask counts as error;
 *   psnr  = 20 log10(max |ref| / rmse_M), the peak of the whole reference;
 *   ssim  = the SSIM map of the whole x-y planes (the window, constants and L above) averaged
 *           over the voxels of M.
 * An all-ones mask gives the unmasked figures; one code path computes both.
 *
 * Frame by frame (r5_quality_compare_series; a dynamic phantom's truth, a GRASP or real-time
 * series): frames run along R5_DIM_TIME (dim 10, ISMRMRD's repetition). Each frame of the image
 * is compared with the same frame of the reference by r5_quality_compare_masked (the least-
 * squares scale, when asked, is each frame's own), and the means over frames of each figure
 * are reported beside the per-frame ones. When the reference has T > 1 frames and the image
 * one (a reconstruction of all the spokes together), the reference is the time average of the
 * reference's magnitudes: what a single image of the whole scan can at best show. Every other
 * frame-count mismatch is an error. */
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

/* r5_quality_compare_squeezed inside a mask (the definitions above): mask is a host array of
 * 0s and 1s (imaginary parts 0) whose squeezed shape is ref's, with at least one 1; NULL means
 * every voxel. *mask_voxels (may be NULL) receives the number of voxels compared. */
r5_status r5_quality_compare_masked(const r5_array *ref, const r5_array *img, const r5_array *mask,
				    int least_squares_scale, int leading_block, r5_quality *q, long *mask_voxels);

/* The mask checks of r5_quality_compare_masked alone, so that a caller can name the mask's
 * source in the error (R5_EINVAL: shape, a value not 0 or 1, no 1 at all). */
r5_status r5_quality_check_mask(const r5_array *ref, const r5_array *mask, long *mask_voxels);

/* Figures frame by frame (the definitions above). */
typedef struct r5_quality_series {
	long n_frames;       /* frames compared: the image's count along R5_DIM_TIME */
	int truth_averaged;  /* 1: one image against a reference of several frames, averaged */
	r5_quality mean;     /* each figure's mean over the frames (scale too) */
	r5_quality *frames;  /* n_frames entries, owned: r5_quality_series_free */
} r5_quality_series;

/* ref and img: host arrays whose dims above R5_DIM_TIME are 1, with equal frame counts
 * along R5_DIM_TIME, or img with one frame (the time average above); within a frame, shapes
 * as r5_quality_compare_masked takes them (mask: one frame's shape, or NULL; leading_block).
 * On error *out holds nothing to free. */
r5_status r5_quality_compare_series(const r5_array *ref, const r5_array *img, const r5_array *mask,
				    int least_squares_scale, int leading_block, r5_quality_series *out);

void r5_quality_series_free(r5_quality_series *series);

#endif
