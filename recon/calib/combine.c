/* Coil combination: root-sum-of-squares and adaptive (Walsh) — see combine.h.
 *
 * The adaptive combination works on each image volume [nx, ny, nz, C] reinterpreted as
 * [bx, X, by, Y, bz, Z, C] (nx = bx X, ...), so that summing over the b dims gives block sums
 * through the ordinary wrappers: R[X, Y, Z, C1, C2] = sum over a block of x_C1 conj(x_C2). The
 * per-block matrices are transposed to [C1, C2, P] for zheev_top_batched, the dominant eigenvector
 * is taken per block and applied by broadcasting it back over its block. */
#include "combine.h"

#include <stdlib.h>
#include <string.h>

static long block_size(long n, long max_block)
{
	for (long b = max_block; b > 1; b--)
		if (n % b == 0)
			return b;
	return 1;
}

static void dims7(long dims[R5_DIMS], long bx, long x, long by, long y, long bz, long z, long c)
{
	r5_dims_ones(dims);
	dims[0] = bx, dims[1] = x, dims[2] = by, dims[3] = y, dims[4] = bz, dims[5] = z, dims[6] = c;
}

struct walsh {
	long bx, by, bz, X, Y, Z, C, P;
	r5_array *prod, *cov, *mats, *evals, *weights, *phase_ref, *tmp_ref;
	const r5_progress *progress;
	double lo, hi; /* this volume's fractions */
};

static const char *const stage = "coil combination";

/* The block eigenproblems, the dominant vector only (with a hook, in chunks of
 * R5_PROGRESS_CHUNK_MACS / C^3 blocks, a check after each). */
static r5_status walsh_eigs(r5_ctx *ctx, struct walsh *w)
{
	long chunk = w->progress ? R5_PROGRESS_CHUNK_MACS / (w->C * w->C * w->C) : w->P, CC = w->C * w->C;
	chunk = chunk < 1 ? 1 : chunk;
	float *ev = (float *)w->evals->data;
	for (long p0 = 0; p0 < w->P; p0 += chunk) {
		long np = p0 + chunk < w->P ? chunk : w->P - p0;
		R5_TRY(r5_zheev_top_batched(ctx, np, (int)w->C, 1, w->mats->data + p0 * CC, ev + p0 * w->C));
		R5_TRY(r5_progress_check(w->progress, stage, w->lo + (w->hi - w->lo) * (0.5 + 0.4 * (double)(p0 + np) / (double)w->P)));
	}
	return R5_OK;
}

static void walsh_free(struct walsh *w)
{
	r5_array_free(w->prod);
	r5_array_free(w->cov);
	r5_array_free(w->mats);
	r5_array_free(w->evals);
	r5_array_free(w->weights);
	r5_array_free(w->phase_ref);
	r5_array_free(w->tmp_ref);
}

static r5_status walsh_alloc(r5_ctx *ctx, struct walsh *w)
{
	long d[R5_DIMS];
	dims7(d, w->bx, w->X, w->by, w->Y, w->bz, w->Z, w->C);
	R5_TRY(r5_array_alloc_work(ctx, d, &w->prod));
	dims7(d, 1, w->X, 1, w->Y, 1, w->Z, w->C);
	d[7] = w->C;
	R5_TRY(r5_array_alloc_work(ctx, d, &w->cov));
	R5_TRY(r5_array_alloc_work(ctx, d, &w->mats));
	r5_dims_ones(d);
	d[0] = (w->P * w->C + 1) / 2; /* float eigenvalues in complex storage */
	R5_TRY(r5_array_alloc_work(ctx, d, &w->evals));
	dims7(d, 1, w->X, 1, w->Y, 1, w->Z, w->C);
	R5_TRY(r5_array_alloc_work(ctx, d, &w->weights));
	dims7(d, 1, w->X, 1, w->Y, 1, w->Z, 1);
	R5_TRY(r5_array_alloc_work(ctx, d, &w->phase_ref));
	return r5_array_alloc_work(ctx, d, &w->tmp_ref);
}

/* Dominant eigenvector per block, phase referenced to the coil sum, into w->weights. */
static r5_status walsh_weights(r5_ctx *ctx, struct walsh *w, r5_array *img)
{
	const struct r5_backend *b = r5_ctx_backend(ctx);
	void *st = r5_ctx_state(ctx);
	long npix = w->bx * w->X * w->by * w->Y * w->bz * w->Z;
	for (long c2 = 0; c2 < w->C; c2++) {
		long d[R5_DIMS];
		r5_array *coil = NULL, *cov_c2 = NULL;
		dims7(d, w->bx, w->X, w->by, w->Y, w->bz, w->Z, 1);
		R5_TRY(r5_array_view(img->where, ctx, d, img->data + c2 * npix, &coil));
		dims7(d, 1, w->X, 1, w->Y, 1, w->Z, w->C);
		r5_status s = r5_array_view(img->where, ctx, d, w->cov->data + c2 * w->P * w->C, &cov_c2);
		if (s == R5_OK)
			s = r5_zmul(ctx, w->prod, img, coil, R5_ZMUL_CONJ2);
		if (s == R5_OK)
			s = r5_zsum(ctx, cov_c2, w->prod);
		r5_array_free(coil);
		r5_array_free(cov_c2);
		R5_TRY(s);
		R5_TRY(r5_progress_check(w->progress, stage, w->lo + (w->hi - w->lo) * 0.5 * (double)(c2 + 1) / (double)w->C));
	}
	/* [P, C1, C2] -> [C1, C2, P] */
	long d[R5_DIMS], so[R5_DIMS], si[R5_DIMS];
	r5_dims_ones(d);
	memset(so, 0, sizeof so);
	memset(si, 0, sizeof si);
	d[0] = w->P, d[1] = w->C, d[2] = w->C;
	so[0] = w->C * w->C, so[1] = 1, so[2] = w->C;
	si[0] = 1, si[1] = w->P, si[2] = w->P * w->C;
	R5_TRY(b->zcopy_md(st, d, so, w->mats->data, si, w->cov->data));
	R5_TRY(walsh_eigs(ctx, w));
	/* column 0 of each matrix -> weights [P, C] */
	d[0] = w->C, d[1] = w->P, d[2] = 1;
	so[0] = w->P, so[1] = 1, so[2] = 0;
	si[0] = 1, si[1] = w->C * w->C, si[2] = 0;
	R5_TRY(b->zcopy_md(st, d, so, w->weights->data, si, w->mats->data));
	/* v <- v conj(s / |s|), s = sum_c v_c */
	R5_TRY(r5_zsum(ctx, w->phase_ref, w->weights));
	R5_TRY(r5_zunary(ctx, R5_UNARY_ABS, w->tmp_ref, w->phase_ref));
	R5_TRY(r5_zunary(ctx, R5_UNARY_RECIP, w->tmp_ref, w->tmp_ref));
	R5_TRY(r5_zmul(ctx, w->phase_ref, w->phase_ref, w->tmp_ref, 0));
	return r5_zmul(ctx, w->weights, w->weights, w->phase_ref, R5_ZMUL_CONJ2);
}

static r5_status adaptive(r5_ctx *ctx, const r5_array *coil_images, r5_array *out, const r5_progress *progress)
{
	const long *dims = coil_images->dims;
	struct walsh w;
	memset(&w, 0, sizeof w);
	w.bx = block_size(dims[0], 8), w.by = block_size(dims[1], 8), w.bz = block_size(dims[2], 4);
	w.X = dims[0] / w.bx, w.Y = dims[1] / w.by, w.Z = dims[2] / w.bz, w.C = dims[3];
	w.P = w.X * w.Y * w.Z;
	if (w.C > 64)
		return r5_set_error(R5_EINVAL, "adaptive combination: %ld coils, at most 64 (compress first)", w.C);
	long outer = 1;
	for (int d = 4; d < R5_DIMS; d++)
		outer *= dims[d];
	long vol = dims[0] * dims[1] * dims[2];
	w.progress = progress;
	r5_status s = walsh_alloc(ctx, &w);
	for (long o = 0; o < outer && s == R5_OK; o++) {
		w.lo = (double)o / (double)outer;
		w.hi = (double)(o + 1) / (double)outer;
		long d[R5_DIMS];
		r5_array *img = NULL, *dst = NULL;
		dims7(d, w.bx, w.X, w.by, w.Y, w.bz, w.Z, w.C);
		s = r5_array_view(coil_images->where, ctx, d, coil_images->data + o * vol * w.C, &img);
		dims7(d, w.bx, w.X, w.by, w.Y, w.bz, w.Z, 1);
		if (s == R5_OK)
			s = r5_array_view(out->where, ctx, d, out->data + o * vol, &dst);
		if (s == R5_OK)
			s = walsh_weights(ctx, &w, img);
		if (s == R5_OK)
			s = r5_zmul(ctx, w.prod, img, w.weights, R5_ZMUL_CONJ2);
		if (s == R5_OK)
			s = r5_zsum(ctx, dst, w.prod);
		r5_array_free(img);
		r5_array_free(dst);
		if (s == R5_OK)
			s = r5_progress_check(progress, stage, w.hi);
	}
	walsh_free(&w);
	return s;
}

/* rss volume by volume (groups of about R5_PROGRESS_CHUNK_VALUES values), a check after each */
static r5_status rss(r5_ctx *ctx, const r5_array *coil_images, r5_array *out, const r5_progress *progress)
{
	if (!progress || !r5_array_is_contiguous(coil_images) || !r5_array_is_contiguous(out))
		return r5_zrss(ctx, out, coil_images, R5_DIM_COIL);
	const long *dims = coil_images->dims;
	long vol = dims[0] * dims[1] * dims[2], C = dims[3], outer = r5_array_size(coil_images) / (vol * C);
	long group = R5_PROGRESS_CHUNK_VALUES / (vol * C);
	group = group < 1 ? 1 : group;
	for (long o = 0; o < outer; o += group) {
		long n = o + group < outer ? group : outer - o, d[R5_DIMS];
		r5_array *in = NULL, *dst = NULL;
		r5_dims_ones(d);
		for (int k = 0; k < 4; k++)
			d[k] = dims[k];
		d[4] = n;
		r5_status s = r5_array_view(coil_images->where, coil_images->ctx, d, coil_images->data + o * vol * C, &in);
		d[3] = 1;
		if (s == R5_OK)
			s = r5_array_view(out->where, out->ctx, d, out->data + o * vol, &dst);
		if (s == R5_OK)
			s = r5_zrss(ctx, dst, in, R5_DIM_COIL);
		r5_array_free(in);
		r5_array_free(dst);
		R5_TRY(s);
		R5_TRY(r5_progress_check(progress, stage, (double)(o + n) / (double)outer));
	}
	return R5_OK;
}

r5_status r5_coil_combine(r5_ctx *ctx, const char *method, const r5_array *coil_images, r5_array *out,
			  const r5_progress *progress)
{
	long want[R5_DIMS];
	r5_dims_copy(want, coil_images->dims);
	want[R5_DIM_COIL] = 1;
	if (!r5_dims_equal(want, out->dims))
		return r5_set_error(R5_EINVAL, "coil combination: output must be the coil images without the coil dimension");
	if (coil_images->dims[R5_DIM_MAP] != 1)
		return r5_set_error(R5_EINVAL, "coil combination: coil images with %ld maps", coil_images->dims[R5_DIM_MAP]);
	if (!method || !strcmp(method, "rss"))
		return rss(ctx, coil_images, out, progress);
	if (!strcmp(method, "adaptive") || !strcmp(method, "walsh"))
		return adaptive(ctx, coil_images, out, progress);
	return r5_set_error(R5_EINVAL, "unknown coil combination '%s' (rss or adaptive)", method);
}
