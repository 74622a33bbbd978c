/* Dense Hermitian eigen-decomposition on the host in double precision, for ESPIRiT's
 * calibration Gram matrix (n = kernel positions x coils, a few hundred to ~2000): Householder
 * reduction to tridiagonal form, a diagonal unitary scaling that makes the off-diagonal real,
 * then implicit QL with Wilkinson shifts (Golub & Van Loan, Matrix Computations, 8.3; Numerical
 * Recipes tred2/tqli). The per-pixel small problems use the back end's zheev_batched instead. */
#ifndef R5_CALIB_HERM_EIG_H
#define R5_CALIB_HERM_EIG_H

#include <complex.h>

#include "../core/progress.h"
#include "../core/status.h"

/* a: n x n Hermitian, column-major (both triangles filled); replaced by the eigenvectors as
 * columns; eigenvalues in w, descending. */
r5_status r5_herm_eig(int n, double complex *a, double *w);

/* As r5_herm_eig, but only the eigenvectors whose eigenvalue is >= rel_min x the largest are
 * formed (columns 0 .. *n_vectors-1 of a; the rest of a is undefined); rel_min < 0: all. All
 * eigenvalues are returned. Saves the O(n^3) back-transformation of unwanted vectors.
 * progress (NULL: never stop): checked every few Householder steps and formed vectors (stage
 * "eigen-decomposition"): n = 1728 (3D ESPIRiT, 8 coils) takes ~15 s single-threaded. */
r5_status r5_herm_eig_top(int n, double complex *a, double *w, double rel_min, int *n_vectors,
			  const r5_progress *progress);

/* The signal subspace of a Hermitian positive semi-definite a (ESPIRiT's Gram matrix): the
 * eigenvectors with eigenvalue >= rel_min x the largest into columns
 * 0 .. *n_vectors-1 of a, eigenvalues descending in w[0 .. *n_values-1], w[*n_values ..] = 0 (not
 * computed; all below rel_min x the largest). For n >= R5_HERM_EIG_SUBSPACE_MIN: randomized
 * subspace iteration (fixed seed, deterministic), block grown until its smallest Ritz value is
 * below 0.3 rel_min x the largest, stopped when every kept Ritz pair has |G v - w v| <= 1e-10 x
 * the largest eigenvalue — then the kept eigenvalues and the kept subspace equal the dense path's
 * (tests/unit/test_espirit.c); below that size, rel_min outside (0, 1), or when the iteration
 * would need more than 0.6 n vectors or 40 products, the dense r5_herm_eig_top (then
 * *n_values = n). progress: a stop check every few matrix panels (stage "eigen-decomposition"). */
#define R5_HERM_EIG_SUBSPACE_MIN 400
r5_status r5_herm_eig_signal(int n, double complex *a, double *w, double rel_min, int *n_vectors, int *n_values,
			     const r5_progress *progress);

/* The k leading eigenvectors (columns 0 .. k-1 of a) and all eigenvalues (descending). */
r5_status r5_herm_eig_first(int n, double complex *a, double *w, int k);

#endif
