/* The back-end slots of the reconstruction kit through their core wrappers on the CPU back end,
 * each against a brute-force loop written here from the definition: circular shift (odd sizes,
 * negative and oversized shifts, one shifted dimension and many), box projection, reductions
 * (sum in double, max |x|) over strided views, strided/broadcasting axpby, multiply and
 * multiply-accumulate on strided views;
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

/* --- reductions --- */

/* Reference reduction in double of in (any strides) into out_dims: sum and sum of |x| (for the
 * tolerance) or max |x| per output element, outputs counted contiguously over out_dims. */
static void reduce_reference(r5_reduce_op op, const r5_array *in, const long out_dims[R5_DIMS], double complex *ref,
			     double *scale)
{
	long n_out = r5_dims_size(out_dims), n = r5_array_size(in);
	for (long o = 0; o < n_out; o++)
		ref[o] = 0, scale[o] = 0;
	for (long i = 0; i < n; i++) {
		long rest = i, off = 0, o = 0, stride = 1;
		for (int d = 0; d < R5_DIMS; d++) {
			long idx = rest % in->dims[d];
			rest /= in->dims[d];
			off += idx * in->strides[d];
			o += (out_dims[d] == 1 ? 0 : idx) * stride;
			stride *= out_dims[d];
		}
		float complex x = in->data[off];
		double mag = sqrt((double)crealf(x) * crealf(x) + (double)cimagf(x) * cimagf(x));
		if (op == R5_REDUCE_SUM) {
			ref[o] += (double)crealf(x) + I * (double)cimagf(x);
			scale[o] += mag;
		} else if (isnan(mag) || mag > creal(ref[o])) {
			ref[o] = isnan(creal(ref[o])) ? ref[o] : mag;
		}
	}
}

/* out (a view, any strides) against the reference: sums to 1e-6 of sum |x| (double
 * accumulation, one float rounding), max |x| exactly. */
static void check_reduce(r5_reduce_op op, const r5_array *out, const r5_array *in)
{
	long n_out = r5_array_size(out);
	double complex *ref = malloc(sizeof *ref * (size_t)n_out);
	double *scale = malloc(sizeof *scale * (size_t)n_out);
	reduce_reference(op, in, out->dims, ref, scale);
	for (long o = 0; o < n_out; o++) {
		long rest = o, off = 0;
		for (int d = 0; d < R5_DIMS; d++) {
			off += (rest % out->dims[d]) * out->strides[d];
			rest /= out->dims[d];
		}
		float complex got = out->data[off];
		if (op == R5_REDUCE_MAXABS) {
			int ok = isnan(creal(ref[o])) ? isnan(crealf(got)) : crealf(got) == (float)creal(ref[o]);
			if (!ok || cimagf(got) != 0.0f)
				fail_msg("max |x|: output %ld is %g%+gi, want %g", o, crealf(got), cimagf(got), creal(ref[o]));
		} else if (cabs(got - ref[o]) > 1e-6 * scale[o] + 1e-30) {
			fail_msg("sum: output %ld is %g%+gi, want %g%+gi (|x| sum %g)", o, crealf(got), cimagf(got),
				 creal(ref[o]), cimag(ref[o]), scale[o]);
		}
	}
	free(ref);
	free(scale);
}

/* contiguous in of in_dims reduced into a contiguous out of out_dims, both ops */
static void reduce_case(long x, long y, long z, long c, long ox, long oy, long oz, long oc)
{
	long in_dims[R5_DIMS], out_dims[R5_DIMS];
	dims_of(in_dims, x, y, z, c);
	dims_of(out_dims, ox, oy, oz, oc);
	r5_array *in = random_array(in_dims), *out = random_array(out_dims);
	for (int op = 0; op < 2; op++) {
		assert_int_equal(r5_zreduce(ctx, (r5_reduce_op)op, out, in), R5_OK);
		check_reduce((r5_reduce_op)op, out, in);
	}
	r5_array_free(in);
	r5_array_free(out);
}

static void test_reduce_contiguous(void **state)
{
	(void)state;
	seed(31);
	reduce_case(35, 27, 9, 2, 35, 1, 9, 1);   /* y and coils */
	reduce_case(35, 27, 9, 2, 1, 27, 1, 2);   /* x and z */
	reduce_case(35, 27, 9, 2, 1, 1, 1, 1);    /* everything, few outputs: chunked */
	reduce_case(256, 256, 1, 2, 1, 1, 1, 1);  /* 131072 values into one */
	reduce_case(128, 128, 1, 4, 1, 1, 1, 4);  /* few outputs, each chunked */
	reduce_case(64, 48, 1, 8, 64, 48, 1, 1);  /* coil sum: many outputs */
	reduce_case(7, 5, 3, 2, 7, 5, 3, 2);      /* nothing reduced: a copy */
	reduce_case(1, 1, 1, 1, 1, 1, 1, 1);
}

/* in: every second x of a crop of a larger array; out: a strided window of a larger buffer,
 * whose other elements must stay as they were. */
static void test_reduce_strided(void **state)
{
	(void)state;
	seed(32);
	long big[R5_DIMS], in_dims[R5_DIMS], in_str[R5_DIMS], out_big[R5_DIMS], out_dims[R5_DIMS];
	dims_of(big, 40, 20, 3, 5);
	dims_of(in_dims, 19, 17, 3, 5);
	r5_array *base = random_array(big);
	r5_dims_copy(in_str, base->strides);
	in_str[0] = 2;
	r5_array in = r5_array_view_strided(base, in_dims, in_str, 1 + 40 * 2);
	dims_of(out_big, 23, 5, 4, 1);
	dims_of(out_dims, 19, 1, 3, 1);
	r5_array *obase = random_array(out_big), *before = random_array(out_big);
	memcpy(before->data, obase->data, sizeof(float complex) * (size_t)r5_array_size(obase));
	r5_array out = r5_array_view_strided(obase, out_dims, NULL, 2 + 23 * 3);
	for (int op = 0; op < 2; op++) {
		assert_int_equal(r5_zreduce(ctx, (r5_reduce_op)op, &out, &in), R5_OK);
		check_reduce((r5_reduce_op)op, &out, &in);
	}
	long touched = 0;
	for (long i = 0; i < r5_array_size(obase); i++)
		touched += obase->data[i] != before->data[i];
	assert_int_equal(touched, 19 * 3); /* exactly the window */
	/* a transposed view reduced over its first dimension */
	long tdims[R5_DIMS], tstr[R5_DIMS], tout[R5_DIMS];
	dims_of(tdims, 20, 40, 1, 1);
	r5_dims_copy(tstr, base->strides);
	tstr[0] = 40, tstr[1] = 1;
	r5_array t = r5_array_view_strided(base, tdims, tstr, 0);
	dims_of(tout, 1, 40, 1, 1);
	r5_array *tsum = random_array(tout);
	assert_int_equal(r5_zsum(ctx, tsum, &t), R5_OK);
	check_reduce(R5_REDUCE_SUM, tsum, &t);
	r5_array_free(base);
	r5_array_free(obase);
	r5_array_free(before);
	r5_array_free(tsum);
}

static void test_maxabs_and_refusals(void **state)
{
	(void)state;
	seed(33);
	long dims[R5_DIMS], out_dims[R5_DIMS];
	dims_of(dims, 300, 200, 1, 1);
	r5_array *x = random_array(dims);
	x->data[12345] = CMPLXF(-3.0f, 4.0f);
	float m = 0;
	assert_int_equal(r5_zmaxabs(ctx, x, &m), R5_OK);
	assert_true(m == 5.0f);
	x->data[777] = CMPLXF(0.0f, NAN); /* a NaN never disappears */
	assert_int_equal(r5_zmaxabs(ctx, x, &m), R5_OK);
	assert_true(isnan(m));
	dims_of(out_dims, 300, 1, 1, 1);
	r5_array *col = random_array(out_dims);
	assert_int_equal(r5_zreduce(ctx, R5_REDUCE_MAXABS, col, x), R5_OK);
	check_reduce(R5_REDUCE_MAXABS, col, x); /* NaN only in its own column */
	assert_true(isnan(crealf(col->data[777 % 300])) && !isnan(crealf(col->data[0])));
	/* refusals */
	long bad[R5_DIMS];
	dims_of(bad, 150, 1, 1, 1);
	r5_array *half = random_array(bad);
	assert_int_equal(r5_zsum(ctx, half, x), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "[150]"));
	assert_non_null(strstr(r5_last_error(), "[300 200]"));
	r5_array first_row = r5_array_view_strided(x, out_dims, NULL, 0);
	assert_int_equal(r5_zsum(ctx, &first_row, x), R5_EINVAL); /* out inside in */
	assert_non_null(strstr(r5_last_error(), "overlap"));
	assert_int_equal(r5_zsum(ctx, x, x), R5_OK); /* nothing reduced, in place: fine */
	long zero[R5_DIMS] = {0};
	r5_array flat = r5_array_view_strided(col, out_dims, zero, 0);
	long two[R5_DIMS];
	dims_of(two, 300, 2, 1, 1);
	r5_array *x2 = random_array(two);
	dims_of(out_dims, 300, 1, 1, 1);
	assert_int_equal(r5_zsum(ctx, &flat, x2), R5_EINVAL); /* stride 0 along a kept dimension */
	assert_int_equal(r5_zreduce(ctx, (r5_reduce_op)7, col, x2), R5_EINVAL);
	r5_array_free(x);
	r5_array_free(col);
	r5_array_free(half);
	r5_array_free(x2);
}

/* --- strided axpby, multiply, multiply-accumulate --- */

/* Offset of linear index i (over dims, x fastest) in an array with these strides; a dimension of
 * size 1 in `own` (a broadcast input) reads index 0. */
static long offset_of(const long dims[R5_DIMS], const long own[R5_DIMS], const long strides[R5_DIMS], long i)
{
	long off = 0;
	for (int d = 0; d < R5_DIMS; d++) {
		long idx = i % dims[d];
		i /= dims[d];
		off += (own[d] == 1 ? 0 : idx) * strides[d];
	}
	return off;
}

/* y: a window of a larger buffer (strided, offset); x: broadcast over y and coils, or a
 * transposed view; the elements of y's buffer outside the window stay as they were. */
static void test_axpby_strided(void **state)
{
	(void)state;
	seed(41);
	long ybig[R5_DIMS], ydims[R5_DIMS], xdims[R5_DIMS];
	dims_of(ybig, 30, 20, 1, 4);
	dims_of(ydims, 25, 17, 1, 3);
	r5_array *ybase = random_array(ybig), *before = random_array(ybig);
	memcpy(before->data, ybase->data, sizeof(float complex) * (size_t)r5_array_size(ybase));
	r5_array y = r5_array_view_strided(ybase, ydims, NULL, 2 + 30 * 1 + 600);
	dims_of(xdims, 25, 1, 1, 1);
	r5_array *x = random_array(xdims);
	float complex alpha = CMPLXF(0.5f, -2.0f), beta = CMPLXF(-1.0f, 0.25f);
	assert_int_equal(r5_zaxpby(ctx, alpha, x, beta, &y), R5_OK);
	long n = r5_array_size(&y), touched = 0;
	for (long i = 0; i < n; i++) {
		long oy = offset_of(ydims, ydims, y.strides, i), ox = offset_of(ydims, xdims, x->strides, i);
		float complex want = alpha * x->data[ox] + beta * before->data[y.data - ybase->data + oy];
		if (cabsf(y.data[oy] - want) > 1e-6f)
			fail_msg("axpby: element %ld is %g%+gi, want %g%+gi", i, crealf(y.data[oy]), cimagf(y.data[oy]),
				 crealf(want), cimagf(want));
	}
	for (long i = 0; i < r5_array_size(ybase); i++)
		touched += ybase->data[i] != before->data[i];
	assert_int_equal(touched, n);
	/* x a transposed view of a 17 x 25 array */
	long tdims[R5_DIMS], tstr[R5_DIMS], sq[R5_DIMS];
	dims_of(sq, 17, 25, 1, 1);
	r5_array *xt = random_array(sq), *y2 = random_array(sq), *y2_before = random_array(sq);
	dims_of(tdims, 25, 17, 1, 1);
	r5_dims_strides(tstr, tdims);
	tstr[0] = 17, tstr[1] = 1;
	r5_array t = r5_array_view_strided(xt, tdims, tstr, 0);
	long ydims2[R5_DIMS];
	dims_of(ydims2, 25, 17, 1, 1);
	r5_array *y3 = random_array(ydims2);
	memcpy(y2_before->data, y3->data, sizeof(float complex) * 425);
	assert_int_equal(r5_zaxpby(ctx, alpha, &t, beta, y3), R5_OK);
	for (long i = 0; i < 425; i++) {
		long xi = i % 25, yi = i / 25;
		float complex want = alpha * xt->data[yi + 17 * xi] + beta * y2_before->data[i];
		assert_true(cabsf(y3->data[i] - want) <= 1e-6f);
	}
	/* x is y: y = (alpha + beta) y */
	memcpy(y2_before->data, y3->data, sizeof(float complex) * 425);
	assert_int_equal(r5_zaxpby(ctx, alpha, y3, beta, y3), R5_OK);
	for (long i = 0; i < 425; i++)
		assert_true(cabsf(y3->data[i] - (alpha + beta) * y2_before->data[i]) <= 1e-5f);
	/* real coefficients (the back end's fast path): the window, then beta 0 on a window of NaN
	 * (y not read), then the transposed x (strided rows) onto NaN */
	memcpy(before->data, ybase->data, sizeof(float complex) * (size_t)r5_array_size(ybase));
	assert_int_equal(r5_zaxpby(ctx, 1.5f, x, -0.5f, &y), R5_OK);
	for (long i = 0; i < n; i++) {
		long oy = offset_of(ydims, ydims, y.strides, i), ox = offset_of(ydims, xdims, x->strides, i);
		float complex want = 1.5f * x->data[ox] - 0.5f * before->data[y.data - ybase->data + oy];
		assert_true(cabsf(y.data[oy] - want) <= 1e-6f);
		y.data[oy] = NAN;
	}
	assert_int_equal(r5_zaxpby(ctx, -2.0f, x, 0.0f, &y), R5_OK);
	for (long i = 0; i < n; i++) {
		long oy = offset_of(ydims, ydims, y.strides, i), ox = offset_of(ydims, xdims, x->strides, i);
		assert_true(cabsf(y.data[oy] + 2.0f * x->data[ox]) <= 1e-6f);
	}
	for (long i = 0; i < 425; i++)
		y3->data[i] = NAN;
	assert_int_equal(r5_zaxpby(ctx, 2.0f, &t, 0.0f, y3), R5_OK);
	for (long i = 0; i < 425; i++)
		assert_true(cabsf(y3->data[i] - 2.0f * xt->data[i / 25 + 17 * (i % 25)]) <= 1e-6f);
	/* refusals */
	r5_array part = r5_array_view_strided(ybase, ydims, NULL, 3 + 30 * 1 + 600);
	assert_int_equal(r5_zaxpby(ctx, alpha, &part, beta, &y), R5_EINVAL); /* overlapping, not the same */
	assert_non_null(strstr(r5_last_error(), "overlaps"));
	long zero[R5_DIMS] = {0};
	r5_array flat = r5_array_view_strided(ybase, ydims, zero, 0);
	assert_int_equal(r5_zaxpby(ctx, alpha, x, beta, &flat), R5_EINVAL); /* y stride 0 */
	assert_non_null(strstr(r5_last_error(), "stride 0"));
	long bad[R5_DIMS];
	dims_of(bad, 5, 1, 1, 1);
	r5_array *xbad = random_array(bad);
	assert_int_equal(r5_zaxpby(ctx, alpha, xbad, beta, &y), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "[5]"));
	r5_array_free(ybase);
	r5_array_free(before);
	r5_array_free(x);
	r5_array_free(xt);
	r5_array_free(y2);
	r5_array_free(y2_before);
	r5_array_free(y3);
	r5_array_free(xbad);
}

/* out (a strided window) += in1 (transposed view) * conj(in2) (broadcast over coils), and
 * r5_zmul into the same window, against the definition. */
/* beta = 0 does not read y (BLAS's rule): y full of NaN becomes alpha x, contiguous and strided. */
static void test_axpby_beta_zero(void **state)
{
	(void)state;
	seed(43);
	long dims[R5_DIMS];
	dims_of(dims, 9, 7, 1, 2);
	r5_array *x = random_array(dims), *y = random_array(dims);
	/* complex alpha (generic loop) and real ones (the CPU's real-coefficient loop) */
	static const float complex alphas[3] = {CMPLXF(1.5f, 0.5f), 1.0f, 2.0f};
	for (int case_ = 0; case_ < 6; case_++) {
		int strided = case_ % 2;
		float complex alpha = alphas[case_ / 2];
		for (long i = 0; i < r5_array_size(y); i++)
			y->data[i] = NAN;
		long sub[R5_DIMS];
		dims_of(sub, strided ? 5 : 9, 7, 1, 2);
		r5_array yv = r5_array_view_strided(y, sub, NULL, 0), xv = r5_array_view_strided(x, sub, NULL, 0);
		assert_int_equal(r5_zaxpby(ctx, alpha, &xv, 0.0f, &yv), R5_OK);
		for (long k = 0; k < sub[3]; k++)
			for (long j = 0; j < sub[1]; j++)
				for (long i = 0; i < sub[0]; i++) {
					long o = i + j * y->strides[1] + k * y->strides[3];
					assert_true(cabsf(yv.data[o] - alpha * xv.data[o]) < 1e-6f);
				}
	}
	r5_array_free(x);
	r5_array_free(y);
}

static void test_fmac_and_strided_mul(void **state)
{
	(void)state;
	seed(42);
	long big[R5_DIMS], dims[R5_DIMS], in1_store[R5_DIMS], in1_str[R5_DIMS], in2_dims[R5_DIMS];
	dims_of(big, 20, 15, 1, 4);
	dims_of(dims, 13, 11, 1, 3);
	dims_of(in1_store, 11, 13, 1, 3);
	dims_of(in2_dims, 13, 11, 1, 1);
	r5_array *obase = random_array(big), *before = random_array(big), *in1s = random_array(in1_store);
	r5_array *in2 = random_array(in2_dims);
	r5_dims_strides(in1_str, in1_store);
	in1_str[0] = 11, in1_str[1] = 1; /* in1[x, y, c] = in1s[y, x, c] */
	r5_array in1 = r5_array_view_strided(in1s, dims, in1_str, 0);
	r5_array out = r5_array_view_strided(obase, dims, NULL, 1 + 20 * 2 + 300);
	for (int round = 0; round < 2; round++) {
		memcpy(before->data, obase->data, sizeof(float complex) * (size_t)r5_array_size(obase));
		if (round == 0)
			assert_int_equal(r5_zfmac(ctx, &out, &in1, in2, R5_ZMUL_CONJ2), R5_OK);
		else
			assert_int_equal(r5_zmul(ctx, &out, &in1, in2, 0), R5_OK);
		long n = r5_array_size(&out);
		for (long i = 0; i < n; i++) {
			long oo = offset_of(dims, dims, out.strides, i);
			float complex a = in1.data[offset_of(dims, dims, in1.strides, i)];
			float complex b = in2->data[offset_of(dims, in2_dims, in2->strides, i)];
			float complex old = before->data[out.data - obase->data + oo];
			float complex want = round == 0 ? old + a * conjf(b) : a * b;
			if (cabsf(out.data[oo] - want) > 1e-6f)
				fail_msg("%s: element %ld is %g%+gi, want %g%+gi", round ? "multiply" : "fmac", i,
					 crealf(out.data[oo]), cimagf(out.data[oo]), crealf(want), cimagf(want));
		}
		long touched = 0;
		for (long i = 0; i < r5_array_size(obase); i++)
			touched += obase->data[i] != before->data[i];
		assert_int_equal(touched, n);
	}
	assert_int_equal(r5_zfmac(ctx, &out, &in1, in2, 4), R5_EINVAL); /* unknown flag */
	r5_array shifted = r5_array_view_strided(obase, dims, NULL, 2 + 20 * 2 + 300);
	assert_int_equal(r5_zmul(ctx, &out, &shifted, in2, 0), R5_EINVAL); /* overlaps out */
	assert_int_equal(r5_zfmac(ctx, &out, &out, in2, 0), R5_OK);        /* is out: fine */
	r5_array_free(obase);
	r5_array_free(before);
	r5_array_free(in1s);
	r5_array_free(in2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_circshift),
		cmocka_unit_test(test_circshift_refusals),
		cmocka_unit_test(test_project_box),
		cmocka_unit_test(test_reduce_contiguous),
		cmocka_unit_test(test_reduce_strided),
		cmocka_unit_test(test_maxabs_and_refusals),
		cmocka_unit_test(test_axpby_strided),
		cmocka_unit_test(test_axpby_beta_zero),
		cmocka_unit_test(test_fmac_and_strided_mul),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
