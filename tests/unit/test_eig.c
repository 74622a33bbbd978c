/* The batched Hermitian eigensolver slots (zheev_batched: all vectors; zheev_top_batched: the k
 * leading ones; both recon/core/eig_math.h) on matrices with a known spectrum, A = U diag(l) U^H
 * with U a random unitary, n = 1..32: eigenvalues against l, descending; V^H V = I and the
 * residual ||A V - V diag(w)|| / ||A|| for the vectors formed; the phase convention (first
 * component real >= 0); top-k = the first k of the full decomposition bit for bit, the other
 * columns untouched. Spectra: random indefinite, ESPIRiT-like (one eigenvalue near 1, the rest
 * small), repeated eigenvalues, near-degenerate clusters (gaps 1e-7 and 1e-9), a multiple of
 * the identity, zero, a wide dynamic range (1 .. 1e-6), rank-deficient PSD. Bounds are about
 * 1.3x the worst values measured over all of them (in the comments); the inputs are float, so
 * the eigenvalues can only be as exact as A's rounding (~1e-7 ||A||). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <complex.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "recon/core/array.h"

#include "cpu_fixture.h"

#define MAX_N 32
#define BATCH 6

enum spectrum { RANDOM, ESPIRIT, REPEATED, CLUSTERED, IDENTITY, ZERO, WIDE, RANK_DEFICIENT, N_SPECTRA };
static const char *const spectrum_name[N_SPECTRA] = {"random",   "espirit-like", "repeated", "clustered",
						     "identity", "zero",         "wide",     "rank-deficient"};

static unsigned rng_state;
static double urand(void) /* uniform [0, 1), deterministic */
{
	rng_state = rng_state * 1664525u + 1013904223u;
	return (double)(rng_state >> 8) / 16777216.0;
}

/* Eigenvalues of spectrum `kind`, descending. */
static void make_spectrum(int n, enum spectrum kind, double *l)
{
	for (int i = 0; i < n; i++) {
		switch (kind) {
		case RANDOM: l[i] = 2 * urand() - 1; break;
		case ESPIRIT: l[i] = i == 0 ? 0.9 + 0.1 * urand() : 0.05 * urand(); break;
		case REPEATED: l[i] = i < n / 2 ? 1.0 : i < 3 * n / 4 ? 0.5 : -0.25; break;
		case CLUSTERED: l[i] = i < n / 2 ? 1.0 + 1e-7 * i : 0.3 + 1e-9 * i; break;
		case IDENTITY: l[i] = 2.0; break;
		case ZERO: l[i] = 0.0; break;
		case WIDE: l[i] = pow(10.0, -6.0 * i / (n > 1 ? n - 1 : 1)); break;
		case RANK_DEFICIENT: l[i] = i < (n + 2) / 3 ? 0.5 + urand() : 0.0; break;
		default: l[i] = 0;
		}
	}
	for (int i = 1; i < n; i++) /* insertion sort, descending */
		for (int j = i; j > 0 && l[j - 1] < l[j]; j--) {
			double t = l[j];
			l[j] = l[j - 1];
			l[j - 1] = t;
		}
}

/* A = U diag(l) U^H (float), U from Gram-Schmidt on a random complex matrix (twice). */
static void make_matrix(int n, const double *l, float complex *a)
{
	double complex u[MAX_N * MAX_N];
	for (int i = 0; i < n * n; i++)
		u[i] = (urand() - 0.5) + I * (urand() - 0.5);
	for (int j = 0; j < n; j++) {
		for (int pass = 0; pass < 2; pass++)
			for (int q = 0; q < j; q++) {
				double complex dot = 0;
				for (int i = 0; i < n; i++)
					dot += conj(u[i + q * n]) * u[i + j * n];
				for (int i = 0; i < n; i++)
					u[i + j * n] -= dot * u[i + q * n];
			}
		double norm = 0;
		for (int i = 0; i < n; i++)
			norm += creal(u[i + j * n] * conj(u[i + j * n]));
		for (int i = 0; i < n; i++)
			u[i + j * n] /= sqrt(norm);
	}
	for (int c = 0; c < n; c++)
		for (int r = 0; r <= c; r++) {
			double complex s = 0;
			for (int q = 0; q < n; q++)
				s += u[r + q * n] * l[q] * conj(u[c + q * n]);
			a[r + c * n] = (float complex)s;
			a[c + r * n] = (float complex)conj(s); /* exactly Hermitian in float */
		}
	for (int i = 0; i < n; i++)
		a[i + i * n] = crealf(a[i + i * n]);
}

struct worst {
	double eig, ortho, resid;
};

/* Checks one result (k vectors in v, eigenvalues w) of input a with known spectrum l. */
static void check_one(int n, int k, const float complex *a, const double *l, const float complex *v, const float *w,
		      struct worst *worst)
{
	double anorm = 0, lmax = 0;
	for (int i = 0; i < n * n; i++)
		anorm += pow(cabsf(a[i]), 2);
	anorm = sqrt(anorm);
	for (int i = 0; i < n; i++)
		lmax = fmax(lmax, fabs(l[i]));
	for (int i = 0; i < n; i++) {
		assert_false(isnan(w[i]));
		if (i)
			assert_true(w[i] <= w[i - 1]);
		double err = fabs(w[i] - l[i]);
		worst->eig = fmax(worst->eig, lmax > 0 ? err / lmax : err);
		if (lmax == 0)
			assert_true(err == 0);
	}
	for (int j = 0; j < k; j++) {
		assert_true(cimagf(v[j * n]) == 0.0f && crealf(v[j * n]) >= 0.0f); /* phase convention */
		double resid = 0;
		for (int r = 0; r < n; r++) {
			double complex av = 0;
			for (int q = 0; q < n; q++)
				av += (double complex)a[r + q * n] * v[q + j * n];
			resid += pow(cabs(av - (double)w[j] * v[r + j * n]), 2);
		}
		if (anorm > 0)
			worst->resid = fmax(worst->resid, sqrt(resid) / anorm);
		else
			assert_true(resid == 0);
		for (int q = 0; q <= j; q++) {
			double complex dot = 0;
			for (int r = 0; r < n; r++)
				dot += conj((double complex)v[r + q * n]) * v[r + j * n];
			worst->ortho = fmax(worst->ortho, cabs(dot - (q == j ? 1.0 : 0.0)));
		}
	}
}

/* One batch of one spectrum kind: the full decomposition and top-k for k = 1 and 2. */
static void check_batch(int n, enum spectrum kind, struct worst *worst)
{
	long nn = (long)n * n;
	float complex *a = malloc(sizeof *a * BATCH * nn), *full = malloc(sizeof *full * BATCH * nn);
	float complex *top = malloc(sizeof *top * BATCH * nn);
	float *w_full = malloc(sizeof *w_full * BATCH * n), *w_top = malloc(sizeof *w_top * BATCH * n);
	double *l = malloc(sizeof *l * BATCH * n);
	for (int b = 0; b < BATCH; b++) {
		make_spectrum(n, kind, l + b * n);
		make_matrix(n, l + b * n, a + b * nn);
	}
	memcpy(full, a, sizeof *a * BATCH * nn);
	assert_int_equal(r5_zheev_batched(ctx, BATCH, n, full, w_full), R5_OK);
	for (int b = 0; b < BATCH; b++)
		check_one(n, n, a + b * nn, l + b * n, full + b * nn, w_full + b * n, worst);
	for (int k = 1; k <= 2 && k <= n; k++) {
		memcpy(top, a, sizeof *a * BATCH * nn);
		assert_int_equal(r5_zheev_top_batched(ctx, BATCH, n, k, top, w_top), R5_OK);
		/* the same routine: eigenvalues and the k vectors bit for bit, other columns untouched */
		assert_memory_equal(w_top, w_full, sizeof *w_top * BATCH * n);
		for (int b = 0; b < BATCH; b++) {
			assert_memory_equal(top + b * nn, full + b * nn, sizeof *top * k * n);
			assert_memory_equal(top + b * nn + k * n, a + b * nn + k * n, sizeof *top * (nn - k * n));
		}
	}
	free(a), free(full), free(top), free(w_full), free(w_top), free(l);
}

static void test_known_spectra(void **state)
{
	(void)state;
	rng_state = 12345;
	struct worst all = {0};
	for (int kind = 0; kind < N_SPECTRA; kind++) {
		struct worst w = {0};
		for (int n = 1; n <= MAX_N; n++)
			check_batch(n, (enum spectrum)kind, &w);
		print_message("zheev %-14s n = 1..%d: eigenvalues %.2g, |V^H V - I| %.2g, residual %.2g\n",
			      spectrum_name[kind], MAX_N, w.eig, w.ortho, w.resid);
		all.eig = fmax(all.eig, w.eig), all.ortho = fmax(all.ortho, w.ortho), all.resid = fmax(all.resid, w.resid);
	}
	assert_true(all.eig < 9e-8);     /* measured 6.6e-8 (clustered): A rounded to float */
	assert_true(all.ortho < 1.1e-7); /* 7.8e-8: the vectors rounded to float */
	assert_true(all.resid < 6e-8);   /* 4.5e-8 */
}

/* The input is read as its Hermitian part (a + a^H) / 2: an anti-Hermitian perturbation of
 * 1e-3 (i eps at (1, 3) and at (3, 1)) moves nothing beyond float rounding. */
static void test_reads_hermitian_part(void **state)
{
	(void)state;
	int n = 5;
	float complex a[25], b[25];
	float wa[5], wb[5];
	double l[5] = {3, 2, 1, 0.5, -1};
	rng_state = 7;
	make_matrix(n, l, a);
	memcpy(b, a, sizeof a);
	b[1 + 3 * n] += 1e-3f * I;
	b[3 + 1 * n] += 1e-3f * I;
	assert_int_equal(r5_zheev_batched(ctx, 1, n, a, wa), R5_OK);
	assert_int_equal(r5_zheev_batched(ctx, 1, n, b, wb), R5_OK);
	for (int i = 0; i < n; i++) {
		assert_true(fabs(wa[i] - l[i]) < 1e-6);
		assert_true(fabs(wb[i] - wa[i]) < 1e-6);
	}
	for (int i = 0; i < n * n; i++)
		assert_true(cabsf(a[i] - b[i]) < 1e-6f);
}

static void test_bad_arguments(void **state)
{
	(void)state;
	float complex m[4] = {1, 0, 0, 1};
	float w[2];
	assert_int_equal(r5_zheev_top_batched(ctx, 1, 2, 0, m, w), R5_EINVAL);
	assert_int_equal(r5_zheev_top_batched(ctx, 1, 2, 3, m, w), R5_EINVAL);
	assert_non_null(strstr(r5_last_error(), "3 vectors"));
	assert_int_equal(r5_zheev_top_batched(ctx, 1, 65, 1, m, w), R5_EINVAL); /* beyond R5_EIG_MAX_N */
	assert_int_equal(r5_zheev_top_batched(ctx, 0, 2, 1, NULL, NULL), R5_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_spectra),
		cmocka_unit_test(test_reads_hermitian_part),
		cmocka_unit_test(test_bad_arguments),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
