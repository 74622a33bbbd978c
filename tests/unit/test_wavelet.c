/* The orthogonal wavelet operator (recon/linop/wavelet.h) and its back-end step
 * (r5_zwavelet_step): Haar coefficients computed by hand (even and odd lengths, one and all
 * levels), the Daubechies-4 filter's orthogonality and vanishing moments, its high band of a ramp
 * (zero away from the periodic wrap), perfect reconstruction W^H W x = x and |W x| = |x| over 1D,
 * 2D, odd sizes, a 3D y|z subset with a batch dimension and cycle-spinning shifts, the adjoint
 * and normal properties (lintest.h), that a y|z transform keeps x positions apart, sparsity of a
 * piecewise-constant signal's Haar details, W S = W (shifted x), and the errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "recon/linop/lintest.h"
#include "recon/linop/wavelet.h"

#include "cpu_fixture.h"

#define TOL_EXACT 1e-6 /* relative, single precision */

static r5_array *work_from(const long dims[R5_DIMS], const float complex *values)
{
	r5_array *a = NULL;
	assert_int_equal(r5_array_alloc_work(ctx, dims, &a), R5_OK);
	memcpy(a->data, values, sizeof(float complex) * (size_t)r5_array_size(a)); /* CPU context */
	return a;
}

static r5_array *random_work(const long dims[R5_DIMS], unsigned seed)
{
	r5_array *a = NULL;
	assert_int_equal(r5_array_alloc_work(ctx, dims, &a), R5_OK);
	assert_int_equal(r5_lintest_fill(ctx, a, 0, &seed), R5_OK);
	return a;
}

static double rel_diff(const r5_array *a, const r5_array *b)
{
	double d = 0, n = 0;
	for (long i = 0; i < r5_array_size(a); i++) {
		d += cabs(a->data[i] - b->data[i]) * cabs(a->data[i] - b->data[i]);
		n += cabs(b->data[i]) * cabs(b->data[i]);
	}
	return sqrt(d / (n > 0 ? n : 1));
}

static r5_linop *make_op(const long dims[R5_DIMS], unsigned long flags, r5_wavelet_kind kind, int levels)
{
	r5_linop *op = NULL;
	if (r5_linop_wavelet(ctx, dims, flags, kind, levels, &op) != R5_OK)
		fail_msg("%s", r5_last_error());
	return op;
}

static r5_array *apply(r5_linop *op, int adjoint, const r5_array *in)
{
	r5_array *out = NULL;
	assert_int_equal(r5_array_alloc_work(ctx, op->odims, &out), R5_OK);
	r5_status st = adjoint ? r5_linop_adjoint(ctx, op, out, in) : r5_linop_forward(ctx, op, out, in);
	if (st != R5_OK)
		fail_msg("%s", r5_last_error());
	return out;
}

static void check_coefficients(const long dims[R5_DIMS], int levels, const float complex *x, const double *expect)
{
	r5_linop *op = make_op(dims, 1, R5_WAVELET_HAAR, levels);
	r5_array *in = work_from(dims, x), *out = apply(op, 0, in);
	for (long i = 0; i < dims[0]; i++) {
		assert_true(fabs(crealf(out->data[i]) - expect[i]) < 1e-6);
		assert_true(fabs(cimagf(out->data[i]) + 2 * expect[i]) < 2e-6); /* x's imaginary part is -2 re */
	}
	r5_array_free(out);
	r5_array_free(in);
	r5_linop_free(op);
}

/* x = (1 2 3 4) -> level 1: ((1+2), (3+4), (1-2), (3-4)) / sqrt 2; level 2 on the first two:
 * (3 + 7) / 2 = 5 and (3 - 7) / 2 = -2. Length 5 keeps its last sample (5). */
static void test_haar_known(void **state)
{
	(void)state;
	const double r = sqrt(0.5);
	float complex x[5];
	for (int i = 0; i < 5; i++)
		x[i] = CMPLXF((float)(i + 1), (float)(-2 * (i + 1)));
	long dims[R5_DIMS];
	dims_of(dims, 4, 1, 1, 1);
	check_coefficients(dims, 1, x, (const double[]){3 * r, 7 * r, -r, -r});
	check_coefficients(dims, 0, x, (const double[]){5, -2, -r, -r});
	dims_of(dims, 5, 1, 1, 1);
	check_coefficients(dims, 1, x, (const double[]){3 * r, 7 * r, -r, -r, 5});
	check_coefficients(dims, 0, x, (const double[]){5, -2, -r, -r, 5});
	r5_linop *op = make_op(dims, 1, R5_WAVELET_HAAR, 0);
	assert_int_equal(r5_linop_wavelet_levels(op, 0), 2);
	assert_int_equal(r5_linop_wavelet_levels(op, 1), 0);
	r5_linop_free(op);
}

/* Orthonormality of the filter bank and the vanishing moments of the high-pass: kind's filter of
 * length n has n / 2 of them. */
static void check_filter(r5_wavelet_kind kind, int n)
{
	assert_int_equal(r5_wavelet_length(kind), n);
	for (int shift = 0; shift < n; shift += 2) {
		double hh = 0, gg = 0, hg = 0, hg_back = 0;
		for (int j = 0; j + shift < n; j++) {
			hh += (double)r5_wavelet_lo(kind, j) * r5_wavelet_lo(kind, j + shift);
			gg += (double)r5_wavelet_hi(kind, j) * r5_wavelet_hi(kind, j + shift);
			hg += (double)r5_wavelet_lo(kind, j) * r5_wavelet_hi(kind, j + shift);
			hg_back += (double)r5_wavelet_hi(kind, j) * r5_wavelet_lo(kind, j + shift);
		}
		assert_true(fabs(hh - (shift == 0)) < 1e-7);
		assert_true(fabs(gg - (shift == 0)) < 1e-7);
		assert_true(fabs(hg) < 1e-7 && fabs(hg_back) < 1e-7);
	}
	double sum_h = 0;
	for (int j = 0; j < n; j++)
		sum_h += r5_wavelet_lo(kind, j);
	assert_true(fabs(sum_h - sqrt(2.0)) < 1e-7);
	for (int m = 0; m < n / 2; m++) {
		double moment = 0, scale = 0;
		for (int j = 0; j < n; j++) {
			moment += pow(j, m) * (double)r5_wavelet_hi(kind, j);
			scale += pow(j, m) * fabs((double)r5_wavelet_hi(kind, j));
		}
		if (!(fabs(moment) < 1e-6 * scale))
			fail_msg("wavelet %d: moment %d of the high-pass is %.3g (scale %.3g)", (int)kind, m, moment, scale);
	}
}

/* The minimum block: levels stop while a band is min_block wide; shorter dims take one level. */
static void test_min_block(void **state)
{
	(void)state;
	static const struct {
		long x, y, min_block;
		int levels_x, levels_y;
	} cases[] = {{230, 180, 32, 3, 3}, {24, 100, 32, 1, 2}, {230, 180, 0, 6, 6}};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		long dims[R5_DIMS];
		r5_linop *op = NULL;
		dims_of(dims, cases[k].x, cases[k].y, 1, 1);
		assert_int_equal(r5_linop_wavelet_min(ctx, dims, 3, R5_WAVELET_DB4, 0, cases[k].min_block, &op), R5_OK);
		assert_int_equal(r5_linop_wavelet_levels(op, 0), cases[k].levels_x);
		assert_int_equal(r5_linop_wavelet_levels(op, 1), cases[k].levels_y);
		r5_linop_errors e;
		assert_int_equal(r5_linop_property_test(ctx, op, 3, &e), R5_OK);
		assert_true(e.adjoint < 1e-5 && e.normal < 1e-5);
		r5_linop_free(op);
	}
}

static void test_db8_filter(void **state)
{
	(void)state;
	check_filter(R5_WAVELET_DB8, 8);
}

static void test_db4_filter(void **state)
{
	(void)state;
	check_filter(R5_WAVELET_DB4, 4);

	/* a ramp's high band is zero except where the filter wraps (k = 7 of 8: samples 14 15 0 1) */
	long dims[R5_DIMS];
	dims_of(dims, 16, 1, 1, 1);
	float complex x[16];
	for (int i = 0; i < 16; i++)
		x[i] = (float)i;
	r5_linop *op = make_op(dims, 1, R5_WAVELET_DB4, 1);
	r5_array *in = work_from(dims, x), *out = apply(op, 0, in);
	for (int k = 0; k < 7; k++)
		assert_true(cabsf(out->data[8 + k]) < 1e-5);
	assert_true(cabsf(out->data[15]) > 1);
	r5_array_free(out);
	r5_array_free(in);
	r5_linop_free(op);
}

struct wavelet_case {
	const char *name;
	long x, y, z, c;
	unsigned long flags;
	r5_wavelet_kind kind;
	int levels;
	long shift[3];
	int levels_x, levels_y, levels_z; /* expected levels per dimension */
};

static const struct wavelet_case cases[] = {
	{"1D 16 haar", 16, 1, 1, 1, 1, R5_WAVELET_HAAR, 0, {0, 0, 0}, 4, 0, 0},
	{"1D 33 db4", 33, 1, 1, 1, 1, R5_WAVELET_DB4, 0, {0, 0, 0}, 4, 0, 0},
	{"1D 64 db4 3 levels", 64, 1, 1, 1, 1, R5_WAVELET_DB4, 3, {0, 0, 0}, 3, 0, 0},
	{"2D 16x12 db4", 16, 12, 1, 1, 3, R5_WAVELET_DB4, 0, {0, 0, 0}, 3, 2, 0},
	{"2D 17x9 haar odd", 17, 9, 1, 1, 3, R5_WAVELET_HAAR, 0, {0, 0, 0}, 4, 3, 0},
	{"2D 15x13 db4 odd", 15, 13, 1, 1, 3, R5_WAVELET_DB4, 0, {0, 0, 0}, 2, 2, 0},
	{"3D 5x20x15x2 y|z db4", 5, 20, 15, 2, 6, R5_WAVELET_DB4, 0, {0, 0, 0}, 0, 3, 2},
	{"3D 6x16x10x3 y|z haar shifted", 6, 16, 10, 3, 6, R5_WAVELET_HAAR, 0, {0, 5, -3}, 0, 4, 3},
	{"2D 24x18 db4 shifted", 24, 18, 1, 1, 3, R5_WAVELET_DB4, 2, {7, 100, 0}, 2, 2, 0},
	{"3D 12x12x12 xyz db4", 12, 12, 12, 1, 7, R5_WAVELET_DB4, 0, {1, 2, 3}, 2, 2, 2},
	{"2D 40x19 db8 odd shifted", 40, 19, 1, 1, 3, R5_WAVELET_DB8, 0, {3, 5, 0}, 3, 2, 0},
};

static r5_linop *case_op(const struct wavelet_case *c)
{
	long dims[R5_DIMS], shifts[R5_DIMS] = {0};
	dims_of(dims, c->x, c->y, c->z, c->c);
	r5_linop *op = make_op(dims, c->flags, c->kind, c->levels);
	memcpy(shifts, c->shift, sizeof c->shift);
	if (r5_linop_wavelet_set_shift(op, shifts) != R5_OK)
		fail_msg("%s: %s", c->name, r5_last_error());
	return op;
}

static void test_reconstruction(void **state)
{
	(void)state;
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		const struct wavelet_case *c = &cases[k];
		r5_linop *op = case_op(c);
		assert_int_equal(r5_linop_wavelet_levels(op, 0), c->levels_x);
		assert_int_equal(r5_linop_wavelet_levels(op, 1), c->levels_y);
		assert_int_equal(r5_linop_wavelet_levels(op, 2), c->levels_z);
		r5_array *x = random_work(op->idims, 11 + (unsigned)k), *y = apply(op, 0, x), *back = apply(op, 1, y);
		double nx = 0, ny = 0;
		assert_int_equal(r5_znorm(ctx, x, &nx), R5_OK);
		assert_int_equal(r5_znorm(ctx, y, &ny), R5_OK);
		double pr = rel_diff(back, x), norm = fabs(ny - nx) / nx, moved = rel_diff(y, x);
		print_message("%-32s |Wx|/|x| - 1 %.1e  |W^H W x - x|/|x| %.1e\n", c->name, norm, pr);
		if (!(pr < TOL_EXACT && norm < TOL_EXACT && moved > 0.1))
			fail_msg("%s: reconstruction %.2e, norm %.2e, |Wx - x| %.2e", c->name, pr, norm, moved);
		r5_linop_errors e;
		assert_int_equal(r5_linop_property_test(ctx, op, 5, &e), R5_OK);
		if (!(e.adjoint < 1e-5 && e.normal < 1e-5 && e.in_place < 1e-5))
			fail_msg("%s: adjoint %.2e normal %.2e in-place %.2e", c->name, e.adjoint, e.normal, e.in_place);
		r5_array_free(back);
		r5_array_free(y);
		r5_array_free(x);
		r5_linop_free(op);
	}
}

/* W S x = W (S x): the shifted operator against a plain one on a separately shifted input. */
static void test_shift(void **state)
{
	(void)state;
	long dims[R5_DIMS], shifts[R5_DIMS] = {0};
	dims_of(dims, 12, 10, 3, 1);
	shifts[0] = -5, shifts[1] = 3;
	r5_linop *plain = make_op(dims, 3, R5_WAVELET_DB4, 0), *shifted = make_op(dims, 3, R5_WAVELET_DB4, 0);
	assert_int_equal(r5_linop_wavelet_set_shift(shifted, shifts), R5_OK);
	r5_array *x = random_work(dims, 3), *sx = NULL;
	assert_int_equal(r5_array_alloc_work(ctx, dims, &sx), R5_OK);
	assert_int_equal(r5_zcircshift(ctx, sx, x, shifts), R5_OK);
	r5_array *a = apply(shifted, 0, x), *b = apply(plain, 0, sx), *c = apply(plain, 0, x);
	assert_true(rel_diff(a, b) < 1e-7);
	assert_true(rel_diff(a, c) > 0.1);
	memset(shifts, 0, sizeof shifts);
	assert_int_equal(r5_linop_wavelet_set_shift(shifted, shifts), R5_OK); /* back to plain W */
	r5_array *d = apply(shifted, 0, x);
	assert_true(rel_diff(d, c) < 1e-7);
	shifts[2] = 1; /* z is not transformed */
	assert_int_equal(r5_linop_wavelet_set_shift(shifted, shifts), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "dimension 2"));
	r5_array_free(d);
	r5_array_free(c);
	r5_array_free(b);
	r5_array_free(a);
	r5_array_free(sx);
	r5_array_free(x);
	r5_linop_free(plain);
	r5_linop_free(shifted);
}

/* flags y|z: a value at one x position stays there (each x is its own 2D transform), and equals
 * the 2D transform of that slice alone. */
static void test_subset(void **state)
{
	(void)state;
	long dims[R5_DIMS], slice[R5_DIMS];
	dims_of(dims, 4, 16, 8, 1);
	dims_of(slice, 1, 16, 8, 1);
	r5_linop *op = make_op(dims, 6, R5_WAVELET_DB4, 0), *op2 = make_op(slice, 6, R5_WAVELET_DB4, 0);
	r5_array *x = random_work(dims, 9), *y = apply(op, 0, x);
	for (long i = 0; i < 4; i++) {
		r5_array *s = NULL;
		assert_int_equal(r5_array_alloc_work(ctx, slice, &s), R5_OK);
		for (long j = 0; j < 16 * 8; j++)
			s->data[j] = x->data[i + 4 * j];
		r5_array *t = apply(op2, 0, s);
		double d = 0;
		for (long j = 0; j < 16 * 8; j++)
			d = fmax(d, cabsf(t->data[j] - y->data[i + 4 * j]));
		assert_true(d < 1e-6);
		r5_array_free(t);
		r5_array_free(s);
	}
	r5_array_free(y);
	r5_array_free(x);
	r5_linop_free(op2);
	r5_linop_free(op);
}

static int count_above(const r5_array *a, long from, float threshold)
{
	int n = 0;
	for (long i = from; i < r5_array_size(a); i++)
		n += cabsf(a->data[i]) > threshold;
	return n;
}

/* A piecewise-constant signal (3 jumps, 64 samples): each jump touches at most one detail
 * coefficient per level (6 levels), so at most 18 of the 63 details are not zero; random data
 * has them all. A 2D square on 32x32 (edges along 4 lines) keeps few of the 1023 details too. */
static void test_sparsity(void **state)
{
	(void)state;
	long dims[R5_DIMS];
	dims_of(dims, 64, 1, 1, 1);
	float complex x[64 * 1];
	for (int i = 0; i < 64; i++)
		x[i] = i < 13 ? 1.0f : i < 30 ? -2.0f : i < 47 ? 0.5f : 3.0f;
	r5_linop *op = make_op(dims, 1, R5_WAVELET_HAAR, 0);
	r5_array *in = work_from(dims, x), *out = apply(op, 0, in), *noise = random_work(dims, 4),
		 *noise_out = apply(op, 0, noise);
	int details = count_above(out, 1, 1e-5f), noise_details = count_above(noise_out, 1, 1e-5f);
	print_message("piecewise constant 64: %d of 63 Haar details not zero (random: %d)\n", details,
		      noise_details);
	assert_true(details >= 3 && details <= 18);
	assert_true(noise_details > 55);
	r5_array_free(noise_out);
	r5_array_free(noise);
	r5_array_free(out);
	r5_array_free(in);
	r5_linop_free(op);

	dims_of(dims, 32, 32, 1, 1);
	float complex *img = calloc(32 * 32, sizeof *img);
	assert_non_null(img);
	for (int j = 5; j < 21; j++)
		for (int i = 9; i < 27; i++)
			img[i + 32 * j] = 1.0f;
	op = make_op(dims, 3, R5_WAVELET_HAAR, 0);
	in = work_from(dims, img);
	out = apply(op, 0, in);
	int nonzero = count_above(out, 0, 1e-5f);
	print_message("square 32x32: %d of 1024 Haar coefficients not zero\n", nonzero);
	assert_true(nonzero > 4 && nonzero < 160);
	r5_array_free(out);
	r5_array_free(in);
	r5_linop_free(op);
	free(img);
}

/* The CUDA kernel's map from thread index to element (r5_wavelet_element), replayed on the host:
 * every element of the block is written exactly once with the value the CPU slot writes, for
 * the transformed dimension innermost (p fast) and not (lines fast), strided blocks included. */
static void test_element_map(void **state)
{
	(void)state;
	long full[R5_DIMS], block[R5_DIMS], str[R5_DIMS];
	dims_of(full, 12, 10, 7, 2);
	dims_of(block, 9, 10, 5, 2);
	r5_array *in = random_work(full, 21), *cpu = NULL, *count = NULL, *value = NULL;
	assert_int_equal(r5_array_zeros(ctx, R5_HOST, full, &cpu), R5_OK);
	assert_int_equal(r5_array_zeros(ctx, R5_HOST, full, &count), R5_OK);
	assert_int_equal(r5_array_zeros(ctx, R5_HOST, full, &value), R5_OK);
	memcpy(str, in->strides, sizeof str);
	for (int dim = 0; dim < 3; dim++)
		for (int inverse = 0; inverse < 2; inverse++) {
			r5_array vin = r5_array_view_strided(in, block, NULL, 0), vout = r5_array_view_strided(cpu, block, NULL, 0);
			assert_int_equal(r5_zwavelet_step(ctx, R5_WAVELET_DB4, inverse, dim, &vout, &vin), R5_OK);
			struct r5_wavelet_step w;
			long total = r5_wavelet_step_make(&w, R5_WAVELET_DB4, inverse, dim, block, str);
			assert_int_equal(total, 9 * 10 * 5 * 2);
			assert_int_equal(w.p_inner, dim == 0);
			assert_int_equal(r5_zfill(ctx, count, 0), R5_OK);
			for (long i = 0; i < total; i++) {
				long p;
				long off = r5_wavelet_element(&w, i, &p);
				count->data[off + p * w.step] += 1.0f;
				value->data[off + p * w.step] = r5_wavelet_value(&w, p, in->data + off);
			}
			for (long i = 0; i < r5_array_size(count); i++) {
				long x = i % 12, z = i / 120 % 7;
				int inside = x < 9 && z < 5;
				assert_true(crealf(count->data[i]) == (inside ? 1.0f : 0.0f));
				if (inside)
					assert_true(cabsf(value->data[i] - cpu->data[i]) < 1e-6f);
			}
		}
	r5_array_free(value);
	r5_array_free(count);
	r5_array_free(cpu);
	r5_array_free(in);
}

static void test_errors(void **state)
{
	(void)state;
	long dims[R5_DIMS];
	r5_linop *op = NULL;
	dims_of(dims, 3, 8, 1, 1);
	assert_int_equal(r5_linop_wavelet(ctx, dims, 1, R5_WAVELET_DB4, 0, &op), R5_EINVAL); /* 3: too short */
	assert_null(op);
	assert_non_null(strstr(r5_last_error(), "Daubechies-4"));
	assert_int_equal(r5_linop_wavelet(ctx, dims, 0, R5_WAVELET_HAAR, 0, &op), R5_EINVAL);
	assert_int_equal(r5_linop_wavelet(ctx, dims, 1, (r5_wavelet_kind)7, 0, &op), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "kind 7"));
	assert_int_equal(r5_linop_wavelet(ctx, dims, 3, R5_WAVELET_DB4, 0, &op), R5_OK); /* y alone is enough */
	assert_int_equal(r5_linop_wavelet_levels(op, 0), 0);
	assert_int_equal(r5_linop_wavelet_levels(op, 1), 2); /* 8 and 4; 2 is too short */
	r5_linop *other = NULL;
	assert_int_equal(r5_linop_identity(ctx, dims, &other), R5_OK);
	long shifts[R5_DIMS] = {0};
	assert_int_equal(r5_linop_wavelet_set_shift(other, shifts), R5_EINVAL);
	assert_int_equal(r5_linop_wavelet_levels(other, 0), -1);
	r5_linop_free(other);
	r5_linop_free(op);

	/* the step: in place, different strides, too short, bad dimension */
	r5_array *a = random_work(dims, 1), *b = random_work(dims, 2);
	assert_int_equal(r5_zwavelet_step(ctx, R5_WAVELET_HAAR, 0, 1, a, a), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "overlap"));
	assert_int_equal(r5_zwavelet_step(ctx, R5_WAVELET_DB4, 0, 0, b, a), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "filter needs 4"));
	assert_int_equal(r5_zwavelet_step(ctx, R5_WAVELET_HAAR, 0, R5_DIMS, b, a), R5_EINVAL);
	long half[R5_DIMS], str[R5_DIMS];
	memcpy(half, dims, sizeof half);
	half[1] = 4;
	memcpy(str, a->strides, sizeof str);
	str[1] *= 2;
	r5_array va = r5_array_view_strided(a, half, str, 0), vb = r5_array_view_strided(b, half, NULL, 0);
	assert_int_equal(r5_zwavelet_step(ctx, R5_WAVELET_HAAR, 1, 1, &vb, &va), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "strides differ"));
	r5_array_free(b);
	r5_array_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_haar_known), cmocka_unit_test(test_db4_filter), cmocka_unit_test(test_db8_filter),
		cmocka_unit_test(test_min_block), cmocka_unit_test(test_reconstruction),
		cmocka_unit_test(test_shift),      cmocka_unit_test(test_subset),     cmocka_unit_test(test_sparsity),
		cmocka_unit_test(test_element_map), cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
