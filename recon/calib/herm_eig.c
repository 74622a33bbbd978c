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
	for (int i = 0; i < m; i++)
		p[i] = 0;
	for (int j = 0; j < m; j++) { /* p = B u, column by column (contiguous) */
		const double complex *bj = b + (long)j * n, xj = x[j];
		for (int i = 0; i < m; i++)
			p[i] += bj[i] * xj;
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

/* sqrt(a^2 + b^2) without hypot's overflow guard (libm's hypot is ~10x slower; the Gram and
 * per-pixel matrices are far from 1e150) */
static double norm2(double a, double b)
{
	return sqrt(a * a + b * b);
}

/* Implicit QL on the real tridiagonal (d, e), accumulating rotations into z (n x n, col-major)
 * unless z is NULL (eigenvalues only, O(n^2)). */
static r5_status tql(int n, double *d, double *e, double *z)
{
	/* an off-diagonal is negligible against its neighbours or, where they are (near) zero — a
	 * rank-deficient matrix: the relative test alone never passes there —, against the matrix */
	double anorm = 0.0;
	for (int i = 0; i < n; i++) {
		double row = fabs(d[i]) + (i < n - 1 ? fabs(e[i]) : 0.0);
		anorm = row > anorm ? row : anorm;
	}
	for (int l = 0; l < n; l++) {
		int iter = 0, m;
		do {
			for (m = l; m < n - 1; m++) {
				double dd = fabs(d[m]) + fabs(d[m + 1]);
				if (fabs(e[m]) <= 1e-15 * dd || fabs(e[m]) <= 1e-15 * anorm)
					break;
			}
			if (m == l)
				break;
			if (iter++ == 100)
				return r5_set_error(R5_EINTERNAL, "eigen-decomposition: QL did not converge");
			double g = (d[l + 1] - d[l]) / (2.0 * e[l]), r = norm2(g, 1.0);
			g = d[m] - d[l] + e[l] / (g + copysign(r, g));
			double s = 1.0, c = 1.0, p = 0.0;
			int i;
			for (i = m - 1; i >= l; i--) {
				double f = s * e[i], b = c * e[i];
				e[i + 1] = (r = norm2(f, g));
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
				if (!z)
					continue;
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

/* Inverse iteration (Wilkinson; LAPACK dstein) for the eigenvector of the real tridiagonal
 * (d, e) with eigenvalue lambda: LU of T - lambda I with partial pivoting (U has two
 * super-diagonals), three solves, Gram-Schmidt against the previous vectors prev[0..n_prev-1]
 * of the same cluster. work: 6 n doubles. */
static void inverse_iteration(int n, const double *d, const double *e, double lambda, double tnorm, const double *prev,
			      int n_prev, double *x, double *work)
{
	double *u0 = work, *u1 = work + n, *u2 = work + 2 * n, *l = work + 3 * n, *y = work + 4 * n, *sw = work + 5 * n;
	double tiny = 1e-14 * tnorm, p0 = d[0] - lambda, p1 = n > 1 ? e[0] : 0, p2 = 0;
	for (int i = 0; i + 1 < n; i++) {
		double r0 = e[i], r1 = d[i + 1] - lambda, r2 = i + 2 < n ? e[i + 1] : 0, q0, q1, q2, o1, o2;
		sw[i] = fabs(r0) > fabs(p0);
		if (sw[i] != 0.0) {
			q0 = r0, q1 = r1, q2 = r2, o1 = p1, o2 = p2;
			l[i] = p0;
		} else {
			q0 = p0, q1 = p1, q2 = p2, o1 = r1, o2 = r2;
			l[i] = r0;
		}
		if (fabs(q0) < tiny)
			q0 = q0 < 0 ? -tiny : tiny;
		l[i] /= q0;
		u0[i] = q0, u1[i] = q1, u2[i] = q2;
		p0 = o1 - l[i] * q1, p1 = o2 - l[i] * q2, p2 = 0;
	}
	u0[n - 1] = fabs(p0) < tiny ? tiny : p0;
	for (int i = 0; i < n; i++)
		x[i] = 1.0 + 0.01 * (double)((i * 7919) % 101);
	for (int iter = 0; iter < 3; iter++) {
		double c = x[0];
		for (int i = 0; i + 1 < n; i++) {
			double o = x[i + 1];
			y[i] = sw[i] != 0.0 ? o : c;
			c = (sw[i] != 0.0 ? c : o) - l[i] * y[i];
		}
		y[n - 1] = c;
		for (int i = n - 1; i >= 0; i--) {
			double v = y[i];
			if (i + 1 < n)
				v -= u1[i] * x[i + 1];
			if (i + 2 < n)
				v -= u2[i] * x[i + 2];
			x[i] = v / u0[i];
		}
		for (int k = 0; k < n_prev; k++) {
			const double *pk = prev + (long)k * n;
			double dot = 0;
			for (int i = 0; i < n; i++)
				dot += pk[i] * x[i];
			for (int i = 0; i < n; i++)
				x[i] -= dot * pk[i];
		}
		double norm = 0;
		for (int i = 0; i < n; i++)
			norm += x[i] * x[i];
		norm = norm > 0 ? 1.0 / sqrt(norm) : 0;
		for (int i = 0; i < n; i++)
			x[i] *= norm;
	}
}

r5_status r5_herm_eig(int n, double complex *a, double *w)
{
	int n_vectors = 0;
	return r5_herm_eig_top(n, a, w, -1.0, &n_vectors, NULL);
}

static r5_status herm_eig_select(int n, double complex *a, double *w, double rel_min, int max_vectors, int *n_vectors,
				 const r5_progress *progress);

r5_status r5_herm_eig_top(int n, double complex *a, double *w, double rel_min, int *n_vectors,
			  const r5_progress *progress)
{
	return herm_eig_select(n, a, w, rel_min, n, n_vectors, progress);
}

r5_status r5_herm_eig_first(int n, double complex *a, double *w, int k)
{
	int n_vectors = 0;
	return herm_eig_select(n, a, w, -1.0, k < n ? k : n, &n_vectors, NULL);
}

/* Stop check once about R5_PROGRESS_CHUNK_MACS / 2 multiply-adds (this code is single-threaded)
 * have been done since the last one; *work counts them. */
static r5_status check_work(const r5_progress *progress, double *work, double add, double fraction)
{
	if (!progress)
		return R5_OK;
	*work += add;
	if (*work < (double)(R5_PROGRESS_CHUNK_MACS / 2))
		return R5_OK;
	*work = 0;
	return r5_progress_check(progress, "eigen-decomposition", fraction);
}

/* Eigenvectors of the tridiagonal for the n_out eigenvalues w_sorted (descending) into z
 * (n x n_out); clusters (gap < 1e-3 ||T||) are orthogonalised. */
static r5_status tridiag_vectors(int n, const double *d, const double *e, const double *w_sorted, int n_out,
				 double *z, double *work, const r5_progress *progress, double *done)
{
	double tnorm = 0;
	for (int i = 0; i < n; i++)
		tnorm = fmax(tnorm, fabs(d[i]) + (i > 0 ? e[i - 1] : 0) + (i + 1 < n ? e[i] : 0));
	tnorm = tnorm > 0 ? tnorm : 1;
	int first = 0; /* first vector of the current cluster */
	for (int j = 0; j < n_out; j++) {
		if (j > 0 && w_sorted[j - 1] - w_sorted[j] > 1e-3 * tnorm)
			first = j;
		inverse_iteration(n, d, e, w_sorted[j], tnorm, z + (long)first * n, j - first, z + (long)j * n, work);
		R5_TRY(check_work(progress, done, 6.0 * n * (double)(j - first + 2), 0.8));
	}
	return R5_OK;
}

static r5_status herm_eig_select(int n, double complex *a, double *w, double rel_min, int max_vectors, int *n_vectors,
				 const r5_progress *progress)
{
	if (n < 1)
		return r5_set_error(R5_EINVAL, "eigen-decomposition: size %d", n);
	double complex *p = malloc(sizeof *p * n), *e = calloc((size_t)n, sizeof *e), *q = calloc((size_t)n * n, sizeof *q);
	double *e_abs = calloc((size_t)n, sizeof *e_abs), *z = calloc((size_t)n * n, sizeof *z);
	double *tri = malloc(sizeof *tri * 8 * (size_t)n); /* copy of (d, e) and inverse-iteration work */
	int *order = malloc(sizeof *order * n);
	double complex *ph = malloc(sizeof *ph * n);
	r5_status s = R5_OK;
	if (!p || !e || !q || !e_abs || !z || !order || !ph || !tri) {
		s = r5_set_error(R5_ENOMEM, "eigen-decomposition of size %d", n);
		goto done;
	}
	double work = 0;
	for (int k = 0; k < n - 2 && s == R5_OK; k++) {
		householder_step(n, a, k, p, e_abs, e);
		s = check_work(progress, &work, 3.0 * (double)(n - k) * (double)(n - k), 0.8 * k / n);
	}
	if (s != R5_OK)
		goto done;
	if (n >= 2) {
		e[n - 2] = a[(n - 1) + (long)(n - 2) * n];
		e_abs[n - 2] = cabs(e[n - 2]);
	}
	for (int k = 0; k < n; k++)
		w[k] = creal(a[k + (long)k * n]);
	ph[0] = 1;
	for (int k = 0; k + 1 < n; k++)
		ph[k + 1] = e_abs[k] > 0 ? ph[k] * e[k] / e_abs[k] : ph[k];
	e_abs[n - 1] = 0;
	int selective = rel_min >= 0 || max_vectors < n; /* eigenvalues by QL, the wanted vectors by inverse iteration */
	memcpy(tri, w, sizeof *tri * (size_t)n);
	memcpy(tri + n, e_abs, sizeof *tri * (size_t)n);
	for (int k = 0; k < n && !selective; k++)
		z[k + (long)k * n] = 1;
	s = tql(n, w, e_abs, selective ? NULL : z);
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
	/* V = Q diag(ph) Z, columns in sorted order, only those with w >= rel_min w_max */
	int n_out = 0;
	while (n_out < max_vectors && (rel_min < 0 || w[order[n_out]] >= rel_min * w[order[0]]))
		n_out++;
	*n_vectors = n_out;
	if (selective) {
		for (int i = 0; i < n; i++)
			p[i] = w[order[i]];
		for (int i = 0; i < n; i++) {
			w[i] = creal(p[i]); /* sorted */
			order[i] = i;
		}
		s = tridiag_vectors(n, tri, tri + n, w, n_out, z, tri + 2 * n, progress, &work);
	}
	for (int jj = 0; jj < n_out && s == R5_OK; jj++) { /* ph .* z, then H_{n-3} .. H_0 applied in turn */
		const double *zc = z + (long)order[jj] * n;
		double complex *out = q + (long)jj * n;
		for (int i = 0; i < n; i++)
			out[i] = ph[i] * zc[i];
		for (int k = n - 3; k >= 0; k--) {
			const double complex *u = a + (k + 1) + (long)k * n;
			double complex *o = out + k + 1, dot = 0;
			int m = n - k - 1;
			for (int i = 0; i < m; i++)
				dot += conj(u[i]) * o[i];
			for (int i = 0; i < m; i++)
				o[i] -= u[i] * dot;
		}
		s = check_work(progress, &work, (double)n * (double)n, 0.8 + 0.2 * jj / (n_out ? n_out : 1));
	}
	if (s != R5_OK)
		goto done;
	memcpy(a, q, sizeof *a * (size_t)n * (size_t)n_out);
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
	free(tri);
	return s;
}
