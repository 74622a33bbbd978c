/* Density compensation of density.h: the radial ramp (closed form per sample) and Pipe-Menon
 * through a 1-coil NUFFT plan's grid-domain spreading and interpolation. */
#include "density.h"

#include <complex.h>
#include <math.h>
#include <stdlib.h>

#include "../core/array.h"
#include "../core/hd.h"
#include "nufft.h"

static r5_status check_image_dims(const long image_dims[R5_DIMS], const char *what)
{
	if (!image_dims || image_dims[0] < 2 || image_dims[1] < 2 || image_dims[2] < 1)
		return r5_set_error(R5_EINVAL, "%s: image dims must be [N0 >= 2, N1 >= 2, N2 >= 1, ...]", what);
	return R5_OK;
}

r5_status r5_density_ramp(const long image_dims[R5_DIMS], long n_read, long n_spokes, const float *coords,
			  float *weights)
{
	R5_TRY(check_image_dims(image_dims, "radial density ramp"));
	if (n_read < 2 || n_spokes < 1)
		return r5_set_error(R5_EINVAL, "radial density ramp: %ld samples x %ld spokes (need >= 2 x >= 1)", n_read,
				    n_spokes);
	if (!coords || !weights)
		return r5_set_error(R5_EINVAL, "radial density ramp: no coordinates or no output");
	int three_d = image_dims[2] > 1;
	double S = (double)n_spokes;
	for (long s = 0; s < n_spokes; s++) {
		const float *k = coords + 3 * n_read * s, *last = k + 3 * (n_read - 1);
		double span = 0.0;
		for (int d = 0; d < 3; d++)
			span += ((double)last[d] - k[d]) * ((double)last[d] - k[d]);
		double dk = sqrt(span) / (double)(n_read - 1);
		if (!(dk > 0.0) || !isfinite(dk))
			return r5_set_error(R5_EINVAL, "radial density ramp: spoke %ld has no extent (first and last sample "
					    "at the same k) or a coordinate that is not finite", s);
		for (long i = 0; i < n_read; i++) {
			const float *p = k + 3 * i;
			double r2 = (double)p[0] * p[0] + (double)p[1] * p[1] + (three_d ? (double)p[2] * p[2] : 0.0);
			double w = three_d ? (2.0 * R5_PI / S) * dk * fmax(r2, dk * dk / 12.0)
					   : (R5_PI / S) * dk * fmax(sqrt(r2), dk / 4.0);
			weights[i + n_read * s] = (float)w;
		}
	}
	return R5_OK;
}

/* integral of the plan's 1D kernel over its support, in oversampled cells */
static double kernel_integral(const r5_nufft_info *info)
{
	enum { STEPS = 4096 };
	double half = 0.5 * info->width, h = 2.0 * half / STEPS, sum = 0.0;
	for (int i = 0; i < STEPS; i++) /* midpoint rule; the kernel vanishes at its ends */
		sum += r5_nufft_kernel_d(-half + (i + 0.5) * h, info->beta, 2.0 / info->width);
	return sum * h;
}

/* The points in chunks, one 1-coil NUFFT plan each, so that the stop hook is called between
 * chunks (every ~R5_PROGRESS_CHUNK_MACS of spreading or interpolation) and not only once per
 * iteration: a chunk spreads into its own grid, added to the total; each interpolates from the
 * total. */
struct chunks {
	long n, per, n_points;
	r5_nufft_plan **plans;
	r5_array **values; /* [1, points of the chunk] */
	r5_array *grid, *part;
	r5_nufft_info info;
};

static void chunks_free(struct chunks *c)
{
	for (long i = 0; c->plans && i < c->n; i++) {
		r5_nufft_plan_destroy(c->plans[i]);
		r5_array_free(c->values[i]);
	}
	free(c->plans);
	free(c->values);
	r5_array_free(c->grid);
	r5_array_free(c->part);
}

static r5_status chunks_make(r5_ctx *ctx, const long image_dims[R5_DIMS], long n_points, const float *coords,
			     struct chunks *c)
{
	long pdims[R5_DIMS], gdims[R5_DIMS], sdims[R5_DIMS];
	r5_dims_ones(pdims);
	pdims[0] = image_dims[0], pdims[1] = image_dims[1], pdims[2] = image_dims[2];
	r5_nufft_plan *probe = NULL;
	R5_TRY(r5_nufft_plan_make(ctx, pdims, NULL, &probe));
	r5_nufft_get_info(probe, &c->info);
	r5_nufft_plan_destroy(probe);
	long taps = 1, cells = 1;
	for (int d = 0; d < c->info.dims; d++)
		taps *= c->info.width, cells *= c->info.grid[d];
	long work = R5_PROGRESS_CHUNK_MACS > cells ? R5_PROGRESS_CHUNK_MACS : cells;
	c->per = work / taps < 1024 ? 1024 : work / taps;
	c->n = (n_points + c->per - 1) / c->per;
	c->n_points = n_points;
	c->plans = calloc((size_t)c->n, sizeof *c->plans);
	c->values = calloc((size_t)c->n, sizeof *c->values);
	if (!c->plans || !c->values)
		return r5_set_error(R5_ENOMEM, "Pipe-Menon density: %ld chunks", c->n);
	r5_dims_ones(gdims);
	gdims[1] = c->info.grid[0], gdims[2] = c->info.grid[1], gdims[3] = c->info.dims == 3 ? c->info.grid[2] : 1;
	R5_TRY(r5_array_zeros(ctx, R5_HOST, gdims, &c->grid));
	if (c->n > 1)
		R5_TRY(r5_array_zeros(ctx, R5_HOST, gdims, &c->part));
	for (long i = 0; i < c->n; i++) {
		long first = i * c->per, n = first + c->per < n_points ? c->per : n_points - first;
		r5_dims_ones(sdims);
		sdims[1] = n;
		R5_TRY(r5_nufft_plan_make(ctx, pdims, NULL, &c->plans[i]));
		R5_TRY(r5_nufft_set_points(ctx, c->plans[i], n, coords + 3 * first));
		R5_TRY(r5_array_zeros(ctx, R5_HOST, sdims, &c->values[i]));
	}
	return R5_OK;
}

/* rho = interp(spread(w)) * norm; residual: rms(rho - 1); the hook between chunks */
static r5_status density_of(r5_ctx *ctx, struct chunks *c, const float *w, double norm, const r5_progress *progress,
			    double fraction, float *rho, double *residual)
{
	long cells = r5_array_size(c->grid);
	for (long i = 0; i < c->n; i++) {
		R5_TRY(r5_progress_check(progress, "Pipe-Menon density", fraction));
		float complex *v = c->values[i]->data;
		for (long j = 0; j < r5_array_size(c->values[i]); j++)
			v[j] = w[i * c->per + j];
		R5_TRY(r5_nufft_spread_grid(ctx, c->plans[i], i == 0 ? c->grid : c->part, c->values[i]));
		if (i > 0) {
			float complex *g = c->grid->data;
			const float complex *q = c->part->data;
			for (long m = 0; m < cells; m++)
				g[m] += q[m];
		}
	}
	double ss = 0.0;
	for (long i = 0; i < c->n; i++) {
		R5_TRY(r5_progress_check(progress, "Pipe-Menon density", fraction));
		R5_TRY(r5_nufft_interp_grid(ctx, c->plans[i], c->values[i], c->grid));
		const float complex *v = c->values[i]->data;
		for (long j = 0; j < r5_array_size(c->values[i]); j++) {
			float r = (float)(crealf(v[j]) * norm);
			rho[i * c->per + j] = r;
			ss += ((double)r - 1.0) * ((double)r - 1.0);
		}
	}
	*residual = sqrt(ss / (double)c->n_points);
	return R5_OK;
}

r5_status r5_density_pipe_menon_ex(r5_ctx *ctx, const long image_dims[R5_DIMS], long n_points, const float *coords,
				   int iters, const r5_progress *progress, float *weights, float *residuals)
{
	R5_TRY(check_image_dims(image_dims, "Pipe-Menon density"));
	if (n_points < 1 || iters < 1 || !coords || !weights)
		return r5_set_error(R5_EINVAL, "Pipe-Menon density: %ld points, %d iterations (need >= 1 each, with "
				    "coordinates and an output)", n_points, iters);
	struct chunks c = {0};
	float *rho = malloc(sizeof(float) * (size_t)n_points);
	r5_status s = rho ? chunks_make(ctx, image_dims, n_points, coords, &c)
			  : r5_set_error(R5_ENOMEM, "Pipe-Menon density: %ld densities", n_points);
	if (s == R5_OK) {
		double integral = pow(kernel_integral(&c.info), c.info.dims), sigmas = 1.0;
		for (int d = 0; d < c.info.dims; d++)
			sigmas *= (double)c.info.grid[d] / (double)image_dims[d];
		double norm = sigmas / (integral * integral);
		for (long j = 0; j < n_points; j++)
			weights[j] = 1.0f;
		for (int t = 0; t < iters && s == R5_OK; t++) {
			double residual = 0.0;
			s = density_of(ctx, &c, weights, norm, progress, (double)t / iters, rho, &residual);
			if (s != R5_OK)
				break;
			if (residuals)
				residuals[t] = (float)residual;
			for (long j = 0; j < n_points; j++)
				weights[j] = rho[j] > 0.0f ? weights[j] / rho[j] : 0.0f;
		}
	}
	free(rho);
	chunks_free(&c);
	return s;
}

r5_status r5_density_pipe_menon(r5_ctx *ctx, const long image_dims[R5_DIMS], long n_points, const float *coords,
				int iters, float *weights)
{
	return r5_density_pipe_menon_ex(ctx, image_dims, n_points, coords, iters, NULL, weights, NULL);
}
