/* Per-element math of one level of an orthogonal periodic wavelet transform along one dimension
 * (the zwavelet_step slot), shared by the CPU back end (recon/cpu/cpu_wavelet.c) and the CUDA
 * back end (gpu/wavelet_cuda.cu) so that both compute the same function. Plain C that nvcc also
 * compiles; functions marked R5_HD.
 *
 * Filters (Daubechies, "Orthonormal bases of compactly supported wavelets", CPAM 41, 1988;
 * Mallat, "A theory for multiresolution signal decomposition", IEEE PAMI 11, 1989): low-pass h
 * of length L (Haar L = 2, Daubechies-4 L = 4, Daubechies-8 L = 8), high-pass g[j] = (-1)^j h[L-1-j] (the
 * quadrature mirror), both of norm 1 and orthogonal to their even shifts.
 *
 * One step on a line of n samples x along the dimension: m = n rounded down to even is the
 * periodic part; analysis writes lo[k] = sum_j h[j] x[(2k + j) mod m] at k < m/2 and
 * hi[k] = sum_j g[j] x[(2k + j) mod m] at m/2 + k; an odd n keeps its last sample as it is.
 * Synthesis is the transpose (each output sample gathers the coefficients that touch it), and
 * since the periodised filter bank is orthogonal, the transpose is the inverse. m >= L (checked
 * by the callers) keeps every index within one wrap. */
#ifndef R5_CORE_WAVELET_MATH_H
#define R5_CORE_WAVELET_MATH_H

#include "complex_math.h"
#include "hd.h"
#include "loop_nest.h"

typedef enum r5_wavelet_kind {
	R5_WAVELET_HAAR = 0,
	R5_WAVELET_DB4 = 1, /* Daubechies' 4-tap filter (two vanishing moments; pywt's "db2") */
	R5_WAVELET_DB8 = 2, /* Daubechies' 8-tap filter (four vanishing moments; pywt's "db4") */
	R5_WAVELET_N_KINDS
} r5_wavelet_kind;

R5_HD int r5_wavelet_length(int kind) { return kind == R5_WAVELET_DB8 ? 8 : kind == R5_WAVELET_DB4 ? 4 : 2; }

/* h[j]: (1 + sqrt 3, 3 + sqrt 3, 3 - sqrt 3, 1 - sqrt 3) / (4 sqrt 2) for Daubechies-4 */
R5_HD float r5_wavelet_lo(int kind, int j)
{
	if (kind == R5_WAVELET_DB8) /* Daubechies (1988), Table 1, N = 4, over sqrt 2 */
		return j == 0 ? 0.23037781330889650f : j == 1 ? 0.71484657055291565f : j == 2 ? 0.63088076792985890f
		     : j == 3 ? -0.02798376941685985f : j == 4 ? -0.18703481171909309f : j == 5 ? 0.03084138183556076f
		     : j == 6 ? 0.03288301166688520f : -0.01059740178506903f;
	if (kind != R5_WAVELET_DB4)
		return 0.70710678118654752f;
	return j == 0 ? 0.48296291314453414f : j == 1 ? 0.83651630373780790f : j == 2 ? 0.22414386804201339f
										      : -0.12940952255126037f;
}

R5_HD float r5_wavelet_hi(int kind, int j)
{
	float h = r5_wavelet_lo(kind, r5_wavelet_length(kind) - 1 - j);
	return j & 1 ? -h : h;
}

/* One step over a block: `lines` walks every dimension but the transformed one (one array: out
 * and in share strides), n samples along it at stride `step`. Element i of the step is sample
 * p of line l, with p the fast index when the transformed dimension is the innermost in memory
 * (p_inner) and l the fast one otherwise, so that neighbouring threads touch neighbouring
 * memory. */
struct r5_wavelet_step {
	int kind, inverse, p_inner, len;
	float lo[8], hi[8]; /* the filters (len taps), looked up once per step */
	long n, m, step;
	long n_lines;
	struct r5_loop_nest lines;
};

/* Offset of line l (all nest dimensions, innermost first). */
R5_HD long r5_wavelet_line_offset(const struct r5_wavelet_step *w, long l)
{
	long off = 0;
	for (int r = 0; r < w->lines.rank; r++) {
		off += (l % w->lines.dims[r]) * w->lines.str[0][r];
		l /= w->lines.dims[r];
	}
	return off;
}

/* Offset of element i of the step and its sample index p along the line. */
R5_HD long r5_wavelet_element(const struct r5_wavelet_step *w, long i, long *p)
{
	long l;
	if (w->p_inner) {
		*p = i % w->n;
		l = i / w->n;
	} else {
		*p = i / w->n_lines;
		l = i % w->n_lines;
	}
	return r5_wavelet_line_offset(w, l);
}

/* Output sample p of the line whose sample 0 is line[0] in the input. */
R5_HD r5_cf r5_wavelet_value(const struct r5_wavelet_step *w, long p, const r5_cf *line)
{
	long m = w->m, half = m / 2, s = w->step;
	int len = w->len;
	if (p >= m)
		return line[p * s];
	float re = 0.0f, im = 0.0f;
	if (!w->inverse) {
		int high = p >= half;
		long start = 2 * (high ? p - half : p);
		for (int j = 0; j < len; j++) {
			long q = start + j;
			r5_cf x = line[(q >= m ? q - m : q) * s];
			float f = high ? w->hi[j] : w->lo[j];
			re += f * r5_cf_re(x);
			im += f * r5_cf_im(x);
		}
	} else {
		for (int j = (int)(p & 1); j < len; j += 2) {
			long t = p - j;
			long k = (t < 0 ? t + m : t) / 2;
			r5_cf lo = line[k * s], hi = line[(half + k) * s];
			float fl = w->lo[j], fh = w->hi[j];
			re += fl * r5_cf_re(lo) + fh * r5_cf_re(hi);
			im += fl * r5_cf_im(lo) + fh * r5_cf_im(hi);
		}
	}
	return r5_cf_make(re, im);
}

/* Builds the step over `dims` (all positive; dims[dim] even part at least the filter length,
 * checked by the wrapper) with strides `str`. Returns the element count. */
static inline long r5_wavelet_step_make(struct r5_wavelet_step *w, int kind, int inverse, int dim,
					const long dims[R5_DIMS], const long str[R5_DIMS])
{
	long line_dims[R5_DIMS];
	const long *strides[3] = {str, str, str};
	for (int d = 0; d < R5_DIMS; d++)
		line_dims[d] = d == dim ? 1 : dims[d];
	w->kind = kind;
	w->inverse = inverse;
	w->len = r5_wavelet_length(kind);
	for (int j = 0; j < 8; j++) {
		w->lo[j] = j < w->len ? r5_wavelet_lo(kind, j) : 0.0f;
		w->hi[j] = j < w->len ? r5_wavelet_hi(kind, j) : 0.0f;
	}
	w->n = dims[dim];
	w->m = dims[dim] & ~1L;
	w->step = str[dim];
	w->n_lines = r5_loop_nest_make(&w->lines, line_dims, 1, strides);
	w->p_inner = w->lines.dims[0] == 1 || w->step < w->lines.str[0][0];
	return w->n * w->n_lines;
}

#endif
