/* Coil preparation on an r5_scan, the step r5_recon_run takes before calibration: noise
 * prewhitening with the scan's noise scan and bandwidth (recon/calib/noise.h has the physics and
 * the array-level pieces) and coil compression (recon/calib/coil_compress.h), plus finding the
 * calibration region of a scan's sampling mask. This is pipeline work: recon/calib knows arrays,
 * not scans, and includes neither recon/io nor ISMRMRD. */
#ifndef R5_PIPELINE_COIL_PREP_H
#define R5_PIPELINE_COIL_PREP_H

#include <complex.h>

#include "../calib/calib_region.h"
#include "../calib/coil_compress.h"
#include "../calib/noise.h"
#include "../io/scan.h"

/* s above (1 when a dwell time is unknown). */
double r5_noise_bandwidth_scale(const r5_scan *scan);

/* The data whitener s L^-1 (column-major, C x C, C = the k-space's channels) and the noise
 * whitener L^-1 (optional). R5_ENOTFOUND when the scan has no noise scan; R5_EINVAL when the
 * noise has another channel count or fewer samples than channels, or Psi is singular; the
 * hook's status when progress (NULL: never stop) says stop. */
r5_status r5_noise_whitening_matrices(r5_ctx *ctx, const r5_scan *scan, double complex *w_data,
				      double complex *w_noise, const r5_progress *progress);

/* Whitens kspace_inout [x, y, z, coil, ...] (host or work, C = the scan's channels) in place with
 * the scan's noise; whitening_out (optional): a new host [C, C] array holding W_data column-major
 * (for g-factor and noise maps). No noise scan: logs "prewhitening skipped: no noise scan" and
 * returns R5_OK with kspace untouched (*whitening_out NULL). progress (NULL: never stop) is
 * checked between blocks of the covariance and of the mixing (stage "prewhitening"); when it
 * says stop, kspace_inout is untouched and its status is returned. */
r5_status r5_noise_prewhiten(r5_ctx *ctx, const r5_scan *scan, r5_array *kspace_inout, r5_array **whitening_out,
			     const r5_progress *progress);

/* calib[0] = the readout length (always fully sampled), calib[1], calib[2] = the ky and kz widths
 * of the largest (by area) fully-sampled centred block, looked at in the first frame of the mask
 * (contrast, slice, ... index 0). A block of width w covers rows c - w/2 .. c - w/2 + w - 1 with
 * c = n/2. R5_EINVAL when the scan has no mask or the centre itself is not sampled. */
r5_status r5_calib_region_find(const r5_scan *scan, long calib[3]);

/* What r5_recon_run does before calibration: a shallow copy `work` of scan whose kspace (and
 * noise) are new arrays when prewhitening and/or compression happened. Seconds spent go to
 * seconds[0] (prewhitening) and seconds[1] (compression), -1 when that step did not run.
 * cc == NULL or (n_virtual 0 and energy 0): no compression. Free with r5_coils_release.
 * progress (NULL: never stop) is checked inside both steps (stages "prewhitening" and "coil
 * compression"; cc->progress is not used here). */
r5_status r5_coils_prepare(r5_ctx *ctx, const r5_scan *scan, int prewhiten, const r5_cc_conf *cc,
			   const r5_progress *progress, r5_scan *work, double seconds[2]);
/* Frees the arrays of work that are not the scan's own. */
void r5_coils_release(r5_scan *work, const r5_scan *scan);

#endif
