/* Density compensation (recon/linop/density.h): the radial ramp's closed form (DC from the ring
 * area, weights summing to the covered disc); on a fully sampled radial trajectory (pi/2 N
 * spokes) the density-compensated adjoint of a phantom's forward NUFFT reproduces the phantom at
 * its own amplitude (NRMSE with scale 1); Pipe-Menon converges (its residual per iteration),
 * agrees with the ramp inside the disc, and works for a spiral and for golden-angle frames of 21
 * spokes; the grid-domain spread/interp pair are each other's adjoint; bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <complex.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "recon/core/hd.h"
#include "recon/linop/density.h"
#include "recon/linop/lintest.h"
#include "recon/linop/nufft.h"
#include "recon/linop/traj.h"

#include "cpu_fixture.h"

#define N 64
/* Pipe-Menon iterations: the image NRMSE keeps improving after the residual has flattened (full
 * radial 2x: 0.060 after 8 iterations, 0.025 after 20; residual 7.8e-3 and 4.8e-3) */
#define PM_ITERS 20
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || !defined(__OPTIMIZE__)
/* unoptimised sanitizer builds spread 10x slower: the 160,000-point chunk test only in optimised
 * builds */
#define SLOW_BUILD 1
#else
#define SLOW_BUILD 0
#endif

static void image_dims_of(long dims[R5_DIMS], long n)
{
	r5_dims_ones(dims);
	dims[0] = n, dims[1] = n;
}

/* phantom nearly band-limited to the disc |k| < N/2: discs with edges smoothed over sigma = 1
 * pixel (spectrum down to 1 % at |k| = N/2), one negative; radii in pixels of a 64 image */
static r5_array *phantom(long n)
{
	long dims[R5_DIMS];
	image_dims_of(dims, n);
	r5_array *f = NULL;
	assert_int_equal(r5_array_zeros(ctx, R5_HOST, dims, &f), R5_OK);
	const double disc[][4] = {{0.0, 0.0, 22.0, 1.0}, {-8.0, 6.0, 6.0, 0.5}, {9.0, -5.0, 4.0, -0.4},
				  {3.0, 12.0, 3.0, 0.6}, {-10.0, -9.0, 2.0, 0.7}};
	float complex *v = f->data;
	for (long y = 0; y < n; y++)
		for (long x = 0; x < n; x++) {
			double s = 0.0, X = (double)(x - n / 2) * 64.0 / n, Y = (double)(y - n / 2) * 64.0 / n;
			for (size_t b = 0; b < sizeof disc / sizeof disc[0]; b++) {
				double r = hypot(X - disc[b][0], Y - disc[b][1]);
				s += disc[b][3] * 0.5 * erfc((r - disc[b][2]) / sqrt(2.0));
			}
			v[x + n * y] = (float)s;
		}
	return f;
}

/* NRMSE (scale 1) of A^H W A f against f, with A the NUFFT at the points; *scale: the least
 * squares scale of the result onto f (1 when the amplitude is right) */
static double dcf_roundtrip(const long idims[R5_DIMS], long n_read, long n_lines, const float *coords,
			    const float *weights, const r5_array *f, double *scale)
{
	r5_nufft_plan *plan = NULL;
	long sdims[R5_DIMS];
	r5_dims_ones(sdims);
	sdims[1] = n_read, sdims[2] = n_lines;
	r5_array *y = NULL, *g = NULL;
	assert_int_equal(r5_nufft_plan_make(ctx, idims, NULL, &plan), R5_OK);
	assert_int_equal(r5_nufft_set_points(ctx, plan, n_read * n_lines, coords), R5_OK);
	assert_int_equal(r5_array_zeros(ctx, R5_HOST, sdims, &y), R5_OK);
	assert_int_equal(r5_array_zeros(ctx, R5_HOST, f->dims, &g), R5_OK);
	assert_int_equal(r5_nufft_forward(ctx, plan, y, f), R5_OK);
	float complex *yv = y->data;
	for (long j = 0; j < n_read * n_lines; j++)
		yv[j] *= weights[j];
	assert_int_equal(r5_nufft_adjoint(ctx, plan, g, y), R5_OK);
	const float complex *a = g->data, *b = f->data;
	double err = 0.0, ref = 0.0, num = 0.0, den = 0.0;
	for (long i = 0; i < r5_array_size(f); i++) {
		err += pow(cabs(a[i] - b[i]), 2), ref += pow(cabs(b[i]), 2);
		num += creal(conj(a[i]) * b[i]), den += pow(cabs(a[i]), 2);
	}
	*scale = num / den;
	r5_array_free(y);
	r5_array_free(g);
	r5_nufft_plan_destroy(plan);
	return sqrt(err / ref);
}

static float *radial(r5_traj_kind kind, long n_read, long n_spokes, long first)
{
	float *k = malloc(sizeof(float) * 3 * (size_t)(n_read * n_spokes));
	assert_non_null(k);
	assert_int_equal(r5_traj_radial(kind, 0, n_read, n_spokes, first, 0.5 * N, k), R5_OK);
	return k;
}

/* the ramp's closed form at a few samples; the weights sum to the disc's area pi (N/2)^2 */
static void test_ramp_values(void **state)
{
	(void)state;
	const long n_read = N, S = 101;
	long idims[R5_DIMS];
	image_dims_of(idims, N);
	float *k = radial(R5_TRAJ_RADIAL_UNIFORM, n_read, S, 0);
	float *w = malloc(sizeof(float) * (size_t)(n_read * S));
	assert_non_null(w);
	assert_int_equal(r5_density_ramp(idims, n_read, S, k, w), R5_OK);
	/* dk = 1; DC at i = N/2: pi / (4 S); |k| = 10: 10 pi / S */
	assert_true(fabs(w[N / 2] - R5_PI / (4.0 * S)) < 1e-6);
	assert_true(fabs(w[N / 2 + 10 + n_read * 7] - 10.0 * R5_PI / S) < 1e-5);
	double sum = 0.0;
	for (long j = 0; j < n_read * S; j++)
		sum += w[j];
	/* the samples cover the disc of radius N/2 - 1/2 on one side and N/2 + 1/2 on the other:
	 * on average the disc of N/2 */
	print_message("ramp: sum of weights %.2f, disc area %.2f\n", sum, R5_PI * N * N / 4.0);
	assert_true(fabs(sum / (R5_PI * N * N / 4.0) - 1.0) < 0.01);
	/* symmetric readout: no DC sample, the first ring at dk/2 */
	assert_int_equal(r5_traj_radial(R5_TRAJ_RADIAL_UNIFORM | R5_TRAJ_SYMMETRIC, 0, n_read, S, 0, 0.5 * N, k), R5_OK);
	assert_int_equal(r5_density_ramp(idims, n_read, S, k, w), R5_OK);
	assert_true(fabs(w[N / 2] - 0.5 * R5_PI / S) < 1e-6);
	free(k);
	free(w);
}

/* pi/2 N spokes: the density-compensated adjoint of the forward is the phantom, amplitude and
 * all. With 2x readout oversampling (dk = 1/2, as scanners sample): NRMSE 0.035 (ramp) at scale
 * 1. Without (dk = 1) a diagonal weight cannot do better than about 0.17 on this phantom,
 * whatever the number of spokes (checked with a direct DFT: 101 and 400 spokes give the same
 * 0.168, and the best weights of the first three rings 0.12): the |k| weighting of a spectrum
 * that varies on the scale of one sample (the object fills 3/4 of the FOV) is a coarse radial
 * quadrature; its error falls as dk^2 (0.168, 0.035, 0.0098 for dk = 1, 1/2, 1/4). */
static void test_full_radial_roundtrip(void **state)
{
	(void)state;
	const long S = 101; /* pi/2 64 = 100.5 */
	long idims[R5_DIMS];
	image_dims_of(idims, N);
	r5_array *f = phantom(N);
	for (long os = 1; os <= 2; os++) {
		long n_read = os * N;
		float *k = radial(R5_TRAJ_RADIAL_UNIFORM, n_read, S, 0);
		float *w = malloc(sizeof(float) * (size_t)(n_read * S)), res[PM_ITERS];
		assert_non_null(w);
		double scale, bound = os == 1 ? 0.2 : 0.05;
		assert_int_equal(r5_density_ramp(idims, n_read, S, k, w), R5_OK);
		double e_ramp = dcf_roundtrip(idims, n_read, S, k, w, f, &scale);
		print_message("full radial %d^2, %ld spokes x %ld (readout x%ld), ramp:       NRMSE %.4f (scale 1), "
			      "best scale %.4f\n", N, S, n_read, os, e_ramp, scale);
		assert_true(e_ramp < bound);
		assert_true(fabs(scale - 1.0) < (os == 1 ? 0.1 : 0.03));
		assert_int_equal(r5_density_pipe_menon_ex(ctx, idims, n_read * S, k, PM_ITERS, NULL, w, res), R5_OK);
		double e_pm = dcf_roundtrip(idims, n_read, S, k, w, f, &scale);
		print_message("full radial %d^2, %ld spokes x %ld (readout x%ld), Pipe-Menon: NRMSE %.4f (scale 1), "
			      "best scale %.4f\n", N, S, n_read, os, e_pm, scale);
		assert_true(e_pm < bound);
		assert_true(fabs(scale - 1.0) < (os == 1 ? 0.1 : 0.03));
		print_message("Pipe-Menon residual rms(rho - 1) per iteration:");
		for (int t = 0; t < PM_ITERS; t++)
			print_message(" %.1e", res[t]);
		print_message("\n");
		for (int t = 1; t < PM_ITERS; t++) /* monotone, and well down */
			assert_true(res[t] <= res[t - 1] * 1.0001f);
		assert_true(res[PM_ITERS - 1] < 0.01f * res[0]);
		free(k);
		free(w);
	}
	r5_array_free(f);
}

/* Pipe-Menon against the ramp inside the disc (|k| in [4, N/2 - 4]: away from the DC and the
 * edge, where the kernel's reach changes the answer) */
static void test_pipe_menon_vs_ramp(void **state)
{
	(void)state;
	const long n_read = N, S = 101;
	long idims[R5_DIMS];
	image_dims_of(idims, N);
	float *k = radial(R5_TRAJ_RADIAL_UNIFORM, n_read, S, 0);
	float *w = malloc(sizeof(float) * (size_t)(n_read * S)), *r = malloc(sizeof(float) * (size_t)(n_read * S));
	assert_non_null(w);
	assert_non_null(r);
	assert_int_equal(r5_density_ramp(idims, n_read, S, k, r), R5_OK);
	assert_int_equal(r5_density_pipe_menon(ctx, idims, n_read * S, k, PM_ITERS, w), R5_OK);
	double worst = 0.0;
	for (long j = 0; j < n_read * S; j++) {
		double kr = hypot(k[3 * j], k[3 * j + 1]);
		if (kr >= 4.0 && kr <= 0.5 * N - 4.0)
			worst = fmax(worst, fabs(w[j] / r[j] - 1.0));
	}
	print_message("Pipe-Menon / ramp - 1 for 4 <= |k| <= %d: max %.4f\n", N / 2 - 4, worst);
	assert_true(worst < 0.05);
	free(k);
	free(w);
	free(r);
}

/* a fully sampled Archimedean spiral: 8 interleaves, 8 turns each (turns 1/2 cycle/FOV apart
 * over all interleaves: twice Nyquist, as the radial case's 2x readout; at Nyquist, 4 turns, the
 * NRMSE is 0.045 for the reason test_full_radial_roundtrip gives), 2048 samples each (0.8
 * cycle/FOV apart along the outermost turn) */
static void test_spiral(void **state)
{
	(void)state;
	const long n_read = 2048, L = 8;
	long idims[R5_DIMS];
	image_dims_of(idims, N);
	float *k = malloc(sizeof(float) * 3 * (size_t)(n_read * L)), *w = malloc(sizeof(float) * (size_t)(n_read * L));
	float res[PM_ITERS];
	assert_non_null(k);
	assert_non_null(w);
	assert_int_equal(r5_traj_spiral(n_read, L, 0.5 * N, (double)N / L, 1.0, k), R5_OK);
	assert_int_equal(r5_density_pipe_menon_ex(ctx, idims, n_read * L, k, PM_ITERS, NULL, w, res), R5_OK);
	r5_array *f = phantom(N);
	double scale, e = dcf_roundtrip(idims, n_read, L, k, w, f, &scale);
	print_message("spiral %ld x %ld, Pipe-Menon: NRMSE %.4f (scale 1), best scale %.4f; residual %.2e -> %.2e\n",
		      L, n_read, e, scale, res[0], res[PM_ITERS - 1]);
	assert_true(e < 0.03);
	assert_true(fabs(scale - 1.0) < 0.02);
	assert_true(res[PM_ITERS - 1] < 0.05f * res[0]);
	/* variable density (alpha 2, denser at the centre): still converges (optimised builds) */
	if (SLOW_BUILD) {
		free(k);
		free(w);
		r5_array_free(f);
		return;
	}
	assert_int_equal(r5_traj_spiral(n_read, L, 0.5 * N, (double)N / L, 2.0, k), R5_OK);
	assert_int_equal(r5_density_pipe_menon_ex(ctx, idims, n_read * L, k, PM_ITERS, NULL, w, res), R5_OK);
	print_message("variable-density spiral (alpha 2), Pipe-Menon residual %.2e -> %.2e (%d iterations)\n", res[0],
		      res[PM_ITERS - 1], PM_ITERS);
	assert_true(res[PM_ITERS - 1] < 0.05f * res[0]);
	free(k);
	free(w);
	r5_array_free(f);
}

/* golden-angle frames of 21 spokes, 2x readout oversampling (frames 0 and 7 of a stream):
 * Pipe-Menon converges; the gridded image keeps the phantom's amplitude (best scale near 1) */
static void test_golden_frames(void **state)
{
	(void)state;
	const long n_read = 2 * N, S = 21;
	long idims[R5_DIMS];
	image_dims_of(idims, N);
	r5_array *f = phantom(N);
	float *w = malloc(sizeof(float) * (size_t)(n_read * S)), res[PM_ITERS];
	assert_non_null(w);
	for (long frame = 0; frame < 8; frame += 7) {
		float *k = radial(R5_TRAJ_RADIAL_GOLDEN, n_read, S, frame * S);
		double s_ramp, s_pm;
		assert_int_equal(r5_density_ramp(idims, n_read, S, k, w), R5_OK);
		double e_ramp = dcf_roundtrip(idims, n_read, S, k, w, f, &s_ramp);
		assert_int_equal(r5_density_pipe_menon_ex(ctx, idims, n_read * S, k, PM_ITERS, NULL, w, res), R5_OK);
		double e_pm = dcf_roundtrip(idims, n_read, S, k, w, f, &s_pm);
		print_message("golden frame %ld (21 spokes): NRMSE ramp %.3f (scale %.3f), Pipe-Menon %.3f (scale %.3f); "
			      "residual %.2e -> %.2e\n", frame, e_ramp, s_ramp, e_pm, s_pm, res[0], res[PM_ITERS - 1]);
		assert_true(res[PM_ITERS - 1] < 0.1f * res[0]);
		assert_true(fabs(s_pm - 1.0) < 0.05 && fabs(s_ramp - 1.0) < 0.05);
		assert_true(e_pm < 0.1 && e_ramp < 0.1);
		free(k);
	}
	free(w);
	r5_array_free(f);
}

/* <interp(g), s> = <g, spread(s)> */
static void test_grid_pair_adjoint(void **state)
{
	(void)state;
	long idims[R5_DIMS], sdims[R5_DIMS], gdims[R5_DIMS];
	image_dims_of(idims, 24);
	idims[3] = 2;
	float *k = malloc(sizeof(float) * 3 * 16 * 9);
	assert_non_null(k);
	assert_int_equal(r5_traj_radial(R5_TRAJ_RADIAL_GOLDEN, 0, 16, 9, 3, 12.0, k), R5_OK);
	r5_nufft_plan *plan = NULL;
	assert_int_equal(r5_nufft_plan_make(ctx, idims, NULL, &plan), R5_OK);
	assert_int_equal(r5_nufft_set_points(ctx, plan, 16 * 9, k), R5_OK);
	r5_nufft_info info;
	r5_nufft_get_info(plan, &info);
	r5_dims_ones(sdims);
	sdims[1] = 16, sdims[2] = 9, sdims[3] = 2;
	r5_dims_ones(gdims);
	gdims[0] = 2, gdims[1] = info.grid[0], gdims[2] = info.grid[1];
	r5_array *s = NULL, *g = NULL, *sg = NULL, *gs = NULL;
	unsigned seed = 7;
	assert_int_equal(r5_array_zeros(ctx, R5_HOST, sdims, &s), R5_OK);
	assert_int_equal(r5_array_zeros(ctx, R5_HOST, sdims, &gs), R5_OK);
	assert_int_equal(r5_array_zeros(ctx, R5_HOST, gdims, &g), R5_OK);
	assert_int_equal(r5_array_zeros(ctx, R5_HOST, gdims, &sg), R5_OK);
	assert_int_equal(r5_lintest_fill(ctx, s, 0, &seed), R5_OK);
	assert_int_equal(r5_lintest_fill(ctx, g, 0, &seed), R5_OK);
	assert_int_equal(r5_nufft_spread_grid(ctx, plan, sg, s), R5_OK);
	assert_int_equal(r5_nufft_interp_grid(ctx, plan, gs, g), R5_OK);
	double complex a = 0, b = 0;
	const float complex *sv = s->data, *gsv = gs->data, *gv = g->data, *sgv = sg->data;
	for (long j = 0; j < r5_array_size(s); j++)
		a += conj(sv[j]) * gsv[j];
	for (long j = 0; j < r5_array_size(g); j++)
		b += conj(sgv[j]) * gv[j];
	assert_true(cabs(a - b) < 1e-5 * cabs(a));
	/* wrong grid dims: a clear error */
	gdims[1] += 2;
	r5_array *bad = NULL;
	assert_int_equal(r5_array_zeros(ctx, R5_HOST, gdims, &bad), R5_OK);
	assert_int_equal(r5_nufft_spread_grid(ctx, plan, bad, s), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "grid dims"));
	r5_array_free(bad);
	r5_array_free(s);
	r5_array_free(g);
	r5_array_free(sg);
	r5_array_free(gs);
	r5_nufft_plan_destroy(plan);
	free(k);
}

/* 3D kooshball: the ramp's weights sum to the ball's volume; Pipe-Menon converges */
static void test_koosh_3d(void **state)
{
	(void)state;
	const long n = 16, n_read = 16, S = 402; /* pi N^2 / 2 for N = 16 */
	long idims[R5_DIMS];
	r5_dims_ones(idims);
	idims[0] = idims[1] = idims[2] = n;
	float *k = malloc(sizeof(float) * 3 * (size_t)(n_read * S)), *w = malloc(sizeof(float) * (size_t)(n_read * S));
	float res[10];
	assert_non_null(k);
	assert_non_null(w);
	assert_int_equal(r5_traj_radial(R5_TRAJ_KOOSH_GOLDEN_MEANS, 0, n_read, S, 0, 0.5 * n, k), R5_OK);
	assert_int_equal(r5_density_ramp(idims, n_read, S, k, w), R5_OK);
	double sum = 0.0, ball = 4.0 / 3.0 * R5_PI * pow(0.5 * n, 3);
	for (long j = 0; j < n_read * S; j++)
		sum += w[j];
	assert_int_equal(r5_density_pipe_menon_ex(ctx, idims, n_read * S, k, 10, NULL, w, res), R5_OK);
	print_message("kooshball 16^3, %ld spokes: ramp sum %.1f (ball %.1f); Pipe-Menon residual %.2e -> %.2e\n", S,
		      sum, ball, res[0], res[9]);
	assert_true(fabs(sum / ball - 1.0) < 0.03);
	assert_true(res[9] < 0.1f * res[0]);
	free(k);
	free(w);
}

static int count_calls(void *user, const char *stage, double fraction, r5_status *stop)
{
	(void)stage, (void)fraction, (void)stop;
	return ++*(int *)user > 1000000;
}

static int stop_at_third(void *user, const char *stage, double fraction, r5_status *stop)
{
	(void)stage, (void)fraction;
	*stop = R5_ECANCELLED;
	return ++*(int *)user >= 3;
}

/* 3D 16^3 with 160,000 points: Pipe-Menon in 2 chunks (the stop hook between them: 2 calls per
 * chunk and iteration); agrees with the 3D ramp on average inside the ball (the golden means'
 * local density varies from spoke to spoke, which Pipe-Menon follows and the ramp does not);
 * stops when asked */
static void test_chunked_3d(void **state)
{
	(void)state;
	if (SLOW_BUILD)
		skip();
	const long n = 16, n_read = 32, S = 5000, P = n_read * S;
	long idims[R5_DIMS];
	r5_dims_ones(idims);
	idims[0] = idims[1] = idims[2] = n;
	float *k = malloc(sizeof(float) * 3 * (size_t)P), *w = malloc(sizeof(float) * (size_t)P);
	float *r = malloc(sizeof(float) * (size_t)P), res[2];
	assert_non_null(k);
	assert_non_null(w);
	assert_non_null(r);
	assert_int_equal(r5_traj_radial(R5_TRAJ_KOOSH_GOLDEN_MEANS, 0, n_read, S, 0, 0.5 * n, k), R5_OK);
	assert_int_equal(r5_density_ramp(idims, n_read, S, k, r), R5_OK);
	int calls = 0;
	r5_progress hook = {.report = count_calls, .user = &calls};
	assert_int_equal(r5_density_pipe_menon_ex(ctx, idims, P, k, 2, &hook, w, res), R5_OK);
	double sum = 0.0, ss = 0.0;
	long m = 0;
	for (long j = 0; j < P; j++) {
		double kr = sqrt(pow(k[3 * j], 2) + pow(k[3 * j + 1], 2) + pow(k[3 * j + 2], 2));
		if (kr >= 3.0 && kr <= 0.5 * n - 3.0)
			sum += w[j] / r[j] - 1.0, ss += pow(w[j] / r[j] - 1.0, 2), m++;
	}
	print_message("3D 16^3, %ld points: %d hook calls in 2 iterations; residual %.2e -> %.2e; Pipe-Menon / ramp - 1 "
		      "for 3 <= |k| <= %ld: mean %.4f, rms %.4f\n", P, calls, res[0], res[1], n / 2 - 3, sum / m,
		      sqrt(ss / m));
	assert_int_equal(calls, 2 * 2 * 2);
	assert_true(res[1] < 0.1f * res[0]);
	assert_true(fabs(sum / m) < 0.03 && sqrt(ss / m) < 0.1);
	calls = 0;
	hook.report = stop_at_third;
	assert_int_equal(r5_density_pipe_menon_ex(ctx, idims, P, k, 2, &hook, w, res), R5_ECANCELLED);
	assert_non_null(strstr(r5_last_error(), "Pipe-Menon"));
	free(k);
	free(w);
	free(r);
}

static void test_errors(void **state)
{
	(void)state;
	long idims[R5_DIMS];
	image_dims_of(idims, 16);
	float k[3 * 4 * 2] = {0}, w[8];
	assert_int_equal(r5_density_ramp(idims, 4, 2, k, w), R5_EINVAL); /* spokes of no extent */
	assert_non_null(strstr(r5_last_error(), "spoke 0"));
	assert_int_equal(r5_density_ramp(idims, 1, 2, k, w), R5_EINVAL);
	assert_int_equal(r5_density_ramp(idims, 4, 2, NULL, w), R5_EINVAL);
	assert_int_equal(r5_density_pipe_menon(ctx, idims, 8, k, 0, w), R5_EINVAL);
	k[0] = 9.0f; /* outside [-8, 8) */
	assert_int_equal(r5_density_pipe_menon(ctx, idims, 8, k, 3, w), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "point 0"));
	idims[1] = 1;
	assert_int_equal(r5_density_ramp(idims, 4, 2, k, w), R5_EINVAL);
	float s[3 * 8];
	assert_int_equal(r5_traj_spiral(8, 1, 8.0, 0.0, 1.0, s), R5_EINVAL);
	assert_int_equal(r5_traj_spiral(8, 1, 8.0, 2.0, 0.5, s), R5_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ramp_values),     cmocka_unit_test(test_full_radial_roundtrip),
		cmocka_unit_test(test_pipe_menon_vs_ramp), cmocka_unit_test(test_spiral),
		cmocka_unit_test(test_golden_frames),   cmocka_unit_test(test_grid_pair_adjoint),
		cmocka_unit_test(test_koosh_3d),        cmocka_unit_test(test_chunked_3d),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
