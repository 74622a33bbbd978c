/* Small dense Hermitian linear algebra on the host, in double precision, column-major:
 * Cholesky factorisation and solves. Used where a pipeline has a few small positive definite
 * systems (GRAPPA's regularised normal equations, noise covariance whitening, SENSE g-factor
 * groups); the big arrays stay on the back end. */
#ifndef R5_CORE_DENSE_H
#define R5_CORE_DENSE_H

#include <complex.h>

/* In place a = L L^H, L lower triangular (the upper triangle is left as it was). Returns -1 on
 * success, else the first column j whose pivot (a_jj minus what the earlier columns explain)
 * is not above min_pivot(j) = min_pivot_rel * a_jj + min_pivot_abs: the matrix is not
 * (numerically) positive definite there. */
long r5_dense_cholesky(long n, double complex *a, double min_pivot_rel, double min_pivot_abs);

/* Solves L L^H X = B in place for the m columns of B (n x m), L from r5_dense_cholesky. */
void r5_dense_cholesky_solve(long n, const double complex *l, long m, double complex *b);

#endif
