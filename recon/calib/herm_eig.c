/* Dense Hermitian eigensolver (herm_eig.h). */
#include "herm_eig.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A <- H A H with H = I - u u^H acting on rows/cols k+1.., u stored in column k of a. */
static void householder_step(int n, double complex *a, int k, double complex *p, double *e_abs, double complex *e)
{
	int m = n - k - 1;
	double complex *x = a + (k + 1) + (long)k * n;
	double xnorm2 = 0;
	for (int i = 0; i < m; i++)
		xnorm2 += creal(x[i] * conj(x[i]));
	double xnorm = sqrt(xnorm2), x0abs = cabs(x[0]);
	double complex phase = x0abs > 0 ? x[0] / x0abs : 1.0;
	double complex alpha = -phase * xnorm;
	double vnorm2 = xnorm2 - x0abs * x0abs + creal((x[0] - alpha) * conj(x[0] - alpha));
	if (xnorm == 0.0 || vnorm2 <= 1e-300) {
		e[k] = x[0];
		for (int i = 0; i < m; i++)
			x[i] = 0;
		e_abs[k] = cabs(e[k]);
		return;
	}
	x[0] -= alpha;
	double scale = sqrt(2.0 / vnorm2);
	for (int i = 0; i < m; i++)
		x[i] *= scale; /* x now holds u */
	double complex *b = a + (k + 1) + (long)(k + 1) * n;
	double complex uhp = 0;
	for (int i = 0; i < m; i++) {
		double complex sum = 0;
		for (int j = 0; j < m; j++)
			sum += b[i + (long)j * n] * x[j];
		p[i] = sum;
	}
	for (int i = 0; i < m; i++)
		uhp += conj(x[i]) * p[i];
	double half = 0.5 * creal(uhp);
	for (int i = 0; i < m; i++)
		p[i] -= half * x[i]; /* q */
	for (int j = 0; j < m; j++) {
		double complex uj = conj(x[j]), qj = conj(p[j]);
		for (int i = 0; i < m; i++)
			b[i + (long)j * n] -= x[i] * qj + p[i] * uj;
	}
	e[k] = alpha;
	e_abs[k] = cabs(alpha);
}

/* Implicit QL on the real tridiagonal (d, e), accumulating rotations into z (n x n, col-major). */
static r5_status tql(int n, double *d, double *e, double *z)
{
	for (int l = 0; l < n; l++) {
		int iter = 0, m;
		do {
			for (m = l; m < n - 1; m++) {
				double dd = fabs(d[m]) + fabs(d[m + 1]);
				if (fabs(e[m]) <= 1e-15 * dd)
					break;
			}
			if (m == l)
				break;
			if (iter++ == 100)
				return r5_set_error(R5_EINTERNAL, "eigen-decomposition: QL did not converge");
			double g = (d[l + 1] - d[l]) / (2.0 * e[l]), r = hypot(g, 1.0);
			g = d[m] - d[l] + e[l] / (g + copysign(r, g));
			double s = 1.0, c = 1.0, p = 0.0;
			int i;
			for (i = m - 1; i >= l; i--) {
				double f = s * e[i], b = c * e[i];
				e[i + 1] = (r = hypot(f, g));
				if (r == 0.0) {
					d[i + 1] -= p;
					e[m] = 0.0;
					break;
				}
				s = f / r;
				c = g / r;
				g = d[i + 1] - p;
				r = (d[i] - g) * s + 2.0 * c * b;
				d[i + 1] = g + (p = s * r);
				g = c * r - b;
				double *zi = z + (long)i * n, *zi1 = z + (long)(i + 1) * n;
				for (int k = 0; k < n; k++) {
					f = zi1[k];
					zi1[k] = s * zi[k] + c * f;
					zi[k] = c * zi[k] - s * f;
				}
			}
			if (r == 0.0 && i >= l)
				continue;
			d[l] -= p;
			e[l] = g;
			e[m] = 0.0;
		} while (m != l);
	}
	return R5_OK;
}

r5_status r5_herm_eig(int n, double complex *a, double *w)
{
	if (n < 1)
		return r5_set_error(R5_EINVAL, "eigen-decomposition: size %d", n);
	double complex *p = malloc(sizeof *p * n), *e = calloc((size_t)n, sizeof *e), *q = calloc((size_t)n * n, sizeof *q);
	double *e_abs = calloc((size_t)n, sizeof *e_abs), *z = calloc((size_t)n * n, sizeof *z);
	int *order = malloc(sizeof *order * n);
	double complex *ph = malloc(sizeof *ph * n);
	r5_status s = R5_OK;
	if (!p || !e || !q || !e_abs || !z || !order || !ph) {
		s = r5_set_error(R5_ENOMEM, "eigen-decomposition of size %d", n);
		goto done;
	}
	for (int k = 0; k < n - 2; k++)
		householder_step(n, a, k, p, e_abs, e);
	if (n >= 2) {
		e[n - 2] = a[(n - 1) + (long)(n - 2) * n];
		e_abs[n - 2] = cabs(e[n - 2]);
	}
	for (int k = 0; k < n; k++)
		w[k] = creal(a[k + (long)k * n]);
	/* Q = H_0 ... H_{n-3}, applied backwards to I */
	for (int k = 0; k < n; k++)
		q[k + (long)k * n] = 1;
	for (int k = n - 3; k >= 0; k--) {
		const double complex *u = a + (k + 1) + (long)k * n;
		int m = n - k - 1;
		for (int j = k + 1; j < n; j++) {
			double complex *qj = q + (k + 1) + (long)j * n, dot = 0;
			for (int i = 0; i < m; i++)
				dot += conj(u[i]) * qj[i];
			for (int i = 0; i < m; i++)
				qj[i] -= u[i] * dot;
		}
	}
	ph[0] = 1;
	for (int k = 0; k + 1 < n; k++)
		ph[k + 1] = e_abs[k] > 0 ? ph[k] * e[k] / e_abs[k] : ph[k];
	e_abs[n - 1] = 0;
	for (int k = 0; k < n; k++)
		z[k + (long)k * n] = 1;
	s = tql(n, w, e_abs, z);
	if (s != R5_OK)
		goto done;
	for (int i = 0; i < n; i++)
		order[i] = i;
	for (int i = 1; i < n; i++) { /* insertion sort, descending */
		int v = order[i], j = i;
		while (j > 0 && w[order[j - 1]] < w[v]) {
			order[j] = order[j - 1];
			j--;
		}
		order[j] = v;
	}
	/* V = Q diag(ph) Z, columns in sorted order; a is free now */
	for (int i = 0; i < n; i++)
		for (int k = 0; k < n; k++)
			q[i + (long)k * n] *= ph[k];
	for (int jj = 0; jj < n; jj++) {
		const double *zc = z + (long)order[jj] * n;
		double complex *out = a + (long)jj * n;
		for (int i = 0; i < n; i++)
			out[i] = 0;
		for (int k = 0; k < n; k++) {
			double zk = zc[k];
			if (zk == 0.0)
				continue;
			const double complex *qk = q + (long)k * n;
			for (int i = 0; i < n; i++)
				out[i] += qk[i] * zk;
		}
	}
	for (int i = 0; i < n; i++)
		p[i] = w[order[i]];
	for (int i = 0; i < n; i++)
		w[i] = creal(p[i]);
done:
	free(p);
	free(e);
	free(q);
	free(e_abs);
	free(z);
	free(order);
	free(ph);
	return s;
}
