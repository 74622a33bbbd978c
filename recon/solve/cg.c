/* Conjugate gradient (cg.h). One operator application, two dot products and three axpby per
 * iteration; no allocation inside the loop. */
#include "cg.h"

#include <math.h>

const r5_cg_conf r5_cg_defaults = {.max_iters = 30, .lambda = 0.0f, .tolerance = 0.0, .hook = NULL};

/* out = (A + lambda I) in */
static r5_status apply(r5_ctx *ctx, const r5_cg_conf *conf, r5_cg_op op, void *user, r5_array *out,
		       const r5_array *in)
{
	R5_TRY(op(ctx, user, out, in));
	if (conf->lambda != 0.0f)
		R5_TRY(r5_zaxpy(ctx, out, conf->lambda, in));
	return R5_OK;
}

static r5_status iterate(r5_ctx *ctx, const r5_cg_conf *conf, r5_cg_op op, void *user, const r5_array *b,
			 r5_array *x, r5_array *r, r5_array *p, r5_array *ap, r5_cg_info *info)
{
	double norm_b = 0, rs_old = 0;
	R5_TRY(r5_znorm(ctx, b, &norm_b));
	info->iters = 0;
	info->rel_residual = 0;
	if (norm_b == 0.0)
		return r5_zfill(ctx, x, 0);
	R5_TRY(apply(ctx, conf, op, user, r, x));
	R5_TRY(r5_zaxpby(ctx, 1.0f, b, -1.0f, r)); /* r = b - A x */
	R5_TRY(r5_array_copy(ctx, p, r));
	R5_TRY(r5_znorm(ctx, r, &rs_old));
	rs_old *= rs_old;
	info->rel_residual = sqrt(rs_old) / norm_b;
	for (int it = 0; it < conf->max_iters; it++) {
		if (info->rel_residual <= conf->tolerance || rs_old == 0.0)
			break;
		double complex p_ap = 0;
		R5_TRY(apply(ctx, conf, op, user, ap, p));
		R5_TRY(r5_zdot(ctx, p, ap, &p_ap));
		if (creal(p_ap) <= 0.0)
			return r5_set_error(R5_EINVAL, "conjugate gradient: operator is not positive definite "
						       "(p^H A p = %g at iteration %d)", creal(p_ap), it);
		float alpha = (float)(rs_old / creal(p_ap));
		R5_TRY(r5_zaxpy(ctx, x, alpha, p));
		R5_TRY(r5_zaxpy(ctx, r, -alpha, ap));
		double rs_new = 0;
		R5_TRY(r5_znorm(ctx, r, &rs_new));
		rs_new *= rs_new;
		R5_TRY(r5_zaxpby(ctx, 1.0f, r, (float)(rs_new / rs_old), p)); /* p = r + beta p */
		rs_old = rs_new;
		info->iters = it + 1;
		info->rel_residual = sqrt(rs_new) / norm_b;
		if (conf->hook)
			R5_TRY(conf->hook(conf->hook_user, it + 1, conf->max_iters, info->rel_residual));
	}
	return R5_OK;
}

r5_status r5_cg_solve(r5_ctx *ctx, const r5_cg_conf *conf, r5_cg_op op, void *user, const r5_array *b, r5_array *x,
		      r5_cg_info *info)
{
	r5_cg_info local;
	if (!conf)
		conf = &r5_cg_defaults;
	if (!info)
		info = &local;
	if (!r5_dims_equal(b->dims, x->dims))
		return r5_set_error(R5_EINVAL, "conjugate gradient: right-hand side and solution shapes differ");
	r5_array *r = NULL, *p = NULL, *ap = NULL;
	r5_status s = r5_array_alloc_work(ctx, b->dims, &r);
	if (s == R5_OK)
		s = r5_array_alloc_work(ctx, b->dims, &p);
	if (s == R5_OK)
		s = r5_array_alloc_work(ctx, b->dims, &ap);
	if (s == R5_OK)
		s = iterate(ctx, conf, op, user, b, x, r, p, ap, info);
	r5_array_free(r);
	r5_array_free(p);
	r5_array_free(ap);
	return s;
}
