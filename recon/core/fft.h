/* Centred, unitary FFTs over any subset of dimensions, batched over the rest:
 *   r5_fft  : out = fftshift(FFT(ifftshift(in))) / sqrt(N)
 *   r5_ifft : out = fftshift(IFFT(ifftshift(in))) / sqrt(N)
 * where N is the product of the transformed sizes. Odd sizes are handled exactly (shift by
 * floor(n/2) and ceil(n/2)). Plans come from the context's cache (ctx.h). In place allowed. */
#ifndef R5_CORE_FFT_H
#define R5_CORE_FFT_H

#include "array.h"

r5_status r5_fft(r5_ctx *ctx, unsigned long flags, r5_array *out, const r5_array *in);
r5_status r5_ifft(r5_ctx *ctx, unsigned long flags, r5_array *out, const r5_array *in);
/* dst = r5_fft (inverse: r5_ifft) of src for host arrays (contiguous, same dims; src may be
 * dst) on any context: src moved where ctx computes, transformed there, moved back into dst. A
 * piece of a host volume a device does not hold, transformed on the device (streaming). */
r5_status r5_fft_host(r5_ctx *ctx, unsigned long flags, int inverse, r5_array *dst, const r5_array *src);
/* Uncentred, unnormalised (for tests and callers that handle centring themselves). */
r5_status r5_fft_raw(r5_ctx *ctx, unsigned long flags, r5_array *out, const r5_array *in, int inverse);

#endif
