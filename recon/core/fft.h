/* Centred, unitary FFTs over any subset of dimensions, batched over the rest:
 *   r5_fft  : out = fftshift(FFT(ifftshift(in))) / sqrt(N)
 *   r5_ifft : out = fftshift(IFFT(ifftshift(in))) / sqrt(N)
 * where N is the product of the transformed sizes. Odd sizes are handled exactly (shift by
 * floor(n/2) and ceil(n/2)). Plans come from the context's cache (ctx.h). In place allowed. */
#ifndef R5_CORE_FFT_H
#define R5_CORE_FFT_H

#include "array.h"
#include "progress.h"

r5_status r5_fft(r5_ctx *ctx, unsigned long flags, r5_array *out, const r5_array *in);
r5_status r5_ifft(r5_ctx *ctx, unsigned long flags, r5_array *out, const r5_array *in);
/* dst = r5_fft (inverse: r5_ifft) of src for host arrays (contiguous, same dims; src may be
 * dst) on any context, in groups along the outermost dimension of size > 1 that is not
 * transformed, each group as large as a quarter of the device's free memory holds
 * (r5_ctx_fit; all at once on the host): moved where ctx computes, transformed there, moved
 * back into dst, then a check of progress (NULL: never stop) as `stage` from lo to hi. A host
 * volume a device does not hold, transformed on the device (streaming). */
r5_status r5_fft_host(r5_ctx *ctx, unsigned long flags, int inverse, r5_array *dst, const r5_array *src,
		      const r5_progress *progress, const char *stage, double lo, double hi);
/* Uncentred, unnormalised (for tests and callers that handle centring themselves). */
r5_status r5_fft_raw(r5_ctx *ctx, unsigned long flags, r5_array *out, const r5_array *in, int inverse);

#endif
