/* r5_array: a multi-dimensional complex float array (R5_DIMS dims, BART order, strides in
 * elements) with its residency (host or device) in the descriptor — never guessed from the
 * pointer. Arrays own their buffers unless made as views. Copies between host and device are
 * explicit (r5_array_copy).
 *
 * The wrappers below are what algorithms call: each checks shapes, residency (the array must
 * live where the context computes) and contiguity, then calls the context's back end. Errors
 * name the operation and the shapes. */
#ifndef R5_CORE_ARRAY_H
#define R5_CORE_ARRAY_H

#include <complex.h>

#include "ctx.h"
#include "dims.h"

typedef struct r5_array {
	long dims[R5_DIMS];
	long strides[R5_DIMS]; /* elements */
	float complex *data;
	r5_residency where;
	r5_ctx *ctx; /* context whose back end allocated device memory; NULL for host memory */
	int owns;    /* frees data on r5_array_free (R5_ARRAY_OWNS_MAPPING: munmap) */
} r5_array;

/* Allocates a contiguous array where `where` says: host memory (64-byte aligned) or the
 * context's device. Contents undefined. Refuses sizes over R5_ARRAY_MAX_BYTES with R5_ERANGE. */
#define R5_ARRAY_MAX_BYTES (64L * 1024 * 1024 * 1024)
r5_status r5_array_alloc(r5_ctx *ctx, r5_residency where, const long dims[R5_DIMS], r5_array **out);
/* Same, zero-filled. */
r5_status r5_array_zeros(r5_ctx *ctx, r5_residency where, const long dims[R5_DIMS], r5_array **out);
/* Host array of zeros whose pages become resident only when written (an anonymous mapping,
 * page-aligned, no transparent huge pages): a k-space grid filled as acquisitions arrive
 * costs the lines that came. Freed by r5_array_free like any other. */
#define R5_ARRAY_OWNS_MAPPING 2
r5_status r5_array_zeros_lazy(const long dims[R5_DIMS], r5_array **out);
/* Host array without a context (I/O, phantoms). */
r5_status r5_array_alloc_host(const long dims[R5_DIMS], r5_array **out);
/* Allocates where the context computes (host for CPU, device for CUDA). */
r5_status r5_array_alloc_work(r5_ctx *ctx, const long dims[R5_DIMS], r5_array **out);
/* A descriptor over memory someone else owns (contiguous). */
r5_status r5_array_view(r5_residency where, r5_ctx *ctx, const long dims[R5_DIMS], float complex *data,
			r5_array **out);
void r5_array_free(r5_array *a); /* NULL is harmless */
/* A view of part of base's memory, by value: `dims` and `strides` (NULL: base's strides),
 * starting `offset` elements into base's data, same residency and context. It never owns
 * (owns = 0): nothing to free, and it must not outlive base. Views are made only this way,
 * never by copying a descriptor that may own its buffer. */
r5_array r5_array_view_strided(const r5_array *base, const long dims[R5_DIMS], const long strides[R5_DIMS],
			       long offset);

long r5_array_size(const r5_array *a);
int r5_array_is_contiguous(const r5_array *a);

/* dst = src; shapes equal; any residency pair (H2H, H2D, D2H, D2D). */
r5_status r5_array_copy(r5_ctx *ctx, r5_array *dst, const r5_array *src);
/* dst = src between host arrays, strided views allowed (r5_array_view_strided), same dims; no
 * context: the host side of moving part of a host-resident volume in or out of work memory
 * (cs_slab.c, espirit.c). Runs along dim 0 are copied whole when both have stride 1 there. */
r5_status r5_array_host_copy(r5_array *dst, const r5_array *src);
/* *out = a new contiguous array where the context computes holding host_view's values (a host
 * array, strided views allowed): copied out on the host (r5_array_host_copy), then moved in. */
r5_status r5_array_gather_to_work(r5_ctx *ctx, const r5_array *host_view, r5_array **out);
/* New array holding src's contents where the context computes / on the host. */
r5_status r5_array_to_work(r5_ctx *ctx, const r5_array *src, r5_array **out);
r5_status r5_array_to_host(r5_ctx *ctx, const r5_array *src, r5_array **out);

/* --- wrappers over the back end (arrays where the context computes; contiguous unless the
 * wrapper says it takes strided views) --- */
r5_status r5_zfill(r5_ctx *ctx, r5_array *x, float complex value);
r5_status r5_zscale(r5_ctx *ctx, r5_array *x, float complex alpha);
/* y = alpha x + beta y. Strided views allowed, and a broadcasting x (each dimension equal to
 * y's or 1); x may be y itself but must not otherwise overlap it; y has no stride 0 along a
 * dimension larger than 1. Contiguous arrays of one shape take the contiguous slot. */
r5_status r5_zaxpby(r5_ctx *ctx, float complex alpha, const r5_array *x, float complex beta, r5_array *y);
/* y += alpha x */
r5_status r5_zaxpy(r5_ctx *ctx, r5_array *y, float complex alpha, const r5_array *x);
r5_status r5_zunary(r5_ctx *ctx, r5_unary_op op, r5_array *out, const r5_array *in);
r5_status r5_zsoftthresh(r5_ctx *ctx, float lambda, r5_array *out, const r5_array *in);
/* Projection onto the box [lo, hi] of real values: out = clamp(re in, lo, hi) + 0i (the
 * imaginary part is dropped: real-valued data convention, backend.h). lo may be -INFINITY and
 * hi +INFINITY (non-negativity is [0, +INFINITY)); lo <= hi, neither NaN. A NaN real part stays
 * NaN. Same dims, contiguous; out may be in. */
r5_status r5_zproject_box(r5_ctx *ctx, float lo, float hi, r5_array *out, const r5_array *in);
r5_status r5_zdot(r5_ctx *ctx, const r5_array *x, const r5_array *y, double complex *result);
r5_status r5_znorm(r5_ctx *ctx, const r5_array *x, double *result);
/* out = in1 * in2 (flags: R5_ZMUL_CONJ2, R5_ZMUL_ACCUM) with broadcasting: every dimension of
 * in1 and in2 equals out's or is 1. Strided views allowed; an input may be out itself but must
 * not otherwise overlap it; out has no stride 0 along a dimension larger than 1. */
r5_status r5_zmul(r5_ctx *ctx, r5_array *out, const r5_array *in1, const r5_array *in2, int flags);
/* out += in1 * in2 (flags 0), or out += in1 * conj(in2) (R5_ZMUL_CONJ2): r5_zmul accumulating,
 * same broadcasting and views. */
r5_status r5_zfmac(r5_ctx *ctx, r5_array *out, const r5_array *in1, const r5_array *in2, int flags);
/* out = reduction of in (R5_REDUCE_SUM, accumulated in double; R5_REDUCE_MAXABS, max |x| as a
 * real value, NaN if any element is NaN) over every dimension where out has size 1 and in does
 * not; every other dimension of out equals in's. Strided views allowed (r5_array_view_strided);
 * out must not overlap in, unless nothing is reduced and out is in. */
r5_status r5_zreduce(r5_ctx *ctx, r5_reduce_op op, r5_array *out, const r5_array *in);
/* r5_zreduce with R5_REDUCE_SUM. */
r5_status r5_zsum(r5_ctx *ctx, r5_array *out, const r5_array *in);
/* max |x| over the whole of x (strided views allowed), back on the host; NaN if any element of
 * x is NaN (a solver can test isfinite). Synchronises with the back end. */
r5_status r5_zmaxabs(r5_ctx *ctx, const r5_array *x, float *result);
/* out[(i + shifts) mod dims] = in[i] over every dimension (fftshift is a shift by dims / 2);
 * any integer shifts, negative ones too, taken modulo the dimension. Same dims, both
 * contiguous; out must not overlap in (R5_EINVAL naming shape and shifts). */
r5_status r5_zcircshift(r5_ctx *ctx, r5_array *out, const r5_array *in, const long shifts[R5_DIMS]);
/* out = in, strided views allowed: copies the overlapping region of two shapes centred on each
 * other (crop or zero-pad about the centre, as k-space resizing needs); out is zeroed first
 * when larger. The centre of a dimension of size n is index n/2 (the FFT's centre, integer
 * division), so out[o] = in[o - n_out/2 + n_in/2] where that index exists, else 0. */
r5_status r5_zresize_centered(r5_ctx *ctx, r5_array *out, const r5_array *in);
/* rss over dimension dim: out = sqrt(sum |in|^2) */
r5_status r5_zrss(r5_ctx *ctx, r5_array *out, const r5_array *in, int dim);

/* Raw-pointer wrappers for the slots that work on parts of arrays (offsets into a buffer):
 * pointers where the context computes; sizes checked (non-negative, leading dimensions large
 * enough) with a message naming the operation. Algorithms call the back end only through
 * these and the array wrappers above. */
/* C = alpha op(A) B + beta C, column-major; op(A) = A (trans_a 0, m x k) or A^H (trans_a 1,
 * A is k x m); B k x n; C m x n. */
r5_status r5_zgemm(r5_ctx *ctx, int trans_a, long m, long n, long k, float complex alpha, const float complex *a,
		   long lda, const float complex *b, long ldb, float complex beta, float complex *c, long ldc);
/* `batch` Hermitian n x n matrices replaced by their eigenvectors, eigenvalues descending. */
r5_status r5_zheev_batched(r5_ctx *ctx, long batch, int n, float complex *matrices, float *eigenvalues);
/* The same with only the k leading eigenvectors formed (columns 0..k-1), all n eigenvalues. */
r5_status r5_zheev_top_batched(r5_ctx *ctx, long batch, int n, int k, float complex *matrices, float *eigenvalues);
/* out = in over dims with element strides (crop, pad, transpose, shifts by offset pointers). */
r5_status r5_zcopy_strided(r5_ctx *ctx, const long dims[R5_DIMS], const long out_strides[R5_DIMS], float complex *out,
			   const long in_strides[R5_DIMS], const float complex *in);
/* Waits for the context's queued work (timings; a no-op on the CPU). */
r5_status r5_ctx_sync(r5_ctx *ctx);

/* One level of an orthogonal periodic wavelet transform (kind R5_WAVELET_* of
 * recon/core/wavelet_math.h) along dimension dim: analysis (inverse 0) or synthesis over the
 * whole of in, into out (an odd length keeps its last sample). Strided views allowed (a
 * multi-level transform steps over the approximation block of a larger array); out and in have
 * the same dims and strides and do not overlap; dims[dim] rounded down to even is at least the
 * filter length (2 Haar, 4 Daubechies-4). recon/linop/wavelet.h builds the transform from it. */
r5_status r5_zwavelet_step(r5_ctx *ctx, int kind, int inverse, int dim, r5_array *out, const r5_array *in);

#endif
