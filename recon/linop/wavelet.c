/* The multi-level orthogonal wavelet operator of wavelet.h: a plan of levels made at creation
 * (each level's approximation block and the dimensions it filters), applied step by step
 * through r5_zwavelet_step. A step reads the current block of the result and writes the same
 * block of the scratch array, which is copied back (strided), so the bands already final stay
 * where they are. Synthesis runs the plan backwards with the inverse steps. */
#include "wavelet.h"

#include <stdlib.h>
#include <string.h>

#define WAVELET_MAX_LEVELS 64

struct wavelet_level {
	long block[R5_DIMS];   /* the approximation block this level filters */
	unsigned long filters; /* dimensions filtered at this level */
};

struct wavelet_data {
	r5_wavelet_kind kind;
	unsigned long flags;
	long dims[R5_DIMS];
	long shifts[R5_DIMS], back[R5_DIMS];
	int shifted;
	int n_levels;
	struct wavelet_level level[WAVELET_MAX_LEVELS];
	r5_array *scratch; /* one level's output block */
	r5_array *work;    /* the shifted synthesis before its shift back */
};

static void wavelet_destroy(void *data)
{
	struct wavelet_data *w = data;
	if (!w)
		return;
	r5_array_free(w->scratch);
	r5_array_free(w->work);
	free(w);
}

static long wavelet_held(const void *data)
{
	const struct wavelet_data *w = data;
	return r5_linop_array_bytes(w->scratch) + r5_linop_array_bytes(w->work);
}

/* One level along one dimension on x (contiguous, the operator's dims) through the scratch. */
static r5_status wavelet_step(r5_ctx *ctx, struct wavelet_data *w, const struct wavelet_level *lv, int dim,
			      int inverse, r5_array *x)
{
	r5_array block = r5_array_view_strided(x, lv->block, NULL, 0);
	r5_array scratch = r5_array_view_strided(w->scratch, lv->block, NULL, 0);
	R5_TRY(r5_zwavelet_step(ctx, w->kind, inverse, dim, &scratch, &block));
	return r5_zcopy_strided(ctx, lv->block, block.strides, block.data, scratch.strides, scratch.data);
}

static r5_status wavelet_forward(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	struct wavelet_data *w = data;
	R5_TRY(r5_linop_scratch(ctx, "wavelet scratch", &w->scratch, w->dims));
	if (w->shifted)
		R5_TRY(r5_zcircshift(ctx, out, in, w->shifts));
	else
		R5_TRY(r5_array_copy(ctx, out, in));
	for (int l = 0; l < w->n_levels; l++)
		for (int d = 0; d < R5_DIMS; d++)
			if (w->level[l].filters >> d & 1)
				R5_TRY(wavelet_step(ctx, w, &w->level[l], d, 0, out));
	return R5_OK;
}

static r5_status wavelet_adjoint(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	struct wavelet_data *w = data;
	R5_TRY(r5_linop_scratch(ctx, "wavelet scratch", &w->scratch, w->dims));
	if (w->shifted)
		R5_TRY(r5_linop_scratch(ctx, "wavelet shifted synthesis", &w->work, w->dims));
	r5_array *x = w->shifted ? w->work : out;
	R5_TRY(r5_array_copy(ctx, x, in));
	for (int l = w->n_levels - 1; l >= 0; l--)
		for (int d = R5_DIMS - 1; d >= 0; d--)
			if (w->level[l].filters >> d & 1)
				R5_TRY(wavelet_step(ctx, w, &w->level[l], d, 1, x));
	if (w->shifted)
		R5_TRY(r5_zcircshift(ctx, out, x, w->back));
	return R5_OK;
}

/* W^H W = I */
static r5_status wavelet_normal(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	(void)data;
	if (out->data == in->data)
		return R5_OK;
	return r5_array_copy(ctx, out, in);
}

/* The levels: each flagged dimension filters while its block's even part covers the filter and
 * the minimum block (wavelet.h). */
static int wavelet_plan(struct wavelet_data *w, int levels, long min_block)
{
	long block[R5_DIMS], need[R5_DIMS];
	for (int d = 0; d < R5_DIMS; d++) {
		long even = w->dims[d] & ~1L, len = r5_wavelet_length(w->kind);
		need[d] = min_block < even ? min_block : even;
		need[d] = need[d] > len ? need[d] : len;
	}
	int max = levels > 0 && levels < WAVELET_MAX_LEVELS ? levels : WAVELET_MAX_LEVELS;
	memcpy(block, w->dims, sizeof block);
	w->n_levels = 0;
	while (w->n_levels < max) {
		unsigned long filters = 0;
		for (int d = 0; d < R5_DIMS; d++)
			if ((w->flags >> d & 1) && (block[d] & ~1L) >= need[d])
				filters |= 1UL << d;
		if (!filters)
			break;
		struct wavelet_level *lv = &w->level[w->n_levels++];
		memcpy(lv->block, block, sizeof block);
		lv->filters = filters;
		for (int d = 0; d < R5_DIMS; d++)
			if (filters >> d & 1)
				block[d] = (block[d] & ~1L) / 2;
	}
	return w->n_levels;
}

r5_status r5_linop_wavelet(r5_ctx *ctx, const long dims[R5_DIMS], unsigned long flags, r5_wavelet_kind kind,
			   int levels, r5_linop **out)
{
	return r5_linop_wavelet_min(ctx, dims, flags, kind, levels, 0, out);
}

r5_status r5_linop_wavelet_min(r5_ctx *ctx, const long dims[R5_DIMS], unsigned long flags, r5_wavelet_kind kind,
			       int levels, long min_block, r5_linop **out)
{
	char td[128];
	*out = NULL;
	if ((int)kind < 0 || kind >= R5_WAVELET_N_KINDS)
		return r5_set_error(R5_EINVAL, "wavelet operator: unknown kind %d (haar %d, db4 %d, db8 %d)",
				    (int)kind, R5_WAVELET_HAAR, R5_WAVELET_DB4, R5_WAVELET_DB8);
	for (int d = 0; d < R5_DIMS; d++)
		if (dims[d] < 1)
			return r5_set_error(R5_EINVAL, "wavelet operator: dimension %d is %ld", d, dims[d]);
	if (flags == 0 || flags >> R5_DIMS)
		return r5_set_error(R5_EINVAL, "wavelet operator over %s: flags 0x%lx name no dimension or one past %d",
				    r5_dims_format(td, sizeof td, dims), flags, R5_DIMS - 1);
	struct wavelet_data *w = calloc(1, sizeof *w);
	if (!w)
		return r5_set_error(R5_ENOMEM, "wavelet operator");
	w->kind = kind;
	w->flags = flags;
	memcpy(w->dims, dims, sizeof w->dims);
	if (wavelet_plan(w, levels, min_block) == 0) {
		free(w);
		return r5_set_error(R5_EINVAL,
				    "wavelet operator over %s, flags 0x%lx: no flagged dimension has the %d samples "
				    "one %s level needs",
				    r5_dims_format(td, sizeof td, dims), flags, r5_wavelet_length(kind),
				    kind == R5_WAVELET_HAAR ? "Haar" : kind == R5_WAVELET_DB4 ? "Daubechies-4" : "Daubechies-8");
	}
	R5_TRY(r5_linop_create(ctx, kind == R5_WAVELET_HAAR ? "wavelet haar" : kind == R5_WAVELET_DB4 ? "wavelet db4" : "wavelet db8",
			       dims, dims,
			       wavelet_forward, wavelet_adjoint, wavelet_normal, w, wavelet_destroy, out));
	(*out)->held = wavelet_held;
	(*out)->in_place = R5_LINOP_INPLACE_NORMAL;
	return R5_OK;
}

r5_status r5_linop_wavelet_set_shift(r5_linop *op, const long shifts[R5_DIMS])
{
	if (!op || op->forward != wavelet_forward)
		return r5_set_error(R5_EINVAL, "wavelet shift: %s is not a wavelet operator", op ? op->name : "NULL");
	if (!shifts)
		return r5_set_error(R5_EINVAL, "wavelet shift: no shifts");
	struct wavelet_data *w = op->data;
	int shifted = 0;
	long normalised[R5_DIMS];
	for (int d = 0; d < R5_DIMS; d++) {
		long n = w->dims[d], s = shifts[d] % n;
		normalised[d] = s < 0 ? s + n : s;
		if (normalised[d] && !(w->flags >> d & 1)) {
			char td[128];
			return r5_set_error(R5_EINVAL, "wavelet shift of %s: shift %ld along dimension %d, which %s does "
					    "not transform (flags 0x%lx)", r5_dims_format(td, sizeof td, w->dims),
					    shifts[d], d, op->name, w->flags);
		}
		shifted |= normalised[d] != 0;
	}
	for (int d = 0; d < R5_DIMS; d++) {
		w->shifts[d] = normalised[d];
		w->back[d] = -normalised[d];
	}
	w->shifted = shifted;
	return R5_OK;
}

int r5_linop_wavelet_levels(const r5_linop *op, int dim)
{
	if (!op || op->forward != wavelet_forward)
		return -1;
	const struct wavelet_data *w = op->data;
	int n = 0;
	for (int l = 0; l < w->n_levels; l++)
		n += dim >= 0 && dim < R5_DIMS && (w->level[l].filters >> dim & 1);
	return n;
}
