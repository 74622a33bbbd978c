/* CPU back end: element-wise slots and strided (md) loops, OpenMP over the shared
 * per-element math of complex_math.h (the CUDA kernels use the same functions). */
#include <complex.h>
#include <stdlib.h>

#include "../core/complex_math.h"
#include "../core/dims.h"
#include "cpu_backend.h"
#include "../core/loop_nest.h"

/* --- element-wise --- */

#define PAR_FOR _Pragma("omp parallel for schedule(static) if (n > 32768)")

r5_status r5_cpu_zfill(void *state, long n, float complex *x, float complex value)
{
	PAR_FOR
	for (long i = 0; i < n; i++)
		x[i] = value;
	return R5_OK;
}

r5_status r5_cpu_zscale(void *state, long n, float complex *x, float complex alpha)
{
	PAR_FOR
	for (long i = 0; i < n; i++)
		x[i] = r5_cf_mul(alpha, x[i]);
	return R5_OK;
}

r5_status r5_cpu_zaxpby(void *state, long n, float complex alpha, const float complex *x, float complex beta,
			    float complex *y)
{
	/* Real coefficients (CG's steps, sums and differences): a quarter of the multiplies in a
	 * loop the compiler vectorises, 3x faster on one core at 128^3. The same values as
	 * r5_cf_axpby for finite x and y; that one also adds 0 * im terms, which differ only when a
	 * component is infinite (NaN there, the other component's value here: non-finite either way). */
	if (r5_cf_im(alpha) == 0.0f && r5_cf_im(beta) == 0.0f) {
		float a = r5_cf_re(alpha), b = r5_cf_re(beta);
		if (b == 0.0f) { /* y is not read (r5_cf_axpby's rule, as BLAS) */
			const float complex zero = r5_cf_make(0.0f, 0.0f);
			PAR_FOR
			for (long i = 0; i < n; i++)
				y[i] = r5_cf_axpby_re(a, x[i], 0.0f, zero);
			return R5_OK;
		}
		PAR_FOR
		for (long i = 0; i < n; i++)
			y[i] = r5_cf_axpby_re(a, x[i], b, y[i]);
		return R5_OK;
	}
	PAR_FOR
	for (long i = 0; i < n; i++)
		y[i] = r5_cf_axpby(alpha, x[i], beta, y[i]);
	return R5_OK;
}

r5_status r5_cpu_zunary(void *state, r5_unary_op op, long n, float complex *out, const float complex *in)
{
	PAR_FOR
	for (long i = 0; i < n; i++)
		out[i] = r5_cf_unary((int)op, in[i]);
	return R5_OK;
}

r5_status r5_cpu_zsoftthresh(void *state, long n, float lambda, float complex *out, const float complex *in)
{
	PAR_FOR
	for (long i = 0; i < n; i++)
		out[i] = r5_cf_softthresh(in[i], lambda);
	return R5_OK;
}

r5_status r5_cpu_zclamp(void *state, long n, float lo, float hi, float complex *out, const float complex *in)
{
	PAR_FOR
	for (long i = 0; i < n; i++)
		out[i] = r5_cf_clamp_re(in[i], lo, hi);
	return R5_OK;
}

r5_status r5_cpu_zdot(void *state, long n, const float complex *x, const float complex *y, double complex *result)
{
	double re = 0, im = 0;
#pragma omp parallel for reduction(+ : re, im) schedule(static) if (n > 32768)
	for (long i = 0; i < n; i++) {
		r5_cf p = r5_cf_mulc(y[i], x[i]); /* conj(x) y */
		re += r5_cf_re(p);
		im += r5_cf_im(p);
	}
	*result = re + I * im;
	return R5_OK;
}

r5_status r5_cpu_znorm2sq(void *state, long n, const float complex *x, double *result)
{
	double s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static) if (n > 32768)
	for (long i = 0; i < n; i++)
		s += (double)r5_cf_abs2(x[i]);
	*result = s;
	return R5_OK;
}

/* --- strided loops --- */

static long loop_nest_outer(const struct r5_loop_nest *nest)
{
	long n = 1;
	for (int r = 1; r < nest->rank; r++)
		n *= nest->dims[r];
	return n;
}

/* One row of zmul_md. Always called with constant conj and accum, and with literal unit or
 * zero strides where the row has them, so that each combination becomes its own branch-free,
 * vectorisable loop (the general loop with the flags tested per element ran at half the
 * speed: 2D SENSE spent 15 % of its time here). The arithmetic is the same r5_cf_mul/mulc. */
static inline void zmul_row(long n, float complex *po, long so, const float complex *p1, long s1,
			    const float complex *p2, long s2, int conj, int accum)
{
	for (long i = 0; i < n; i++) {
		r5_cf v = conj ? r5_cf_mulc(p1[i * s1], p2[i * s2]) : r5_cf_mul(p1[i * s1], p2[i * s2]);
		po[i * so] = accum ? r5_cf_add(po[i * so], v) : v;
	}
}

#define ZMUL_ROW(so_, s1_, s2_) \
	switch (mode) { \
	case 0: zmul_row(n, po, so_, p1, s1_, p2, s2_, 0, 0); break; \
	case 1: zmul_row(n, po, so_, p1, s1_, p2, s2_, 1, 0); break; \
	case 2: zmul_row(n, po, so_, p1, s1_, p2, s2_, 0, 1); break; \
	default: zmul_row(n, po, so_, p1, s1_, p2, s2_, 1, 1); break; \
	}

/* mode: bit 0 conjugate in2, bit 1 accumulate */
static void zmul_rows(int mode, long n, float complex *po, long so, const float complex *p1, long s1,
		      const float complex *p2, long s2)
{
	if (so == 1 && s1 == 1 && s2 == 1)
		ZMUL_ROW(1, 1, 1)
	else if (so == 1 && s1 == 1 && s2 == 0) /* in2 constant along the row (masks, ramps) */
		ZMUL_ROW(1, 1, 0)
	else if (so == 1 && s1 == 0 && s2 == 1)
		ZMUL_ROW(1, 0, 1)
	else
		ZMUL_ROW(so, s1, s2)
}
#undef ZMUL_ROW

r5_status r5_cpu_zmul_md(void *state, const long dims[R5_DIMS], const long out_str[R5_DIMS], float complex *out,
			     const long in1_str[R5_DIMS], const float complex *in1, const long in2_str[R5_DIMS],
			     const float complex *in2, int flags)
{
	struct r5_loop_nest nest;
	const long *const strides[3] = {out_str, in1_str, in2_str};
	r5_loop_nest_make(&nest, dims, 3, strides);
	long outer = loop_nest_outer(&nest), inner = nest.dims[0];
	long so = nest.str[0][0], s1 = nest.str[1][0], s2 = nest.str[2][0];
	int mode = (flags & R5_ZMUL_CONJ2 ? 1 : 0) | (flags & R5_ZMUL_ACCUM ? 2 : 0);
#pragma omp parallel for schedule(static) if (outer * inner > 32768)
	for (long o = 0; o < outer; o++) {
		long off[3];
		r5_loop_nest_outer_offsets(&nest, 3, o, off);
		zmul_rows(mode, inner, out + off[0], so, in1 + off[1], s1, in2 + off[2], s2);
	}
	return R5_OK;
}

r5_status r5_cpu_zcopy_md(void *state, const long dims[R5_DIMS], const long out_str[R5_DIMS], float complex *out,
			      const long in_str[R5_DIMS], const float complex *in)
{
	struct r5_loop_nest nest;
	const long *const strides[3] = {out_str, in_str, NULL};
	r5_loop_nest_make(&nest, dims, 2, strides);
	long outer = loop_nest_outer(&nest), inner = nest.dims[0];
	long so = nest.str[0][0], si = nest.str[1][0];
#pragma omp parallel for schedule(static) if (outer * inner > 32768)
	for (long o = 0; o < outer; o++) {
		long off[3];
		r5_loop_nest_outer_offsets(&nest, 2, o, off);
		float complex *po = out + off[0];
		const float complex *pi = in + off[1];
		if (so == 1 && si == 1)
			memcpy(po, pi, (size_t)inner * sizeof *po);
		else
			for (long i = 0; i < inner; i++)
				po[i * so] = pi[i * si];
	}
	return R5_OK;
}
