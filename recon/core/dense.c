/* Cholesky factorisation and solves (dense.h). */
#include "dense.h"

#include <math.h>

long r5_dense_cholesky(long n, double complex *a, double min_pivot_rel, double min_pivot_abs)
{
	for (long j = 0; j < n; j++) {
		double ajj = creal(a[j + n * j]), d = ajj;
		for (long k = 0; k < j; k++)
			d -= creal(a[j + n * k] * conj(a[j + n * k]));
		if (!(d > min_pivot_rel * ajj + min_pivot_abs))
			return j;
		double l = sqrt(d);
		a[j + n * j] = l;
		for (long i = j + 1; i < n; i++) {
			double complex v = a[i + n * j];
			for (long k = 0; k < j; k++)
				v -= a[i + n * k] * conj(a[j + n * k]);
			a[i + n * j] = v / l;
		}
	}
	return -1;
}

void r5_dense_cholesky_solve(long n, const double complex *l, long m, double complex *b)
{
	for (long c = 0; c < m; c++) {
		double complex *x = b + n * c;
		for (long i = 0; i < n; i++) { /* L y = b */
			double complex v = x[i];
			for (long k = 0; k < i; k++)
				v -= l[i + n * k] * x[k];
			x[i] = v / creal(l[i + n * i]);
		}
		for (long i = n - 1; i >= 0; i--) { /* L^H x = y */
			double complex v = x[i];
			for (long k = i + 1; k < n; k++)
				v -= conj(l[k + n * i]) * x[k];
			x[i] = v / creal(l[i + n * i]);
		}
	}
}
