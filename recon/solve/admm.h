/* ADMM, the alternating direction method of multipliers in scaled form (Boyd, Parikh, Chu,
 * Peleato & Eckstein, Found Trends Mach Learn 3:1, 2011, sections 3.1.1 and 6.4; Afonso,
 * Bioucas-Dias & Figueiredo, IEEE TIP 20:681, 2011 for the split over several terms), as a step
 * machine (iter.h), for
 *
 *     min_x  1/2 |A x - y|^2 + sum_i lambda_i g_i(T_i x)
 *
 * with T_i operators (finite differences for TV, identity or wavelets for L1) and g_i given by
 * their prox (prox.h; lambda_i multiplies the prox's own weight). Splitting z_i = T_i x, each
 * step is
 *
 *     x  = argmin 1/2 |A x - y|^2 + rho/2 sum_i |T_i x - z_i + u_i|^2, i.e. the solution of
 *          (A^H A + rho sum_i T_i^H T_i) x = A^H y + rho sum_i T_i^H (z_i - u_i)
 *          by conjugate gradient (cg.h) warm-started from the previous x, cg_iters at most
 *     z_i = prox_{(lambda_i / rho) g_i}(T_i x + u_i)
 *     u_i = u_i + T_i x - z_i
 *
 * starting from the caller's x with z_i = T_i x, u_i = 0. Stopping: max_iters steps, or the
 * relative change |x - x_prev| / |x| at or below the tolerance (the progress value the hook
 * sees). The primal residual (sum_i |T_i x - z_i|^2)^(1/2) is reported in the result.
 *
 * Work: five arrays of A's domain (the right-hand side twice: this step's and the last one's)
 * and CG's three (made at init), and three of each T_i's range (z_i, u_i and T_i x). Between two
 * x updates only the right-hand side changes, so CG restarts from its own residual plus that
 * change (r5_cg_restart_rhs): each step applies the normal cg_iters times, not cg_iters + 1
 * (3D TV at 128^3: a quarter of the solve; images unchanged within rounding, NRMSE to 6 digits).
 * Init applies the normal once (CG's start) so that every scratch exists before the first step,
 * and steps allocate nothing (the prox is never applied in place). Only array wrappers: any back end. A, y, the
 * terms' operators and proxes and x are borrowed and must outlive the solver. */
#ifndef R5_SOLVE_ADMM_H
#define R5_SOLVE_ADMM_H

#include "../linop/linop.h"
#include "iter.h"
#include "prox.h"

#define R5_ADMM_MAX_TERMS 4

typedef struct r5_admm_term {
	r5_linop *op;  /* T_i, domain A's domain */
	r5_prox *prox; /* g_i on T_i's range */
	float lambda;  /* weight (>= 0, finite), multiplying the prox's own */
} r5_admm_term;

typedef struct r5_admm_conf {
	int max_iters;       /* outer steps (default 50) */
	float rho;           /* penalty (default 1; > 0, finite) */
	double tolerance;    /* done when |x - x_prev| / |x| <= tolerance (default 0: all iterations) */
	int cg_iters;        /* inner CG iterations per step at most (default 10) */
	double cg_tolerance; /* inner CG stops at this relative residual (default 1e-6) */
} r5_admm_conf;

extern const r5_admm_conf r5_admm_defaults;

typedef struct r5_admm_info {
	int iters;              /* outer steps run */
	long cg_iters;          /* inner CG iterations, all steps together */
	double rel_change;      /* |x - x_prev| / |x| at the last step (1 before the first) */
	double primal_residual; /* (sum_i |T_i x - z_i|^2)^(1/2) at the last step */
} r5_admm_info;

/* A: data operator (domain: x); y: data (A's range); terms[0..n_terms-1] (1 <= n_terms <=
 * R5_ADMM_MAX_TERMS); x: initial guess in and, after every step, the current iterate. conf NULL:
 * defaults. R5_EINVAL naming the solver, the term and the shapes for mismatched arrays or
 * operators, and for weights or rho out of range. */
r5_status r5_admm_init(r5_ctx *ctx, const r5_admm_conf *conf, r5_linop *A, const r5_array *y,
		       const r5_admm_term *terms, int n_terms, r5_array *x, r5_iter **out);
/* R5_EINVAL when it is not an ADMM solver. */
r5_status r5_admm_result(const r5_iter *it, r5_admm_info *info);

#endif
