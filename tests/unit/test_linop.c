/* Operators and CG: adjoint identity <A x, y> = <x, A^H y> and normal = A^H A for every
 * operator (fft, sample, maps with 1 and 2 map sets, chains, SENSE with 1 and 2 maps, 2D and
 * 3D), shape errors naming the operator, and CG on a small SPD system. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "recon/linop/linop.h"
#include "recon/solve/cg.h"

#include "cpu_fixture.h"

static r5_array *random_work(const long dims[R5_DIMS], int binary)
{
	r5_array *a = NULL;
	assert_int_equal(r5_array_alloc_work(ctx, dims, &a), R5_OK);
	for (long i = 0; i < r5_array_size(a); i++)
		a->data[i] = binary ? (float)(rand() % 2) : (rand() / (float)RAND_MAX - 0.5f) + I * (rand() / (float)RAND_MAX - 0.5f);
	return a;
}

static void check(r5_linop *op)
{
	double adj = 1, nrm = 1;
	assert_int_equal(r5_linop_adjoint_test(ctx, op, 7, &adj, &nrm), R5_OK);
	print_message("%-24s adjoint %.2e normal %.2e\n", op->name, adj, nrm);
	assert_true(adj < 1e-5);
	assert_true(nrm < 1e-5);
	r5_linop_free(op);
}

static void test_adjoints(void **state)
{
	(void)state;
	for (int three_d = 0; three_d < 2; three_d++)
		for (int n_maps = 1; n_maps <= 2; n_maps++) {
			long mdims[R5_DIMS], kdims[R5_DIMS], sdims[R5_DIMS];
			r5_dims_ones(mdims);
			mdims[0] = 12;
			mdims[1] = 10;
			mdims[2] = three_d ? 6 : 1;
			mdims[3] = 4;
			mdims[4] = n_maps;
			r5_dims_copy(kdims, mdims);
			kdims[4] = 1;
			r5_dims_ones(sdims);
			sdims[1] = mdims[1];
			sdims[2] = mdims[2];
			r5_array *maps = random_work(mdims, 0), *mask = random_work(sdims, 1);
			unsigned long flags = 2 | (three_d ? 4 : 0);
			r5_linop *op = NULL;
			assert_int_equal(r5_linop_fft(ctx, kdims, flags | 1, &op), R5_OK);
			check(op);
			assert_int_equal(r5_linop_sample(ctx, kdims, mask, &op), R5_OK);
			check(op);
			assert_int_equal(r5_linop_maps(ctx, maps, &op), R5_OK);
			check(op);
			assert_int_equal(r5_linop_sense(ctx, maps, mask, flags, &op), R5_OK);
			check(op);
			r5_array_free(maps);
			r5_array_free(mask);
		}
}

static void test_shape_error(void **state)
{
	(void)state;
	long dims[R5_DIMS], other[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = 8;
	r5_dims_copy(other, dims);
	other[0] = 9;
	r5_linop *op = NULL, *b = NULL, *c = NULL;
	assert_int_equal(r5_linop_fft(ctx, dims, 1, &op), R5_OK);
	r5_array *x = random_work(other, 0), *y = random_work(dims, 0);
	assert_int_equal(r5_linop_forward(ctx, op, y, x), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "fft"));
	assert_int_equal(r5_linop_fft(ctx, other, 1, &b), R5_OK);
	assert_int_equal(r5_linop_chain(ctx, op, b, &c), R5_EINVAL); /* frees both */
	assert_null(c);
	r5_array_free(x);
	r5_array_free(y);
}

/* A = B^H B + I (n = 20) */
struct spd {
	float complex b[20 * 20];
};

static r5_status spd_apply(r5_ctx *c, void *user, r5_array *out, const r5_array *in)
{
	(void)c;
	struct spd *s = user;
	float complex tmp[20];
	for (int i = 0; i < 20; i++) {
		tmp[i] = 0;
		for (int j = 0; j < 20; j++)
			tmp[i] += s->b[i + 20 * j] * in->data[j];
	}
	for (int i = 0; i < 20; i++) {
		out->data[i] = in->data[i];
		for (int j = 0; j < 20; j++)
			out->data[i] += conjf(s->b[j + 20 * i]) * tmp[j];
	}
	return R5_OK;
}

static void test_cg(void **state)
{
	(void)state;
	struct spd s;
	for (int i = 0; i < 400; i++)
		s.b[i] = (rand() / (float)RAND_MAX - 0.5f) + I * (rand() / (float)RAND_MAX - 0.5f);
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = 20;
	r5_array *truth = random_work(dims, 0), *b = random_work(dims, 0), *x = NULL;
	assert_int_equal(r5_array_zeros(ctx, R5_HOST, dims, &x), R5_OK);
	spd_apply(ctx, &s, b, truth);
	r5_cg_conf conf = r5_cg_defaults;
	conf.max_iters = 100;
	conf.tolerance = 1e-6;
	r5_cg_info info;
	assert_int_equal(r5_cg_solve(ctx, &conf, spd_apply, &s, b, x, &info), R5_OK);
	double err = 0, ref = 0;
	for (int i = 0; i < 20; i++) {
		err += pow(cabsf(x->data[i] - truth->data[i]), 2);
		ref += pow(cabsf(truth->data[i]), 2);
	}
	print_message("cg: %d iterations, residual %.2e, error %.2e\n", info.iters, info.rel_residual, sqrt(err / ref));
	assert_true(sqrt(err / ref) < 1e-4);
	/* Tikhonov: (A + lambda I) x = b with lambda large gives x close to b / lambda */
	conf.lambda = 1e4f;
	assert_int_equal(r5_cg_solve(ctx, &conf, spd_apply, &s, b, x, &info), R5_OK);
	assert_true(cabsf(x->data[0] * 1e4f - b->data[0]) < 0.05f * cabsf(b->data[0]) + 1e-3f);
	r5_array_free(truth);
	r5_array_free(b);
	r5_array_free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_adjoints),
		cmocka_unit_test(test_shape_error),
		cmocka_unit_test(test_cg),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
