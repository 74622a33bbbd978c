/* Conjugate gradient (cg.h) as a step machine: init computes the residual of the initial guess,
 * each step is one iteration of Hestenes-Stiefel CG. The arithmetic is the one r5_cg_solve has
 * always done, so its results are unchanged by the move onto iter.h. */
#include "cg.h"

#include <math.h>
#include <stdlib.h>

const r5_cg_conf r5_cg_defaults = {.max_iters = 30, .lambda = 0.0f, .tolerance = 0.0, .hook = NULL};

typedef struct cg_solver {
	r5_iter head; /* first: the solver is used through its head */
	r5_cg_op op;
	void *user;
	float lambda;
	double tolerance;
	const r5_array *b;
	r5_array *x, *r, *p, *ap;
	double norm_b, rs_old; /* |b|, |r|^2 */
	int has_residual;      /* r = b - (A + lambda I) x is held (not after a start on b = 0) */
} cg_solver;

static r5_status cg_step(r5_iter *it);
static int cg_done(const r5_iter *it);
static void cg_destroy(r5_iter *it);

static const r5_iter_ops cg_ops = {.name = "conjugate gradient", .step = cg_step, .done = cg_done,
				   .destroy = cg_destroy};

/* out = (A + lambda I) in */
static r5_status apply(cg_solver *cg, r5_array *out, const r5_array *in)
{
	R5_TRY(cg->op(cg->head.ctx, cg->user, out, in));
	if (cg->lambda != 0.0f)
		R5_TRY(r5_zaxpy(cg->head.ctx, out, cg->lambda, in));
	return R5_OK;
}

static int cg_done(const r5_iter *it)
{
	const cg_solver *cg = (const cg_solver *)it;
	return cg->norm_b == 0.0 || it->iter >= it->max_iters || it->progress <= cg->tolerance || cg->rs_old == 0.0;
}

static r5_status cg_step(r5_iter *it)
{
	cg_solver *cg = (cg_solver *)it;
	r5_ctx *ctx = it->ctx;
	double complex p_ap = 0;
	int had_residual = cg->has_residual;
	cg->has_residual = 0; /* until x and r are updated together */
	R5_TRY(apply(cg, cg->ap, cg->p));
	R5_TRY(r5_zdot(ctx, cg->p, cg->ap, &p_ap));
	if (creal(p_ap) <= 0.0)
		return r5_set_error(R5_EINVAL, "conjugate gradient: operator is not positive definite "
					       "(p^H A p = %g at iteration %d)", creal(p_ap), it->iter);
	float alpha = (float)(cg->rs_old / creal(p_ap));
	R5_TRY(r5_zaxpy(ctx, cg->x, alpha, cg->p));
	R5_TRY(r5_zaxpy(ctx, cg->r, -alpha, cg->ap));
	double rs_new = 0;
	R5_TRY(r5_znorm(ctx, cg->r, &rs_new));
	rs_new *= rs_new;
	R5_TRY(r5_zaxpby(ctx, 1.0f, cg->r, (float)(rs_new / cg->rs_old), cg->p)); /* p = r + beta p */
	cg->rs_old = rs_new;
	cg->has_residual = had_residual;
	it->iter++;
	it->progress = sqrt(rs_new) / cg->norm_b;
	return R5_OK;
}

static void cg_destroy(r5_iter *it)
{
	cg_solver *cg = (cg_solver *)it;
	r5_array_free(cg->r);
	r5_array_free(cg->p);
	r5_array_free(cg->ap);
	free(cg);
}

/* r = b - A x (residual_known: r holds it already), p = r; x = 0 when b = 0 */
static r5_status cg_start(cg_solver *cg, int residual_known)
{
	r5_ctx *ctx = cg->head.ctx;
	cg->has_residual = 0;
	R5_TRY(r5_znorm(ctx, cg->b, &cg->norm_b));
	cg->head.progress = 0;
	if (cg->norm_b == 0.0)
		return r5_zfill(ctx, cg->x, 0);
	if (!residual_known) {
		R5_TRY(apply(cg, cg->r, cg->x));
		R5_TRY(r5_zaxpby(ctx, 1.0f, cg->b, -1.0f, cg->r));
	}
	R5_TRY(r5_array_copy(ctx, cg->p, cg->r));
	R5_TRY(r5_znorm(ctx, cg->r, &cg->rs_old));
	cg->rs_old *= cg->rs_old;
	cg->head.progress = sqrt(cg->rs_old) / cg->norm_b;
	cg->has_residual = 1;
	return R5_OK;
}

r5_status r5_cg_init(r5_ctx *ctx, const r5_cg_conf *conf, r5_cg_op op, void *user, const r5_array *b, r5_array *x,
		     r5_iter **out)
{
	*out = NULL;
	if (!conf)
		conf = &r5_cg_defaults;
	if (!op || !b || !x)
		return r5_set_error(R5_EINVAL, "conjugate gradient: no operator, right-hand side or solution");
	if (!r5_dims_equal(b->dims, x->dims)) {
		char tb[128], tx[128];
		return r5_set_error(R5_EINVAL, "conjugate gradient: right-hand side %s and solution %s shapes differ",
				    r5_dims_format(tb, sizeof tb, b->dims), r5_dims_format(tx, sizeof tx, x->dims));
	}
	cg_solver *cg = calloc(1, sizeof *cg);
	if (!cg)
		return r5_set_error(R5_ENOMEM, "conjugate gradient: solver state");
	r5_iter_head_init(&cg->head, &cg_ops, ctx, conf->max_iters);
	cg->op = op;
	cg->user = user;
	cg->lambda = conf->lambda;
	cg->tolerance = conf->tolerance;
	cg->b = b;
	cg->x = x;
	r5_status s = r5_array_alloc_work(ctx, b->dims, &cg->r);
	if (s == R5_OK)
		s = r5_array_alloc_work(ctx, b->dims, &cg->p);
	if (s == R5_OK)
		s = r5_array_alloc_work(ctx, b->dims, &cg->ap);
	if (s == R5_OK)
		s = cg_start(cg, 0);
	if (s != R5_OK) {
		cg_destroy(&cg->head);
		return s;
	}
	*out = &cg->head;
	return R5_OK;
}

r5_status r5_cg_restart(r5_iter *it)
{
	if (!it || it->ops != &cg_ops)
		return r5_set_error(R5_EINVAL, "conjugate gradient: restart asked of %s", it ? it->ops->name : "no solver");
	it->iter = 0;
	it->failed = 0;
	r5_status s = cg_start((cg_solver *)it, 0);
	if (s != R5_OK)
		it->failed = 1;
	return s;
}

r5_status r5_cg_restart_rhs(r5_iter *it, const r5_array *b_new, const r5_array *b_old)
{
	if (!it || it->ops != &cg_ops)
		return r5_set_error(R5_EINVAL, "conjugate gradient: restart asked of %s", it ? it->ops->name : "no solver");
	cg_solver *cg = (cg_solver *)it;
	if (!b_new || !b_old || b_new == b_old || !r5_dims_equal(b_new->dims, cg->r->dims) ||
	    !r5_dims_equal(b_old->dims, cg->r->dims))
		return r5_set_error(R5_EINVAL, "conjugate gradient: restart needs the new and the old right-hand side, "
					       "two arrays of its shape");
	cg->b = b_new;
	if (!cg->has_residual)
		return r5_cg_restart(it);
	r5_ctx *ctx = it->ctx;
	it->iter = 0;
	it->failed = 1; /* until r and p are consistent again */
	cg->has_residual = 0;
	R5_TRY(r5_zaxpy(ctx, cg->r, 1.0f, b_new));
	R5_TRY(r5_zaxpy(ctx, cg->r, -1.0f, b_old));
	R5_TRY(cg_start(cg, 1));
	it->failed = 0;
	return R5_OK;
}

r5_status r5_cg_result(const r5_iter *it, r5_cg_info *info)
{
	if (!it || it->ops != &cg_ops)
		return r5_set_error(R5_EINVAL, "conjugate gradient: result asked of %s", it ? it->ops->name : "no solver");
	info->iters = it->iter;
	info->rel_residual = it->progress;
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
	info->iters = 0;
	info->rel_residual = 0;
	r5_iter *it = NULL;
	R5_TRY(r5_cg_init(ctx, conf, op, user, b, x, &it));
	r5_status s = r5_iter_run(it, conf->hook, conf->hook_user);
	r5_cg_result(it, info);
	r5_iter_free(it);
	return s;
}
