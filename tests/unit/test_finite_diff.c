/* Finite-difference operator for TV (recon/linop/finite_diff.h): hand-computed values in 1D
 * (forward and adjoint, Neumann boundary), a 2D + time array against host loops of the
 * definition, the adjoint and normal properties (lintest.h) on spatial and temporal flags, the
 * directly applied normal at its edges (a dim of 2, flagged dims of size 1), the
 * norm bound |D|^2 <= 4 x (flagged dims) by power iteration (and close to the closed-form
 * largest eigenvalue sum_d 4 sin^2(pi (n_d - 1) / (2 n_d))), and errors naming the shapes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "recon/linop/finite_diff.h"
#include "recon/linop/lintest.h"
#include "recon/solve/power.h"

#include "cpu_fixture.h"

static r5_array *work_from(const long dims[R5_DIMS], const float complex *values)
{
	r5_array *host = NULL, *work = NULL;
	assert_int_equal(r5_array_alloc_host(dims, &host), R5_OK);
	memcpy(host->data, values, sizeof(float complex) * (size_t)r5_array_size(host));
	assert_int_equal(r5_array_to_work(ctx, host, &work), R5_OK);
	r5_array_free(host);
	return work;
}

/* op (mode 0 forward, 1 adjoint, 2 normal) applied to host values; result copied into result
 * (the output array starts as NaN: every value must be written) */
static void apply_host(r5_linop *op, int mode, const float complex *values, float complex *result)
{
	r5_array *in = work_from(mode == 1 ? op->odims : op->idims, values), *out = NULL, *host = NULL;
	assert_int_equal(r5_array_alloc_work(ctx, mode == 0 ? op->odims : op->idims, &out), R5_OK);
	assert_int_equal(r5_zfill(ctx, out, NAN), R5_OK);
	r5_status s = mode == 0 ? r5_linop_forward(ctx, op, out, in)
		      : mode == 1 ? r5_linop_adjoint(ctx, op, out, in)
				  : r5_linop_normal(ctx, op, out, in);
	assert_int_equal(s, R5_OK);
	assert_int_equal(r5_array_to_host(ctx, out, &host), R5_OK);
	memcpy(result, host->data, sizeof(float complex) * (size_t)r5_array_size(host));
	r5_array_free(host);
	r5_array_free(out);
	r5_array_free(in);
}

static void test_values_1d(void **state)
{
	(void)state;
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = 4;
	r5_linop *op = NULL;
	assert_int_equal(r5_linop_finite_diff(ctx, dims, R5_FLAG(0), R5_DIM_COEFF, &op), R5_OK);
	assert_int_equal(op->odims[R5_DIM_COEFF], 1);
	const float complex x[4] = {1, 4 + 1 * I, 9, 16 - 2 * I}, g[4] = {1, 2, 3 * I, 4};
	const float complex dx[4] = {3 + 1 * I, 5 - 1 * I, 7 - 2 * I, 0}, dhg[4] = {-1, -1, 2 - 3 * I, 3 * I};
	float complex result[4];
	apply_host(op, 0, x, result);
	for (int i = 0; i < 4; i++)
		assert_true(cabsf(result[i] - dx[i]) == 0.0f);
	apply_host(op, 1, g, result); /* g[3] is ignored: the forward writes 0 there */
	for (int i = 0; i < 4; i++)
		assert_true(cabsf(result[i] - dhg[i]) == 0.0f);
	r5_linop_free(op);
}

/* x [5, 4, 1, ..., time 3], flags x, y and time, stacked along the map dim */
static void test_values_2d_time(void **state)
{
	(void)state;
	long dims[R5_DIMS], strides[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = 5;
	dims[1] = 4;
	dims[R5_DIM_TIME] = 3;
	r5_dims_strides(strides, dims);
	const int part_dims[3] = {0, 1, R5_DIM_TIME};
	r5_linop *op = NULL;
	assert_int_equal(r5_linop_finite_diff(ctx, dims, R5_FLAG(0) | R5_FLAG(1) | R5_FLAG(R5_DIM_TIME), R5_DIM_MAP,
					      &op),
			 R5_OK);
	assert_int_equal(op->odims[R5_DIM_MAP], 3);
	long n = r5_dims_size(dims), ostrides[R5_DIMS];
	r5_dims_strides(ostrides, op->odims);
	long stack_stride = ostrides[R5_DIM_MAP]; /* the map dim lies between y and time */
	float complex *x = malloc(sizeof *x * (size_t)n), *g = malloc(sizeof *g * (size_t)(3 * n));
	float complex *fwd = malloc(sizeof *fwd * (size_t)(3 * n)), *adj = malloc(sizeof *adj * (size_t)n);
	for (long i = 0; i < n; i++)
		x[i] = (float)((i * 7) % 11) - 3.0f + (float)((i * 5) % 3) * I;
	for (long i = 0; i < 3 * n; i++)
		g[i] = (float)((i * 3) % 7) - 2.0f - (float)((i * 2) % 5) * I;
	apply_host(op, 0, x, fwd);
	apply_host(op, 1, g, adj);
	double worst = 0;
	float complex *expect_adj = calloc((size_t)n, sizeof *expect_adj);
	for (long t = 0; t < dims[R5_DIM_TIME]; t++)
		for (long y = 0; y < dims[1]; y++)
			for (long xi = 0; xi < dims[0]; xi++) {
				long c[R5_DIMS] = {0};
				c[0] = xi;
				c[1] = y;
				c[R5_DIM_TIME] = t;
				long i = xi * strides[0] + y * strides[1] + t * strides[R5_DIM_TIME];
				long io = xi * ostrides[0] + y * ostrides[1] + t * ostrides[R5_DIM_TIME];
				for (int k = 0; k < 3; k++) {
					int d = part_dims[k];
					float complex expect = c[d] + 1 < dims[d] ? x[i + strides[d]] - x[i] : 0;
					worst = fmax(worst, cabs(fwd[io + k * stack_stride] - expect));
					float complex gk = g[io + k * stack_stride];
					if (c[d] + 1 < dims[d]) { /* g[i] enters out[i + 1] with + and out[i] with - */
						expect_adj[i + strides[d]] += gk;
						expect_adj[i] -= gk;
					}
				}
			}
	for (long i = 0; i < n; i++)
		worst = fmax(worst, cabs(adj[i] - expect_adj[i]));
	assert_true(worst == 0.0);
	free(expect_adj);
	free(x);
	free(g);
	free(fwd);
	free(adj);
	r5_linop_free(op);
}

static void test_properties(void **state)
{
	(void)state;
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = 7;
	dims[1] = 6;
	dims[2] = 5;
	dims[R5_DIM_TIME] = 4;
	const unsigned long flag_sets[3] = {R5_FLAG(0) | R5_FLAG(1) | R5_FLAG(2), R5_FLAG(R5_DIM_TIME),
					    R5_FLAG(1) | R5_FLAG(3) | R5_FLAG(R5_DIM_TIME)};
	for (int c = 0; c < 3; c++) {
		r5_linop *op = NULL;
		assert_int_equal(r5_linop_finite_diff(ctx, dims, flag_sets[c], R5_DIM_COEFF, &op), R5_OK);
		r5_linop_errors err;
		assert_int_equal(r5_linop_property_test(ctx, op, 11u + (unsigned)c, &err), R5_OK);
		assert_true(err.adjoint < 1e-6);
		assert_true(err.normal < 1e-6);
		r5_linop_free(op);
	}
}

/* The normal is the Laplacian applied directly (finite_diff.h): against forward then adjoint
 * where the ends meet (a dim of 2) and beside a flagged dim of size 1, by hand in 1D, and all
 * zeros when no flagged dim has two samples. */
static void test_normal_edges(void **state)
{
	(void)state;
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = 2;
	dims[1] = 3;
	r5_linop *op = NULL;
	assert_int_equal(r5_linop_finite_diff(ctx, dims, R5_FLAG(0) | R5_FLAG(1) | R5_FLAG(2), R5_DIM_COEFF, &op), R5_OK);
	r5_linop_errors err;
	assert_int_equal(r5_linop_property_test(ctx, op, 21u, &err), R5_OK);
	assert_true(err.normal < 1e-6);
	r5_linop_free(op);

	r5_dims_ones(dims);
	dims[0] = 2;
	assert_int_equal(r5_linop_finite_diff(ctx, dims, R5_FLAG(0), R5_DIM_COEFF, &op), R5_OK);
	const float complex x[2] = {1, 4 + 1 * I}, expected[2] = {-3 - 1 * I, 3 + 1 * I};
	float complex result[3];
	apply_host(op, 2, x, result);
	for (int i = 0; i < 2; i++)
		assert_true(cabsf(result[i] - expected[i]) == 0.0f);
	r5_linop_free(op);

	r5_dims_ones(dims);
	dims[0] = 3;
	assert_int_equal(r5_linop_finite_diff(ctx, dims, R5_FLAG(1), R5_DIM_COEFF, &op), R5_OK);
	const float complex y[3] = {1, 2, 3};
	apply_host(op, 2, y, result);
	for (int i = 0; i < 3; i++)
		assert_true(cabsf(result[i]) == 0.0f);
	r5_linop_free(op);
}

static r5_status normal_op(r5_ctx *c, void *user, r5_array *out, const r5_array *in)
{
	return r5_linop_normal(c, user, out, in);
}

/* |D|^2 <= 4 K; the largest eigenvalue of D^H D is the sum over the dims of
 * 4 sin^2(pi (n - 1) / (2 n)) (Neumann Laplacian, separable) */
static void test_norm_bound(void **state)
{
	(void)state;
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = 16;
	dims[1] = 12;
	dims[R5_DIM_TIME] = 8;
	r5_linop *op = NULL;
	assert_int_equal(r5_linop_finite_diff(ctx, dims, R5_FLAG(0) | R5_FLAG(1) | R5_FLAG(R5_DIM_TIME), R5_DIM_COEFF,
					      &op),
			 R5_OK);
	double exact = 0;
	const long sizes[3] = {16, 12, 8};
	for (int k = 0; k < 3; k++) {
		double s = sin(3.14159265358979323846 * (double)(sizes[k] - 1) / (2.0 * (double)sizes[k]));
		exact += 4 * s * s;
	}
	r5_power_conf conf = {.max_iters = 2000, .tolerance = 1e-7};
	r5_power_info info;
	assert_int_equal(r5_power_max_eig(ctx, normal_op, op, dims, 5u, &conf, NULL, NULL, &info), R5_OK);
	print_message("finite differences: |D|^2 estimate %.6f after %d steps, exact %.6f, bound 12\n", info.max_eig,
		      info.iters, exact);
	assert_true(info.max_eig <= 12.0);
	assert_true(info.max_eig <= exact * (1 + 1e-5));
	assert_true(info.max_eig >= 0.99 * exact);
	r5_linop_free(op);
}

static void test_errors(void **state)
{
	(void)state;
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = 8;
	dims[1] = 8;
	r5_linop *op = (r5_linop *)&op;
	assert_int_equal(r5_linop_finite_diff(ctx, dims, 0, R5_DIM_COEFF, &op), R5_EINVAL);
	assert_null(op);
	assert_non_null(strstr(r5_last_error(), "finite differences on [8 8]"));
	assert_int_equal(r5_linop_finite_diff(ctx, dims, R5_FLAG(0), 1, &op), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "stack dimension 1"));
	assert_int_equal(r5_linop_finite_diff(ctx, dims, R5_FLAG(0), R5_DIMS, &op), R5_EINVAL);
	assert_int_equal(r5_linop_finite_diff(ctx, dims, R5_FLAG(1), 1, &op), R5_EINVAL);
	assert_null(op);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_values_1d),    cmocka_unit_test(test_values_2d_time),
		cmocka_unit_test(test_properties),   cmocka_unit_test(test_norm_bound),
		cmocka_unit_test(test_normal_edges), cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
