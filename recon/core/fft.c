/* Centred unitary FFTs (fft.h).
 *
 * The centred DFT over one dimension of size N with c = floor(N/2),
 *   X[k] = sum_n x[n] exp(-2 pi i (k - c)(n - c) / N),
 * equals fftshift(FFT(ifftshift(x))) for even and odd N alike. Expanding the exponent,
 *   X[k] = e^{-2 pi i c^2/N} e^{2 pi i c k/N} FFT(e^{2 pi i c n/N} x[n])[k],
 * so the shifts become two phase ramps: one multiply before the plain FFT and one after, with
 * the unitary 1/sqrt(N) folded into the second. The ramps are separable products over the
 * transformed dimensions, computed in double on the host once per shape and cached in the
 * context next to the FFT plan. The inverse uses the conjugate ramps. */
#include "fft.h"

#include <math.h>
#include <stdlib.h>

#include "hd.h"

static r5_status make_ramps(r5_ctx *ctx, const long dims[R5_DIMS], unsigned long flags, r5_array **pre_out,
			    r5_array **post_out)
{
	long rdims[R5_DIMS];
	r5_dims_ones(rdims);
	double scale = 1.0;
	for (int d = 0; d < R5_DIMS; d++) {
		if (flags & (1UL << d)) {
			rdims[d] = dims[d];
			scale *= (double)dims[d];
		}
	}
	scale = 1.0 / sqrt(scale);
	r5_array *pre = NULL, *post = NULL, *pre_w = NULL, *post_w = NULL;
	r5_status st = r5_array_alloc_host(rdims, &pre);
	if (st == R5_OK)
		st = r5_array_alloc_host(rdims, &post);
	if (st != R5_OK)
		goto done;
	long n = r5_array_size(pre);
	for (long i = 0; i < n; i++) {
		/* phase in turns, reduced mod 1 per dimension to keep double precision */
		double turns_pre = 0, turns_post = 0;
		long rest = i;
		for (int d = 0; d < R5_DIMS; d++) {
			long nd = rdims[d];
			if (nd == 1)
				continue;
			long idx = rest % nd;
			rest /= nd;
			long c = nd / 2;
			turns_pre += (double)((c * idx) % nd) / nd;
			turns_post += (double)((c * idx) % nd) / nd - (double)((c * c) % nd) / nd;
		}
		pre->data[i] = (float complex)cexp(2.0 * R5_PI * I * turns_pre);
		post->data[i] = (float complex)(scale * cexp(2.0 * R5_PI * I * turns_post));
	}
	st = r5_array_to_work(ctx, pre, &pre_w);
	if (st == R5_OK)
		st = r5_array_to_work(ctx, post, &post_w);
done:
	r5_array_free(pre);
	r5_array_free(post);
	if (st != R5_OK) {
		r5_array_free(pre_w);
		r5_array_free(post_w);
		return st;
	}
	*pre_out = pre_w;
	*post_out = post_w;
	return R5_OK;
}

static r5_status check_fft(r5_ctx *ctx, unsigned long flags, r5_array *out, const r5_array *in)
{
	if (!r5_dims_equal(out->dims, in->dims))
		return r5_set_error(R5_EINVAL, "fft: input and output shapes differ");
	if (flags >> R5_DIMS)
		return r5_set_error(R5_EINVAL, "fft: flags 0x%lx name dimensions beyond %d", flags, R5_DIMS);
	if (!r5_array_is_contiguous(out) || !r5_array_is_contiguous(in))
		return r5_set_error(R5_EINVAL, "fft: arrays must be contiguous");
	if (out->where != r5_ctx_residency(ctx) || in->where != r5_ctx_residency(ctx))
		return r5_set_error(R5_EINVAL, "fft: arrays must live where the %s back end computes",
				    r5_ctx_backend_name(ctx));
	return R5_OK;
}

r5_status r5_fft_raw(r5_ctx *ctx, unsigned long flags, r5_array *out, const r5_array *in, int inverse)
{
	R5_TRY(check_fft(ctx, flags, out, in));
	void *plan = NULL;
	R5_TRY(r5_ctx_fft_plan(ctx, in->dims, flags, &plan));
	return r5_ctx_backend(ctx)->fft_exec(r5_ctx_state(ctx), plan, out->data, in->data, inverse);
}

static r5_status centred(r5_ctx *ctx, unsigned long flags, r5_array *out, const r5_array *in, int inverse)
{
	R5_TRY(check_fft(ctx, flags, out, in));
	unsigned long used = 0;
	for (int d = 0; d < R5_DIMS; d++)
		if ((flags & (1UL << d)) && in->dims[d] > 1)
			used |= 1UL << d;
	if (!used)
		return out == in ? R5_OK : r5_array_copy(ctx, out, in);
	r5_array *pre = NULL, *post = NULL;
	R5_TRY(r5_ctx_fft_ramps(ctx, in->dims, used, make_ramps, &pre, &post));
	int conj = inverse ? R5_ZMUL_CONJ2 : 0;
	R5_TRY(r5_zmul(ctx, out, in, pre, conj));
	void *plan = NULL;
	R5_TRY(r5_ctx_fft_plan(ctx, in->dims, used, &plan));
	R5_TRY(r5_ctx_backend(ctx)->fft_exec(r5_ctx_state(ctx), plan, out->data, out->data, inverse));
	return r5_zmul(ctx, out, out, post, conj);
}

r5_status r5_fft_host(r5_ctx *ctx, unsigned long flags, int inverse, r5_array *dst, const r5_array *src,
		      const r5_progress *progress, const char *stage, double lo, double hi)
{
	int outer = R5_DIMS - 1;
	while (outer > 0 && (src->dims[outer] == 1 || (flags & R5_FLAG(outer))))
		outer--;
	long n = src->dims[outer], per = r5_array_size(src) / (n > 0 ? n : 1);
	long group = r5_ctx_fit(ctx, (double)sizeof(float complex) * (double)per, 0.25, n);
	group = group < 1 ? 1 : group > n ? n : group;
	r5_status s = R5_OK;
	for (long i0 = 0; i0 < n && s == R5_OK; i0 += group) {
		long dims[R5_DIMS];
		r5_dims_copy(dims, src->dims);
		dims[outer] = i0 + group < n ? group : n - i0;
		r5_array in = r5_array_view_strided(src, dims, NULL, i0 * per);
		r5_array out = r5_array_view_strided(dst, dims, NULL, i0 * per), *work = NULL;
		s = r5_array_to_work(ctx, &in, &work);
		if (s == R5_OK)
			s = centred(ctx, flags, work, work, inverse);
		if (s == R5_OK)
			s = r5_array_copy(ctx, &out, work);
		r5_array_free(work);
		if (s == R5_OK)
			s = r5_progress_check(progress, stage, lo + (hi - lo) * (double)(i0 + dims[outer]) / (double)n);
	}
	return s;
}

r5_status r5_fft(r5_ctx *ctx, unsigned long flags, r5_array *out, const r5_array *in)
{
	return centred(ctx, flags, out, in, 0);
}

r5_status r5_ifft(r5_ctx *ctx, unsigned long flags, r5_array *out, const r5_array *in)
{
	return centred(ctx, flags, out, in, 1);
}
