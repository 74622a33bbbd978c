/* Power iteration (power.h) as a step machine: two work vectors that swap roles each step, the
 * starting vector drawn on the host from the seed and copied to where the context computes. */
#include "power.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

const r5_power_conf r5_power_defaults = {.max_iters = 100, .tolerance = 1e-5};

typedef struct power_solver {
	r5_iter head; /* first: the solver is used through its head */
	r5_iter_op op;
	void *user;
	double tolerance;
	r5_array *x, *y; /* x: unit-norm iterate; y: A x */
	double estimate;
	int zero; /* A x = 0 was found */
} power_solver;

static r5_status power_step(r5_iter *it);
static int power_done(const r5_iter *it);
static void power_destroy(r5_iter *it);

static const r5_iter_ops power_ops = {.name = "power iteration", .step = power_step, .done = power_done,
				      .destroy = power_destroy};

static int power_done(const r5_iter *it)
{
	const power_solver *pw = (const power_solver *)it;
	return pw->zero || it->iter >= it->max_iters || (it->iter >= 2 && it->progress <= pw->tolerance);
}

static r5_status power_step(r5_iter *it)
{
	power_solver *pw = (power_solver *)it;
	double norm_y = 0;
	R5_TRY(pw->op(it->ctx, pw->user, pw->y, pw->x));
	R5_TRY(r5_znorm(it->ctx, pw->y, &norm_y));
	it->iter++;
	if (!(norm_y > 0.0)) {
		if (norm_y != 0.0)
			return r5_set_error(R5_EINVAL, "power iteration: |A x| is %g at iteration %d", norm_y, it->iter);
		pw->zero = 1;
		pw->estimate = 0;
		it->progress = 0;
		return R5_OK;
	}
	it->progress = fabs(norm_y - pw->estimate) / norm_y;
	pw->estimate = norm_y;
	r5_array *next = pw->y; /* x = y / |y|, y's buffer becomes the next step's output */
	pw->y = pw->x;
	pw->x = next;
	return r5_zscale(it->ctx, pw->x, (float)(1.0 / norm_y));
}

static void power_destroy(r5_iter *it)
{
	power_solver *pw = (power_solver *)it;
	r5_array_free(pw->x);
	r5_array_free(pw->y);
	free(pw);
}

/* splitmix64: a fixed sequence per seed, independent of the C library's rand() */
static double uniform_pm_half(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	z ^= z >> 31;
	return (double)(z >> 11) / 9007199254740992.0 - 0.5;
}

/* x = a seeded random vector of unit norm */
static r5_status power_start(power_solver *pw, const long dims[R5_DIMS], unsigned seed)
{
	r5_array *host = NULL;
	R5_TRY(r5_array_alloc_host(dims, &host));
	uint64_t state = seed;
	for (long i = 0, n = r5_array_size(host); i < n; i++) {
		double re = uniform_pm_half(&state), im = uniform_pm_half(&state);
		host->data[i] = (float)re + I * (float)im;
	}
	r5_status s = r5_array_copy(pw->head.ctx, pw->x, host);
	r5_array_free(host);
	double norm = 0;
	if (s == R5_OK)
		s = r5_znorm(pw->head.ctx, pw->x, &norm);
	if (s == R5_OK && !(norm > 0.0))
		s = r5_set_error(R5_EINTERNAL, "power iteration: random start vector has norm %g", norm);
	if (s == R5_OK)
		s = r5_zscale(pw->head.ctx, pw->x, (float)(1.0 / norm));
	return s;
}

r5_status r5_power_init(r5_ctx *ctx, r5_iter_op op, void *user, const long dims[R5_DIMS], unsigned seed,
			const r5_power_conf *conf, r5_iter **out)
{
	*out = NULL;
	if (!conf)
		conf = &r5_power_defaults;
	if (!op)
		return r5_set_error(R5_EINVAL, "power iteration: no operator");
	if (r5_dims_size(dims) <= 0) {
		char td[128];
		return r5_set_error(R5_EINVAL, "power iteration: bad shape %s", r5_dims_format(td, sizeof td, dims));
	}
	power_solver *pw = calloc(1, sizeof *pw);
	if (!pw)
		return r5_set_error(R5_ENOMEM, "power iteration: solver state");
	r5_iter_head_init(&pw->head, &power_ops, ctx, conf->max_iters);
	pw->op = op;
	pw->user = user;
	pw->tolerance = conf->tolerance;
	r5_status s = r5_array_alloc_work(ctx, dims, &pw->x);
	if (s == R5_OK)
		s = r5_array_alloc_work(ctx, dims, &pw->y);
	if (s == R5_OK)
		s = power_start(pw, dims, seed);
	if (s != R5_OK) {
		power_destroy(&pw->head);
		return s;
	}
	*out = &pw->head;
	return R5_OK;
}

r5_status r5_power_result(const r5_iter *it, r5_power_info *info)
{
	if (!it || it->ops != &power_ops)
		return r5_set_error(R5_EINVAL, "power iteration: result asked of %s", it ? it->ops->name : "no solver");
	const power_solver *pw = (const power_solver *)it;
	info->iters = it->iter;
	info->max_eig = pw->estimate;
	info->rel_change = it->progress;
	return R5_OK;
}

const r5_array *r5_power_vector(const r5_iter *it)
{
	return it && it->ops == &power_ops ? ((const power_solver *)it)->x : NULL;
}

r5_status r5_power_max_eig(r5_ctx *ctx, r5_iter_op op, void *user, const long dims[R5_DIMS], unsigned seed,
			   const r5_power_conf *conf, r5_iter_hook hook, void *hook_user, r5_power_info *info)
{
	r5_iter *it = NULL;
	R5_TRY(r5_power_init(ctx, op, user, dims, seed, conf, &it));
	r5_status s = r5_iter_run(it, hook, hook_user);
	if (info)
		r5_power_result(it, info);
	r5_iter_free(it);
	return s;
}
