/* The CUDA back end: fills every slot of struct r5_backend (recon/core/backend.h) for one
 * device and one stream per context.
 *
 * Element-wise kernels are grid-stride loops over the shared per-element functions of
 * recon/core/complex_math.h, so CPU and GPU compute the same function (up to FMA contraction).
 * zdot and znorm2sq accumulate in double with a fixed grid (R5_CUDA_REDUCE_BLOCKS, independent
 * of the device) and a fixed tree order, then a one-block final pass: results are
 * deterministic run to run. Strided (_md) kernels decompose a linear index over the collapsed
 * loop nest (dimensions of size 1 dropped, neighbours merged where every array is contiguous
 * across them). FFT: fft_cuda.cu; zgemm and zheev_batched: linalg_cuda.cu.
 *
 * Memory is cudaMalloc'd (never managed); transfers are cudaMemcpyAsync on the context's stream,
 * synchronised where the host needs the data (download, upload from pageable memory). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_common.h"
#include "../recon/core/loop_nest.h"

/* --- errors --- */

r5_status r5_cuda_check(cudaError_t err, const char *call)
{
	if (err == cudaSuccess)
		return R5_OK;
	return r5_set_error(R5_EGPU, "cuda %s: %s", call, cudaGetErrorString(err));
}

r5_status r5_cuda_launched(const char *name)
{
	cudaError_t err = cudaGetLastError();
	if (err == cudaSuccess)
		return R5_OK;
	return r5_set_error(R5_EGPU, "cuda launch of %s: %s", name, cudaGetErrorString(err));
}

static const char *cufft_reason(cufftResult res)
{
	switch (res) {
	case CUFFT_INVALID_PLAN: return "invalid plan";
	case CUFFT_ALLOC_FAILED: return "allocation failed";
	case CUFFT_INVALID_VALUE: return "invalid value";
	case CUFFT_INTERNAL_ERROR: return "internal error";
	case CUFFT_EXEC_FAILED: return "execution failed";
	case CUFFT_SETUP_FAILED: return "setup failed";
	case CUFFT_INVALID_SIZE: return "invalid size";
	case CUFFT_INVALID_DEVICE: return "invalid device";
	case CUFFT_NO_WORKSPACE: return "no workspace";
	case CUFFT_NOT_IMPLEMENTED: return "not implemented";
	case CUFFT_NOT_SUPPORTED: return "not supported";
	default: return "unknown cuFFT error";
	}
}

r5_status r5_cufft_check(cufftResult res, const char *call)
{
	if (res == CUFFT_SUCCESS)
		return R5_OK;
	return r5_set_error(R5_EGPU, "cuda %s: %s (cufftResult %d)", call, cufft_reason(res), (int)res);
}

r5_status r5_cublas_check(cublasStatus_t res, const char *call)
{
	if (res == CUBLAS_STATUS_SUCCESS)
		return R5_OK;
	return r5_set_error(R5_EGPU, "cuda %s: %s", call, cublasGetStatusString(res));
}

r5_status r5_cuda_activate(const struct r5_cuda_state *s)
{
	return r5_cuda_check(cudaSetDevice(s->device), "cudaSetDevice");
}

#define STATE(ptr) ((struct r5_cuda_state *)(ptr))
#define THREADS 256

/* --- state --- */

static void state_release(struct r5_cuda_state *s)
{
	if (s->partials)
		cudaFree(s->partials);
	if (s->blas)
		cublasDestroy(s->blas);
	if (s->stream)
		cudaStreamDestroy(s->stream);
	free(s);
}

static r5_status state_setup(struct r5_cuda_state *s)
{
	cudaDeviceProp prop;
	R5_CU("cudaSetDevice", cudaSetDevice(s->device));
	R5_CU("cudaGetDeviceProperties", cudaGetDeviceProperties(&prop, s->device));
	snprintf(s->name, sizeof s->name, "%s", prop.name);
	s->total_mem = prop.totalGlobalMem;
	s->sm_count = prop.multiProcessorCount;
	s->cc_major = prop.major;
	s->cc_minor = prop.minor;
	R5_CU("cudaStreamCreateWithFlags", cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking));
	R5_TRY(r5_cublas_check(cublasCreate(&s->blas), "cublasCreate"));
	R5_TRY(r5_cublas_check(cublasSetStream(s->blas, s->stream), "cublasSetStream"));
	/* full FP32 (no TF32 tensor-op shortcut), so that zgemm matches the CPU to ~1e-6 */
	R5_TRY(r5_cublas_check(cublasSetMathMode(s->blas, CUBLAS_DEFAULT_MATH), "cublasSetMathMode"));
	R5_CU("cudaMalloc", cudaMalloc((void **)&s->partials, sizeof(r5_dc) * (R5_CUDA_REDUCE_BLOCKS + 1)));
	return R5_OK;
}

r5_status r5_cuda_state_create(void **state, int device)
{
	*state = NULL;
	struct r5_cuda_state *s = (struct r5_cuda_state *)calloc(1, sizeof *s);
	if (!s)
		return r5_set_error(R5_ENOMEM, "cuda back end state");
	s->device = device;
	r5_status st = state_setup(s);
	if (st != R5_OK) {
		state_release(s);
		return r5_error_context(st, "CUDA device %d", device);
	}
	*state = s;
	return R5_OK;
}

void r5_cuda_state_destroy(void *state)
{
	struct r5_cuda_state *s = STATE(state);
	if (!s)
		return;
	cudaSetDevice(s->device);
	cudaStreamSynchronize(s->stream);
	state_release(s);
}

r5_status r5_cuda_describe(void *state, char *text, size_t size)
{
	struct r5_cuda_state *s = STATE(state);
	snprintf(text, size, "cuda: device %d %s (sm_%d%d), %.1f GiB, %d SMs", s->device, s->name, s->cc_major,
		 s->cc_minor, s->total_mem / 1073741824.0, s->sm_count);
	return R5_OK;
}

/* --- memory --- */

r5_status r5_cuda_alloc(void *state, void **ptr, size_t bytes)
{
	struct r5_cuda_state *s = STATE(state);
	*ptr = NULL;
	R5_TRY(r5_cuda_activate(s));
	cudaError_t err = cudaMalloc(ptr, bytes ? bytes : 1);
	if (err != cudaSuccess) {
		*ptr = NULL;
		cudaGetLastError(); /* allocation failures are not sticky: clear them */
		return r5_set_error(err == cudaErrorMemoryAllocation ? R5_ENOMEM : R5_EGPU,
				    "cuda cudaMalloc of %.1f MiB on device %d: %s", bytes / 1048576.0, s->device,
				    cudaGetErrorString(err));
	}
	return R5_OK;
}

void r5_cuda_free(void *state, void *ptr)
{
	struct r5_cuda_state *s = STATE(state);
	if (!ptr)
		return;
	cudaSetDevice(s->device);
	cudaError_t err = cudaFree(ptr); /* synchronises the device: pending kernels finish first */
	if (err != cudaSuccess)
		r5_warn("cuda cudaFree: %s", cudaGetErrorString(err));
}

r5_status r5_cuda_upload(void *state, void *dst, const void *host_src, size_t bytes)
{
	struct r5_cuda_state *s = STATE(state);
	if (!bytes)
		return R5_OK;
	R5_TRY(r5_cuda_activate(s));
	R5_CU("cudaMemcpyAsync (host to device)",
	      cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, s->stream));
	/* the caller may free or reuse the host buffer on return */
	R5_CU("cudaStreamSynchronize (upload)", cudaStreamSynchronize(s->stream));
	return R5_OK;
}

r5_status r5_cuda_download(void *state, void *host_dst, const void *src, size_t bytes)
{
	struct r5_cuda_state *s = STATE(state);
	if (!bytes)
		return R5_OK;
	R5_TRY(r5_cuda_activate(s));
	R5_CU("cudaMemcpyAsync (device to host)",
	      cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, s->stream));
	R5_CU("cudaStreamSynchronize (download)", cudaStreamSynchronize(s->stream));
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

r5_status r5_cuda_sync(void *state)
{
	struct r5_cuda_state *s = STATE(state);
	R5_TRY(r5_cuda_activate(s));
	R5_CU("cudaStreamSynchronize", cudaStreamSynchronize(s->stream));
	return R5_OK;
}

/* --- element-wise --- */

#define GRID_STRIDE(i, n) \
	for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (long)blockDim.x * gridDim.x)

__global__ void k_zfill(long n, r5_cf *x, r5_cf value)
{
	GRID_STRIDE(i, n) x[i] = value;
}

__global__ void k_zscale(long n, r5_cf *x, r5_cf alpha)
{
	GRID_STRIDE(i, n) x[i] = r5_cf_mul(alpha, x[i]);
}

__global__ void k_zaxpby(long n, r5_cf alpha, const r5_cf *x, r5_cf beta, r5_cf *y)
{
	GRID_STRIDE(i, n) y[i] = r5_cf_axpby(alpha, x[i], beta, y[i]);
}

__global__ void k_zunary(int op, long n, r5_cf *out, const r5_cf *in)
{
	GRID_STRIDE(i, n) out[i] = r5_cf_unary(op, in[i]);
}

__global__ void k_zsoftthresh(long n, float lambda, r5_cf *out, const r5_cf *in)
{
	GRID_STRIDE(i, n) out[i] = r5_cf_softthresh(in[i], lambda);
}

/* Launches `kernel` over n elements on the state's stream and checks the launch. */
#define LAUNCH_1D(s, name, n, kernel, ...)                                                  \
	do {                                                                                \
		if ((n) < 0)                                                                \
			return r5_set_error(R5_EINVAL, "cuda %s: negative length %ld", name, (long)(n)); \
		if ((n) == 0)                                                               \
			return R5_OK;                                                       \
		R5_TRY(r5_cuda_activate(s));                                                \
		kernel<<<r5_cuda_grid((n), THREADS), THREADS, 0, (s)->stream>>>(__VA_ARGS__); \
		return r5_cuda_launched(name);                                              \
	} while (0)

r5_status r5_cuda_zfill(void *state, long n, r5_cf *x, r5_cf value)
{
	LAUNCH_1D(STATE(state), "zfill", n, k_zfill, n, x, value);
}

r5_status r5_cuda_zscale(void *state, long n, r5_cf *x, r5_cf alpha)
{
	LAUNCH_1D(STATE(state), "zscale", n, k_zscale, n, x, alpha);
}

r5_status r5_cuda_zaxpby(void *state, long n, r5_cf alpha, const r5_cf *x, r5_cf beta, r5_cf *y)
{
	LAUNCH_1D(STATE(state), "zaxpby", n, k_zaxpby, n, alpha, x, beta, y);
}

r5_status r5_cuda_zunary(void *state, r5_unary_op op, long n, r5_cf *out, const r5_cf *in)
{
	LAUNCH_1D(STATE(state), "zunary", n, k_zunary, (int)op, n, out, in);
}

r5_status r5_cuda_zsoftthresh(void *state, long n, float lambda, r5_cf *out, const r5_cf *in)
{
	LAUNCH_1D(STATE(state), "zsoftthresh", n, k_zsoftthresh, n, lambda, out, in);
}

/* --- deterministic double-precision reductions --- */

/* In-block tree sum of (re, im) held by every thread; thread 0 gets the total. blockDim.x must
 * be R5_CUDA_REDUCE_THREADS (a power of two). */
__device__ r5_dc block_sum(double re, double im)
{
	__shared__ double sre[R5_CUDA_REDUCE_THREADS], sim[R5_CUDA_REDUCE_THREADS];
	int t = threadIdx.x;
	sre[t] = re;
	sim[t] = im;
	__syncthreads();
	for (int half = R5_CUDA_REDUCE_THREADS / 2; half > 0; half >>= 1) {
		if (t < half) {
			sre[t] += sre[t + half];
			sim[t] += sim[t + half];
		}
		__syncthreads();
	}
	r5_dc total;
	total.re = sre[0];
	total.im = sim[0];
	return total;
}

/* mode 0: sum conj(x) y; mode 1: sum |x|^2 (y unused). One partial per block. */
__global__ void __launch_bounds__(R5_CUDA_REDUCE_THREADS)
	k_reduce_partial(int mode, long n, const r5_cf *x, const r5_cf *y, r5_dc *partials)
{
	double re = 0.0, im = 0.0;
	GRID_STRIDE(i, n)
	{
		if (mode == 0) {
			r5_cf p = r5_cf_mulc(y[i], x[i]); /* conj(x) y, as the CPU back end */
			re += (double)r5_cf_re(p);
			im += (double)r5_cf_im(p);
		} else {
			re += (double)r5_cf_abs2(x[i]);
		}
	}
	r5_dc total = block_sum(re, im);
	if (threadIdx.x == 0)
		partials[blockIdx.x] = total;
}

/* One block: partials[0..n_parts-1] summed in a fixed order into *result. */
__global__ void __launch_bounds__(R5_CUDA_REDUCE_THREADS)
	k_reduce_final(int n_parts, const r5_dc *partials, r5_dc *result)
{
	double re = 0.0, im = 0.0;
	for (int i = threadIdx.x; i < n_parts; i += R5_CUDA_REDUCE_THREADS) {
		re += partials[i].re;
		im += partials[i].im;
	}
	r5_dc total = block_sum(re, im);
	if (threadIdx.x == 0)
		*result = total;
}

static r5_status reduce(struct r5_cuda_state *s, int mode, long n, const r5_cf *x, const r5_cf *y, r5_dc *result)
{
	result->re = result->im = 0.0;
	if (n < 0)
		return r5_set_error(R5_EINVAL, "cuda reduction: negative length %ld", n);
	if (n == 0)
		return R5_OK;
	R5_TRY(r5_cuda_activate(s));
	long blocks = (n + R5_CUDA_REDUCE_THREADS - 1) / R5_CUDA_REDUCE_THREADS;
	if (blocks > R5_CUDA_REDUCE_BLOCKS)
		blocks = R5_CUDA_REDUCE_BLOCKS;
	k_reduce_partial<<<(unsigned)blocks, R5_CUDA_REDUCE_THREADS, 0, s->stream>>>(mode, n, x, y, s->partials);
	R5_TRY(r5_cuda_launched(mode == 0 ? "zdot" : "znorm2sq"));
	r5_dc *final_slot = s->partials + R5_CUDA_REDUCE_BLOCKS;
	k_reduce_final<<<1, R5_CUDA_REDUCE_THREADS, 0, s->stream>>>((int)blocks, s->partials, final_slot);
	R5_TRY(r5_cuda_launched(mode == 0 ? "zdot (final)" : "znorm2sq (final)"));
	R5_CU("cudaMemcpyAsync (reduction result)",
	      cudaMemcpyAsync(result, final_slot, sizeof *result, cudaMemcpyDeviceToHost, s->stream));
	R5_CU("cudaStreamSynchronize (reduction)", cudaStreamSynchronize(s->stream));
	return R5_OK;
}

r5_status r5_cuda_zdot(void *state, long n, const r5_cf *x, const r5_cf *y, r5_dc *result)
{
	return reduce(STATE(state), 0, n, x, y, result);
}

r5_status r5_cuda_znorm2sq(void *state, long n, const r5_cf *x, double *result)
{
	r5_dc total;
	r5_status st = reduce(STATE(state), 1, n, x, x, &total);
	*result = total.re;
	return st;
}

/* --- strided loops --- */

/* Offsets of linear index i in arrays 0..N_ARRAYS-1 (x fastest). */
template <int N_ARRAYS>
__device__ void nest_offsets(const struct r5_loop_nest &nest, long i, long off[3])
{
	for (int a = 0; a < N_ARRAYS; a++)
		off[a] = 0;
	for (int r = 0; r < nest.rank; r++) {
		long idx = i % nest.dims[r];
		i /= nest.dims[r];
		for (int a = 0; a < N_ARRAYS; a++)
			off[a] += idx * nest.str[a][r];
	}
}

__global__ void k_zmul_md(struct r5_loop_nest nest, long total, r5_cf *out, const r5_cf *in1, const r5_cf *in2,
			  int conj, int accum)
{
	GRID_STRIDE(i, total)
	{
		long off[3];
		nest_offsets<3>(nest, i, off);
		r5_cf a = in1[off[1]], b = in2[off[2]];
		r5_cf v = conj ? r5_cf_mulc(a, b) : r5_cf_mul(a, b);
		out[off[0]] = accum ? r5_cf_add(out[off[0]], v) : v;
	}
}

__global__ void k_zcopy_md(struct r5_loop_nest nest, long total, r5_cf *out, const r5_cf *in)
{
	GRID_STRIDE(i, total)
	{
		long off[3];
		nest_offsets<2>(nest, i, off);
		out[off[0]] = in[off[1]];
	}
}

r5_status r5_cuda_zmul_md(void *state, const long dims[R5_DIMS], const long out_str[R5_DIMS], r5_cf *out,
			      const long in1_str[R5_DIMS], const r5_cf *in1, const long in2_str[R5_DIMS],
			      const r5_cf *in2, int flags)
{
	struct r5_cuda_state *s = STATE(state);
	struct r5_loop_nest nest;
	const long *const strides[3] = {out_str, in1_str, in2_str};
	long total = r5_loop_nest_make(&nest, dims, 3, strides);
	if (total < 0)
		return r5_set_error(R5_EINVAL, "cuda zmul_md: non-positive dimension");
	R5_TRY(r5_cuda_activate(s));
	k_zmul_md<<<r5_cuda_grid(total, THREADS), THREADS, 0, s->stream>>>(
		nest, total, out, in1, in2, (flags & R5_ZMUL_CONJ2) != 0, (flags & R5_ZMUL_ACCUM) != 0);
	return r5_cuda_launched("zmul_md");
}

r5_status r5_cuda_zcopy_md(void *state, const long dims[R5_DIMS], const long out_str[R5_DIMS], r5_cf *out,
			       const long in_str[R5_DIMS], const r5_cf *in)
{
	struct r5_cuda_state *s = STATE(state);
	struct r5_loop_nest nest;
	const long *const strides[3] = {out_str, in_str, NULL};
	long total = r5_loop_nest_make(&nest, dims, 2, strides);
	if (total < 0)
		return r5_set_error(R5_EINVAL, "cuda zcopy_md: non-positive dimension");
	R5_TRY(r5_cuda_activate(s));
	k_zcopy_md<<<r5_cuda_grid(total, THREADS), THREADS, 0, s->stream>>>(nest, total, out, in);
	return r5_cuda_launched("zcopy_md");
}

/* One thread per output element; the sum over `n` runs in the CPU back end's order (float). */
__global__ void k_zsum_dim(long inner, long n, long outer, r5_cf *out, const r5_cf *in)
{
	GRID_STRIDE(j, inner * outer)
	{
		long o = j / inner, i = j % inner;
		float re = 0.0f, im = 0.0f;
		for (long k = 0; k < n; k++) {
			r5_cf v = in[(o * n + k) * inner + i];
			re += r5_cf_re(v);
			im += r5_cf_im(v);
		}
		out[j] = r5_cf_make(re, im);
	}
}

r5_status r5_cuda_zsum_dim(void *state, const long dims[R5_DIMS], int dim, r5_cf *out, const r5_cf *in)
{
	struct r5_cuda_state *s = STATE(state);
	if (dim < 0 || dim >= R5_DIMS)
		return r5_set_error(R5_EINVAL, "cuda zsum_dim: dimension %d outside 0..%d", dim, R5_DIMS - 1);
	long inner = 1, outer = 1, n = dims[dim];
	for (int d = 0; d < dim; d++)
		inner *= dims[d];
	for (int d = dim + 1; d < R5_DIMS; d++)
		outer *= dims[d];
	if (inner <= 0 || outer <= 0 || n <= 0)
		return r5_set_error(R5_EINVAL, "cuda zsum_dim: non-positive dimension");
	R5_TRY(r5_cuda_activate(s));
	k_zsum_dim<<<r5_cuda_grid(inner * outer, THREADS), THREADS, 0, s->stream>>>(inner, n, outer, out, in);
	return r5_cuda_launched("zsum_dim");
}

/* --- the table --- */

/* The table, generated from the slot list (backend.h) in its order (nvcc compiles C++, which has
 * no designated initialisers before C++20): every slot is r5_cuda_<slot>, declared from the same
 * list in cuda_common.h, defined here or in the file of its concern (fft_cuda.cu,
 * linalg_cuda.cu, ...). */
#define R5_CUDA_SLOT(ret, slot, params) r5_cuda_##slot,
static const struct r5_backend cuda_backend = {
	"cuda",
	R5_DEVICE,
	R5_BACKEND_SLOTS(R5_CUDA_SLOT)
};
#undef R5_CUDA_SLOT

extern "C" const struct r5_backend *r5_backend_cuda(void)
{
	return &cuda_backend;
}

extern "C" int r5_cuda_device_count(void)
{
	int count = 0;
	cudaError_t err = cudaGetDeviceCount(&count);
	if (err != cudaSuccess) {
		cudaGetLastError(); /* no driver / no device: not an error for the caller */
		return 0;
	}
	return count;
}

extern "C" int r5_cuda_abi_layout(size_t layout[7])
{
	layout[0] = sizeof(struct r5_backend);
	layout[1] = offsetof(struct r5_backend, zfill);
	layout[2] = offsetof(struct r5_backend, zdot);
	layout[3] = offsetof(struct r5_backend, zmul_md);
	layout[4] = offsetof(struct r5_backend, fft_exec);
	layout[5] = offsetof(struct r5_backend, zgemm);
	layout[6] = offsetof(struct r5_backend, zheev_batched);
	return 7;
}
