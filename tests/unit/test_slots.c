/* The back-end slots of the reconstruction kit through their core wrappers on the CPU back end,
 * each against a brute-force loop written here from the definition: circular shift (odd sizes,
 * negative and oversized shifts, one shifted dimension and many), box projection, reductions
 * (sum in double, max |x|) over strided views, strided/broadcasting axpby, fused multiply-add;
 * and the refusals (aliasing, shapes, strides) with messages that name the shapes. The CUDA
 * twins are compared with these on a GPU by tests/gpu (suite_generic.c). */
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

#include "recon/core/array.h"
#include "recon/core/log.h"

#include "cpu_fixture.h"

/* xorshift64*, fixed seed per test: deterministic whatever the order tests run in */
static uint64_t rng = 1;

static void seed(uint64_t s) { rng = s; }

static float frand(void) /* [-1, 1) */
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (float)((double)((rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void dims_of(long dims[R5_DIMS], long x, long y, long z, long c)
{
	r5_dims_ones(dims);
	dims[0] = x, dims[1] = y, dims[2] = z, dims[3] = c;
}

static r5_array *random_array(const long dims[R5_DIMS])
{
	r5_array *a = NULL;
	assert_int_equal(r5_array_alloc_host(dims, &a), R5_OK);
	for (long i = 0; i < r5_array_size(a); i++)
		a->data[i] = CMPLXF(frand(), frand());
	return a;
}

/* --- circular shift --- */

static long mod(long a, long n) { return ((a % n) + n) % n; }

static void check_circshift(const long dims[R5_DIMS], const long shifts[R5_DIMS])
{
	r5_array *in = random_array(dims), *out = random_array(dims);
	assert_int_equal(r5_zcircshift(ctx, out, in, shifts), R5_OK);
	long n = r5_array_size(in), bad = 0;
	for (long i = 0; i < n; i++) {
		long rest = i, j = 0, stride = 1;
		for (int d = 0; d < R5_DIMS; d++) {
			j += mod(rest % dims[d] + shifts[d], dims[d]) * stride;
			rest /= dims[d];
			stride *= dims[d];
		}
		bad += out->data[j] != in->data[i];
	}
	char text[64];
	if (bad)
		fail_msg("circular shift of %s: %ld of %ld elements misplaced", r5_dims_format(text, sizeof text, dims), bad,
			 n);
	r5_array_free(in);
	r5_array_free(out);
}

static void test_circshift(void **state)
{
	(void)state;
	seed(11);
	long dims[R5_DIMS], sh[R5_DIMS];
	memset(sh, 0, sizeof sh);
	dims_of(dims, 7, 1, 1, 1);
	sh[0] = 3;
	check_circshift(dims, sh);
	sh[0] = -10; /* negative and larger than the dimension */
	check_circshift(dims, sh);
	dims_of(dims, 35, 27, 9, 2);
	sh[0] = 0, sh[1] = 13; /* y only: rows merge */
	check_circshift(dims, sh);
	sh[0] = -1, sh[1] = 100, sh[2] = 4, sh[3] = 1;
	check_circshift(dims, sh);
	dims_of(dims, 1, 16, 1, 5); /* x of size 1, shift along y and coils */
	sh[0] = 5, sh[1] = -8, sh[2] = 0, sh[3] = 7;
	check_circshift(dims, sh);
	dims_of(dims, 64, 48, 1, 1); /* fftshift of an even image */
	memset(sh, 0, sizeof sh);
	sh[0] = 32, sh[1] = 24;
	check_circshift(dims, sh);
	memset(sh, 0, sizeof sh); /* no shift at all: a copy */
	check_circshift(dims, sh);
	dims_of(dims, 3, 2, 1, 1);
	dims[R5_DIM_TIME] = 4;
	sh[R5_DIM_TIME] = -1, sh[1] = 1;
	check_circshift(dims, sh);
}

static void test_circshift_refusals(void **state)
{
	(void)state;
	seed(12);
	long dims[R5_DIMS], other[R5_DIMS], sh[R5_DIMS] = {1, 2};
	dims_of(dims, 8, 6, 1, 1);
	r5_array *a = random_array(dims), *b = random_array(dims);
	assert_int_equal(r5_zcircshift(ctx, a, a, sh), R5_EINVAL); /* in place */
	assert_non_null(strstr(r5_last_error(), "overlap"));
	assert_non_null(strstr(r5_last_error(), "[8 6]"));
	assert_non_null(strstr(r5_last_error(), "(1 2)"));
	long half[R5_DIMS];
	dims_of(half, 8, 3, 1, 1);
	r5_array lo = r5_array_view_strided(a, half, NULL, 0), hi = r5_array_view_strided(a, half, NULL, 24);
	r5_array mid = r5_array_view_strided(a, half, NULL, 8);
	assert_int_equal(r5_zcircshift(ctx, &mid, &lo, sh), R5_EINVAL); /* partial overlap */
	assert_int_equal(r5_zcircshift(ctx, &hi, &lo, sh), R5_OK);      /* disjoint halves */
	dims_of(other, 6, 8, 1, 1);
	r5_array *c = random_array(other);
	assert_int_equal(r5_zcircshift(ctx, c, b, sh), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "[6 8]"));
	long tr[R5_DIMS];
	r5_dims_strides(tr, dims);
	tr[0] = 6, tr[1] = 1;
	r5_array t = r5_array_view_strided(c, dims, tr, 0); /* transposed: not contiguous */
	assert_int_equal(r5_zcircshift(ctx, &t, b, sh), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "contiguous"));
	assert_int_equal(r5_zcircshift(ctx, b, a, NULL), R5_EINVAL);
	r5_array_free(a);
	r5_array_free(b);
	r5_array_free(c);
}

/* --- box projection --- */

static void check_box(float lo, float hi, int in_place)
{
	long dims[R5_DIMS];
	dims_of(dims, 33, 7, 1, 3);
	r5_array *in = random_array(dims), *out = random_array(dims), *orig = random_array(dims);
	for (long i = 0; i < r5_array_size(in); i++)
		orig->data[i] = in->data[i] = 4.0f * in->data[i];
	orig->data[5] = in->data[5] = CMPLXF(NAN, 1.0f);
	r5_array *dst = in_place ? in : out;
	assert_int_equal(r5_zproject_box(ctx, lo, hi, dst, in), R5_OK);
	for (long i = 0; i < r5_array_size(in); i++) {
		float re = crealf(orig->data[i]);
		float want = re < lo ? lo : re > hi ? hi : re;
		if (i == 5)
			assert_true(isnan(crealf(dst->data[i])));
		else if (crealf(dst->data[i]) != want)
			fail_msg("box [%g, %g]: element %ld is %g, want %g", lo, hi, i, crealf(dst->data[i]), want);
		assert_true(cimagf(dst->data[i]) == 0.0f);
	}
	r5_array_free(in);
	r5_array_free(out);
	r5_array_free(orig);
}

static void test_project_box(void **state)
{
	(void)state;
	seed(21);
	check_box(0.0f, INFINITY, 0); /* non-negativity */
	check_box(-INFINITY, 0.3f, 0);
	check_box(-0.2f, 0.5f, 1);
	check_box(1.0f, 1.0f, 1);
	check_box(-INFINITY, INFINITY, 0); /* real part only */
	long dims[R5_DIMS];
	dims_of(dims, 10, 3, 1, 1);
	r5_array *a = random_array(dims);
	assert_int_equal(r5_zproject_box(ctx, 1.0f, 0.0f, a, a), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "[10 3]"));
	assert_int_equal(r5_zproject_box(ctx, NAN, 1.0f, a, a), R5_EINVAL);
	long part[R5_DIMS];
	dims_of(part, 10, 2, 1, 1);
	r5_array v0 = r5_array_view_strided(a, part, NULL, 0), v1 = r5_array_view_strided(a, part, NULL, 5);
	assert_int_equal(r5_zproject_box(ctx, 0.0f, 1.0f, &v1, &v0), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "overlap"));
	r5_array_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_circshift),
		cmocka_unit_test(test_circshift_refusals),
		cmocka_unit_test(test_project_box),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
