/* Internal to the CUDA back end: the per-context state (device, stream, cuBLAS handle,
 * reduction buffers) and the error-checking helpers that turn every CUDA, cuFFT and cuBLAS
 * failure into R5_EGPU with "cuda <call>: <reason>". Functions here are shared by the .cu
 * files of gpu/ only. */
#ifndef R5_GPU_CUDA_COMMON_H
#define R5_GPU_CUDA_COMMON_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cufft.h>

#include "cuda_abi.h"

/* Deterministic reductions use a fixed number of blocks (independent of the device), so the
 * summation order, and hence the result, is the same on every GPU. */
#define R5_CUDA_REDUCE_BLOCKS 1024
#define R5_CUDA_REDUCE_THREADS 256

struct r5_cuda_state {
	int device;
	cudaStream_t stream;
	cublasHandle_t blas;
	r5_dc *partials; /* device, R5_CUDA_REDUCE_BLOCKS + 1 (last = final result) */
	char name[256];
	size_t total_mem;
	int sm_count;
	int cc_major, cc_minor;
};

/* Returns R5_EGPU with the call's name and CUDA's reason (or R5_OK on cudaSuccess). */
r5_status r5_cuda_check(cudaError_t err, const char *call);
r5_status r5_cufft_check(cufftResult res, const char *call);
r5_status r5_cublas_check(cublasStatus_t res, const char *call);
/* Checks the last launch (cudaGetLastError) of kernel `name`. */
r5_status r5_cuda_launched(const char *name);
/* Makes the state's device current on the calling thread. */
r5_status r5_cuda_activate(const struct r5_cuda_state *s);

#define R5_CU(call_name, expr) R5_TRY(r5_cuda_check((expr), call_name))

/* Grid for a grid-stride loop over n elements (n > 0). */
static inline unsigned r5_cuda_grid(long n, int threads)
{
	long blocks = (n + threads - 1) / threads;
	if (blocks > 65535L * 8)
		blocks = 65535L * 8; /* grid-stride loops cover the rest */
	return (unsigned)blocks;
}

/* Every slot function, r5_cuda_<slot>, declared from the slot list (backend_slots.h): the
 * table in backend_cuda.cu names them all, so a slot defined nowhere does not link. */
#define R5_CUDA_DECLARE(ret, slot, params) ret r5_cuda_##slot params;
R5_BACKEND_SLOTS(R5_CUDA_DECLARE)
#undef R5_CUDA_DECLARE

#endif
