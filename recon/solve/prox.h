/* Proximal operators as objects, for FISTA and ADMM (Parikh & Boyd, Proximal Algorithms, 2014;
 * Combettes & Pesquet 2011; SigPy's sigpy/prox.py and BART's src/iter/prox.c as references):
 *
 *     prox_{mu f}(v) = argmin_x  f(x) + |x - v|^2 / (2 mu),   mu > 0 (mu = 0: identity)
 *
 * A prox knows the shape it applies to, applies through the array wrappers only (any back end)
 * and names itself in errors. out may equal in. apply allocates nothing, except that the group
 * threshold makes one full-size scratch array on its first in-place call (kept until freed).
 *
 * Complex values: |x| is the complex modulus, so the L1 threshold shrinks magnitudes and keeps
 * phases. Real-valued data are complex with imaginary part 0 (the convention of backend.h): the
 * box and non-negativity sets hold x with lo <= re x <= hi and im x = 0, and their projections
 * clamp the real part and zero the imaginary part. */
#ifndef R5_SOLVE_PROX_H
#define R5_SOLVE_PROX_H

#include "../core/array.h"

typedef struct r5_prox r5_prox;

/* out = prox_{mu f}(in); shapes already checked against prox->dims, mu >= 0 and finite. */
typedef r5_status (*r5_prox_fn)(r5_ctx *ctx, r5_prox *prox, float mu, r5_array *out, const r5_array *in);

struct r5_prox {
	char name[48];
	long dims[R5_DIMS]; /* the arrays it applies to */
	r5_prox_fn apply;
	void *data;
	void (*destroy)(void *data);
};

/* Makes a prox; takes ownership of data (destroy(data), if set, runs on failure too). */
r5_status r5_prox_create(const char *name, const long dims[R5_DIMS], r5_prox_fn apply, void *data,
			 void (*destroy)(void *data), r5_prox **out);
void r5_prox_free(r5_prox *prox); /* NULL is harmless */

/* out = prox_{mu f}(in): in and out of prox->dims (R5_EINVAL naming the prox and the shapes
 * otherwise), mu >= 0 and finite. */
r5_status r5_prox_apply(r5_ctx *ctx, r5_prox *prox, float mu, r5_array *out, const r5_array *in);

/* f(x) = lambda sum_i |x_i|: soft threshold, x * max(0, 1 - lambda mu / |x|). lambda >= 0. */
r5_status r5_prox_l1(r5_ctx *ctx, const long dims[R5_DIMS], float lambda, r5_prox **out);

/* f(x) = lambda sum_g |x_g|_2, the groups g running over the dimensions in group_flags (e.g.
 * R5_FLAG(R5_DIM_COIL) | R5_FLAG(R5_DIM_TIME): all coils and frames at a pixel are one group):
 * x_g * max(0, 1 - lambda mu / |x_g|_2) (joint sparsity; Fornasier & Rauhut 2008). Flags naming
 * only dimensions of size 1 give the L1 threshold. lambda >= 0. */
r5_status r5_prox_l21(r5_ctx *ctx, const long dims[R5_DIMS], unsigned long group_flags, float lambda,
		      r5_prox **out);

/* Indicator of {x : lo <= re x <= hi, im x = 0}: projection clamp(re x, lo, hi) + 0i, whatever
 * mu. lo may be -INFINITY and hi +INFINITY; lo <= hi, neither NaN. */
r5_status r5_prox_box(r5_ctx *ctx, const long dims[R5_DIMS], float lo, float hi, r5_prox **out);
/* The box [0, +INFINITY). */
r5_status r5_prox_nonneg(r5_ctx *ctx, const long dims[R5_DIMS], r5_prox **out);

#endif
