/* Non-Cartesian CG-SENSE through the Toeplitz normal, and ESPIRiT maps from the gridded centre
 * (nc_sense.h says what and why). */
#include "nc_sense.h"

#include <math.h>
#include <stdlib.h>

#include "../calib/espirit.h"
#include "../core/fft.h"
#include "../solve/cg.h"

const r5_nc_sense_opts r5_nc_sense_defaults = {
	.iters = 30,
	.lambda = 1e-3f,
	.use_density = 0,
	.tolerance = 0.0,
	.warm_start = 0,
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

/* samples times the weights (per point, all coils), into a new host array */
static r5_status weighted_samples(r5_ctx *ctx, const r5_array *samples, long n_points, const float *weights,
				  r5_array **out)
{
	r5_array *w = NULL;
	r5_status s = r5_array_alloc(ctx, R5_HOST, samples->dims, &w);
	if (s != R5_OK)
		return s;
	long coils = samples->dims[3];
	for (long c = 0; c < coils; c++)
		for (long j = 0; j < n_points; j++)
			w->data[c * n_points + j] = samples->data[c * n_points + j] * weights[j];
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
} nc_normal;

/* out = S^H T_W S in */
static r5_status nc_normal_apply(r5_ctx *ctx, void *user, r5_array *out, const r5_array *in)
{
	nc_normal *n = user;
	r5_status s = r5_zmul(ctx, n->coil_images, n->maps, in, 0);
	if (s == R5_OK)
		s = r5_nufft_normal(ctx, n->plan, n->coil_images, n->coil_images);
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
	if (!maps || !image)
		return r5_set_error(R5_EINVAL, "%s: maps and image are required", who);
	long img[R5_DIMS], coil_dims[R5_DIMS];
	dims_image(img, image_dims, 1);
	dims_image(coil_dims, image_dims, image_dims[3]);
	if (!r5_dims_equal(image->dims, img) || image->where != R5_HOST || !r5_array_is_contiguous(image))
		return r5_set_error(R5_EINVAL, "%s: image [%ld, %ld, %ld, %ld] must be a contiguous host [%ld, %ld, %ld]",
				    who, image->dims[0], image->dims[1], image->dims[2], image->dims[3], img[0], img[1],
				    img[2]);
	if (opts->iters < 1 || !(opts->lambda >= 0.0f) || !(opts->tolerance >= 0.0))
		return r5_set_error(R5_EINVAL, "%s: iters %d must be >= 1, lambda %g and tolerance %g >= 0", who,
				    opts->iters, (double)opts->lambda, opts->tolerance);

	float *weights = NULL;
	r5_nufft_plan *plan = NULL;
	r5_array *wy = NULL, *coil_images = NULL, *rhs = NULL;
	if (opts->use_density) {
		weights = malloc(sizeof(float) * (size_t)n_points);
		if (!weights)
			return r5_set_error(R5_ENOMEM, "%s: %ld weights", who, n_points);
		s = r5_nc_ramp_weights(image_dims, n_points, coords, weights);
	}
	if (s == R5_OK)
		s = make_plan(ctx, who, image_dims, n_points, coords, &opts->nufft, &plan);
	if (s == R5_OK)
		s = r5_nufft_toeplitz(ctx, plan, weights);
	if (s == R5_OK && weights)
		s = weighted_samples(ctx, samples, n_points, weights, &wy);
	if (s == R5_OK)
		s = r5_array_alloc(ctx, R5_HOST, coil_dims, &coil_images);
	if (s == R5_OK)
		s = r5_array_alloc(ctx, R5_HOST, img, &rhs);
	/* rhs = S^H A^H W y */
	if (s == R5_OK)
		s = r5_nufft_adjoint(ctx, plan, coil_images, wy ? wy : samples);
	if (s == R5_OK)
		s = r5_zmul(ctx, coil_images, coil_images, maps, R5_ZMUL_CONJ2);
	if (s == R5_OK)
		s = r5_zsum(ctx, rhs, coil_images);
	if (s == R5_OK && !opts->warm_start)
		s = r5_zfill(ctx, image, 0.0f);
	if (s == R5_OK) {
		/* T_W's diagonal: N^-1 sum_j w_j */
		double wsum = 0.0;
		for (long j = 0; j < n_points; j++)
			wsum += weights ? weights[j] : 1.0;
		double diag = wsum / (double)(img[0] * img[1] * img[2]) * maps_mean_energy(ctx, maps);
		nc_normal normal = {.plan = plan, .maps = maps, .coil_images = coil_images};
		r5_cg_conf conf = r5_cg_defaults;
		conf.max_iters = opts->iters;
		conf.tolerance = opts->tolerance;
		conf.lambda = (float)(opts->lambda * diag);
		r5_iter_progress hook = {.progress = progress, .stage = "nc_sense", .lo = 0.0, .hi = 1.0};
		conf.hook = r5_iter_progress_hook;
		conf.hook_user = &hook;
		s = r5_cg_solve(ctx, &conf, nc_normal_apply, &normal, rhs, image, NULL);
		if (s != R5_OK)
			s = r5_error_context(s, "%s", who);
	}
	r5_array_free(rhs);
	r5_array_free(coil_images);
	r5_array_free(wy);
	r5_nufft_plan_destroy(plan);
	free(weights);
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
	double pixels = 1, grid = 1, twice = 1;
	for (int d = 0; d < 3; d++) {
		double n = (double)image_dims[d];
		pixels *= n;
		grid *= n > 1 ? 2.0 * n + 2.0 : 1.0;
		twice *= n > 1 ? 2.0 * n : 1.0;
	}
	double nufft = cplx * coils * (grid + 2.0 * (double)n_points) + (double)n_points * 24.0;
	double toeplitz = cplx * twice * (1.0 + coils);
	double weights = use_density ? (double)n_points * (4.0 + cplx * coils) : 0.0;
	return nufft + toeplitz + weights + cplx * (pixels * coils + 4.0 * pixels);
}
