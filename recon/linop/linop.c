/* Operator framework (linop.h): creation and reference counts, checked application (shapes,
 * residency, contiguity, the aliasing rule), lazily made scratch and its accounting, chaining. */
#include "linop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

r5_status r5_linop_create(r5_ctx *ctx, const char *name, const long idims[R5_DIMS], const long odims[R5_DIMS],
			  r5_linop_fn forward, r5_linop_fn adjoint, r5_linop_fn normal, void *data,
			  void (*destroy)(void *data), r5_linop **out)
{
	(void)ctx;
	*out = NULL;
	r5_linop *op = calloc(1, sizeof *op);
	if (!op) {
		if (destroy)
			destroy(data);
		return r5_set_error(R5_ENOMEM, "operator %s", name);
	}
	snprintf(op->name, sizeof op->name, "%s", name);
	r5_dims_copy(op->idims, idims);
	r5_dims_copy(op->odims, odims);
	op->forward = forward;
	op->adjoint = adjoint;
	op->normal = normal;
	op->data = data;
	op->destroy = destroy;
	op->refs = 1;
	*out = op;
	return R5_OK;
}

r5_linop *r5_linop_ref(r5_linop *op)
{
	if (op)
		op->refs++;
	return op;
}

void r5_linop_free(r5_linop *op)
{
	if (!op || --op->refs > 0)
		return;
	if (op->destroy)
		op->destroy(op->data);
	r5_array_free(op->scratch);
	free(op);
}

long r5_linop_array_bytes(const r5_array *a)
{
	return a && a->owns ? r5_array_size(a) * (long)sizeof(float complex) : 0;
}

long r5_linop_bytes_held(const r5_linop *op)
{
	if (!op)
		return 0;
	return r5_linop_array_bytes(op->scratch) + (op->held ? op->held(op->data) : 0);
}

r5_status r5_linop_scratch(r5_ctx *ctx, const char *what, r5_array **slot, const long dims[R5_DIMS])
{
	if (*slot)
		return R5_OK;
	r5_status s = r5_array_alloc_work(ctx, dims, slot);
	if (s != R5_OK) {
		char text[128];
		return r5_error_context(s, "%s scratch %s", what, r5_dims_format(text, sizeof text, dims));
	}
	return R5_OK;
}

/* --- checked application --- */

static r5_status check_array(r5_ctx *ctx, const r5_linop *op, const r5_array *a, const long dims[R5_DIMS],
			     const char *what)
{
	if (!a || !a->data)
		return r5_set_error(R5_EINVAL, "operator %s: %s is NULL", op->name, what);
	if (!r5_dims_equal(a->dims, dims)) {
		char ta[128], te[128];
		return r5_set_error(R5_EINVAL, "operator %s: %s has shape %s, expected %s", op->name, what,
				    r5_dims_format(ta, sizeof ta, a->dims), r5_dims_format(te, sizeof te, dims));
	}
	if (a->where != r5_ctx_residency(ctx))
		return r5_set_error(R5_EINVAL, "operator %s: %s lives on the %s but the %s back end computes on the %s",
				    op->name, what, a->where == R5_HOST ? "host" : "device", r5_ctx_backend_name(ctx),
				    r5_ctx_residency(ctx) == R5_HOST ? "host" : "device");
	if (!r5_array_is_contiguous(a))
		return r5_set_error(R5_EINVAL, "operator %s: %s is not contiguous (operators take contiguous arrays)",
				    op->name, what);
	return R5_OK;
}

/* First and one-past-last element address the array spans. */
static void span(const r5_array *a, const float complex **lo, const float complex **hi)
{
	long first = 0, last = 0;
	for (int d = 0; d < R5_DIMS; d++) {
		long reach = (a->dims[d] - 1) * a->strides[d];
		if (reach < 0)
			first += reach;
		else
			last += reach;
	}
	*lo = a->data + first;
	*hi = a->data + last + 1;
}

/* The aliasing rule of linop.h: out and in do not overlap, unless `bit` is declared and out is
 * exactly in. */
static r5_status check_alias(const r5_linop *op, const r5_array *out, const r5_array *in, unsigned bit,
			     const char *what)
{
	if (out->where != in->where)
		return R5_OK;
	const float complex *olo, *ohi, *ilo, *ihi;
	span(out, &olo, &ohi);
	span(in, &ilo, &ihi);
	if (olo >= ihi || ilo >= ohi)
		return R5_OK;
	int exact = out->data == in->data && r5_dims_equal(out->dims, in->dims);
	for (int d = 0; exact && d < R5_DIMS; d++)
		exact = out->dims[d] == 1 || out->strides[d] == in->strides[d];
	if (exact && (op->in_place & bit))
		return R5_OK;
	if (op->in_place & bit)
		return r5_set_error(R5_EINVAL, "operator %s: %s output overlaps its input without being it (in place "
					       "means out == in exactly)", op->name, what);
	return r5_set_error(R5_EINVAL, "operator %s: %s output overlaps its input (this operator needs them apart)",
			    op->name, what);
}

r5_status r5_linop_forward(r5_ctx *ctx, r5_linop *op, r5_array *out, const r5_array *in)
{
	R5_TRY(check_array(ctx, op, in, op->idims, "input"));
	R5_TRY(check_array(ctx, op, out, op->odims, "output"));
	R5_TRY(check_alias(op, out, in, R5_LINOP_INPLACE_FORWARD, "forward"));
	return op->forward(ctx, op->data, out, in);
}

r5_status r5_linop_adjoint(r5_ctx *ctx, r5_linop *op, r5_array *out, const r5_array *in)
{
	R5_TRY(check_array(ctx, op, in, op->odims, "adjoint input"));
	R5_TRY(check_array(ctx, op, out, op->idims, "adjoint output"));
	R5_TRY(check_alias(op, out, in, R5_LINOP_INPLACE_ADJOINT, "adjoint"));
	return op->adjoint(ctx, op->data, out, in);
}

r5_status r5_linop_normal(r5_ctx *ctx, r5_linop *op, r5_array *out, const r5_array *in)
{
	R5_TRY(check_array(ctx, op, in, op->idims, "normal input"));
	R5_TRY(check_array(ctx, op, out, op->idims, "normal output"));
	R5_TRY(check_alias(op, out, in, R5_LINOP_INPLACE_NORMAL, "normal"));
	if (op->normal)
		return op->normal(ctx, op->data, out, in);
	r5_status s = r5_linop_scratch(ctx, "normal", &op->scratch, op->odims);
	if (s != R5_OK)
		return r5_error_context(s, "operator %s", op->name);
	R5_TRY(op->forward(ctx, op->data, op->scratch, in));
	return op->adjoint(ctx, op->data, out, op->scratch);
}

r5_status r5_linop_normal_op(r5_ctx *ctx, void *op, r5_array *out, const r5_array *in)
{
	return r5_linop_normal(ctx, op, out, in);
}

r5_array r5_linop_slice(const r5_array *a, int dim, long index)
{
	long dims[R5_DIMS];
	r5_dims_copy(dims, a->dims);
	dims[dim] = 1;
	return r5_array_view_strided(a, dims, NULL, index * a->strides[dim]);
}

/* --- chain --- */

struct chain_data {
	r5_linop *a, *b;
	r5_array *mid;  /* a's output, at the first application */
	r5_array *mid2; /* b's normal output when b's normal cannot run in place */
};

static void chain_destroy(void *data)
{
	struct chain_data *c = data;
	r5_linop_free(c->a);
	r5_linop_free(c->b);
	r5_array_free(c->mid);
	r5_array_free(c->mid2);
	free(c);
}

static long chain_held(const void *data)
{
	const struct chain_data *c = data;
	return r5_linop_array_bytes(c->mid) + r5_linop_array_bytes(c->mid2) + r5_linop_bytes_held(c->a) +
	       r5_linop_bytes_held(c->b);
}

static r5_status chain_forward(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	struct chain_data *c = data;
	R5_TRY(r5_linop_scratch(ctx, "chain", &c->mid, c->a->odims));
	R5_TRY(r5_linop_forward(ctx, c->a, c->mid, in));
	return r5_linop_forward(ctx, c->b, out, c->mid);
}

static r5_status chain_adjoint(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	struct chain_data *c = data;
	R5_TRY(r5_linop_scratch(ctx, "chain", &c->mid, c->a->odims));
	R5_TRY(r5_linop_adjoint(ctx, c->b, c->mid, in));
	return r5_linop_adjoint(ctx, c->a, out, c->mid);
}

static r5_status chain_normal(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	struct chain_data *c = data;
	R5_TRY(r5_linop_scratch(ctx, "chain", &c->mid, c->a->odims));
	R5_TRY(r5_linop_forward(ctx, c->a, c->mid, in));
	r5_array *after_b = c->mid; /* b's normal in place where it can */
	if (!(c->b->in_place & R5_LINOP_INPLACE_NORMAL)) {
		R5_TRY(r5_linop_scratch(ctx, "chain", &c->mid2, c->a->odims));
		after_b = c->mid2;
	}
	R5_TRY(r5_linop_normal(ctx, c->b, after_b, c->mid));
	return r5_linop_adjoint(ctx, c->a, out, after_b);
}

r5_status r5_linop_chain(r5_ctx *ctx, r5_linop *a, r5_linop *b, r5_linop **out)
{
	*out = NULL;
	if (!a || !b) {
		r5_linop_free(a);
		r5_linop_free(b);
		return r5_set_error(R5_EINVAL, "operator chain: missing operator");
	}
	char name[48];
	snprintf(name, sizeof name, "%.20s*%.20s", b->name, a->name);
	if (!r5_dims_equal(a->odims, b->idims)) {
		char ta[128], tb[128];
		r5_status s = r5_set_error(R5_EINVAL, "operator chain %s: %s gives %s, %s takes %s", name, a->name,
					   r5_dims_format(ta, sizeof ta, a->odims), b->name,
					   r5_dims_format(tb, sizeof tb, b->idims));
		r5_linop_free(a);
		r5_linop_free(b);
		return s;
	}
	struct chain_data *c = calloc(1, sizeof *c);
	if (!c) {
		r5_linop_free(a);
		r5_linop_free(b);
		return r5_set_error(R5_ENOMEM, "operator chain %s", name);
	}
	c->a = a;
	c->b = b;
	R5_TRY(r5_linop_create(ctx, name, a->idims, b->odims, chain_forward, chain_adjoint, chain_normal, c,
			       chain_destroy, out));
	(*out)->held = chain_held;
	return R5_OK;
}
