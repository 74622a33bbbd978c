/* The GRAPPA pipeline: per frame (contrast, repetition, slice, ...) find the calibration block
 * and the undersampling grid from the sampling mask, calibrate kernels (recon/calib/grappa.h),
 * fill the missing lines by image-space coil mixing, put the acquired imaging lines back
 * (calibration lines that were also imaging lines count as data; calibration-only lines do
 * not), combine the coils (rss | adaptive) and go to the recon matrix. With p->gfactor the
 * analytic g-factor (Breuer 2009) is computed with combination weights from the calibration
 * block's low-resolution coil images (p = x_low / rss(x_low)). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "coil_prep.h"
#include "../calib/combine.h"
#include "../calib/grappa.h"
#include "../core/fft.h"
#include "../core/log.h"
#include "pipelines.h"

struct grappa_frame {
	long n[3], n_coils, frame;
	const unsigned char *sampled, *calib, *imaging; /* this frame's masks (ny x nz) */
	long calib_block[3];
	int accel[2], offset[2];
	double t_calibrate, t_apply, t_combine;
	const r5_progress *progress; /* this frame's share of the run's hook (NULL: none) */
	long n_done, n_large_residual; /* frames reconstructed, of them with a large calibration residual */
	double max_residual;
};

static unsigned long grid_flags(const long n[3])
{
	unsigned long flags = 0;
	for (int d = 0; d < 3; d++)
		if (n[d] > 1)
			flags |= R5_FLAG(d);
	return flags;
}

/* Host mask [1, ny, nz] as a work array: which(y, z) in {0, 1}. */
enum mask_kind { MASK_SOURCES, MASK_KEEP, MASK_CALIB };

static int mask_value(const struct grappa_frame *f, enum mask_kind kind, long y, long z)
{
	long i = y + f->n[1] * z;
	if (kind == MASK_CALIB) {
		long y0 = f->n[1] / 2 - f->calib_block[1] / 2, z0 = f->n[2] / 2 - f->calib_block[2] / 2;
		return y >= y0 && y < y0 + f->calib_block[1] && z >= z0 && z < z0 + f->calib_block[2];
	}
	if (!f->sampled[i])
		return 0;
	if (kind == MASK_SOURCES)
		return (y - f->offset[0]) % f->accel[0] == 0 && (z - f->offset[1]) % f->accel[1] == 0;
	/* keep acquired imaging data; a calibration-only line is not image data */
	return !(f->calib && f->calib[i]) || !f->imaging || f->imaging[i];
}

static r5_status make_mask(r5_ctx *ctx, const struct grappa_frame *f, enum mask_kind kind, r5_array **out)
{
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[1] = f->n[1];
	dims[2] = f->n[2];
	r5_array *host = NULL;
	R5_TRY(r5_array_alloc_host(dims, &host));
	for (long z = 0; z < f->n[2]; z++)
		for (long y = 0; y < f->n[1]; y++)
			host->data[y + f->n[1] * z] = (float)mask_value(f, kind, y, z);
	r5_status s = r5_array_to_work(ctx, host, out);
	r5_array_free(host);
	return s;
}

/* The frame's (i)FFT over the grid, by groups of coils with a stop check after each (reported
 * at `fraction` of the frame). */
static r5_status frame_fft(r5_ctx *ctx, const struct grappa_frame *f, int inverse, r5_array *out, const r5_array *in,
			   double fraction)
{
	return r5_pipeline_fft_checked(ctx, grid_flags(f->n), inverse, out, in, f->progress, "grappa fft", fraction);
}

/* out = ifft(kspace * mask) */
static r5_status masked_images(r5_ctx *ctx, const struct grappa_frame *f, const r5_array *kspace,
			       enum mask_kind kind, r5_array *out)
{
	r5_array *mask = NULL;
	R5_TRY(make_mask(ctx, f, kind, &mask));
	r5_status s = r5_zmul(ctx, out, kspace, mask, 0);
	r5_array_free(mask);
	if (s == R5_OK)
		s = frame_fft(ctx, f, 1, out, out, 0.3);
	return s;
}

/* Combination weights for the g-factor: low-resolution coil images / their rss. */
static r5_status combination_weights(r5_ctx *ctx, const struct grappa_frame *f, const r5_array *kspace,
				     r5_array *weights)
{
	long dims[R5_DIMS];
	r5_dims_copy(dims, weights->dims);
	dims[R5_DIM_COIL] = 1;
	r5_array *norm = NULL;
	R5_TRY(masked_images(ctx, f, kspace, MASK_CALIB, weights));
	R5_TRY(r5_array_alloc_work(ctx, dims, &norm));
	r5_status s = r5_zrss(ctx, norm, weights, R5_DIM_COIL);
	if (s == R5_OK)
		s = r5_zunary(ctx, R5_UNARY_RECIP, norm, norm);
	if (s == R5_OK)
		s = r5_zmul(ctx, weights, weights, norm, 0);
	r5_array_free(norm);
	return s;
}

/* filled = grappa(kspace) with the acquired imaging lines put back, as coil images. */
static r5_status fill_and_restore(r5_ctx *ctx, const struct grappa_frame *f, const r5_array *kspace,
				  r5_array *coil_images, r5_array *scratch)
{
	r5_array *keep = NULL;
	R5_TRY(make_mask(ctx, f, MASK_KEEP, &keep));
	r5_status s = frame_fft(ctx, f, 0, coil_images, coil_images, 0.9);
	/* k = k - k keep + acquired keep */
	if (s == R5_OK)
		s = r5_zmul(ctx, scratch, coil_images, keep, 0);
	if (s == R5_OK)
		s = r5_zaxpy(ctx, coil_images, -1.0f, scratch);
	if (s == R5_OK)
		s = r5_zmul(ctx, coil_images, kspace, keep, R5_ZMUL_ACCUM);
	r5_array_free(keep);
	if (s == R5_OK)
		s = r5_progress_check(f->progress, "grappa restore", 0.95);
	if (s == R5_OK)
		s = frame_fft(ctx, f, 1, coil_images, coil_images, 0.95);
	return s;
}

static r5_status frame_calibrate(r5_ctx *ctx, const r5_scan *scan, const r5_recon_params *p, struct grappa_frame *f,
				 r5_grappa_kernel **kernel)
{
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	for (int d = 0; d < 3; d++)
		dims[d] = f->n[d];
	dims[R5_DIM_COIL] = f->n_coils;
	r5_array *host = NULL;
	R5_TRY(r5_array_view(R5_HOST, NULL, dims, scan->kspace->data + f->frame * r5_dims_size(dims), &host));
	/* GRAPPA's own parameters (r5_grappa_params_defaults = r5_grappa_defaults: kernel width 0,
	 * chosen by geometry) */
	r5_grappa_conf conf = r5_grappa_defaults;
	conf.kernel_x = p->grappa.kernel_size;
	conf.lambda = p->grappa.lambda;
	r5_progress_part part;
	conf.progress = r5_progress_part_init(&part, f->progress, 0, 0.3, NULL);
	double t = r5_pipeline_clock(ctx);
	r5_status s = r5_grappa_calibrate(ctx, host, f->calib_block, f->accel, &conf, kernel);
	f->t_calibrate += r5_pipeline_clock(ctx) - t;
	r5_array_free(host);
	if (s == R5_OK && (*kernel)->residual > 0.5) {
		r5_debug("GRAPPA frame %ld: calibration residual %.2f is large (calibration region %ldx%ld)", f->frame,
			 (*kernel)->residual, f->calib_block[1], f->calib_block[2]);
		f->n_large_residual++;
		f->max_residual = (*kernel)->residual > f->max_residual ? (*kernel)->residual : f->max_residual;
	}
	return s;
}

/* Coil images of one frame: GRAPPA-filled (or the plain inverse FFT when nothing is missing). */
static r5_status frame_images(r5_ctx *ctx, const r5_scan *scan, const r5_recon_params *p, struct grappa_frame *f,
			      const r5_array *kspace, r5_array *coil_images, r5_array *scratch, r5_array *gfactor)
{
	if (f->accel[0] == 1 && f->accel[1] == 1) {
		r5_status s = frame_fft(ctx, f, 1, coil_images, kspace, 0.5);
		return s == R5_OK && gfactor ? r5_zfill(ctx, gfactor, 1.0f) : s;
	}
	r5_grappa_kernel *kernel = NULL;
	r5_progress_part part;
	R5_TRY(frame_calibrate(ctx, scan, p, f, &kernel));
	double t = r5_pipeline_clock(ctx);
	r5_status s = masked_images(ctx, f, kspace, MASK_SOURCES, scratch);
	r5_array *weights = NULL;
	if (s == R5_OK && gfactor)
		s = r5_array_alloc_work(ctx, kspace->dims, &weights);
	if (s == R5_OK && gfactor)
		s = combination_weights(ctx, f, kspace, weights);
	if (s == R5_OK)
		s = r5_grappa_apply(ctx, kernel, scratch, coil_images, weights, gfactor,
				    r5_progress_part_init(&part, f->progress, 0.3, 0.9, NULL));
	r5_array_free(weights);
	r5_grappa_kernel_free(kernel);
	if (s == R5_OK)
		s = fill_and_restore(ctx, f, kspace, coil_images, scratch);
	f->t_apply += r5_pipeline_clock(ctx) - t;
	return s;
}

/* Calibration block and sampling grid of frame f, from its masks. */
static r5_status frame_sampling(const r5_scan *scan, const r5_recon_params *p, struct grappa_frame *f)
{
	long plane = f->n[1] * f->n[2];
	f->sampled = scan->sampled + plane * f->frame;
	f->calib = scan->calib ? scan->calib + plane * f->frame : NULL;
	f->imaging = scan->imaging ? scan->imaging + plane * f->frame : NULL;
	long yz[2];
	R5_TRY(r5_calib_region_find_mask(f->sampled, f->n[1], f->n[2], yz));
	/* the sampling grid from the lines outside the whole fully sampled block; calib_size caps
	 * only the block the kernels are calibrated on */
	R5_TRY(r5_grappa_sampling(f->sampled, f->n[1], f->n[2], yz, scan->header.accel, f->accel, f->offset));
	for (int d = 0; d < 2; d++)
		if (p->calib_size > 0 && yz[d] > p->calib_size)
			yz[d] = p->calib_size;
	f->calib_block[0] = f->n[0];
	f->calib_block[1] = yz[0];
	f->calib_block[2] = yz[1];
	return R5_OK;
}

struct grappa_run {
	r5_array *kspace, *coil_images, *scratch, *combined, *gfactor;
	long frame_size, image_size, n_frames, n_data;
};

static r5_status run_frame(r5_ctx *ctx, const r5_scan *scan, const r5_recon_params *p, struct grappa_run *r,
			   struct grappa_frame *f)
{
	r5_array *kspace = NULL, *combined = NULL, *gfactor = NULL;
	r5_progress_part part;
	long dims[R5_DIMS];
	r5_dims_copy(dims, r->coil_images->dims);
	r5_status s = r5_array_view(r->kspace->where, ctx, dims, r->kspace->data + f->frame * r->frame_size, &kspace);
	dims[R5_DIM_COIL] = 1;
	if (s == R5_OK)
		s = r5_array_view(r->combined->where, ctx, dims, r->combined->data + f->frame * r->image_size, &combined);
	if (s == R5_OK && r->gfactor)
		s = r5_array_view(r->gfactor->where, ctx, dims, r->gfactor->data + f->frame * r->image_size, &gfactor);
	if (s == R5_OK)
		s = frame_sampling(scan, p, f);
	if (s == R5_OK && f->n_done == 0)
		r5_info("GRAPPA: R=%dx%d, calibration block %ldx%ld, %ld coils, %ld of %ld frame(s) with data", f->accel[0],
			f->accel[1], f->calib_block[1], f->calib_block[2], f->n_coils, r->n_data, r->n_frames);
	if (s == R5_OK)
		s = frame_images(ctx, scan, p, f, kspace, r->coil_images, r->scratch, gfactor);
	double t = r5_pipeline_clock(ctx);
	if (s == R5_OK)
		s = r5_coil_combine(ctx, p->grappa.combine, r->coil_images, combined,
				    r5_progress_part_init(&part, f->progress, 0.95, 1, NULL));
	f->t_combine += r5_pipeline_clock(ctx) - t;
	f->n_done += s == R5_OK;
	r5_array_free(kspace);
	r5_array_free(combined);
	r5_array_free(gfactor);
	return s == R5_OK ? R5_OK : r5_error_context(s, "GRAPPA frame %ld", f->frame);
}

static r5_status run_alloc(r5_ctx *ctx, const r5_scan *scan, const r5_recon_params *p, struct grappa_run *r)
{
	const long *kd = scan->kspace->dims;
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	for (int d = 0; d < 4; d++)
		dims[d] = kd[d];
	r->frame_size = r5_dims_size(dims);
	r->image_size = kd[0] * kd[1] * kd[2];
	r->n_frames = r5_array_size(scan->kspace) / r->frame_size;
	R5_TRY(r5_array_alloc_work(ctx, dims, &r->coil_images));
	R5_TRY(r5_array_alloc_work(ctx, dims, &r->scratch));
	r5_dims_copy(dims, kd);
	dims[R5_DIM_COIL] = 1;
	/* zeros: frames without data are not reconstructed */
	R5_TRY(r5_array_zeros(ctx, r5_ctx_residency(ctx), dims, &r->combined));
	if (p->gfactor)
		R5_TRY(r5_array_zeros(ctx, r5_ctx_residency(ctx), dims, &r->gfactor));
	r->n_data = r5_pipeline_frames_with_data(scan);
	return R5_OK;
}

static void run_free(struct grappa_run *r)
{
	r5_array_free(r->kspace);
	r5_array_free(r->coil_images);
	r5_array_free(r->scratch);
	r5_array_free(r->combined);
	r5_array_free(r->gfactor);
}

static r5_status check_scan(const r5_scan *scan)
{
	if (!scan || !scan->kspace || !scan->sampled || !r5_array_is_contiguous(scan->kspace))
		return r5_set_error(R5_EINVAL, "GRAPPA: scan has no contiguous k-space or no sampling mask");
	for (int d = 0; d < R5_DIMS; d++) {
		long want = d == R5_DIM_X || d == R5_DIM_COIL ? 1 : scan->kspace->dims[d];
		if (scan->mask_dims[d] != want)
			return r5_set_error(R5_EINVAL, "GRAPPA: sampling mask dim %d is %ld, k-space has %ld", d,
					    scan->mask_dims[d], scan->kspace->dims[d]);
	}
	if (scan->kspace->dims[R5_DIM_MAP] != 1)
		return r5_set_error(R5_EINVAL, "GRAPPA: k-space has %ld maps", scan->kspace->dims[R5_DIM_MAP]);
	return R5_OK;
}

r5_status r5_pipeline_grappa(r5_ctx *ctx, const r5_scan *scan, const r5_recon_params *p, const r5_progress *progress,
			     r5_image_set *set)
{
	R5_TRY(check_scan(scan));
	struct grappa_run r = {0};
	struct grappa_frame f;
	memset(&f, 0, sizeof f);
	for (int d = 0; d < 3; d++)
		f.n[d] = scan->kspace->dims[d];
	f.n_coils = scan->kspace->dims[R5_DIM_COIL];
	double t = r5_pipeline_clock(ctx);
	r5_status s = r5_array_to_work(ctx, scan->kspace, &r.kspace);
	if (s == R5_OK)
		s = run_alloc(ctx, scan, p, &r);
	r5_image_set_add_stage(set, "upload", r5_pipeline_clock(ctx) - t);
	for (long i = 0; s == R5_OK && i < r.n_frames; i++) {
		if (!r5_pipeline_frame_has_data(scan, i))
			continue;
		double lo = 0.1 + 0.8 * (double)f.n_done / (double)r.n_data;
		r5_progress_part part;
		f.progress = r5_progress_part_init(&part, progress, lo, lo + 0.8 / (double)r.n_data, "grappa");
		s = r5_progress_check(f.progress, "grappa", 0);
		f.frame = i;
		if (s == R5_OK)
			s = run_frame(ctx, scan, p, &r, &f);
	}
	if (s == R5_OK && f.n_large_residual)
		r5_warn("GRAPPA: %ld of %ld frame(s) have a large calibration residual (up to %.2f; calibration region "
			"%ldx%ld)", f.n_large_residual, f.n_done, f.max_residual, f.calib_block[1], f.calib_block[2]);
	if (s == R5_OK && r.n_data < r.n_frames)
		r5_info("GRAPPA: %ld frame(s) without data skipped", r.n_frames - r.n_data);
	r5_image_set_add_stage(set, "calibrate", f.t_calibrate);
	r5_image_set_add_stage(set, "grappa", f.t_apply);
	r5_image_set_add_stage(set, "combine", f.t_combine);
	if (s == R5_OK)
		s = r5_progress_check(progress, "resize", 0.9);
	t = r5_pipeline_clock(ctx);
	if (s == R5_OK)
		s = r5_pipeline_to_recon_matrix(ctx, scan, r.combined, progress, &set->images);
	if (s == R5_OK && r.gfactor)
		s = r5_pipeline_to_recon_matrix(ctx, scan, r.gfactor, progress, &set->gfactor);
	r5_image_set_add_stage(set, "resize", r5_pipeline_clock(ctx) - t);
	run_free(&r);
	return s;
}
