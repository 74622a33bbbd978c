/* Memory slots of the CUDA back end: device memory from the context's own stream-ordered pool,
 * host<->device transfers through two pinned staging buffers, device copies and the sync slot.
 *
 * Why a pool: cudaFree synchronises the whole device, and the reconstruction frees temporaries
 * (sums, norms, Walsh weights, residuals, eigen scratch) many times per job; cudaFreeAsync on the
 * context's stream returns the block to the pool in stream order, and the next allocation of the
 * same stream reuses it at once. The pool keeps up to s->pool_keep bytes across syncs (so a
 * server's working set is not given back and re-mapped job after job) and hands the rest back to
 * the driver at the next sync; destroying the state releases all of it.
 *
 * Why staging instead of cudaHostRegister: host arrays (k-space, images) come from malloc and
 * live for one job; pinning them costs a page walk and an IOMMU mapping per job, of the same
 * order as copying them, and pinning fails for the lazy (unpopulated) k-space grids. The two
 * pinned 8 MiB buffers are used in turn: the host fills one while the DMA engine drains the
 * other (upload), or drains one while the engine fills the other (download). An upload returns
 * as soon as its last chunk is queued (the host data has been copied out), so it no longer waits
 * for the stream. See gpu/NOTES.md for the expected rates. */
#include <stdio.h>
#include <string.h>

#include "cuda_common.h"

#define STATE(ptr) ((struct r5_cuda_state *)(ptr))

/* --- device memory --- */

static r5_status out_of_memory(struct r5_cuda_state *s, size_t bytes, const char *what, cudaError_t err)
{
	size_t free_bytes = 0, total_bytes = 0;
	unsigned long long used = 0;
	cudaMemGetInfo(&free_bytes, &total_bytes);
	cudaMemPoolGetAttribute(s->pool, cudaMemPoolAttrUsedMemCurrent, &used);
	cudaGetLastError(); /* allocation failures are not sticky: clear them */
	return r5_set_error(R5_ENOMEM,
			    "cuda: out of device memory for %s: %.1f MiB asked on device %d; this context holds "
			    "%.1f MiB, the device has %.1f of %.1f MiB free (%s)",
			    what, bytes / 1048576.0, s->device, (double)used / 1048576.0, free_bytes / 1048576.0,
			    total_bytes / 1048576.0, cudaGetErrorString(err));
}

r5_status r5_cuda_mem_alloc(struct r5_cuda_state *s, void **ptr, size_t bytes, const char *what)
{
	*ptr = NULL;
	R5_TRY(r5_cuda_activate(s));
	size_t asked = bytes ? bytes : 1;
	cudaError_t err = cudaMallocFromPoolAsync(ptr, asked, s->pool, s->stream);
	if (err == cudaErrorMemoryAllocation) {
		/* blocks this pool keeps may be too small or fragmented: give them back and retry once */
		cudaGetLastError();
		R5_CU("cudaStreamSynchronize (before trimming the pool)", cudaStreamSynchronize(s->stream));
		R5_CU("cudaMemPoolTrimTo", cudaMemPoolTrimTo(s->pool, 0));
		err = cudaMallocFromPoolAsync(ptr, asked, s->pool, s->stream);
	}
	if (err == cudaErrorMemoryAllocation) {
		*ptr = NULL;
		return out_of_memory(s, bytes, what, err);
	}
	if (err != cudaSuccess) {
		*ptr = NULL;
		return r5_cuda_check(err, "cudaMallocFromPoolAsync");
	}
	return R5_OK;
}

void r5_cuda_mem_free(struct r5_cuda_state *s, void *ptr)
{
	if (!ptr || s->retired) /* a retired context's memory goes with its pool */
		return;
	cudaError_t err = cudaSetDevice(s->device);
	if (err == cudaSuccess)
		err = cudaFreeAsync(ptr, s->stream);
	if (err != cudaSuccess)
		r5_warn("cuda cudaFreeAsync on device %d: %s", s->device, cudaGetErrorString(err));
}

r5_status r5_cuda_alloc(void *state, void **ptr, size_t bytes)
{
	return r5_cuda_mem_alloc(STATE(state), ptr, bytes, "an array");
}

void r5_cuda_free(void *state, void *ptr)
{
	r5_cuda_mem_free(STATE(state), ptr);
}

/* --- transfers --- */

static size_t chunk_bytes(size_t bytes, size_t offset)
{
	size_t left = bytes - offset;
	return left < R5_CUDA_STAGING_BYTES ? left : R5_CUDA_STAGING_BYTES;
}

r5_status r5_cuda_upload(void *state, void *dst, const void *host_src, size_t bytes)
{
	struct r5_cuda_state *s = STATE(state);
	if (!bytes)
		return R5_OK;
	R5_TRY(r5_cuda_activate(s));
	int buffer = 0;
	for (size_t offset = 0; offset < bytes; offset += R5_CUDA_STAGING_BYTES, buffer ^= 1) {
		size_t n = chunk_bytes(bytes, offset);
		/* the copy that last read this buffer has finished */
		R5_CU("cudaEventSynchronize (upload staging)", cudaEventSynchronize(s->staging_free[buffer]));
		memcpy(s->staging[buffer], (const char *)host_src + offset, n);
		R5_CU("cudaMemcpyAsync (host to device)",
		      cudaMemcpyAsync((char *)dst + offset, s->staging[buffer], n, cudaMemcpyHostToDevice, s->stream));
		R5_CU("cudaEventRecord (upload staging)", cudaEventRecord(s->staging_free[buffer], s->stream));
	}
	/* the host data is copied out already: the caller may free or reuse it on return */
	return R5_OK;
}

static r5_status download_chunk(struct r5_cuda_state *s, int buffer, const void *src, size_t bytes, size_t offset)
{
	R5_CU("cudaMemcpyAsync (device to host)",
	      cudaMemcpyAsync(s->staging[buffer], (const char *)src + offset, chunk_bytes(bytes, offset),
			      cudaMemcpyDeviceToHost, s->stream));
	R5_CU("cudaEventRecord (download staging)", cudaEventRecord(s->staging_free[buffer], s->stream));
	return R5_OK;
}

r5_status r5_cuda_download(void *state, void *host_dst, const void *src, size_t bytes)
{
	struct r5_cuda_state *s = STATE(state);
	if (!bytes)
		return R5_OK;
	R5_TRY(r5_cuda_activate(s));
	size_t step = R5_CUDA_STAGING_BYTES;
	/* chunk k goes through buffer k % 2; chunk k + 2 is queued once chunk k has been read */
	for (size_t k = 0; k < 2 && k * step < bytes; k++)
		R5_TRY(download_chunk(s, (int)k, src, bytes, k * step));
	for (size_t k = 0; k * step < bytes; k++) {
		int buffer = (int)(k & 1);
		R5_CU("cudaEventSynchronize (download)", cudaEventSynchronize(s->staging_free[buffer]));
		memcpy((char *)host_dst + k * step, s->staging[buffer], chunk_bytes(bytes, k * step));
		if ((k + 2) * step < bytes)
			R5_TRY(download_chunk(s, buffer, src, bytes, (k + 2) * step));
	}
	return R5_OK;
}

r5_status r5_cuda_copy(void *state, void *dst, const void *src, size_t bytes)
{
	struct r5_cuda_state *s = STATE(state);
	if (!bytes || dst == src)
		return R5_OK;
	R5_TRY(r5_cuda_activate(s));
	R5_CU("cudaMemcpyAsync (device to device)",
	      cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s->stream));
	return R5_OK;
}

/* cudaMemGetInfo's free memory plus what this state's pool reserves but does not use (its own
 * allocations reuse it first). */
r5_status r5_cuda_mem_info(void *state, size_t *free_bytes, size_t *total_bytes)
{
	struct r5_cuda_state *s = STATE(state);
	R5_TRY(r5_cuda_activate(s));
	size_t free_now = 0, total = 0;
	R5_CU("cudaMemGetInfo", cudaMemGetInfo(&free_now, &total));
	unsigned long long reserved = 0, used = 0; /* the attributes are 64-bit values */
	if (s->pool && cudaMemPoolGetAttribute(s->pool, cudaMemPoolAttrReservedMemCurrent, &reserved) == cudaSuccess &&
	    cudaMemPoolGetAttribute(s->pool, cudaMemPoolAttrUsedMemCurrent, &used) == cudaSuccess && reserved > used)
		free_now += (size_t)(reserved - used);
	*free_bytes = free_now;
	*total_bytes = total;
	return R5_OK;
}

r5_status r5_cuda_sync(void *state)
{
	struct r5_cuda_state *s = STATE(state);
	R5_TRY(r5_cuda_activate(s));
	R5_CU("cudaStreamSynchronize", cudaStreamSynchronize(s->stream));
	return R5_OK;
}
