/* The CUDA back end: fills every slot of struct r5_backend (recon/core/backend.h) for one
 * device and one stream per context.
 *
 * Element-wise kernels are grid-stride loops over the shared per-element functions of
 * recon/core/complex_math.h, so CPU and GPU compute the same function (up to FMA contraction).
 * zdot and znorm2sq accumulate in double with a fixed grid (R5_CUDA_REDUCE_BLOCKS, independent
 * of the device) and a fixed tree order, then a one-block final pass: results are
 * deterministic run to run. Strided (_md) kernels decompose a linear index over the collapsed
 * loop nest (dimensions of size 1 dropped, neighbours merged where every array is contiguous
 * across them). Memory and transfers: memory_cuda.cu (stream-ordered pool, pinned staging);
 * FFT: fft_cuda.cu; zgemm and zheev_batched: linalg_cuda.cu.
 *
 * Failures: a sticky CUDA error (illegal address, launch failure, ...) comes back from any slot
 * as R5_EDEVICE_LOST and retires the state (slot_guard below): every later call fails fast with
 * the first error's message, and the owner destroys the context and makes a new one. Devices
 * count as usable only where this binary has code for them (end of this file). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include "cuda_common.h"
#include "../recon/core/loop_nest.h"

/* --- errors --- */

int r5_cuda_error_is_sticky(cudaError_t err)
{
	switch (err) {
	case cudaErrorIllegalAddress:
	case cudaErrorLaunchTimeout:
	case cudaErrorAssert:
	case cudaErrorHardwareStackError:
	case cudaErrorIllegalInstruction:
	case cudaErrorMisalignedAddress:
	case cudaErrorInvalidAddressSpace:
	case cudaErrorInvalidPc:
	case cudaErrorLaunchFailure:
	case cudaErrorTensorMemoryLeak:
	case cudaErrorECCUncorrectable:
	case cudaErrorNvlinkUncorrectable:
	case cudaErrorContained:
	case cudaErrorContextIsDestroyed:
	case cudaErrorExternalDevice:
	case cudaErrorUnknown: return 1;
	default: return 0;
	}
}

r5_status r5_cuda_check(cudaError_t err, const char *call)
{
	if (err == cudaSuccess)
		return R5_OK;
	if (err == cudaErrorMemoryAllocation) {
		cudaGetLastError(); /* not sticky: clear it */
		return r5_set_error(R5_ENOMEM, "cuda %s: out of device memory (%s)", call, cudaGetErrorString(err));
	}
	if (r5_cuda_error_is_sticky(err))
		return r5_set_error(R5_EDEVICE_LOST, "cuda %s: %s (%s; the device context is unusable)", call,
				    cudaGetErrorString(err), cudaGetErrorName(err));
	return r5_set_error(R5_EGPU, "cuda %s: %s", call, cudaGetErrorString(err));
}

r5_status r5_cuda_launched(const char *name)
{
	cudaError_t err = cudaGetLastError();
	if (err == cudaSuccess)
		return R5_OK;
	char call[96];
	snprintf(call, sizeof call, "launch of %s", name);
	return r5_cuda_check(err, call);
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

/* A library call failed: if the context holds a sticky error, that is the reason (the library's
 * own code, e.g. CUFFT_EXEC_FAILED, says less). A query of the legacy stream (which recon5t
 * never uses, so it neither blocks nor waits) returns a sticky error whichever thread or library
 * met it first. */
static r5_status library_failure(r5_status code, const char *call, const char *reason, int value)
{
	cudaError_t runtime = cudaPeekAtLastError();
	if (!r5_cuda_error_is_sticky(runtime))
		runtime = cudaStreamQuery(0);
	if (!r5_cuda_error_is_sticky(runtime))
		cudaGetLastError(); /* a non-sticky error of the probe: not ours to keep */
	if (r5_cuda_error_is_sticky(runtime))
		return r5_set_error(R5_EDEVICE_LOST, "cuda %s: %s (%d), after %s (%s; the device context is unusable)",
				    call, reason, value, cudaGetErrorString(runtime), cudaGetErrorName(runtime));
	if (code == R5_ENOMEM)
		return r5_set_error(R5_ENOMEM, "cuda %s: out of device memory (%s, %d)", call, reason, value);
	return r5_set_error(code, "cuda %s: %s (%d)", call, reason, value);
}

r5_status r5_cufft_check(cufftResult res, const char *call)
{
	if (res == CUFFT_SUCCESS)
		return R5_OK;
	return library_failure(res == CUFFT_ALLOC_FAILED ? R5_ENOMEM : R5_EGPU, call, cufft_reason(res), (int)res);
}

r5_status r5_cublas_check(cublasStatus_t res, const char *call)
{
	if (res == CUBLAS_STATUS_SUCCESS)
		return R5_OK;
	return library_failure(res == CUBLAS_STATUS_ALLOC_FAILED ? R5_ENOMEM : R5_EGPU, call,
			       cublasGetStatusString(res), (int)res);
}

r5_status r5_cuda_activate(const struct r5_cuda_state *s)
{
	if (s->retired)
		return r5_set_error(R5_EDEVICE_LOST, "cuda device %d is retired after an earlier error: %s", s->device,
				    s->retired_reason);
	return r5_cuda_check(cudaSetDevice(s->device), "cudaSetDevice");
}

#define STATE(ptr) ((struct r5_cuda_state *)(ptr))
#define THREADS 256

/* --- state --- */

/* The device's usable-ordinal table and its code check: the end of this file. */
static r5_status device_ordinal(int index, int *ordinal);
static r5_status check_code_for(int ordinal);

/* What the pool keeps across syncs: an eighth of the device (a worker's working set is reused
 * without going back to the driver; beyond that, memory returns at the next sync). */
static size_t pool_keep_bytes(size_t total_mem) { return total_mem / 8; }

static void state_release(struct r5_cuda_state *s)
{
	if (s->partials)
		cudaFree(s->partials);
	if (s->fft_work)
		cudaFreeAsync(s->fft_work, s->stream);
	for (int i = 0; i < 2; i++) {
		if (s->staging[i])
			cudaFreeHost(s->staging[i]);
		if (s->staging_free[i])
			cudaEventDestroy(s->staging_free[i]);
	}
	if (s->pinned_result)
		cudaFreeHost(s->pinned_result);
	if (s->blas)
		cublasDestroy(s->blas);
	if (s->stream)
		cudaStreamDestroy(s->stream);
	if (s->pool)
		cudaMemPoolDestroy(s->pool); /* blocks still in use are released when freed */
	free(s);
}

static r5_status pool_setup(struct r5_cuda_state *s)
{
	cudaMemPoolProps props;
	memset(&props, 0, sizeof props);
	props.allocType = cudaMemAllocationTypePinned;
	props.handleTypes = cudaMemHandleTypeNone;
	props.location.type = cudaMemLocationTypeDevice;
	props.location.id = s->device;
	R5_CU("cudaMemPoolCreate", cudaMemPoolCreate(&s->pool, &props));
	s->pool_keep = pool_keep_bytes(s->total_mem);
	unsigned long long keep = s->pool_keep; /* the attribute is a 64-bit value */
	R5_CU("cudaMemPoolSetAttribute (release threshold)",
	      cudaMemPoolSetAttribute(s->pool, cudaMemPoolAttrReleaseThreshold, &keep));
	return R5_OK;
}

static r5_status staging_setup(struct r5_cuda_state *s)
{
	for (int i = 0; i < 2; i++) {
		R5_CU("cudaMallocHost (staging)", cudaMallocHost(&s->staging[i], R5_CUDA_STAGING_BYTES));
		R5_CU("cudaEventCreateWithFlags (staging)",
		      cudaEventCreateWithFlags(&s->staging_free[i], cudaEventDisableTiming));
	}
	R5_CU("cudaMallocHost (reduction result)", cudaMallocHost((void **)&s->pinned_result, sizeof(r5_dc)));
	return R5_OK;
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
	R5_TRY(check_code_for(s->device));
	R5_CU("cudaStreamCreateWithFlags", cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking));
	R5_TRY(pool_setup(s));
	R5_TRY(staging_setup(s));
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
	int ordinal = 0;
	R5_TRY(device_ordinal(device, &ordinal));
	struct r5_cuda_state *s = (struct r5_cuda_state *)calloc(1, sizeof *s);
	if (!s)
		return r5_set_error(R5_ENOMEM, "cuda back end state");
	s->device = ordinal;
	r5_status st = state_setup(s);
	if (st != R5_OK) {
		state_release(s);
		return r5_error_context(st, "CUDA device %d", ordinal);
	}
	*state = s;
	return R5_OK;
}

/* The stream drains before anything it may still use goes; on a retired context there is
 * nothing to wait for (every call returns the sticky error) and nothing is logged twice. */
void r5_cuda_state_destroy(void *state)
{
	struct r5_cuda_state *s = STATE(state);
	if (!s)
		return;
	if (!s->retired) {
		r5_status st = r5_cuda_check(cudaSetDevice(s->device), "cudaSetDevice");
		if (st == R5_OK)
			st = r5_cuda_check(cudaStreamSynchronize(s->stream), "cudaStreamSynchronize (context end)");
		if (st != R5_OK)
			r5_warn("cuda device %d: context destroyed after a failed sync: %s", s->device, r5_last_error());
	}
	state_release(s);
}

r5_status r5_cuda_describe(void *state, char *text, size_t size)
{
	struct r5_cuda_state *s = STATE(state);
	snprintf(text, size, "cuda: device %d %s (sm_%d%d), %.1f GiB, %d SMs", s->device, s->name, s->cc_major,
		 s->cc_minor, s->total_mem / 1073741824.0, s->sm_count);
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
	/* into pinned memory: a true async copy, no pageable bounce */
	R5_CU("cudaMemcpyAsync (reduction result)",
	      cudaMemcpyAsync(s->pinned_result, final_slot, sizeof *result, cudaMemcpyDeviceToHost, s->stream));
	R5_CU("cudaStreamSynchronize (reduction)", cudaStreamSynchronize(s->stream));
	*result = *s->pinned_result;
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

/* --- the table --- */

/* Retires a state after a sticky error: every later slot call fails fast naming this error. */
static void retire(struct r5_cuda_state *s)
{
	s->retired = 1;
	snprintf(s->retired_reason, sizeof s->retired_reason, "%s", r5_last_error());
	r5_error("cuda device %d: context retired: %s", s->device, s->retired_reason);
}

/* Slot guard, put around every slot that takes the state and returns a status: a retired state
 * fails fast (before the slot's own checks, which may not touch CUDA), and a call that comes
 * back with R5_EDEVICE_LOST retires the state. Other slots (state_create, the void ones) are
 * used as they are. */
template <auto F> struct slot_guard {
	static constexpr auto call = F;
};
template <typename... A, r5_status (*F)(void *, A...)> struct slot_guard<F> {
	static r5_status call(void *state, A... args)
	{
		struct r5_cuda_state *s = STATE(state);
		if (s && s->retired)
			return r5_cuda_activate(s);
		r5_status st = F(state, args...);
		if (st == R5_EDEVICE_LOST && s && !s->retired)
			retire(s);
		return st;
	}
};

/* The table, generated from the slot list (backend.h) in its order (nvcc compiles C++, which has
 * no designated initialisers before C++20): every slot is r5_cuda_<slot> behind the guard,
 * declared from the same list in cuda_common.h, defined here or in the file of its concern
 * (memory_cuda.cu, fft_cuda.cu, linalg_cuda.cu, ...). */
#define R5_CUDA_SLOT(ret, slot, params) slot_guard<r5_cuda_##slot>::call,
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

/* --- devices: those this binary has code for --- */

#define R5_CUDA_MAX_DEVICES 64
#define R5_STRINGIFY_(...) #__VA_ARGS__
#define R5_STRINGIFY(...) R5_STRINGIFY_(__VA_ARGS__)

/* Device indices given to state_create count usable devices only; this maps them to CUDA
 * ordinals. Filled once per process (the devices and the binary do not change). */
static struct {
	int count;
	int ordinals[R5_CUDA_MAX_DEVICES];
} usable;
static pthread_once_t usable_once = PTHREAD_ONCE_INIT;

/* R5_OK when the driver can run this binary's kernels on the device: cudaFuncGetAttributes of one
 * kernel succeeds when the fat binary has a compatible SASS image or PTX it can compile, and
 * fails with cudaErrorNoKernelImageForDevice otherwise. Restores the thread's current device. */
static r5_status check_code_for(int ordinal)
{
	static const char built_for[] = R5_STRINGIFY(__CUDA_ARCH_LIST__);
	int previous = 0;
	cudaDeviceProp prop;
	struct cudaFuncAttributes attr;
	cudaGetDevice(&previous);
	cudaError_t err = cudaGetDeviceProperties(&prop, ordinal);
	if (err == cudaSuccess)
		err = cudaSetDevice(ordinal);
	if (err == cudaSuccess)
		err = cudaFuncGetAttributes(&attr, (const void *)k_zfill);
	cudaSetDevice(previous);
	if (err == cudaSuccess)
		return R5_OK;
	cudaGetLastError(); /* not sticky: no kernel image, no device */
	if (err == cudaErrorNoKernelImageForDevice || err == cudaErrorInvalidDeviceFunction ||
	    err == cudaErrorUnsupportedPtxVersion || err == cudaErrorInvalidKernelImage)
		return r5_set_error(R5_ENOTSUP,
				    "CUDA device %d (%s, sm_%d%d): this binary has no code for it (built for "
				    "compute %s): %s",
				    ordinal, prop.name, prop.major, prop.minor, built_for, cudaGetErrorString(err));
	return r5_set_error(R5_EGPU, "CUDA device %d: %s", ordinal, cudaGetErrorString(err));
}

static void probe_devices(void)
{
	int count = 0;
	if (cudaGetDeviceCount(&count) != cudaSuccess) {
		cudaGetLastError(); /* no driver / no device: not an error for the caller */
		count = 0;
	}
	for (int d = 0; d < count && usable.count < R5_CUDA_MAX_DEVICES; d++) {
		if (check_code_for(d) == R5_OK)
			usable.ordinals[usable.count++] = d;
		else
			r5_warn("%s; not used: its work goes to the CPU", r5_last_error());
	}
}

extern "C" int r5_cuda_device_count(void)
{
	pthread_once(&usable_once, probe_devices);
	return usable.count;
}

static r5_status device_ordinal(int index, int *ordinal)
{
	int count = r5_cuda_device_count();
	if (index < 0 || index >= count)
		return r5_set_error(R5_EGPU, "CUDA device %d is not available (%d usable device%s)", index, count,
				    count == 1 ? "" : "s");
	*ordinal = usable.ordinals[index];
	return R5_OK;
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
