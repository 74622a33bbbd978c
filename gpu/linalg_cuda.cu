/* Dense linear algebra slots of the CUDA back end: zgemm through cuBLAS (cublasCgemm, full FP32
 * on the context's stream) and zheev_batched as one thread per small Hermitian matrix running
 * the shared cyclic Jacobi routine of recon/core/eig_math.h (the CPU back end runs the same
 * routine, one matrix per OpenMP iteration). The Jacobi working copy lives in global memory,
 * n*n complex values per matrix, in chunks of at most R5_CUDA_EIG_SCRATCH_BYTES. */
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

__global__ void __launch_bounds__(EIG_THREADS)
	k_zheev(long count, int n, r5_cf *matrices, float *eigenvalues, r5_cf *scratch)
{
	long b = (long)blockIdx.x * blockDim.x + threadIdx.x;
	if (b >= count)
		return;
	long nn = (long)n * n;
	r5_eig_herm_jacobi(n, matrices + b * nn, eigenvalues + b * n, scratch + b * R5_EIG_SCRATCH(n));
}

r5_status r5_cuda_zheev_batched(void *state, long batch, int n, r5_cf *matrices, float *eigenvalues)
{
	struct r5_cuda_state *s = (struct r5_cuda_state *)state;
	if (n < 1 || n > R5_EIG_MAX_N)
		return r5_set_error(R5_EINVAL, "cuda eigen-decomposition: matrix size %d outside 1..%d", n, R5_EIG_MAX_N);
	if (batch < 0)
		return r5_set_error(R5_EINVAL, "cuda eigen-decomposition: negative batch %ld", batch);
	if (batch == 0)
		return R5_OK;
	R5_TRY(r5_cuda_activate(s));
	long per_matrix = R5_EIG_SCRATCH(n) * (long)sizeof(r5_cf);
	long chunk = R5_CUDA_EIG_SCRATCH_BYTES / per_matrix;
	if (chunk > batch)
		chunk = batch;
	if (chunk < 1)
		chunk = 1;
	r5_cf *scratch = NULL;
	cudaError_t err = cudaMalloc((void **)&scratch, (size_t)(chunk * per_matrix));
	if (err != cudaSuccess) {
		cudaGetLastError();
		return r5_set_error(R5_ENOMEM, "cuda eigen-decomposition scratch (%.1f MiB): %s",
				    chunk * per_matrix / 1048576.0, cudaGetErrorString(err));
	}
	r5_status st = R5_OK;
	long nn = (long)n * n;
	for (long first = 0; first < batch && st == R5_OK; first += chunk) {
		long count = batch - first < chunk ? batch - first : chunk;
		unsigned blocks = (unsigned)((count + EIG_THREADS - 1) / EIG_THREADS);
		k_zheev<<<blocks, EIG_THREADS, 0, s->stream>>>(count, n, matrices + first * nn, eigenvalues + first * n,
							      scratch);
		st = r5_cuda_launched("zheev_batched");
	}
	/* the scratch is reused chunk after chunk in stream order; free it once the stream is done */
	r5_status sync = r5_cuda_check(cudaStreamSynchronize(s->stream), "cudaStreamSynchronize (zheev)");
	cudaFree(scratch);
	return st != R5_OK ? st : sync;
}
