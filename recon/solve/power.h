/* Power iteration for the largest eigenvalue of a Hermitian positive semi-definite operator
 * (a normal operator A^H A), as a step machine (iter.h): the Lipschitz constant that FISTA and
 * ADMM take their step sizes from (Beck & Teboulle, SIAM J Imaging Sci 2:183, 2009; BART's
 * maxeigenval in src/iter/italgos.c).
 *
 * From a seeded random unit vector x, each step is y = A x, estimate = |y|, x = y / |y| (one
 * operator application, one norm, one scale; no allocation). For x of unit norm, |A x| is at
 * least the Rayleigh quotient x^H A x and at most the largest eigenvalue, so the estimate rises
 * towards it from below; with eigenvalues l1 > l2 its relative error falls like (l2/l1)^(2k).
 * Step sizes 1/L taken from an estimate from below are slightly too long: callers add a margin
 * (e.g. 1.05 L) or a tight tolerance. The error left when the change falls below the tolerance
 * is about tolerance x r / (1 - r), r = (l2/l1)^2: a few times the tolerance for close l1, l2. */
#ifndef R5_SOLVE_POWER_H
#define R5_SOLVE_POWER_H

#include "iter.h"

typedef struct r5_power_conf {
	int max_iters;    /* at most this many operator applications (default 100) */
	double tolerance; /* done when |estimate - previous| / estimate <= tolerance (default 1e-5) */
} r5_power_conf;

extern const r5_power_conf r5_power_defaults;

typedef struct r5_power_info {
	int iters;         /* steps run */
	double max_eig;    /* estimate of the largest eigenvalue (0 for a zero operator) */
	double rel_change; /* relative change at the last step (1 before the second step) */
} r5_power_info;

/* op: out = A in on arrays of dims (work residency). seed fixes the starting vector (the same
 * seed gives the same sequence on every back end). conf NULL: defaults. A step that finds A x = 0
 * ends the run with estimate 0. */
r5_status r5_power_init(r5_ctx *ctx, r5_iter_op op, void *user, const long dims[R5_DIMS], unsigned seed,
			const r5_power_conf *conf, r5_iter **out);
/* R5_EINVAL when it is not a power iteration. */
r5_status r5_power_result(const r5_iter *it, r5_power_info *info);
/* The current unit-norm iterate (the leading eigenvector's estimate), owned by the solver. */
const r5_array *r5_power_vector(const r5_iter *it);

/* One call: init, r5_iter_run with hook (may be NULL), result, free. */
r5_status r5_power_max_eig(r5_ctx *ctx, r5_iter_op op, void *user, const long dims[R5_DIMS], unsigned seed,
			   const r5_power_conf *conf, r5_iter_hook hook, void *hook_user, r5_power_info *info);

#endif
