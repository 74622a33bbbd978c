/* The SENSE pipeline: ESPIRiT maps (Uecker et al., MRM 71:990, 2014) from the calibration
 * region, then CG-SENSE (Pruessmann et al., MRM 46:638, 2001) on the normal equations
 * (E^H E + lambda I) x = E^H y with E = M F_yz S.
 *
 * The readout is always fully sampled on a Cartesian grid, so k-space is first transformed
 * along x and the problem decouples along the readout: the operator's FFT runs over y (and z)
 * only. lambda is absolute: ESPIRiT maps have sum_c |s_c|^2 <= 1 and the FFT is unitary, so
 * the largest eigenvalue of E^H E is about 1 and lambda is relative to it. Two map sets are
 * combined by root-sum-of-squares (magnitude); one map set keeps the complex image. Maps are
 * computed once per slice (first frame of each slice) and reused over contrasts/repetitions;
 * a one-frame scan's maps come ready-made (r5_recon_run, from the calibration block: calibration.h).
 * With p->gfactor the analytic SENSE g-factor (sense_gfactor.h) fills set->gfactor. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "calibration.h"
#include "coil_prep.h"
#include "cs_slab.h"
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
	const r5_progress *progress; /* the run's hook */
	r5_progress_part part;       /* this frame's share of it (CG iterations move lo, hi) */
	r5_linop *op;
	int frame;
	double lo, hi; /* this frame's CG share of the run's fraction */
	double residual; /* |y - E x| / |y| after the solve */
	int cs;          /* pipeline cs: the regularised solve (cs.c) instead of CG */
	float noise_sigma; /* cs: the frame's k-space noise std (0: unknown) */
};

static r5_status normal_cb(r5_ctx *ctx, void *user, r5_array *out, const r5_array *in)
{
	struct sense_frame *f = user;
	return r5_linop_normal(ctx, f->op, out, in);
}

/* After iteration iter: the stop check, and the operator's own checks (between coil groups)
 * report inside the next iteration's share. */
static r5_status cg_hook(void *user, int iter, int max_iters, double rel_residual)
{
	struct sense_frame *f = user;
	(void)rel_residual;
	double step = (f->hi - f->lo) / (double)(max_iters > 0 ? max_iters : 1), fraction = f->lo + step * iter;
	f->part.lo = fraction;
	f->part.hi = fraction + step;
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
			       r5_array *gout, const r5_progress *progress)
{
	long ny = scan->mask_dims[1], nz = scan->mask_dims[2], calib_yz[2] = {calib[1], calib[2]};
	int accel[2], offset[2];
	R5_TRY(r5_error_context(r5_grappa_sampling(scan->sampled + frame * ny * nz, ny, nz, calib_yz, scan->header.accel,
						   accel, offset), "sense g-factor: frame %ld", frame));
	return r5_sense_gfactor_checked(ctx, maps, accel, gout, progress);
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
	f->residual = norm_y > 0 ? norm_r / norm_y : 0.0;
	if (s == R5_OK)
		r5_debug("cg-sense frame %d: data residual |y - E x| / |y| = %.4f", f->frame, f->residual);
	r5_array_free(predicted);
	return s;
}

/* Solve one frame: kspace (work, [x,y,z,C], hybrid: already inverse-transformed along x). */
static r5_status solve_frame(r5_ctx *ctx, const r5_recon_params *p, struct sense_frame *f, const r5_array *maps,
			     const r5_array *mask, r5_array *kspace, r5_array *image)
{
	long idims[R5_DIMS], voxels = kspace->dims[0] * kspace->dims[1] * kspace->dims[2];
	unsigned long flags = R5_FLAG(R5_DIM_Y) | (kspace->dims[2] > 1 ? R5_FLAG(R5_DIM_Z) : 0);
	/* coil groups of about R5_PROGRESS_CHUNK_VALUES values: one iteration of 128^3 x 32 coils
	 * is 8 groups of ~0.2 s, each followed by a stop check */
	long group = R5_PROGRESS_CHUNK_VALUES / voxels;
	if (f->cs && r5_cs_decoupled(p, kspace->dims)) { /* 3D: x positions as 2D problems, by slabs */
		r5_cs_slabs_opts o = {.progress = f->progress, .lo = f->lo, .hi = f->hi, .noise_sigma = f->noise_sigma};
		return r5_cs_slabs_solve(ctx, p, maps, mask, kspace, image, &o, &f->residual);
	}
	f->part.lo = f->lo;
	f->part.hi = f->lo + (f->hi - f->lo) / (p->sense.iters > 0 ? p->sense.iters : 1);
	const r5_progress *hook = r5_progress_part_init(&f->part, f->progress, f->part.lo, f->part.hi, "cg-sense");
	R5_TRY(r5_linop_sense_grouped(ctx, maps, mask, flags, group < 1 ? 1 : group, hook, "cg-sense operator", &f->op));
	r5_dims_copy(idims, f->op->idims);
	r5_array *rhs = NULL, *x = NULL;
	r5_status s = r5_array_alloc_work(ctx, idims, &rhs);
	if (s == R5_OK)
		s = r5_array_zeros(ctx, r5_ctx_residency(ctx), idims, &x);
	if (s == R5_OK)
		s = r5_linop_adjoint(ctx, f->op, rhs, kspace);
	r5_cg_conf conf = r5_cg_defaults;
	conf.max_iters = p->sense.iters;
	conf.lambda = p->sense.lambda;
	conf.hook = cg_hook;
	conf.hook_user = f;
	r5_cg_info info = {0};
	if (s == R5_OK && f->cs) {
		r5_cs_solve_opts o = {.progress = f->progress, .lo = f->lo, .hi = f->hi, .noise_sigma = f->noise_sigma};
		s = r5_cs_solve(ctx, p, f->op, kspace, rhs, x, &o);
	} else if (s == R5_OK)
		s = r5_cg_solve(ctx, &conf, normal_cb, f, rhs, x, &info);
	if (s == R5_OK && !f->cs)
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

struct sense_run {
	long fdims[R5_DIMS], frame_size, npix, n_frames, per_slice, calib[3], cap;
	long n_data;        /* frames with sampled data */
	r5_espirit_conf ec;
	double t_maps, t_cg, residual_sum, residual_max;
	int cs; /* pipeline cs */
	int streamed; /* cs, decoupled on a device: k-space and maps stay on the host (cs_slab.h) */
};

static void frame_view(const r5_array *a, const long dims[R5_DIMS], long offset, r5_array *view)
{
	long strides[R5_DIMS];
	r5_dims_strides(strides, dims); /* a frame is contiguous */
	*view = r5_array_view_strided(a, dims, strides, offset);
}

/* ESPIRiT maps of frame `frame` (the first frame with data of its slice), fractions lo..hi. */
static r5_status slice_maps(r5_ctx *ctx, struct sense_run *r, const r5_array *kspace, const r5_progress *progress,
			    double lo, double hi, long slice, r5_array **maps)
{
	r5_array *acs = NULL;
	long img[3] = {kspace->dims[0], kspace->dims[1], kspace->dims[2]};
	r5_progress_part part;
	r5_espirit_conf ec = r->ec;
	ec.progress = r5_progress_part_init(&part, progress, lo, hi, NULL);
	ec.host_maps = r->streamed;
	r5_status s = frame_acs(ctx, kspace, r->calib, r->cap, &acs);
	if (s == R5_OK)
		s = r5_espirit_maps(ctx, &ec, acs, img, maps, NULL);
	r5_array_free(acs);
	return s == R5_OK ? R5_OK : r5_error_context(s, "%s: slice %ld", r->cs ? "cs" : "sense", slice);
}

/* A streamed frame's k-space (cs_slab.h): a host copy of the frame inverse-transformed along x
 * on the device, a group of coils at a time (r5_fft_host). */
static r5_status hybrid_on_host(r5_ctx *ctx, const r5_array *frame, const r5_progress *progress, double fraction,
				r5_array **out)
{
	R5_TRY(r5_array_alloc_host(frame->dims, out));
	r5_status s = r5_fft_host(ctx, R5_FLAG(R5_DIM_X), 1, *out, frame, progress, "cs", fraction, fraction);
	if (s != R5_OK) {
		r5_array_free(*out);
		*out = NULL;
	}
	return s;
}

/* One frame with data: maps when its slice has none yet, then CG-SENSE (and the g-factor). */
static r5_status sense_frame_run(r5_ctx *ctx, const r5_scan *scan, const r5_recon_params *p,
				 const r5_progress *progress, struct sense_run *r, long frame, long index,
				 r5_array **maps, long *maps_slice, r5_array *images, r5_array *gfactor)
{
	r5_array host, out, *kspace = NULL, *mask = NULL;
	frame_view(scan->kspace, r->fdims, frame * r->frame_size, &host);
	long slice = frame / r->per_slice;
	double lo = 0.05 + 0.9 * (double)index / (double)r->n_data, hi = 0.05 + 0.9 * (double)(index + 1) / (double)r->n_data;
	r5_status s = r->streamed ? hybrid_on_host(ctx, &host, progress, lo, &kspace) : r5_array_to_work(ctx, &host, &kspace);
	double t = r5_pipeline_clock(ctx);
	if (s == R5_OK && slice != *maps_slice) {
		double mid = lo + 0.5 * (hi - lo);
		r5_array_free(*maps);
		*maps = NULL;
		/* a one-frame scan's maps are made before the pipeline runs (calibration.h) */
		if (scan->calibration)
			s = r5_calibration_maps_at(ctx, scan->calibration, r->streamed ? R5_HOST : r5_ctx_residency(ctx), maps);
		else
			s = slice_maps(ctx, r, kspace, progress, lo, mid, slice, maps);
		*maps_slice = slice;
		lo = scan->calibration ? lo : mid;
	}
	r->t_maps += r5_pipeline_clock(ctx) - t;
	t = r5_pipeline_clock(ctx);
	if (s == R5_OK)
		s = frame_mask(ctx, scan, frame, &mask);
	if (s == R5_OK && !r->streamed) /* a streamed frame is transformed already */
		s = r5_pipeline_fft_checked(ctx, R5_FLAG(R5_DIM_X), 1, kspace, kspace, progress, "cg-sense", lo);
	struct sense_frame f = {.ctx = ctx, .progress = progress, .frame = (int)frame, .lo = lo, .hi = hi, .cs = r->cs};
	if (r->cs)
		f.noise_sigma = r5_cs_noise_sigma(scan, frame);
	long odims[R5_DIMS];
	r5_dims_copy(odims, r->fdims);
	odims[R5_DIM_COIL] = 1;
	frame_view(images, odims, frame * r->npix, &out);
	if (s == R5_OK)
		s = solve_frame(ctx, p, &f, *maps, mask, kspace, &out);
	if (s == R5_OK) {
		r->residual_sum += f.residual;
		r->residual_max = f.residual > r->residual_max ? f.residual : r->residual_max;
	}
	if (s == R5_OK && gfactor) {
		r5_progress_part part;
		frame_view(gfactor, odims, frame * r->npix, &out);
		s = frame_gfactor(ctx, scan, frame, r->calib, *maps, &out, r5_progress_part_init(&part, progress, hi, hi, NULL));
	}
	r->t_cg += r5_pipeline_clock(ctx) - t;
	r5_array_free(kspace);
	r5_array_free(mask);
	return s;
}

/* Frames without sampled data are not reconstructed (their images stay zero; r5_recon_run has
 * already dropped the outer indices that hold no data at all). */
static r5_status sense_frames(r5_ctx *ctx, const r5_scan *scan, const r5_recon_params *p, const r5_progress *progress,
			      r5_image_set *set, r5_array *images, r5_array *gfactor, int cs)
{
	const r5_array *k = scan->kspace;
	struct sense_run r = {.ec = r5_espirit_defaults, .cs = cs};
	r5_dims_ones(r.fdims);
	for (int d = 0; d < 4; d++)
		r.fdims[d] = k->dims[d];
	r.frame_size = r5_dims_size(r.fdims);
	r.npix = r.frame_size / k->dims[R5_DIM_COIL];
	r.n_frames = r5_array_size(k) / r.frame_size;
	r.per_slice = 1;
	for (int d = R5_DIM_MAP; d < R5_DIM_SLICE; d++)
		r.per_slice *= k->dims[d];
	r.n_data = r5_pipeline_frames_with_data(scan);
	r.streamed = cs && r5_cs_streamed(ctx, p, r.fdims, p->sense.n_maps); /* stream resolved: pipeline.c */
	if (r.streamed)
		r5_info("cs: frames of %.0f MiB of k-space and %d map set(s) streamed through device memory from host "
			"memory", (double)r.frame_size * sizeof(float complex) / 1048576.0, p->sense.n_maps);
	R5_TRY(r5_calib_region_find(scan, r.calib));
	r.cap = r5_calibration_width(p);
	r5_calibration_espirit_conf(p, &r.ec);
	r5_array *maps = NULL;
	r5_status s = R5_OK;
	long maps_slice = -1, index = 0;
	for (long frame = 0; frame < r.n_frames && s == R5_OK; frame++) {
		if (!r5_pipeline_frame_has_data(scan, frame))
			continue;
		s = sense_frame_run(ctx, scan, p, progress, &r, frame, index++, &maps, &maps_slice, images, gfactor);
	}
	if (s == R5_OK)
		r5_info("%s: %ld frame(s) reconstructed (%ld without data skipped); data residual |y - E x| / |y| = "
			"%.4f (mean over the frames; max %.4f)", cs ? "cs" : "cg-sense", index, r.n_frames - index,
			index ? r.residual_sum / (double)index : 0.0, r.residual_max);
	if (!scan->calibration) /* else r5_recon_run timed it */
		r5_image_set_add_stage(set, "espirit", r.t_maps);
	r5_image_set_add_stage(set, cs ? "cs" : "cg-sense", r.t_cg);
	r5_array_free(maps);
	return s;
}

static r5_status sense_or_cs(r5_ctx *ctx, const r5_scan *scan, const r5_recon_params *p, const r5_progress *progress,
			     r5_image_set *set, int cs)
{
	if (!scan || !scan->kspace || !scan->sampled)
		return r5_set_error(R5_EINVAL, "%s: scan has no k-space or sampling mask", cs ? "cs" : "sense");
	/* params.c gives sense and cs grid's frame keys for non-Cartesian scans: refused, not ignored */
	if (p->grid.frame_spokes || p->grid.frame_step)
		return r5_set_error(R5_EINVAL, "%s: frame_spokes / frame_step apply to non-Cartesian scans only; this one "
				    "is Cartesian", cs ? "cs" : "sense");
	if (p->sense.n_maps < 1 || p->sense.n_maps > 2)
		return r5_set_error(R5_EINVAL, "%s: maps must be 1 or 2, got %d", cs ? "cs" : "sense", p->sense.n_maps);
	long dims[R5_DIMS];
	r5_dims_copy(dims, scan->kspace->dims);
	dims[R5_DIM_COIL] = 1;
	r5_array *images = NULL, *gfactor = NULL;
	R5_TRY(r5_array_zeros(ctx, r5_ctx_residency(ctx), dims, &images));
	r5_status s = p->gfactor ? r5_array_zeros(ctx, r5_ctx_residency(ctx), dims, &gfactor) : R5_OK;
	if (s == R5_OK)
		s = sense_frames(ctx, scan, p, progress, set, images, gfactor, cs);
	double t = r5_pipeline_clock(ctx);
	if (s == R5_OK)
		s = r5_progress_check(progress, "resize", 0.95);
	if (s == R5_OK)
		s = r5_pipeline_to_recon_matrix(ctx, scan, images, progress, &set->images);
	if (s == R5_OK && gfactor)
		s = r5_pipeline_to_recon_matrix(ctx, scan, gfactor, progress, &set->gfactor);
	r5_image_set_add_stage(set, "resize", r5_pipeline_clock(ctx) - t);
	r5_array_free(images);
	r5_array_free(gfactor);
	return s;
}

r5_status r5_pipeline_sense(r5_ctx *ctx, const r5_scan *scan, const r5_recon_params *p, const r5_progress *progress,
			    r5_image_set *set)
{
	return sense_or_cs(ctx, scan, p, progress, set, 0);
}

r5_status r5_pipeline_cs(r5_ctx *ctx, const r5_scan *scan, const r5_recon_params *p, const r5_progress *progress,
			 r5_image_set *set)
{
	return sense_or_cs(ctx, scan, p, progress, set, 1);
}
