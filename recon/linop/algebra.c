/* Operator algebra (linop.h): sum, scale, vertical and horizontal stacks, adjoint-of, and the
 * elementary identity, centred resize (zero-pad / crop) and circular shift — the pieces that
 * regularised and multi-term reconstructions are assembled from (after BART's src/linops/
 * someops.c and SigPy's linop.py Add, Multiply, Vstack, Hstack, Resize, Circshift). Each
 * composite states its algebra in linop.h; scratch is made at the first application that
 * needs it and counted by r5_linop_bytes_held. */
#include <stdio.h>
#include <stdlib.h>

#include "linop.h"

/* One data block for every composite here (each uses the fields it needs). */
struct algebra_data {
	r5_linop *a, *b;
	int dim;             /* stacks: the concatenated dimension */
	float complex alpha; /* scale */
	long shifts[R5_DIMS], back[R5_DIMS]; /* circshift: forward and adjoint shifts */
	r5_array *tmp_in;    /* a domain-sized term (sum / vstack adjoint and normal) */
	r5_array *tmp_out;   /* a range-sized term (sum / hstack forward) */
	r5_array *part_a, *part_b; /* contiguous copies of stack parts that are strided views */
};

static void algebra_destroy(void *data)
{
	struct algebra_data *d = data;
	r5_linop_free(d->a);
	r5_linop_free(d->b);
	r5_array_free(d->tmp_in);
	r5_array_free(d->tmp_out);
	r5_array_free(d->part_a);
	r5_array_free(d->part_b);
	free(d);
}

static long algebra_held(const void *data)
{
	const struct algebra_data *d = data;
	return r5_linop_array_bytes(d->tmp_in) + r5_linop_array_bytes(d->tmp_out) + r5_linop_array_bytes(d->part_a) +
	       r5_linop_array_bytes(d->part_b) + r5_linop_bytes_held(d->a) + r5_linop_bytes_held(d->b);
}

/* Makes the composite around d (taken: freed on failure, with the operands it holds). */
static r5_status algebra_make(r5_ctx *ctx, const char *name, const long idims[R5_DIMS], const long odims[R5_DIMS],
			      r5_linop_fn forward, r5_linop_fn adjoint, r5_linop_fn normal, unsigned in_place,
			      struct algebra_data *d, r5_linop **out)
{
	R5_TRY(r5_linop_create(ctx, name, idims, odims, forward, adjoint, normal, d, algebra_destroy, out));
	(*out)->held = algebra_held;
	(*out)->in_place = in_place;
	return R5_OK;
}

/* Checks the operands and makes the data block; releases a and b on failure. */
static r5_status algebra_data_new(const char *what, r5_linop *a, r5_linop *b, int two, struct algebra_data **out)
{
	*out = NULL;
	if (!a || (two && !b)) {
		r5_linop_free(a);
		r5_linop_free(b);
		return r5_set_error(R5_EINVAL, "operator %s: missing operator", what);
	}
	*out = calloc(1, sizeof **out);
	if (!*out) {
		r5_linop_free(a);
		r5_linop_free(b);
		return r5_set_error(R5_ENOMEM, "operator %s", what);
	}
	(*out)->a = a;
	(*out)->b = b;
	return R5_OK;
}

/* Fails (releasing d) with a message naming both operands' dims of the given kind. */
static r5_status algebra_refuse(struct algebra_data *d, const char *what, const char *kind, const long *da,
				const long *db)
{
	char ta[128], tb[128];
	r5_dims_format(ta, sizeof ta, da);
	r5_dims_format(tb, sizeof tb, db);
	r5_status s = r5_set_error(R5_EINVAL, "operator %s: %s %s %s, %s %s %s", what, d->a->name, kind, ta, d->b->name,
				   kind, tb);
	algebra_destroy(d);
	return s;
}

/* --- sum --- */

static r5_status sum_forward(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	struct algebra_data *d = data;
	R5_TRY(r5_linop_scratch(ctx, "sum", &d->tmp_out, d->b->odims));
	R5_TRY(r5_linop_forward(ctx, d->a, out, in));
	R5_TRY(r5_linop_forward(ctx, d->b, d->tmp_out, in));
	return r5_zaxpy(ctx, out, 1.0f, d->tmp_out);
}

static r5_status sum_adjoint(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	struct algebra_data *d = data;
	R5_TRY(r5_linop_scratch(ctx, "sum", &d->tmp_in, d->b->idims));
	R5_TRY(r5_linop_adjoint(ctx, d->a, out, in));
	R5_TRY(r5_linop_adjoint(ctx, d->b, d->tmp_in, in));
	return r5_zaxpy(ctx, out, 1.0f, d->tmp_in);
}

r5_status r5_linop_sum(r5_ctx *ctx, r5_linop *a, r5_linop *b, r5_linop **out)
{
	*out = NULL;
	struct algebra_data *d = NULL;
	R5_TRY(algebra_data_new("sum", a, b, 1, &d));
	if (!r5_dims_equal(a->idims, b->idims))
		return algebra_refuse(d, "sum", "takes", a->idims, b->idims);
	if (!r5_dims_equal(a->odims, b->odims))
		return algebra_refuse(d, "sum", "gives", a->odims, b->odims);
	char name[48];
	snprintf(name, sizeof name, "%.20s+%.20s", a->name, b->name);
	return algebra_make(ctx, name, a->idims, a->odims, sum_forward, sum_adjoint, NULL, 0, d, out);
}

/* --- scale --- */

static r5_status scale_forward(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	struct algebra_data *d = data;
	R5_TRY(r5_linop_forward(ctx, d->a, out, in));
	return r5_zscale(ctx, out, d->alpha);
}

static r5_status scale_adjoint(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	struct algebra_data *d = data;
	R5_TRY(r5_linop_adjoint(ctx, d->a, out, in));
	return r5_zscale(ctx, out, conjf(d->alpha));
}

static r5_status scale_normal(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	struct algebra_data *d = data;
	R5_TRY(r5_linop_normal(ctx, d->a, out, in));
	float mag = cabsf(d->alpha);
	return r5_zscale(ctx, out, mag * mag);
}

r5_status r5_linop_scale(r5_ctx *ctx, float complex alpha, r5_linop *a, r5_linop **out)
{
	*out = NULL;
	struct algebra_data *d = NULL;
	R5_TRY(algebra_data_new("scale", a, NULL, 0, &d));
	d->alpha = alpha;
	char name[48];
	snprintf(name, sizeof name, "scale(%.36s)", a->name);
	return algebra_make(ctx, name, a->idims, a->odims, scale_forward, scale_adjoint, scale_normal, a->in_place, d,
			    out);
}

/* --- stacks --- */

typedef r5_status (*apply_fn)(r5_ctx *ctx, r5_linop *op, r5_array *out, const r5_array *in);

/* The two parts of `whole` along dim (views by value): dims_a from 0, dims_b after it. */
static void stack_parts(const r5_array *whole, const long dims_a[R5_DIMS], const long dims_b[R5_DIMS], int dim,
			r5_array *part_a, r5_array *part_b)
{
	*part_a = r5_array_view_strided(whole, dims_a, NULL, 0);
	*part_b = r5_array_view_strided(whole, dims_b, NULL, dims_a[dim] * whole->strides[dim]);
}

/* part (a view) = f(op, in): directly when part is contiguous, else through *copy. */
static r5_status apply_into(r5_ctx *ctx, apply_fn f, r5_linop *op, r5_array *part, const r5_array *in,
			    r5_array **copy)
{
	if (r5_array_is_contiguous(part))
		return f(ctx, op, part, in);
	R5_TRY(r5_linop_scratch(ctx, "stack part", copy, part->dims));
	R5_TRY(f(ctx, op, *copy, in));
	return r5_zcopy_strided(ctx, part->dims, part->strides, part->data, (*copy)->strides, (*copy)->data);
}

/* out = f(op, part) for a view part: directly when contiguous, else from *copy. */
static r5_status apply_from(r5_ctx *ctx, apply_fn f, r5_linop *op, r5_array *out, const r5_array *part,
			    r5_array **copy)
{
	if (r5_array_is_contiguous(part))
		return f(ctx, op, out, part);
	R5_TRY(r5_linop_scratch(ctx, "stack part", copy, part->dims));
	R5_TRY(r5_zcopy_strided(ctx, part->dims, (*copy)->strides, (*copy)->data, part->strides, part->data));
	return f(ctx, op, out, *copy);
}

static r5_status vstack_forward(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	struct algebra_data *d = data;
	r5_array ya, yb;
	stack_parts(out, d->a->odims, d->b->odims, d->dim, &ya, &yb);
	R5_TRY(apply_into(ctx, r5_linop_forward, d->a, &ya, in, &d->part_a));
	return apply_into(ctx, r5_linop_forward, d->b, &yb, in, &d->part_b);
}

static r5_status vstack_adjoint(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	struct algebra_data *d = data;
	r5_array ya, yb;
	stack_parts(in, d->a->odims, d->b->odims, d->dim, &ya, &yb);
	R5_TRY(r5_linop_scratch(ctx, "vstack", &d->tmp_in, d->b->idims));
	R5_TRY(apply_from(ctx, r5_linop_adjoint, d->a, out, &ya, &d->part_a));
	R5_TRY(apply_from(ctx, r5_linop_adjoint, d->b, d->tmp_in, &yb, &d->part_b));
	return r5_zaxpy(ctx, out, 1.0f, d->tmp_in);
}

static r5_status vstack_normal(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	struct algebra_data *d = data;
	R5_TRY(r5_linop_scratch(ctx, "vstack", &d->tmp_in, d->b->idims));
	R5_TRY(r5_linop_normal(ctx, d->a, out, in));
	R5_TRY(r5_linop_normal(ctx, d->b, d->tmp_in, in));
	return r5_zaxpy(ctx, out, 1.0f, d->tmp_in);
}

static r5_status hstack_forward(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	struct algebra_data *d = data;
	r5_array xa, xb;
	stack_parts(in, d->a->idims, d->b->idims, d->dim, &xa, &xb);
	R5_TRY(r5_linop_scratch(ctx, "hstack", &d->tmp_out, d->b->odims));
	R5_TRY(apply_from(ctx, r5_linop_forward, d->a, out, &xa, &d->part_a));
	R5_TRY(apply_from(ctx, r5_linop_forward, d->b, d->tmp_out, &xb, &d->part_b));
	return r5_zaxpy(ctx, out, 1.0f, d->tmp_out);
}

static r5_status hstack_adjoint(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	struct algebra_data *d = data;
	r5_array xa, xb;
	stack_parts(out, d->a->idims, d->b->idims, d->dim, &xa, &xb);
	R5_TRY(apply_into(ctx, r5_linop_adjoint, d->a, &xa, in, &d->part_a));
	return apply_into(ctx, r5_linop_adjoint, d->b, &xb, in, &d->part_b);
}

/* Shared by both stacks: `same` dims must agree, `joined` dims agree except along dim; the
 * composite's joined dims are a's with dim the sum. */
static r5_status stack_make(r5_ctx *ctx, const char *what, int vertical, int dim, r5_linop *a, r5_linop *b,
			    r5_linop **out)
{
	struct algebra_data *d = NULL;
	*out = NULL;
	if (dim < 0 || dim >= R5_DIMS) {
		r5_linop_free(a);
		r5_linop_free(b);
		return r5_set_error(R5_EINVAL, "operator %s: dimension %d out of range", what, dim);
	}
	R5_TRY(algebra_data_new(what, a, b, 1, &d));
	d->dim = dim;
	const long *same_a = vertical ? a->idims : a->odims, *same_b = vertical ? b->idims : b->odims;
	const long *join_a = vertical ? a->odims : a->idims, *join_b = vertical ? b->odims : b->idims;
	if (!r5_dims_equal(same_a, same_b))
		return algebra_refuse(d, what, vertical ? "takes" : "gives", same_a, same_b);
	long joined[R5_DIMS];
	r5_dims_copy(joined, join_a);
	joined[dim] = join_a[dim] + join_b[dim];
	for (int k = 0; k < R5_DIMS; k++)
		if (k != dim && join_a[k] != join_b[k])
			return algebra_refuse(d, what, vertical ? "gives" : "takes", join_a, join_b);
	char name[48];
	snprintf(name, sizeof name, vertical ? "[%.20s;%.20s]" : "[%.20s,%.20s]", a->name, b->name);
	if (vertical)
		return algebra_make(ctx, name, same_a, joined, vstack_forward, vstack_adjoint, vstack_normal, 0, d,
				    out);
	return algebra_make(ctx, name, joined, same_a, hstack_forward, hstack_adjoint, NULL, 0, d, out);
}

r5_status r5_linop_vstack(r5_ctx *ctx, int dim, r5_linop *a, r5_linop *b, r5_linop **out)
{
	return stack_make(ctx, "vstack", 1, dim, a, b, out);
}

r5_status r5_linop_hstack(r5_ctx *ctx, int dim, r5_linop *a, r5_linop *b, r5_linop **out)
{
	return stack_make(ctx, "hstack", 0, dim, a, b, out);
}

/* --- adjoint-of --- */

static r5_status adjoint_of_forward(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	return r5_linop_adjoint(ctx, ((struct algebra_data *)data)->a, out, in);
}

static r5_status adjoint_of_adjoint(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	return r5_linop_forward(ctx, ((struct algebra_data *)data)->a, out, in);
}

r5_status r5_linop_adjoint_of(r5_ctx *ctx, r5_linop *a, r5_linop **out)
{
	struct algebra_data *d = NULL;
	*out = NULL;
	R5_TRY(algebra_data_new("adjoint-of", a, NULL, 0, &d));
	unsigned in_place = (a->in_place & R5_LINOP_INPLACE_FORWARD ? R5_LINOP_INPLACE_ADJOINT : 0) |
			    (a->in_place & R5_LINOP_INPLACE_ADJOINT ? R5_LINOP_INPLACE_FORWARD : 0);
	char name[48];
	snprintf(name, sizeof name, "(%.40s)^H", a->name);
	/* normal A A^H: the generic path, A^H into the scratch (A's domain) then A */
	return algebra_make(ctx, name, a->odims, a->idims, adjoint_of_forward, adjoint_of_adjoint, NULL, in_place, d,
			    out);
}

/* --- identity, resize, circular shift --- */

static r5_status copy_apply(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	(void)data;
	return out->data == in->data ? R5_OK : r5_array_copy(ctx, out, in);
}

r5_status r5_linop_identity(r5_ctx *ctx, const long dims[R5_DIMS], r5_linop **out)
{
	R5_TRY(r5_linop_create(ctx, "identity", dims, dims, copy_apply, copy_apply, copy_apply, NULL, NULL, out));
	(*out)->in_place = R5_LINOP_INPLACE_ALL;
	return R5_OK;
}

static r5_status resize_apply(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	(void)data;
	return r5_zresize_centered(ctx, out, in);
}

r5_status r5_linop_resize(r5_ctx *ctx, const long idims[R5_DIMS], const long odims[R5_DIMS], r5_linop **out)
{
	*out = NULL;
	int pads_only = 1;
	for (int k = 0; k < R5_DIMS; k++) {
		if (idims[k] < 1 || odims[k] < 1) {
			char ti[128], to[128];
			r5_dims_format(ti, sizeof ti, idims);
			r5_dims_format(to, sizeof to, odims);
			return r5_set_error(R5_EINVAL, "operator resize: %s to %s (sizes must be positive)", ti, to);
		}
		pads_only &= odims[k] >= idims[k];
	}
	/* pad then crop back is the identity; a crop's normal keeps the centre (generic path) */
	R5_TRY(r5_linop_create(ctx, pads_only ? "zero-pad" : "crop", idims, odims, resize_apply, resize_apply,
			       pads_only ? copy_apply : NULL, NULL, NULL, out));
	(*out)->in_place = pads_only ? R5_LINOP_INPLACE_NORMAL : 0;
	return R5_OK;
}

static r5_status circshift_forward(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	return r5_zcircshift(ctx, out, in, ((struct algebra_data *)data)->shifts);
}

static r5_status circshift_adjoint(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	return r5_zcircshift(ctx, out, in, ((struct algebra_data *)data)->back);
}

r5_status r5_linop_circshift(r5_ctx *ctx, const long dims[R5_DIMS], const long shifts[R5_DIMS], r5_linop **out)
{
	*out = NULL;
	struct algebra_data *d = calloc(1, sizeof *d);
	if (!d)
		return r5_set_error(R5_ENOMEM, "operator circshift");
	for (int k = 0; k < R5_DIMS; k++) {
		d->shifts[k] = shifts[k];
		d->back[k] = -shifts[k];
	}
	return algebra_make(ctx, "circshift", dims, dims, circshift_forward, circshift_adjoint, copy_apply,
			    R5_LINOP_INPLACE_NORMAL, d, out);
}
