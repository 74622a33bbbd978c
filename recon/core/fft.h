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
/* Uncentred, unnormalised (for tests and callers that handle centring themselves). */
r5_status r5_fft_raw(r5_ctx *ctx, unsigned long flags, r5_array *out, const r5_array *in, int inverse);

#endif
