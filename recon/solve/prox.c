/* Proximal operators (prox.h): the object and its checked apply, and the L1, L2,1 and box
 * constructors, each a few array-wrapper calls so that every back end computes them. */
#include "prox.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

r5_status r5_prox_create(const char *name, const long dims[R5_DIMS], r5_prox_fn apply, void *data,
			 void (*destroy)(void *data), r5_prox **out)
{
	*out = NULL;
	char td[128];
	r5_prox *p = NULL;
	r5_status s = R5_OK;
	if (!name)
		name = "prox";
	if (!apply)
		s = r5_set_error(R5_EINVAL, "prox %s: no apply function", name);
	else if (r5_dims_size(dims) <= 0)
		s = r5_set_error(R5_EINVAL, "prox %s: bad shape %s", name, r5_dims_format(td, sizeof td, dims));
	else if (!(p = calloc(1, sizeof *p)))
		s = r5_set_error(R5_ENOMEM, "prox %s: object", name);
	if (!p) {
		if (destroy)
			destroy(data);
		return s;
	}
	snprintf(p->name, sizeof p->name, "%s", name);
	r5_dims_copy(p->dims, dims);
	p->apply = apply;
	p->data = data;
	p->destroy = destroy;
	*out = p;
	return R5_OK;
}

void r5_prox_free(r5_prox *prox)
{
	if (!prox)
		return;
	if (prox->destroy)
		prox->destroy(prox->data);
	free(prox);
}

r5_status r5_prox_apply(r5_ctx *ctx, r5_prox *prox, float mu, r5_array *out, const r5_array *in)
{
	if (!prox)
		return r5_set_error(R5_EINVAL, "prox: no operator");
	if (!out || !in)
		return r5_set_error(R5_EINVAL, "prox %s: no %s array", prox->name, out ? "input" : "output");
	if (!(mu >= 0.0f) || !isfinite(mu))
		return r5_set_error(R5_EINVAL, "prox %s: step mu = %g (must be finite and >= 0)", prox->name, (double)mu);
	if (!r5_dims_equal(in->dims, prox->dims) || !r5_dims_equal(out->dims, prox->dims)) {
		char tp[128], ti[128], to[128];
		return r5_set_error(R5_EINVAL, "prox %s: applies to %s, given input %s and output %s", prox->name,
				    r5_dims_format(tp, sizeof tp, prox->dims), r5_dims_format(ti, sizeof ti, in->dims),
				    r5_dims_format(to, sizeof to, out->dims));
	}
	r5_status s = prox->apply(ctx, prox, mu, out, in);
	return s == R5_OK ? R5_OK : r5_error_context(s, "prox %s", prox->name);
}

static int weight_ok(float lambda)
{
	return lambda >= 0.0f && isfinite(lambda);
}

/* --- L1: soft threshold by lambda mu --- */
typedef struct l1_data {
	float lambda;
} l1_data;

static r5_status l1_apply(r5_ctx *ctx, r5_prox *prox, float mu, r5_array *out, const r5_array *in)
{
	const l1_data *d = prox->data;
	return r5_zsoftthresh(ctx, d->lambda * mu, out, in);
}

r5_status r5_prox_l1(r5_ctx *ctx, const long dims[R5_DIMS], float lambda, r5_prox **out)
{
	(void)ctx;
	*out = NULL;
	if (!weight_ok(lambda))
		return r5_set_error(R5_EINVAL, "prox l1: weight lambda = %g (must be finite and >= 0)", (double)lambda);
	l1_data *d = malloc(sizeof *d);
	if (!d)
		return r5_set_error(R5_ENOMEM, "prox l1: data");
	d->lambda = lambda;
	return r5_prox_create("l1", dims, l1_apply, d, free, out);
}

/* --- box: projection, mu plays no part --- */
typedef struct box_data {
	float lo, hi;
} box_data;

static r5_status box_apply(r5_ctx *ctx, r5_prox *prox, float mu, r5_array *out, const r5_array *in)
{
	(void)mu;
	const box_data *d = prox->data;
	return r5_zproject_box(ctx, d->lo, d->hi, out, in);
}

r5_status r5_prox_box(r5_ctx *ctx, const long dims[R5_DIMS], float lo, float hi, r5_prox **out)
{
	(void)ctx;
	*out = NULL;
	if (isnan(lo) || isnan(hi) || lo > hi || lo == INFINITY || hi == -INFINITY)
		return r5_set_error(R5_EINVAL, "prox box: bounds [%g, %g] (need lo <= hi, not NaN, a non-empty box)",
				    (double)lo, (double)hi);
	box_data *d = malloc(sizeof *d);
	if (!d)
		return r5_set_error(R5_ENOMEM, "prox box: data");
	d->lo = lo;
	d->hi = hi;
	char name[48];
	if (lo == 0.0f && hi == INFINITY)
		snprintf(name, sizeof name, "non-negativity");
	else
		snprintf(name, sizeof name, "box [%g, %g]", (double)lo, (double)hi);
	return r5_prox_create(name, dims, box_apply, d, free, out);
}

r5_status r5_prox_nonneg(r5_ctx *ctx, const long dims[R5_DIMS], r5_prox **out)
{
	return r5_prox_box(ctx, dims, 0.0f, INFINITY, out);
}

/* --- L2,1: each group scaled by max(0, 1 - lambda mu / |x_g|) --- */
typedef struct l21_data {
	float lambda;
	r5_array *norms;   /* group shape: |x_g|, then the group's scale */
	r5_array *inverse; /* group shape: 1 / |x_g| (0 for an all-zero group) */
	r5_array *squares; /* full shape, made on the first in-place apply (out == in) */
} l21_data;

static void l21_destroy(void *data)
{
	l21_data *d = data;
	if (!d)
		return;
	r5_array_free(d->norms);
	r5_array_free(d->inverse);
	r5_array_free(d->squares);
	free(d);
}

static r5_status l21_apply(r5_ctx *ctx, r5_prox *prox, float mu, r5_array *out, const r5_array *in)
{
	l21_data *d = prox->data;
	float threshold = d->lambda * mu;
	if (threshold == 0.0f)
		return out->data == in->data ? R5_OK : r5_array_copy(ctx, out, in);
	r5_array *squares = out; /* |in|^2 goes into out unless out is in */
	if (out->data == in->data) {
		if (!d->squares)
			R5_TRY(r5_array_alloc_work(ctx, prox->dims, &d->squares));
		squares = d->squares;
	}
	R5_TRY(r5_zunary(ctx, R5_UNARY_ABS2, squares, in));
	R5_TRY(r5_zsum(ctx, d->norms, squares));
	R5_TRY(r5_zunary(ctx, R5_UNARY_SQRT_RE, d->norms, d->norms));
	R5_TRY(r5_zunary(ctx, R5_UNARY_RECIP, d->inverse, d->norms));
	R5_TRY(r5_zsoftthresh(ctx, threshold, d->norms, d->norms)); /* max(0, |x_g| - t) */
	R5_TRY(r5_zmul(ctx, d->norms, d->norms, d->inverse, 0));     /* max(0, 1 - t / |x_g|) */
	return r5_zmul(ctx, out, in, d->norms, 0);
}

r5_status r5_prox_l21(r5_ctx *ctx, const long dims[R5_DIMS], unsigned long group_flags, float lambda,
		      r5_prox **out)
{
	*out = NULL;
	if (!weight_ok(lambda))
		return r5_set_error(R5_EINVAL, "prox l2,1: weight lambda = %g (must be finite and >= 0)", (double)lambda);
	if (group_flags >> R5_DIMS)
		return r5_set_error(R5_EINVAL, "prox l2,1: group flags %#lx name dimensions beyond %d", group_flags,
				    R5_DIMS - 1);
	if (r5_dims_size(dims) <= 0) {
		char td[128];
		return r5_set_error(R5_EINVAL, "prox l2,1: bad shape %s", r5_dims_format(td, sizeof td, dims));
	}
	long gdims[R5_DIMS];
	r5_dims_copy(gdims, dims);
	for (int k = 0; k < R5_DIMS; k++)
		if (group_flags & R5_FLAG(k))
			gdims[k] = 1;
	l21_data *d = calloc(1, sizeof *d);
	if (!d)
		return r5_set_error(R5_ENOMEM, "prox l2,1: data");
	d->lambda = lambda;
	r5_status s = r5_array_alloc_work(ctx, gdims, &d->norms);
	if (s == R5_OK)
		s = r5_array_alloc_work(ctx, gdims, &d->inverse);
	if (s != R5_OK) {
		l21_destroy(d);
		return s;
	}
	char name[48];
	snprintf(name, sizeof name, "l2,1 over dims %#lx", group_flags);
	return r5_prox_create(name, dims, l21_apply, d, l21_destroy, out);
}
