/* The NUFFT (recon/linop/nufft.h) against a direct non-uniform DFT computed in double: forward
 * (type 2) and adjoint (type 1) in 2D (24 x 20) and 3D (12^3) on random points with several
 * coils, at oversampling 2 and 1.25 (relative error <= 1e-4 at the default width); the adjoint
 * identity; the convention (at the full Cartesian grid's integer points the forward is the
 * centred unitary FFT r5_fft, so A^H A = I); the Toeplitz normal A^H W A against the direct one
 * (1e-5) and against the NUFFT pair (within the kernel error); the operator's properties
 * (lintest.h); the spreader giving the same bits on 1 and 3 threads; the errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <complex.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "recon/core/fft.h"
#include "recon/linop/lintest.h"
#include "recon/linop/nufft.h"

#include "cpu_fixture.h"

#define TOL_NUFFT 1e-4   /* against the direct DFT at the default width */
#define TOL_ADJOINT 1e-5 /* <y, A x> = <A^H y, x> */
#define TOL_TOEPLITZ 1e-5

static unsigned rng = 12345u;
static double uniform(void) /* [0, 1) */
{
	rng = rng * 1103515245u + 12345u;
	return (double)((rng >> 8) & 0xffffff) / 16777216.0;
}

/* n random points in the image's k range (2D: k2 = 0), the first one at the corner -N/2 */
static float *random_points(const long dims[R5_DIMS], long n)
{
	float *k = malloc(sizeof(float) * 3 * (size_t)n);
	assert_non_null(k);
	for (long j = 0; j < n; j++)
		for (int d = 0; d < 3; d++) {
			double N = (double)dims[d];
			k[3 * j + d] = dims[d] == 1 ? 0.0f : j == 0 ? (float)(-N / 2) : (float)((uniform() - 0.5) * N);
		}
	return k;
}

static r5_array *random_array(const long dims[R5_DIMS], unsigned seed)
{
	r5_array *a = NULL;
	assert_int_equal(r5_array_alloc_work(ctx, dims, &a), R5_OK);
	assert_int_equal(r5_lintest_fill(ctx, a, 0, &seed), R5_OK);
	return a;
}

static r5_array *new_array(const long dims[R5_DIMS])
{
	r5_array *a = NULL;
	assert_int_equal(r5_array_zeros(ctx, R5_HOST, dims, &a), R5_OK);
	return a;
}

/* phase exp(sign 2 pi i k.x / N) of point j at pixel n */
static double complex dft_phase(const long dims[R5_DIMS], const float *k, long n, int sign)
{
	double arg = 0.0;
	for (int d = 0; d < 3; d++) {
		long x = n % dims[d] - dims[d] / 2;
		n /= dims[d];
		arg += (double)k[d] * (double)x / (double)dims[d];
	}
	return cexp(sign * 2.0 * R5_PI * I * arg);
}

/* direct A (adjoint 0) or A^H (1), scaled by N^-1/2, in double */
static void direct(const long dims[R5_DIMS], long n, const float *k, int adjoint, r5_array *out, const r5_array *in)
{
	long pix = dims[0] * dims[1] * dims[2], C = dims[3];
	double s = 1.0 / sqrt((double)pix);
	for (long c = 0; c < C; c++) {
		if (!adjoint)
			for (long j = 0; j < n; j++) {
				double complex sum = 0;
				for (long q = 0; q < pix; q++)
					sum += in->data[q + c * pix] * dft_phase(dims, k + 3 * j, q, -1);
				out->data[j + c * n] = (float complex)(s * sum);
			}
		else
			for (long q = 0; q < pix; q++) {
				double complex sum = 0;
				for (long j = 0; j < n; j++)
					sum += in->data[j + c * n] * dft_phase(dims, k + 3 * j, q, 1);
				out->data[q + c * pix] = (float complex)(s * sum);
			}
	}
}

static double rel_diff(const r5_array *a, const r5_array *b)
{
	double d = 0, r = 0;
	for (long i = 0; i < r5_array_size(a); i++) {
		d += cabs(a->data[i] - b->data[i]) * cabs(a->data[i] - b->data[i]);
		r += cabs(b->data[i]) * cabs(b->data[i]);
	}
	return sqrt(d / (r > 0 ? r : 1));
}

static void samples_dims(long sdims[R5_DIMS], long n, long coils)
{
	dims_of(sdims, 1, n, 1, coils);
}

/* forward and adjoint against the direct DFT; returns the larger error */
static double accuracy(const long dims[R5_DIMS], long n, const r5_nufft_opts *opts)
{
	long sdims[R5_DIMS];
	samples_dims(sdims, n, dims[3]);
	float *k = random_points(dims, n);
	r5_nufft_plan *p = NULL;
	assert_int_equal(r5_nufft_plan_make(ctx, dims, opts, &p), R5_OK);
	assert_int_equal(r5_nufft_set_points(ctx, p, n, k), R5_OK);
	r5_array *x = random_array(dims, 7), *y = random_array(sdims, 8);
	r5_array *ax = new_array(sdims), *ax_ref = new_array(sdims), *ahy = new_array(dims), *ahy_ref = new_array(dims);
	assert_int_equal(r5_nufft_forward(ctx, p, ax, x), R5_OK);
	assert_int_equal(r5_nufft_adjoint(ctx, p, ahy, y), R5_OK);
	direct(dims, n, k, 0, ax_ref, x);
	direct(dims, n, k, 1, ahy_ref, y);
	double e2 = rel_diff(ax, ax_ref), e1 = rel_diff(ahy, ahy_ref);
	print_message("  %ld x %ld x %ld, %ld coils, %ld points, sigma %.2f: type 2 %.2e, type 1 %.2e\n", dims[0],
		      dims[1], dims[2], dims[3], n, opts ? opts->oversampling : 2.0, e2, e1);
	r5_array_free(x), r5_array_free(y), r5_array_free(ax), r5_array_free(ax_ref);
	r5_array_free(ahy), r5_array_free(ahy_ref);
	r5_nufft_plan_destroy(p);
	free(k);
	return e1 > e2 ? e1 : e2;
}

static void test_accuracy_2d(void **state)
{
	(void)state;
	long dims[R5_DIMS];
	dims_of(dims, 24, 20, 1, 3);
	assert_true(accuracy(dims, 400, NULL) <= TOL_NUFFT);
	r5_nufft_opts o = r5_nufft_defaults;
	o.oversampling = 1.25;
	assert_true(accuracy(dims, 400, &o) <= TOL_NUFFT);
	dims_of(dims, 15, 13, 1, 2); /* odd sizes: centre pixel N/2 (rounded down) at x = 0 */
	assert_true(accuracy(dims, 300, NULL) <= TOL_NUFFT);
	dims_of(dims, 24, 20, 1, 3);
	/* a narrow kernel is measurably worse: the check can fail */
	o.oversampling = 2.0;
	o.width = 3;
	assert_true(accuracy(dims, 400, &o) > 10 * TOL_NUFFT);
}

static void test_accuracy_3d(void **state)
{
	(void)state;
	long dims[R5_DIMS];
	dims_of(dims, 12, 12, 12, 2);
	assert_true(accuracy(dims, 300, NULL) <= TOL_NUFFT);
	r5_nufft_opts o = r5_nufft_defaults;
	o.oversampling = 1.25;
	assert_true(accuracy(dims, 300, &o) <= TOL_NUFFT);
	dims_of(dims, 10, 14, 8, 1); /* unequal sizes */
	assert_true(accuracy(dims, 200, NULL) <= TOL_NUFFT);
}

static void adjoint_identity(const long dims[R5_DIMS], long n)
{
	long sdims[R5_DIMS];
	samples_dims(sdims, n, dims[3]);
	float *k = random_points(dims, n);
	r5_nufft_plan *p = NULL;
	assert_int_equal(r5_nufft_plan_make(ctx, dims, NULL, &p), R5_OK);
	assert_int_equal(r5_nufft_set_points(ctx, p, n, k), R5_OK);
	r5_array *x = random_array(dims, 3), *y = random_array(sdims, 4), *ax = new_array(sdims), *ahy = new_array(dims);
	assert_int_equal(r5_nufft_forward(ctx, p, ax, x), R5_OK);
	assert_int_equal(r5_nufft_adjoint(ctx, p, ahy, y), R5_OK);
	double complex a = 0, b = 0;
	double nax = 0, ny = 0;
	for (long i = 0; i < r5_array_size(y); i++) {
		a += conj(y->data[i]) * ax->data[i];
		nax += cabs(ax->data[i]) * cabs(ax->data[i]);
		ny += cabs(y->data[i]) * cabs(y->data[i]);
	}
	for (long i = 0; i < r5_array_size(x); i++)
		b += conj(ahy->data[i]) * x->data[i];
	double err = cabs(a - b) / sqrt(nax * ny);
	print_message("  adjoint identity %ld x %ld x %ld: %.2e\n", dims[0], dims[1], dims[2], err);
	assert_true(err <= TOL_ADJOINT);
	r5_array_free(x), r5_array_free(y), r5_array_free(ax), r5_array_free(ahy);
	r5_nufft_plan_destroy(p);
	free(k);
}

static void test_adjoint_identity(void **state)
{
	(void)state;
	long dims[R5_DIMS];
	dims_of(dims, 24, 20, 1, 3);
	adjoint_identity(dims, 2000);
	dims_of(dims, 12, 12, 12, 2);
	adjoint_identity(dims, 3000);
}

/* At every integer point of the Cartesian grid the forward is r5_fft (centred, unitary). */
static void test_cartesian_convention(void **state)
{
	(void)state;
	long dims[R5_DIMS], sdims[R5_DIMS];
	dims_of(dims, 16, 12, 1, 2);
	long N0 = 16, N1 = 12, n = N0 * N1;
	float *k = malloc(sizeof(float) * 3 * (size_t)n);
	assert_non_null(k);
	for (long j = 0; j < n; j++) {
		k[3 * j] = (float)(j % N0 - N0 / 2);
		k[3 * j + 1] = (float)(j / N0 - N1 / 2);
		k[3 * j + 2] = 0.0f;
	}
	dims_of(sdims, 1, N0, N1, 2);
	r5_nufft_plan *p = NULL;
	assert_int_equal(r5_nufft_plan_make(ctx, dims, NULL, &p), R5_OK);
	assert_int_equal(r5_nufft_set_points(ctx, p, n, k), R5_OK);
	r5_array *x = random_array(dims, 5), *y = new_array(sdims), *f = new_array(dims), *back = new_array(dims);
	assert_int_equal(r5_nufft_forward(ctx, p, y, x), R5_OK);
	assert_int_equal(r5_fft(ctx, 0x3, f, x), R5_OK);
	r5_array yv = r5_array_view_strided(y, dims, NULL, 0); /* same order: x fastest, then y, coil */
	double e = rel_diff(&yv, f);
	assert_int_equal(r5_nufft_adjoint(ctx, p, back, y), R5_OK);
	double eb = rel_diff(back, x);
	print_message("  Cartesian points: forward vs r5_fft %.2e, A^H A x vs x %.2e\n", e, eb);
	assert_true(e <= TOL_NUFFT && eb <= TOL_NUFFT);
	r5_array_free(x), r5_array_free(y), r5_array_free(f), r5_array_free(back);
	r5_nufft_plan_destroy(p);
	free(k);
}

static void toeplitz_case(const long dims[R5_DIMS], long n)
{
	long sdims[R5_DIMS];
	samples_dims(sdims, n, dims[3]);
	float *k = random_points(dims, n), *w = malloc(sizeof(float) * (size_t)n);
	assert_non_null(w);
	for (long j = 0; j < n; j++)
		w[j] = (float)(0.25 + uniform());
	r5_nufft_plan *p = NULL;
	assert_int_equal(r5_nufft_plan_make(ctx, dims, NULL, &p), R5_OK);
	assert_int_equal(r5_nufft_set_points(ctx, p, n, k), R5_OK);
	assert_int_equal(r5_nufft_toeplitz(ctx, p, w), R5_OK);
	r5_array *x = random_array(dims, 9), *t = new_array(dims), *ref = new_array(dims), *pair = new_array(dims);
	r5_array *ax = new_array(sdims);
	assert_int_equal(r5_nufft_normal(ctx, p, t, x), R5_OK);
	/* direct A^H W A */
	direct(dims, n, k, 0, ax, x);
	for (long c = 0; c < dims[3]; c++)
		for (long j = 0; j < n; j++)
			ax->data[j + c * n] *= w[j];
	direct(dims, n, k, 1, ref, ax);
	/* the NUFFT pair */
	assert_int_equal(r5_nufft_forward(ctx, p, ax, x), R5_OK);
	for (long c = 0; c < dims[3]; c++)
		for (long j = 0; j < n; j++)
			ax->data[j + c * n] *= w[j];
	assert_int_equal(r5_nufft_adjoint(ctx, p, pair, ax), R5_OK);
	double e_direct = rel_diff(t, ref), e_pair = rel_diff(t, pair), e_pair_direct = rel_diff(pair, ref);
	print_message("  Toeplitz %ld x %ld x %ld: vs direct A^H W A %.2e, vs NUFFT pair %.2e (pair vs direct %.2e)\n",
		      dims[0], dims[1], dims[2], e_direct, e_pair, e_pair_direct);
	assert_true(e_direct <= TOL_TOEPLITZ);
	assert_true(e_pair <= 2 * TOL_NUFFT);
	/* in place */
	assert_int_equal(r5_nufft_normal(ctx, p, x, x), R5_OK);
	assert_true(rel_diff(x, t) <= 1e-7);
	r5_array_free(x), r5_array_free(t), r5_array_free(ref), r5_array_free(pair), r5_array_free(ax);
	r5_nufft_plan_destroy(p);
	free(k), free(w);
}

static void test_toeplitz(void **state)
{
	(void)state;
	long dims[R5_DIMS];
	dims_of(dims, 24, 20, 1, 3);
	toeplitz_case(dims, 500);
	dims_of(dims, 12, 12, 12, 2);
	toeplitz_case(dims, 400);
	dims_of(dims, 15, 13, 1, 1);
	toeplitz_case(dims, 300);
}

static void test_operator(void **state)
{
	(void)state;
	long dims[R5_DIMS], tdims[R5_DIMS];
	dims_of(dims, 24, 20, 1, 2);
	dims_of(tdims, 3, 32, 10, 1);
	r5_array *traj = NULL;
	assert_int_equal(r5_array_alloc_host(tdims, &traj), R5_OK);
	/* radial spokes, BART's layout: readout samples over [-N/2, N/2) along each angle */
	for (long l = 0; l < 10; l++)
		for (long r = 0; r < 32; r++) {
			double a = R5_PI * l / 10, kr = (r - 16) * 0.6;
			float complex *t = traj->data + 3 * (r + 32 * l);
			t[0] = (float)(kr * cos(a)), t[1] = (float)(kr * sin(a)), t[2] = 0;
		}
	r5_linop *op = NULL;
	assert_int_equal(r5_linop_nufft(ctx, dims, traj, NULL, &op), R5_OK);
	assert_int_equal(op->odims[1], 32);
	assert_int_equal(op->odims[2], 10);
	assert_int_equal(op->odims[3], 2);
	r5_linop_errors e;
	assert_int_equal(r5_linop_property_test(ctx, op, 11, &e), R5_OK);
	print_message("  operator: adjoint %.2e, normal (Toeplitz) vs adjoint(forward) %.2e, in place %.2e, holds %ld "
		      "bytes\n", e.adjoint, e.normal, e.in_place, r5_linop_bytes_held(op));
	assert_true(e.adjoint <= TOL_ADJOINT);
	assert_true(e.normal <= 2 * TOL_NUFFT);
	assert_true(e.in_place <= 1e-6);
	assert_true(r5_linop_bytes_held(op) > 0);
	r5_linop_free(op);
	r5_array_free(traj);
}

/* The adjoint's slabs partition the grid: 1 and 3 threads give the same bits. */
static void test_threads_same_bits(void **state)
{
	(void)state;
#ifdef _OPENMP
	long dims[R5_DIMS], sdims[R5_DIMS], n = 5000;
	dims_of(dims, 64, 64, 1, 3); /* 8 slow bins: slabs of 2 bins on 1 thread, of 1 on 3 */
	samples_dims(sdims, n, 3);
	float *k = random_points(dims, n);
	r5_nufft_plan *p = NULL;
	assert_int_equal(r5_nufft_plan_make(ctx, dims, NULL, &p), R5_OK);
	assert_int_equal(r5_nufft_set_points(ctx, p, n, k), R5_OK);
	r5_array *y = random_array(sdims, 2), *a = new_array(dims), *b = new_array(dims);
	int threads = omp_get_max_threads();
	omp_set_num_threads(1);
	r5_status s1 = r5_nufft_adjoint(ctx, p, a, y);
	omp_set_num_threads(3);
	r5_status s3 = r5_nufft_adjoint(ctx, p, b, y);
	omp_set_num_threads(threads);
	assert_int_equal(s1, R5_OK);
	assert_int_equal(s3, R5_OK);
	/* same spread grid, then the same cached FFT plan: the same bits */
	assert_memory_equal(a->data, b->data, sizeof(float complex) * (size_t)r5_array_size(a));
	r5_array_free(y), r5_array_free(a), r5_array_free(b);
	r5_nufft_plan_destroy(p);
	free(k);
#else
	skip();
#endif
}

static void test_errors(void **state)
{
	(void)state;
	long dims[R5_DIMS], sdims[R5_DIMS], bad[R5_DIMS];
	dims_of(dims, 24, 20, 1, 2);
	r5_nufft_plan *p = NULL;
	dims_of(bad, 24, 20, 1, 2);
	bad[R5_DIM_MAP] = 2;
	assert_int_equal(r5_nufft_plan_make(ctx, bad, NULL, &p), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "dimension 4"));
	dims_of(bad, 24, 1, 1, 2);
	assert_int_equal(r5_nufft_plan_make(ctx, bad, NULL, &p), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "x and y"));
	r5_nufft_opts o = r5_nufft_defaults;
	o.oversampling = 3.0;
	assert_int_equal(r5_nufft_plan_make(ctx, dims, &o, &p), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "oversampling 3"));
	o = r5_nufft_defaults;
	o.width = 40;
	assert_int_equal(r5_nufft_plan_make(ctx, dims, &o, &p), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "width 40"));

	assert_int_equal(r5_nufft_plan_make(ctx, dims, NULL, &p), R5_OK);
	float k[9] = {0, 0, 0, -12, -10, 0, 1, 2, 0};
	assert_int_equal(r5_nufft_set_points(ctx, p, 3, k), R5_OK); /* -N/2 is inside */
	k[3] = 12.0f;                                               /* N/2 is outside */
	assert_int_equal(r5_nufft_set_points(ctx, p, 3, k), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "point 1 has k0 = 12"));
	k[3] = 0.0f;
	k[7] = NAN;
	assert_int_equal(r5_nufft_set_points(ctx, p, 3, k), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "point 2 has k1"));
	k[7] = 0.0f;
	k[8] = 0.5f; /* 2D: k2 in [-1/2, 1/2) */
	assert_int_equal(r5_nufft_set_points(ctx, p, 3, k), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "k2"));
	/* executing without points, then with wrong sample dims */
	r5_array *x = new_array(dims), *y = NULL;
	samples_dims(sdims, 3, 2);
	y = new_array(sdims);
	assert_int_equal(r5_nufft_forward(ctx, p, y, x), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "no points"));
	k[8] = 0.0f;
	assert_int_equal(r5_nufft_set_points(ctx, p, 3, k), R5_OK);
	assert_int_equal(r5_nufft_forward(ctx, p, y, x), R5_OK);
	r5_array_free(y);
	samples_dims(sdims, 4, 2);
	y = new_array(sdims);
	assert_int_equal(r5_nufft_forward(ctx, p, y, x), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "sample dims"));
	r5_array_free(y);
	samples_dims(sdims, 3, 2);
	y = new_array(sdims);
	r5_array_free(x);
	dims_of(bad, 24, 20, 1, 3);
	x = new_array(bad);
	assert_int_equal(r5_nufft_adjoint(ctx, p, x, y), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "image dims"));
	assert_int_equal(r5_nufft_normal(ctx, p, x, x), R5_EINVAL);
	r5_array_free(x), r5_array_free(y);
	r5_nufft_plan_destroy(p);

	/* the operator: a trajectory of the wrong shape, a point out of range */
	long tdims[R5_DIMS];
	dims_of(tdims, 2, 8, 1, 1);
	r5_array *traj = NULL;
	assert_int_equal(r5_array_zeros(NULL, R5_HOST, tdims, &traj), R5_OK);
	r5_linop *op = NULL;
	assert_int_equal(r5_linop_nufft(ctx, dims, traj, NULL, &op), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "trajectory dims"));
	r5_array_free(traj);
	dims_of(tdims, 3, 8, 2, 1);
	assert_int_equal(r5_array_zeros(NULL, R5_HOST, tdims, &traj), R5_OK);
	traj->data[3 * 5 + 1] = -10.5f;
	traj->data[3 * 9 + 1] = 10.0f;
	assert_int_equal(r5_linop_nufft(ctx, dims, traj, NULL, &op), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "point 5 has k1 = -10.5"));
	traj->data[3 * 5 + 1] = -10.0f;
	assert_int_equal(r5_linop_nufft(ctx, dims, traj, NULL, &op), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "point 9 has k1 = 10"));
	assert_null(op);
	r5_array_free(traj);
	r5_nufft_plan_destroy(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accuracy_2d),      cmocka_unit_test(test_accuracy_3d),
		cmocka_unit_test(test_adjoint_identity), cmocka_unit_test(test_cartesian_convention),
		cmocka_unit_test(test_toeplitz),         cmocka_unit_test(test_operator),
		cmocka_unit_test(test_threads_same_bits), cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
