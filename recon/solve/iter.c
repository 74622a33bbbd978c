/* The step-machine driver (iter.h): stepping with its checks, and the run loop that calls the
 * should-stop hook after every step. */
#include "iter.h"

void r5_iter_head_init(r5_iter *it, const r5_iter_ops *ops, r5_ctx *ctx, int max_iters)
{
	it->ops = ops;
	it->ctx = ctx;
	it->iter = 0;
	it->max_iters = max_iters;
	it->progress = 1.0;
	it->failed = 0;
}

r5_status r5_iter_step(r5_iter *it)
{
	if (!it)
		return r5_set_error(R5_EINVAL, "iterative solver: no solver to step");
	if (it->failed)
		return r5_set_error(R5_EINVAL, "%s: step after a failed step (iteration %d)", it->ops->name, it->iter);
	if (it->ops->done(it))
		return r5_set_error(R5_EINVAL, "%s: step after done (iteration %d of %d)", it->ops->name, it->iter,
				    it->max_iters);
	r5_status s = it->ops->step(it);
	if (s != R5_OK)
		it->failed = 1;
	return s;
}

int r5_iter_done(const r5_iter *it)
{
	return !it || it->failed || it->ops->done(it);
}

r5_status r5_iter_run(r5_iter *it, r5_iter_hook hook, void *user)
{
	if (!it)
		return r5_set_error(R5_EINVAL, "iterative solver: no solver to run");
	while (!r5_iter_done(it)) {
		R5_TRY(r5_iter_step(it));
		if (hook)
			R5_TRY(hook(user, it->iter, it->max_iters, it->progress));
	}
	return it->failed ? r5_set_error(R5_EINVAL, "%s: run after a failed step", it->ops->name) : R5_OK;
}

void r5_iter_free(r5_iter *it)
{
	if (it)
		it->ops->destroy(it);
}

r5_status r5_iter_progress_hook(void *user, int iter, int max_iters, double progress)
{
	const r5_iter_progress *p = user;
	(void)progress;
	if (!p)
		return R5_OK;
	double share = max_iters > 0 ? (double)iter / max_iters : 1.0;
	return r5_progress_check(p->progress, p->stage ? p->stage : "iterations", p->lo + (p->hi - p->lo) * share);
}
