/* Proximal operators (recon/solve/prox.h) against their definition
 * prox_{mu f}(v) = argmin_x f(x) + |x - v|^2 / (2 mu):
 * (a) closed forms on hand-picked values (L1, L2,1 over one and two dims, box, non-negativity);
 * (b) optimality: F(x) - F(p) >= |x - p|^2 / (2 mu) (F is 1/mu strongly convex, p its minimiser)
 *     for many random x near and far from p = prox(v), and p against brute-force grid searches
 *     of the minimiser for scalar and two-element cases;
 * (c) Moreau: v = prox_{mu f}(v) + mu prox_{f^* / mu}(v / mu); for f = lambda |.|_1 (and the group
 *     norm) f^* is the indicator of the ball {|z_i| <= lambda} ({|z_g|_2 <= lambda}), so
 *     v - prox_{mu f}(v) must be the projection of v onto the ball of radius lambda mu.
 * Also: out == in gives the same result, errors name the prox and the shapes. Inputs are made
 * on the host in double, copied to work arrays; the objective is evaluated in double. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "recon/solve/prox.h"

#include "cpu_fixture.h"

static uint32_t rng_state;

static double uniform(void) /* [-0.5, 0.5), xorshift32 */
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return (double)(rng_state >> 8) / 16777216.0 - 0.5;
}

static r5_array *work_from(const long dims[R5_DIMS], const float complex *values)
{
	r5_array *host = NULL, *work = NULL;
	assert_int_equal(r5_array_alloc_host(dims, &host), R5_OK);
	memcpy(host->data, values, sizeof(float complex) * (size_t)r5_array_size(host));
	assert_int_equal(r5_array_alloc_work(ctx, dims, &work), R5_OK);
	assert_int_equal(r5_array_copy(ctx, work, host), R5_OK);
	r5_array_free(host);
	return work;
}

/* prox(v) on the host values v (n of them); in_place: out == in */
static void prox_host(r5_prox *prox, float mu, const float complex *v, float complex *p, int in_place)
{
	r5_array *in = work_from(prox->dims, v), *out = in, *host = NULL;
	if (!in_place)
		assert_int_equal(r5_array_alloc_work(ctx, prox->dims, &out), R5_OK);
	assert_int_equal(r5_prox_apply(ctx, prox, mu, out, in), R5_OK);
	assert_int_equal(r5_array_to_host(ctx, out, &host), R5_OK);
	memcpy(p, host->data, sizeof(float complex) * (size_t)r5_array_size(host));
	r5_array_free(host);
	if (out != in)
		r5_array_free(out);
	r5_array_free(in);
}

static void dims_set(long dims[R5_DIMS], long nx, long coils, long times)
{
	r5_dims_ones(dims);
	dims[R5_DIM_X] = nx;
	dims[R5_DIM_COIL] = coils;
	dims[R5_DIM_TIME] = times;
}

static void expect(const float complex *got, const float complex *want, int n, double tol, const char *what)
{
	for (int i = 0; i < n; i++) {
		if (cabs((double complex)got[i] - want[i]) > tol)
			fail_msg("%s [%d]: got %g%+gi, want %g%+gi", what, i, crealf(got[i]), cimagf(got[i]), crealf(want[i]),
				 cimagf(want[i]));
		assert_true(isfinite(crealf(got[i])) && isfinite(cimagf(got[i])));
	}
}

/* --- the functions, evaluated in double on the host; groups = all elements sharing x --- */
enum f_kind { F_L1, F_L21, F_BOX };
struct fun {
	enum f_kind kind;
	double lambda, lo, hi;
	long nx; /* L21: dims [nx, 1, 1, coils, ..., times]: a group = the coils x times at one x */
};

static double f_value(const struct fun *f, const double complex *x, long n)
{
	double sum = 0;
	if (f->kind == F_L1)
		for (long i = 0; i < n; i++)
			sum += f->lambda * cabs(x[i]);
	if (f->kind == F_L21)
		for (long g = 0; g < f->nx; g++) {
			double sq = 0;
			for (long i = g; i < n; i += f->nx)
				sq += pow(cabs(x[i]), 2);
			sum += f->lambda * sqrt(sq);
		}
	if (f->kind == F_BOX)
		for (long i = 0; i < n; i++)
			if (cimag(x[i]) != 0 || creal(x[i]) < f->lo || creal(x[i]) > f->hi)
				return INFINITY;
	return sum;
}

static double objective(const struct fun *f, double mu, const double complex *x, const float complex *v, long n)
{
	double d2 = 0;
	for (long i = 0; i < n; i++)
		d2 += pow(cabs(x[i] - v[i]), 2);
	return f_value(f, x, n) + d2 / (2 * mu);
}

static void clamp_box(const struct fun *f, double complex *x, long n)
{
	for (long i = 0; i < n; i++)
		x[i] = fmin(fmax(creal(x[i]), f->lo), f->hi);
}

/* F(x) - F(p) >= |x - p|^2 / (2 mu) (1 - 1e-3) - 1e-6 (1 + F(p)) (float rounding of p) for random x
 * at distances 1e-3 .. 10 */
static void check_optimal(r5_prox *prox, const struct fun *f, float mu, unsigned seed)
{
	enum { N = 48, TRIALS = 400 };
	long n = r5_dims_size(prox->dims);
	assert_true(n <= N);
	float complex v[N] = {0}, p[N];
	double complex pd[N], x[N];
	rng_state = seed;
	for (long i = 0; i < n; i++) /* magnitudes around the threshold, some exact zeros */
		v[i] = i % 11 == 5 ? 0.0f : (float)(3 * uniform()) + I * (float)(f->kind == F_BOX && i % 3 ? 0 : 3 * uniform());
	prox_host(prox, mu, v, p, 0);
	for (long i = 0; i < n; i++)
		pd[i] = p[i];
	double fp = objective(f, mu, pd, v, n), worst = INFINITY;
	assert_true(isfinite(fp));
	for (int t = 0; t < TRIALS; t++) {
		double scale = pow(10.0, -3 + 4.0 * t / TRIALS); /* 1e-3 .. 10 */
		double d2 = 0;
		for (long i = 0; i < n; i++)
			x[i] = pd[i] + scale * (uniform() + I * uniform());
		if (f->kind == F_BOX)
			clamp_box(f, x, n);
		if (t % 7 == 0) /* sparse perturbations: move a few entries only (off a kink) */
			for (long i = 0; i < n; i++)
				if (i % 5)
					x[i] = pd[i];
		for (long i = 0; i < n; i++)
			d2 += pow(cabs(x[i] - pd[i]), 2);
		double gain = objective(f, mu, x, v, n) - fp, bound = d2 / (2 * mu) * (1 - 1e-3) - 1e-6 * (1 + fp);
		worst = fmin(worst, gain - bound);
		if (gain < bound)
			fail_msg("%s mu %g: F(x) - F(prox) = %.3e < |x - p|^2/(2 mu) = %.3e at distance %.2e", prox->name,
				 (double)mu, gain, d2 / (2 * mu), sqrt(d2));
	}
	print_message("%-26s mu %.2f: optimal against %d perturbations (margin >= %.2e)\n", prox->name, (double)mu,
		      TRIALS, worst);
}

static void test_closed_form(void **state)
{
	(void)state;
	long dims[R5_DIMS];
	r5_prox *prox = NULL;
	/* L1, lambda 2, mu 0.5: threshold 1 on the modulus, phase kept */
	float complex v1[7] = {3 + 4 * I, 0.5f * I, -2, 0, 1, -0.6f - 0.8f * I, 10 * I}, p1[7];
	float complex w1[7] = {2.4f + 3.2f * I, 0, -1, 0, 0, 0, 9 * I};
	dims_set(dims, 7, 1, 1);
	assert_int_equal(r5_prox_l1(ctx, dims, 2.0f, &prox), R5_OK);
	prox_host(prox, 0.5f, v1, p1, 0);
	expect(p1, w1, 7, 1e-6, "l1");
	prox_host(prox, 0.0f, v1, p1, 0); /* mu = 0: identity */
	expect(p1, v1, 7, 0, "l1 mu 0");
	r5_prox_free(prox);
	/* L2,1 over coils (x = 2, coils = 2): pixel 0 (3, 4i) |.| 5 -> x 0.8; pixel 1 (0.3, 0.4) -> 0 */
	float complex v2[4] = {3, 0.3f, 4 * I, 0.4f}, p2[4], w2[4] = {2.4f, 0, 3.2f * I, 0};
	dims_set(dims, 2, 2, 1);
	assert_int_equal(r5_prox_l21(ctx, dims, R5_FLAG(R5_DIM_COIL), 1.0f, &prox), R5_OK);
	prox_host(prox, 1.0f, v2, p2, 0);
	expect(p2, w2, 4, 1e-6, "l2,1 coils");
	r5_prox_free(prox);
	/* over coils and time (x = 2, coils = 2, time = 2): pixel 0 (1, i, -1, 1) |.| 2, threshold 1 ->
	 * x 0.5; pixel 1 all zero -> zero, no NaN */
	float complex v3[8] = {1, 0, I, 0, -1, 0, 1, 0}, p3[8], w3[8] = {0.5f, 0, 0.5f * I, 0, -0.5f, 0, 0.5f, 0};
	dims_set(dims, 2, 2, 2);
	assert_int_equal(r5_prox_l21(ctx, dims, R5_FLAG(R5_DIM_COIL) | R5_FLAG(R5_DIM_TIME), 0.25f, &prox), R5_OK);
	prox_host(prox, 4.0f, v3, p3, 0);
	expect(p3, w3, 8, 1e-6, "l2,1 coils+time");
	r5_prox_free(prox);
	/* box [-1, 2]: real part clamped, imaginary part dropped, mu irrelevant */
	float complex v4[5] = {1.5f + 2 * I, -3 + I, 5, 0.25f - 7 * I, -1}, p4[5], w4[5] = {1.5f, -1, 2, 0.25f, -1};
	dims_set(dims, 5, 1, 1);
	assert_int_equal(r5_prox_box(ctx, dims, -1.0f, 2.0f, &prox), R5_OK);
	prox_host(prox, 3.0f, v4, p4, 0);
	expect(p4, w4, 5, 0, "box");
	r5_prox_free(prox);
	float complex w5[5] = {1.5f, 0, 5, 0.25f, 0};
	assert_int_equal(r5_prox_nonneg(ctx, dims, &prox), R5_OK);
	assert_string_equal(prox->name, "non-negativity");
	prox_host(prox, 0.0f, v4, p4, 0);
	expect(p4, w5, 5, 0, "non-negativity");
	r5_prox_free(prox);
}

static void test_optimality(void **state)
{
	(void)state;
	long dims[R5_DIMS];
	r5_prox *prox = NULL;
	const float mus[2] = {0.3f, 1.7f};
	for (int m = 0; m < 2; m++) {
		struct fun l1 = {.kind = F_L1, .lambda = 0.8};
		dims_set(dims, 48, 1, 1);
		assert_int_equal(r5_prox_l1(ctx, dims, 0.8f, &prox), R5_OK);
		check_optimal(prox, &l1, mus[m], 11 + m);
		r5_prox_free(prox);
		struct fun l21 = {.kind = F_L21, .lambda = 0.8, .nx = 4};
		dims_set(dims, 4, 3, 4);
		assert_int_equal(r5_prox_l21(ctx, dims, R5_FLAG(R5_DIM_COIL) | R5_FLAG(R5_DIM_TIME), 0.8f, &prox), R5_OK);
		check_optimal(prox, &l21, mus[m], 21 + m);
		r5_prox_free(prox);
		struct fun box = {.kind = F_BOX, .lo = -0.4f, .hi = 0.7f};
		dims_set(dims, 48, 1, 1);
		assert_int_equal(r5_prox_box(ctx, dims, -0.4f, 0.7f, &prox), R5_OK);
		check_optimal(prox, &box, mus[m], 31 + m);
		r5_prox_free(prox);
		struct fun nonneg = {.kind = F_BOX, .lo = 0, .hi = INFINITY};
		assert_int_equal(r5_prox_nonneg(ctx, dims, &prox), R5_OK);
		check_optimal(prox, &nonneg, mus[m], 41 + m);
		r5_prox_free(prox);
	}
}

/* the minimiser of F over a grid of (a, b) = x_0 + grid, as (re, im) of one value (L1) or as two
 * real values (L2,1 group of two) */
static void grid_minimum(const struct fun *f, double mu, const float complex *v, int two_real, double centre_a,
			 double centre_b, double half, int steps, double *best_a, double *best_b)
{
	double best = INFINITY, h = 2 * half / steps;
	for (int i = 0; i <= steps; i++)
		for (int j = 0; j <= steps; j++) {
			double a = centre_a - half + i * h, b = centre_b - half + j * h;
			double complex x[2] = {a + (two_real ? 0 : I * b), b};
			double F = objective(f, mu, x, v, two_real ? 2 : 1);
			if (F < best) {
				best = F;
				*best_a = a;
				*best_b = b;
			}
		}
}

static void test_brute_force(void **state)
{
	(void)state;
	long dims[R5_DIMS];
	r5_prox *prox = NULL;
	enum { STEPS = 1600 };
	/* one complex value, L1 with lambda 0.5, mu 1.2 (threshold 0.6): outside and inside */
	const float complex scalars[3] = {1.3f - 0.7f * I, 0.3f + 0.4f * I, -2.0f};
	struct fun l1 = {.kind = F_L1, .lambda = 0.5};
	dims_set(dims, 1, 1, 1);
	assert_int_equal(r5_prox_l1(ctx, dims, 0.5f, &prox), R5_OK);
	for (int k = 0; k < 3; k++) {
		float complex p;
		double a = 0, b = 0, half = 2.0;
		prox_host(prox, 1.2f, &scalars[k], &p, 0);
		grid_minimum(&l1, 1.2, &scalars[k], 0, 0, 0, half, STEPS, &a, &b);
		double err = cabs((double complex)p - (a + I * b));
		print_message("l1 prox of %5.2f%+5.2fi: %8.5f%+8.5fi, grid %8.5f%+8.5fi (|diff| %.1e, step %.1e)\n",
			      crealf(scalars[k]), cimagf(scalars[k]), crealf(p), cimagf(p), a, b, err, 2 * half / STEPS);
		assert_true(err <= 2 * half / STEPS);
	}
	r5_prox_free(prox);
	/* a group of two real values, L2,1 with lambda 0.5, mu 1 */
	const float complex pairs[2][2] = {{0.9f, -0.4f}, {0.3f, 0.2f}};
	struct fun l21 = {.kind = F_L21, .lambda = 0.5, .nx = 1};
	dims_set(dims, 1, 2, 1);
	assert_int_equal(r5_prox_l21(ctx, dims, R5_FLAG(R5_DIM_COIL), 0.5f, &prox), R5_OK);
	for (int k = 0; k < 2; k++) {
		float complex p[2];
		double a = 0, b = 0, half = 1.5;
		prox_host(prox, 1.0f, pairs[k], p, 0);
		grid_minimum(&l21, 1.0, pairs[k], 1, 0, 0, half, STEPS, &a, &b);
		double err = hypot(crealf(p[0]) - a, crealf(p[1]) - b);
		print_message("l2,1 prox of (%.2f, %.2f): (%.5f, %.5f), grid (%.5f, %.5f) (|diff| %.1e)\n", crealf(pairs[k][0]),
			      crealf(pairs[k][1]), crealf(p[0]), crealf(p[1]), a, b, err);
		assert_true(err <= 2 * half / STEPS);
		assert_true(cimagf(p[0]) == 0 && cimagf(p[1]) == 0);
	}
	r5_prox_free(prox);
	/* box [-0.4, 0.7]: the 1-D search over feasible real values */
	const float complex boxed[3] = {0.2f + 0.9f * I, 1.5f - 0.1f * I, -3.0f + 2.0f * I};
	struct fun box = {.kind = F_BOX, .lo = -0.4f, .hi = 0.7f};
	dims_set(dims, 1, 1, 1);
	assert_int_equal(r5_prox_box(ctx, dims, -0.4f, 0.7f, &prox), R5_OK);
	for (int k = 0; k < 3; k++) {
		float complex p;
		prox_host(prox, 1.0f, &boxed[k], &p, 0);
		double best = INFINITY, best_x = 0;
		for (int i = 0; i <= 100 * STEPS; i++) {
			double complex x = -0.4 + 1.1 * i / (100.0 * STEPS);
			double F = objective(&box, 1.0, &x, &boxed[k], 1);
			if (F < best) {
				best = F;
				best_x = creal(x);
			}
		}
		assert_true(fabs(crealf(p) - best_x) <= 1.1 / (100.0 * STEPS) && cimagf(p) == 0);
	}
	r5_prox_free(prox);
}

/* v - prox_{mu f}(v) = projection of v onto the ball of radius lambda mu (per element for L1,
 * per group for L2,1): the prox of f*'s scaled conjugate, by Moreau's identity */
static void test_moreau(void **state)
{
	(void)state;
	enum { NX = 6, C = 3, T = 2, N = NX * C * T };
	const float lambda = 0.7f, mu = 1.3f;
	const double radius = (double)lambda * mu;
	float complex v[N], p[N];
	rng_state = 5150;
	for (int i = 0; i < N; i++)
		v[i] = (float)(3 * uniform()) + I * (float)(3 * uniform());
	long dims[R5_DIMS];
	dims_set(dims, NX, C, T);
	r5_prox *prox = NULL;
	double worst = 0;
	for (int grouped = 0; grouped < 2; grouped++) {
		if (grouped)
			assert_int_equal(r5_prox_l21(ctx, dims, R5_FLAG(R5_DIM_COIL) | R5_FLAG(R5_DIM_TIME), lambda, &prox), R5_OK);
		else
			assert_int_equal(r5_prox_l1(ctx, dims, lambda, &prox), R5_OK);
		prox_host(prox, mu, v, p, 0);
		for (int x = 0; x < NX; x++) {
			double norm = 0;
			for (int i = x; i < N; i += NX)
				norm += pow(cabs((double complex)v[i]), 2);
			for (int i = x; i < N; i += NX) {
				double mag = grouped ? sqrt(norm) : cabs((double complex)v[i]);
				double complex proj = mag > radius ? v[i] * (radius / mag) : (double complex)v[i];
				double err = cabs((double complex)v[i] - p[i] - proj);
				worst = fmax(worst, err);
				assert_true(err < 1e-6 * (1 + cabs((double complex)v[i])));
			}
		}
		r5_prox_free(prox);
	}
	print_message("Moreau decomposition (l1, l2,1): max |v - prox(v) - P_ball(v)| = %.1e\n", worst);
}

/* out == in gives what a separate out gives, twice in a row (the group threshold's scratch) */
static void test_in_place(void **state)
{
	(void)state;
	enum { N = 4 * 3 * 2 };
	long dims[R5_DIMS];
	dims_set(dims, 4, 3, 2);
	float complex v[N], a[N], b[N];
	rng_state = 8;
	for (int i = 0; i < N; i++)
		v[i] = (float)(3 * uniform()) + I * (float)(3 * uniform());
	r5_prox *proxes[4] = {NULL};
	assert_int_equal(r5_prox_l1(ctx, dims, 0.5f, &proxes[0]), R5_OK);
	assert_int_equal(r5_prox_l21(ctx, dims, R5_FLAG(R5_DIM_COIL), 0.5f, &proxes[1]), R5_OK);
	assert_int_equal(r5_prox_box(ctx, dims, -0.2f, 0.3f, &proxes[2]), R5_OK);
	assert_int_equal(r5_prox_nonneg(ctx, dims, &proxes[3]), R5_OK);
	for (int k = 0; k < 4; k++)
		for (int rep = 0; rep < 2; rep++) {
			prox_host(proxes[k], 1.5f, v, a, 0);
			prox_host(proxes[k], 1.5f, v, b, 1);
			expect(b, a, N, 0, proxes[k]->name);
		}
	for (int k = 0; k < 4; k++)
		r5_prox_free(proxes[k]);
}

static void test_errors(void **state)
{
	(void)state;
	long dims[R5_DIMS], other[R5_DIMS];
	dims_set(dims, 4, 2, 1);
	dims_set(other, 4, 3, 1);
	r5_prox *prox = NULL;
	r5_array *x = NULL, *y = NULL;
	assert_int_equal(r5_array_zeros(ctx, r5_ctx_residency(ctx), dims, &x), R5_OK);
	assert_int_equal(r5_array_zeros(ctx, r5_ctx_residency(ctx), other, &y), R5_OK);
	assert_int_equal(r5_prox_l21(ctx, dims, R5_FLAG(R5_DIM_COIL), 1.0f, &prox), R5_OK);
	assert_int_equal(r5_prox_apply(ctx, prox, 1.0f, y, x), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "l2,1"));
	assert_non_null(strstr(r5_last_error(), "[4 1 1 3]"));
	assert_int_equal(r5_prox_apply(ctx, prox, -1.0f, x, x), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "mu"));
	assert_int_equal(r5_prox_apply(ctx, prox, NAN, x, x), R5_EINVAL);
	assert_int_equal(r5_prox_apply(ctx, prox, 1.0f, x, x), R5_OK); /* zeros stay zeros, no NaN */
	double norm = 1;
	assert_int_equal(r5_znorm(ctx, x, &norm), R5_OK);
	assert_true(norm == 0.0);
	r5_prox_free(prox);
	r5_prox_free(NULL);
	assert_int_equal(r5_prox_l1(ctx, dims, -1.0f, &prox), R5_EINVAL);
	assert_null(prox);
	assert_int_equal(r5_prox_l21(ctx, dims, 1UL << R5_DIMS, 1.0f, &prox), R5_EINVAL);
	assert_int_equal(r5_prox_box(ctx, dims, 1.0f, -1.0f, &prox), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "box"));
	assert_int_equal(r5_prox_box(ctx, dims, NAN, 1.0f, &prox), R5_EINVAL);
	assert_null(prox);
	r5_array_free(x);
	r5_array_free(y);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_closed_form), cmocka_unit_test(test_optimality), cmocka_unit_test(test_brute_force),
		cmocka_unit_test(test_moreau),      cmocka_unit_test(test_in_place),   cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
