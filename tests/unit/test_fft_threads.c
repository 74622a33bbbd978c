/* FFT planning from many threads at once, as recon5td does: each completion-queue thread's scan
 * builder and each worker own a CPU context and plan their own shapes. FFTW's planner is
 * process-global; fftwf_plan_with_nthreads sets the planner's thread count, which FFTW's
 * threaded solvers read and temporarily rewrite while they plan. Set outside a lock while
 * another thread plans, it corrupted plans (double free, SIGFPE, SIGSEGV in
 * fftwf_plan_guru64_dft with two clients sending oversampled scans). This test plans shapes
 * on both sides of the multithreading threshold from several threads, with fresh contexts
 * (empty plan caches) every round, and checks each transform against its inverse. It crashed
 * within seconds before planning was put behind one lock. */
#include <complex.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>

#include "recon/core/array.h"
#include "recon/core/ctx.h"
#include "recon/core/fft.h"
#include "recon/core/log.h"

#define N_THREADS 6
#define ROUNDS 40

typedef struct worker {
	unsigned seed;
	int failures;
	double worst;
} worker;

/* Readout-line shapes like the scan builder's (x, 1, 1, coils) and small images: some below,
 * some above the 16384-element threshold where plans become multithreaded. */
static const long shapes[][4] = {
	{512, 1, 1, 8},   {384, 1, 1, 12}, {640, 1, 1, 32}, {256, 1, 1, 4},  {1024, 1, 1, 16},
	{96, 96, 1, 2},   {130, 1, 1, 20}, {200, 1, 1, 64}, {64, 64, 1, 8},  {768, 1, 1, 24},
};

static void *plan_and_check(void *arg)
{
	worker *w = arg;
	for (int round = 0; round < ROUNDS; round++) {
		r5_ctx *ctx = NULL;
		if (r5_ctx_create(&ctx, "cpu", 0) != R5_OK) {
			w->failures++;
			return NULL;
		}
		for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
			size_t k = (s + (size_t)round + w->seed) % (sizeof shapes / sizeof shapes[0]);
			long dims[R5_DIMS];
			r5_dims_ones(dims);
			for (int d = 0; d < 4; d++)
				dims[d] = shapes[k][d];
			r5_array *x = NULL, *y = NULL, *back = NULL;
			if (r5_array_alloc(ctx, R5_HOST, dims, &x) != R5_OK || r5_array_alloc(ctx, R5_HOST, dims, &y) != R5_OK ||
			    r5_array_alloc(ctx, R5_HOST, dims, &back) != R5_OK) {
				w->failures++;
			} else {
				float complex *v = x->data;
				long n = r5_dims_size(dims);
				for (long i = 0; i < n; i++)
					v[i] = (float)(rand_r(&w->seed) % 1000) / 500.0f - 1.0f +
					       I * ((float)(rand_r(&w->seed) % 1000) / 500.0f - 1.0f);
				unsigned long flags = dims[1] > 1 ? 3UL : 1UL;
				if (r5_fft(ctx, flags, y, x) != R5_OK || r5_ifft(ctx, flags, back, y) != R5_OK) {
					w->failures++;
				} else {
					const float complex *b = back->data;
					double err = 0, norm = 0;
					for (long i = 0; i < n; i++) {
						err += pow(cabsf(b[i] - v[i]), 2);
						norm += pow(cabsf(v[i]), 2);
					}
					double rel = sqrt(err / norm);
					if (!(rel < 1e-5))
						w->failures++;
					if (!(rel <= w->worst))
						w->worst = rel;
				}
			}
			r5_array_free(x);
			r5_array_free(y);
			r5_array_free(back);
		}
		r5_ctx_destroy(ctx);
	}
	return NULL;
}

static void concurrent_planning(void **state)
{
	(void)state;
	pthread_t threads[N_THREADS];
	worker workers[N_THREADS];
	for (int t = 0; t < N_THREADS; t++) {
		workers[t] = (worker){.seed = 17u * (unsigned)t + 1u};
		assert_int_equal(pthread_create(&threads[t], NULL, plan_and_check, &workers[t]), 0);
	}
	for (int t = 0; t < N_THREADS; t++)
		assert_int_equal(pthread_join(threads[t], NULL), 0);
	for (int t = 0; t < N_THREADS; t++) {
		assert_int_equal(workers[t].failures, 0);
		assert_true(workers[t].worst < 1e-5);
	}
}

int main(void)
{
	r5_log_set_level(R5_LOG_WARN);
	const struct CMUnitTest tests[] = {cmocka_unit_test(concurrent_planning)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
