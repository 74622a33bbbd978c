/* Internal to the CUDA back end: the per-context state (device, stream, cuBLAS handle, memory
 * pool, pinned staging buffers, the shared cuFFT work area, reduction buffers) and the
 * error-checking helpers that turn every CUDA, cuFFT and cuBLAS failure into a status with
 * "cuda <call>: <reason>": R5_ENOMEM for device memory exhausted, R5_EDEVICE_LOST for a sticky
 * error (the context is unusable: the slot guard in backend_cuda.cu then retires the state and
 * every later call fails fast naming the first error), R5_EGPU otherwise. Functions here are
 * shared by the .cu files of gpu/ only. */
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

/* Host-device transfers go through two pinned buffers of this size, used in turn (one is
 * filled or drained by the host while the other is copied by the DMA engine). */
#define R5_CUDA_STAGING_BYTES ((size_t)8 << 20)

struct r5_cuda_state {
	int device; /* CUDA ordinal (r5_cuda_device_count counts usable devices; see there) */
	cudaStream_t stream;
	cublasHandle_t blas;
	/* Device memory: stream-ordered allocations from this context's own pool; freed blocks are
	 * reused without a device sync, and the pool keeps up to pool_keep bytes across syncs
	 * (the rest goes back to the driver at the next sync; all of it when the state goes). */
	cudaMemPool_t pool;
	size_t pool_keep;
	void *staging[2];              /* pinned host, R5_CUDA_STAGING_BYTES each */
	cudaEvent_t staging_free[2];   /* recorded after the copy that last used staging[i] */
	r5_dc *pinned_result;          /* pinned host, the reduction result */
	void *fft_work;                /* one cuFFT work area for every plan of this context */
	size_t fft_work_bytes;
	r5_dc *partials; /* device, R5_CUDA_REDUCE_BLOCKS + 1 (last = final result) */
	int retired;     /* a sticky error happened: every slot fails fast with retired_reason */
	char retired_reason[512];
	char name[256];
	size_t total_mem;
	int sm_count;
	int cc_major, cc_minor;
};

/* R5_OK on success; else the status of that error (R5_ENOMEM, R5_EDEVICE_LOST or R5_EGPU, see
 * above) with the call's name and CUDA's reason as the message. */
r5_status r5_cuda_check(cudaError_t err, const char *call);
/* Whether `err` leaves the CUDA context unusable (illegal address, launch failure, ...). */
int r5_cuda_error_is_sticky(cudaError_t err);
r5_status r5_cufft_check(cufftResult res, const char *call);
r5_status r5_cublas_check(cublasStatus_t res, const char *call);
/* Checks the last launch (cudaGetLastError) of kernel `name`. */
r5_status r5_cuda_launched(const char *name);
/* Makes the state's device current on the calling thread; fails fast (R5_EDEVICE_LOST naming
 * the first error) on a retired state. */
r5_status r5_cuda_activate(const struct r5_cuda_state *s);

/* Device memory for a slot's temporaries (and the array slots): from the state's pool, ordered
 * on its stream, so a free needs no device sync and the next allocation reuses the block.
 * `what` names the use in the R5_ENOMEM message (which says device memory and how much the
 * context and the device hold). */
r5_status r5_cuda_mem_alloc(struct r5_cuda_state *s, void **ptr, size_t bytes, const char *what);
void r5_cuda_mem_free(struct r5_cuda_state *s, void *ptr);
/* Makes the shared cuFFT work area at least `bytes` (fft_cuda.cu). */
r5_status r5_cuda_fft_work_reserve(struct r5_cuda_state *s, size_t bytes);

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
