/* Non-Cartesian CG-SENSE (recon/pipeline/nc_sense.h): on a numerical radial phantom (48^2, four
 * smooth coils, 80 spokes, noiseless data made by the NUFFT forward) the solution against the
 * truth; one CG iteration through the Toeplitz normal against the same step computed with the
 * NUFFT pair A^H A (the rhs S^H A^H y and the normal S^H A^H A S both checked); the density
 * weighted variant; ESPIRiT maps from the gridded centre against the true maps where the object
 * is; bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <complex.h>
#include <math.h>
#include <stdlib.h>

#include "recon/linop/nufft.h"
#include "recon/pipeline/nc_sense.h"

#include "cpu_fixture.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

#define N 48
#define COILS 4
#define SPOKES 80
#define READ 48

#include "nc_phantom.h"

/* BART's `traj -r` layout: spoke s at angle pi s / SPOKES, k = (i - READ/2) N / READ */
static float *radial(void)
{
	float *k = malloc(sizeof(float) * 3 * READ * SPOKES);
	assert_non_null(k);
	for (int s = 0; s < SPOKES; s++)
		for (int i = 0; i < READ; i++) {
			double r = (i - READ / 2) * (double)N / READ, a = M_PI * s / SPOKES;
			float *p = k + 3 * (s * READ + i);
			p[0] = (float)(r * cos(a)), p[1] = (float)(r * sin(a)), p[2] = 0.0f;
		}
	return k;
}

static r5_array *simulate(const float *k, const r5_array *truth, const r5_array *maps)
{
	long cd[R5_DIMS], sd[R5_DIMS];
	dims_of(cd, N, N, 1, COILS);
	dims_of(sd, 1, READ, SPOKES, COILS);
	sd[0] = 1;
	r5_array *coils = host(cd), *y = host(sd);
	assert_int_equal(r5_zmul(ctx, coils, maps, truth, 0), R5_OK);
	r5_nufft_plan *plan = NULL;
	assert_int_equal(r5_nufft_plan_make(ctx, cd, NULL, &plan), R5_OK);
	assert_int_equal(r5_nufft_set_points(ctx, plan, READ * SPOKES, k), R5_OK);
	assert_int_equal(r5_nufft_forward(ctx, plan, y, coils), R5_OK);
	r5_nufft_plan_destroy(plan);
	r5_array_free(coils);
	return y;
}

static double nrmse(const r5_array *x, const r5_array *ref, const r5_array *mask_from)
{
	double num = 0, den = 0;
	for (long i = 0; i < r5_array_size(ref); i++) {
		if (mask_from && cabsf(mask_from->data[i]) == 0.0f)
			continue;
		num += pow(cabs(x->data[i] - ref->data[i]), 2);
		den += pow(cabs(ref->data[i]), 2);
	}
	return sqrt(num / den);
}

static void test_phantom(void **state)
{
	(void)state;
	long id[R5_DIMS], cd[R5_DIMS], img[R5_DIMS];
	dims_of(id, N, N, 1, COILS);
	dims_of(cd, N, N, 1, COILS);
	dims_of(img, N, N, 1, 1);
	r5_array *truth = host(img), *maps = host(cd), *x = host(img);
	phantom(truth, maps);
	float *k = radial();
	r5_array *y = simulate(k, truth, maps);

	r5_nc_sense_opts o = r5_nc_sense_defaults;
	o.iters = 40;
	o.lambda = 0.0f;
	assert_int_equal(r5_nc_sense_solve(ctx, id, READ * SPOKES, k, y, maps, &o, NULL, x), R5_OK);
	double e = nrmse(x, truth, NULL);
	print_message("nc sense, 48^2 radial 80 spokes, 40 iterations: NRMSE %.4f\n", e);
	assert_true(e < 2e-3); /* measured 1.0e-4 */

	o.use_density = 1;
	o.iters = 15;
	assert_int_equal(r5_nc_sense_solve(ctx, id, READ * SPOKES, k, y, maps, &o, NULL, x), R5_OK);
	double ed = nrmse(x, truth, NULL);
	print_message("nc sense with ramp weights, 15 iterations: NRMSE %.4f\n", ed);
	assert_true(ed < 3e-3); /* measured 2.0e-4 */

	/* the gridded-centre ESPIRiT maps: |<S_est, S_true>| close to 1 inside the object */
	r5_array *est = NULL;
	assert_int_equal(r5_nc_maps_espirit(ctx, id, READ * SPOKES, k, y, 24, &est), R5_OK);
	double worst = 1.0, sum = 0;
	long inside = 0;
	for (long p = 0; p < N * N; p++) {
		if (cabsf(truth->data[p]) < 0.5f)
			continue;
		double complex ip = 0;
		for (int c = 0; c < COILS; c++)
			ip += est->data[c * N * N + p] * conjf(maps->data[c * N * N + p]);
		worst = fmin(worst, cabs(ip));
		sum += cabs(ip);
		inside++;
	}
	print_message("espirit maps vs truth in the object: mean |<S, S0>| %.4f, worst %.4f\n", sum / inside, worst);
	assert_true(sum / inside > 0.97);
	r5_array_free(est);
	r5_array_free(y);
	r5_array_free(x);
	r5_array_free(maps);
	r5_array_free(truth);
	free(k);
}

/* One CG step from 0: x1 = (|b|^2 / b^H (E^H E + lambda) b) b, with b = S^H A^H y and E^H E b
 * computed here by the NUFFT pair (forward then adjoint): the solver's Toeplitz normal and its
 * rhs agree with the pair to the kernel's accuracy. */
static void test_toeplitz_vs_pair(void **state)
{
	(void)state;
	long id[R5_DIMS], img[R5_DIMS], sd[R5_DIMS];
	dims_of(id, N, N, 1, COILS);
	dims_of(img, N, N, 1, 1);
	dims_of(sd, 1, READ, SPOKES, COILS);
	r5_array *truth = host(img), *maps = host(id), *x = host(img), *b = host(img), *eb = host(img);
	r5_array *coils = host(id), *samples = host(sd);
	phantom(truth, maps);
	float *k = radial();
	r5_array *y = simulate(k, truth, maps);
	r5_nufft_plan *plan = NULL;
	assert_int_equal(r5_nufft_plan_make(ctx, id, NULL, &plan), R5_OK);
	assert_int_equal(r5_nufft_set_points(ctx, plan, READ * SPOKES, k), R5_OK);
	assert_int_equal(r5_nufft_adjoint(ctx, plan, coils, y), R5_OK);
	assert_int_equal(r5_zmul(ctx, coils, coils, maps, R5_ZMUL_CONJ2), R5_OK);
	assert_int_equal(r5_zsum(ctx, b, coils), R5_OK);
	assert_int_equal(r5_zmul(ctx, coils, maps, b, 0), R5_OK);
	assert_int_equal(r5_nufft_forward(ctx, plan, samples, coils), R5_OK);
	assert_int_equal(r5_nufft_adjoint(ctx, plan, coils, samples), R5_OK);
	assert_int_equal(r5_zmul(ctx, coils, coils, maps, R5_ZMUL_CONJ2), R5_OK);
	assert_int_equal(r5_zsum(ctx, eb, coils), R5_OK);
	double complex bb = 0, beb = 0;
	assert_int_equal(r5_zdot(ctx, b, b, &bb), R5_OK);
	assert_int_equal(r5_zdot(ctx, b, eb, &beb), R5_OK);
	double alpha = creal(bb) / creal(beb); /* lambda 0 */

	r5_nc_sense_opts o = r5_nc_sense_defaults;
	o.iters = 1;
	o.lambda = 0.0f;
	assert_int_equal(r5_nc_sense_solve(ctx, id, READ * SPOKES, k, y, maps, &o, NULL, x), R5_OK);
	assert_int_equal(r5_zscale(ctx, b, (float complex)alpha), R5_OK);
	double e = nrmse(x, b, NULL);
	print_message("one CG step, Toeplitz normal vs the NUFFT pair: relative difference %.2e\n", e);
	assert_true(e < 2e-5); /* measured 1.1e-6 */
	r5_nufft_plan_destroy(plan);
	r5_array_free(y);
	r5_array_free(samples);
	r5_array_free(coils);
	r5_array_free(eb);
	r5_array_free(b);
	r5_array_free(x);
	r5_array_free(maps);
	r5_array_free(truth);
	free(k);
}

static void test_errors(void **state)
{
	(void)state;
	long id[R5_DIMS], img[R5_DIMS], sd[R5_DIMS];
	dims_of(id, N, N, 1, COILS);
	dims_of(img, N, N, 1, 1);
	dims_of(sd, 1, READ, SPOKES - 1, COILS);
	r5_array *maps = host(id), *x = host(img), *short_y = host(sd);
	float *k = radial();
	assert_int_equal(r5_nc_sense_solve(ctx, id, READ * SPOKES, k, short_y, maps, NULL, NULL, x), R5_EINVAL);
	print_message("%s\n", r5_last_error());
	r5_array *y = NULL;
	dims_of(sd, 1, READ, SPOKES, COILS);
	y = host(sd);
	k[7] = 1e3f; /* outside [-N/2, N/2) */
	assert_int_equal(r5_nc_sense_solve(ctx, id, READ * SPOKES, k, y, maps, NULL, NULL, x), R5_EINVAL);
	print_message("%s\n", r5_last_error());
	free(k);
	k = radial();
	r5_array *m = NULL;
	assert_int_equal(r5_nc_maps_espirit(ctx, id, READ * SPOKES, k, y, 4, &m), R5_EINVAL); /* calib < 8 */
	print_message("%s\n", r5_last_error());
	assert_null(m);
	r5_array_free(y);
	r5_array_free(short_y);
	r5_array_free(x);
	r5_array_free(maps);
	free(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_phantom),
		cmocka_unit_test(test_toeplitz_vs_pair),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
