/* Finite-difference operator for TV (finite_diff.h): forward differences with a Neumann boundary
 * and their exact adjoint, the negative divergence, each part applied as two r5_zaxpby over
 * strided views that shift the array by one sample along the difference's dimension. */
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
	return r5_linop_create(ctx, "finite differences", dims, odims, finite_diff_forward, finite_diff_adjoint, NULL,
			       fd, free, out);
}
