/* Conjugate gradient for Hermitian positive (semi-)definite systems (A + lambda I) x = b, as
 * CG-SENSE solves the normal equations E^H E x = E^H y (Pruessmann et al., MRM 46:638, 2001;
 * Hestenes & Stiefel 1952). Written against the array wrappers and an operator callback only,
 * so it runs wherever the context computes; the three work vectors are allocated once per
 * solve. A should-stop hook runs every iteration (cancellation, deadlines, progress). */
#ifndef R5_SOLVE_CG_H
#define R5_SOLVE_CG_H

#include "../core/array.h"

/* out = A in (A Hermitian, positive semi-definite); out and in never alias. */
typedef r5_status (*r5_cg_op)(r5_ctx *ctx, void *user, r5_array *out, const r5_array *in);
/* Called after each iteration with the relative residual |r| / |b|; a status other than R5_OK
 * stops the solve and is returned. */
typedef r5_status (*r5_cg_hook)(void *user, int iter, int max_iters, double rel_residual);

typedef struct r5_cg_conf {
	int max_iters;    /* iterations (default 30) */
	float lambda;     /* Tikhonov weight added to A (absolute) */
	double tolerance; /* stop when |r| / |b| falls below (0: run all iterations) */
	r5_cg_hook hook;
	void *hook_user;
} r5_cg_conf;

extern const r5_cg_conf r5_cg_defaults;

typedef struct r5_cg_info {
	int iters;            /* iterations run */
	double rel_residual;  /* |r| / |b| at the end */
} r5_cg_info;

/* x: initial guess in, solution out (same dims as b). info may be NULL. */
r5_status r5_cg_solve(r5_ctx *ctx, const r5_cg_conf *conf, r5_cg_op op, void *user, const r5_array *b, r5_array *x,
		      r5_cg_info *info);

#endif
