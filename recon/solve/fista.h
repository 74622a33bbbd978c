/* FISTA, the fast iterative shrinkage-thresholding algorithm (Beck & Teboulle, SIAM J Imaging
 * Sci 2:183, 2009), with adaptive restart (O'Donoghue & Candes, Found Comput Math 15:715, 2015),
 * as a step machine (iter.h), for
 *
 *     min_x  1/2 |A x - y|^2 + lambda g(x)
 *
 * with A a linear operator (linop.h) and g given by its prox (prox.h; the prox's own weight
 * times lambda is the weight of the term). Each step, from the extrapolated point z:
 *
 *     x+ = prox_{(lambda / L) g}(z - A^H (A z - y) / L)
 *     restart (gradient scheme) when re <z - x+, x+ - x> > 0: t = 1, z = x+
 *     else t+ = (1 + sqrt(1 + 4 t^2)) / 2,  z = x+ + (t - 1) / t+ (x+ - x)
 *
 * L is the Lipschitz constant of the gradient, the largest eigenvalue of A^H A: the caller's, or
 * estimated at init by power iteration (power.h, 100 steps, tolerance 1e-4) times 1.05, since
 * the estimate comes from below. The restart test costs one dot product and needs no objective
 * value (g is known only by its prox); it restores the linear convergence momentum loses on
 * (locally) strongly convex problems. Stopping: max_iters steps, or the relative change
 * |x+ - x| / |x+| at or below the tolerance (the progress value the hook sees).
 *
 * Work: four arrays of A's domain (the previous iterate, z, the gradient point, A^H y), made at
 * init; init also applies A's normal once so that the operator's scratch exists before the first
 * step, and steps allocate nothing (the prox is never applied in place). One step: one normal
 * application, one prox, one dot, one norm, six axpby/copies. Only array wrappers: any back end.
 * A, y, g and x are borrowed and must outlive the solver. */
#ifndef R5_SOLVE_FISTA_H
#define R5_SOLVE_FISTA_H

#include "../linop/linop.h"
#include "iter.h"
#include "prox.h"

typedef struct r5_fista_conf {
	int max_iters;    /* steps (default 100) */
	float lambda;     /* weight on g, multiplying the prox's own (default 1; >= 0, finite) */
	double lipschitz; /* L >= the largest eigenvalue of A^H A; 0: estimated at init (default) */
	int restart;      /* adaptive (gradient) restart on (default 1) or off (0: plain FISTA) */
	double tolerance; /* done when |x+ - x| / |x+| <= tolerance (default 0: all iterations) */
	unsigned seed;    /* power iteration's starting vector (default 1) */
} r5_fista_conf;

extern const r5_fista_conf r5_fista_defaults;

typedef struct r5_fista_info {
	int iters;         /* steps run */
	int restarts;      /* momentum restarts */
	double lipschitz;  /* L used (1 / step size) */
	double rel_change; /* |x+ - x| / |x+| at the last step (1 before the first) */
} r5_fista_info;

/* A: operator (domain: x); y: data (A's range); g: prox on A's domain; x: initial guess in and,
 * after every step, the current iterate (the prox's output, so feasible for a constraint g).
 * conf NULL: defaults. R5_EINVAL naming the solver and the shapes for mismatched arrays, a
 * negative or non-finite lambda or L, or an operator whose A^H A is 0. */
r5_status r5_fista_init(r5_ctx *ctx, const r5_fista_conf *conf, r5_linop *A, const r5_array *y, r5_prox *g,
			r5_array *x, r5_iter **out);
/* R5_EINVAL when it is not a FISTA solver. */
r5_status r5_fista_result(const r5_iter *it, r5_fista_info *info);

#endif
