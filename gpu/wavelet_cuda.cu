/* CUDA back end: one level of the orthogonal periodic wavelet transform along one dimension
 * (the zwavelet_step slot). One thread per output element runs the per-element filter math of
 * recon/core/wavelet_math.h that the CPU back end runs too (recon/cpu/cpu_wavelet.c), so both
 * compute the same function; each output gathers its 2-4 inputs (no write conflicts).
 * Neighbouring threads take neighbouring samples of a line when the transformed dimension is
 * the innermost in memory, else the same sample of neighbouring lines (coalesced either way). */
#include "cuda_common.h"
#include "../recon/core/wavelet_math.h"

#define WAVELET_THREADS 256

static __global__ void wavelet_k_step(struct r5_wavelet_step w, long total, r5_cf *out, const r5_cf *in)
{
	for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (long)blockDim.x * gridDim.x) {
		long p;
		long off = r5_wavelet_element(&w, i, &p);
		out[off + p * w.step] = r5_wavelet_value(&w, p, in + off);
	}
}

r5_status r5_cuda_zwavelet_step(void *state, int kind, int inverse, int dim, const long dims[R5_DIMS],
				const long str[R5_DIMS], r5_cf *out, const r5_cf *in)
{
	struct r5_cuda_state *s = (struct r5_cuda_state *)state;
	for (int d = 0; d < R5_DIMS; d++)
		if (dims[d] <= 0)
			return r5_set_error(R5_EINVAL, "cuda zwavelet_step: dimension %d is %ld", d, dims[d]);
	struct r5_wavelet_step w;
	long total = r5_wavelet_step_make(&w, kind, inverse, dim, dims, str);
	R5_TRY(r5_cuda_activate(s));
	wavelet_k_step<<<r5_cuda_grid(total, WAVELET_THREADS), WAVELET_THREADS, 0, s->stream>>>(w, total, out, in);
	return r5_cuda_launched("zwavelet_step");
}
