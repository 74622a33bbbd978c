/* RING gradient-delay estimation (recon/calib/gradient_delay.h) on simulated radial k-space: a
 * phantom with 4 coils sampled by the forward NUFFT at trajectories shifted by known delays
 * (r5_traj_apply_delay, BART's `traj -q` model); the estimate from the nominal trajectory
 * recovers the delays to 0.05 samples (golden angle, 2x readout; uniform 360-degree 25 spokes;
 * no delay; the transverse model), and gridding with the corrected trajectory lowers the
 * image's NRMSE to that of the true trajectory; the delay model against bart traj -q when bart
 * is on the PATH; bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <complex.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recon/calib/gradient_delay.h"
#include "recon/core/hd.h"
#include "recon/io/cfl.h"
#include "recon/linop/density.h"
#include "recon/linop/nufft.h"
#include "recon/linop/traj.h"

#include "cpu_fixture.h"

#define N 64
#define COILS 4
#define TOL_DELAY 0.05 /* samples */

/* coil images [N, N, 1, COILS]: smooth-edged discs times smooth complex coil sensitivities */
static r5_array *coil_images(void)
{
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = dims[1] = N, dims[3] = COILS;
	r5_array *f = NULL;
	assert_int_equal(r5_array_zeros(ctx, R5_HOST, dims, &f), R5_OK);
	const double disc[][4] = {{0.0, 0.0, 22.0, 1.0}, {-8.0, 6.0, 6.0, 0.5}, {9.0, -5.0, 4.0, -0.4},
				  {3.0, 12.0, 3.0, 0.6}, {-10.0, -9.0, 2.0, 0.7}};
	float complex *v = f->data;
	for (long c = 0; c < COILS; c++) {
		double cx = 40.0 * cos(2.0 * R5_PI * c / COILS), cy = 40.0 * sin(2.0 * R5_PI * c / COILS);
		for (long y = 0; y < N; y++)
			for (long x = 0; x < N; x++) {
				double X = (double)(x - N / 2), Y = (double)(y - N / 2), s = 0.0;
				for (size_t b = 0; b < sizeof disc / sizeof disc[0]; b++)
					s += disc[b][3] * 0.5 * erfc((hypot(X - disc[b][0], Y - disc[b][1]) - disc[b][2]) / sqrt(2.0));
				double sens = exp(-(pow(X - cx, 2) + pow(Y - cy, 2)) / (2.0 * 45.0 * 45.0));
				double phase = 0.02 * (c + 1) * X - 0.015 * c * Y + 0.5 * c;
				v[x + N * (y + N * c)] = (float complex)(s * sens * cexp(I * phase));
			}
	}
	return f;
}

struct sim {
	long n_read, n_spokes;
	float *nominal, *real;
	r5_array *samples;
};

/* samples at the trajectory shifted by `delay` (model: transverse or not) */
static struct sim simulate(r5_traj_kind kind, long n_read, long n_spokes, const float delay[3], int transverse,
			   const r5_array *images)
{
	struct sim s = {.n_read = n_read, .n_spokes = n_spokes};
	size_t n = (size_t)(3 * n_read * n_spokes);
	s.nominal = malloc(sizeof(float) * n);
	s.real = malloc(sizeof(float) * n);
	assert_non_null(s.nominal);
	assert_non_null(s.real);
	assert_int_equal(r5_traj_radial(kind, 0, n_read, n_spokes, 0, 0.5 * N - 2.0, s.nominal), R5_OK);
	memcpy(s.real, s.nominal, sizeof(float) * n);
	assert_int_equal(r5_traj_apply_delay(n_read, n_spokes, delay, transverse, s.real), R5_OK);
	long sdims[R5_DIMS];
	r5_dims_ones(sdims);
	sdims[1] = n_read, sdims[2] = n_spokes, sdims[3] = COILS;
	assert_int_equal(r5_array_zeros(ctx, R5_HOST, sdims, &s.samples), R5_OK);
	r5_nufft_plan *plan = NULL;
	assert_int_equal(r5_nufft_plan_make(ctx, images->dims, NULL, &plan), R5_OK);
	assert_int_equal(r5_nufft_set_points(ctx, plan, n_read * n_spokes, s.real), R5_OK);
	assert_int_equal(r5_nufft_forward(ctx, plan, s.samples, images), R5_OK);
	r5_nufft_plan_destroy(plan);
	return s;
}

static void sim_free(struct sim *s)
{
	free(s->nominal);
	free(s->real);
	r5_array_free(s->samples);
}

static double estimate(const struct sim *s, const r5_gradient_delay_opts *opts, const float truth[3], float est[3])
{
	float residual;
	assert_int_equal(r5_gradient_delay_ring(s->samples, s->nominal, s->n_read, s->n_spokes, opts, NULL, est,
						&residual), R5_OK);
	double worst = 0.0;
	for (int d = 0; d < 3; d++)
		worst = fmax(worst, fabs(est[d] - truth[d]));
	print_message("%ld spokes x %ld: delay (%.3f, %.3f, %.3f), estimate (%.4f, %.4f, %.4f), max error %.4f "
		      "samples, fit residual %.4f\n", s->n_spokes, s->n_read, truth[0], truth[1], truth[2], est[0], est[1],
		      est[2], worst, residual);
	return worst;
}

static void test_golden_2x(void **state)
{
	(void)state;
	r5_array *images = coil_images();
	const float delay[3] = {0.6f, -0.4f, 0.25f};
	struct sim s = simulate(R5_TRAJ_RADIAL_GOLDEN, 2 * N, 55, delay, 0, images);
	float est[3];
	assert_true(estimate(&s, NULL, delay, est) < TOL_DELAY);
	sim_free(&s);
	const float big[3] = {-1.2f, 0.9f, -0.5f};
	s = simulate(R5_TRAJ_RADIAL_GOLDEN, 2 * N, 55, big, 0, images);
	assert_true(estimate(&s, NULL, big, est) < TOL_DELAY);
	sim_free(&s);
	const float none[3] = {0.0f, 0.0f, 0.0f};
	s = simulate(R5_TRAJ_RADIAL_GOLDEN, 2 * N, 55, none, 0, images);
	assert_true(estimate(&s, NULL, none, est) < TOL_DELAY);
	sim_free(&s);
	r5_array_free(images);
}

/* as the real cardiac set: 25 spokes over 360 degrees, no readout oversampling */
static void test_uniform_360_few(void **state)
{
	(void)state;
	r5_array *images = coil_images();
	const float delay[3] = {0.5f, 0.3f, -0.2f};
	struct sim s = simulate(R5_TRAJ_RADIAL_UNIFORM_360, N, 25, delay, 0, images);
	float est[3];
	assert_true(estimate(&s, NULL, delay, est) < TOL_DELAY);
	sim_free(&s);
	r5_array_free(images);
}

/* complex Gaussian noise of sigma = 2 % of the largest sample (the central ones): still within
 * 0.05 samples */
static void test_noise(void **state)
{
	(void)state;
	r5_array *images = coil_images();
	const float delay[3] = {0.6f, -0.4f, 0.25f};
	struct sim s = simulate(R5_TRAJ_RADIAL_GOLDEN, 2 * N, 55, delay, 0, images);
	float complex *y = s.samples->data;
	double peak = 0.0;
	long n = r5_array_size(s.samples);
	for (long j = 0; j < n; j++)
		peak = fmax(peak, cabs(y[j]));
	unsigned rng = 99u;
	for (long j = 0; j < n; j++) {
		double u[2];
		for (int t = 0; t < 2; t++) {
			rng = rng * 1103515245u + 12345u;
			u[t] = ((rng >> 8) + 0.5) / 16777216.0;
		}
		double rad = 0.02 * peak * sqrt(-log(u[0])); /* sigma 0.02 peak per complex value */
		y[j] += (float complex)(rad * cexp(2.0 * I * R5_PI * u[1]));
	}
	float est[3];
	assert_true(estimate(&s, NULL, delay, est) < TOL_DELAY);
	sim_free(&s);
	r5_array_free(images);
}

static void test_transverse(void **state)
{
	(void)state;
	r5_array *images = coil_images();
	const float delay[3] = {0.5f, -0.3f, 0.3f};
	struct sim s = simulate(R5_TRAJ_RADIAL_GOLDEN, 2 * N, 55, delay, 1, images);
	r5_gradient_delay_opts o = r5_gradient_delay_defaults;
	o.transverse = 1;
	float est[3];
	assert_true(estimate(&s, &o, delay, est) < TOL_DELAY);
	sim_free(&s);
	r5_array_free(images);
}

/* rss of the ramp-weighted adjoint at coords */
static void grid_rss(const struct sim *s, const float *coords, const long idims[R5_DIMS], float *rss)
{
	long n = s->n_read * s->n_spokes;
	float *w = malloc(sizeof(float) * (size_t)n);
	assert_non_null(w);
	assert_int_equal(r5_density_ramp(idims, s->n_read, s->n_spokes, coords, w), R5_OK);
	r5_array *y = NULL, *img = NULL;
	assert_int_equal(r5_array_zeros(ctx, R5_HOST, s->samples->dims, &y), R5_OK);
	assert_int_equal(r5_array_zeros(ctx, R5_HOST, idims, &img), R5_OK);
	const float complex *src = s->samples->data;
	float complex *dst = y->data;
	for (long c = 0; c < COILS; c++)
		for (long j = 0; j < n; j++)
			dst[j + n * c] = src[j + n * c] * w[j];
	r5_nufft_plan *plan = NULL;
	assert_int_equal(r5_nufft_plan_make(ctx, idims, NULL, &plan), R5_OK);
	assert_int_equal(r5_nufft_set_points(ctx, plan, n, coords), R5_OK);
	assert_int_equal(r5_nufft_adjoint(ctx, plan, img, y), R5_OK);
	const float complex *v = img->data;
	for (long p = 0; p < N * N; p++) {
		double ss = 0.0;
		for (long c = 0; c < COILS; c++)
			ss += pow(cabs(v[p + N * N * c]), 2);
		rss[p] = (float)sqrt(ss);
	}
	r5_nufft_plan_destroy(plan);
	r5_array_free(y);
	r5_array_free(img);
	free(w);
}

static double nrmse_scaled(const float *img, const float *ref, long n)
{
	double num = 0, den = 0, err = 0, norm = 0;
	for (long i = 0; i < n; i++)
		num += (double)img[i] * ref[i], den += (double)img[i] * img[i];
	double a = num / den;
	for (long i = 0; i < n; i++)
		err += pow(a * img[i] - ref[i], 2), norm += pow(ref[i], 2);
	return sqrt(err / norm);
}

/* gridding with the estimated delay applied: NRMSE (rss against the true coil images' rss) down
 * from the nominal trajectory's to about the true trajectory's */
static void test_correction_lowers_nrmse(void **state)
{
	(void)state;
	r5_array *images = coil_images();
	const float delay[3] = {0.8f, -0.6f, 0.3f};
	struct sim s = simulate(R5_TRAJ_RADIAL_GOLDEN, 2 * N, 101, delay, 0, images);
	float est[3];
	assert_true(estimate(&s, NULL, delay, est) < TOL_DELAY);
	float *corrected = malloc(sizeof(float) * (size_t)(3 * s.n_read * s.n_spokes));
	float truth[N * N], rss_nom[N * N], rss_cor[N * N], rss_real[N * N];
	assert_non_null(corrected);
	memcpy(corrected, s.nominal, sizeof(float) * (size_t)(3 * s.n_read * s.n_spokes));
	assert_int_equal(r5_traj_apply_delay(s.n_read, s.n_spokes, est, 0, corrected), R5_OK);
	const float complex *v = images->data;
	for (long p = 0; p < N * N; p++) {
		double ss = 0.0;
		for (long c = 0; c < COILS; c++)
			ss += pow(cabs(v[p + N * N * c]), 2);
		truth[p] = (float)sqrt(ss);
	}
	grid_rss(&s, s.nominal, images->dims, rss_nom);
	grid_rss(&s, corrected, images->dims, rss_cor);
	grid_rss(&s, s.real, images->dims, rss_real);
	double e_nom = nrmse_scaled(rss_nom, truth, N * N), e_cor = nrmse_scaled(rss_cor, truth, N * N);
	double e_real = nrmse_scaled(rss_real, truth, N * N);
	print_message("gridded rss NRMSE: nominal trajectory %.4f, corrected %.4f, true trajectory %.4f\n", e_nom, e_cor,
		      e_real);
	assert_true(e_cor < 0.5 * e_nom);
	assert_true(e_cor < e_real + 0.005);
	free(corrected);
	sim_free(&s);
	r5_array_free(images);
}

/* r5_traj_apply_delay is bart traj -q (and -q -O) */
static void test_delay_model_against_bart(void **state)
{
	(void)state;
	if (system("command -v bart > /dev/null 2>&1") != 0)
		skip();
	const char *opts[2] = {"", "-O"};
	for (int transverse = 0; transverse < 2; transverse++) {
		char dir[] = "/tmp/r5_test_delay_XXXXXX", cmd[512], path[300];
		assert_non_null(mkdtemp(dir));
		snprintf(path, sizeof path, "%s/t", dir);
		snprintf(cmd, sizeof cmd, "bart traj -x 32 -y 13 -r -G -q 0.7:-0.4:0.3 %s %s > /dev/null 2>&1",
			 opts[transverse], path);
		assert_int_equal(system(cmd), 0);
		r5_array *bart = NULL;
		assert_int_equal(r5_cfl_read(path, &bart), R5_OK);
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
		assert_int_equal(system(cmd), 0);
		float k[3 * 32 * 13];
		const float delay[3] = {0.7f, -0.4f, 0.3f};
		assert_int_equal(r5_traj_radial(R5_TRAJ_RADIAL_GOLDEN | R5_TRAJ_SYMMETRIC, 0, 32, 13, 0, 16.0, k), R5_OK);
		assert_int_equal(r5_traj_apply_delay(32, 13, delay, transverse, k), R5_OK);
		const float complex *b = bart->data;
		double worst = 0.0;
		for (long j = 0; j < 3 * 32 * 13; j++)
			worst = fmax(worst, fabs(k[j] - crealf(b[j])));
		print_message("bart traj -r -G -q 0.7:-0.4:0.3 %s: max |difference| %.2e\n", opts[transverse], worst);
		assert_true(worst < 1e-4);
		r5_array_free(bart);
	}
}

static void test_errors(void **state)
{
	(void)state;
	long sdims[R5_DIMS];
	r5_dims_ones(sdims);
	sdims[1] = 16, sdims[2] = 5, sdims[3] = 2;
	r5_array *y = NULL;
	assert_int_equal(r5_array_zeros(ctx, R5_HOST, sdims, &y), R5_OK);
	float k[3 * 16 * 5], d[3];
	assert_int_equal(r5_traj_radial(R5_TRAJ_RADIAL_UNIFORM, 0, 16, 5, 0, 8.0, k), R5_OK);
	assert_int_equal(r5_gradient_delay_ring(y, k, 16, 6, NULL, NULL, d, NULL), R5_EINVAL); /* dims */
	assert_non_null(strstr(r5_last_error(), "RING"));
	assert_int_equal(r5_gradient_delay_ring(y, NULL, 16, 5, NULL, NULL, d, NULL), R5_EINVAL);
	r5_gradient_delay_opts o = r5_gradient_delay_defaults;
	o.search = 0.0;
	assert_int_equal(r5_gradient_delay_ring(y, k, 16, 5, &o, NULL, d, NULL), R5_EINVAL);
	/* a spoke that misses the centre: not radial */
	for (long i = 0; i < 16; i++)
		k[3 * (i + 16 * 2)] += 3.0f;
	assert_int_equal(r5_gradient_delay_ring(y, k, 16, 5, NULL, NULL, d, NULL), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "spoke 2"));
	/* all spokes parallel: the delays are not determined */
	assert_int_equal(r5_traj_radial(R5_TRAJ_RADIAL_UNIFORM, 0, 16, 5, 0, 8.0, k), R5_OK);
	for (long s = 1; s < 5; s++)
		memcpy(k + 3 * 16 * s, k, sizeof(float) * 3 * 16);
	assert_int_equal(r5_gradient_delay_ring(y, k, 16, 5, NULL, NULL, d, NULL), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "do not determine"));
	const float bad[3] = {NAN, 0.0f, 0.0f};
	assert_int_equal(r5_traj_apply_delay(16, 5, bad, 0, k), R5_EINVAL);
	r5_array_free(y);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden_2x),
		cmocka_unit_test(test_uniform_360_few),
		cmocka_unit_test(test_noise),
		cmocka_unit_test(test_transverse),
		cmocka_unit_test(test_correction_lowers_nrmse),
		cmocka_unit_test(test_delay_model_against_bart),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
