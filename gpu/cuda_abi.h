/* The C boundary of the CUDA back end, seen from C++ (nvcc).
 *
 * recon/core/backend.h declares struct r5_backend with C99 `float complex` in its slot
 * signatures; C++ has no such type, so the .cu files cannot include that header. This file
 * restates the same table with layout-identical types: r5_cf (float2 under nvcc, from
 * complex_math.h) for `float complex` and r5_dc (two doubles) for `double complex`. On the
 * System V x86-64 and AArch64 ABIs a `float complex` argument is passed exactly like a struct
 * of two floats, so a C caller and these C++ definitions agree.
 *
 * KEEP IN STEP WITH recon/core/backend.h: same slots, same order, same argument order. The GPU
 * suite (tests/gpu/gpu_suite.c) compares sizeof and slot offsets of both declarations through
 * r5_cuda_abi_layout() before anything else, device or not. */
#ifndef R5_GPU_CUDA_ABI_H
#define R5_GPU_CUDA_ABI_H

#include <stddef.h>

#include "../recon/core/complex_math.h"

extern "C" {
#include "../recon/core/log.h"
#include "../recon/core/status.h"
}

#define R5_DIMS 16

/* double complex, interleaved (re, im) */
typedef struct r5_dc {
	double re, im;
} r5_dc;

typedef enum r5_residency { R5_HOST = 0, R5_DEVICE = 1 } r5_residency;

typedef enum r5_unary_op {
	R5_UNARY_ABS = 0,
	R5_UNARY_ABS2 = 1,
	R5_UNARY_SQRT_RE = 2,
	R5_UNARY_CONJ = 3,
	R5_UNARY_RECIP = 4,
} r5_unary_op;

enum r5_zmul_flags {
	R5_ZMUL_CONJ2 = 1,
	R5_ZMUL_ACCUM = 2,
};

struct r5_backend {
	const char *name;
	r5_residency residency;

	r5_status (*state_create)(void **state, int device);
	void (*state_destroy)(void *state);
	r5_status (*describe)(void *state, char *text, size_t text_size);

	r5_status (*alloc)(void *state, void **ptr, size_t bytes);
	void (*free)(void *state, void *ptr);
	r5_status (*upload)(void *state, void *dst, const void *host_src, size_t bytes);
	r5_status (*download)(void *state, void *host_dst, const void *src, size_t bytes);
	r5_status (*copy)(void *state, void *dst, const void *src, size_t bytes);
	r5_status (*sync)(void *state);

	r5_status (*zfill)(void *state, long n, r5_cf *x, r5_cf value);
	r5_status (*zscale)(void *state, long n, r5_cf *x, r5_cf alpha);
	r5_status (*zaxpby)(void *state, long n, r5_cf alpha, const r5_cf *x, r5_cf beta, r5_cf *y);
	r5_status (*zunary)(void *state, r5_unary_op op, long n, r5_cf *out, const r5_cf *in);
	r5_status (*zsoftthresh)(void *state, long n, float lambda, r5_cf *out, const r5_cf *in);
	r5_status (*zdot)(void *state, long n, const r5_cf *x, const r5_cf *y, r5_dc *result);
	r5_status (*znorm2sq)(void *state, long n, const r5_cf *x, double *result);

	r5_status (*zmul_md)(void *state, const long dims[R5_DIMS], const long out_str[R5_DIMS], r5_cf *out,
			     const long in1_str[R5_DIMS], const r5_cf *in1, const long in2_str[R5_DIMS],
			     const r5_cf *in2, int flags);
	r5_status (*zcopy_md)(void *state, const long dims[R5_DIMS], const long out_str[R5_DIMS], r5_cf *out,
			      const long in_str[R5_DIMS], const r5_cf *in);
	r5_status (*zsum_dim)(void *state, const long dims[R5_DIMS], int dim, r5_cf *out, const r5_cf *in);

	r5_status (*fft_plan_make)(void *state, void **plan, const long dims[R5_DIMS], unsigned long flags);
	r5_status (*fft_exec)(void *state, void *plan, r5_cf *out, const r5_cf *in, int inverse);
	void (*fft_plan_destroy)(void *state, void *plan);

	r5_status (*zgemm)(void *state, int trans_a, long m, long n, long k, r5_cf alpha, const r5_cf *a, long lda,
			   const r5_cf *b, long ldb, r5_cf beta, r5_cf *c, long ldc);
	r5_status (*zheev_batched)(void *state, long batch, int n, r5_cf *matrices, float *eigenvalues);
};

static_assert(sizeof(r5_cf) == 8 && alignof(r5_cf) == 8, "r5_cf must match float complex");
static_assert(sizeof(r5_dc) == 16, "r5_dc must match double complex");
static_assert(sizeof(r5_status) == sizeof(int), "enum size");

extern "C" {
const struct r5_backend *r5_backend_cuda(void);
int r5_cuda_device_count(void);
/* Layout check for the suite: writes sizeof(struct r5_backend) and the offsets of the slots
 * zfill, zdot, zmul_md, fft_exec, zgemm, zheev_batched into layout[0..6]; returns 7. */
int r5_cuda_abi_layout(size_t layout[7]);
}

#endif
