/* The constants and enums of the back-end seam, declared once for both sides of it: plain C
 * that recon/core/backend.h (C) and gpu/cuda_abi.h (C++, nvcc) both include, so an operation
 * code added here is known to the CPU back end, the CUDA back end and the wrappers at once.
 * The per-element meaning of each code is in complex_math.h / md_math.h (shared by both). */
#ifndef R5_CORE_BACKEND_ENUMS_H
#define R5_CORE_BACKEND_ENUMS_H

/* Every array has R5_DIMS dimensions (BART's order, dims.h). */
#define R5_DIMS 16

typedef enum r5_residency { R5_HOST = 0, R5_DEVICE = 1 } r5_residency;

/* zunary. ABS, ABS2 and SQRT_RE write real values (imaginary part 0). */
typedef enum r5_unary_op {
	R5_UNARY_ABS = 0,     /* |x| (imaginary part 0) */
	R5_UNARY_ABS2 = 1,    /* |x|^2 (imaginary part 0) */
	R5_UNARY_SQRT_RE = 2, /* sqrt(max(re x, 0)) (imaginary part 0) */
	R5_UNARY_CONJ = 3,    /* conj(x) */
	R5_UNARY_RECIP = 4,   /* 1/x, 0 where x == 0 */
} r5_unary_op;

/* zmul_md flags */
enum r5_zmul_flags {
	R5_ZMUL_CONJ2 = 1, /* out = in1 * conj(in2) */
	R5_ZMUL_ACCUM = 2, /* out += ... instead of out = ... */
};

/* zreduce_md */
typedef enum r5_reduce_op {
	R5_REDUCE_SUM = 0,    /* sum, accumulated in double */
	R5_REDUCE_MAXABS = 1, /* max |x| as a real value (imaginary part 0); NaN if any x is NaN */
} r5_reduce_op;

/* The NUFFT slots' geometry and point tables (recon/core/nufft_math.h, which defines them). */
struct r5_nufft_geom;
struct r5_nufft_points;

#endif
