/* CPU back end: dense linear algebra (zgemm) and the batched Hermitian eigensolvers over
 * eig_math.h (the per-pixel problems of ESPIRiT and Walsh). */
#include <complex.h>
#include <stdlib.h>

#include "../core/complex_math.h"
#include "../core/dims.h"
#include "cpu_backend.h"
#include "../core/eig_math.h"

/* --- dense linear algebra --- */

r5_status r5_cpu_zgemm(void *state, int trans_a, long m, long n, long k, float complex alpha,
			   const float complex *a, long lda, const float complex *b, long ldb, float complex beta,
			   float complex *c, long ldc)
{
	if (m < 0 || n < 0 || k < 0)
		return r5_set_error(R5_EINVAL, "zgemm: negative size");
#pragma omp parallel for schedule(static) if (m * n * k > 65536)
	for (long j = 0; j < n; j++) {
		float complex *cj = c + j * ldc;
		if (!trans_a) {
			/* C(:,j) = beta C(:,j) + alpha sum_l A(:,l) B(l,j): unit-stride inner loop over i */
			for (long i = 0; i < m; i++)
				cj[i] = beta == 0 ? 0 : r5_cf_mul(beta, cj[i]);
			for (long l = 0; l < k; l++) {
				r5_cf w = r5_cf_mul(alpha, b[l + j * ldb]);
				const float complex *al = a + l * lda;
				for (long i = 0; i < m; i++)
					cj[i] = r5_cf_axpy(cj[i], w, al[i]);
			}
		} else {
			/* C(i,j) = beta C(i,j) + alpha sum_l conj(A(l,i)) B(l,j) */
			for (long i = 0; i < m; i++) {
				const float complex *ai = a + i * lda;
				double re = 0, im = 0;
				for (long l = 0; l < k; l++) {
					r5_cf p = r5_cf_mulc(b[l + j * ldb], ai[l]);
					re += r5_cf_re(p);
					im += r5_cf_im(p);
				}
				r5_cf sum = r5_cf_mul(alpha, r5_cf_make((float)re, (float)im));
				cj[i] = beta == 0 ? sum : r5_cf_add(sum, r5_cf_mul(beta, cj[i]));
			}
		}
	}
	return R5_OK;
}

/* One matrix per OpenMP iteration through eig_math.h (the CUDA back end runs the same
 * routine, one matrix per thread); per-thread scratch. */
r5_status r5_cpu_zheev_top_batched(void *state, long batch, int n, int k, float complex *matrices, float *eigenvalues)
{
	if (n < 1 || n > R5_EIG_MAX_N || k < 1 || k > n)
		return r5_set_error(R5_EINVAL, "eigen-decomposition: matrix size %d outside 1..%d or %d vectors", n,
				    R5_EIG_MAX_N, k);
	int no_memory = 0, not_converged = 0;
#pragma omp parallel if (batch > 16) reduction(| : no_memory, not_converged)
	{
		double *scratch = malloc(sizeof *scratch * R5_EIG_SCRATCH(n));
		no_memory = !scratch;
#pragma omp for schedule(static)
		for (long b = 0; b < batch; b++)
			if (scratch)
				not_converged |= r5_eig_herm_top(n, k, (r5_cf *)matrices + b * n * n, eigenvalues + b * n,
								 scratch, 1);
		free(scratch);
	}
	if (no_memory)
		return r5_set_error(R5_ENOMEM, "eigen-decomposition scratch (%ld doubles per thread)", R5_EIG_SCRATCH(n));
	if (not_converged)
		return r5_set_error(R5_EINTERNAL, "eigen-decomposition of %ld matrices %d x %d: QL did not converge",
				    batch, n, n);
	return R5_OK;
}

r5_status r5_cpu_zheev_batched(void *state, long batch, int n, float complex *matrices, float *eigenvalues)
{
	return r5_cpu_zheev_top_batched(state, batch, n, n, matrices, eigenvalues);
}
