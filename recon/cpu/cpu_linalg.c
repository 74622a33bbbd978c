/* CPU back end: dense linear algebra (zgemm) and the batched Hermitian eigensolver over
 * eig_math.h, the per-pixel problems of ESPIRiT and Walsh. */
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

r5_status r5_cpu_zheev_batched(void *state, long batch, int n, float complex *matrices, float *eigenvalues)
{
	if (n < 1 || n > R5_EIG_MAX_N)
		return r5_set_error(R5_EINVAL, "eigen-decomposition: matrix size %d outside 1..%d", n, R5_EIG_MAX_N);
	int failed = 0;
#pragma omp parallel
	{
		r5_cf *scratch = malloc(sizeof(r5_cf) * R5_EIG_SCRATCH(n));
		if (!scratch) {
#pragma omp atomic write
			failed = 1;
		}
#pragma omp for schedule(dynamic, 64)
		for (long b = 0; b < batch; b++)
			if (scratch)
				r5_eig_herm_jacobi(n, (r5_cf *)matrices + b * n * n, eigenvalues + b * n, scratch);
		free(scratch);
	}
	if (failed)
		return r5_set_error(R5_ENOMEM, "eigen-decomposition scratch");
	return R5_OK;
}

