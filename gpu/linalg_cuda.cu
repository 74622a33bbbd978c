/* Dense linear algebra slots of the CUDA back end: zgemm through cuBLAS (cublasCgemm, full FP32
 * on the context's stream) and zheev_batched / zheev_top_batched as one thread per small
 * Hermitian matrix running the shared double-precision routine of recon/core/eig_math.h (the
 * CPU back end runs the same routine, one matrix per OpenMP iteration). Its scratch lives in
 * global memory, R5_EIG_SCRATCH(n) doubles per matrix interleaved across the threads (from the
 * context's pool), in chunks of at most R5_CUDA_EIG_SCRATCH_BYTES. */
#include <limits.h>

#include "../recon/core/eig_math.h"
#include "cuda_common.h"

#define R5_CUDA_EIG_SCRATCH_BYTES (256L * 1024 * 1024)
#define EIG_THREADS 64

static int fits_int(long v) { return v >= 0 && v <= INT_MAX; }

r5_status r5_cuda_zgemm(void *state, int trans_a, long m, long n, long k, r5_cf alpha, const r5_cf *a, long lda,
			const r5_cf *b, long ldb, r5_cf beta, r5_cf *c, long ldc)
{
	struct r5_cuda_state *s = (struct r5_cuda_state *)state;
	if (!fits_int(m) || !fits_int(n) || !fits_int(k) || !fits_int(lda) || !fits_int(ldb) || !fits_int(ldc))
		return r5_set_error(R5_ERANGE, "cuda zgemm: sizes m=%ld n=%ld k=%ld (lda %ld ldb %ld ldc %ld) outside "
					       "cuBLAS's int range",
				    m, n, k, lda, ldb, ldc);
	R5_TRY(r5_cuda_activate(s));
	cuComplex alpha_c = alpha, beta_c = beta;
	return r5_cublas_check(cublasCgemm(s->blas, trans_a ? CUBLAS_OP_C : CUBLAS_OP_N, CUBLAS_OP_N, (int)m, (int)n,
					   (int)k, &alpha_c, a, (int)lda, b, (int)ldb, &beta_c, c, (int)ldc),
			       "cublasCgemm");
}

/* One thread per matrix; thread t's scratch element i at scratch[i * count + t], so that a
 * warp's 32 threads touch 32 consecutive doubles (coalesced). */
__global__ void __launch_bounds__(EIG_THREADS)
	k_zheev_top(long count, int n, int k, r5_cf *matrices, float *eigenvalues, double *scratch, int *not_converged)
{
	long b = (long)blockIdx.x * blockDim.x + threadIdx.x;
	if (b >= count)
		return;
	if (r5_eig_herm_top(n, k, matrices + b * n * n, eigenvalues + b * n, scratch + b, count))
		*not_converged = 1;
}

r5_status r5_cuda_zheev_top_batched(void *state, long batch, int n, int k, r5_cf *matrices, float *eigenvalues)
{
	struct r5_cuda_state *s = (struct r5_cuda_state *)state;
	if (n < 1 || n > R5_EIG_MAX_N || k < 1 || k > n)
		return r5_set_error(R5_EINVAL, "cuda eigen-decomposition: matrix size %d outside 1..%d or %d vectors", n,
				    R5_EIG_MAX_N, k);
	if (batch < 0)
		return r5_set_error(R5_EINVAL, "cuda eigen-decomposition: negative batch %ld", batch);
	if (batch == 0)
		return R5_OK;
	R5_TRY(r5_cuda_activate(s));
	long per_matrix = R5_EIG_SCRATCH(n) * (long)sizeof(double);
	long chunk = R5_CUDA_EIG_SCRATCH_BYTES / per_matrix;
	chunk = chunk > batch ? batch : chunk < 1 ? 1 : chunk;
	double *scratch = NULL;
	R5_TRY(r5_cuda_mem_alloc(s, (void **)&scratch, (size_t)(chunk * per_matrix) + 256,
				 "the eigen-decomposition scratch"));
	int *flag = (int *)(scratch + chunk * R5_EIG_SCRATCH(n));
	r5_status st = r5_cuda_check(cudaMemsetAsync(flag, 0, sizeof *flag, s->stream), "cudaMemsetAsync (zheev)");
	long nn = (long)n * n;
	for (long first = 0; first < batch && st == R5_OK; first += chunk) {
		long count = batch - first < chunk ? batch - first : chunk;
		unsigned blocks = (unsigned)((count + EIG_THREADS - 1) / EIG_THREADS);
		k_zheev_top<<<blocks, EIG_THREADS, 0, s->stream>>>(count, n, k, matrices + first * nn,
								  eigenvalues + first * n, scratch, flag);
		st = r5_cuda_launched("zheev_top_batched");
	}
	/* the scratch is reused chunk after chunk in stream order and freed in stream order; the
	 * convergence flag needs the stream done */
	int not_converged = 0;
	r5_status sync = r5_cuda_check(cudaMemcpyAsync(&not_converged, flag, sizeof not_converged,
						       cudaMemcpyDeviceToHost, s->stream), "cudaMemcpyAsync (zheev)");
	r5_cuda_mem_free(s, scratch);
	if (sync == R5_OK)
		sync = r5_cuda_check(cudaStreamSynchronize(s->stream), "cudaStreamSynchronize (zheev)");
	if (st == R5_OK && sync == R5_OK && not_converged)
		return r5_set_error(R5_EINTERNAL, "cuda eigen-decomposition of %ld matrices %d x %d: QL did not converge",
				    batch, n, n);
	return st != R5_OK ? st : sync;
}

r5_status r5_cuda_zheev_batched(void *state, long batch, int n, r5_cf *matrices, float *eigenvalues)
{
	return r5_cuda_zheev_top_batched(state, batch, n, n, matrices, eigenvalues);
}
