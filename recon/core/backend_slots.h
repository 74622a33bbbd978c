/* The back-end slot list, declared once as (return type, name, parameters), shared by C
 * (recon/core/backend.h, where R5_CF is `float complex` and R5_DC `double complex`) and C++
 * (gpu/cuda_abi.h, where they are the layout-identical r5_cf and r5_dc). Everything that lists
 * the slots is generated from it: struct r5_backend on both sides, the empty-slot check and the
 * slot names (ctx.c), the CPU table (backend_cpu.c) and the CUDA table (gpu/backend_cuda.cu).
 * A slot cannot be added to one and forgotten in another: a back end that lacks
 * <prefix>_<slot> does not compile. The including file defines R5_CF, R5_DC and r5_status
 * and includes backend_enums.h (R5_DIMS and the operation codes) first; the comments in the
 * list say what each slot does. */
#ifndef R5_CORE_BACKEND_SLOTS_H
#define R5_CORE_BACKEND_SLOTS_H

#define R5_BACKEND_SLOTS(X) \
	X(r5_status, state_create, (void **state, int device)) \
	X(void, state_destroy, (void *state)) \
	/* one line: device name, memory, threads */ \
	X(r5_status, describe, (void *state, char *text, size_t text_size)) \
	/* memory */ \
	X(r5_status, alloc, (void *state, void **ptr, size_t bytes)) \
	X(void, free, (void *state, void *ptr)) \
	X(r5_status, upload, (void *state, void *dst, const void *host_src, size_t bytes)) \
	X(r5_status, download, (void *state, void *host_dst, const void *src, size_t bytes)) \
	X(r5_status, copy, (void *state, void *dst, const void *src, size_t bytes)) \
	X(r5_status, sync, (void *state)) \
	/* memory this context can still allocate where it computes (a device's free memory plus \
	 * what its pool holds unused; the host's available memory for the CPU) and the total */ \
	X(r5_status, mem_info, (void *state, size_t *free_bytes, size_t *total_bytes)) \
	/* element-wise, n complex values */ \
	X(r5_status, zfill, (void *state, long n, R5_CF *x, R5_CF value)) \
	X(r5_status, zscale, (void *state, long n, R5_CF *x, R5_CF alpha)) \
	/* y = alpha x + beta y */ \
	X(r5_status, zaxpby, (void *state, long n, R5_CF alpha, const R5_CF *x, R5_CF beta, \
			      R5_CF *y)) \
	X(r5_status, zunary, (void *state, r5_unary_op op, long n, R5_CF *out, const R5_CF *in)) \
	X(r5_status, zsoftthresh, (void *state, long n, float lambda, R5_CF *out, const R5_CF *in)) \
	/* out = clamp(re in, lo, hi) + 0i (box projection; lo <= hi, infinite bounds allowed); \
	 * out may be in */ \
	X(r5_status, zclamp, (void *state, long n, float lo, float hi, R5_CF *out, const R5_CF *in)) \
	/* sum_i conj(x_i) y_i, accumulated in double */ \
	X(r5_status, zdot, (void *state, long n, const R5_CF *x, const R5_CF *y, R5_DC *result)) \
	/* sum_i |x_i|^2 in double (the squared 2-norm) */ \
	X(r5_status, znorm2sq, (void *state, long n, const R5_CF *x, double *result)) \
	/* strided, R5_DIMS dimensions: out = in1 * in2 (or in1 * conj(in2), or accumulated), with \
	 * broadcasting strides */ \
	X(r5_status, zmul_md, (void *state, const long dims[R5_DIMS], const long out_str[R5_DIMS], R5_CF *out, \
			       const long in1_str[R5_DIMS], const R5_CF *in1, const long in2_str[R5_DIMS], \
			       const R5_CF *in2, int flags)) \
	/* out = in, strided (crop, pad, transpose, circular shift by offset pointers) */ \
	X(r5_status, zcopy_md, (void *state, const long dims[R5_DIMS], const long out_str[R5_DIMS], R5_CF *out, \
				const long in_str[R5_DIMS], const R5_CF *in)) \
	/* out[(i + shifts) mod dims] = in[i] over every dimension (any integer shifts, taken modulo \
	 * the dimension); both contiguous, out and in do not overlap */ \
	X(r5_status, zcircshift, (void *state, const long dims[R5_DIMS], const long shifts[R5_DIMS], R5_CF *out, \
				  const R5_CF *in)) \
	/* y = alpha x + beta y, strided over R5_DIMS dims; x stride 0 broadcasts; y strides are not 0 \
	 * where the dimension is larger than 1 */ \
	X(r5_status, zaxpby_md, (void *state, const long dims[R5_DIMS], R5_CF alpha, const long x_str[R5_DIMS], \
				 const R5_CF *x, R5_CF beta, const long y_str[R5_DIMS], R5_CF *y)) \
	/* out = reduction of in over the dimensions where out_str is 0 (and dims > 1): SUM \
	 * (accumulated in double) or MAXABS (max |x|, imaginary part 0, NaN if any x is NaN); \
	 * strided, out overwritten, out and in do not overlap */ \
	X(r5_status, zreduce_md, (void *state, r5_reduce_op op, const long dims[R5_DIMS], \
				  const long out_str[R5_DIMS], R5_CF *out, const long in_str[R5_DIMS], \
				  const R5_CF *in)) \
	/* FFT: unnormalised, uncentred, in place or out of place, over the dimensions whose bit is \
	 * set in `flags`, batched over the others; arrays contiguous with dims `dims`. The centring \
	 * and the 1/sqrt(N) scaling are added by the generic layer (fft.h). */ \
	X(r5_status, fft_plan_make, (void *state, void **plan, const long dims[R5_DIMS], unsigned long flags)) \
	X(r5_status, fft_exec, (void *state, void *plan, R5_CF *out, const R5_CF *in, int inverse)) \
	X(void, fft_plan_destroy, (void *state, void *plan)) \
	/* dense linear algebra, column-major: C = alpha op(A) B + beta C with op(A) = A (trans_a 0) \
	 * or A^H (trans_a 1); A is m x k (or k x m when trans_a), B k x n, C m x n */ \
	X(r5_status, zgemm, (void *state, int trans_a, long m, long n, long k, R5_CF alpha, \
			     const R5_CF *a, long lda, const R5_CF *b, long ldb, R5_CF beta, \
			     R5_CF *c, long ldc)) \
	/* `batch` Hermitian n x n matrices (column-major, one after the other) are replaced by their \
	 * eigenvectors (columns, first component real >= 0), eigenvalues in descending order into \
	 * `eigenvalues` (n per matrix); both back ends run recon/core/eig_math.h, in double */ \
	X(r5_status, zheev_batched, (void *state, long batch, int n, R5_CF *matrices, float *eigenvalues)) \
	/* the same with only the k leading eigenvectors formed (columns 0..k-1; the others keep their \
	 * values), all n eigenvalues: ESPIRiT's and Walsh's per-pixel problems */ \
	X(r5_status, zheev_top_batched, (void *state, long batch, int n, int k, R5_CF *matrices, float *eigenvalues)) \
	/* one level of an orthogonal periodic wavelet transform (recon/core/wavelet_math.h, kind \
	 * R5_WAVELET_*) along dimension dim of the block dims, analysis (inverse 0) or synthesis; out \
	 * and in share the strides str and do not overlap */ \
	X(r5_status, zwavelet_step, (void *state, int kind, int inverse, int dim, const long dims[R5_DIMS], \
				     const long str[R5_DIMS], R5_CF *out, const R5_CF *in)) \
	/* NUFFT, the tile method of recon/core/nufft_math.h (recon/linop/nufft.h): samples are \
	 * [n_points, C] (point j, coil c at j + c n_points), the grid [C, M0, M1, M2] (coil fastest); \
	 * spread adds the samples into the grid (the caller zeroes it), interp overwrites the \
	 * samples with the grid's values at the points */ \
	X(r5_status, nufft_spread, (void *state, const struct r5_nufft_geom *geom, \
				    const struct r5_nufft_points *points, const R5_CF *samples, R5_CF *grid)) \
	X(r5_status, nufft_interp, (void *state, const struct r5_nufft_geom *geom, \
				    const struct r5_nufft_points *points, const R5_CF *grid, R5_CF *samples)) \
	/* between the image [N0, N1, N2, C] and the grid: to_grid 1: each pixel's cell (x mod M) = \
	 * image times its de-apodisation factor (packed corr, r5_nufft_deapod_factor; other cells \
	 * untouched), 0: image = that cell times the factor */ \
	X(r5_status, nufft_deapod, (void *state, const struct r5_nufft_geom *geom, const float *corr, \
				    R5_CF *image, R5_CF *grid, int to_grid)) \
	/* between `coils` images [N0, N1, N2] and Toeplitz grids [2N0, 2N1, 2N2 (1 in 2D)], both one \
	 * after the other: place 1: each pixel's cell (x mod 2N) = the pixel (others untouched), \
	 * 0: pixel = its cell */ \
	X(r5_status, nufft_toep_place, (void *state, const struct r5_nufft_geom *geom, long coils, \
					R5_CF *image, R5_CF *grid, int place))

#endif
