/* Iterative solvers as step machines (after SigPy's sigpy/alg.py, Alg.update()/done(), and the
 * loops of BART's src/iter/italgos.c): a solver is made by its init (which allocates all it
 * needs and computes the starting state), advanced one iteration at a time by r5_iter_step,
 * asked r5_iter_done, read by its own result function and released by r5_iter_free. Steps never
 * allocate. One driver, r5_iter_run, steps until done and calls a should-stop hook after every
 * step, so cancellation, deadlines and progress events work the same for every solver; a
 * caller that wants something else between steps (a warm restart, a step-size change, a
 * checkpoint) writes its own loop over r5_iter_step.
 *
 * Solvers are written against the array wrappers and operator callbacks only, so they run on
 * whichever back end the context computes with. A solver object is used from the thread that
 * owns its context. Solvers here: conjugate gradient (cg.h), power iteration (power.h), FISTA with
 * adaptive restart (fista.h), ADMM (admm.h). */
#ifndef R5_SOLVE_ITER_H
#define R5_SOLVE_ITER_H

#include "../core/array.h"
#include "../core/progress.h"

/* out = A in for a linear operator A; out and in never alias. */
typedef r5_status (*r5_iter_op)(r5_ctx *ctx, void *user, r5_array *out, const r5_array *in);

/* Called after every step: iter steps done so far (1, 2, ...), the solver's max_iters and its
 * progress value (CG: relative residual |r| / |b|; power iteration: relative change of the
 * eigenvalue estimate). A status other than R5_OK stops the run and is returned unchanged. */
typedef r5_status (*r5_iter_hook)(void *user, int iter, int max_iters, double progress);

typedef struct r5_iter r5_iter;

/* What a solver supplies. step advances one iteration (called only while !done); done says the
 * solver has converged or run max_iters; destroy frees the solver's state and the object. */
typedef struct r5_iter_ops {
	const char *name; /* "conjugate gradient", names the solver in errors */
	r5_status (*step)(r5_iter *it);
	int (*done)(const r5_iter *it);
	void (*destroy)(r5_iter *it);
} r5_iter_ops;

/* The common head of every solver object (the solver's own struct starts with it). Solvers
 * keep iter, max_iters and progress current; callers read them, never write them. */
struct r5_iter {
	const r5_iter_ops *ops;
	r5_ctx *ctx;
	int iter;        /* steps taken */
	int max_iters;   /* at most this many steps */
	double progress; /* the value handed to the hook (see r5_iter_hook) */
	int failed;      /* a step returned an error: the state is undefined, further steps refuse */
};

/* One iteration. R5_EINVAL naming the solver when it is done already or a previous step failed;
 * a failing step's status is returned and the solver is marked failed. */
r5_status r5_iter_step(r5_iter *it);
/* Non-zero when converged, max_iters reached or failed. */
int r5_iter_done(const r5_iter *it);
/* Steps until done, calling hook (may be NULL) after every step; returns the first status that
 * is not R5_OK, from a step or from the hook. */
r5_status r5_iter_run(r5_iter *it, r5_iter_hook hook, void *user);
void r5_iter_free(r5_iter *it); /* NULL is harmless */

/* A hook over core's stop hook (progress.h), for pipelines: after step iter it reports stage with
 * the fraction lo + (hi - lo) iter / max_iters of the caller's range and returns the stop status
 * (R5_ECANCELLED, R5_ETIMEDOUT) with r5_progress_check's message. Pass &r5_iter_progress as user;
 * progress NULL: never stops. */
typedef struct r5_iter_progress {
	const r5_progress *progress;
	const char *stage;
	double lo, hi;
} r5_iter_progress;
r5_status r5_iter_progress_hook(void *user, int iter, int max_iters, double progress);

/* For solver implementations: the head filled for a solver just allocated (iter 0, progress 1). */
void r5_iter_head_init(r5_iter *it, const r5_iter_ops *ops, r5_ctx *ctx, int max_iters);

#endif
