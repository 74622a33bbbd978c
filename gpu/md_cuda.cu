/* CUDA back end: the slots of the reconstruction kit — circular shift, box projection,
 * reductions over dimensions, strided axpby. Each kernel uses the index and accumulator math
 * of recon/core/md_math.h (and loop_nest.h, complex_math.h) that the CPU back end uses too
 * (recon/cpu/cpu_md.c), so both compute the same function.
 *
 * zcircshift is one pass: one thread per input element writes it to its shifted place (reads
 * coalesced; writes coalesced except at the one wrap point of each row). */
#include "cuda_common.h"
#include "../recon/core/loop_nest.h"
#include "../recon/core/md_math.h"

#define MD_THREADS 256

#define MD_GRID_STRIDE(i, n) \
	for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (long)blockDim.x * gridDim.x)

static __global__ void md_k_zcircshift(struct r5_shift_nest nest, long total, r5_cf *out, const r5_cf *in)
{
	MD_GRID_STRIDE(i, total) out[r5_shift_nest_dst(&nest, 0, i)] = in[i];
}

r5_status r5_cuda_zcircshift(void *state, const long dims[R5_DIMS], const long shifts[R5_DIMS], r5_cf *out,
			     const r5_cf *in)
{
	struct r5_cuda_state *s = (struct r5_cuda_state *)state;
	for (int d = 0; d < R5_DIMS; d++)
		if (dims[d] <= 0)
			return r5_set_error(R5_EINVAL, "cuda zcircshift: dimension %d is %ld", d, dims[d]);
	struct r5_shift_nest nest;
	long total = r5_shift_nest_make(&nest, dims, shifts);
	R5_TRY(r5_cuda_activate(s));
	md_k_zcircshift<<<r5_cuda_grid(total, MD_THREADS), MD_THREADS, 0, s->stream>>>(nest, total, out, in);
	return r5_cuda_launched("zcircshift");
}

static __global__ void md_k_zclamp(long n, float lo, float hi, r5_cf *out, const r5_cf *in)
{
	MD_GRID_STRIDE(i, n) out[i] = r5_cf_clamp_re(in[i], lo, hi);
}

r5_status r5_cuda_zclamp(void *state, long n, float lo, float hi, r5_cf *out, const r5_cf *in)
{
	struct r5_cuda_state *s = (struct r5_cuda_state *)state;
	if (n < 0)
		return r5_set_error(R5_EINVAL, "cuda zclamp: negative length %ld", n);
	if (n == 0)
		return R5_OK;
	R5_TRY(r5_cuda_activate(s));
	md_k_zclamp<<<r5_cuda_grid(n, MD_THREADS), MD_THREADS, 0, s->stream>>>(n, lo, hi, out, in);
	return r5_cuda_launched("zclamp");
}
