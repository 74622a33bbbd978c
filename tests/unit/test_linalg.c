/* The CPU back end's cache-blocked zgemm (recon/cpu/cpu_linalg.c) against a brute-force double
 * product: both op(A) = A and A^H, shapes on and off the block sizes (register tile 4 x 4,
 * tiles 64 x 64, k blocks of 256), k long enough to be cut into chunks (tall-skinny A^H A of
 * calibration), padded leading dimensions, complex alpha, beta = 0 with C full of NaN (C must
 * not be read) and beta != 0. Error per entry relative to sum_l |op(A)_il| |B_lj| (the scale of
 * float rounding in the sum), bound about 1.3x the worst measured; and the result does not
 * depend on the number of threads (bit for bit, 1 vs 2 threads). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <complex.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "recon/core/array.h"

#include "cpu_fixture.h"

static unsigned rng_state = 99;
static float complex crand(void)
{
	rng_state = rng_state * 1664525u + 1013904223u;
	float re = (float)(rng_state >> 8) / 16777216.0f - 0.5f;
	rng_state = rng_state * 1664525u + 1013904223u;
	return CMPLXF(re, (float)(rng_state >> 8) / 16777216.0f - 0.5f);
}

static void set_threads(int n)
{
#ifdef _OPENMP
	omp_set_num_threads(n);
#else
	(void)n;
#endif
}

/* Worst |C - C_exact| / sum_l |op(A)_il| |B_lj| for one case. */
static double gemm_case(int trans_a, long m, long n, long k, long pad, int beta_zero)
{
	long lda = (trans_a ? k : m) + pad, ldb = k + pad, ldc = m + pad;
	long a_len = lda * (trans_a ? m : k), b_len = ldb * n, c_len = ldc * n;
	float complex *a = malloc(sizeof *a * a_len), *b = malloc(sizeof *b * b_len);
	float complex *c0 = malloc(sizeof *c0 * c_len), *c = malloc(sizeof *c * c_len), *c1 = malloc(sizeof *c1 * c_len);
	for (long i = 0; i < a_len; i++)
		a[i] = crand();
	for (long i = 0; i < b_len; i++)
		b[i] = crand();
	for (long i = 0; i < c_len; i++)
		c0[i] = beta_zero ? NAN : crand();
	float complex alpha = CMPLXF(0.75f, -0.5f), beta = beta_zero ? 0 : CMPLXF(-0.25f, 1.0f);
	memcpy(c, c0, sizeof *c * c_len);
	memcpy(c1, c0, sizeof *c * c_len);
	set_threads(2);
	assert_int_equal(r5_zgemm(ctx, trans_a, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc), R5_OK);
	set_threads(1);
	assert_int_equal(r5_zgemm(ctx, trans_a, m, n, k, alpha, a, lda, b, ldb, beta, c1, ldc), R5_OK);
	set_threads(2);
	assert_memory_equal(c, c1, sizeof *c * c_len); /* the thread count changes nothing */
	double worst = 0;
	for (long j = 0; j < n; j++)
		for (long i = 0; i < ldc; i++) {
			if (i >= m) { /* padding rows untouched */
				assert_memory_equal(&c[i + j * ldc], &c0[i + j * ldc], sizeof *c);
				continue;
			}
			double complex sum = 0;
			double scale = 0;
			for (long l = 0; l < k; l++) {
				double complex x = trans_a ? conj((double complex)a[l + i * lda]) : (double complex)a[i + l * lda];
				sum += x * (double complex)b[l + j * ldb];
				scale += cabs(x) * cabsf(b[l + j * ldb]);
			}
			double complex want = alpha * sum + (beta_zero ? 0 : beta * (double complex)c0[i + j * ldc]);
			scale = cabsf(alpha) * scale + (beta_zero ? 0 : cabsf(beta) * cabsf(c0[i + j * ldc]));
			assert_false(isnan(crealf(c[i + j * ldc])) || isnan(cimagf(c[i + j * ldc])));
			worst = fmax(worst, cabs(c[i + j * ldc] - want) / scale);
		}
	free(a), free(b), free(c0), free(c), free(c1);
	return worst;
}

static void test_zgemm_blocked(void **state)
{
	(void)state;
	static const long shapes[][3] = {
		{1, 1, 1},     {3, 5, 7},       {4, 4, 256},    {63, 65, 257},  {64, 64, 256}, {130, 7, 513},
		{5, 3, 20000}, {33, 17, 40000}, {8, 8, 100000}, {1000, 8, 32},  {9, 300, 11},
	};
	double worst = 0;
	for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
		for (int trans_a = 0; trans_a < 2; trans_a++)
			for (int beta_zero = 0; beta_zero < 2; beta_zero++) {
				double e = gemm_case(trans_a, shapes[s][0], shapes[s][1], shapes[s][2], (s % 3) * 3, beta_zero);
				worst = fmax(worst, e);
			}
	print_message("zgemm: worst error %.2g of sum |a| |b| over %zu shapes x 2 x 2\n", worst,
		      sizeof shapes / sizeof shapes[0]);
	assert_true(worst < 1.9e-7); /* measured 1.4e-7 */
}

static void test_zgemm_empty_k(void **state)
{
	(void)state;
	float complex a[1] = {1}, b[1] = {1}, c[6];
	for (int i = 0; i < 6; i++)
		c[i] = NAN;
	/* k = 0: C = beta C, and beta = 0 writes zeros without reading C */
	assert_int_equal(r5_zgemm(ctx, 0, 2, 3, 0, 1.0f, a, 2, b, 1, 0.0f, c, 2), R5_OK);
	for (int i = 0; i < 6; i++)
		assert_true(c[i] == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_zgemm_blocked),
		cmocka_unit_test(test_zgemm_empty_k),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
