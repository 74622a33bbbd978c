/* Conjugate gradient for Hermitian positive (semi-)definite systems (A + lambda I) x = b, as
 * CG-SENSE solves the normal equations E^H E x = E^H y (Pruessmann et al., MRM 46:638, 2001;
 * Hestenes & Stiefel 1952), as a step machine (iter.h): r5_cg_init allocates the three work
 * vectors and computes r = b - (A + lambda I) x; each step is one operator application, two
 * reductions and three axpby, with no allocation. Written against the array wrappers and an
 * operator callback only, so it runs wherever the context computes. r5_cg_solve is the
 * one-call driver (init, r5_iter_run with the configured hook, result, free). */
#ifndef R5_SOLVE_CG_H
#define R5_SOLVE_CG_H

#include "iter.h"

/* out = A in (A Hermitian, positive semi-definite); out and in never alias. */
typedef r5_iter_op r5_cg_op;
/* Called after each iteration with the relative residual |r| / |b|; a status other than R5_OK
 * stops the solve and is returned. */
typedef r5_iter_hook r5_cg_hook;

typedef struct r5_cg_conf {
	int max_iters;    /* iterations (default 30) */
	float lambda;     /* Tikhonov weight added to A (absolute) */
	double tolerance; /* stop when |r| / |b| falls below (0: run all iterations) */
	r5_cg_hook hook;  /* used by r5_cg_solve; the step machine itself ignores it */
	void *hook_user;
} r5_cg_conf;

extern const r5_cg_conf r5_cg_defaults;

typedef struct r5_cg_info {
	int iters;            /* iterations run */
	double rel_residual;  /* |r| / |b| at the end */
} r5_cg_info;

/* The step machine. conf NULL: defaults. b and x are kept by reference and must outlive the
 * solver; x holds the initial guess and, after every step, the current iterate (x = 0 at once
 * when b = 0). Done when max_iters steps ran, |r| / |b| <= tolerance or the residual vanished.
 * A step finding p^H (A + lambda I) p <= 0 fails with R5_EINVAL (not positive definite). */
r5_status r5_cg_init(r5_ctx *ctx, const r5_cg_conf *conf, r5_cg_op op, void *user, const r5_array *b, r5_array *x,
		     r5_iter **out);
/* Starts the solver again from the current contents of b and x (r = b - (A + lambda I) x, p = r,
 * iteration count 0), keeping its arrays: for a solver inside an outer loop (ADMM's x update)
 * whose right-hand side changes every outer step, with no allocation. R5_EINVAL when it is not a
 * CG solver. */
r5_status r5_cg_restart(r5_iter *it);
/* The same restart without applying the operator, for a caller that changed only the right-hand
 * side: b is now b_new, x is still the iterate the solver left, and b_old (a different array)
 * holds the right-hand side the solver last worked on, so the new residual is r + b_new - b_old.
 * p = r, iteration count 0, and b_new kept by reference from now on. The residual is then the
 * recursively updated one, its rounding drift growing with the steps since the last exact
 * residual (ADMM: a few CG steps per outer step; measured in admm.c). When the solver holds no
 * residual (b was 0 at the last start) this is r5_cg_restart on b_new. R5_EINVAL when it is
 * not a CG solver, or b_new and b_old are the same array or not of b's shape. */
r5_status r5_cg_restart_rhs(r5_iter *it, const r5_array *b_new, const r5_array *b_old);
/* Iterations run and relative residual so far; R5_EINVAL when it is not a CG solver. */
r5_status r5_cg_result(const r5_iter *it, r5_cg_info *info);

/* x: initial guess in, solution out (same dims as b). info may be NULL. */
r5_status r5_cg_solve(r5_ctx *ctx, const r5_cg_conf *conf, r5_cg_op op, void *user, const r5_array *b, r5_array *x,
		      r5_cg_info *info);

#endif
