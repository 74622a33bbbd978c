/* Finite-difference operator for TV (finite_diff.h): forward differences with a Neumann boundary
 * and their exact adjoint, the negative divergence, each part applied as two r5_zaxpby over
 * strided views that shift the array by one sample along the difference's dimension; the normal
 * D^H D as the Laplacian it is, with the same views, never forming D x. */
#include "finite_diff.h"

#include <stdlib.h>

typedef struct finite_diff_data {
	int n_parts;
	int part_dims[R5_DIMS]; /* the flagged dimensions, increasing */
	int stack_dim;
} finite_diff_data;

/* dims of one shifted slab: dims with dim d one shorter */
static void slab_dims(long slab[R5_DIMS], const long dims[R5_DIMS], int d)
{
	r5_dims_copy(slab, dims);
	slab[d] = dims[d] - 1;
}

/* out part k = x[i + 1] - x[i] along its dimension, 0 at the last sample (out zeroed first) */
static r5_status finite_diff_forward(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	const finite_diff_data *fd = data;
	R5_TRY(r5_zfill(ctx, out, 0));
	for (int k = 0; k < fd->n_parts; k++) {
		int d = fd->part_dims[k];
		if (in->dims[d] < 2)
			continue;
		long slab[R5_DIMS];
		slab_dims(slab, in->dims, d);
		r5_array lo = r5_array_view_strided(in, slab, NULL, 0);
		r5_array hi = r5_array_view_strided(in, slab, NULL, in->strides[d]);
		r5_array part = r5_array_view_strided(out, slab, NULL, k * out->strides[fd->stack_dim]);
		R5_TRY(r5_zaxpby(ctx, 1.0f, &hi, 1.0f, &part));
		R5_TRY(r5_zaxpby(ctx, -1.0f, &lo, 1.0f, &part));
	}
	return R5_OK;
}

/* out = sum over parts of D_d^H g_k: out[i + 1] += g[i], out[i] -= g[i] for i < n - 1 */
static r5_status finite_diff_adjoint(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	const finite_diff_data *fd = data;
	R5_TRY(r5_zfill(ctx, out, 0));
	for (int k = 0; k < fd->n_parts; k++) {
		int d = fd->part_dims[k];
		if (out->dims[d] < 2)
			continue;
		long slab[R5_DIMS];
		slab_dims(slab, out->dims, d);
		r5_array part = r5_array_view_strided(in, slab, NULL, k * in->strides[fd->stack_dim]);
		r5_array lo = r5_array_view_strided(out, slab, NULL, 0);
		r5_array hi = r5_array_view_strided(out, slab, NULL, out->strides[d]);
		R5_TRY(r5_zaxpby(ctx, 1.0f, &part, 1.0f, &hi));
		R5_TRY(r5_zaxpby(ctx, -1.0f, &part, 1.0f, &lo));
	}
	return R5_OK;
}

/* Slab of a (dims `slab`) starting at index `first` along dim d. */
static r5_array slab_at(const r5_array *a, const long slab[R5_DIMS], int d, long first)
{
	return r5_array_view_strided(a, slab, NULL, first * a->strides[d]);
}

/* out = D^H D in = sum over parts of the 1D Neumann Laplacian along the part's dim, straight from
 * in (no stacked differences): 2 in[i] - in[i - 1] - in[i + 1] inside, in[0] - in[1] and
 * in[n - 1] - in[n - 2] at the ends (finite_diff.h's D_d^H D_d). One scaled copy and per part two
 * shifted subtractions and two boundary planes, against forward then adjoint's two fills and four
 * shifted passes per part through a scratch array of the stacked output. */
static r5_status finite_diff_normal(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	const finite_diff_data *fd = data;
	int active = 0;
	for (int k = 0; k < fd->n_parts; k++)
		active += in->dims[fd->part_dims[k]] > 1;
	if (!active)
		return r5_zfill(ctx, out, 0);
	R5_TRY(r5_zaxpby(ctx, 2.0f * (float)active, in, 0.0f, out));
	for (int k = 0; k < fd->n_parts; k++) {
		int d = fd->part_dims[k];
		long n = in->dims[d], slab[R5_DIMS], plane[R5_DIMS];
		if (n < 2)
			continue;
		slab_dims(slab, in->dims, d);
		r5_dims_copy(plane, in->dims);
		plane[d] = 1;
		r5_array out_lo = slab_at(out, slab, d, 0), out_hi = slab_at(out, slab, d, 1);
		r5_array in_lo = slab_at(in, slab, d, 0), in_hi = slab_at(in, slab, d, 1);
		R5_TRY(r5_zaxpby(ctx, -1.0f, &in_hi, 1.0f, &out_lo)); /* - in[i + 1] */
		R5_TRY(r5_zaxpby(ctx, -1.0f, &in_lo, 1.0f, &out_hi)); /* - in[i - 1] */
		for (long end = 0; end < n; end += n - 1) {           /* one neighbour only at the ends */
			r5_array out_end = slab_at(out, plane, d, end), in_end = slab_at(in, plane, d, end);
			R5_TRY(r5_zaxpby(ctx, -1.0f, &in_end, 1.0f, &out_end));
		}
	}
	return R5_OK;
}

r5_status r5_linop_finite_diff(r5_ctx *ctx, const long dims[R5_DIMS], unsigned long flags, int stack_dim,
			       r5_linop **out)
{
	*out = NULL;
	char text[128];
	r5_dims_format(text, sizeof text, dims);
	if (flags == 0 || (flags >> R5_DIMS) != 0)
		return r5_set_error(R5_EINVAL, "operator finite differences on %s: flags 0x%lx name no dimension or one "
					       "beyond the %d", text, flags, R5_DIMS);
	if (stack_dim < 0 || stack_dim >= R5_DIMS)
		return r5_set_error(R5_EINVAL, "operator finite differences on %s: stack dimension %d out of range",
				    text, stack_dim);
	if (dims[stack_dim] != 1 || (flags & R5_FLAG(stack_dim)))
		return r5_set_error(R5_EINVAL, "operator finite differences on %s (flags 0x%lx): stack dimension %d "
					       "must have size 1 and not be differenced", text, flags, stack_dim);
	finite_diff_data *fd = calloc(1, sizeof *fd);
	if (!fd)
		return r5_set_error(R5_ENOMEM, "operator finite differences on %s", text);
	fd->stack_dim = stack_dim;
	for (int d = 0; d < R5_DIMS; d++)
		if (flags & R5_FLAG(d))
			fd->part_dims[fd->n_parts++] = d;
	long odims[R5_DIMS];
	r5_dims_copy(odims, dims);
	odims[stack_dim] = fd->n_parts;
	return r5_linop_create(ctx, "finite differences", dims, odims, finite_diff_forward, finite_diff_adjoint,
			       finite_diff_normal, fd, free, out);
}
