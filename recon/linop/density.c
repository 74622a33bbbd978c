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

/* rho = interp(spread(w)) * norm; residual: rms(rho - 1) */
static r5_status density_of(r5_ctx *ctx, r5_nufft_plan *plan, r5_array *grid, r5_array *values, const float *w,
			    double norm, float *rho, double *residual)
{
	long n = r5_array_size(values);
	float complex *v = values->data;
	for (long j = 0; j < n; j++)
		v[j] = w[j];
	R5_TRY(r5_nufft_spread_grid(ctx, plan, grid, values));
	R5_TRY(r5_nufft_interp_grid(ctx, plan, values, grid));
	double ss = 0.0;
	for (long j = 0; j < n; j++) {
		rho[j] = (float)(crealf(v[j]) * norm);
		ss += ((double)rho[j] - 1.0) * ((double)rho[j] - 1.0);
	}
	*residual = sqrt(ss / (double)n);
	return R5_OK;
}

r5_status r5_density_pipe_menon_ex(r5_ctx *ctx, const long image_dims[R5_DIMS], long n_points, const float *coords,
				   int iters, const r5_progress *progress, float *weights, float *residuals)
{
	R5_TRY(check_image_dims(image_dims, "Pipe-Menon density"));
	if (n_points < 1 || iters < 1 || !coords || !weights)
		return r5_set_error(R5_EINVAL, "Pipe-Menon density: %ld points, %d iterations (need >= 1 each, with "
				    "coordinates and an output)", n_points, iters);
	long pdims[R5_DIMS], sdims[R5_DIMS], gdims[R5_DIMS];
	r5_dims_ones(pdims);
	pdims[0] = image_dims[0], pdims[1] = image_dims[1], pdims[2] = image_dims[2];
	r5_dims_ones(sdims);
	sdims[1] = n_points;
	r5_nufft_plan *plan = NULL;
	r5_array *grid = NULL, *values = NULL;
	float *rho = malloc(sizeof(float) * (size_t)n_points);
	r5_status s = rho ? R5_OK : r5_set_error(R5_ENOMEM, "Pipe-Menon density: %ld densities", n_points);
	if (s == R5_OK)
		s = r5_nufft_plan_make(ctx, pdims, NULL, &plan);
	if (s == R5_OK)
		s = r5_nufft_set_points(ctx, plan, n_points, coords);
	r5_nufft_info info;
	if (s == R5_OK) {
		r5_nufft_get_info(plan, &info);
		r5_dims_ones(gdims);
		gdims[1] = info.grid[0], gdims[2] = info.grid[1], gdims[3] = info.dims == 3 ? info.grid[2] : 1;
		s = r5_array_zeros(ctx, R5_HOST, gdims, &grid);
	}
	if (s == R5_OK)
		s = r5_array_zeros(ctx, R5_HOST, sdims, &values);
	if (s == R5_OK) {
		double integral = pow(kernel_integral(&info), info.dims), cells = 1.0;
		for (int d = 0; d < info.dims; d++)
			cells *= (double)info.grid[d] / (double)image_dims[d]; /* sigma_d */
		double norm = cells / (integral * integral);
		for (long j = 0; j < n_points; j++)
			weights[j] = 1.0f;
		for (int t = 0; t < iters && s == R5_OK; t++) {
			double residual = 0.0;
			s = r5_progress_check(progress, "Pipe-Menon density", (double)t / iters);
			if (s == R5_OK)
				s = density_of(ctx, plan, grid, values, weights, norm, rho, &residual);
			if (s != R5_OK)
				break;
			if (residuals)
				residuals[t] = (float)residual;
			for (long j = 0; j < n_points; j++)
				weights[j] = rho[j] > 0.0f ? weights[j] / rho[j] : 0.0f;
		}
	}
	free(rho);
	r5_array_free(grid);
	r5_array_free(values);
	r5_nufft_plan_destroy(plan);
	return s;
}

r5_status r5_density_pipe_menon(r5_ctx *ctx, const long image_dims[R5_DIMS], long n_points, const float *coords,
				int iters, float *weights)
{
	return r5_density_pipe_menon_ex(ctx, image_dims, n_points, coords, iters, NULL, weights, NULL);
}
