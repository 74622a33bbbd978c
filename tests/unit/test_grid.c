/* Frame-level gridding (recon/pipeline/grid.h): a smooth object sampled along a uniform radial
 * trajectory by the NUFFT forward comes back at its amplitude from the ramp-weighted adjoint
 * (maps combination: NRMSE bound measured, below), rss = |f| sqrt(sum |S|^2); a trajectory
 * ending at +N/2 (BART/gpuNUFFT) grids as one ending at -N/2; a plan reused across frames with
 * other trajectories and point counts; the refusals (non-radial without weights, wrong shapes,
 * coordinates out of range). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <complex.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "recon/core/status.h"
#include "recon/pipeline/grid.h"

#include "cpu_fixture.h"

#define N 64
#define PI 3.14159265358979323846

/* uniform radial: spoke s at angle s pi / n_spokes, k = (i - n_read/2) 2 kmax / n_read along it,
 * starting at +kmax when flip (BART's `traj -r` starts at -kmax) */
static float *radial(long n_read, long n_spokes, double kmax, double angle0, int flip)
{
	float *k = calloc(3 * (size_t)(n_read * n_spokes), sizeof *k);
	assert_non_null(k);
	for (long s = 0; s < n_spokes; s++) {
		double a = angle0 + PI * (double)s / (double)n_spokes;
		for (long i = 0; i < n_read; i++) {
			double r = (double)(i - n_read / 2) * 2.0 * kmax / (double)n_read;
			if (flip)
				r = -r;
			k[3 * (i + n_read * s)] = (float)(r * cos(a));
			k[3 * (i + n_read * s) + 1] = (float)(r * sin(a));
		}
	}
	return k;
}

/* smooth object (a Gaussian blob, sigma 7 px, off-centre) and two coils */
static void object(r5_array *f, r5_array *maps)
{
	for (long y = 0; y < N; y++)
		for (long x = 0; x < N; x++) {
			double dx = (double)(x - N / 2 - 3), dy = (double)(y - N / 2 + 2);
			f->data[x + N * y] = (float complex)(exp(-(dx * dx + dy * dy) / (2 * 49.0)) * cexp(0.3 * I));
			maps->data[x + N * y] = 0.8f;
			maps->data[x + N * y + N * N] = (float complex)(0.6 * cexp(I * 2 * PI * (double)x / N));
		}
}

/* samples of coil images S f along coords */
static r5_array *sample(const float *coords, long n_read, long n_spokes, const r5_array *f, const r5_array *maps)
{
	long idims[R5_DIMS], sdims[R5_DIMS];
	dims_of(idims, N, N, 1, 2);
	dims_of(sdims, 1, n_read, n_spokes, 2);
	r5_array *coil = NULL, *y = NULL;
	assert_int_equal(r5_array_alloc_host(idims, &coil), R5_OK);
	assert_int_equal(r5_array_alloc_host(sdims, &y), R5_OK);
	for (long c = 0; c < 2; c++)
		for (long i = 0; i < N * N; i++)
			coil->data[i + c * N * N] = f->data[i] * maps->data[i + c * N * N];
	r5_nufft_plan *plan = NULL;
	assert_int_equal(r5_nufft_plan_make(ctx, idims, NULL, &plan), R5_OK);
	float *wrapped = malloc(sizeof(float) * 3 * (size_t)(n_read * n_spokes));
	memcpy(wrapped, coords, sizeof(float) * 3 * (size_t)(n_read * n_spokes));
	r5_grid_wrap_coords(idims, n_read * n_spokes, wrapped);
	assert_int_equal(r5_nufft_set_points(ctx, plan, n_read * n_spokes, wrapped), R5_OK);
	assert_int_equal(r5_nufft_forward(ctx, plan, y, coil), R5_OK);
	r5_nufft_plan_destroy(plan);
	free(wrapped);
	r5_array_free(coil);
	return y;
}

/* NRMSE of a against b over the pixels where the object is above 5 % of its peak */
static double nrmse_support(const r5_array *a, const r5_array *b, int magnitude)
{
	double err = 0, ref = 0;
	for (long i = 0; i < N * N; i++) {
		double complex t = b->data[i], v = a->data[i];
		if (cabs(t) < 0.05)
			continue;
		double complex d = magnitude ? cabs(v) - cabs(t) : v - t;
		err += creal(d * conj(d));
		ref += creal(t * conj(t));
	}
	return sqrt(err / ref);
}

static void alloc_all(r5_array **f, r5_array **maps, r5_array **image)
{
	long idims[R5_DIMS], cdims[R5_DIMS];
	dims_of(idims, N, N, 1, 1);
	dims_of(cdims, N, N, 1, 2);
	assert_int_equal(r5_array_alloc_host(idims, f), R5_OK);
	assert_int_equal(r5_array_alloc_host(cdims, maps), R5_OK);
	assert_int_equal(r5_array_alloc_host(idims, image), R5_OK);
	object(*f, *maps);
}

/* 2x oversampled readout (128 samples, dk 1/2), 101 spokes (fully sampled: >= pi N / 2) */
static void test_grid_amplitude(void **state)
{
	(void)state;
	r5_array *f, *maps, *image, *coils = NULL;
	alloc_all(&f, &maps, &image);
	long n_read = 2 * N, n_spokes = 101, cdims[R5_DIMS];
	float *k = radial(n_read, n_spokes, N / 2.0, 0.1, 0);
	r5_array *y = sample(k, n_read, n_spokes, f, maps);
	dims_of(cdims, N, N, 1, 2);
	r5_grid_plan *plan = NULL;
	assert_int_equal(r5_grid_plan_make(ctx, cdims, NULL, &plan), R5_OK);
	assert_int_equal(r5_array_alloc_host(cdims, &coils), R5_OK);
	assert_int_equal(r5_grid_frame(ctx, plan, n_read * n_spokes, k, NULL, y, maps, coils, image), R5_OK);
	double e_maps = nrmse_support(image, f, 0);
	/* rss: |f| sqrt(0.8^2 + 0.6^2) = |f| */
	assert_int_equal(r5_grid_frame(ctx, plan, n_read * n_spokes, k, NULL, y, NULL, NULL, image), R5_OK);
	double e_rss = nrmse_support(image, f, 1);
	print_message("gridding NRMSE (support): maps %.4f, rss %.4f\n", e_maps, e_rss);
	assert_true(e_maps < 0.03);
	assert_true(e_rss < 0.03);
	/* explicit ramp weights are the NULL default */
	float *w = malloc(sizeof(float) * (size_t)(n_read * n_spokes));
	assert_int_equal(r5_grid_ramp(n_read, n_spokes, k, w), R5_OK);
	r5_array *again = NULL;
	long idims[R5_DIMS];
	dims_of(idims, N, N, 1, 1);
	assert_int_equal(r5_array_alloc_host(idims, &again), R5_OK);
	assert_int_equal(r5_grid_frame(ctx, plan, n_read * n_spokes, k, w, y, NULL, NULL, again), R5_OK);
	assert_memory_equal(again->data, image->data, sizeof(float complex) * N * N);
	/* the plan on another frame: fewer spokes (aliasing of a smooth blob falls mostly outside it) */
	long few = 34;
	float *k2 = radial(n_read, few, N / 2.0, 0.37, 0);
	r5_array *y2 = sample(k2, n_read, few, f, maps);
	assert_int_equal(r5_grid_frame(ctx, plan, n_read * few, k2, NULL, y2, maps, NULL, again), R5_OK);
	double e_few = nrmse_support(again, f, 0);
	print_message("gridding NRMSE with %ld spokes: %.4f\n", few, e_few);
	assert_true(e_few < 0.1);
	free(w);
	free(k);
	free(k2);
	r5_array_free(y);
	r5_array_free(y2);
	r5_array_free(again);
	r5_array_free(coils);
	r5_grid_plan_destroy(plan);
	r5_array_free(f);
	r5_array_free(maps);
	r5_array_free(image);
}

/* spokes from +N/2 to -N/2 + dk (the real radial set's layout): +N/2 is taken as -N/2 */
static void test_grid_plus_half(void **state)
{
	(void)state;
	r5_array *f, *maps, *image;
	alloc_all(&f, &maps, &image);
	long n_read = N, n_spokes = 101, cdims[R5_DIMS];
	float *k = radial(n_read, n_spokes, N / 2.0, 0.0, 1);
	assert_true(k[0] == (float)(N / 2)); /* the first sample sits at +N/2 */
	r5_array *y = sample(k, n_read, n_spokes, f, maps);
	dims_of(cdims, N, N, 1, 2);
	r5_grid_plan *plan = NULL;
	assert_int_equal(r5_grid_plan_make(ctx, cdims, NULL, &plan), R5_OK);
	assert_int_equal(r5_grid_frame(ctx, plan, n_read * n_spokes, k, NULL, y, maps, NULL, image), R5_OK);
	double e = nrmse_support(image, f, 0);
	print_message("gridding NRMSE, spokes from +N/2, dk 1: %.4f\n", e);
	assert_true(e < 0.05);
	/* through the BART array and r5_grid_coords */
	long tdims[R5_DIMS];
	dims_of(tdims, 3, n_read, n_spokes, 1);
	r5_array *traj = NULL;
	assert_int_equal(r5_array_alloc_host(tdims, &traj), R5_OK);
	for (long j = 0; j < 3 * n_read * n_spokes; j++)
		traj->data[j] = k[j];
	float *back = malloc(sizeof(float) * 3 * (size_t)(n_read * n_spokes));
	assert_int_equal(r5_grid_coords(traj, cdims, 0, n_spokes, back), R5_OK);
	assert_memory_equal(back, k, sizeof(float) * 3 * (size_t)(n_read * n_spokes));
	/* one spoke's worth, from spoke 7 */
	assert_int_equal(r5_grid_coords(traj, cdims, 7, 1, back), R5_OK);
	assert_memory_equal(back, k + 3 * n_read * 7, sizeof(float) * 3 * (size_t)n_read);
	/* out of range: a value past N/2 */
	traj->data[3 * (5 + n_read * 9) + 1] = (float)(N / 2) + 0.25f;
	assert_int_equal(r5_grid_coords(traj, cdims, 0, n_spokes, back), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "spoke 9 sample 5 has k1 = 32.25"));
	assert_int_equal(r5_grid_coords(traj, cdims, 0, n_spokes + 1, back), R5_EINVAL);
	free(back);
	r5_array_free(traj);
	free(k);
	r5_array_free(y);
	r5_grid_plan_destroy(plan);
	r5_array_free(f);
	r5_array_free(maps);
	r5_array_free(image);
}

static void test_grid_errors(void **state)
{
	(void)state;
	r5_array *f, *maps, *image;
	alloc_all(&f, &maps, &image);
	long n_read = N, n_spokes = 16, cdims[R5_DIMS], idims[R5_DIMS];
	float *k = radial(n_read, n_spokes, N / 2.0, 0.0, 0);
	r5_array *y = sample(k, n_read, n_spokes, f, maps);
	dims_of(cdims, N, N, 1, 2);
	dims_of(idims, N, N, 1, 1);
	r5_grid_plan *plan = NULL;
	assert_int_equal(r5_grid_plan_make(ctx, cdims, NULL, &plan), R5_OK);
	/* a spoke bent off the centre line: the ramp does not apply */
	k[3 * (10 + n_read * 3) + 1] += 3.0f;
	assert_int_equal(r5_grid_frame(ctx, plan, n_read * n_spokes, k, NULL, y, NULL, NULL, image), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "spoke 3 is not a straight line"));
	k[3 * (10 + n_read * 3) + 1] -= 3.0f;
	/* points and samples disagree */
	assert_int_equal(r5_grid_frame(ctx, plan, n_read * n_spokes - 1, k, NULL, y, NULL, NULL, image), R5_EINVAL);
	/* image with coils, maps of the wrong shape */
	assert_int_equal(r5_grid_frame(ctx, plan, n_read * n_spokes, k, NULL, y, NULL, NULL, maps), R5_EINVAL);
	assert_int_equal(r5_grid_frame(ctx, plan, n_read * n_spokes, k, NULL, y, image, NULL, image), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "coil maps"));
	/* outside [-N/2, N/2]: the NUFFT refuses, naming the point */
	k[3 * 2] = 40.0f;
	float *w = calloc((size_t)(n_read * n_spokes), sizeof *w);
	assert_int_equal(r5_grid_frame(ctx, plan, n_read * n_spokes, k, w, y, NULL, NULL, image), R5_EINVAL);
	free(w);
	free(k);
	r5_array_free(y);
	r5_grid_plan_destroy(plan);
	r5_grid_plan_destroy(NULL);
	r5_array_free(f);
	r5_array_free(maps);
	r5_array_free(image);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grid_amplitude),
		cmocka_unit_test(test_grid_plus_half),
		cmocka_unit_test(test_grid_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
