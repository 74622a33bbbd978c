/* Driver for bench/bench_noncart.sh: one non-Cartesian reconstruction of a BART k-space and
 * trajectory (.cfl, [1, n_read, n_lines, coils] and [3, n_read, n_lines]) by recon5t, written
 * as a .cfl, with its wall and CPU seconds on stdout ("seconds=... user=..."), the same
 * operations the script times in BART:
 *   adjoint   A^H y per coil, rss-combined          (bart nufft -a, then rss)
 *   inverse   per-coil least squares by CG, 30 iterations through the Toeplitz normal
 *                                                    (bart nufft -i; its default is 30 too)
 *   sense     ESPIRiT maps from the gridded centre (24) + nc CG-SENSE, 30 iterations
 *                                                    (bart ecalib + bart pics -l2 -t)
 *   nlinv     r5_nlinv_nc, 10 Newton steps           (bart nlinv -i 10 -t)
 *   nlinv-sense  nlinv's maps + nc CG-SENSE           (maps from all the data, then SENSE)
 *   sense-maps   nc CG-SENSE with the maps in R5_MAPS (a .cfl [N, N, 1, coils])
 *                                                    (bart pics -l2 -t with the same maps)
 *   cs-maps      L1-wavelet CS, the cs pipeline's frame solve (r5_nc_cs_solve: FISTA, Haar +
 *                Daubechies-4, lambda R5_CS_LAMBDA or 0.01 of max |E^H y|, iters iterations)
 *                with E = NUFFT . maps(R5_MAPS) scaled to |E| = 1, its normal the Toeplitz one
 *                                                    (bart pics -l1 -r 0.01 -t, same maps)
 *   nlinv-cs     nlinv's maps + that CS solve        (what `recon5t recon --pipeline cs` does)
 * usage: bench_noncart METHOD KSP TRAJ OUT [N] [iters]
 * R5_FFT_WISDOM=PATH: FFTW_MEASURE plans kept in PATH (cpu_fft.h); unset or none: ESTIMATE.
 * N: the image matrix (default: from the trajectory's extent, 2 max |k| rounded up to even). */
#include <complex.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "recon/calib/nlinv.h"
#include "recon/core/ctx.h"
#include "recon/cpu/cpu_fft.h"
#include "recon/io/cfl.h"
#include "recon/linop/linop.h"
#include "recon/pipeline/nc_cs.h"
#include "recon/pipeline/nc_sense.h"
#include "recon/pipeline/pipelines.h"
#include "recon/solve/cg.h"

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double user_seconds(void)
{
	struct rusage u;
	getrusage(RUSAGE_SELF, &u);
	return (double)u.ru_utime.tv_sec + 1e-6 * (double)u.ru_utime.tv_usec;
}

static int check(r5_status s, const char *what)
{
	if (s == R5_OK)
		return 1;
	fprintf(stderr, "bench_noncart: %s: %s\n", what, r5_last_error());
	return 0;
}

typedef struct coil_normal {
	r5_nufft_plan *plan;
} coil_normal;

static r5_status coil_normal_apply(r5_ctx *ctx, void *user, r5_array *out, const r5_array *in)
{
	coil_normal *n = user;
	r5_status s = r5_array_copy(ctx, out, in);
	return s == R5_OK ? r5_nufft_normal(ctx, n->plan, out, out) : s;
}

/* per-coil CG on A^H A x = A^H y (all coils at once: the operator is block diagonal) */
static r5_status inverse(r5_ctx *ctx, const long dims[R5_DIMS], long n, const float *k, const r5_array *y, int iters,
			 r5_array *image)
{
	r5_nufft_plan *plan = NULL;
	r5_array *rhs = NULL, *x = NULL;
	r5_status s = r5_nufft_plan_make(ctx, dims, NULL, &plan);
	if (s == R5_OK)
		s = r5_nufft_set_points(ctx, plan, n, k);
	if (s == R5_OK)
		s = r5_nufft_toeplitz(ctx, plan, NULL);
	if (s == R5_OK)
		s = r5_array_alloc(ctx, R5_HOST, dims, &rhs);
	if (s == R5_OK)
		s = r5_array_zeros(ctx, R5_HOST, dims, &x);
	if (s == R5_OK)
		s = r5_nufft_adjoint(ctx, plan, rhs, y);
	if (s == R5_OK) {
		coil_normal cn = {plan};
		r5_cg_conf conf = r5_cg_defaults;
		conf.max_iters = iters;
		s = r5_cg_solve(ctx, &conf, coil_normal_apply, &cn, rhs, x, NULL);
	}
	if (s == R5_OK)
		s = r5_zrss(ctx, image, x, 3);
	r5_array_free(x);
	r5_array_free(rhs);
	r5_nufft_plan_destroy(plan);
	return s;
}

/* L1-wavelet CS with E = NUFFT . maps: the cs pipeline's frame solve (nc_cs.h), lambda_l1 0.01
 * relative to max |E^H y| as bart pics -l1 -r 0.01 (the pipeline's default is auto) */
static r5_status cs_maps(r5_ctx *ctx, const long dims[R5_DIMS], long n, const float *k, const r5_array *y,
			 const r5_array *maps, int iters, r5_array *image)
{
	r5_recon_params p = r5_recon_defaults;
	r5_status s = r5_recon_params_set(&p, "reg", "l1");
	if (s == R5_OK)
		s = r5_recon_params_set(&p, "lambda_l1", getenv("R5_CS_LAMBDA") ? getenv("R5_CS_LAMBDA") : "0.01");
	p.sense.iters = iters;
	r5_nc_cs_info info;
	if (s == R5_OK)
		s = r5_zfill(ctx, image, 0.0f);
	if (s == R5_OK)
		s = r5_nc_cs_solve(ctx, &p, dims, n, k, y, maps, -1.0f, NULL, image, &info);
	if (s == R5_OK)
		fprintf(stderr, "cs: |E^H E| %g, noise std %g\n", info.max_eig, (double)info.noise_sigma);
	return s;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: bench_noncart adjoint|inverse|sense|nlinv|nlinv-sense|sense-maps|cs-maps|nlinv-cs KSP TRAJ OUT [N] [iters]\n");
		return 2;
	}
	const char *method = argv[1];
	r5_ctx *ctx = NULL;
	r5_array *ksp = NULL, *traj = NULL;
	const char *wisdom = getenv("R5_FFT_WISDOM");
	if (wisdom && strcmp(wisdom, "none") && !check(r5_cpu_fft_configure(wisdom), "fft wisdom"))
		return 1;
	if (!check(r5_ctx_create(&ctx, "cpu", 0), "context") || !check(r5_cfl_read(argv[2], &ksp), argv[2]) ||
	    !check(r5_cfl_read(argv[3], &traj), argv[3]))
		return 1;
	long n_points = traj->dims[1] * traj->dims[2];
	float *k = malloc(sizeof(float) * 3 * (size_t)n_points);
	double kmax = 0;
	for (long j = 0; j < 3 * n_points; j++) {
		k[j] = crealf(traj->data[j]);
		kmax = fmax(kmax, fabs(k[j]));
	}
	long N = argc > 5 ? atol(argv[5]) : 2 * (long)ceil(kmax);
	int iters = argc > 6 ? atoi(argv[6]) : 30;
	/* a trajectory reaching +N/2 exactly (BART's radial ends at +N/2 - 1 or at +N/2 for
	 * gpuNUFFT's) is clamped into [-N/2, N/2): the NUFFT's range */
	for (long j = 0; j < 3 * n_points; j++)
		if (k[j] >= 0.5f * (float)N)
			k[j] = nextafterf(0.5f * (float)N, 0.0f);
	long coils = ksp->dims[3];
	long dims[R5_DIMS], img[R5_DIMS];
	for (int d = 0; d < R5_DIMS; d++)
		dims[d] = img[d] = 1;
	dims[0] = dims[1] = img[0] = img[1] = N;
	dims[3] = coils;
	r5_array *image = NULL, *maps = NULL, *coil_images = NULL;
	if (!check(r5_array_zeros(ctx, R5_HOST, img, &image), "image"))
		return 1;
	double t0 = now(), u0 = user_seconds();
	r5_status s = R5_OK;
	if (!strcmp(method, "adjoint")) {
		s = r5_array_alloc(ctx, R5_HOST, dims, &coil_images);
		if (s == R5_OK) {
			r5_nufft_plan *plan = NULL;
			s = r5_nufft_plan_make(ctx, dims, NULL, &plan);
			if (s == R5_OK)
				s = r5_nufft_set_points(ctx, plan, n_points, k);
			if (s == R5_OK)
				s = r5_nufft_adjoint(ctx, plan, coil_images, ksp);
			r5_nufft_plan_destroy(plan);
		}
		if (s == R5_OK)
			s = r5_zrss(ctx, image, coil_images, 3);
	} else if (!strcmp(method, "inverse")) {
		s = inverse(ctx, dims, n_points, k, ksp, iters, image);
	} else if (!strcmp(method, "sense")) {
		s = r5_nc_maps_espirit(ctx, dims, n_points, k, ksp, 24, &maps);
		r5_nc_sense_opts o = r5_nc_sense_defaults;
		o.iters = iters;
		if (s == R5_OK)
			s = r5_nc_sense_solve(ctx, dims, n_points, k, ksp, maps, &o, NULL, image);
	} else if (!strcmp(method, "sense-maps") || !strcmp(method, "cs-maps")) {
		const char *path = getenv("R5_MAPS");
		r5_array *read = NULL;
		s = path ? r5_cfl_read(path, &read) : r5_set_error(R5_EINVAL, "sense-maps: set R5_MAPS");
		if (s == R5_OK)
			s = r5_array_alloc(ctx, R5_HOST, dims, &maps);
		if (s == R5_OK && r5_array_size(read) != r5_array_size(maps))
			s = r5_set_error(R5_EINVAL, "sense-maps: %s is not [%ld, %ld, 1, %ld]", path, N, N, coils);
		if (s == R5_OK)
			memcpy(maps->data, read->data, sizeof(float complex) * (size_t)r5_array_size(maps));
		r5_array_free(read);
		r5_nc_sense_opts o = r5_nc_sense_defaults;
		o.iters = iters;
		if (s == R5_OK && !strcmp(method, "sense-maps"))
			s = r5_nc_sense_solve(ctx, dims, n_points, k, ksp, maps, &o, NULL, image);
		else if (s == R5_OK)
			s = cs_maps(ctx, dims, n_points, k, ksp, maps, iters, image);
	} else if (!strcmp(method, "nlinv") || !strcmp(method, "nlinv-sense") || !strcmp(method, "nlinv-cs")) {
		r5_nlinv_conf conf = r5_nlinv_defaults;
		r5_nlinv_info info;
		const char *e;
		if ((e = getenv("R5_NLINV_ALPHA")))
			conf.alpha0 = (float)atof(e);
		if ((e = getenv("R5_NLINV_STEPS")))
			conf.newton_steps = atoi(e);
		if ((e = getenv("R5_NLINV_CGTOL")))
			conf.cg_tolerance = (float)atof(e);
		s = r5_array_alloc(ctx, R5_HOST, dims, &maps);
		if (s == R5_OK)
			s = r5_nlinv_nc(ctx, &conf, dims, n_points, k, ksp, image, maps, &info);
		if (s == R5_OK)
			fprintf(stderr, "nlinv: %d CG iterations, coil k-space %ld x %ld\n", info.cg_iters,
				info.coil_kspace[0], info.coil_kspace[1]);
		if (s == R5_OK && !strcmp(method, "nlinv-sense")) {
			r5_nc_sense_opts o = r5_nc_sense_defaults;
			o.iters = iters;
			s = r5_nc_sense_solve(ctx, dims, n_points, k, ksp, maps, &o, NULL, image);
		}
		if (s == R5_OK && !strcmp(method, "nlinv-cs"))
			s = cs_maps(ctx, dims, n_points, k, ksp, maps, iters, image);
	} else {
		fprintf(stderr, "bench_noncart: unknown method %s\n", method);
		return 2;
	}
	double t1 = now(), u1 = user_seconds();
	if (!check(s, method) || !check(r5_cfl_write(argv[4], image), argv[4]))
		return 1;
	printf("method=%s N=%ld coils=%ld points=%ld seconds=%.3f user=%.3f\n", method, N, coils, n_points, t1 - t0,
	       u1 - u0);
	r5_array_free(coil_images);
	r5_array_free(maps);
	r5_array_free(image);
	r5_array_free(traj);
	r5_array_free(ksp);
	free(k);
	r5_ctx_destroy(ctx);
	return 0;
}
