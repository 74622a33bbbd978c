/* The back-end seam: one table of function pointers that the CPU back end (recon/cpu, FFTW +
 * OpenMP) and the CUDA back end (gpu/, cuFFT + kernels) each fill completely.
 *
 * Algorithms never call a back end directly: they go through the array wrappers (array.h) on an
 * r5_ctx (ctx.h), which check shapes and residency and then call these slots. All pointers
 * handed to a slot live where the back end computes (`residency`): host memory for the CPU,
 * device memory for CUDA. Every slot returns r5_status and sets a message on failure.
 *
 * Element counts are `long` (64-bit); complex data is interleaved single precision.
 * Strided ("_md") slots take R5_DIMS dims and strides counted in elements; a stride of 0
 * broadcasts an input along that dimension. An output stride of 0 is not allowed where the
 * dimension is larger than 1 (reductions go through zsum_dim). `state` is the back end's
 * per-context state made by state_create (device, stream, library handles). */
#ifndef R5_CORE_BACKEND_H
#define R5_CORE_BACKEND_H

#include <complex.h>
#include <stddef.h>

#include "status.h"

#define R5_DIMS 16

typedef enum r5_residency { R5_HOST = 0, R5_DEVICE = 1 } r5_residency;

typedef enum r5_unary_op {
	R5_UNARY_ABS = 0,     /* |x| (imaginary part 0) */
	R5_UNARY_ABS2 = 1,    /* |x|^2 */
	R5_UNARY_SQRT_RE = 2, /* sqrt(max(re x, 0)) */
	R5_UNARY_CONJ = 3,    /* conj(x) */
	R5_UNARY_RECIP = 4,   /* 1/x, 0 where x == 0 */
} r5_unary_op;

enum r5_zmul_flags {
	R5_ZMUL_CONJ2 = 1, /* out = in1 * conj(in2) */
	R5_ZMUL_ACCUM = 2, /* out += ... instead of out = ... */
};

struct r5_backend {
	const char *name;        /* "cpu" or "cuda" */
	r5_residency residency;  /* where the pointers given to the slots live */

	r5_status (*state_create)(void **state, int device);
	void (*state_destroy)(void *state);
	/* One line: device name, memory, threads. */
	r5_status (*describe)(void *state, char *text, size_t text_size);

	/* memory */
	r5_status (*alloc)(void *state, void **ptr, size_t bytes);
	void (*free)(void *state, void *ptr);
	r5_status (*upload)(void *state, void *dst, const void *host_src, size_t bytes);
	r5_status (*download)(void *state, void *host_dst, const void *src, size_t bytes);
	r5_status (*copy)(void *state, void *dst, const void *src, size_t bytes);
	r5_status (*sync)(void *state);

	/* element-wise, n complex values */
	r5_status (*zfill)(void *state, long n, float complex *x, float complex value);
	r5_status (*zscale)(void *state, long n, float complex *x, float complex alpha);
	/* y = alpha x + beta y */
	r5_status (*zaxpby)(void *state, long n, float complex alpha, const float complex *x, float complex beta,
			    float complex *y);
	r5_status (*zunary)(void *state, r5_unary_op op, long n, float complex *out, const float complex *in);
	r5_status (*zsoftthresh)(void *state, long n, float lambda, float complex *out, const float complex *in);
	/* sum_i conj(x_i) y_i, accumulated in double */
	r5_status (*zdot)(void *state, long n, const float complex *x, const float complex *y, double complex *result);
	/* sum_i |x_i|^2 in double (the squared 2-norm) */
	r5_status (*znorm2sq)(void *state, long n, const float complex *x, double *result);

	/* strided, R5_DIMS dimensions */
	/* out = in1 * in2 (or in1 * conj(in2), or accumulated), with broadcasting strides */
	r5_status (*zmul_md)(void *state, const long dims[R5_DIMS], const long out_str[R5_DIMS], float complex *out,
			     const long in1_str[R5_DIMS], const float complex *in1, const long in2_str[R5_DIMS],
			     const float complex *in2, int flags);
	/* out = in, strided (crop, pad, transpose, circular shift by offset pointers) */
	r5_status (*zcopy_md)(void *state, const long dims[R5_DIMS], const long out_str[R5_DIMS], float complex *out,
			      const long in_str[R5_DIMS], const float complex *in);
	/* out[.., 1, ..] = sum over dimension `dim` of in; both contiguous, out has dims[dim] = 1 */
	r5_status (*zsum_dim)(void *state, const long dims[R5_DIMS], int dim, float complex *out, const float complex *in);

	/* FFT: unnormalised, uncentred, in place or out of place, over the dimensions whose bit is
	 * set in `flags`, batched over the others; arrays contiguous with dims `dims`. The
	 * centring and the 1/sqrt(N) scaling are added by the generic layer (fft.h). */
	r5_status (*fft_plan_make)(void *state, void **plan, const long dims[R5_DIMS], unsigned long flags);
	r5_status (*fft_exec)(void *state, void *plan, float complex *out, const float complex *in, int inverse);
	void (*fft_plan_destroy)(void *state, void *plan);

	/* Dense linear algebra, column-major. C = alpha op(A) B + beta C with op(A) = A (trans_a 0) or
	 * A^H (trans_a 1); A is m x k (or k x m when trans_a), B k x n, C m x n. */
	r5_status (*zgemm)(void *state, int trans_a, long m, long n, long k, float complex alpha, const float complex *a,
			   long lda, const float complex *b, long ldb, float complex beta, float complex *c, long ldc);
	/* `batch` Hermitian n x n matrices (column-major, contiguous one after the other) are
	 * replaced by their eigenvectors (columns), with eigenvalues in descending order written to
	 * `eigenvalues` (n per matrix). Jacobi sweeps; used for ESPIRiT's per-pixel problems. */
	r5_status (*zheev_batched)(void *state, long batch, int n, float complex *matrices, float *eigenvalues);
};

/* The CPU back end, always built. */
const struct r5_backend *r5_backend_cpu(void);
/* The CUDA back end, or NULL when recon5t was built without CUDA. */
const struct r5_backend *r5_backend_cuda(void);
/* Number of usable CUDA devices (0 when built without CUDA or when no driver/device). */
int r5_cuda_device_count(void);

/* Rejects a table with any empty slot (start-up check and test). */
r5_status r5_backend_check(const struct r5_backend *backend);

#endif
