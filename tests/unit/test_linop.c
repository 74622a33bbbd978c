/* Operators and CG. Every operator of recon/linop and composites of them (the shared case table
 * of recon/linop/lintest.c, which the GPU suite runs on a CUDA context too): adjoint identity
 * <A x, y> = <x, A^H y>, normal = A^H A, in-place = apart where declared, and no scratch growth
 * on a second application. Then the aliasing rule, reference counts, shape errors naming the
 * operator, the bytes the SENSE operator holds (384x384x256x12 built without its data), and CG
 * on a small SPD system. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "recon/linop/lintest.h"
#include "recon/solve/cg.h"

#include "cpu_fixture.h"

#define TOL_PROPERTY 1e-5 /* single precision; measured worst: see test_properties' output */

static unsigned fill_state = 99;

static r5_array *random_work(const long dims[R5_DIMS], int binary)
{
	r5_array *a = NULL;
	assert_int_equal(r5_array_alloc_work(ctx, dims, &a), R5_OK);
	assert_int_equal(r5_lintest_fill(ctx, a, binary, &fill_state), R5_OK);
	return a;
}

static void test_properties(void **state)
{
	(void)state;
	double worst_adj = 0, worst_nrm = 0, worst_inplace = 0;
	for (int i = 0; i < r5_lintest_n_cases; i++) {
		const r5_lintest_case *c = &r5_lintest_cases[i];
		r5_lintest_kit kit = {.state = 1000u + (unsigned)i};
		r5_linop *op = NULL;
		r5_linop_errors e = {1, 1, 1}, again = {1, 1, 1};
		if (c->build(ctx, &kit, &op) != R5_OK)
			fail_msg("%s: %s", c->name, r5_last_error());
		if (r5_linop_property_test(ctx, op, 7, &e) != R5_OK)
			fail_msg("%s: %s", c->name, r5_last_error());
		long held = r5_linop_bytes_held(op);
		assert_int_equal(r5_linop_property_test(ctx, op, 8, &again), R5_OK);
		print_message("%-26s %-30s adjoint %.1e normal %.1e in-place %.1e held %ld B\n", c->name, op->name,
			      e.adjoint, e.normal, e.in_place, held);
		if (!(e.adjoint < TOL_PROPERTY && e.normal < TOL_PROPERTY && e.in_place < TOL_PROPERTY))
			fail_msg("%s: errors adjoint %.2e normal %.2e in-place %.2e", c->name, e.adjoint, e.normal,
				 e.in_place);
		assert_true(again.adjoint < TOL_PROPERTY && again.normal < TOL_PROPERTY);
		assert_int_equal(r5_linop_bytes_held(op), held); /* scratch kept, never per call */
		worst_adj = fmax(worst_adj, e.adjoint);
		worst_nrm = fmax(worst_nrm, e.normal);
		worst_inplace = fmax(worst_inplace, e.in_place);
		r5_linop_free(op);
		r5_lintest_kit_free(&kit);
	}
	print_message("%d operators: worst adjoint %.2e, normal %.2e, in-place %.2e (tolerance %.0e)\n",
		      r5_lintest_n_cases, worst_adj, worst_nrm, worst_inplace, TOL_PROPERTY);
}

/* out may be in only where declared, and exactly; a partial overlap is always refused */
static void test_aliasing(void **state)
{
	(void)state;
	long dims[R5_DIMS], big[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = 8, dims[1] = 6;
	r5_dims_copy(big, dims);
	big[1] = 7;
	r5_linop *f = NULL, *sum = NULL;
	assert_int_equal(r5_linop_fft(ctx, dims, 3, &f), R5_OK);
	r5_array *x = random_work(dims, 0), *whole = random_work(big, 0);
	assert_int_equal(r5_linop_forward(ctx, f, x, x), R5_OK); /* fft: in place declared */
	r5_array shifted = r5_array_view_strided(whole, dims, NULL, 8); /* one row up: overlaps `lower` */
	r5_array lower = r5_array_view_strided(whole, dims, NULL, 0);
	assert_int_equal(r5_linop_forward(ctx, f, &shifted, &lower), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "operator fft: forward output overlaps its input"));
	assert_int_equal(r5_linop_sum(ctx, r5_linop_ref(f), r5_linop_ref(f), &sum), R5_OK);
	assert_int_equal(r5_linop_adjoint(ctx, sum, x, x), R5_EINVAL); /* sum: out and in apart */
	assert_non_null(strstr(r5_last_error(), "fft+fft: adjoint output overlaps its input"));
	assert_int_equal(r5_linop_normal(ctx, sum, &shifted, &lower), R5_EINVAL);
	r5_array *y = random_work(dims, 0);
	assert_int_equal(r5_linop_normal(ctx, sum, y, x), R5_OK);
	r5_linop_free(sum);
	r5_linop_free(f);
	r5_array_free(x);
	r5_array_free(y);
	r5_array_free(whole);
}

/* composites take the caller's reference; r5_linop_ref keeps an operand for another use */
static void test_refs(void **state)
{
	(void)state;
	long dims[R5_DIMS], other[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = 8;
	r5_dims_copy(other, dims);
	other[0] = 9;
	r5_linop *f = NULL, *g = NULL, *scaled = NULL, *sum = NULL, *bad = NULL;
	assert_int_equal(r5_linop_fft(ctx, dims, 1, &f), R5_OK);
	assert_int_equal(f->refs, 1);
	assert_int_equal(r5_linop_scale(ctx, 2.0f, r5_linop_ref(f), &scaled), R5_OK);
	assert_int_equal(r5_linop_sum(ctx, r5_linop_ref(f), r5_linop_ref(scaled), &sum), R5_OK);
	assert_int_equal(f->refs, 3); /* mine, scaled's, sum's */
	r5_linop_free(scaled);        /* sum still holds it */
	assert_int_equal(f->refs, 3);
	r5_array *x = random_work(dims, 0), *y = random_work(dims, 0), *z = random_work(dims, 0);
	assert_int_equal(r5_linop_forward(ctx, sum, y, x), R5_OK); /* 3 F x */
	assert_int_equal(r5_linop_forward(ctx, f, z, x), R5_OK);
	assert_int_equal(r5_zaxpy(ctx, y, -3.0f, z), R5_OK);
	double diff = 1, ref = 0;
	assert_int_equal(r5_znorm(ctx, y, &diff), R5_OK);
	assert_int_equal(r5_znorm(ctx, z, &ref), R5_OK);
	assert_true(diff < 1e-6 * ref);
	r5_linop_free(sum);
	assert_int_equal(f->refs, 1);
	/* a failed composite releases the references it was given */
	assert_int_equal(r5_linop_fft(ctx, other, 1, &g), R5_OK);
	assert_int_equal(r5_linop_sum(ctx, r5_linop_ref(f), r5_linop_ref(g), &bad), R5_EINVAL);
	assert_null(bad);
	assert_non_null(strstr(r5_last_error(), "operator sum: fft takes [8], fft takes [9]"));
	assert_int_equal(f->refs, 1);
	assert_int_equal(g->refs, 1);
	assert_int_equal(r5_linop_vstack(ctx, R5_DIMS, r5_linop_ref(f), r5_linop_ref(f), &bad), R5_EINVAL);
	assert_int_equal(f->refs, 1);
	r5_linop_free(g);
	r5_linop_free(f);
	r5_array_free(x);
	r5_array_free(y);
	r5_array_free(z);
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

static long bytes_of(long nx, long ny, long nz, long coils)
{
	return nx * ny * nz * coils * (long)sizeof(float complex);
}

/* The SENSE operator at vessel-wall size holds no coil-sized array before it is applied: built
 * on maps that are a zero-stride view of one value (the operator does not read them before its
 * first application), it holds the shifted mask alone. */
static void test_bytes_held_large(void **state)
{
	(void)state;
	const long nx = 384, ny = 384, nz = 256, coils = 12;
	long mdims[R5_DIMS], kdims[R5_DIMS], zero[R5_DIMS] = {0};
	r5_dims_ones(mdims);
	mdims[0] = nx, mdims[1] = ny, mdims[2] = nz, mdims[3] = coils;
	r5_dims_ones(kdims);
	kdims[1] = ny, kdims[2] = nz;
	r5_array *one = random_work(kdims, 0), *mask = random_work(kdims, 1);
	r5_array maps = r5_array_view_strided(one, mdims, zero, 0);
	r5_linop *op = NULL;
	assert_int_equal(r5_linop_sense(ctx, &maps, mask, R5_FLAG(1) | R5_FLAG(2), &op), R5_OK);
	long held = r5_linop_bytes_held(op), coil_images = bytes_of(nx, ny, nz, coils);
	print_message("sense %ldx%ldx%ldx%ld: holds %ld B before its first application (coil images are %ld B); "
		      "after it %ld B\n", nx, ny, nz, coils, held, coil_images, held + coil_images);
	assert_int_equal(held, bytes_of(1, ny, nz, 1)); /* the shifted mask */
	r5_linop_free(op);
	r5_array_free(one);
	r5_array_free(mask);
}

/* What the SENSE operators hold after each kind of application, against the arrays they need:
 * plain: one array of coil images; grouped: one group's coil images and one image. */
static void test_bytes_held(void **state)
{
	(void)state;
	const long nx = 24, ny = 20, nz = 8, coils = 12, group = 5;
	long mdims[R5_DIMS], kdims[R5_DIMS];
	r5_dims_ones(mdims);
	mdims[0] = nx, mdims[1] = ny, mdims[2] = nz, mdims[3] = coils;
	r5_dims_ones(kdims);
	kdims[1] = ny, kdims[2] = nz;
	r5_array *maps = random_work(mdims, 0), *mask = random_work(kdims, 1);
	const long mask_bytes = bytes_of(1, ny, nz, 1), image = bytes_of(nx, ny, nz, 1);
	for (int grouped = 0; grouped < 2; grouped++) {
		r5_linop *op = NULL;
		assert_int_equal(r5_linop_sense_grouped(ctx, maps, mask, R5_FLAG(1) | R5_FLAG(2), grouped ? group : 0,
							NULL, NULL, &op), R5_OK);
		/* grouped: fft-sample of 5 coils shared by two groups, one of 2 coils */
		long before = grouped ? 2 * mask_bytes : mask_bytes;
		long after = before + (grouped ? bytes_of(nx, ny, nz, group) + image : bytes_of(nx, ny, nz, coils));
		assert_int_equal(r5_linop_bytes_held(op), before);
		r5_array *x = random_work(op->idims, 0), *nx_out = random_work(op->idims, 0);
		r5_array *k = random_work(op->odims, 0);
		assert_int_equal(r5_linop_normal(ctx, op, nx_out, x), R5_OK);
		print_message("%s %ldx%ldx%ldx%ld: %ld B before, %ld B after one normal\n", op->name, nx, ny, nz, coils,
			      before, r5_linop_bytes_held(op));
		assert_int_equal(r5_linop_bytes_held(op), after);
		assert_int_equal(r5_linop_forward(ctx, op, k, x), R5_OK);
		assert_int_equal(r5_linop_adjoint(ctx, op, x, k), R5_OK);
		assert_int_equal(r5_linop_bytes_held(op), after);
		r5_linop_free(op);
		r5_array_free(x);
		r5_array_free(nx_out);
		r5_array_free(k);
	}
	/* the maps operator's own normal: one volume, never coil images */
	r5_linop *s_op = NULL;
	assert_int_equal(r5_linop_maps(ctx, maps, &s_op), R5_OK);
	assert_int_equal(r5_linop_bytes_held(s_op), 0);
	r5_array *x = random_work(s_op->idims, 0), *y = random_work(s_op->idims, 0);
	assert_int_equal(r5_linop_normal(ctx, s_op, y, x), R5_OK);
	assert_int_equal(r5_linop_bytes_held(s_op), image);
	r5_linop_free(s_op);
	r5_array_free(x);
	r5_array_free(y);
	r5_array_free(maps);
	r5_array_free(mask);
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
	/* CG stops at relative residual 1e-6: error measured 1.04e-6 (1.86e-6 with the random matrix
	 * an earlier version of this file drew); the bound was 1e-4 */
	assert_true(sqrt(err / ref) < 2.5e-6);
	/* Tikhonov, exactly: b = (A + lambda I) truth, so (A + lambda I) x = b gives x = truth; with
	 * lambda ignored x would be truth + lambda A^-1 truth, far off (the check was
	 * |lambda x_0 - b_0| < 5 % at lambda 1e4, where x ~ b / lambda) */
	const float lambda = 3.0f;
	spd_apply(ctx, &s, b, truth);
	for (int i = 0; i < 20; i++)
		b->data[i] += lambda * truth->data[i];
	assert_int_equal(r5_zfill(ctx, x, 0), R5_OK);
	conf.lambda = lambda;
	assert_int_equal(r5_cg_solve(ctx, &conf, spd_apply, &s, b, x, &info), R5_OK);
	err = 0;
	for (int i = 0; i < 20; i++)
		err += pow(cabsf(x->data[i] - truth->data[i]), 2);
	print_message("cg, Tikhonov lambda %.0f: %d iterations, error %.2e\n", lambda, info.iters, sqrt(err / ref));
	assert_true(sqrt(err / ref) < 2.5e-6); /* measured 1.07e-6 */
	r5_array_free(truth);
	r5_array_free(b);
	r5_array_free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_properties),
		cmocka_unit_test(test_aliasing),
		cmocka_unit_test(test_refs),
		cmocka_unit_test(test_shape_error),
		cmocka_unit_test(test_bytes_held_large),
		cmocka_unit_test(test_bytes_held),
		cmocka_unit_test(test_cg),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
