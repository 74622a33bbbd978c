/* The non-Cartesian `cs` pipeline (pipelines.h, nc_cs.h): the non-Cartesian sense pipeline's
 * driver (r5_pipeline_nc_frames: coil maps by NLINV from all spokes, grid's frames, the recon
 * matrix) with each frame solved by r5_cs_solve (cs.c) on E = NUFFT . maps scaled to |E| = 1 by
 * a power iteration (nc_cs.h). Frames after the first start from the previous frame's image. */
#include <complex.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/log.h"
#include "../linop/linop.h"
#include "../linop/nufft.h"
#include "../solve/iter.h"
#include "../solve/power.h"
#include "nc_cs.h"
#include "pipelines.h"

static int compare_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return (x > y) - (x < y);
}

float r5_nc_noise_sigma(const long image_dims[R5_DIMS], long n_points, const float *coords, const r5_array *samples)
{
	long coils = samples->dims[R5_DIM_COIL], used = 0;
	/* at most about 2^18 magnitudes: a regular stride through the points */
	long stride = n_points * coils / (1L << 18) + 1;
	float *mags = malloc(sizeof(float) * (size_t)(n_points * coils / stride + coils + 1));
	if (!mags)
		return 0.0f;
	for (long j = 0; j < n_points; j += stride) {
		double r2 = 0;
		for (int d = 0; d < 3; d++)
			if (image_dims[d] > 1) {
				double r = coords[3 * j + d] / (0.5 * (double)image_dims[d]);
				r2 += r * r;
			}
		if (r2 < 0.81)
			continue;
		for (long c = 0; c < coils; c++)
			mags[used++] = cabsf(samples->data[j + n_points * c]);
	}
	float sigma = 0.0f;
	if (used >= 64) {
		qsort(mags, (size_t)used, sizeof *mags, compare_float);
		sigma = mags[used / 2] / 0.83255461f; /* sqrt(ln 2): the Rayleigh median */
	}
	free(mags);
	return sigma;
}

static r5_status check_shapes(const long image_dims[R5_DIMS], long n_points, const r5_array *samples,
			      const r5_array *maps, const r5_array *image)
{
	const long *k = samples->dims;
	long img[R5_DIMS];
	r5_dims_copy(img, image_dims);
	img[R5_DIM_COIL] = 1;
	if (k[0] != 1 || k[1] * k[2] != n_points || k[R5_DIM_COIL] != image_dims[R5_DIM_COIL] ||
	    r5_array_size(samples) != n_points * image_dims[R5_DIM_COIL])
		return r5_set_error(R5_EINVAL, "nc cs: samples [%ld %ld %ld %ld] are not [1, n_read, n_lines, %ld] with "
				    "n_read * n_lines = %ld points", k[0], k[1], k[2], k[3], image_dims[R5_DIM_COIL], n_points);
	if (!r5_dims_equal(maps->dims, image_dims))
		return r5_set_error(R5_EINVAL, "nc cs: maps [%ld %ld %ld %ld] are not the image dims [%ld %ld %ld %ld]",
				    maps->dims[0], maps->dims[1], maps->dims[2], maps->dims[3], image_dims[0], image_dims[1],
				    image_dims[2], image_dims[3]);
	if (!r5_dims_equal(image->dims, img))
		return r5_set_error(R5_EINVAL, "nc cs: image [%ld %ld %ld %ld] is not [%ld %ld %ld 1]", image->dims[0],
				    image->dims[1], image->dims[2], image->dims[3], img[0], img[1], img[2]);
	return R5_OK;
}

/* E = A S, scaled by 1 / sqrt(|E^H E|); *max_eig the |E^H E| used */
static r5_status scaled_encoding(r5_ctx *ctx, const long image_dims[R5_DIMS], const r5_array *samples,
				 const float *coords, const r5_array *maps, const r5_progress *progress, r5_linop **E,
				 double *max_eig)
{
	long tdims[R5_DIMS], img[R5_DIMS];
	r5_dims_ones(tdims);
	tdims[0] = 3, tdims[1] = samples->dims[1], tdims[2] = samples->dims[2];
	r5_dims_copy(img, image_dims);
	img[R5_DIM_COIL] = 1;
	r5_array *traj = NULL;
	r5_linop *S = NULL, *A = NULL, *SA = NULL;
	R5_TRY(r5_array_alloc_host(tdims, &traj));
	for (long j = 0; j < 3 * tdims[1] * tdims[2]; j++)
		traj->data[j] = coords[j];
	r5_status s = r5_linop_maps(ctx, maps, &S);
	if (s == R5_OK)
		s = r5_linop_nufft(ctx, image_dims, traj, NULL, &A);
	r5_array_free(traj); /* the operator copied it */
	if (s == R5_OK) {
		s = r5_linop_chain(ctx, S, A, &SA);
		S = A = NULL; /* the chain holds them */
	}
	r5_power_info info = {0};
	if (s == R5_OK) {
		r5_power_conf pc = r5_power_defaults;
		pc.max_iters = 20;
		pc.tolerance = 1e-2;
		r5_iter_progress hook = {.progress = progress, .stage = "cs-norm", .lo = 0.0, .hi = 0.1};
		s = r5_power_max_eig(ctx, r5_linop_normal_op, SA, img, 7u, &pc, r5_iter_progress_hook, &hook, &info);
	}
	if (s == R5_OK && !(info.max_eig > 0))
		s = r5_set_error(R5_EINVAL, "nc cs: the encoding NUFFT . maps is zero (maps all zero?)");
	if (s == R5_OK) {
		*max_eig = info.max_eig * 1.05; /* the estimate approaches from below */
		s = r5_linop_scale(ctx, (float complex)(1.0 / sqrt(*max_eig)), SA, E);
		if (s == R5_OK)
			SA = NULL;
	}
	r5_linop_free(SA);
	r5_linop_free(S);
	r5_linop_free(A);
	return s;
}

r5_status r5_nc_cs_solve(r5_ctx *ctx, const r5_recon_params *p, const long image_dims[R5_DIMS], long n_points,
			 const float *coords, const r5_array *samples, const r5_array *maps, float noise_sigma,
			 const r5_progress *progress, r5_array *image, r5_nc_cs_info *info)
{
	p = p ? p : &r5_recon_defaults;
	if (!samples || !maps || !image || !coords || n_points < 1)
		return r5_set_error(R5_EINVAL, "nc cs: missing samples, maps, coordinates or image");
	R5_TRY(check_shapes(image_dims, n_points, samples, maps, image));
	if (noise_sigma < 0.0f)
		noise_sigma = r5_nc_noise_sigma(image_dims, n_points, coords, samples);
	r5_linop *E = NULL;
	r5_array *scaled = NULL, *rhs = NULL;
	double max_eig = 0;
	r5_status s = scaled_encoding(ctx, image_dims, samples, coords, maps, progress, &E, &max_eig);
	float factor = (float)(1.0 / sqrt(max_eig > 0 ? max_eig : 1.0));
	if (s == R5_OK)
		s = r5_array_alloc_host(samples->dims, &scaled);
	if (s == R5_OK)
		s = r5_array_copy(ctx, scaled, samples);
	if (s == R5_OK)
		s = r5_zscale(ctx, scaled, factor);
	if (s == R5_OK)
		s = r5_array_alloc_host(image->dims, &rhs);
	if (s == R5_OK)
		s = r5_linop_adjoint(ctx, E, rhs, scaled);
	r5_cs_solve_opts o = {.progress = progress, .lo = 0.1, .hi = 1.0, .peak = 0.0f, .reg_flags = 0,
			      .noise_sigma = noise_sigma * factor};
	if (s == R5_OK)
		s = r5_cs_solve(ctx, p, E, scaled, rhs, image, &o);
	if (s == R5_OK && info) {
		info->max_eig = max_eig;
		info->noise_sigma = noise_sigma;
	}
	r5_linop_free(E);
	r5_array_free(scaled);
	r5_array_free(rhs);
	return s;
}

static r5_status cs_frame(r5_ctx *ctx, const r5_recon_params *p, const long image_dims[R5_DIMS], long n_points,
			  const float *coords, const r5_array *samples, const r5_array *maps, const r5_progress *progress,
			  r5_array *frame)
{
	r5_nc_cs_info info;
	R5_TRY(r5_nc_cs_solve(ctx, p, image_dims, n_points, coords, samples, maps, -1.0f, progress, frame, &info));
	r5_debug("cs: frame of %ld points: |E^H E| %g, noise std %g", n_points, info.max_eig, (double)info.noise_sigma);
	return R5_OK;
}

r5_status r5_pipeline_nc_cs(r5_ctx *ctx, const r5_scan *scan, const r5_recon_params *p, const r5_progress *progress,
			    r5_image_set *set)
{
	static const r5_nc_frame_solver cs = {"cs", "nc-cs", cs_frame};
	if (scan->traj)
		r5_info("cs: reg %s, lambda_l1 %g, lambda_tv %g (< 0: auto), wavelet %s, %d spins, %d iterations", p->cs.reg,
			(double)p->cs.lambda_l1, (double)p->cs.lambda_tv, p->cs.wavelet, p->cs.spins, p->sense.iters);
	return r5_pipeline_nc_frames(ctx, scan, p, &cs, progress, set);
}

double r5_pipeline_nc_cs_bytes(const long image_dims[R5_DIMS], long n_read, long n_spokes, long frame_spokes,
			       long frames)
{
	double cplx = (double)sizeof(float complex), pixels = 1;
	for (int d = 0; d < 3; d++)
		pixels *= (double)image_dims[d];
	double frame = (double)n_read * (double)frame_spokes, coils = (double)image_dims[R5_DIM_COIL];
	/* beyond sense's account (its frame solve holds the NUFFT plan and Toeplitz kernels): the
	 * chain's coil images, the scaled samples and the trajectory copy, and about a dozen image
	 * vectors (rhs, FISTA's or ADMM's iterates, the wavelet coefficients and the spins' sum) */
	double extra = cplx * (pixels * (coils + 12.0) + frame * coils + 3.0 * frame);
	return r5_pipeline_nc_sense_bytes(image_dims, n_read, n_spokes, frame_spokes, frames) + extra;
}
