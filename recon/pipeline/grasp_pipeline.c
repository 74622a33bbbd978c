/* The `grasp` pipeline (grasp.h): a non-Cartesian scan (scan.h: kspace [1, n_read, n_spokes,
 * coils] in arrival order, traj [3, n_read, n_spokes]) to a dynamic series on the encoded matrix,
 * frames of frame_spokes consecutive spokes in dim 10 (params grid.frame_spokes; 0: 21, GRASP's
 * usual 21 golden-angle spokes; frame_step other than frame_spokes is refused: GRASP's frames do
 * not overlap), then the recon matrix (r5_pipeline_to_recon_matrix). Maps: r5_grasp_maps on all
 * spokes (calibration width: params calib, 0: 24, at most the matrix). Weights relative to
 * max |A^H W y| and ADMM steps: params grasp.lambda, grasp.lambda_space, grasp.iters (the
 * defaults are r5_grasp_defaults'); model=l+s: low rank + sparse with grasp.lambda_lowrank and
 * grasp.lambda_sparse; the rest r5_grasp_defaults.
 *
 * The NUFFT computes on CPU contexts only (nufft.h): on another context the solve runs on a CPU
 * context of its own, the recon-matrix step on the caller's. */
#include <stdlib.h>
#include <string.h>

#include "../core/log.h"
#include "grasp.h"
#include "grid.h"
#include "pipelines.h"

#define GRASP_DEFAULT_FRAME_SPOKES 21

struct grasp_run {
	long image_dims[R5_DIMS];
	float *coords;
	r5_array *samples, *maps, *images;
};

static void grasp_run_free(struct grasp_run *r)
{
	free(r->coords);
	r5_array_free(r->samples);
	r5_array_free(r->maps);
	r5_array_free(r->images);
}

static r5_status grasp_frames(const r5_recon_params *p, long n_spokes, long *spokes)
{
	*spokes = p->grid.frame_spokes > 0 ? p->grid.frame_spokes : GRASP_DEFAULT_FRAME_SPOKES;
	if (p->grid.frame_step > 0 && p->grid.frame_step != *spokes)
		return r5_set_error(R5_EINVAL, "grasp: frame_step=%d: GRASP's frames are consecutive (frame_step = "
					       "frame_spokes = %ld)", p->grid.frame_step, *spokes);
	if (*spokes > n_spokes)
		return r5_set_error(R5_EINVAL, "grasp: frame_spokes=%ld is more than the scan's %ld spokes", *spokes, n_spokes);
	return R5_OK;
}

static r5_status grasp_all(r5_ctx *ctx, struct grasp_run *r, const r5_scan *scan, const r5_recon_params *p,
			   const r5_progress *progress, r5_image_set *set)
{
	const r5_array *k = scan->kspace;
	long n_read = k->dims[1], n_spokes = k->dims[2], coils = k->dims[R5_DIM_COIL], spokes, dims[R5_DIMS];
	R5_TRY(grasp_frames(p, n_spokes, &spokes));
	r->coords = malloc(sizeof *r->coords * 3 * (size_t)(n_read * n_spokes));
	if (!r->coords)
		return r5_set_error(R5_ENOMEM, "grasp: coordinates of %ld points", n_read * n_spokes);
	R5_TRY(r5_grid_coords(scan->traj, r->image_dims, 0, n_spokes, r->coords));
	r5_dims_ones(dims);
	dims[1] = n_read, dims[2] = n_spokes, dims[3] = coils;
	R5_TRY(r5_array_alloc_host(dims, &r->samples));
	for (long c = 0; c < coils; c++)
		for (long s = 0; s < n_spokes; s++)
			memcpy(r->samples->data + n_read * (s + n_spokes * c), k->data + c * k->strides[3] + s * k->strides[2],
			       sizeof(float complex) * (size_t)n_read);
	long N = r->image_dims[0] < r->image_dims[1] ? r->image_dims[0] : r->image_dims[1];
	int calib = p->calib_size > 0 ? p->calib_size : 24;
	calib = calib > N ? (int)N : calib;
	double t = r5_pipeline_clock(NULL);
	R5_TRY(r5_progress_check(progress, "grasp maps", 0.02));
	R5_TRY(r5_grasp_maps(ctx, r->image_dims, r->coords, r->samples, calib, &r->maps));
	r5_image_set_add_stage(set, "maps", r5_pipeline_clock(NULL) - t);
	r5_dims_copy(dims, r->image_dims);
	dims[R5_DIM_COIL] = 1, dims[R5_DIM_TIME] = n_spokes / spokes;
	R5_TRY(r5_array_zeros(ctx, R5_HOST, dims, &r->images));
	r5_grasp_opts o = r5_grasp_defaults;
	o.frame_spokes = spokes;
	o.lambda = -1, o.lambda_scale = p->grasp.lambda, o.iters = p->grasp.iters;
	o.lambda_space = p->grasp.lambda_space > 0 ? -1 : 0, o.lambda_space_scale = p->grasp.lambda_space;
	o.model = strcmp(p->grasp.model, "l+s") ? R5_GRASP_TV : R5_GRASP_LPLUSS;
	o.lowrank_scale = p->grasp.lambda_lowrank, o.sparse_scale = p->grasp.lambda_sparse;
	r5_grasp_info info;
	r5_progress_part part;
	t = r5_pipeline_clock(NULL);
	R5_TRY(r5_grasp_solve(ctx, r->image_dims, r->coords, r->samples, r->maps, &o,
			      r5_progress_part_init(&part, progress, 0.1, 0.9, "grasp"), r->images, NULL, &info));
	r5_image_set_add_stage(set, "grasp", r5_pipeline_clock(NULL) - t);
	if (o.model == R5_GRASP_LPLUSS)
		r5_info("grasp: l+s, %ld frames of %ld spokes (%ld left over), %ld samples each, image %ldx%ld, %ld coils, "
			"thresholds %.4g (%.3g sigma_1, rank %ld at the end) and %.4g (%.3g max|F_t x|), %d steps, %.3f s",
			info.n_frames, spokes, n_spokes % spokes, n_read, r->image_dims[0], r->image_dims[1], coils,
			(double)info.lambda_lowrank, (double)o.lowrank_scale, info.rank, (double)info.lambda,
			(double)o.sparse_scale, info.iters, info.seconds);
	else
		r5_info("grasp: %ld frames of %ld spokes (%ld left over), %ld samples each, image %ldx%ld, %ld coils, lambda "
			"%.4g (%.3g max|A^H W y|), lambda_space %.4g, %d ADMM steps, %ld CG iterations, %.3f s", info.n_frames,
			spokes, n_spokes % spokes, n_read, r->image_dims[0], r->image_dims[1], coils, (double)info.lambda,
			(double)o.lambda_scale, (double)info.lambda_space, info.iters, info.cg_iters, info.seconds);
	return R5_OK;
}

r5_status r5_pipeline_grasp(r5_ctx *ctx, const r5_scan *scan, const r5_recon_params *p, const r5_progress *progress,
			    r5_image_set *set)
{
	if (!scan->traj)
		return r5_set_error(R5_EINVAL, "pipeline grasp: the scan is Cartesian (no trajectory); use cartesian, "
					       "sense, grappa or cs");
	struct grasp_run r;
	memset(&r, 0, sizeof r);
	r5_pipeline_nc_image_dims(&scan->header, scan->kspace->dims[R5_DIM_COIL], r.image_dims);
	if (r.image_dims[2] != 1 || r.image_dims[0] < 2 || r.image_dims[1] < 2)
		return r5_set_error(R5_EINVAL, "pipeline grasp: encoded matrix %ldx%ldx%ld; GRASP is 2D (at least 2x2, z 1)",
				    r.image_dims[0], r.image_dims[1], r.image_dims[2]);
	r5_ctx *own = NULL, *run = ctx;
	R5_TRY(r5_pipeline_nc_context(ctx, "grasp", &own, &run));
	r5_status s = grasp_all(run, &r, scan, p, progress, set);
	double t = r5_pipeline_clock(ctx);
	if (s == R5_OK)
		s = r5_progress_check(progress, "resize", 0.9);
	if (s == R5_OK)
		s = r5_pipeline_to_recon_matrix(ctx, scan, r.images, progress, &set->images);
	r5_image_set_add_stage(set, "resize", r5_pipeline_clock(ctx) - t);
	grasp_run_free(&r);
	r5_ctx_destroy(own);
	return s;
}
