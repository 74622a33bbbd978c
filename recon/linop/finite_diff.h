/* Finite differences for total variation (Rudin, Osher & Fatemi, Physica D 60:259, 1992; BART's
 * linop_grad_create in src/linops/grad.c as a reference): forward differences along each flagged
 * dimension, spatial or temporal, stacked along one extra dimension so that isotropic TV is the
 * L2,1 norm over that dimension (r5_prox_l21 with group flag R5_FLAG(stack_dim)) and anisotropic
 * TV the L1 norm (r5_prox_l1).
 *
 * Definition, per flagged dimension d of size n (Neumann boundary: zero difference at the last
 * sample):
 *     (D_d x)[i] = x[i + 1] - x[i]   for i < n - 1,     (D_d x)[n - 1] = 0.
 * The adjoint is the negative divergence:
 *     (D_d^H g)[0] = -g[0],  (D_d^H g)[i] = g[i - 1] - g[i] (0 < i < n - 1),  (D_d^H g)[n - 1] = g[n - 2]
 * (the last sample of g is ignored: the forward never writes anything but 0 there).
 * D x stacks D_d x for the flagged dimensions in increasing order along stack_dim; D^H sums the
 * D_d^H of the parts. |D|^2 = |D^H D| < 4 x (number of flagged dimensions of size > 1).
 *
 * D^H D is the Neumann Laplacian: per part 2 x[i] - x[i - 1] - x[i + 1] inside, x[0] - x[1] and
 * x[n - 1] - x[n - 2] at the ends. The normal applies it directly (no scratch; about 7 passes
 * over a 3D image instead of 17 through D x; ADMM's TV applies it inside every CG step).
 *
 * Built from strided views (r5_array_view_strided) and r5_zaxpby / r5_zfill only, so it runs on
 * every back end with no slot of its own. */
#ifndef R5_LINOP_FINITE_DIFF_H
#define R5_LINOP_FINITE_DIFF_H

#include "linop.h"

/* D on arrays of dims: output dims are dims with dims[stack_dim] = the number of bits in flags
 * (differences in increasing dimension order). flags must name at least one dimension; stack_dim
 * must have size 1 in dims and not be flagged. A flagged dimension of size 1 gives a part that is
 * all zeros. */
r5_status r5_linop_finite_diff(r5_ctx *ctx, const long dims[R5_DIMS], unsigned long flags, int stack_dim,
			       r5_linop **out);

#endif
