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

/* --- reductions ---
 * Many outputs, or few values each: one thread per output, in index order (as the CPU).
 * Otherwise one block of MD_THREADS per (output, split): thread t combines the block's values
 * t, t + MD_THREADS, ..., then a fixed tree merges the threads. With few outputs (n_out <= 512)
 * each output's values are cut into `splits` ranges (as many as fit in the state's
 * R5_CUDA_REDUCE_BLOCKS partials) whose partial results a second kernel merges in order. The
 * split count depends on the sizes only, never on the device: results repeat run to run. */

#define MD_REDUCE_PER_THREAD 32    /* outputs with at most this many values: one thread each */
#define MD_REDUCE_MANY_OUTPUTS 32768 /* or this many outputs at least: one thread each too */
#define MD_REDUCE_SPLIT_MIN 16384  /* values per split at least */

static __global__ void md_k_reduce_thread(int op, struct r5_reduce_nest nest, r5_cf *out, const r5_cf *in)
{
	MD_GRID_STRIDE(o, nest.n_out)
	{
		const r5_cf *base = in + r5_nest_offset(&nest.keep, 1, o);
		struct r5_acc acc = r5_reduce_range(op, base, &nest.red, 0, nest.n_red, r5_acc_zero());
		out[r5_nest_offset(&nest.keep, 0, o)] = r5_acc_result(op, acc);
	}
}

/* Tree merge of one value per thread; thread 0 returns the block's result. */
static __device__ struct r5_acc md_block_merge(int op, struct r5_acc mine)
{
	__shared__ struct r5_acc shared[MD_THREADS];
	int t = threadIdx.x;
	shared[t] = mine;
	__syncthreads();
	for (int half = MD_THREADS / 2; half > 0; half >>= 1) {
		if (t < half)
			shared[t] = r5_acc_merge(op, shared[t], shared[t + half]);
		__syncthreads();
	}
	return shared[0];
}

static __global__ void __launch_bounds__(MD_THREADS)
	md_k_reduce_block(int op, struct r5_reduce_nest nest, long splits, r5_cf *out, const r5_cf *in,
			  struct r5_acc *partials)
{
	long per = (nest.n_red + splits - 1) / splits;
	for (long b = blockIdx.x; b < nest.n_out * splits; b += gridDim.x) {
		long o = b / splits, k = b % splits;
		long begin = k * per, end = begin + per < nest.n_red ? begin + per : nest.n_red;
		const r5_cf *base = in + r5_nest_offset(&nest.keep, 1, o);
		struct r5_acc acc = r5_acc_zero();
		for (long i = begin + threadIdx.x; i < end; i += MD_THREADS)
			acc = r5_acc_add(op, acc, base[r5_nest_offset(&nest.red, 0, i)]);
		acc = md_block_merge(op, acc);
		if (threadIdx.x == 0) {
			if (splits == 1)
				out[r5_nest_offset(&nest.keep, 0, o)] = r5_acc_result(op, acc);
			else
				partials[b] = acc;
		}
		__syncthreads(); /* shared[] is reused by the next b */
	}
}

static __global__ void md_k_reduce_merge(int op, struct r5_reduce_nest nest, long splits, r5_cf *out,
					 const struct r5_acc *partials)
{
	MD_GRID_STRIDE(o, nest.n_out)
	{
		struct r5_acc acc = r5_acc_zero();
		for (long k = 0; k < splits; k++)
			acc = r5_acc_merge(op, acc, partials[o * splits + k]);
		out[r5_nest_offset(&nest.keep, 0, o)] = r5_acc_result(op, acc);
	}
}

r5_status r5_cuda_zreduce_md(void *state, r5_reduce_op op, const long dims[R5_DIMS], const long out_str[R5_DIMS],
			     r5_cf *out, const long in_str[R5_DIMS], const r5_cf *in)
{
	struct r5_cuda_state *s = (struct r5_cuda_state *)state;
	struct r5_reduce_nest nest;
	if (r5_reduce_nest_make(&nest, dims, out_str, in_str) < 0)
		return r5_set_error(R5_EINVAL, "cuda zreduce_md: non-positive dimension");
	if (op != R5_REDUCE_SUM && op != R5_REDUCE_MAXABS)
		return r5_set_error(R5_EINVAL, "cuda zreduce_md: unknown operation %d", (int)op);
	R5_TRY(r5_cuda_activate(s));
	if (nest.n_red <= MD_REDUCE_PER_THREAD || nest.n_out >= MD_REDUCE_MANY_OUTPUTS) {
		md_k_reduce_thread<<<r5_cuda_grid(nest.n_out, MD_THREADS), MD_THREADS, 0, s->stream>>>((int)op, nest, out,
												in);
		return r5_cuda_launched("zreduce_md (per thread)");
	}
	long splits = 1;
	if (nest.n_out <= R5_CUDA_REDUCE_BLOCKS / 2) {
		splits = nest.n_red / MD_REDUCE_SPLIT_MIN;
		long room = R5_CUDA_REDUCE_BLOCKS / nest.n_out;
		splits = splits < 1 ? 1 : splits > room ? room : splits;
	}
	struct r5_acc *partials = (struct r5_acc *)s->partials; /* two doubles each, like r5_dc */
	long blocks = nest.n_out * splits;
	if (blocks > 65535L * 8)
		blocks = 65535L * 8;
	md_k_reduce_block<<<(unsigned)blocks, MD_THREADS, 0, s->stream>>>((int)op, nest, splits, out, in, partials);
	R5_TRY(r5_cuda_launched("zreduce_md (per block)"));
	if (splits == 1)
		return R5_OK;
	md_k_reduce_merge<<<r5_cuda_grid(nest.n_out, MD_THREADS), MD_THREADS, 0, s->stream>>>((int)op, nest, splits,
											 out, partials);
	return r5_cuda_launched("zreduce_md (merge)");
}

/* --- strided axpby --- */

static __global__ void md_k_zaxpby_md(struct r5_loop_nest nest, long total, r5_cf alpha, const r5_cf *x, r5_cf beta,
				      r5_cf *y)
{
	MD_GRID_STRIDE(i, total)
	{
		long oy = r5_nest_offset(&nest, 0, i), ox = r5_nest_offset(&nest, 1, i);
		y[oy] = r5_cf_axpby(alpha, x[ox], beta, y[oy]);
	}
}

r5_status r5_cuda_zaxpby_md(void *state, const long dims[R5_DIMS], r5_cf alpha, const long x_str[R5_DIMS],
			    const r5_cf *x, r5_cf beta, const long y_str[R5_DIMS], r5_cf *y)
{
	struct r5_cuda_state *s = (struct r5_cuda_state *)state;
	struct r5_loop_nest nest;
	const long *const strides[3] = {y_str, x_str, NULL};
	long total = r5_loop_nest_make(&nest, dims, 2, strides);
	if (total < 0)
		return r5_set_error(R5_EINVAL, "cuda zaxpby_md: non-positive dimension");
	R5_TRY(r5_cuda_activate(s));
	md_k_zaxpby_md<<<r5_cuda_grid(total, MD_THREADS), MD_THREADS, 0, s->stream>>>(nest, total, alpha, x, beta, y);
	return r5_cuda_launched("zaxpby_md");
}
