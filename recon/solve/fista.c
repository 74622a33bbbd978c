/* FISTA with adaptive restart (fista.h) as a step machine. The previous iterate's array holds
 * x+ - x after the restart test, so the momentum update reads it as the step just taken. */
#include "fista.h"

#include <math.h>
#include <stdlib.h>

#include "power.h"

const r5_fista_conf r5_fista_defaults = {.max_iters = 100, .lambda = 1.0f, .lipschitz = 0.0, .restart = 1,
					 .tolerance = 0.0, .seed = 1u};

typedef struct fista_solver {
	r5_iter head; /* first: the solver is used through its head */
	r5_linop *A;
	r5_prox *g;
	r5_array *x;                /* caller's: the iterate */
	r5_array *x_prev, *z, *w, *aty; /* previous iterate (then the step), extrapolated point,
					  gradient point, A^H y */
	float lambda;
	double lipschitz, tolerance;
	double t; /* momentum parameter */
	int restart, restarts;
} fista_solver;

static r5_status fista_step(r5_iter *it);
static int fista_done(const r5_iter *it);
static void fista_destroy(r5_iter *it);

static const r5_iter_ops fista_ops = {.name = "FISTA", .step = fista_step, .done = fista_done,
				      .destroy = fista_destroy};

static int fista_done(const r5_iter *it)
{
	const fista_solver *fs = (const fista_solver *)it;
	return it->iter >= it->max_iters || (it->iter >= 1 && it->progress <= fs->tolerance);
}

static r5_status fista_step(r5_iter *it)
{
	fista_solver *fs = (fista_solver *)it;
	r5_ctx *ctx = it->ctx;
	float step = (float)(1.0 / fs->lipschitz);
	R5_TRY(r5_linop_normal(ctx, fs->A, fs->w, fs->z));        /* w = A^H A z */
	R5_TRY(r5_zaxpby(ctx, -1.0f, fs->aty, 1.0f, fs->w));      /* w = gradient at z */
	R5_TRY(r5_zaxpby(ctx, 1.0f, fs->z, -step, fs->w));        /* w = z - gradient / L */
	R5_TRY(r5_array_copy(ctx, fs->x_prev, fs->x));
	R5_TRY(r5_prox_apply(ctx, fs->g, fs->lambda * step, fs->x, fs->w));
	R5_TRY(r5_zaxpby(ctx, 1.0f, fs->x, -1.0f, fs->x_prev)); /* x_prev = x+ - x */
	double norm_step = 0, norm_x = 0;
	R5_TRY(r5_znorm(ctx, fs->x_prev, &norm_step));
	R5_TRY(r5_znorm(ctx, fs->x, &norm_x));
	int restart = 0;
	if (fs->restart) {
		double complex dir = 0;
		R5_TRY(r5_zaxpby(ctx, -1.0f, fs->x, 1.0f, fs->z)); /* z = z - x+ (z is rebuilt below) */
		R5_TRY(r5_zdot(ctx, fs->z, fs->x_prev, &dir));
		restart = creal(dir) > 0.0;
	}
	double t_next = 1.0, momentum = 0.0;
	if (restart)
		fs->restarts++;
	else {
		t_next = 0.5 * (1.0 + sqrt(1.0 + 4.0 * fs->t * fs->t));
		momentum = (fs->t - 1.0) / t_next;
	}
	fs->t = t_next;
	R5_TRY(r5_array_copy(ctx, fs->z, fs->x));
	if (momentum != 0.0)
		R5_TRY(r5_zaxpy(ctx, fs->z, (float)momentum, fs->x_prev));
	it->iter++;
	it->progress = norm_x > 0.0 ? norm_step / norm_x : (norm_step > 0.0 ? 1.0 : 0.0);
	return R5_OK;
}

static void fista_destroy(r5_iter *it)
{
	fista_solver *fs = (fista_solver *)it;
	r5_array_free(fs->x_prev);
	r5_array_free(fs->z);
	r5_array_free(fs->w);
	r5_array_free(fs->aty);
	free(fs);
}

/* A^H y, z = x, the operator's scratch made (one normal), L estimated when not given */
static r5_status fista_start(fista_solver *fs, const r5_array *y, unsigned seed)
{
	r5_ctx *ctx = fs->head.ctx;
	R5_TRY(r5_linop_adjoint(ctx, fs->A, fs->aty, y));
	R5_TRY(r5_array_copy(ctx, fs->z, fs->x));
	R5_TRY(r5_linop_normal(ctx, fs->A, fs->w, fs->z));
	if (fs->lipschitz == 0.0) {
		r5_power_conf power = {.max_iters = 100, .tolerance = 1e-4};
		r5_power_info info;
		R5_TRY(r5_power_max_eig(ctx, r5_linop_normal_op, fs->A, fs->A->idims, seed, &power, NULL, NULL, &info));
		if (!(info.max_eig > 0.0))
			return r5_set_error(R5_EINVAL, "FISTA: operator %s has A^H A = 0 (no step size)", fs->A->name);
		fs->lipschitz = 1.05 * info.max_eig;
	}
	return R5_OK;
}

static r5_status fista_check(const r5_fista_conf *conf, const r5_linop *A, const r5_array *y, const r5_prox *g,
			     const r5_array *x)
{
	if (!A || !y || !g || !x)
		return r5_set_error(R5_EINVAL, "FISTA: no operator, data, prox or iterate");
	char ta[128], tb[128], tc[128];
	if (!r5_dims_equal(y->dims, A->odims))
		return r5_set_error(R5_EINVAL, "FISTA: data %s, operator %s maps to %s",
				    r5_dims_format(ta, sizeof ta, y->dims), A->name, r5_dims_format(tb, sizeof tb, A->odims));
	if (!r5_dims_equal(x->dims, A->idims) || !r5_dims_equal(g->dims, A->idims))
		return r5_set_error(R5_EINVAL, "FISTA: iterate %s and prox %s (%s) must be operator %s's domain %s",
				    r5_dims_format(ta, sizeof ta, x->dims), g->name,
				    r5_dims_format(tb, sizeof tb, g->dims), A->name,
				    r5_dims_format(tc, sizeof tc, A->idims));
	if (!(conf->lambda >= 0.0f) || !isfinite(conf->lambda) || !(conf->lipschitz >= 0.0) ||
	    !isfinite(conf->lipschitz))
		return r5_set_error(R5_EINVAL, "FISTA: lambda %g and Lipschitz constant %g must be finite and >= 0",
				    (double)conf->lambda, conf->lipschitz);
	if (conf->max_iters < 0)
		return r5_set_error(R5_EINVAL, "FISTA: %d iterations", conf->max_iters);
	return R5_OK;
}

r5_status r5_fista_init(r5_ctx *ctx, const r5_fista_conf *conf, r5_linop *A, const r5_array *y, r5_prox *g,
			r5_array *x, r5_iter **out)
{
	*out = NULL;
	if (!conf)
		conf = &r5_fista_defaults;
	R5_TRY(fista_check(conf, A, y, g, x));
	fista_solver *fs = calloc(1, sizeof *fs);
	if (!fs)
		return r5_set_error(R5_ENOMEM, "FISTA: solver state");
	r5_iter_head_init(&fs->head, &fista_ops, ctx, conf->max_iters);
	fs->A = A;
	fs->g = g;
	fs->x = x;
	fs->lambda = conf->lambda;
	fs->lipschitz = conf->lipschitz;
	fs->tolerance = conf->tolerance;
	fs->restart = conf->restart;
	fs->t = 1.0;
	r5_status s = r5_array_alloc_work(ctx, A->idims, &fs->x_prev);
	if (s == R5_OK)
		s = r5_array_alloc_work(ctx, A->idims, &fs->z);
	if (s == R5_OK)
		s = r5_array_alloc_work(ctx, A->idims, &fs->w);
	if (s == R5_OK)
		s = r5_array_alloc_work(ctx, A->idims, &fs->aty);
	if (s == R5_OK)
		s = fista_start(fs, y, conf->seed);
	if (s != R5_OK) {
		fista_destroy(&fs->head);
		return s;
	}
	*out = &fs->head;
	return R5_OK;
}

r5_status r5_fista_result(const r5_iter *it, r5_fista_info *info)
{
	if (!it || it->ops != &fista_ops)
		return r5_set_error(R5_EINVAL, "FISTA: result asked of %s", it ? it->ops->name : "no solver");
	const fista_solver *fs = (const fista_solver *)it;
	info->iters = it->iter;
	info->restarts = fs->restarts;
	info->lipschitz = fs->lipschitz;
	info->rel_change = it->progress;
	return R5_OK;
}
