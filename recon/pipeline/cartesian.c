/* The Cartesian pipeline: centred inverse FFT over x, y (and z for 3D), coil combination (rss
 * or adaptive Walsh), recon matrix. Unsampled points are zeros, so a partial-Fourier scan is
 * reconstructed zero-filled and an undersampled one aliases (use sense or grappa for those).
 * Frame by frame (frames without data keep zero images), in coil groups with stop checks. */
#include "../calib/combine.h"
#include "../core/fft.h"
#include "../core/log.h"
#include "pipelines.h"

static r5_status frame_view(r5_ctx *ctx, r5_array *a, long frame, r5_array **out)
{
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	for (int d = 0; d < 4; d++)
		dims[d] = a->dims[d];
	return r5_array_view(a->where, a->ctx ? a->ctx : ctx, dims, a->data + frame * r5_dims_size(dims), out);
}

/* One frame: inverse FFT in place, then its coils combined; fractions lo..hi of the run. */
static r5_status cartesian_frame(r5_ctx *ctx, const r5_recon_params *p, const r5_progress *progress, r5_array *kspace,
				 r5_array *combined, long frame, double lo, double hi, double seconds[2])
{
	r5_array *k = NULL, *c = NULL;
	double mid = lo + 0.6 * (hi - lo), t = r5_pipeline_clock(ctx);
	unsigned long flags = R5_FLAG(R5_DIM_X) | R5_FLAG(R5_DIM_Y) | (kspace->dims[R5_DIM_Z] > 1 ? R5_FLAG(R5_DIM_Z) : 0);
	r5_status s = frame_view(ctx, kspace, frame, &k);
	if (s == R5_OK)
		s = frame_view(ctx, combined, frame, &c);
	if (s == R5_OK)
		s = r5_progress_check(progress, "fft", lo);
	if (s == R5_OK)
		s = r5_pipeline_fft_checked(ctx, flags, 1, k, k, progress, "fft", mid);
	seconds[0] += r5_pipeline_clock(ctx) - t;
	t = r5_pipeline_clock(ctx);
	r5_progress_part part;
	if (s == R5_OK)
		s = r5_progress_check(progress, "combine", mid);
	if (s == R5_OK)
		s = r5_coil_combine(ctx, p->cartesian.combine, k, c, r5_progress_part_init(&part, progress, mid, hi, "combine"));
	seconds[1] += r5_pipeline_clock(ctx) - t;
	r5_array_free(k);
	r5_array_free(c);
	return s;
}

r5_status r5_pipeline_cartesian(r5_ctx *ctx, const r5_scan *scan, const r5_recon_params *p,
				const r5_progress *progress, r5_image_set *set)
{
	r5_array *kspace = NULL, *combined = NULL;
	double t = r5_pipeline_clock(ctx), seconds[2] = {0, 0};
	r5_status s = r5_array_to_work(ctx, scan->kspace, &kspace);
	r5_image_set_add_stage(set, "upload", r5_pipeline_clock(ctx) - t);
	if (s == R5_OK)
		s = r5_progress_check(progress, "fft", 0.2);
	if (s == R5_OK) {
		long dims[R5_DIMS];
		r5_dims_copy(dims, kspace->dims);
		dims[R5_DIM_COIL] = 1;
		s = r5_array_zeros(ctx, r5_ctx_residency(ctx), dims, &combined);
	}
	long frame_size = kspace ? kspace->dims[0] * kspace->dims[1] * kspace->dims[2] * kspace->dims[3] : 1;
	long n_frames = kspace ? r5_array_size(kspace) / frame_size : 0, n_data = r5_pipeline_frames_with_data(scan), done = 0;
	for (long frame = 0; frame < n_frames && s == R5_OK; frame++) {
		if (!r5_pipeline_frame_has_data(scan, frame))
			continue;
		double lo = 0.2 + 0.7 * (double)done / (double)n_data, hi = 0.2 + 0.7 * (double)(done + 1) / (double)n_data;
		s = cartesian_frame(ctx, p, progress, kspace, combined, frame, lo, hi, seconds);
		done++;
	}
	if (s == R5_OK && done < n_frames)
		r5_info("cartesian: %ld frame(s) reconstructed, %ld without data skipped", done, n_frames - done);
	r5_image_set_add_stage(set, "fft", seconds[0]);
	r5_image_set_add_stage(set, "combine", seconds[1]);
	r5_array_free(kspace);
	if (s == R5_OK)
		s = r5_progress_check(progress, "resize", 0.9);
	t = r5_pipeline_clock(ctx);
	if (s == R5_OK)
		s = r5_pipeline_to_recon_matrix(ctx, scan, combined, progress, &set->images);
	r5_image_set_add_stage(set, "resize", r5_pipeline_clock(ctx) - t);
	r5_array_free(combined);
	return s;
}
