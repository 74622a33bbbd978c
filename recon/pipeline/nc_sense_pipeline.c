/* The non-Cartesian `sense` pipeline (pipelines.h): a scan of spokes (scan.h: kspace [1, n_read,
 * n_spokes, coils], traj [3, n_read, n_spokes]) to images on the encoded matrix, then the recon
 * matrix (r5_pipeline_to_recon_matrix).
 *
 * Coil maps: NLINV (recon/calib/nlinv.h) from all the spokes at once — joint estimation of image
 * and coils, because ESPIRiT on the gridded centre is calibrated only inside the Nyquist radius
 * of the spokes (nc_sense.h). Then CG-SENSE through the Toeplitz normal per frame (nc_sense.h:
 * keys iters and lambda, lambda relative to the normal's mean diagonal): one frame of all
 * spokes, or frames of frame_spokes spokes every frame_step spokes as `grid` makes them
 * (r5_pipeline_grid_frames; images' dim 10), each warm-started from the previous frame. For one
 * frame the NLINV image itself is already the joint solution: SENSE with its maps refines it
 * with the same data (the two agree to 0.99 on the real radial set: bench/bench_noncart.sh).
 *
 * The driver (r5_pipeline_nc_frames) is shared with the non-Cartesian `cs` (nc_cs_pipeline.c),
 * which solves each frame with a sparsity prior instead of CG-SENSE.
 *
 * The NUFFT computes on CPU contexts only (nufft.h): on another context the reconstruction runs
 * on a CPU context of its own (one log line), the recon-matrix step on the caller's. */
#include <stdlib.h>
#include <string.h>

#include "../calib/nlinv.h"
#include "../core/log.h"
#include "grid.h"
#include "nc_sense.h"
#include "pipelines.h"

struct nc_run {
	r5_ctx *ctx;
	const r5_nc_frame_solver *solver;
	long image_dims[R5_DIMS]; /* [Nx, Ny, Nz, coils] */
	long n_read, spokes, step, n_frames;
	float *coords;
	r5_array *samples, *maps, *images, *frame;
};

/* spokes first .. first + count - 1 of the scan: samples [1, n_read, count, coils] and wrapped
 * coordinates */
static r5_status take_spokes(struct nc_run *r, const r5_scan *scan, long first, long count, r5_array *samples)
{
	long n = r->n_read * count;
	const r5_array *k = scan->kspace;
	for (long c = 0; c < r->image_dims[3]; c++)
		memcpy(samples->data + c * n, k->data + c * k->strides[3] + first * r->n_read,
		       sizeof(float complex) * (size_t)n);
	R5_TRY(r5_grid_coords(scan->traj, r->image_dims, first, count, r->coords));
	r5_grid_wrap_coords(r->image_dims, n, r->coords);
	return R5_OK;
}

static r5_status nc_maps(struct nc_run *r, const r5_scan *scan, const r5_progress *progress, r5_image_set *set)
{
	long all = scan->kspace->dims[2], sdims[R5_DIMS], img[R5_DIMS];
	r5_dims_ones(sdims);
	sdims[1] = r->n_read, sdims[2] = all, sdims[3] = r->image_dims[3];
	r5_dims_copy(img, r->image_dims);
	img[3] = 1;
	r5_array *samples = NULL, *image = NULL;
	double t = r5_pipeline_clock(NULL);
	r5_status s = r5_array_alloc_host(sdims, &samples);
	if (s == R5_OK)
		s = r5_array_alloc_host(img, &image);
	if (s == R5_OK)
		s = r5_array_alloc_host(r->image_dims, &r->maps);
	if (s == R5_OK)
		s = take_spokes(r, scan, 0, all, samples);
	r5_progress_part part;
	r5_nlinv_conf conf = r5_nlinv_defaults;
	conf.progress = r5_progress_part_init(&part, progress, 0.05, 0.5, "nlinv");
	r5_nlinv_info info;
	if (s == R5_OK)
		s = r5_nlinv_nc(r->ctx, &conf, r->image_dims, r->n_read * all, r->coords, samples, image, r->maps, &info);
	if (s == R5_OK) {
		double seconds = r5_pipeline_clock(NULL) - t;
		r5_info("%s: coil maps by NLINV from %ld spokes: %d Newton steps, %d CG iterations, %.3f s",
			r->solver->name, all, conf.newton_steps, info.cg_iters, seconds);
		r5_image_set_add_stage(set, "nlinv", seconds);
	}
	r5_array_free(image);
	r5_array_free(samples);
	return s;
}

static r5_status nc_frames(struct nc_run *r, const r5_scan *scan, const r5_recon_params *p,
			   const r5_progress *progress, r5_image_set *set)
{
	long pixels = r->image_dims[0] * r->image_dims[1] * r->image_dims[2], sdims[R5_DIMS], img[R5_DIMS];
	r5_dims_ones(sdims);
	sdims[1] = r->n_read, sdims[2] = r->spokes, sdims[3] = r->image_dims[3];
	r5_dims_copy(img, r->image_dims);
	img[3] = 1;
	R5_TRY(r5_array_alloc_host(sdims, &r->samples));
	R5_TRY(r5_array_alloc_host(img, &r->frame));
	R5_TRY(r5_zfill(r->ctx, r->frame, 0.0f));
	double t = r5_pipeline_clock(NULL);
	for (long f = 0; f < r->n_frames; f++) {
		R5_TRY(take_spokes(r, scan, f * r->step, r->spokes, r->samples));
		r5_progress_part part;
		const r5_progress *hook = r5_progress_part_init(&part, progress, 0.5 + 0.4 * (double)f / r->n_frames,
								 0.5 + 0.4 * (double)(f + 1) / r->n_frames, r->solver->stage);
		R5_TRY(r->solver->solve(r->ctx, p, r->image_dims, r->n_read * r->spokes, r->coords, r->samples, r->maps,
					hook, r->frame));
		memcpy(r->images->data + f * pixels, r->frame->data, sizeof(float complex) * (size_t)pixels);
	}
	r5_image_set_add_stage(set, r->solver->stage, r5_pipeline_clock(NULL) - t);
	return R5_OK;
}

/* CG-SENSE of one frame, warm-started from the previous one (frame holds it) */
static r5_status sense_frame(r5_ctx *ctx, const r5_recon_params *p, const long image_dims[R5_DIMS], long n_points,
			     const float *coords, const r5_array *samples, const r5_array *maps,
			     const r5_progress *progress, r5_array *frame)
{
	r5_nc_sense_opts o = r5_nc_sense_defaults;
	o.iters = p->sense.iters;
	o.lambda = p->sense.lambda;
	o.warm_start = 1;
	return r5_nc_sense_solve(ctx, image_dims, n_points, coords, samples, maps, &o, progress, frame);
}

r5_status r5_pipeline_nc_sense(r5_ctx *ctx, const r5_scan *scan, const r5_recon_params *p,
			       const r5_progress *progress, r5_image_set *set)
{
	static const r5_nc_frame_solver sense = {"sense", "nc-sense", sense_frame};
	return r5_pipeline_nc_frames(ctx, scan, p, &sense, progress, set);
}

r5_status r5_pipeline_nc_frames(r5_ctx *ctx, const r5_scan *scan, const r5_recon_params *p,
				const r5_nc_frame_solver *solver, const r5_progress *progress, r5_image_set *set)
{
	const char *name = solver->name;
	if (!scan->traj)
		return r5_set_error(R5_EINVAL, "pipeline %s (non-Cartesian): the scan has no trajectory", name);
	const r5_array *k = scan->kspace;
	struct nc_run r;
	memset(&r, 0, sizeof r);
	r.solver = solver;
	r.n_read = k->dims[1];
	r5_pipeline_nc_image_dims(&scan->header, k->dims[R5_DIM_COIL], r.image_dims);
	if (r.image_dims[0] < 2 || r.image_dims[1] < 2)
		return r5_set_error(R5_EINVAL, "pipeline %s: encoded matrix %ldx%ld; a non-Cartesian %s needs at "
				    "least 2x2", name, r.image_dims[0], r.image_dims[1], name);
	R5_TRY(r5_pipeline_grid_frames(p, k->dims[2], &r.spokes, &r.step, &r.n_frames));
	r5_ctx *own = NULL;
	R5_TRY(r5_pipeline_nc_context(ctx, name, &own, &r.ctx));
	long out[R5_DIMS];
	r5_dims_copy(out, r.image_dims);
	out[R5_DIM_COIL] = 1;
	out[R5_DIM_TIME] = r.n_frames;
	r5_status s = R5_OK;
	r.coords = malloc(sizeof *r.coords * 3 * (size_t)(r.n_read * k->dims[2]));
	if (!r.coords)
		s = r5_set_error(R5_ENOMEM, "%s: coordinates of %ld points", name, r.n_read * k->dims[2]);
	if (s == R5_OK)
		s = r5_array_zeros(r.ctx, R5_HOST, out, &r.images);
	if (s == R5_OK)
		s = nc_maps(&r, scan, progress, set);
	if (s == R5_OK)
		s = nc_frames(&r, scan, p, progress, set);
	if (s == R5_OK)
		r5_info("%s: %ld frame(s) of %ld spokes (step %ld), image %ldx%ldx%ld, %ld coils, %d iterations", name,
			r.n_frames, r.spokes, r.step, r.image_dims[0], r.image_dims[1], r.image_dims[2], r.image_dims[3],
			p->sense.iters);
	double t = r5_pipeline_clock(ctx);
	if (s == R5_OK)
		s = r5_progress_check(progress, "resize", 0.9);
	if (s == R5_OK)
		s = r5_pipeline_to_recon_matrix(ctx, scan, r.images, progress, &set->images);
	r5_image_set_add_stage(set, "resize", r5_pipeline_clock(ctx) - t);
	free(r.coords);
	r5_array_free(r.samples);
	r5_array_free(r.frame);
	r5_array_free(r.maps);
	r5_array_free(r.images);
	r5_ctx_destroy(own);
	return s;
}

double r5_pipeline_nc_sense_bytes(const long image_dims[R5_DIMS], long n_read, long n_spokes, long frame_spokes,
				  long frames)
{
	double cplx = (double)sizeof(float complex), pixels = 1;
	for (int d = 0; d < 3; d++)
		pixels *= (double)image_dims[d];
	long all = n_read * n_spokes, frame = n_read * frame_spokes;
	/* held throughout: images, coordinates, maps; then NLINV on all spokes (with its samples and
	 * image), or the frames' SENSE (with the frame's samples and image) */
	double held = cplx * pixels * ((double)frames + (double)image_dims[3]) + 12.0 * (double)all;
	double maps = r5_nlinv_bytes(NULL, image_dims, all) + cplx * ((double)all * (double)image_dims[3] + pixels);
	double sense = r5_nc_sense_bytes(image_dims, frame, 0) + cplx * ((double)frame * (double)image_dims[3] + pixels);
	return held + (maps > sense ? maps : sense);
}
