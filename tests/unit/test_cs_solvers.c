/* FISTA (recon/solve/fista.h) and ADMM (recon/solve/admm.h) on problems whose solutions are
 * known: with A = I one FISTA step at L = 1 is the prox, i.e. the exact L1 solution soft(y);
 * with a unitary A (centred FFT) the solution is soft(A^H y), reached with L from the power
 * iteration; on an undersampled FFT (random mask, sparse truth) the objective falls step by step
 * with restart and restart beats plain FISTA; ADMM's TV denoising of a noiseless 1D staircase
 * matches the closed form (each piece moves by lambda / length per neighbour, up towards a
 * higher neighbour, down towards a lower one, while the order of the pieces is kept); ADMM with
 * T = I equals FISTA's L1 solution; the stop hook stops both with its status; errors name the
 * solver and the shapes. */
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
#include "recon/solve/admm.h"
#include "recon/solve/fista.h"

#include "cpu_fixture.h"

static long dims_1d(long dims[R5_DIMS], long n)
{
	r5_dims_ones(dims);
	dims[0] = n;
	return n;
}

static r5_array *work_random(const long dims[R5_DIMS], unsigned seed)
{
	r5_array *a = NULL;
	assert_int_equal(r5_array_alloc_work(ctx, dims, &a), R5_OK);
	assert_int_equal(r5_lintest_fill(ctx, a, 0, &seed), R5_OK);
	return a;
}

static r5_array *host_of(const r5_array *a)
{
	r5_array *h = NULL;
	assert_int_equal(r5_array_to_host(ctx, a, &h), R5_OK);
	return h;
}

/* max |a - b| over the elements, both work arrays */
static double max_diff(const r5_array *a, const r5_array *b)
{
	r5_array *ha = host_of(a), *hb = host_of(b);
	double worst = 0;
	for (long i = 0; i < r5_array_size(ha); i++)
		worst = fmax(worst, cabs(ha->data[i] - hb->data[i]));
	r5_array_free(ha);
	r5_array_free(hb);
	return worst;
}

/* out = soft(in, t) in double on the host, back to a work array */
static r5_array *soft_of(const r5_array *in, double t)
{
	r5_array *h = host_of(in), *out = NULL;
	for (long i = 0; i < r5_array_size(h); i++) {
		double m = cabs(h->data[i]);
		h->data[i] = m > t ? (float complex)(h->data[i] * ((m - t) / m)) : 0;
	}
	assert_int_equal(r5_array_to_work(ctx, h, &out), R5_OK);
	r5_array_free(h);
	return out;
}

/* 1/2 |A x - y|^2 + lambda |x|_1 in double */
static double objective(r5_linop *A, const r5_array *y, const r5_array *x, double lambda)
{
	r5_array *r = NULL;
	assert_int_equal(r5_array_alloc_work(ctx, A->odims, &r), R5_OK);
	assert_int_equal(r5_linop_forward(ctx, A, r, x), R5_OK);
	assert_int_equal(r5_zaxpy(ctx, r, -1.0f, y), R5_OK);
	double norm = 0, l1 = 0;
	assert_int_equal(r5_znorm(ctx, r, &norm), R5_OK);
	r5_array *h = host_of(x);
	for (long i = 0; i < r5_array_size(h); i++)
		l1 += cabs(h->data[i]);
	r5_array_free(h);
	r5_array_free(r);
	return 0.5 * norm * norm + lambda * l1;
}

static void test_fista_identity(void **state)
{
	(void)state;
	long dims[R5_DIMS];
	dims_1d(dims, 64);
	r5_linop *A = NULL;
	r5_prox *g = NULL;
	assert_int_equal(r5_linop_identity(ctx, dims, &A), R5_OK);
	assert_int_equal(r5_prox_l1(ctx, dims, 0.3f, &g), R5_OK);
	r5_array *y = work_random(dims, 3u), *x = work_random(dims, 4u), *exact = soft_of(y, 0.3);
	r5_fista_conf conf = r5_fista_defaults;
	conf.lipschitz = 1.0;
	r5_iter *it = NULL;
	assert_int_equal(r5_fista_init(ctx, &conf, A, y, g, x, &it), R5_OK);
	assert_int_equal(r5_iter_step(it), R5_OK);
	double err1 = max_diff(x, exact);
	assert_int_equal(r5_iter_run(it, NULL, NULL), R5_OK);
	r5_fista_info info;
	assert_int_equal(r5_fista_result(it, &info), R5_OK);
	print_message("FISTA, A = I, L = 1: error %.3g after one step, done after %d (change %.3g)\n", err1,
		      info.iters, info.rel_change);
	assert_true(err1 <= 1e-6);
	assert_true(info.iters == 2 && info.rel_change == 0.0); /* the fixed point is reached: done */
	r5_iter_free(it);

	/* L asked for: 1.05 x the power estimate of 1, converging geometrically to the same point */
	conf.lipschitz = 0;
	conf.tolerance = 1e-7;
	unsigned seed = 4u;
	assert_int_equal(r5_lintest_fill(ctx, x, 0, &seed), R5_OK);
	assert_int_equal(r5_fista_init(ctx, &conf, A, y, g, x, &it), R5_OK);
	assert_int_equal(r5_iter_run(it, NULL, NULL), R5_OK);
	assert_int_equal(r5_fista_result(it, &info), R5_OK);
	double err = max_diff(x, exact);
	print_message("FISTA, A = I, L estimated %.6f: error %.3g after %d steps\n", info.lipschitz, err, info.iters);
	assert_true(fabs(info.lipschitz - 1.05) < 1e-4);
	assert_true(err <= 1e-6 && info.iters < conf.max_iters);
	r5_iter_free(it);
	r5_array_free(exact);
	r5_array_free(x);
	r5_array_free(y);
	r5_prox_free(g);
	r5_linop_free(A);
}

/* A = centred unitary FFT: argmin 1/2 |F x - y|^2 + lambda |x|_1 = soft(F^H y, lambda) */
static void test_fista_unitary(void **state)
{
	(void)state;
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = 16;
	dims[1] = 12;
	r5_linop *A = NULL;
	r5_prox *g = NULL;
	assert_int_equal(r5_linop_fft(ctx, dims, R5_FLAG(0) | R5_FLAG(1), &A), R5_OK);
	assert_int_equal(r5_prox_l1(ctx, dims, 1.0f, &g), R5_OK);
	r5_array *y = work_random(dims, 5u), *x = NULL, *fhy = NULL;
	assert_int_equal(r5_array_alloc_work(ctx, dims, &x), R5_OK);
	assert_int_equal(r5_array_alloc_work(ctx, dims, &fhy), R5_OK);
	assert_int_equal(r5_zfill(ctx, x, 0), R5_OK);
	assert_int_equal(r5_linop_adjoint(ctx, A, fhy, y), R5_OK);
	r5_array *exact = soft_of(fhy, 0.25);
	r5_fista_conf conf = r5_fista_defaults;
	conf.lambda = 0.25f;
	conf.max_iters = 200;
	conf.tolerance = 1e-7;
	r5_iter *it = NULL;
	assert_int_equal(r5_fista_init(ctx, &conf, A, y, g, x, &it), R5_OK);
	assert_int_equal(r5_iter_run(it, NULL, NULL), R5_OK);
	r5_fista_info info;
	assert_int_equal(r5_fista_result(it, &info), R5_OK);
	double err = max_diff(x, exact);
	print_message("FISTA, unitary FFT: L %.6f, error %.3g after %d steps (%d restarts)\n", info.lipschitz, err,
		      info.iters, info.restarts);
	assert_true(err <= 1e-5 && info.iters < conf.max_iters);
	r5_iter_free(it);
	r5_array_free(exact);
	r5_array_free(fhy);
	r5_array_free(x);
	r5_array_free(y);
	r5_prox_free(g);
	r5_linop_free(A);
}

/* An undersampled 1D FFT (random mask, about half the samples) with a sparse truth */
typedef struct cs_problem {
	long dims[R5_DIMS];
	r5_array *mask, *truth, *y;
	r5_linop *A;
	r5_prox *g;
} cs_problem;

static void cs_problem_make(cs_problem *p)
{
	long n = dims_1d(p->dims, 96);
	unsigned seed = 21u;
	assert_int_equal(r5_array_alloc_work(ctx, p->dims, &p->mask), R5_OK);
	assert_int_equal(r5_lintest_fill(ctx, p->mask, 1, &seed), R5_OK);
	r5_array *truth = NULL;
	assert_int_equal(r5_array_zeros(ctx, R5_HOST, p->dims, &truth), R5_OK);
	const long spikes[6] = {3, 17, 40, 41, 66, 90};
	for (int k = 0; k < 6; k++)
		truth->data[spikes[k] % n] = (1.0f + 0.3f * (float)k) * cexpf(I * 0.7f * (float)k);
	assert_int_equal(r5_array_to_work(ctx, truth, &p->truth), R5_OK);
	r5_array_free(truth);
	assert_int_equal(r5_linop_fft_sample(ctx, p->dims, R5_FLAG(0), p->mask, &p->A), R5_OK);
	assert_int_equal(r5_array_alloc_work(ctx, p->dims, &p->y), R5_OK);
	assert_int_equal(r5_linop_forward(ctx, p->A, p->y, p->truth), R5_OK);
	assert_int_equal(r5_prox_l1(ctx, p->dims, 1.0f, &p->g), R5_OK);
}

static void cs_problem_free(cs_problem *p)
{
	r5_prox_free(p->g);
	r5_linop_free(p->A);
	r5_array_free(p->y);
	r5_array_free(p->truth);
	r5_array_free(p->mask);
}

#define CS_LAMBDA 0.02f

/* FISTA from x = 0 for iters steps (restart on or off); objectives per step in f (may be NULL) */
static r5_array *fista_run(cs_problem *p, int restart, int iters, double *f, int *restarts)
{
	r5_array *x = NULL;
	assert_int_equal(r5_array_alloc_work(ctx, p->dims, &x), R5_OK);
	assert_int_equal(r5_zfill(ctx, x, 0), R5_OK);
	r5_fista_conf conf = r5_fista_defaults;
	conf.lambda = CS_LAMBDA;
	conf.lipschitz = 1.0; /* F^H M F has largest eigenvalue 1 */
	conf.restart = restart;
	conf.max_iters = iters;
	r5_iter *it = NULL;
	assert_int_equal(r5_fista_init(ctx, &conf, p->A, p->y, p->g, x, &it), R5_OK);
	for (int k = 0; !r5_iter_done(it); k++) {
		assert_int_equal(r5_iter_step(it), R5_OK);
		if (f)
			f[k] = objective(p->A, p->y, x, CS_LAMBDA);
	}
	r5_fista_info info;
	assert_int_equal(r5_fista_result(it, &info), R5_OK);
	if (restarts)
		*restarts = info.restarts;
	r5_iter_free(it);
	return x;
}

static void test_fista_restart(void **state)
{
	(void)state;
	cs_problem p;
	cs_problem_make(&p);
	enum { N = 60, K = 20 };
	double f_restart[N], f_plain[N];
	int restarts = 0, plain_restarts = 0;
	r5_array *x_star = fista_run(&p, 1, 3000, NULL, NULL);
	double f_star = objective(p.A, p.y, x_star, CS_LAMBDA);
	r5_array *x = fista_run(&p, 1, N, f_restart, &restarts);
	r5_array *x_plain = fista_run(&p, 0, N, f_plain, &plain_restarts);
	/* rises relative to F: restart's are the objective's float rounding (F about 0.2 in single
	 * precision sums: 4.3e-8 measured); plain FISTA's momentum overshoots */
	double worst_rise = 0, plain_rise = 0;
	for (int k = 1; k < N; k++) {
		worst_rise = fmax(worst_rise, (f_restart[k] - f_restart[k - 1]) / f_restart[k - 1]);
		plain_rise = fmax(plain_rise, (f_plain[k] - f_plain[k - 1]) / f_plain[k - 1]);
	}
	print_message("FISTA restart: F* %.9g; after %d steps F - F* %.3g with restart (%d restarts by step %d), %.3g "
		      "plain; worst relative rise %.3g with restart, %.3g plain\n",
		      f_star, K, f_restart[K - 1] - f_star, restarts, N, f_plain[K - 1] - f_star, worst_rise,
		      plain_rise);
	assert_true(plain_restarts == 0 && restarts > 0);
	assert_true(worst_rise <= 2e-7);
	assert_true(plain_rise > 1e-5);
	assert_true(f_restart[K - 1] - f_star < 0.1 * (f_plain[K - 1] - f_star));
	r5_array_free(x_plain);
	r5_array_free(x);
	r5_array_free(x_star);
	cs_problem_free(&p);
}

/* ADMM, T = I, L1: the same minimiser as FISTA's */
static void test_admm_equals_fista(void **state)
{
	(void)state;
	cs_problem p;
	cs_problem_make(&p);
	r5_array *x_fista = fista_run(&p, 1, 3000, NULL, NULL), *x = NULL;
	assert_int_equal(r5_array_alloc_work(ctx, p.dims, &x), R5_OK);
	assert_int_equal(r5_zfill(ctx, x, 0), R5_OK);
	r5_linop *T = NULL;
	assert_int_equal(r5_linop_identity(ctx, p.dims, &T), R5_OK);
	r5_admm_term term = {.op = T, .prox = p.g, .lambda = CS_LAMBDA};
	r5_admm_conf conf = r5_admm_defaults;
	conf.max_iters = 1000;
	conf.rho = 0.05f;
	conf.tolerance = 1e-7;
	r5_iter *it = NULL;
	assert_int_equal(r5_admm_init(ctx, &conf, p.A, p.y, &term, 1, x, &it), R5_OK);
	assert_int_equal(r5_iter_run(it, NULL, NULL), R5_OK);
	r5_admm_info info;
	assert_int_equal(r5_admm_result(it, &info), R5_OK);
	double diff = max_diff(x, x_fista), truth_err = max_diff(x, p.truth);
	print_message("ADMM (T = I) vs FISTA: max difference %.3g after %d steps (%ld CG), primal residual %.3g; "
		      "truth %.3g away\n",
		      diff, info.iters, info.cg_iters, info.primal_residual, truth_err);
	assert_true(diff <= 1e-4 && info.primal_residual <= 1e-3);
	r5_iter_free(it);
	r5_linop_free(T);
	r5_array_free(x);
	r5_array_free(x_fista);
	cs_problem_free(&p);
}

/* TV denoising of a staircase (A = I): the closed form of the minimiser */
static void test_admm_tv_staircase(void **state)
{
	(void)state;
	const long lengths[4] = {10, 12, 8, 14};
	const double values[4] = {0, 2, 1, 3}, lambda = 0.5;
	long dims[R5_DIMS], n = dims_1d(dims, 44);
	r5_array *host = NULL, *expect = NULL, *y = NULL, *x = NULL;
	assert_int_equal(r5_array_alloc_host(dims, &host), R5_OK);
	assert_int_equal(r5_array_alloc_host(dims, &expect), R5_OK);
	for (long piece = 0, i = 0; piece < 4; piece++) {
		double shift = 0; /* lambda / length towards each neighbour */
		if (piece > 0)
			shift += (values[piece - 1] > values[piece] ? 1 : -1) * lambda / (double)lengths[piece];
		if (piece < 3)
			shift += (values[piece + 1] > values[piece] ? 1 : -1) * lambda / (double)lengths[piece];
		for (long k = 0; k < lengths[piece]; k++, i++) {
			host->data[i] = (float)values[piece];
			expect->data[i] = (float)(values[piece] + shift);
		}
	}
	assert_true(n == 44);
	assert_int_equal(r5_array_to_work(ctx, host, &y), R5_OK);
	assert_int_equal(r5_array_alloc_work(ctx, dims, &x), R5_OK);
	assert_int_equal(r5_zfill(ctx, x, 0), R5_OK);
	r5_linop *A = NULL, *D = NULL;
	r5_prox *g = NULL;
	assert_int_equal(r5_linop_identity(ctx, dims, &A), R5_OK);
	assert_int_equal(r5_linop_finite_diff(ctx, dims, R5_FLAG(0), 1, &D), R5_OK);
	assert_int_equal(r5_prox_l1(ctx, D->odims, 1.0f, &g), R5_OK);
	r5_admm_term term = {.op = D, .prox = g, .lambda = (float)lambda};
	r5_admm_conf conf = r5_admm_defaults;
	conf.max_iters = 2000;
	conf.rho = 4.0f; /* stops at 1e-8 change: errors 3e-4, 7e-5, 1e-6 for rho 0.25, 1, 4 */
	conf.cg_iters = 30;
	conf.tolerance = 1e-8;
	r5_iter *it = NULL;
	assert_int_equal(r5_admm_init(ctx, &conf, A, y, &term, 1, x, &it), R5_OK);
	assert_int_equal(r5_iter_run(it, NULL, NULL), R5_OK);
	r5_admm_info info;
	assert_int_equal(r5_admm_result(it, &info), R5_OK);
	r5_array *hx = host_of(x);
	double worst = 0;
	for (long i = 0; i < n; i++)
		worst = fmax(worst, cabs(hx->data[i] - expect->data[i]));
	print_message("ADMM TV staircase: max error %.3g after %d steps (%ld CG), primal residual %.3g\n", worst,
		      info.iters, info.cg_iters, info.primal_residual);
	assert_true(worst <= 1e-4 && info.primal_residual <= 1e-3);
	r5_array_free(hx);
	r5_iter_free(it);
	r5_prox_free(g);
	r5_linop_free(D);
	r5_linop_free(A);
	r5_array_free(x);
	r5_array_free(y);
	r5_array_free(expect);
	r5_array_free(host);
}

static r5_status stop_after_3(void *user, int iter, int max_iters, double progress)
{
	(void)max_iters;
	(void)progress;
	*(int *)user = iter;
	return iter >= 3 ? r5_set_error(R5_ECANCELLED, "test: stop after %d", iter) : R5_OK;
}

static void test_hook_stops(void **state)
{
	(void)state;
	cs_problem p;
	cs_problem_make(&p);
	r5_array *x = NULL;
	assert_int_equal(r5_array_alloc_work(ctx, p.dims, &x), R5_OK);
	assert_int_equal(r5_zfill(ctx, x, 0), R5_OK);
	r5_iter *it = NULL;
	int seen = 0;
	assert_int_equal(r5_fista_init(ctx, NULL, p.A, p.y, p.g, x, &it), R5_OK);
	assert_int_equal(r5_iter_run(it, stop_after_3, &seen), R5_ECANCELLED);
	assert_true(seen == 3 && it->iter == 3 && !r5_iter_done(it));
	r5_iter_free(it);
	r5_linop *T = NULL;
	assert_int_equal(r5_linop_identity(ctx, p.dims, &T), R5_OK);
	r5_admm_term term = {.op = T, .prox = p.g, .lambda = CS_LAMBDA};
	seen = 0;
	assert_int_equal(r5_admm_init(ctx, NULL, p.A, p.y, &term, 1, x, &it), R5_OK);
	assert_int_equal(r5_iter_run(it, stop_after_3, &seen), R5_ECANCELLED);
	assert_true(seen == 3 && it->iter == 3 && !r5_iter_done(it));
	assert_non_null(strstr(r5_last_error(), "stop after 3"));
	r5_iter_free(it);
	r5_linop_free(T);
	r5_array_free(x);
	cs_problem_free(&p);
}

static void test_errors(void **state)
{
	(void)state;
	long dims[R5_DIMS], other[R5_DIMS];
	dims_1d(dims, 8);
	dims_1d(other, 6);
	r5_linop *A = NULL, *T = NULL;
	r5_prox *g = NULL, *g_other = NULL;
	assert_int_equal(r5_linop_identity(ctx, dims, &A), R5_OK);
	assert_int_equal(r5_linop_identity(ctx, other, &T), R5_OK);
	assert_int_equal(r5_prox_l1(ctx, dims, 1.0f, &g), R5_OK);
	assert_int_equal(r5_prox_l1(ctx, other, 1.0f, &g_other), R5_OK);
	r5_array *x = work_random(dims, 1u), *y_other = work_random(other, 2u);
	r5_iter *it = (r5_iter *)&it;
	assert_int_equal(r5_fista_init(ctx, NULL, A, y_other, g, x, &it), R5_EINVAL);
	assert_null(it);
	assert_non_null(strstr(r5_last_error(), "FISTA: data [6], operator identity maps to [8]"));
	assert_int_equal(r5_fista_init(ctx, NULL, A, x, g_other, x, &it), R5_EINVAL);
	r5_fista_conf fconf = r5_fista_defaults;
	fconf.lambda = -1;
	assert_int_equal(r5_fista_init(ctx, &fconf, A, x, g, x, &it), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "lambda -1"));
	r5_admm_term term = {.op = T, .prox = g_other, .lambda = 1};
	assert_int_equal(r5_admm_init(ctx, NULL, A, x, &term, 1, x, &it), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "ADMM: term 0: operator identity maps [6] to [6]"));
	term.op = A;
	term.prox = g;
	assert_int_equal(r5_admm_init(ctx, NULL, A, x, &term, 0, x, &it), R5_EINVAL);
	term.lambda = NAN;
	assert_int_equal(r5_admm_init(ctx, NULL, A, x, &term, 1, x, &it), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "term 0"));
	assert_null(it);
	r5_array_free(x);
	r5_array_free(y_other);
	r5_prox_free(g);
	r5_prox_free(g_other);
	r5_linop_free(A);
	r5_linop_free(T);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fista_identity),    cmocka_unit_test(test_fista_unitary),
		cmocka_unit_test(test_fista_restart),     cmocka_unit_test(test_admm_equals_fista),
		cmocka_unit_test(test_admm_tv_staircase), cmocka_unit_test(test_hook_stops),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
