/* Multi-level orthogonal wavelet transform W as a recon/linop operator: forward is the analysis
 * (image -> coefficients), adjoint the synthesis, normal the identity (W is orthonormal, so
 * W^H = W^-1: what the prox step of FISTA with an L1 wavelet penalty needs). Haar and
 * Daubechies-4 filters, periodic extension (Mallat, IEEE PAMI 11, 1989; Daubechies, CPAM 41,
 * 1988), separable over any subset of dims, computed level by level through the zwavelet_step
 * slot (recon/core/wavelet_math.h) on either back end.
 *
 * Layout (pywt's wavedecn order, in place): at each level every transformed dimension d of the
 * current approximation block (sizes b_d) is filtered in turn, putting the low band in
 * [0, m_d / 2) and the high band in [m_d / 2, m_d), m_d = b_d rounded down to even; the next
 * level works on the block of sizes m_d / 2. Odd sizes: an odd b_d keeps its last sample as it
 * is (an identity on one sample, so W stays orthonormal) and the periodic filters run over the
 * first m_d. A dimension takes a level only while m_d is at least the filter length (2 Haar,
 * 4 Daubechies-4); it stops there while the others go on. levels <= 0: as many as any
 * dimension allows; otherwise at most `levels`.
 *
 * Cycle spinning (Coifman and Donoho, "Translation-invariant de-noising", 1995; as BART's
 * randomised shifts in pics): r5_linop_wavelet_set_shift makes the operator W S with S a
 * circular shift (out[(i + s) mod n] = in[i]), still orthonormal, so a solver may draw fresh
 * shifts each iteration and block artefacts at the coarse levels' edges do not stay in place.
 *
 * Scratch: one array of the dims (made at the first application), and a second one at the
 * first shifted adjoint. */
#ifndef R5_LINOP_WAVELET_H
#define R5_LINOP_WAVELET_H

#include "../core/wavelet_math.h"
#include "linop.h"

/* W over the dims whose bit is set in flags; at least one flagged dimension must be long
 * enough for one level (R5_EINVAL naming the dims otherwise). */
r5_status r5_linop_wavelet(r5_ctx *ctx, const long dims[R5_DIMS], unsigned long flags, r5_wavelet_kind kind,
			   int levels, r5_linop **out);

/* As r5_linop_wavelet, and a dimension takes a level only while its block's even part is at
 * least min(min_block, its size rounded down to even) samples (as BART's minimum size: the
 * coarsest band stays about min_block / 2 wide, the coarse scales that carry the image's contrast
 * rather than its detail; a dimension shorter than min_block still takes one level). */
r5_status r5_linop_wavelet_min(r5_ctx *ctx, const long dims[R5_DIMS], unsigned long flags, r5_wavelet_kind kind,
			       int levels, long min_block, r5_linop **out);

/* Sets the circular shift S of a wavelet operator (W S from now on); shifts along dimensions
 * not in its flags are refused (R5_EINVAL), any integer along flagged ones (taken modulo the
 * size). All zeros: plain W again. */
r5_status r5_linop_wavelet_set_shift(r5_linop *op, const long shifts[R5_DIMS]);

/* Levels the operator takes along dimension dim (0 for a dimension it does not transform);
 * -1 when op is not a wavelet operator. */
int r5_linop_wavelet_levels(const r5_linop *op, int dim);

#endif
