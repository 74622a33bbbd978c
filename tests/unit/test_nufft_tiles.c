/* The NUFFT's tile method (recon/linop/nufft.h, R5_NUFFT_METHOD_TILES: the device path of
 * nufft.c through the back end's nufft_* slots, here the CPU back end's twin recon/cpu/cpu_nufft.c
 * of gpu/nufft_cuda.cu) against the host spreader on the same points: forward, adjoint, the
 * Toeplitz normal and the grid-domain pair of density compensation; 2D and 3D, several coils, odd
 * sizes, sigma 2 and 1.25, points on the grid's corners (wrapped tiles), grids of fewer than 3
 * bins (no tile core), and a dense centre (bins of several subproblems: atomics everywhere). Both methods compute the same weights and
 * de-apodisation (nufft_math.h) and differ only in the order of the sums: relative difference
 * <= 1e-5 at sigma 2 (seen ~1e-7), 5e-5 at 1.25 (seen 1.1e-5: its de-apodisation amplifies the
 * rounding); both adjoints also against a direct DFT (<= 1e-4, the plan's accuracy), which found
 * a bug of the host spreader (test_tiles_3d). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <complex.h>
#include <math.h>
#include <stdlib.h>

#include "recon/linop/lintest.h"
#include "recon/linop/nufft.h"

#include "cpu_fixture.h"

#define TOL_SAME 1e-5     /* tiles vs host, sigma 2 */
#define TOL_SAME_125 5e-5 /* sigma 1.25: its de-apodisation amplifies fp32 rounding (nufft.h); seen 1.1e-5 */
#define TOL_DIRECT 1e-4   /* either vs the direct DFT (the plan's accuracy at the default width) */

static unsigned rng = 4242u;
static double uniform(void) /* [0, 1) */
{
	rng = rng * 1103515245u + 12345u;
	return (double)((rng >> 8) & 0xffffff) / 16777216.0;
}

/* n points: the first at the corner -N/2, then uniform, a fraction `dense` within one cell of
 * the centre (a radial trajectory's DC) */
static float *points(const long dims[R5_DIMS], long n, double dense)
{
	float *k = malloc(sizeof(float) * 3 * (size_t)n);
	assert_non_null(k);
	for (long j = 0; j < n; j++) {
		int centre = j > 0 && uniform() < dense;
		for (int d = 0; d < 3; d++) {
			double N = (double)dims[d];
			k[3 * j + d] = dims[d] == 1 ? 0.0f
				       : j == 0    ? (float)(-N / 2)
				       : centre    ? (float)(uniform() - 0.5)
						   : (float)((uniform() - 0.5) * N);
		}
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

static double rel_diff(const r5_array *a, const r5_array *b)
{
	double d = 0, r = 0;
	for (long i = 0; i < r5_array_size(a); i++) {
		if (isnan(crealf(a->data[i])) || isnan(cimagf(a->data[i])))
			return INFINITY;
		d += cabs(a->data[i] - b->data[i]) * cabs(a->data[i] - b->data[i]);
		r += cabs(b->data[i]) * cabs(b->data[i]);
	}
	return sqrt(d / (r > 0 ? r : 1));
}

/* ||x - direct A^H y|| / ||direct A^H y||, the direct adjoint in double */
static double adjoint_vs_direct(const long dims[R5_DIMS], long n, const float *k, const r5_array *y, const r5_array *x)
{
	r5_array *ref = new_array(dims);
	long pix = dims[0] * dims[1] * dims[2];
	for (long c = 0; c < dims[3]; c++)
		for (long q = 0; q < pix; q++) {
			double complex sum = 0;
			for (long j = 0; j < n; j++) {
				double arg = 0;
				for (long d = 0, m = q; d < 3; d++, m /= dims[d - 1])
					arg += k[3 * j + d] * (double)(m % dims[d] - dims[d] / 2) / (double)dims[d];
				sum += y->data[j + c * n] * cexp(2.0 * R5_PI * I * arg);
			}
			ref->data[q + c * pix] = (float complex)(sum / sqrt((double)pix));
		}
	double e = rel_diff(x, ref);
	r5_array_free(ref);
	return e;
}

/* tiles vs host: forward, adjoint, Toeplitz normal with weights; with `direct`, both adjoints vs
 * the direct one (seconds: the small cases only) */
static void same_case(const long dims[R5_DIMS], long n, double sigma, double dense, int direct)
{
	long sdims[R5_DIMS];
	dims_of(sdims, 1, n, 1, dims[3]);
	float *k = points(dims, n, dense), *w = malloc(sizeof(float) * (size_t)n);
	assert_non_null(w);
	for (long j = 0; j < n; j++)
		w[j] = (float)(0.25 + uniform());
	r5_nufft_opts oh = r5_nufft_defaults, ot = r5_nufft_defaults;
	oh.oversampling = ot.oversampling = sigma;
	oh.method = R5_NUFFT_METHOD_HOST;
	ot.method = R5_NUFFT_METHOD_TILES;
	r5_nufft_plan *ph = NULL, *pt = NULL;
	assert_int_equal(r5_nufft_plan_make(ctx, dims, &oh, &ph), R5_OK);
	assert_int_equal(r5_nufft_plan_make(ctx, dims, &ot, &pt), R5_OK);
	assert_int_equal(r5_nufft_set_points(ctx, ph, n, k), R5_OK);
	assert_int_equal(r5_nufft_set_points(ctx, pt, n, k), R5_OK);
	r5_array *x = random_array(dims, 11), *y = random_array(sdims, 12);
	r5_array *yh = new_array(sdims), *yt = new_array(sdims), *xh = new_array(dims), *xt = new_array(dims);
	assert_int_equal(r5_nufft_forward(ctx, ph, yh, x), R5_OK);
	assert_int_equal(r5_nufft_forward(ctx, pt, yt, x), R5_OK);
	assert_int_equal(r5_nufft_adjoint(ctx, ph, xh, y), R5_OK);
	assert_int_equal(r5_nufft_adjoint(ctx, pt, xt, y), R5_OK);
	double e2 = rel_diff(yt, yh), e1 = rel_diff(xt, xh);
	double e1_host = 0, e1_tiles = 0;
	if (direct) {
		e1_host = adjoint_vs_direct(dims, n, k, y, xh);
		e1_tiles = adjoint_vs_direct(dims, n, k, y, xt);
	}
	assert_int_equal(r5_nufft_toeplitz(ctx, ph, w), R5_OK);
	assert_int_equal(r5_nufft_toeplitz(ctx, pt, w), R5_OK);
	assert_int_equal(r5_nufft_normal(ctx, ph, xh, x), R5_OK);
	assert_int_equal(r5_nufft_normal(ctx, pt, xt, x), R5_OK);
	double en = rel_diff(xt, xh);
	print_message("  tiles vs host %ld x %ld x %ld, %ld coils, %ld points (%.0f%% at the centre), sigma %.2f: "
		      "type 2 %.2e, type 1 %.2e, Toeplitz %.2e\n", dims[0], dims[1], dims[2], dims[3], n, 100 * dense,
		      sigma, e2, e1, en);
	if (direct)
		print_message("    type 1 vs the direct DFT: host %.2e, tiles %.2e\n", e1_host, e1_tiles);
	double tol = sigma == 2.0 ? TOL_SAME : TOL_SAME_125;
	assert_true(e2 <= tol);
	assert_true(e1 <= tol);
	assert_true(en <= TOL_SAME);
	assert_true(e1_host <= TOL_DIRECT);
	assert_true(e1_tiles <= TOL_DIRECT);
	r5_array_free(x), r5_array_free(y), r5_array_free(yh), r5_array_free(yt), r5_array_free(xh), r5_array_free(xt);
	r5_nufft_plan_destroy(ph);
	r5_nufft_plan_destroy(pt);
	free(k), free(w);
}

static void test_tiles_2d(void **state)
{
	(void)state;
	long dims[R5_DIMS];
	dims_of(dims, 64, 48, 1, 3);
	same_case(dims, 4000, 2.0, 0.0, 0);
	dims_of(dims, 37, 29, 1, 5); /* odd */
	same_case(dims, 3000, 1.25, 0.0, 0);
	dims_of(dims, 40, 40, 1, 9); /* 9 coils, a dense centre: bins of several subproblems */
	same_case(dims, 6000, 2.0, 0.5, 0);
	dims_of(dims, 6, 8, 1, 2); /* grids of 1-2 bins: tiles wrap onto themselves, no core */
	same_case(dims, 200, 2.0, 0.0, 1);
}

static void test_tiles_3d(void **state)
{
	(void)state;
	long dims[R5_DIMS];
	dims_of(dims, 24, 20, 18, 2);
	same_case(dims, 3000, 2.0, 0.0, 0);
	/* odd; M2 = 30 is not a multiple of the host's 4-row z bins: the host spreader lost a corner
	 * point's wrapped rows here (8e-4 against the direct DFT) before nufft.c's slab margin fix */
	dims_of(dims, 17, 15, 13, 3);
	same_case(dims, 2000, 2.0, 0.3, 1);
	same_case(dims, 2000, 1.25, 0.3, 0);
}

/* the tile path against a direct DFT (the plan's accuracy, not only agreement with the host) */
static void test_tiles_direct(void **state)
{
	(void)state;
	long dims[R5_DIMS], sdims[R5_DIMS], n = 300;
	dims_of(dims, 21, 18, 1, 2);
	dims_of(sdims, 1, n, 1, 2);
	float *k = points(dims, n, 0.0);
	r5_nufft_opts o = r5_nufft_defaults;
	o.method = R5_NUFFT_METHOD_TILES;
	r5_nufft_plan *p = NULL;
	assert_int_equal(r5_nufft_plan_make(ctx, dims, &o, &p), R5_OK);
	assert_int_equal(r5_nufft_set_points(ctx, p, n, k), R5_OK);
	r5_array *x = random_array(dims, 5), *y = new_array(sdims), *ref = new_array(sdims);
	assert_int_equal(r5_nufft_forward(ctx, p, y, x), R5_OK);
	long pix = dims[0] * dims[1];
	for (long c = 0; c < 2; c++)
		for (long j = 0; j < n; j++) {
			double complex sum = 0;
			for (long q = 0; q < pix; q++) {
				double arg = k[3 * j] * (double)(q % dims[0] - dims[0] / 2) / dims[0] +
					     k[3 * j + 1] * (double)(q / dims[0] - dims[1] / 2) / dims[1];
				sum += x->data[q + c * pix] * cexp(-2.0 * R5_PI * I * arg);
			}
			ref->data[j + c * n] = (float complex)(sum / sqrt((double)pix));
		}
	double e = rel_diff(y, ref);
	print_message("  tiles vs direct DFT, 21 x 18, 2 coils: type 2 %.2e\n", e);
	assert_true(e <= 1e-4);
	r5_array_free(x), r5_array_free(y), r5_array_free(ref);
	r5_nufft_plan_destroy(p);
	free(k);
}

/* the grid-domain pair (r5_nufft_spread_grid / interp_grid, Pipe-Menon's) through the tiles */
static void test_tiles_grid_pair(void **state)
{
	(void)state;
	long dims[R5_DIMS], sdims[R5_DIMS], gdims[R5_DIMS], n = 3000;
	dims_of(dims, 30, 26, 1, 2);
	dims_of(sdims, 1, n, 1, 2);
	float *k = points(dims, n, 0.3);
	r5_nufft_opts oh = r5_nufft_defaults, ot = r5_nufft_defaults;
	oh.method = R5_NUFFT_METHOD_HOST;
	ot.method = R5_NUFFT_METHOD_TILES;
	r5_nufft_plan *ph = NULL, *pt = NULL;
	assert_int_equal(r5_nufft_plan_make(ctx, dims, &oh, &ph), R5_OK);
	assert_int_equal(r5_nufft_plan_make(ctx, dims, &ot, &pt), R5_OK);
	assert_int_equal(r5_nufft_set_points(ctx, ph, n, k), R5_OK);
	assert_int_equal(r5_nufft_set_points(ctx, pt, n, k), R5_OK);
	r5_nufft_info info;
	r5_nufft_get_info(pt, &info);
	dims_of(gdims, 2, info.grid[0], info.grid[1], 1);
	r5_array *y = random_array(sdims, 21), *g = random_array(gdims, 22);
	r5_array *gh = new_array(gdims), *gt = new_array(gdims), *yh = new_array(sdims), *yt = new_array(sdims);
	assert_int_equal(r5_nufft_spread_grid(ctx, ph, gh, y), R5_OK);
	assert_int_equal(r5_nufft_spread_grid(ctx, pt, gt, y), R5_OK);
	assert_int_equal(r5_nufft_interp_grid(ctx, ph, yh, g), R5_OK);
	assert_int_equal(r5_nufft_interp_grid(ctx, pt, yt, g), R5_OK);
	double es = rel_diff(gt, gh), ei = rel_diff(yt, yh);
	print_message("  grid pair tiles vs host, 30 x 26, 2 coils: spread %.2e, interp %.2e\n", es, ei);
	assert_true(es <= TOL_SAME);
	assert_true(ei <= TOL_SAME);
	r5_array_free(y), r5_array_free(g), r5_array_free(gh), r5_array_free(gt), r5_array_free(yh), r5_array_free(yt);
	r5_nufft_plan_destroy(ph);
	r5_nufft_plan_destroy(pt);
	free(k);
}

static void test_method_errors(void **state)
{
	(void)state;
	long dims[R5_DIMS];
	dims_of(dims, 16, 16, 1, 1);
	r5_nufft_opts o = r5_nufft_defaults;
	o.method = 7;
	r5_nufft_plan *p = NULL;
	assert_int_equal(r5_nufft_plan_make(ctx, dims, &o, &p), R5_EINVAL);
	assert_null(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tiles_2d),
		cmocka_unit_test(test_tiles_3d),
		cmocka_unit_test(test_tiles_direct),
		cmocka_unit_test(test_tiles_grid_pair),
		cmocka_unit_test(test_method_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
