/* The `grid` pipeline (grid.h, pipelines.h): a non-Cartesian scan (scan.h: kspace
 * [1, n_read, n_spokes, coils], traj [3, n_read, n_spokes]) to images on the encoded matrix, one
 * frame from all spokes or frames of frame_spokes consecutive spokes every frame_step spokes
 * (images' dim 10), then the recon matrix (r5_pipeline_to_recon_matrix).
 *
 * Density compensation (key dcf): the ramp for radial spokes, Pipe-Menon otherwise (auto decides
 * per frame by whether the spokes are straight lines through the centre: r5_grid_ramp), both from
 * recon/linop/density.h and scaled alike (a weight is the k-space area its sample stands for), or
 * none (weights 1: the plain adjoint, for trajectories that sample uniformly).
 *
 * Gradient delays (key delay=ring, every non-Cartesian pipeline): r5_pipeline_delay_correct,
 * below, which r5_recon_run calls before the pipeline: RING (recon/calib/gradient_delay.h)
 * estimates (Sx, Sy, Sxy) once from all spokes of the scan, and the working copy's trajectory is
 * moved to where the scanner sampled (r5_traj_apply_delay, BART's traj -q model), samples pushed
 * past the band's edge clamped to it.
 *
 * The NUFFT computes on CPU contexts only (nufft.h): on another context the gridding runs on a
 * CPU context of its own (one log line), the recon-matrix step on the caller's. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../calib/combine.h"
#include "../calib/gradient_delay.h"
#include "../core/log.h"
#include "../linop/density.h"
#include "../linop/traj.h"
#include "grid.h"
#include "pipelines.h"

r5_status r5_pipeline_grid_frames(const r5_recon_params *p, long n_spokes, long *spokes, long *step, long *n_frames)
{
	*spokes = p->grid.frame_spokes > 0 ? p->grid.frame_spokes : n_spokes;
	*step = p->grid.frame_step > 0 ? p->grid.frame_step : *spokes;
	if (p->grid.frame_step > 0 && p->grid.frame_spokes == 0)
		return r5_set_error(R5_EINVAL, "grid: frame_step=%d needs frame_spokes (0: one frame of all %ld spokes)",
				    p->grid.frame_step, n_spokes);
	if (*spokes > n_spokes)
		return r5_set_error(R5_EINVAL, "grid: frame_spokes=%ld is more than the scan's %ld spokes", *spokes, n_spokes);
	*n_frames = (n_spokes - *spokes) / *step + 1;
	return R5_OK;
}

/* This frame's density weights into `weights` (*use points at them); progress: Pipe-Menon's. */
static r5_status frame_weights(r5_ctx *ctx, const r5_recon_params *p, const long image_dims[R5_DIMS], long n_read,
			       long spokes, const float *coords, const r5_progress *progress, float *weights,
			       const float **use, int *used_pipe)
{
	long n = n_read * spokes;
	const char *dcf = p->grid.dcf;
	*used_pipe = 0;
	if (!strcmp(dcf, "none")) {
		for (long j = 0; j < n; j++)
			weights[j] = 1.0f;
		*use = weights;
		return R5_OK;
	}
	if (strcmp(dcf, "pipe")) {
		r5_status ramp = r5_grid_ramp(n_read, spokes, coords, weights);
		if (ramp == R5_OK || !strcmp(dcf, "ramp")) {
			*use = weights;
			return ramp == R5_OK ? R5_OK : r5_error_context(ramp, "grid: dcf=ramp");
		}
		r5_clear_error();
	}
	/* Pipe-Menon on the wrapped coordinates the NUFFT takes */
	float *wrapped = malloc(sizeof *wrapped * 3 * (size_t)n);
	if (!wrapped)
		return r5_set_error(R5_ENOMEM, "grid: coordinates of %ld points", n);
	memcpy(wrapped, coords, sizeof *wrapped * 3 * (size_t)n);
	r5_grid_wrap_coords(image_dims, n, wrapped);
	long plane[R5_DIMS];
	r5_dims_copy(plane, image_dims);
	plane[R5_DIM_COIL] = 1;
	r5_status s = r5_density_pipe_menon_ex(ctx, plane, n, wrapped, p->grid.dcf_iters, progress, weights, NULL);
	free(wrapped);
	*use = weights;
	*used_pipe = 1;
	return s;
}

void r5_pipeline_nc_image_dims(const r5_header *header, long coils, long dims[R5_DIMS])
{
	r5_dims_ones(dims);
	for (int d = 0; d < 3; d++)
		dims[d] = header->enc_matrix[d] > 1 ? header->enc_matrix[d] : 1;
	dims[R5_DIM_COIL] = coils;
}

r5_status r5_pipeline_nc_context(r5_ctx *ctx, const char *pipeline, r5_ctx **own, r5_ctx **run)
{
	*own = NULL;
	*run = ctx;
	if (r5_ctx_residency(ctx) == R5_HOST)
		return R5_OK;
	R5_TRY(r5_ctx_create(own, "cpu", 0));
	*run = *own;
	r5_info("%s: the NUFFT computes on the CPU (the %s context's device has none yet)", pipeline,
		r5_ctx_backend_name(ctx));
	return R5_OK;
}

/* RING on all spokes (radial only), then the delayed trajectory, kept inside the image's k range. */
r5_status r5_pipeline_delay_correct(const r5_scan *scan, const r5_progress *progress, r5_array **traj, float delay[3])
{
	*traj = NULL;
	long n_read = scan->kspace->dims[1], n_spokes = scan->kspace->dims[2], n = n_read * n_spokes;
	long image_dims[R5_DIMS];
	r5_pipeline_nc_image_dims(&scan->header, 1, image_dims);
	float *coords = malloc(sizeof *coords * 3 * (size_t)n), *w = malloc(sizeof *w * (size_t)n), residual = 0;
	r5_status s = coords && w ? R5_OK : r5_set_error(R5_ENOMEM, "gradient delay: coordinates of %ld points", n);
	if (s == R5_OK)
		s = r5_grid_coords(scan->traj, image_dims, 0, n_spokes, coords);
	if (s == R5_OK && (s = r5_grid_ramp(n_read, n_spokes, coords, w)) != R5_OK)
		r5_error_context(s, "delay=ring needs radial spokes");
	if (s == R5_OK)
		s = r5_gradient_delay_ring(scan->kspace, coords, n_read, n_spokes, NULL, progress, delay, &residual);
	if (s == R5_OK) {
		r5_info("gradient delays (RING) Sx %.3f Sy %.3f Sxy %.3f samples (fit residual %.3f)", (double)delay[0],
			(double)delay[1], (double)delay[2], (double)residual);
		s = r5_traj_apply_delay(n_read, n_spokes, delay, 0, coords);
	}
	if (s == R5_OK)
		s = r5_array_alloc_host(scan->traj->dims, traj);
	for (long j = 0; s == R5_OK && j < 3 * n; j++) {
		int d = (int)(j % 3);
		float half = 0.5f * (float)image_dims[d], c = coords[j];
		if (image_dims[d] > 1 && (c < -half || c > half))
			c = c < 0 ? -half : half; /* the band's edge: nothing of the object there */
		(*traj)->data[j] = c;
	}
	free(coords);
	free(w);
	return s;
}

struct grid_run {
	r5_ctx *ctx;
	const r5_recon_params *p;
	long image_dims[R5_DIMS]; /* [Nx, Ny, Nz, coils] */
	long n_read, spokes, step, n_frames;
	float *coords, *weights;
	r5_array *samples, *coil_images, *images;
	r5_grid_plan *plan;
	double seconds[3]; /* density, gridding, combination */
	int pipe_frames;
};

static r5_status grid_frame(struct grid_run *r, const r5_scan *scan, long f, const r5_progress *progress)
{
	long first = f * r->step, n = r->n_read * r->spokes, coils = r->image_dims[3];
	const r5_array *k = scan->kspace;
	/* the frame's samples [1, n_read, spokes, coils]: one block per coil */
	for (long c = 0; c < coils; c++)
		memcpy(r->samples->data + c * n, k->data + c * k->strides[3] + first * r->n_read, sizeof(float complex) * (size_t)n);
	R5_TRY(r5_grid_coords(scan->traj, r->image_dims, first, r->spokes, r->coords));
	double t = r5_pipeline_clock(NULL);
	const float *weights = NULL;
	int pipe = 0;
	double lo = 0.1 + 0.75 * (double)f / (double)r->n_frames, hi = 0.1 + 0.75 * (double)(f + 1) / (double)r->n_frames;
	r5_progress_part density;
	R5_TRY(frame_weights(r->ctx, r->p, r->image_dims, r->n_read, r->spokes, r->coords,
			     r5_progress_part_init(&density, progress, lo, 0.5 * (lo + hi), "density"), r->weights, &weights,
			     &pipe));
	r->pipe_frames += pipe;
	r->seconds[0] += r5_pipeline_clock(NULL) - t;
	t = r5_pipeline_clock(NULL);
	long pixels = r->image_dims[0] * r->image_dims[1] * r->image_dims[2], idims[R5_DIMS];
	r5_dims_copy(idims, r->image_dims);
	idims[3] = 1;
	r5_array *image = NULL;
	R5_TRY(r5_array_view(R5_HOST, NULL, idims, r->images->data + f * pixels, &image));
	int adaptive = !strcmp(r->p->grid.combine, "adaptive");
	r5_status s = r5_grid_frame(r->ctx, r->plan, n, r->coords, weights, r->samples, NULL,
				    adaptive ? r->coil_images : NULL, image);
	r->seconds[1] += r5_pipeline_clock(NULL) - t;
	t = r5_pipeline_clock(NULL);
	r5_progress_part part;
	if (s == R5_OK && adaptive)
		s = r5_coil_combine(r->ctx, "adaptive", r->coil_images, image,
				    r5_progress_part_init(&part, progress, 0.5 * (lo + hi), hi, "combine"));
	r->seconds[2] += r5_pipeline_clock(NULL) - t;
	r5_array_free(image);
	return s;
}

static r5_status grid_all(struct grid_run *r, const r5_scan *scan, const r5_progress *progress)
{
	long n = r->n_read * r->spokes, sdims[R5_DIMS], out[R5_DIMS];
	r5_dims_ones(sdims);
	sdims[1] = r->n_read, sdims[2] = r->spokes, sdims[3] = r->image_dims[3];
	r5_dims_copy(out, r->image_dims);
	out[R5_DIM_COIL] = 1;
	out[R5_DIM_TIME] = r->n_frames;
	r->coords = malloc(sizeof *r->coords * 3 * (size_t)n);
	r->weights = malloc(sizeof *r->weights * (size_t)n);
	if (!r->coords || !r->weights)
		return r5_set_error(R5_ENOMEM, "grid: coordinates of %ld points", n);
	R5_TRY(r5_array_alloc_host(sdims, &r->samples));
	R5_TRY(r5_array_zeros(r->ctx, R5_HOST, out, &r->images));
	if (!strcmp(r->p->grid.combine, "adaptive"))
		R5_TRY(r5_array_alloc_host(r->image_dims, &r->coil_images));
	R5_TRY(r5_grid_plan_make(r->ctx, r->image_dims, NULL, &r->plan));
	for (long f = 0; f < r->n_frames; f++) {
		R5_TRY(r5_progress_check(progress, "grid", 0.1 + 0.75 * (double)f / (double)r->n_frames));
		R5_TRY(grid_frame(r, scan, f, progress));
	}
	return R5_OK;
}

static void grid_run_free(struct grid_run *r)
{
	free(r->coords);
	free(r->weights);
	r5_array_free(r->samples);
	r5_array_free(r->coil_images);
	r5_array_free(r->images);
	r5_grid_plan_destroy(r->plan);
}

r5_status r5_pipeline_grid(r5_ctx *ctx, const r5_scan *scan, const r5_recon_params *p, const r5_progress *progress,
			   r5_image_set *set)
{
	if (!scan->traj)
		return r5_set_error(R5_EINVAL, "pipeline grid: the scan is Cartesian (no trajectory); use cartesian, "
					       "sense, grappa or cs");
	const r5_array *k = scan->kspace;
	struct grid_run r;
	memset(&r, 0, sizeof r);
	r.p = p;
	r.n_read = k->dims[1];
	r5_pipeline_nc_image_dims(&scan->header, k->dims[R5_DIM_COIL], r.image_dims);
	if (r.image_dims[0] < 2 || r.image_dims[1] < 2)
		return r5_set_error(R5_EINVAL, "pipeline grid: encoded matrix %ldx%ld; gridding needs at least 2x2",
				    r.image_dims[0], r.image_dims[1]);
	R5_TRY(r5_pipeline_grid_frames(p, k->dims[2], &r.spokes, &r.step, &r.n_frames));
	/* the NUFFT runs on CPU contexts: another context grids on a CPU one of its own */
	r5_ctx *own = NULL;
	R5_TRY(r5_pipeline_nc_context(ctx, "grid", &own, &r.ctx));
	double t0 = r5_pipeline_clock(ctx);
	r5_status s = grid_all(&r, scan, progress);
	if (s == R5_OK) {
		r5_info("grid: %ld frame(s) of %ld spokes (step %ld), %ld samples each, image %ldx%ldx%ld, %ld coils, "
			"density %s%s, %.3f s", r.n_frames, r.spokes, r.step, r.n_read, r.image_dims[0], r.image_dims[1],
			r.image_dims[2], r.image_dims[3], p->grid.dcf, r.pipe_frames ? " (Pipe-Menon)" : "",
			r5_pipeline_clock(ctx) - t0);
		r5_image_set_add_stage(set, "density", r.seconds[0]);
		r5_image_set_add_stage(set, "grid", r.seconds[1]);
		if (r.coil_images)
			r5_image_set_add_stage(set, "combine", r.seconds[2]);
	}
	double t = r5_pipeline_clock(ctx);
	if (s == R5_OK)
		s = r5_progress_check(progress, "resize", 0.9);
	if (s == R5_OK)
		s = r5_pipeline_to_recon_matrix(ctx, scan, r.images, progress, &set->images);
	r5_image_set_add_stage(set, "resize", r5_pipeline_clock(ctx) - t);
	grid_run_free(&r);
	r5_ctx_destroy(own);
	return s;
}
