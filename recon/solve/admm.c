/* ADMM (admm.h) as a step machine: the x update is an inner conjugate gradient (cg.h) on
 * A^H A + rho sum_i T_i^H T_i, made once at init and restarted on the new right-hand side every
 * step (from its residual plus the right-hand side's change); the z and u updates go term by
 * term through the prox objects. */
#include "admm.h"

#include <math.h>
#include <stdlib.h>

#include "cg.h"

const r5_admm_conf r5_admm_defaults = {.max_iters = 50, .rho = 1.0f, .tolerance = 0.0, .cg_iters = 10,
				       .cg_tolerance = 1e-6};

typedef struct admm_part {
	r5_admm_term term;
	r5_array *z, *u, *w; /* split variable, scaled dual, T x (and scratch) */
} admm_part;

typedef struct admm_solver {
	r5_iter head; /* first: the solver is used through its head */
	r5_linop *A;
	r5_array *x;                     /* caller's: the iterate */
	r5_array *x_prev, *aty, *tmp; /* previous iterate, A^H y, scratch */
	r5_array *rhs[2];             /* CG's right-hand side: this step's and the last step's, in turn */
	int cur;                      /* rhs[cur] is the one CG works on */
	admm_part parts[R5_ADMM_MAX_TERMS];
	int n_parts;
	float rho;
	double tolerance, primal_residual;
	long cg_iters;
	r5_iter *cg;
} admm_solver;

static r5_status admm_step(r5_iter *it);
static int admm_done(const r5_iter *it);
static void admm_destroy(r5_iter *it);

static const r5_iter_ops admm_ops = {.name = "ADMM", .step = admm_step, .done = admm_done, .destroy = admm_destroy};

/* out = (A^H A + rho sum_i T_i^H T_i) in, for the inner CG */
static r5_status admm_normal(r5_ctx *ctx, void *user, r5_array *out, const r5_array *in)
{
	admm_solver *ad = user;
	R5_TRY(r5_linop_normal(ctx, ad->A, out, in));
	for (int i = 0; i < ad->n_parts; i++) {
		R5_TRY(r5_linop_normal(ctx, ad->parts[i].term.op, ad->tmp, in));
		R5_TRY(r5_zaxpy(ctx, out, ad->rho, ad->tmp));
	}
	return R5_OK;
}

static int admm_done(const r5_iter *it)
{
	const admm_solver *ad = (const admm_solver *)it;
	return it->iter >= it->max_iters || (it->iter >= 1 && it->progress <= ad->tolerance);
}

/* rhs = A^H y + rho sum_i T_i^H (z_i - u_i) */
static r5_status admm_rhs(admm_solver *ad, r5_array *rhs)
{
	r5_ctx *ctx = ad->head.ctx;
	R5_TRY(r5_array_copy(ctx, rhs, ad->aty));
	for (int i = 0; i < ad->n_parts; i++) {
		admm_part *p = &ad->parts[i];
		R5_TRY(r5_array_copy(ctx, p->w, p->z));
		R5_TRY(r5_zaxpy(ctx, p->w, -1.0f, p->u));
		R5_TRY(r5_linop_adjoint(ctx, p->term.op, ad->tmp, p->w));
		R5_TRY(r5_zaxpy(ctx, rhs, ad->rho, ad->tmp));
	}
	return R5_OK;
}

static r5_status admm_step(r5_iter *it)
{
	admm_solver *ad = (admm_solver *)it;
	r5_ctx *ctx = it->ctx;
	R5_TRY(r5_array_copy(ctx, ad->x_prev, ad->x));
	/* x is where the last CG left it and only the right-hand side moved: CG's residual is
	 * updated by the change, not recomputed (one application of the normal less per step) */
	int next = !ad->cur;
	R5_TRY(admm_rhs(ad, ad->rhs[next]));
	R5_TRY(r5_cg_restart_rhs(ad->cg, ad->rhs[next], ad->rhs[ad->cur]));
	ad->cur = next;
	while (!r5_iter_done(ad->cg))
		R5_TRY(r5_iter_step(ad->cg));
	ad->cg_iters += ad->cg->iter;
	double primal = 0;
	for (int i = 0; i < ad->n_parts; i++) {
		admm_part *p = &ad->parts[i];
		double norm = 0;
		R5_TRY(r5_linop_forward(ctx, p->term.op, p->w, ad->x)); /* w = T x */
		R5_TRY(r5_zaxpy(ctx, p->u, 1.0f, p->w));                /* u = T x + u */
		R5_TRY(r5_prox_apply(ctx, p->term.prox, p->term.lambda / ad->rho, p->z, p->u));
		R5_TRY(r5_zaxpy(ctx, p->u, -1.0f, p->z)); /* u = u + T x - z */
		R5_TRY(r5_zaxpy(ctx, p->w, -1.0f, p->z)); /* w = T x - z */
		R5_TRY(r5_znorm(ctx, p->w, &norm));
		primal += norm * norm;
	}
	ad->primal_residual = sqrt(primal);
	double norm_step = 0, norm_x = 0;
	R5_TRY(r5_zaxpby(ctx, 1.0f, ad->x, -1.0f, ad->x_prev));
	R5_TRY(r5_znorm(ctx, ad->x_prev, &norm_step));
	R5_TRY(r5_znorm(ctx, ad->x, &norm_x));
	it->iter++;
	it->progress = norm_x > 0.0 ? norm_step / norm_x : (norm_step > 0.0 ? 1.0 : 0.0);
	return R5_OK;
}

static void admm_destroy(r5_iter *it)
{
	admm_solver *ad = (admm_solver *)it;
	r5_iter_free(ad->cg);
	r5_array_free(ad->x_prev);
	r5_array_free(ad->rhs[0]);
	r5_array_free(ad->rhs[1]);
	r5_array_free(ad->aty);
	r5_array_free(ad->tmp);
	for (int i = 0; i < ad->n_parts; i++) {
		r5_array_free(ad->parts[i].z);
		r5_array_free(ad->parts[i].u);
		r5_array_free(ad->parts[i].w);
	}
	free(ad);
}

static r5_status admm_check(const r5_admm_conf *conf, const r5_linop *A, const r5_array *y,
			    const r5_admm_term *terms, int n_terms, const r5_array *x)
{
	char ta[128], tb[128], tc[128], td[128];
	if (!A || !y || !x || (n_terms > 0 && !terms))
		return r5_set_error(R5_EINVAL, "ADMM: no operator, data, terms or iterate");
	if (n_terms < 1 || n_terms > R5_ADMM_MAX_TERMS)
		return r5_set_error(R5_EINVAL, "ADMM: %d terms (1 to %d)", n_terms, R5_ADMM_MAX_TERMS);
	if (!r5_dims_equal(y->dims, A->odims) || !r5_dims_equal(x->dims, A->idims))
		return r5_set_error(R5_EINVAL, "ADMM: data %s and iterate %s, operator %s maps %s to %s",
				    r5_dims_format(ta, sizeof ta, y->dims), r5_dims_format(tb, sizeof tb, x->dims),
				    A->name, r5_dims_format(tc, sizeof tc, A->idims),
				    r5_dims_format(td, sizeof td, A->odims));
	for (int i = 0; i < n_terms; i++) {
		const r5_admm_term *t = &terms[i];
		if (!t->op || !t->prox)
			return r5_set_error(R5_EINVAL, "ADMM: term %d has no operator or prox", i);
		if (!r5_dims_equal(t->op->idims, A->idims) || !r5_dims_equal(t->prox->dims, t->op->odims))
			return r5_set_error(R5_EINVAL,
					    "ADMM: term %d: operator %s maps %s to %s, prox %s applies to %s, "
					    "the data operator's domain is %s",
					    i, t->op->name, r5_dims_format(ta, sizeof ta, t->op->idims),
					    r5_dims_format(tb, sizeof tb, t->op->odims), t->prox->name,
					    r5_dims_format(tc, sizeof tc, t->prox->dims),
					    r5_dims_format(td, sizeof td, A->idims));
		if (!(t->lambda >= 0.0f) || !isfinite(t->lambda))
			return r5_set_error(R5_EINVAL, "ADMM: term %d (%s): lambda %g must be finite and >= 0", i,
					    t->prox->name, (double)t->lambda);
	}
	if (!(conf->rho > 0.0f) || !isfinite(conf->rho) || conf->max_iters < 0 || conf->cg_iters < 1)
		return r5_set_error(R5_EINVAL, "ADMM: rho %g (> 0, finite), %d iterations, %d CG iterations (>= 1)",
				    (double)conf->rho, conf->max_iters, conf->cg_iters);
	return R5_OK;
}

/* arrays, A^H y, z_i = T_i x, u_i = 0, the operators' scratch made, the inner CG */
static r5_status admm_start(admm_solver *ad, const r5_array *y, const r5_admm_conf *conf)
{
	r5_ctx *ctx = ad->head.ctx;
	const long *dims = ad->A->idims;
	R5_TRY(r5_array_alloc_work(ctx, dims, &ad->x_prev));
	R5_TRY(r5_array_alloc_work(ctx, dims, &ad->rhs[0]));
	R5_TRY(r5_array_alloc_work(ctx, dims, &ad->rhs[1]));
	R5_TRY(r5_array_alloc_work(ctx, dims, &ad->aty));
	R5_TRY(r5_array_alloc_work(ctx, dims, &ad->tmp));
	R5_TRY(r5_linop_adjoint(ctx, ad->A, ad->aty, y));
	for (int i = 0; i < ad->n_parts; i++) {
		admm_part *p = &ad->parts[i];
		R5_TRY(r5_array_alloc_work(ctx, p->term.op->odims, &p->z));
		R5_TRY(r5_array_alloc_work(ctx, p->term.op->odims, &p->u));
		R5_TRY(r5_zfill(ctx, p->u, 0));
		R5_TRY(r5_array_alloc_work(ctx, p->term.op->odims, &p->w));
		R5_TRY(r5_linop_forward(ctx, p->term.op, p->z, ad->x));
	}
	R5_TRY(admm_rhs(ad, ad->rhs[0]));
	double norm_rhs = 0;
	R5_TRY(r5_znorm(ctx, ad->rhs[0], &norm_rhs));
	if (norm_rhs == 0.0) /* CG's start applies the normal (making every scratch) unless b = 0 */
		R5_TRY(admm_normal(ctx, ad, ad->x_prev, ad->x));
	r5_cg_conf cg = r5_cg_defaults;
	cg.max_iters = conf->cg_iters;
	cg.tolerance = conf->cg_tolerance;
	return r5_cg_init(ctx, &cg, admm_normal, ad, ad->rhs[0], ad->x, &ad->cg);
}

r5_status r5_admm_init(r5_ctx *ctx, const r5_admm_conf *conf, r5_linop *A, const r5_array *y,
		       const r5_admm_term *terms, int n_terms, r5_array *x, r5_iter **out)
{
	*out = NULL;
	if (!conf)
		conf = &r5_admm_defaults;
	R5_TRY(admm_check(conf, A, y, terms, n_terms, x));
	admm_solver *ad = calloc(1, sizeof *ad);
	if (!ad)
		return r5_set_error(R5_ENOMEM, "ADMM: solver state");
	r5_iter_head_init(&ad->head, &admm_ops, ctx, conf->max_iters);
	ad->A = A;
	ad->x = x;
	ad->rho = conf->rho;
	ad->tolerance = conf->tolerance;
	ad->n_parts = n_terms;
	for (int i = 0; i < n_terms; i++)
		ad->parts[i].term = terms[i];
	r5_status s = admm_start(ad, y, conf);
	if (s != R5_OK) {
		admm_destroy(&ad->head);
		return s;
	}
	*out = &ad->head;
	return R5_OK;
}

r5_status r5_admm_result(const r5_iter *it, r5_admm_info *info)
{
	if (!it || it->ops != &admm_ops)
		return r5_set_error(R5_EINVAL, "ADMM: result asked of %s", it ? it->ops->name : "no solver");
	const admm_solver *ad = (const admm_solver *)it;
	info->iters = it->iter;
	info->cg_iters = ad->cg_iters;
	info->rel_change = it->progress;
	info->primal_residual = ad->primal_residual;
	return R5_OK;
}
