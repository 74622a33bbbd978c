/* The named pipelines behind r5_recon_run (pipeline.h), and helpers they share.
 *
 * Each pipeline gets a scan (after prewhitening and coil compression, which r5_recon_run does
 * first) and an image set with header, geometry and FOV already filled; it fills set->images
 * (host, [x, y, z, 1, 1, contrast, ..., repetition(10), phase(11), ..., slice(13)], complex, on
 * the recon matrix), set->gfactor when asked, and its stage timings. */
#ifndef R5_PIPELINE_PIPELINES_H
#define R5_PIPELINE_PIPELINES_H

#include "pipeline.h"

r5_status r5_pipeline_cartesian(r5_ctx *ctx, const r5_scan *scan, const r5_recon_params *p,
				const r5_progress *progress, r5_image_set *set);
r5_status r5_pipeline_sense(r5_ctx *ctx, const r5_scan *scan, const r5_recon_params *p,
			    const r5_progress *progress, r5_image_set *set);
r5_status r5_pipeline_grappa(r5_ctx *ctx, const r5_scan *scan, const r5_recon_params *p,
			     const r5_progress *progress, r5_image_set *set);

/* From images on the k-space grid (work residency, [x, y, z, 1 or maps, ...] as the scan's
 * k-space after oversampling removal) to the recon matrix and FOV of the header: crops the
 * image to the recon FOV, then resizes by zero-padding/cropping k-space when the recon matrix
 * differs, and copies the result to the host into *out. Sums dimension R5_DIM_AVG (averages)
 * into their mean. */
r5_status r5_pipeline_to_recon_matrix(r5_ctx *ctx, const r5_scan *scan, const r5_array *images, r5_array **out);

/* Seconds on a monotonic clock, after synchronising the context's device. */
double r5_pipeline_clock(r5_ctx *ctx);

#endif
