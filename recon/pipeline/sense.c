/* The SENSE pipeline: ESPIRiT maps (Uecker et al., MRM 71:990, 2014) from the calibration
 * region, then CG-SENSE (Pruessmann et al., MRM 46:638, 2001) on the normal equations
 * (E^H E + lambda I) x = E^H y with E = M F_yz S.
 *
 * The readout is always fully sampled on a Cartesian grid, so k-space is first transformed
 * along x and the problem decouples along the readout: the operator's FFT runs over y (and z)
 * only. lambda is absolute: ESPIRiT maps have sum_c |s_c|^2 <= 1 and the FFT is unitary, so
 * the largest eigenvalue of E^H E is about 1 and lambda is relative to it. Two map sets are
 * combined by root-sum-of-squares (magnitude); one map set keeps the complex image. Maps are
 * computed once per slice (first frame of each slice) and reused over contrasts/repetitions.
 * With p->gfactor the analytic SENSE g-factor (sense_gfactor.h) fills set->gfactor. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../calib/calib_region.h"
#include "../calib/espirit.h"
#include "../calib/grappa.h"
#include "../core/fft.h"
#include "../core/log.h"
#include "../linop/linop.h"
#include "../solve/cg.h"
#include "pipelines.h"
#include "sense_gfactor.h"

struct sense_frame {
	r5_ctx *ctx;
	const r5_progress *progress;
	r5_linop *op;
	int frame, n_frames;
};

static r5_status normal_cb(r5_ctx *ctx, void *user, r5_array *out, const r5_array *in)
{
	struct sense_frame *f = user;
	return r5_linop_normal(ctx, f->op, out, in);
}

static r5_status cg_hook(void *user, int iter, int max_iters, double rel_residual)
{
	struct sense_frame *f = user;
	(void)rel_residual;
	double fraction = 0.3 + 0.6 * ((double)f->frame + (double)iter / max_iters) / f->n_frames;
	return r5_progress_check(f->progress, "cg-sense", fraction);
}

/* ACS block of one frame (work), capped at calib_cap per phase-encode dimension. */
static r5_status frame_acs(r5_ctx *ctx, const r5_array *kspace, const long calib[3], long cap, r5_array **acs)
{
	long dims[R5_DIMS];
	r5_dims_copy(dims, kspace->dims);
	for (int d = 0; d < 3; d++) {
		long c = d == 0 ? kspace->dims[0] : calib[d];
		dims[d] = cap > 0 && c > cap ? cap : c;
	}
	R5_TRY(r5_array_alloc_work(ctx, dims, acs));
	return r5_zresize_centered(ctx, *acs, kspace);
}

static r5_status frame_mask(r5_ctx *ctx, const r5_scan *scan, long frame, r5_array **mask)
{
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[1] = scan->mask_dims[1];
	dims[2] = scan->mask_dims[2];
	r5_array *host = NULL;
	R5_TRY(r5_array_alloc_host(dims, &host));
	long plane = dims[1] * dims[2];
	for (long i = 0; i < plane; i++)
		host->data[i] = scan->sampled[frame * plane + i] ? 1.0f : 0.0f;
	r5_status s = r5_array_to_work(ctx, host, mask);
	r5_array_free(host);
	return s;
}

/* Analytic g-factor of one frame into gout (work, [x, y, z]): acceleration from the mask. */
static r5_status frame_gfactor(r5_ctx *ctx, const r5_scan *scan, long frame, const long calib[3], const r5_array *maps,
			       r5_array *gout)
{
	long ny = scan->mask_dims[1], nz = scan->mask_dims[2], calib_yz[2] = {calib[1], calib[2]};
	int accel[2], offset[2];
	R5_TRY(r5_error_context(r5_grappa_sampling(scan->sampled + frame * ny * nz, ny, nz, calib_yz, scan->header.accel,
						   accel, offset), "sense g-factor: frame %ld", frame));
	return r5_sense_gfactor(ctx, maps, accel, gout);
}

/* Logs |y - E x| / |y|: how much of the measured data the model explains (one map set cannot
 * explain two overlapping objects in a too-small FOV; two can). */
static r5_status data_residual(r5_ctx *ctx, struct sense_frame *f, const r5_array *x, const r5_array *kspace)
{
	r5_array *predicted = NULL;
	double norm_y = 0, norm_r = 0;
	R5_TRY(r5_array_alloc_work(ctx, f->op->odims, &predicted));
	r5_status s = r5_linop_forward(ctx, f->op, predicted, x);
	if (s == R5_OK)
		s = r5_zaxpby(ctx, -1.0f, kspace, 1.0f, predicted);
	if (s == R5_OK)
		s = r5_znorm(ctx, predicted, &norm_r);
	if (s == R5_OK)
		s = r5_znorm(ctx, kspace, &norm_y);
	if (s == R5_OK)
		r5_info("cg-sense frame %d: data residual |y - E x| / |y| = %.4f", f->frame, norm_y > 0 ? norm_r / norm_y : 0.0);
	r5_array_free(predicted);
	return s;
}

/* Solve one frame: kspace (work, [x,y,z,C], hybrid: already inverse-transformed along x). */
static r5_status solve_frame(r5_ctx *ctx, const r5_recon_params *p, struct sense_frame *f, const r5_array *maps,
			     const r5_array *mask, r5_array *kspace, r5_array *image)
{
	long idims[R5_DIMS];
	unsigned long flags = R5_FLAG(R5_DIM_Y) | (kspace->dims[2] > 1 ? R5_FLAG(R5_DIM_Z) : 0);
	R5_TRY(r5_linop_sense(ctx, maps, mask, flags, &f->op));
	r5_dims_copy(idims, f->op->idims);
	r5_array *rhs = NULL, *x = NULL;
	r5_status s = r5_array_alloc_work(ctx, idims, &rhs);
	if (s == R5_OK)
		s = r5_array_zeros(ctx, r5_ctx_residency(ctx), idims, &x);
	if (s == R5_OK)
		s = r5_linop_adjoint(ctx, f->op, rhs, kspace);
	r5_cg_conf conf = r5_cg_defaults;
	conf.max_iters = p->iters;
	conf.lambda = p->lambda;
	conf.hook = cg_hook;
	conf.hook_user = f;
	r5_cg_info info = {0};
	if (s == R5_OK)
		s = r5_cg_solve(ctx, &conf, normal_cb, f, rhs, x, &info);
	if (s == R5_OK)
		r5_debug("cg-sense frame %d: %d iterations, relative residual %.3g", f->frame, info.iters, info.rel_residual);
	if (s == R5_OK)
		s = data_residual(ctx, f, x, kspace);
	if (s == R5_OK)
		s = idims[R5_DIM_MAP] > 1 ? r5_zrss(ctx, image, x, R5_DIM_MAP) : r5_array_copy(ctx, image, x);
	r5_array_free(rhs);
	r5_array_free(x);
	r5_linop_free(f->op);
	f->op = NULL;
	return s;
}

static r5_status sense_frames(r5_ctx *ctx, const r5_scan *scan, const r5_recon_params *p, const r5_progress *progress,
			      r5_image_set *set, r5_array *images, r5_array *gfactor)
{
	const r5_array *k = scan->kspace;
	long fdims[R5_DIMS], calib[3];
	r5_dims_ones(fdims);
	for (int d = 0; d < 4; d++)
		fdims[d] = k->dims[d];
	long frame_size = r5_dims_size(fdims), npix = frame_size / k->dims[R5_DIM_COIL];
	long n_frames = r5_array_size(k) / frame_size, per_slice = 1;
	for (int d = R5_DIM_MAP; d < R5_DIM_SLICE; d++)
		per_slice *= k->dims[d];
	R5_TRY(r5_calib_region_find(scan, calib));
	long cap = p->calib_size > 0 ? p->calib_size : 24;
	r5_espirit_conf ec = r5_espirit_defaults;
	ec.kernel = p->kernel_size;
	ec.threshold = p->espirit_threshold;
	ec.crop = p->espirit_crop;
	ec.n_maps = p->n_maps;
	ec.calib = cap;
	long img[3] = {k->dims[0], k->dims[1], k->dims[2]};
	r5_array *maps = NULL, *kspace = NULL, *mask = NULL, *acs = NULL;
	r5_status s = R5_OK;
	double t_maps = 0, t_cg = 0;
	long maps_slice = -1;
	for (long frame = 0; frame < n_frames && s == R5_OK; frame++) {
		r5_array host = *k;
		r5_dims_copy(host.dims, fdims);
		host.owns = 0;
		host.data = k->data + frame * frame_size;
		r5_array_free(kspace);
		kspace = NULL;
		s = r5_array_to_work(ctx, &host, &kspace);
		long slice = frame / per_slice;
		double t = r5_pipeline_clock(ctx);
		if (s == R5_OK && slice != maps_slice) {
			r5_array_free(maps);
			r5_array_free(acs);
			maps = acs = NULL;
			s = frame_acs(ctx, kspace, calib, cap, &acs);
			if (s == R5_OK)
				s = r5_espirit_maps(ctx, &ec, acs, img, &maps, NULL);
			if (s != R5_OK)
				s = r5_error_context(s, "sense: slice %ld", slice);
			maps_slice = slice;
		}
		t_maps += r5_pipeline_clock(ctx) - t;
		t = r5_pipeline_clock(ctx);
		r5_array_free(mask);
		mask = NULL;
		if (s == R5_OK)
			s = frame_mask(ctx, scan, frame, &mask);
		if (s == R5_OK)
			s = r5_ifft(ctx, R5_FLAG(R5_DIM_X), kspace, kspace);
		struct sense_frame f = {.ctx = ctx, .progress = progress, .frame = (int)frame, .n_frames = (int)n_frames};
		r5_array out = *images;
		r5_dims_copy(out.dims, fdims);
		out.dims[R5_DIM_COIL] = 1;
		out.data = images->data + frame * npix;
		if (s == R5_OK)
			s = solve_frame(ctx, p, &f, maps, mask, kspace, &out);
		if (s == R5_OK && gfactor) {
			out.data = gfactor->data + frame * npix;
			s = frame_gfactor(ctx, scan, frame, calib, maps, &out);
		}
		t_cg += r5_pipeline_clock(ctx) - t;
	}
	r5_image_set_add_stage(set, "espirit", t_maps);
	r5_image_set_add_stage(set, "cg-sense", t_cg);
	r5_array_free(maps);
	r5_array_free(acs);
	r5_array_free(kspace);
	r5_array_free(mask);
	return s;
}

r5_status r5_pipeline_sense(r5_ctx *ctx, const r5_scan *scan, const r5_recon_params *p, const r5_progress *progress,
			    r5_image_set *set)
{
	if (!scan || !scan->kspace || !scan->sampled)
		return r5_set_error(R5_EINVAL, "sense: scan has no k-space or sampling mask");
	if (p->n_maps < 1 || p->n_maps > 2)
		return r5_set_error(R5_EINVAL, "sense: maps must be 1 or 2, got %d", p->n_maps);
	long dims[R5_DIMS];
	r5_dims_copy(dims, scan->kspace->dims);
	dims[R5_DIM_COIL] = 1;
	r5_array *images = NULL, *gfactor = NULL;
	R5_TRY(r5_array_alloc_work(ctx, dims, &images));
	r5_status s = p->gfactor ? r5_array_alloc_work(ctx, dims, &gfactor) : R5_OK;
	if (s == R5_OK)
		s = sense_frames(ctx, scan, p, progress, set, images, gfactor);
	double t = r5_pipeline_clock(ctx);
	if (s == R5_OK)
		s = r5_progress_check(progress, "resize", 0.95);
	if (s == R5_OK)
		s = r5_pipeline_to_recon_matrix(ctx, scan, images, &set->images);
	if (s == R5_OK && gfactor)
		s = r5_pipeline_to_recon_matrix(ctx, scan, gfactor, &set->gfactor);
	r5_image_set_add_stage(set, "resize", r5_pipeline_clock(ctx) - t);
	r5_array_free(images);
	r5_array_free(gfactor);
	return s;
}
