/* Non-Cartesian CG-SENSE through the Toeplitz normal, and ESPIRiT maps from the gridded centre
 * (nc_sense.h says what and why). */
#include "nc_sense.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../calib/espirit.h"
#include "../core/fft.h"
#include "../solve/cg.h"

const r5_nc_sense_opts r5_nc_sense_defaults = {
	.iters = 30,
	.lambda = 1e-3f,
	.use_density = 0,
	.tolerance = 0.0,
	.warm_start = 0,
	.normal = R5_NC_NORMAL_TOEPLITZ,
	.nufft = {.oversampling = 2.0, .width = 0, .tolerance = 1e-5},
};

static void dims_image(long out[R5_DIMS], const long image_dims[R5_DIMS], long coils)
{
	r5_dims_ones(out);
	out[0] = image_dims[0], out[1] = image_dims[1], out[2] = image_dims[2], out[3] = coils;
}

/* The shapes every entry point shares: image dims, samples [1, n_read, n_lines, coils] with
 * n_points samples, maps [Nx, Ny, Nz, coils]. */
static r5_status check_inputs(const char *who, const long image_dims[R5_DIMS], long n_points, const float *coords,
			      const r5_array *samples, const r5_array *maps)
{
	if (!image_dims || !coords || !samples)
		return r5_set_error(R5_EINVAL, "%s: image dims, coordinates and samples are required", who);
	for (int d = 4; d < R5_DIMS; d++)
		if (image_dims[d] != 1)
			return r5_set_error(R5_EINVAL, "%s: image dims must be [Nx, Ny, Nz, coils] (dim %d is %ld)", who,
					    d, image_dims[d]);
	if (image_dims[0] < 2 || image_dims[1] < 2 || image_dims[2] < 1 || image_dims[3] < 1)
		return r5_set_error(R5_EINVAL, "%s: image %ld x %ld x %ld with %ld coils", who, image_dims[0],
				    image_dims[1], image_dims[2], image_dims[3]);
	if (n_points < 1 || samples->dims[0] != 1 || samples->dims[1] * samples->dims[2] != n_points ||
	    samples->dims[3] != image_dims[3] || r5_array_size(samples) != n_points * image_dims[3])
		return r5_set_error(R5_EINVAL,
				    "%s: samples [%ld, %ld, %ld, %ld] do not hold %ld points of %ld coils as "
				    "[1, n_read, n_lines, coils]",
				    who, samples->dims[0], samples->dims[1], samples->dims[2], samples->dims[3], n_points,
				    image_dims[3]);
	if (samples->where != R5_HOST || !r5_array_is_contiguous(samples))
		return r5_set_error(R5_EINVAL, "%s: samples must be a contiguous host array", who);
	if (maps) {
		long want[R5_DIMS];
		dims_image(want, image_dims, image_dims[3]);
		if (!r5_dims_equal(maps->dims, want) || maps->where != R5_HOST || !r5_array_is_contiguous(maps))
			return r5_set_error(R5_EINVAL,
					    "%s: maps [%ld, %ld, %ld, %ld, %ld] must be a contiguous host array "
					    "[%ld, %ld, %ld, %ld]",
					    who, maps->dims[0], maps->dims[1], maps->dims[2], maps->dims[3], maps->dims[4],
					    want[0], want[1], want[2], want[3]);
	}
	return R5_OK;
}

r5_status r5_nc_ramp_weights(const long image_dims[R5_DIMS], long n_points, const float *coords, float *weights)
{
	if (!image_dims || !coords || !weights || n_points < 1)
		return r5_set_error(R5_EINVAL, "nc ramp weights: coordinates, weights and n_points >= 1 required");
	long n_max = image_dims[0] > image_dims[1] ? image_dims[0] : image_dims[1];
	if (image_dims[2] > n_max)
		n_max = image_dims[2];
	double half = 0.5 * (double)n_max;
	for (long j = 0; j < n_points; j++) {
		double k2 = 0.0;
		for (int d = 0; d < 3; d++)
			k2 += (double)coords[3 * j + d] * coords[3 * j + d];
		double k = sqrt(k2);
		weights[j] = (float)((k > 0.25 ? k : 0.25) / half);
	}
	return R5_OK;
}

/* A plan with the points set (for the caller to destroy). */
static r5_status make_plan(r5_ctx *ctx, const char *who, const long image_dims[R5_DIMS], long n_points,
			   const float *coords, const r5_nufft_opts *nopts, r5_nufft_plan **out)
{
	long dims[R5_DIMS];
	dims_image(dims, image_dims, image_dims[3]);
	r5_nufft_plan *plan = NULL;
	r5_status s = r5_nufft_plan_make(ctx, dims, nopts, &plan);
	if (s == R5_OK)
		s = r5_nufft_set_points(ctx, plan, n_points, coords);
	if (s != R5_OK) {
		r5_nufft_plan_destroy(plan);
		return r5_error_context(s, "%s", who);
	}
	*out = plan;
	return R5_OK;
}

/* out = samples times the weights (per point, all coils); out may be samples */
static void weigh(const r5_array *samples, long n_points, const float *weights, r5_array *out)
{
	long coils = samples->dims[3];
	for (long c = 0; c < coils; c++)
		for (long j = 0; j < n_points; j++)
			out->data[c * n_points + j] = samples->data[c * n_points + j] * weights[j];
}

/* samples times the weights, into a new host array */
static r5_status weighted_samples(r5_ctx *ctx, const r5_array *samples, long n_points, const float *weights,
				  r5_array **out)
{
	r5_array *w = NULL;
	r5_status s = r5_array_alloc(ctx, R5_HOST, samples->dims, &w);
	if (s != R5_OK)
		return s;
	weigh(samples, n_points, weights, w);
	*out = w;
	return R5_OK;
}

r5_status r5_nc_grid_coils(r5_ctx *ctx, const long image_dims[R5_DIMS], long n_points, const float *coords,
			   const r5_array *samples, const float *weights, r5_array *coil_images)
{
	const char *who = "nc gridding";
	r5_status s = check_inputs(who, image_dims, n_points, coords, samples, coil_images);
	if (s != R5_OK)
		return s;
	float *ramp = NULL;
	r5_nufft_plan *plan = NULL;
	r5_array *wy = NULL;
	if (!weights) {
		ramp = malloc(sizeof(float) * (size_t)n_points);
		if (!ramp)
			return r5_set_error(R5_ENOMEM, "%s: %ld weights", who, n_points);
		s = r5_nc_ramp_weights(image_dims, n_points, coords, ramp);
		weights = ramp;
	}
	if (s == R5_OK)
		s = make_plan(ctx, who, image_dims, n_points, coords, NULL, &plan);
	if (s == R5_OK)
		s = weighted_samples(ctx, samples, n_points, weights, &wy);
	if (s == R5_OK)
		s = r5_nufft_adjoint(ctx, plan, coil_images, wy);
	r5_array_free(wy);
	r5_nufft_plan_destroy(plan);
	free(ramp);
	return s;
}

/* ---- CG-SENSE ---- */

typedef struct nc_normal {
	r5_nufft_plan *plan;
	const r5_array *maps;
	r5_array *coil_images; /* [Nx, Ny, Nz, coils] work */
	r5_array *samples;     /* R5_NC_NORMAL_NUFFT: [1, n_read, n_lines, coils] work (NULL: Toeplitz) */
	const float *weights;  /* with samples: W (NULL: 1) */
} nc_normal;

/* A^H W A in place on the coil images: the Toeplitz kernel, or the NUFFT pair */
static r5_status nc_normal_coils(r5_ctx *ctx, nc_normal *n)
{
	if (!n->samples)
		return r5_nufft_normal(ctx, n->plan, n->coil_images, n->coil_images);
	R5_TRY(r5_nufft_forward(ctx, n->plan, n->samples, n->coil_images));
	if (n->weights)
		weigh(n->samples, n->samples->dims[1] * n->samples->dims[2], n->weights, n->samples);
	return r5_nufft_adjoint(ctx, n->plan, n->coil_images, n->samples);
}

/* out = S^H T_W S in */
static r5_status nc_normal_apply(r5_ctx *ctx, void *user, r5_array *out, const r5_array *in)
{
	nc_normal *n = user;
	r5_status s = r5_zmul(ctx, n->coil_images, n->maps, in, 0);
	if (s == R5_OK)
		s = nc_normal_coils(ctx, n);
	if (s == R5_OK)
		s = r5_zmul(ctx, n->coil_images, n->coil_images, n->maps, R5_ZMUL_CONJ2);
	if (s == R5_OK)
		s = r5_zsum(ctx, out, n->coil_images);
	return s;
}

/* mean over pixels of sum_c |S_c|^2 */
static double maps_mean_energy(r5_ctx *ctx, const r5_array *maps)
{
	double norm = 0.0;
	if (r5_znorm(ctx, maps, &norm) != R5_OK)
		return 0.0;
	long pixels = maps->dims[0] * maps->dims[1] * maps->dims[2];
	return norm * norm / (double)pixels;
}

struct r5_nc_sense_frames {
	long image_dims[R5_DIMS];
	r5_nc_sense_opts opts;
	r5_nufft_plan *plan;       /* kept: points and Toeplitz kernel per frame */
	r5_array *coil_images;     /* [Nx, Ny, Nz, coils] */
	r5_array *rhs;             /* [Nx, Ny, Nz] */
	float *weights;            /* use_density: the ramp weights, as many as wy's points */
	r5_array *wy;              /* use_density: the weighted samples (the last frame's shape) */
	r5_array *work_samples;    /* R5_NC_NORMAL_NUFFT: the normal's samples (the last frame's shape) */
	r5_nc_sense_timing timing; /* the last frame's */
};

static double clock_s(clockid_t which)
{
	struct timespec t;
	clock_gettime(which, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Stage `stage` ends now: its wall and process CPU seconds since *wall / *cpu, which move on. */
static void stage_end(r5_nc_sense_timing *t, int stage, double *wall, double *cpu)
{
	double w = clock_s(CLOCK_MONOTONIC), c = clock_s(CLOCK_PROCESS_CPUTIME_ID);
	t->wall_s[stage] += w - *wall;
	t->cpu_s[stage] += c - *cpu;
	*wall = w, *cpu = c;
}

void r5_nc_sense_frames_destroy(r5_nc_sense_frames *f)
{
	if (!f)
		return;
	r5_nufft_plan_destroy(f->plan);
	r5_array_free(f->coil_images);
	r5_array_free(f->rhs);
	r5_array_free(f->wy);
	r5_array_free(f->work_samples);
	free(f->weights);
	free(f);
}

r5_status r5_nc_sense_frames_make(r5_ctx *ctx, const long image_dims[R5_DIMS], const r5_nc_sense_opts *opts,
				  r5_nc_sense_frames **out)
{
	const char *who = "nc sense";
	if (!out || !image_dims)
		return r5_set_error(R5_EINVAL, "%s: image dims and an output are required", who);
	*out = NULL;
	if (!opts)
		opts = &r5_nc_sense_defaults;
	if (opts->iters < 1 || !(opts->lambda >= 0.0f) || !(opts->tolerance >= 0.0))
		return r5_set_error(R5_EINVAL, "%s: iters %d must be >= 1, lambda %g and tolerance %g >= 0", who,
				    opts->iters, (double)opts->lambda, opts->tolerance);
	if (opts->normal != R5_NC_NORMAL_TOEPLITZ && opts->normal != R5_NC_NORMAL_NUFFT)
		return r5_set_error(R5_EINVAL, "%s: normal %d (0 Toeplitz, 1 NUFFT pair)", who, opts->normal);
	r5_nc_sense_frames *f = calloc(1, sizeof *f);
	if (!f)
		return r5_set_error(R5_ENOMEM, "%s: frame solver", who);
	r5_dims_copy(f->image_dims, image_dims);
	f->opts = *opts;
	double wall = clock_s(CLOCK_MONOTONIC), cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID);
	long img[R5_DIMS], coil_dims[R5_DIMS];
	dims_image(img, image_dims, 1);
	dims_image(coil_dims, image_dims, image_dims[3]);
	r5_status s = r5_nufft_plan_make(ctx, coil_dims, &opts->nufft, &f->plan);
	if (s == R5_OK)
		s = r5_array_alloc(ctx, R5_HOST, coil_dims, &f->coil_images);
	if (s == R5_OK)
		s = r5_array_alloc(ctx, R5_HOST, img, &f->rhs);
	if (s != R5_OK) {
		r5_nc_sense_frames_destroy(f);
		return r5_error_context(s, "%s", who);
	}
	stage_end(&f->timing, R5_NC_STAGE_PLAN, &wall, &cpu);
	*out = f;
	return R5_OK;
}

void r5_nc_sense_frames_timing(const r5_nc_sense_frames *f, r5_nc_sense_timing *timing) { *timing = f->timing; }

/* Per frame: the points (and weights) set, the Toeplitz kernel, rhs = S^H A^H W y. */
static r5_status frame_operator(r5_ctx *ctx, r5_nc_sense_frames *f, long n_points, const float *coords,
				const r5_array *samples, const r5_array *maps, double *wall, double *cpu)
{
	r5_status s = R5_OK;
	if (f->opts.use_density && (!f->wy || !r5_dims_equal(f->wy->dims, samples->dims))) {
		free(f->weights);
		r5_array_free(f->wy);
		f->wy = NULL;
		f->weights = malloc(sizeof(float) * (size_t)n_points);
		if (!f->weights)
			return r5_set_error(R5_ENOMEM, "%ld weights", n_points);
		s = r5_array_alloc(ctx, R5_HOST, samples->dims, &f->wy);
	}
	if (s == R5_OK && f->weights)
		s = r5_nc_ramp_weights(f->image_dims, n_points, coords, f->weights);
	if (s == R5_OK)
		s = r5_nufft_set_points(ctx, f->plan, n_points, coords);
	stage_end(&f->timing, R5_NC_STAGE_POINTS, wall, cpu);
	int pair = f->opts.normal == R5_NC_NORMAL_NUFFT;
	if (s == R5_OK && pair && (!f->work_samples || !r5_dims_equal(f->work_samples->dims, samples->dims))) {
		r5_array_free(f->work_samples);
		f->work_samples = NULL;
		s = r5_array_alloc(ctx, R5_HOST, samples->dims, &f->work_samples);
	}
	if (s == R5_OK && !pair)
		s = r5_nufft_toeplitz(ctx, f->plan, f->weights);
	stage_end(&f->timing, R5_NC_STAGE_TOEPLITZ, wall, cpu);
	if (s == R5_OK && f->weights)
		weigh(samples, n_points, f->weights, f->wy);
	if (s == R5_OK)
		s = r5_nufft_adjoint(ctx, f->plan, f->coil_images, f->weights ? f->wy : samples);
	if (s == R5_OK)
		s = r5_zmul(ctx, f->coil_images, f->coil_images, maps, R5_ZMUL_CONJ2);
	if (s == R5_OK)
		s = r5_zsum(ctx, f->rhs, f->coil_images);
	stage_end(&f->timing, R5_NC_STAGE_RHS, wall, cpu);
	return s;
}

r5_status r5_nc_sense_frames_solve(r5_ctx *ctx, r5_nc_sense_frames *f, long n_points, const float *coords,
				   const r5_array *samples, const r5_array *maps, int warm_start,
				   const r5_progress *progress, r5_array *image)
{
	const char *who = "nc sense";
	if (!f)
		return r5_set_error(R5_EINVAL, "%s: no frame solver", who);
	r5_status s = check_inputs(who, f->image_dims, n_points, coords, samples, maps);
	if (s != R5_OK)
		return s;
	if (!maps || !image)
		return r5_set_error(R5_EINVAL, "%s: maps and image are required", who);
	long img[R5_DIMS];
	dims_image(img, f->image_dims, 1);
	if (!r5_dims_equal(image->dims, img) || image->where != R5_HOST || !r5_array_is_contiguous(image))
		return r5_set_error(R5_EINVAL, "%s: image [%ld, %ld, %ld, %ld] must be a contiguous host [%ld, %ld, %ld]",
				    who, image->dims[0], image->dims[1], image->dims[2], image->dims[3], img[0], img[1],
				    img[2]);
	memset(f->timing.wall_s + R5_NC_STAGE_POINTS, 0, sizeof(double) * (R5_NC_STAGES - R5_NC_STAGE_POINTS));
	memset(f->timing.cpu_s + R5_NC_STAGE_POINTS, 0, sizeof(double) * (R5_NC_STAGES - R5_NC_STAGE_POINTS));
	double wall = clock_s(CLOCK_MONOTONIC), cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID);
	s = frame_operator(ctx, f, n_points, coords, samples, maps, &wall, &cpu);
	if (s == R5_OK && !warm_start)
		s = r5_zfill(ctx, image, 0.0f);
	if (s != R5_OK)
		return r5_error_context(s, "%s", who);
	/* T_W's diagonal: N^-1 sum_j w_j */
	double wsum = 0.0;
	for (long j = 0; j < n_points; j++)
		wsum += f->weights ? f->weights[j] : 1.0;
	double diag = wsum / (double)(img[0] * img[1] * img[2]) * maps_mean_energy(ctx, maps);
	nc_normal normal = {.plan = f->plan, .maps = maps, .coil_images = f->coil_images,
			    .samples = f->opts.normal == R5_NC_NORMAL_NUFFT ? f->work_samples : NULL, .weights = f->weights};
	r5_cg_conf conf = r5_cg_defaults;
	conf.max_iters = f->opts.iters;
	conf.tolerance = f->opts.tolerance;
	conf.lambda = (float)(f->opts.lambda * diag);
	r5_iter_progress hook = {.progress = progress, .stage = "nc_sense", .lo = 0.0, .hi = 1.0};
	conf.hook = r5_iter_progress_hook;
	conf.hook_user = &hook;
	r5_cg_info info = {0};
	s = r5_cg_solve(ctx, &conf, nc_normal_apply, &normal, f->rhs, image, &info);
	stage_end(&f->timing, R5_NC_STAGE_CG, &wall, &cpu);
	f->timing.cg_iters = info.iters;
	f->timing.rel_residual = info.rel_residual;
	return s == R5_OK ? R5_OK : r5_error_context(s, "%s", who);
}

r5_status r5_nc_sense_solve(r5_ctx *ctx, const long image_dims[R5_DIMS], long n_points, const float *coords,
			    const r5_array *samples, const r5_array *maps, const r5_nc_sense_opts *opts,
			    const r5_progress *progress, r5_array *image)
{
	const char *who = "nc sense";
	if (!opts)
		opts = &r5_nc_sense_defaults;
	r5_status s = check_inputs(who, image_dims, n_points, coords, samples, maps);
	if (s != R5_OK)
		return s;
	r5_nc_sense_frames *f = NULL;
	R5_TRY(r5_nc_sense_frames_make(ctx, image_dims, opts, &f));
	s = r5_nc_sense_frames_solve(ctx, f, n_points, coords, samples, maps, opts->warm_start, progress, image);
	r5_nc_sense_frames_destroy(f);
	return s;
}

/* ---- ESPIRiT on the gridded centre ---- */

r5_status r5_nc_maps_espirit(r5_ctx *ctx, const long image_dims[R5_DIMS], long n_points, const float *coords,
			     const r5_array *samples, int calib, r5_array **maps)
{
	const char *who = "nc espirit maps";
	r5_status s = check_inputs(who, image_dims, n_points, coords, samples, NULL);
	if (s != R5_OK)
		return s;
	if (!maps)
		return r5_set_error(R5_EINVAL, "%s: no output", who);
	*maps = NULL;
	long coil_dims[R5_DIMS], acs_dims[R5_DIMS];
	dims_image(coil_dims, image_dims, image_dims[3]);
	r5_dims_copy(acs_dims, coil_dims);
	for (int d = 0; d < 3; d++) {
		if (image_dims[d] == 1)
			continue;
		if (calib < 8 || calib > image_dims[d])
			return r5_set_error(R5_EINVAL, "%s: calibration width %d must be in [8, %ld] (dimension %d)", who,
					    calib, image_dims[d], d);
		acs_dims[d] = calib;
	}
	r5_array *coil_images = NULL, *acs = NULL, *espirit = NULL;
	s = r5_array_alloc(ctx, R5_HOST, coil_dims, &coil_images);
	if (s == R5_OK)
		s = r5_nc_grid_coils(ctx, image_dims, n_points, coords, samples, NULL, coil_images);
	unsigned long flags = image_dims[2] > 1 ? 7UL : 3UL;
	if (s == R5_OK)
		s = r5_fft(ctx, flags, coil_images, coil_images);
	if (s == R5_OK)
		s = r5_array_alloc(ctx, R5_HOST, acs_dims, &acs);
	if (s == R5_OK)
		s = r5_zresize_centered(ctx, acs, coil_images);
	if (s == R5_OK) {
		r5_espirit_conf conf = r5_espirit_defaults;
		conf.calib = calib;
		conf.n_maps = 1;
		long img3[3] = {image_dims[0], image_dims[1], image_dims[2]};
		s = r5_espirit_maps(ctx, &conf, acs, img3, &espirit, NULL);
		if (s != R5_OK)
			s = r5_error_context(s, "%s", who);
	}
	/* [Nx, Ny, Nz, coils, 1] where the context computes -> host [Nx, Ny, Nz, coils] */
	if (s == R5_OK)
		s = r5_array_alloc(ctx, R5_HOST, coil_dims, maps);
	if (s == R5_OK) {
		r5_array v = r5_array_view_strided(espirit, coil_dims, NULL, 0);
		s = r5_array_copy(ctx, *maps, &v);
	}
	if (s != R5_OK) {
		r5_array_free(*maps);
		*maps = NULL;
	}
	r5_array_free(espirit);
	r5_array_free(acs);
	r5_array_free(coil_images);
	return s;
}

double r5_nc_sense_bytes(const long image_dims[R5_DIMS], long n_points, int use_density)
{
	double cplx = (double)sizeof(float complex), coils = (double)image_dims[3];
	double pixels = 1, grid = 1, twice = 1, psf_grid = 1;
	for (int d = 0; d < 3; d++) {
		double n = (double)image_dims[d];
		pixels *= n;
		grid *= n > 1 ? 2.0 * n + 2.0 : 1.0;
		twice *= n > 1 ? 2.0 * n : 1.0;
		psf_grid *= n > 1 ? 4.0 * n + 2.0 : 1.0;
	}
	double nufft = cplx * coils * (grid + 2.0 * (double)n_points) + (double)n_points * 24.0;
	/* T's FFT, the coil-group 2N grid, and the PSF plan (its (4N)^D grid, sorted weights and
	 * tables, its 2N output), kept by the plan (nufft.h) */
	double toeplitz = cplx * twice * (2.0 + coils) + cplx * psf_grid + (double)n_points * (2.0 * cplx + 24.0);
	double weights = use_density ? (double)n_points * (4.0 + cplx * coils) : 0.0;
	return nufft + toeplitz + weights + cplx * (pixels * coils + 4.0 * pixels);
}
