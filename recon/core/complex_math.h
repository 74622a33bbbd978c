/* Per-element complex arithmetic shared by the CPU and CUDA back ends.
 *
 * r5_cf is `float complex` under a C compiler and `float2` under nvcc; both are two
 * interleaved floats (re, im), the layout of cufftComplex and fftwf_complex. Every element-wise
 * back-end operation is written once here, in terms of r5_cf_make / r5_cf_re / r5_cf_im, and
 * called from both back ends' loops. */
#ifndef R5_CORE_COMPLEX_MATH_H
#define R5_CORE_COMPLEX_MATH_H

#include "hd.h"

#ifdef __CUDACC__
#include <vector_types.h>
typedef float2 r5_cf;
R5_HD r5_cf r5_cf_make(float re, float im) { r5_cf z; z.x = re; z.y = im; return z; }
R5_HD float r5_cf_re(r5_cf z) { return z.x; }
R5_HD float r5_cf_im(r5_cf z) { return z.y; }
#define R5_SQRTF sqrtf
#else
#include <complex.h>
#include <math.h>
typedef float complex r5_cf;
R5_HD r5_cf r5_cf_make(float re, float im) { r5_cf z; float *p = (float *)&z; p[0] = re; p[1] = im; return z; }
R5_HD float r5_cf_re(r5_cf z) { return crealf(z); }
R5_HD float r5_cf_im(r5_cf z) { return cimagf(z); }
#define R5_SQRTF sqrtf
#endif

R5_HD r5_cf r5_cf_add(r5_cf a, r5_cf b) { return r5_cf_make(r5_cf_re(a) + r5_cf_re(b), r5_cf_im(a) + r5_cf_im(b)); }
R5_HD r5_cf r5_cf_sub(r5_cf a, r5_cf b) { return r5_cf_make(r5_cf_re(a) - r5_cf_re(b), r5_cf_im(a) - r5_cf_im(b)); }

/* a * b */
R5_HD r5_cf r5_cf_mul(r5_cf a, r5_cf b)
{
	float ar = r5_cf_re(a), ai = r5_cf_im(a), br = r5_cf_re(b), bi = r5_cf_im(b);
	return r5_cf_make(ar * br - ai * bi, ar * bi + ai * br);
}

/* a * conj(b) */
R5_HD r5_cf r5_cf_mulc(r5_cf a, r5_cf b)
{
	float ar = r5_cf_re(a), ai = r5_cf_im(a), br = r5_cf_re(b), bi = r5_cf_im(b);
	return r5_cf_make(ar * br + ai * bi, ai * br - ar * bi);
}

R5_HD r5_cf r5_cf_conj(r5_cf a) { return r5_cf_make(r5_cf_re(a), -r5_cf_im(a)); }
R5_HD r5_cf r5_cf_scale(r5_cf a, float s) { return r5_cf_make(s * r5_cf_re(a), s * r5_cf_im(a)); }
R5_HD float r5_cf_abs2(r5_cf a) { return r5_cf_re(a) * r5_cf_re(a) + r5_cf_im(a) * r5_cf_im(a); }
R5_HD float r5_cf_abs(r5_cf a) { return R5_SQRTF(r5_cf_abs2(a)); }

/* y + alpha * x */
R5_HD r5_cf r5_cf_axpy(r5_cf y, r5_cf alpha, r5_cf x) { return r5_cf_add(y, r5_cf_mul(alpha, x)); }

/* alpha x + beta y; with beta exactly 0, y is not read (as BLAS): an unwritten y (NaN, Inf
 * garbage) does not leak into the result. */
R5_HD r5_cf r5_cf_axpby(r5_cf alpha, r5_cf x, r5_cf beta, r5_cf y)
{
	if (r5_cf_re(beta) == 0.0f && r5_cf_im(beta) == 0.0f)
		return r5_cf_mul(alpha, x);
	return r5_cf_add(r5_cf_mul(alpha, x), r5_cf_mul(beta, y));
}

/* a x + b y for real a, b: a quarter of r5_cf_axpby's multiplies (the same value for finite x
 * and y). The caller passes y = 0 when b is 0, so that an unwritten y is not read. */
R5_HD r5_cf r5_cf_axpby_re(float a, r5_cf x, float b, r5_cf y)
{
	return r5_cf_make(a * r5_cf_re(x) + b * r5_cf_re(y), a * r5_cf_im(x) + b * r5_cf_im(y));
}

/* Complex soft threshold: shrink the magnitude by lambda, keep the phase (0 below lambda). */
R5_HD r5_cf r5_cf_softthresh(r5_cf a, float lambda)
{
	float mag = r5_cf_abs(a);
	if (mag <= lambda)
		return r5_cf_make(0.0f, 0.0f);
	return r5_cf_scale(a, (mag - lambda) / mag);
}

/* Box projection of the real part: clamp(re a, lo, hi) + 0i (lo may be -INFINITY, hi
 * +INFINITY). Written with comparisons, not fminf/fmaxf, so that a NaN real part stays NaN
 * (fmaxf would replace it by the bound and hide it). */
R5_HD r5_cf r5_cf_clamp_re(r5_cf a, float lo, float hi)
{
	float v = r5_cf_re(a);
	if (v < lo)
		v = lo;
	if (v > hi)
		v = hi;
	return r5_cf_make(v, 0.0f);
}

/* 1 / a, and 0 where a == 0 (used for intensity normalisation and g-factor maps). */
R5_HD r5_cf r5_cf_recip_safe(r5_cf a)
{
	float m2 = r5_cf_abs2(a);
	if (m2 == 0.0f)
		return r5_cf_make(0.0f, 0.0f);
	return r5_cf_make(r5_cf_re(a) / m2, -r5_cf_im(a) / m2);
}

/* Unary operations selected by r5_unary_op (backend_enums.h). */
R5_HD r5_cf r5_cf_unary(int op, r5_cf a)
{
	switch (op) {
	case 0: /* R5_UNARY_ABS */ return r5_cf_make(r5_cf_abs(a), 0.0f);
	case 1: /* R5_UNARY_ABS2 */ return r5_cf_make(r5_cf_abs2(a), 0.0f);
	case 2: /* R5_UNARY_SQRT_RE */ return r5_cf_make(R5_SQRTF(r5_cf_re(a) > 0.0f ? r5_cf_re(a) : 0.0f), 0.0f);
	case 3: /* R5_UNARY_CONJ */ return r5_cf_conj(a);
	case 4: /* R5_UNARY_RECIP */ return r5_cf_recip_safe(a);
	default: return a;
	}
}

#endif
