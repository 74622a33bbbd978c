/* Frame-level gridding (grid.h): density weights, the adjoint NUFFT of the weighted samples and
 * the coil combination, on a plan kept across frames. The `grid` pipeline over a whole scan is
 * in grid_pipeline.c. */
#include "grid.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/log.h"
#include "../linop/density.h"

struct r5_grid_plan {
	long image_dims[R5_DIMS]; /* [Nx, Ny, Nz, coils] */
	r5_nufft_plan *nufft;
	float *coords, *weights; /* this frame's (wrapped) coordinates and ramp weights */
	long points_cap;
	r5_array *weighted;    /* W samples, [1, n_points, 1, coils] */
	r5_array *coil_images; /* [Nx, Ny, Nz, coils], when the caller keeps none */
};

static long image_pixels(const long dims[R5_DIMS]) { return dims[0] * dims[1] * dims[2]; }

r5_status r5_grid_plan_make(r5_ctx *ctx, const long image_dims[R5_DIMS], const r5_nufft_opts *opts, r5_grid_plan **out)
{
	*out = NULL;
	r5_grid_plan *plan = calloc(1, sizeof *plan);
	if (!plan)
		return r5_set_error(R5_ENOMEM, "gridding plan");
	r5_dims_copy(plan->image_dims, image_dims);
	r5_status s = r5_nufft_plan_make(ctx, image_dims, opts, &plan->nufft);
	if (s != R5_OK) {
		r5_grid_plan_destroy(plan);
		return r5_error_context(s, "gridding plan");
	}
	*out = plan;
	return R5_OK;
}

void r5_grid_plan_destroy(r5_grid_plan *plan)
{
	if (!plan)
		return;
	r5_nufft_plan_destroy(plan->nufft);
	free(plan->coords);
	free(plan->weights);
	r5_array_free(plan->weighted);
	r5_array_free(plan->coil_images);
	free(plan);
}

double r5_grid_plan_bytes(const long image_dims[R5_DIMS], long n_points, const r5_nufft_opts *opts)
{
	double sigma = opts && opts->oversampling > 0 ? opts->oversampling : r5_nufft_defaults.oversampling;
	double grid = 1, pixels = 1, coils = (double)(image_dims[3] > 0 ? image_dims[3] : 1);
	for (int d = 0; d < 3; d++) {
		double n = (double)(image_dims[d] > 0 ? image_dims[d] : 1);
		pixels *= n;
		grid *= n > 1 ? ceil(sigma * n) + 2 : 1;
	}
	double complex_bytes = sizeof(float complex);
	/* NUFFT grid + sorted samples + point tables; weighted samples; coil images; coords, weights */
	return complex_bytes * coils * (grid + 2.0 * (double)n_points + pixels) + (double)n_points * (24.0 + 16.0);
}

/* --- coordinates and the ramp --- */

r5_status r5_grid_coords(const r5_array *traj, const long image_dims[R5_DIMS], long first_spoke, long n_spokes,
			 float *coords)
{
	if (!traj || traj->dims[0] != 3 || traj->where != R5_HOST || !r5_array_is_contiguous(traj))
		return r5_set_error(R5_EINVAL, "trajectory: a contiguous host array [3, n_read, n_spokes] is needed");
	long n_read = traj->dims[1], total = traj->dims[2];
	if (first_spoke < 0 || n_spokes < 1 || first_spoke + n_spokes > total)
		return r5_set_error(R5_EINVAL, "trajectory: spokes %ld..%ld asked, it has %ld", first_spoke,
				    first_spoke + n_spokes - 1, total);
	const float complex *t = traj->data + 3 * n_read * first_spoke;
	for (long j = 0; j < n_read * n_spokes; j++)
		for (int d = 0; d < 3; d++) {
			double half = image_dims[d] > 1 ? 0.5 * (double)image_dims[d] : 0.5;
			float k = crealf(t[3 * j + d]);
			if (!isfinite(k) || k < -half || k > half)
				return r5_set_error(R5_EINVAL,
						    "trajectory: spoke %ld sample %ld has k%d = %g cycles/FOV, outside [%g, %g] "
						    "for an image of %ld along dimension %d",
						    first_spoke + j / n_read, j % n_read, d, (double)k, -half, half,
						    image_dims[d], d);
			coords[3 * j + d] = image_dims[d] > 1 ? k : 0.0f; /* in 2D k2 is ignored */
		}
	return R5_OK;
}

void r5_grid_wrap_coords(const long image_dims[R5_DIMS], long n_points, float *coords)
{
	for (long j = 0; j < n_points; j++)
		for (int d = 0; d < 3; d++) {
			float *k = &coords[3 * j + d];
			if (image_dims[d] <= 1)
				*k = 0.0f;
			else if (*k == 0.5f * (float)image_dims[d])
				*k = -*k;
		}
}

/* k of sample i of a spoke, as doubles */
static void point(const float *spoke, long i, double k[3])
{
	for (int d = 0; d < 3; d++)
		k[d] = spoke[3 * i + d];
}

r5_status r5_grid_ramp(long n_read, long n_spokes, const float *coords, float *weights)
{
	if (n_read < 2 || n_spokes < 1)
		return r5_set_error(R5_EINVAL, "radial density: %ld samples x %ld spokes (at least 2 samples per spoke)",
				    n_read, n_spokes);
	/* the radial test: every spoke a straight line through the centre, in the k0-k1 plane */
	for (long s = 0; s < n_spokes; s++) {
		const float *spoke = coords + 3 * n_read * s;
		double a[3], b[3], u[3], len = 0;
		point(spoke, 0, a);
		point(spoke, n_read - 1, b);
		for (int d = 0; d < 3; d++) {
			u[d] = b[d] - a[d];
			len += u[d] * u[d];
		}
		len = sqrt(len);
		if (!(len > 0) || !isfinite(len))
			return r5_set_error(R5_EINVAL, "radial density: spoke %ld has zero length or a non-finite coordinate", s);
		for (int d = 0; d < 3; d++)
			u[d] /= len;
		for (long i = 0; i < n_read; i++) {
			double k[3], along = 0, r2 = 0;
			point(spoke, i, k);
			if (fabs(k[2]) > 0.5)
				return r5_set_error(R5_EINVAL, "radial density: spoke %ld sample %ld has k2 = %g: the ramp is for 2D "
						    "radial trajectories (3D needs weights)", s, i, k[2]);
			for (int d = 0; d < 3; d++) {
				along += k[d] * u[d];
				r2 += k[d] * k[d];
			}
			double perpendicular = sqrt(fmax(r2 - along * along, 0.0));
			if (perpendicular > 0.5 + 1e-3 * sqrt(r2))
				return r5_set_error(R5_EINVAL, "radial density: spoke %ld is not a straight line through the centre "
						    "(sample %ld is %.3g cycles/FOV off it): give density weights", s, i,
						    perpendicular);
		}
	}
	/* the ramp of recon/linop/density.h (full-diameter spokes); a centre-out spoke covers one
	 * direction of its line, so it stands for twice the area */
	const long plane[R5_DIMS] = {2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
	R5_TRY(r5_density_ramp(plane, n_read, n_spokes, coords, weights));
	for (long s = 0; s < n_spokes; s++) {
		const float *a = coords + 3 * n_read * s, *b = a + 3 * (n_read - 1);
		if ((double)a[0] * b[0] + (double)a[1] * b[1] >= 0)
			for (long i = 0; i < n_read; i++)
				weights[n_read * s + i] *= 2.0f;
	}
	return R5_OK;
}

/* --- one frame --- */

static r5_status check_frame(const r5_grid_plan *plan, long n_points, const r5_array *samples, const r5_array *maps,
			     const r5_array *coil_images, const r5_array *image)
{
	const long *id = plan->image_dims;
	char text[128];
	if (!samples || samples->where != R5_HOST || !r5_array_is_contiguous(samples) || samples->dims[0] != 1 ||
	    samples->dims[1] * samples->dims[2] != n_points || samples->dims[3] != id[3] ||
	    r5_array_size(samples) != n_points * id[3])
		return r5_set_error(R5_EINVAL, "gridding: samples %s, the frame wants [1 n_read n_spokes %ld] (host) with "
				    "%ld points", samples ? r5_dims_format(text, sizeof text, samples->dims) : "missing", id[3],
				    n_points);
	long coil_dims[R5_DIMS], image_dims[R5_DIMS];
	r5_dims_copy(coil_dims, id);
	r5_dims_copy(image_dims, id);
	image_dims[3] = 1;
	const r5_array *with_coils[2] = {maps, coil_images};
	static const char *const names[2] = {"coil maps", "coil images"};
	for (int i = 0; i < 2; i++)
		if (with_coils[i] && (!r5_dims_equal(with_coils[i]->dims, coil_dims) || with_coils[i]->where != R5_HOST ||
				      !r5_array_is_contiguous(with_coils[i])))
			return r5_set_error(R5_EINVAL, "gridding: %s %s, the plan's image is %s (host, contiguous)", names[i],
					    r5_dims_format(text, sizeof text, with_coils[i]->dims),
					    r5_dims_format((char[128]){0}, 128, coil_dims));
	if (!image || !r5_dims_equal(image->dims, image_dims) || image->where != R5_HOST || !r5_array_is_contiguous(image))
		return r5_set_error(R5_EINVAL, "gridding: image %s, the plan's is %s (host, contiguous)",
				    image ? r5_dims_format(text, sizeof text, image->dims) : "missing",
				    r5_dims_format((char[128]){0}, 128, image_dims));
	return R5_OK;
}

static r5_status ensure_buffers(r5_grid_plan *plan, long n_points, int keep_coils)
{
	long coils = plan->image_dims[3];
	if (n_points > plan->points_cap) {
		free(plan->coords);
		free(plan->weights);
		plan->coords = malloc(sizeof *plan->coords * 3 * (size_t)n_points);
		plan->weights = malloc(sizeof *plan->weights * (size_t)n_points);
		plan->points_cap = plan->coords && plan->weights ? n_points : 0;
		if (!plan->points_cap)
			return r5_set_error(R5_ENOMEM, "gridding: coordinates of %ld points", n_points);
	}
	if (!plan->weighted || plan->weighted->dims[1] != n_points) {
		r5_array_free(plan->weighted);
		plan->weighted = NULL;
		long dims[R5_DIMS];
		r5_dims_ones(dims);
		dims[1] = n_points;
		dims[3] = coils;
		R5_TRY(r5_array_alloc_host(dims, &plan->weighted));
	}
	if (!keep_coils && !plan->coil_images)
		R5_TRY(r5_array_alloc_host(plan->image_dims, &plan->coil_images));
	return R5_OK;
}

static void combine_rss(const r5_array *coil_images, long pixels, long coils, float complex *out)
{
	const float complex *x = coil_images->data;
#pragma omp parallel for schedule(static)
	for (long i = 0; i < pixels; i++) {
		double sum = 0;
		for (long c = 0; c < coils; c++) {
			float complex v = x[i + c * pixels];
			sum += (double)(crealf(v) * crealf(v) + cimagf(v) * cimagf(v));
		}
		out[i] = (float)sqrt(sum);
	}
}

static void combine_maps(const r5_array *coil_images, const r5_array *maps, long pixels, long coils, float complex *out)
{
	const float complex *x = coil_images->data, *m = maps->data;
#pragma omp parallel for schedule(static)
	for (long i = 0; i < pixels; i++) {
		double complex sum = 0;
		double norm = 0;
		for (long c = 0; c < coils; c++) {
			float complex s = m[i + c * pixels];
			sum += (double complex)(conjf(s) * x[i + c * pixels]);
			norm += (double)(crealf(s) * crealf(s) + cimagf(s) * cimagf(s));
		}
		out[i] = norm > 0 ? (float complex)(sum / norm) : 0.0f;
	}
}

r5_status r5_grid_frame(r5_ctx *ctx, r5_grid_plan *plan, long n_points, const float *coords, const float *weights,
			const r5_array *samples, const r5_array *maps, r5_array *coil_images, r5_array *image)
{
	if (!plan || !coords || n_points < 1)
		return r5_set_error(R5_EINVAL, "gridding: no plan, no coordinates or no points");
	R5_TRY(check_frame(plan, n_points, samples, maps, coil_images, image));
	R5_TRY(ensure_buffers(plan, n_points, coil_images != NULL));
	const long *id = plan->image_dims;
	if (!weights) {
		R5_TRY(r5_grid_ramp(samples->dims[1], samples->dims[2], coords, plan->weights));
		weights = plan->weights;
	}
	memcpy(plan->coords, coords, sizeof *coords * 3 * (size_t)n_points);
	r5_grid_wrap_coords(id, n_points, plan->coords);
	R5_TRY(r5_nufft_set_points(ctx, plan->nufft, n_points, plan->coords));
	long coils = id[3];
	const float complex *y = samples->data;
	float complex *wy = plan->weighted->data;
#pragma omp parallel for schedule(static)
	for (long c = 0; c < coils; c++)
		for (long j = 0; j < n_points; j++)
			wy[j + c * n_points] = weights[j] * y[j + c * n_points];
	r5_array *coil = coil_images ? coil_images : plan->coil_images;
	R5_TRY(r5_nufft_adjoint(ctx, plan->nufft, coil, plan->weighted));
	if (maps)
		combine_maps(coil, maps, image_pixels(id), coils, image->data);
	else
		combine_rss(coil, image_pixels(id), coils, image->data);
	return R5_OK;
}
