/* The Cartesian pipeline: centred inverse FFT over x, y (and z for 3D), coil combination (rss
 * or adaptive Walsh), recon matrix. Unsampled points are zeros, so a partial-Fourier scan is
 * reconstructed zero-filled and an undersampled one aliases (use sense or grappa for those). */
#include "../calib/combine.h"
#include "../core/fft.h"
#include "pipelines.h"

r5_status r5_pipeline_cartesian(r5_ctx *ctx, const r5_scan *scan, const r5_recon_params *p,
				const r5_progress *progress, r5_image_set *set)
{
	r5_array *kspace = NULL, *combined = NULL;
	double t = r5_pipeline_clock(ctx);
	r5_status s = r5_array_to_work(ctx, scan->kspace, &kspace);
	r5_image_set_add_stage(set, "upload", r5_pipeline_clock(ctx) - t);
	if (s == R5_OK)
		s = r5_progress_check(progress, "fft", 0.2);
	t = r5_pipeline_clock(ctx);
	unsigned long flags = R5_FLAG(R5_DIM_X) | R5_FLAG(R5_DIM_Y) | (kspace && kspace->dims[R5_DIM_Z] > 1 ? R5_FLAG(R5_DIM_Z) : 0);
	if (s == R5_OK)
		s = r5_ifft(ctx, flags, kspace, kspace);
	r5_image_set_add_stage(set, "fft", r5_pipeline_clock(ctx) - t);
	if (s == R5_OK)
		s = r5_progress_check(progress, "combine", 0.6);
	t = r5_pipeline_clock(ctx);
	if (s == R5_OK) {
		long dims[R5_DIMS];
		r5_dims_copy(dims, kspace->dims);
		dims[R5_DIM_COIL] = 1;
		s = r5_array_alloc_work(ctx, dims, &combined);
	}
	if (s == R5_OK)
		s = r5_coil_combine(ctx, p->combine, kspace, combined);
	r5_image_set_add_stage(set, "combine", r5_pipeline_clock(ctx) - t);
	r5_array_free(kspace);
	if (s == R5_OK)
		s = r5_progress_check(progress, "resize", 0.9);
	t = r5_pipeline_clock(ctx);
	if (s == R5_OK)
		s = r5_pipeline_to_recon_matrix(ctx, scan, combined, &set->images);
	r5_image_set_add_stage(set, "resize", r5_pipeline_clock(ctx) - t);
	r5_array_free(combined);
	return s;
}
