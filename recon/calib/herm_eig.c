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

/* ---- Signal subspace by randomized subspace iteration (herm_eig.h, r5_herm_eig_signal) ----
 * Halko, Martinsson & Tropp, SIAM Rev 53:217 (2011), Alg. 4.4 (power iterations on a random
 * start, re-orthonormalised after every product) with Rayleigh-Ritz (Saad, Numerical Methods for
 * Large Eigenvalue Problems, 5.2). Orthonormalisation: Cholesky QR (Fukaya et al. 2014: CholQR2,
 * twice where the basis feeds Rayleigh-Ritz); columns that the Cholesky finds dependent
 * (rank-deficient Gram matrices) are replaced by fresh random ones. All in double: the kept
 * eigenvalues reach down to rel_min ~ 4e-4 of the largest, where float products (error ~1e-7 of
 * the largest) would leave 1e-3 relative errors. Products: tiled loops over contiguous columns,
 * OpenMP over tiles (the dense path is one thread). */

#define SUB_TILE 32   /* output tile (columns x columns) of a product */
#define SUB_DEPTH 512 /* inner-dimension chunk: two 512 x 32 complex panels stay in L2 */

/* Dot products of 2 x 2 columns, length len complex: re = sum x . y over the interleaved
 * doubles, im = sum x . ys with ys = y's (imaginary, -real) pairs, so every loop is contiguous
 * and vectorises. out[2 (i + 2 j)] += (re, im) for x_i, y_j. */
static void dots_2x2(long len, const double *x0, const double *x1, const double *y0, const double *y1,
		     const double *s0, const double *s1, double out[8])
{
	double r00 = 0, r01 = 0, r10 = 0, r11 = 0, i00 = 0, i01 = 0, i10 = 0, i11 = 0;
#pragma omp simd reduction(+ : r00, r01, r10, r11, i00, i01, i10, i11)
	for (long l = 0; l < 2 * len; l++) {
		r00 += x0[l] * y0[l];
		r10 += x1[l] * y0[l];
		r01 += x0[l] * y1[l];
		r11 += x1[l] * y1[l];
		i00 += x0[l] * s0[l];
		i10 += x1[l] * s0[l];
		i01 += x0[l] * s1[l];
		i11 += x1[l] * s1[l];
	}
	out[0] += r00, out[1] += i00, out[2] += r10, out[3] += i10;
	out[4] += r01, out[5] += i01, out[6] += r11, out[7] += i11;
}

/* C (m x nc) = A^H B, A: kk x m (lda), B: kk x nc (ldb), C: ldc. upper: only tiles on or above the
 * diagonal (a Gram matrix, m == nc), the rest mirrored. b_upper: B is upper triangular (rows
 * l > j of column j are zero and skipped). Returns 0 when out of memory. */
static int prod_hn_tri(long m, long nc, long kk, const double complex *a, long lda, const double complex *b, long ldb,
		       double complex *c, long ldc, int upper, int b_upper)
{
	double *bs = malloc(sizeof *bs * 2 * (size_t)kk * (size_t)nc); /* B's (imag, -real) pairs */
	if (!bs)
		return 0;
	for (long j = 0; j < nc; j++)
		for (long l = 0; l < kk; l++) {
			bs[2 * (l + j * kk)] = cimag(b[l + j * ldb]);
			bs[2 * (l + j * kk) + 1] = -creal(b[l + j * ldb]);
		}
	long ti = (m + SUB_TILE - 1) / SUB_TILE, tj = (nc + SUB_TILE - 1) / SUB_TILE;
#pragma omp parallel for schedule(dynamic)
	for (long t = 0; t < ti * tj; t++) {
		long i0 = (t % ti) * SUB_TILE, j0 = (t / ti) * SUB_TILE;
		if (upper && i0 > j0)
			continue;
		long i1 = i0 + SUB_TILE < m ? i0 + SUB_TILE : m, j1 = j0 + SUB_TILE < nc ? j0 + SUB_TILE : nc;
		double acc[SUB_TILE * SUB_TILE * 2] = {0};
		long depth = b_upper && j1 < kk ? j1 : kk;
		for (long l0 = 0; l0 < depth; l0 += SUB_DEPTH) {
			long len = l0 + SUB_DEPTH < depth ? SUB_DEPTH : depth - l0;
			for (long j = j0; j < j1; j += 2)
				for (long i = i0; i < i1; i += 2) {
					long ia = i + 1 < i1 ? i + 1 : i, jb = j + 1 < j1 ? j + 1 : j; /* odd edges: repeat */
					double out[8] = {0};
					dots_2x2(len, (const double *)(a + l0 + i * lda), (const double *)(a + l0 + ia * lda),
						 (const double *)(b + l0 + j * ldb), (const double *)(b + l0 + jb * ldb),
						 bs + 2 * (l0 + j * kk), bs + 2 * (l0 + jb * kk), out);
					for (int q = 0; q < 4; q++) {
						long ii = q & 1 ? ia : i, jj = q & 2 ? jb : j;
						if ((q & 1 && ia == i) || (q & 2 && jb == j))
							continue;
						acc[2 * ((ii - i0) + SUB_TILE * (jj - j0))] += out[2 * q];
						acc[2 * ((ii - i0) + SUB_TILE * (jj - j0)) + 1] += out[2 * q + 1];
					}
				}
		}
		for (long j = j0; j < j1; j++)
			for (long i = i0; i < i1; i++)
				c[i + j * ldc] = CMPLX(acc[2 * ((i - i0) + SUB_TILE * (j - j0))],
						       acc[2 * ((i - i0) + SUB_TILE * (j - j0)) + 1]);
	}
	free(bs);
	if (upper)
		for (long j = 0; j < nc; j++)
			for (long i = j + 1; i < m; i++)
				c[i + j * ldc] = conj(c[j + i * ldc]);
	return 1;
}

static int prod_hn(long m, long nc, long kk, const double complex *a, long lda, const double complex *b, long ldb,
		   double complex *c, long ldc, int upper)
{
	return prod_hn_tri(m, nc, kk, a, lda, b, ldb, c, ldc, upper, 0);
}

/* C (m x nc) = A B, A: m x kk (lda), B: kk x nc (ldb): as (A^H)^H B through prod_hn (one
 * conjugate-transposed copy of A, n k values, against the product's n k^2 multiply-adds). */
static int prod_nn(long m, long nc, long kk, const double complex *a, long lda, const double complex *b, long ldb,
		   double complex *c, long ldc, int b_upper)
{
	double complex *ah = malloc(sizeof *ah * (size_t)kk * (size_t)m);
	if (!ah)
		return 0;
	for (long l = 0; l < kk; l++)
		for (long i = 0; i < m; i++)
			ah[l + i * kk] = conj(a[i + l * lda]);
	int ok = prod_hn_tri(m, nc, kk, ah, kk, b, ldb, c, ldc, 0, b_upper);
	free(ah);
	return ok;
}

/* xorshift64*: the fixed-seed start (and replacement columns) make the result reproducible. */
static double complex random_entry(unsigned long long *state)
{
	double part[2];
	for (int k = 0; k < 2; k++) {
		*state ^= *state >> 12;
		*state ^= *state << 25;
		*state ^= *state >> 27;
		part[k] = (double)((*state * 2685821657736338717ULL) >> 11) / 9007199254740992.0 - 0.5;
	}
	return CMPLX(part[0], part[1]);
}

struct subspace {
	int n, k;
	const double complex *g; /* the matrix, n x n */
	double complex *q, *w, *v, *gv, *small, *small2; /* n x k (four), k x k (two) */
	double shift; /* sigma of the shifted power step Q <- (G - sigma I) Q */
	double *theta;
	unsigned long long seed;
	const r5_progress *progress;
	double fraction;
};

/* Y (n x k) <- Y R^{-1} with Y^H Y = R^H R (Cholesky QR). A column found dependent (pivot below
 * 1e-13 of the largest column's squared norm: Ritz directions of a rank-deficient or steeply
 * decaying spectrum) is replaced by a random one of that norm and its Gram column recomputed, so
 * R stays well conditioned (< ~3e6). Returns 0 when out of memory or the replacement fails too. */
static int chol_qr(struct subspace *sp, double complex *y)
{
	int n = sp->n, k = sp->k;
	double complex *r = sp->small, *rinv = sp->small2;
	if (!prod_hn(k, k, n, y, n, y, n, r, k, 1))
		return 0;
	double top = 0;
	for (int j = 0; j < k; j++)
		top = fmax(top, creal(r[j + (long)j * k]));
	top = top > 0 ? top : 1.0;
	for (int j = 0; j < k; j++) { /* upper Cholesky, in place: R[i, j] for i <= j */
		int ok = 0;
		for (int attempt = 0; attempt < 3 && !ok; attempt++) {
			if (attempt > 0) {
				double complex *yj = y + (long)j * n;
				for (int l = 0; l < n; l++)
					yj[l] = random_entry(&sp->seed) * sqrt(6.0 * top / n);
				for (int i = 0; i <= j; i++) {
					double complex dot = 0;
					for (int l = 0; l < n; l++)
						dot += conj(y[l + (long)i * n]) * yj[l];
					r[i + (long)j * k] = dot;
				}
			}
			for (int i = 0; i <= j; i++) {
				double complex sum = r[i + (long)j * k];
				for (int l = 0; l < i; l++)
					sum -= conj(r[l + (long)i * k]) * r[l + (long)j * k];
				if (i < j)
					sum /= r[i + (long)i * k];
				else if ((ok = creal(sum) > 1e-13 * top))
					sum = sqrt(creal(sum));
				if (i < j || ok)
					r[i + (long)j * k] = sum;
			}
		}
		if (!ok)
			return 0;
	}
	for (int j = 0; j < k; j++) { /* R^{-1}, upper, column by column */
		for (int i = k - 1; i >= 0; i--) {
			double complex sum = i == j ? 1.0 : 0.0;
			for (int l = i + 1; l <= j; l++)
				sum -= r[i + (long)l * k] * rinv[l + (long)j * k];
			rinv[i + (long)j * k] = i > j ? 0 : sum / r[i + (long)i * k];
		}
	}
	if (!prod_nn(n, k, k, y, n, rinv, k, sp->v, n, 1))
		return 0;
	memcpy(y, sp->v, sizeof *y * (size_t)n * (size_t)k);
	return 1;
}

/* W = G Q (G Hermitian: G Q = G^H Q, the contiguous-column product), in panels of columns with a
 * stop check between them. */
static r5_status apply_matrix(struct subspace *sp)
{
	long n = sp->n, panel = (long)(2 * R5_PROGRESS_CHUNK_MACS) / (n * n) + 1;
	for (long j0 = 0; j0 < sp->k; j0 += panel) {
		long nc = j0 + panel < sp->k ? panel : sp->k - j0;
		if (!prod_hn(n, nc, n, sp->g, n, sp->q + j0 * n, n, sp->w + j0 * n, n, 0))
			return r5_set_error(R5_ENOMEM, "eigen-decomposition: product of %ld x %ld", n, nc);
		R5_TRY(r5_progress_check(sp->progress, "eigen-decomposition", sp->fraction));
	}
	return R5_OK;
}

/* Rayleigh-Ritz on span(Q) with W = G Q: B = Q^H W = U diag(theta) U^H (all k Ritz values, the
 * vectors of those >= rel_min x the largest: *m), V = Q U_m, and G V = W U_m. */
static r5_status rayleigh_ritz(struct subspace *sp, double rel_min, int *m)
{
	int n = sp->n, k = sp->k;
	if (!prod_hn(k, k, n, sp->q, n, sp->w, n, sp->small, k, 0))
		return r5_set_error(R5_ENOMEM, "eigen-decomposition: Rayleigh-Ritz of %d", k);
	for (int j = 0; j < k; j++) /* exactly Hermitian */
		for (int i = 0; i < j; i++)
			sp->small[j + (long)i * k] = conj(sp->small[i + (long)j * k] =
								 0.5 * (sp->small[i + (long)j * k] + conj(sp->small[j + (long)i * k])));
	R5_TRY(r5_herm_eig_top(k, sp->small, sp->theta, rel_min, m, NULL));
	if (!prod_nn(n, *m, k, sp->q, n, sp->small, k, sp->v, n, 0) ||
	    !prod_nn(n, *m, k, sp->w, n, sp->small, k, sp->gv, n, 0))
		return r5_set_error(R5_ENOMEM, "eigen-decomposition: Ritz vectors of %d", k);
	return R5_OK;
}

/* The largest residual |G v_j - theta_j v_j| over the Ritz pairs j < m (after rayleigh_ritz). */
static double ritz_residual(const struct subspace *sp, int m)
{
	double worst = 0;
	for (int j = 0; j < m; j++) {
		const double complex *x = sp->v + (long)j * sp->n, *gx = sp->gv + (long)j * sp->n;
		double sum = 0;
		for (int i = 0; i < sp->n; i++) {
			double complex d = gx[i] - sp->theta[j] * x[i];
			sum += creal(d) * creal(d) + cimag(d) * cimag(d);
		}
		worst = fmax(worst, sqrt(sum));
	}
	return worst;
}

static int grow_block(struct subspace *sp, int k_new)
{
	double complex *q = realloc(sp->q, sizeof *q * (size_t)sp->n * k_new);
	sp->q = q ? q : sp->q;
	double complex *w = realloc(sp->w, sizeof *w * (size_t)sp->n * k_new);
	sp->w = w ? w : sp->w;
	double complex *v = realloc(sp->v, sizeof *v * (size_t)sp->n * k_new);
	sp->v = v ? v : sp->v;
	double complex *gv = realloc(sp->gv, sizeof *gv * (size_t)sp->n * k_new);
	sp->gv = gv ? gv : sp->gv;
	double complex *s1 = realloc(sp->small, sizeof *s1 * (size_t)k_new * k_new);
	sp->small = s1 ? s1 : sp->small;
	double complex *s2 = realloc(sp->small2, sizeof *s2 * (size_t)k_new * k_new);
	sp->small2 = s2 ? s2 : sp->small2;
	double *t = realloc(sp->theta, sizeof *t * (size_t)k_new);
	sp->theta = t ? t : sp->theta;
	return q && w && v && gv && s1 && s2 && t;
}

/* Q <- W - sigma Q = (G - sigma I) Q: sigma = half the smallest Ritz value c (~ the largest
 * eigenvalue outside the block) maps the unwanted [0, c] to [-c/2, c/2] and a wanted lambda to
 * lambda - c/2: the convergence factor per product falls from c / lambda to c / (2 lambda - c)
 * (5.5 -> 10 per product on the vessel-wall Gram matrix; Chebyshev filtering of degree 1,
 * Zhou & Saad, SIAM J. Matrix Anal. Appl. 29:954, 2007). */
static void shifted_step(struct subspace *sp)
{
	long len = (long)sp->n * sp->k;
	for (long i = 0; i < len; i++)
		sp->q[i] = sp->w[i] - sp->shift * sp->q[i];
}

/* Rayleigh-Ritz (a k x k eigenproblem and two n x k x m products) after product 2 (block size),
 * then from product 7 on every second one: the signal subspace of ESPIRiT Gram matrices converges
 * in 9-13 products (0.1-0.2 per product). */
static int rayleigh_ritz_due(int it)
{
	return it == 2 || (it >= 7 && it % 2 == 1);
}

/* The iteration. *converged = 0 (and R5_OK) when the block would outgrow the dense path's worth
 * or the residuals do not fall: the caller then decomposes densely. */
static r5_status subspace_iterate(struct subspace *sp, double rel_min, int *m_out, int *converged)
{
	int n = sp->n, k_max = (int)(0.6 * n);
	*converged = 0;
	int k = n / 4 > 64 ? n / 4 : 64;
	k = k < k_max ? k : k_max;
	if (!grow_block(sp, k))
		return r5_set_error(R5_ENOMEM, "eigen-decomposition: subspace of %d x %d", n, k);
	sp->k = k;
	for (long i = 0; i < (long)n * k; i++)
		sp->q[i] = random_entry(&sp->seed);
	if (!chol_qr(sp, sp->q) || !chol_qr(sp, sp->q))
		return R5_OK;
	for (int it = 1; it <= 40; it++) {
		sp->fraction = 0.9 * it / 40.0;
		R5_TRY(apply_matrix(sp));
		if (!rayleigh_ritz_due(it)) { /* one Cholesky QR pass suffices to keep the power iteration going */
			shifted_step(sp);
			if (!chol_qr(sp, sp->q) || (rayleigh_ritz_due(it + 1) && !chol_qr(sp, sp->q)))
				return R5_OK;
			continue;
		}
		int m = 0;
		R5_TRY(rayleigh_ritz(sp, rel_min, &m));
		double top = sp->theta[0], threshold = rel_min * top;
		if (!(top > 0))
			return R5_OK; /* a zero matrix: the dense path says so */
		int too_small = sp->theta[sp->k - 1] >= 0.3 * threshold;
		if (!too_small && ritz_residual(sp, m) <= 1e-10 * top) {
			*m_out = m;
			*converged = 1;
			return R5_OK;
		}
		sp->shift = too_small ? 0 : 0.5 * sp->theta[sp->k - 1];
		shifted_step(sp); /* the next basis */
		if (too_small) { /* grow by random columns */
			if (sp->k >= k_max)
				return R5_OK;
			int k_new = (int)fmax(1.5 * m + 32, 1.5 * sp->k);
			k_new = k_new < k_max ? k_new : k_max;
			if (!grow_block(sp, k_new))
				return r5_set_error(R5_ENOMEM, "eigen-decomposition: subspace of %d x %d", n, k_new);
			for (long i = (long)n * sp->k; i < (long)n * k_new; i++)
				sp->q[i] = random_entry(&sp->seed);
			sp->k = k_new;
		}
		if (!chol_qr(sp, sp->q) || (rayleigh_ritz_due(it + 1) && !chol_qr(sp, sp->q)))
			return R5_OK;
	}
	return R5_OK;
}

r5_status r5_herm_eig_signal(int n, double complex *a, double *w, double rel_min, int *n_vectors, int *n_values,
			     const r5_progress *progress)
{
	int m = 0, converged = 0;
	r5_status s = R5_OK;
	if (n >= R5_HERM_EIG_SUBSPACE_MIN && rel_min > 0 && rel_min < 1) {
		struct subspace sp = {.n = n, .g = a, .seed = 0x5eed5eedULL, .progress = progress};
		s = subspace_iterate(&sp, rel_min, &m, &converged);
		if (s == R5_OK && converged) {
			memcpy(a, sp.v, sizeof *a * (size_t)n * (size_t)m);
			for (int j = 0; j < n; j++)
				w[j] = j < sp.k ? sp.theta[j] : 0;
			*n_vectors = m;
			*n_values = sp.k;
		}
		free(sp.q);
		free(sp.w);
		free(sp.v);
		free(sp.gv);
		free(sp.small);
		free(sp.small2);
		free(sp.theta);
	}
	if (s != R5_OK || converged)
		return s;
	*n_values = n;
	return r5_herm_eig_top(n, a, w, rel_min, n_vectors, progress);
}
