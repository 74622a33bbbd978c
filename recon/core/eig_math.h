/* Eigen-decomposition of one small Hermitian matrix, the leading k eigenvectors and all
 * eigenvalues, in double precision: the one routine behind the zheev_batched and
 * zheev_top_batched slots of both back ends (the CPU runs one matrix per OpenMP iteration, the
 * CUDA back end one matrix per thread), i.e. ESPIRiT's per-pixel C x C problems and Walsh's
 * per-block ones. Both back ends compute the same function, in the same precision, with the
 * same phase convention, so they differ only by the rounding of individual operations.
 *
 * Contract: R5_EIG_MAX_N, R5_EIG_SCRATCH(n) (doubles of scratch per matrix), and
 * r5_eig_herm_top(n, k, a, evals, scratch, stride): `a` (n x n float complex, column-major) is
 * read as the Hermitian matrix (a + a^H) / 2; its columns 0..k-1 are replaced by the k leading
 * eigenvectors (unit norm, the first component real and >= 0; columns k.. are left as they
 * are), all n eigenvalues go to evals[0..n-1] in descending order. Element i of the scratch is
 * scratch[i * stride] (stride 1 on the CPU; on the GPU the threads' scratches interleave so
 * that a warp's accesses coalesce). No allocation inside. Returns 0, or 1 if QL did not
 * converge (never seen; the caller reports it).
 *
 * Algorithm (Golub & Van Loan, Matrix Computations, 8.3 and 8.2.2; Numerical Recipes tred2,
 * tqli; LAPACK zhetrd, dsterf, dstein):
 *   1. Householder reduction to tridiagonal form, A = Q T' Q^H, T' with complex sub-diagonal;
 *      a diagonal unitary D makes it real: T = D^H T' D;
 *   2. eigenvalues of T by implicit QL with Wilkinson shifts, no vectors (O(n^2));
 *   3. the k wanted eigenvectors z of T by inverse iteration (LU with partial pivoting, three
 *      solves), Gram-Schmidt within clusters (gap < 1e-3 ||T||), a different start vector per
 *      index so that an exactly degenerate cluster still yields independent vectors;
 *   4. v = Q D z, then the phase of v_0 removed.
 * Cost for n = 8, k = 1 (one core of this project's 2-core Xeon): 2.5 us per matrix, against
 * 3.7 us for the Householder + QL solver the CPU ran before (herm_eig.c, allocating per call)
 * and 22 us for the cyclic float Jacobi the GPU ran (all n vectors, ~7 sweeps of n^2/2
 * rotations). QL is about half of it (a chain of dependent divisions). */
#ifndef R5_CORE_EIG_MATH_H
#define R5_CORE_EIG_MATH_H

#include "complex_math.h"

#define R5_EIG_MAX_N 64
/* ar, ai (n^2 each), z (n^2), d, e, w, ework, er, ei, phr, phi, two work vectors of 2n and
 * six inverse-iteration vectors */
#define R5_EIG_SCRATCH(n) (3L * (n) * (n) + 18L * (n))

/* Step 1 for column j: the Householder vector u (||u||^2 = 2) of x = A[j+1.., j] goes into
 * column j below the diagonal, the new sub-diagonal element alpha into (er, ei)[j], and the
 * trailing block B = A[j+1.., j+1..] becomes H B H = B - u q^H - q u^H, q = p - (u^H p / 2) u,
 * p = B u (pr, pi: m doubles each). */
R5_HD void r5_eig_householder(int n, int j, double *ar, double *ai, double *er, double *ei, double *pr, double *pi,
			      long st)
{
	int m = n - j - 1;
	long c0 = (long)j * n + j + 1; /* x[i] = A[(j + 1 + i), j] */
	double xn2 = 0;
	for (int i = 0; i < m; i++)
		xn2 += ar[(c0 + i) * st] * ar[(c0 + i) * st] + ai[(c0 + i) * st] * ai[(c0 + i) * st];
	double x0r = ar[c0 * st], x0i = ai[c0 * st], x0abs = sqrt(x0r * x0r + x0i * x0i), xn = sqrt(xn2);
	double phr = x0abs > 0 ? x0r / x0abs : 1.0, phi = x0abs > 0 ? x0i / x0abs : 0.0;
	double alr = -phr * xn, ali = -phi * xn;
	double vr = x0r - alr, vi = x0i - ali, vn2 = xn2 - x0abs * x0abs + vr * vr + vi * vi;
	if (xn == 0.0 || vn2 <= 1e-300) { /* already reduced: H = I */
		er[j * st] = x0r, ei[j * st] = x0i;
		for (int i = 0; i < m; i++)
			ar[(c0 + i) * st] = 0, ai[(c0 + i) * st] = 0;
		return;
	}
	double sc = sqrt(2.0 / vn2);
	ar[c0 * st] = vr, ai[c0 * st] = vi;
	for (int i = 0; i < m; i++)
		ar[(c0 + i) * st] *= sc, ai[(c0 + i) * st] *= sc;
	long b0 = (long)(j + 1) * n + j + 1; /* B[i, l] at b0 + i + l n */
	for (int i = 0; i < m; i++)
		pr[i * st] = 0, pi[i * st] = 0;
	for (int l = 0; l < m; l++) { /* p = B u, column by column */
		double ur = ar[(c0 + l) * st], ui = ai[(c0 + l) * st];
		for (int i = 0; i < m; i++) {
			double br = ar[(b0 + i + (long)l * n) * st], bi = ai[(b0 + i + (long)l * n) * st];
			pr[i * st] += br * ur - bi * ui, pi[i * st] += br * ui + bi * ur;
		}
	}
	double half = 0; /* Re(u^H p) / 2 (u^H B u is real) */
	for (int i = 0; i < m; i++)
		half += ar[(c0 + i) * st] * pr[i * st] + ai[(c0 + i) * st] * pi[i * st];
	half *= 0.5;
	for (int i = 0; i < m; i++)
		pr[i * st] -= half * ar[(c0 + i) * st], pi[i * st] -= half * ai[(c0 + i) * st];
	for (int l = 0; l < m; l++) { /* B -= u q^H + q u^H */
		double ur = ar[(c0 + l) * st], ui = -ai[(c0 + l) * st], qr = pr[l * st], qi = -pi[l * st];
		for (int i = 0; i < m; i++) {
			long bi = (b0 + i + (long)l * n) * st;
			double xr = ar[(c0 + i) * st], xi = ai[(c0 + i) * st], yr = pr[i * st], yi = pi[i * st];
			ar[bi] -= xr * qr - xi * qi + yr * ur - yi * ui;
			ai[bi] -= xr * qi + xi * qr + yr * ui + yi * ur;
		}
	}
	er[j * st] = alr, ei[j * st] = ali;
}

/* Step 2: eigenvalues of the real symmetric tridiagonal with diagonal d and squared
 * off-diagonal e2 (e2[i] couples i and i + 1), both destroyed, the eigenvalues left in d
 * unsorted: implicit QL with Wilkinson's shift in its root-free form (Pal, Walker, Kahan; see
 * Parlett, The Symmetric Eigenvalue Problem, 8.15), which carries squared cosines, sines and
 * off-diagonals so that a rotation costs three divisions and no square root (the rotation
 * chain is latency-bound: this halves the step's time for n = 8), and closed-form 2 x 2 ends.
 * Returns 1 if an eigenvalue took more than 100 iterations. */
R5_HD int r5_eig_tridiag_ql(int n, double *d, double *e2, long st)
{
	int l = 0, iter = 0;
	while (l < n) {
		int m = l;
		for (; m < n - 1; m++) { /* |e_m| <= 1e-15 (|d_m| + |d_m+1|) */
			double dd = fabs(d[m * st]) + fabs(d[(m + 1) * st]);
			if (e2[m * st] <= 1e-30 * dd * dd)
				break;
		}
		if (m == l) { /* d_l is an eigenvalue */
			l++, iter = 0;
			continue;
		}
		if (m == l + 1) { /* 2 x 2 block: closed form */
			double a = d[l * st], c = d[(l + 1) * st], h = 0.5 * (a - c);
			double r = sqrt(h * h + e2[l * st]);
			d[l * st] = 0.5 * (a + c) + r, d[(l + 1) * st] = 0.5 * (a + c) - r;
			e2[l * st] = 0;
			l += 2, iter = 0;
			continue;
		}
		if (iter++ == 100)
			return 1;
		double el = sqrt(e2[l * st]), g = (d[(l + 1) * st] - d[l * st]) / (2.0 * el), r = sqrt(g * g + 1.0);
		double shift = d[l * st] - el / (g + (g >= 0 ? r : -r));
		double c = 1.0, s = 0.0, gam = d[m * st] - shift, p = gam * gam;
		for (int i = m - 1; i >= l; i--) { /* c, s: squared cosine and sine of the rotation */
			double b2 = e2[i * st], sum = p + b2, c_prev = c, gam_prev = gam, di = d[i * st];
			if (i != m - 1)
				e2[(i + 1) * st] = s * sum;
			c = p / sum, s = b2 / sum;
			gam = c * (di - shift) - s * gam_prev;
			d[(i + 1) * st] = gam_prev + (di - gam);
			p = c != 0.0 ? gam * gam / c : c_prev * b2;
		}
		e2[l * st] = s * p;
		d[l * st] = shift + gam;
	}
	return 0;
}

/* A start vector for index j: pseudo-random, positive, different for every (i, j). */
R5_HD double r5_eig_start(int i, int j)
{
	unsigned h = (unsigned)(i + 1) * 2654435761u ^ (unsigned)(j + 7) * 2246822519u;
	h ^= h >> 15;
	h *= 2654435761u;
	h ^= h >> 13;
	return 0.5 + (double)(h >> 8) / 16777216.0;
}

/* Step 3: eigenvector x of the tridiagonal (d, e) for eigenvalue lam, orthogonalised against
 * prev[0 .. n_prev-1] (columns of length n, stride n), index j picks the start vector. work:
 * 6 n doubles (U has two super-diagonals; the row interchanges are kept in sw). */
R5_HD void r5_eig_inverse_iteration(int n, const double *d, const double *e, double lam, double tnorm, int j,
				    const double *prev, int n_prev, double *x, double *work, long st)
{
	double *u0 = work, *u1 = work + n * st, *u2 = work + 2 * n * st, *lw = work + 3 * n * st;
	double *y = work + 4 * n * st, *sw = work + 5 * n * st;
	double tiny = 1e-14 * tnorm, p0 = d[0] - lam, p1 = n > 1 ? e[0] : 0, p2 = 0;
	for (int i = 0; i + 1 < n; i++) {
		double r0 = e[i * st], r1 = d[(i + 1) * st] - lam, r2 = i + 2 < n ? e[(i + 1) * st] : 0;
		double q0, q1, q2, o1, o2, li;
		int swap = fabs(r0) > fabs(p0);
		if (swap)
			q0 = r0, q1 = r1, q2 = r2, o1 = p1, o2 = p2, li = p0;
		else
			q0 = p0, q1 = p1, q2 = p2, o1 = r1, o2 = r2, li = r0;
		if (fabs(q0) < tiny)
			q0 = q0 < 0 ? -tiny : tiny;
		li /= q0;
		sw[i * st] = swap, lw[i * st] = li;
		u0[i * st] = q0, u1[i * st] = q1, u2[i * st] = q2;
		p0 = o1 - li * q1, p1 = o2 - li * q2, p2 = 0;
	}
	u0[(n - 1) * st] = fabs(p0) < tiny ? (p0 < 0 ? -tiny : tiny) : p0;
	for (int i = 0; i < n; i++)
		x[i * st] = r5_eig_start(i, j);
	for (int iter = 0; iter < 3; iter++) {
		double c = x[0];
		for (int i = 0; i + 1 < n; i++) { /* forward: L y = P x */
			double o = x[(i + 1) * st];
			int swap = sw[i * st] != 0.0;
			y[i * st] = swap ? o : c;
			c = (swap ? c : o) - lw[i * st] * y[i * st];
		}
		y[(n - 1) * st] = c;
		for (int i = n - 1; i >= 0; i--) { /* back: U x = y */
			double v = y[i * st];
			if (i + 1 < n)
				v -= u1[i * st] * x[(i + 1) * st];
			if (i + 2 < n)
				v -= u2[i * st] * x[(i + 2) * st];
			x[i * st] = v / u0[i * st];
		}
		for (int pass = 0; pass < 2; pass++) /* twice: one Gram-Schmidt pass can leave 1e-8 */
			for (int q = 0; q < n_prev; q++) {
				const double *pq = prev + (long)q * n * st;
				double dot = 0;
				for (int i = 0; i < n; i++)
					dot += pq[i * st] * x[i * st];
				for (int i = 0; i < n; i++)
					x[i * st] -= dot * pq[i * st];
			}
		double norm = 0;
		for (int i = 0; i < n; i++)
			norm += x[i * st] * x[i * st];
		norm = norm > 0 ? 1.0 / sqrt(norm) : 0;
		for (int i = 0; i < n; i++)
			x[i * st] *= norm;
	}
}

/* Step 4 for one vector: v = Q D z (vr, vi), the phase of v_0 removed, into column j of a. */
R5_HD void r5_eig_back_transform(int n, int j, const double *ar, const double *ai, const double *phr,
				 const double *phi, const double *z, double *vr, double *vi, r5_cf *a, long st)
{
	for (int i = 0; i < n; i++)
		vr[i * st] = phr[i * st] * z[i * st], vi[i * st] = phi[i * st] * z[i * st];
	for (int k = n - 3; k >= 0; k--) { /* H_k = I - u u^H, u in column k below the diagonal */
		long c0 = (long)k * n + k + 1;
		int m = n - k - 1;
		double dr = 0, di = 0; /* u^H v */
		for (int i = 0; i < m; i++) {
			double ur = ar[(c0 + i) * st], ui = ai[(c0 + i) * st], xr = vr[(k + 1 + i) * st], xi = vi[(k + 1 + i) * st];
			dr += ur * xr + ui * xi, di += ur * xi - ui * xr;
		}
		for (int i = 0; i < m; i++) {
			double ur = ar[(c0 + i) * st], ui = ai[(c0 + i) * st];
			vr[(k + 1 + i) * st] -= ur * dr - ui * di, vi[(k + 1 + i) * st] -= ur * di + ui * dr;
		}
	}
	double mag = sqrt(vr[0] * vr[0] + vi[0] * vi[0]);
	double cr = mag > 0 ? vr[0] / mag : 1.0, ci = mag > 0 ? -vi[0] / mag : 0.0; /* conj(v_0) / |v_0| */
	for (int i = 0; i < n; i++) {
		double xr = vr[i * st], xi = vi[i * st];
		a[i + (long)j * n] = r5_cf_make((float)(xr * cr - xi * ci), i ? (float)(xr * ci + xi * cr) : 0.0f);
	}
}

R5_HD int r5_eig_herm_top(int n, int k, r5_cf *a, float *evals, double *scratch, long st)
{
	long nn = (long)n * n;
	double *ar = scratch, *ai = scratch + nn * st, *z = scratch + 2 * nn * st, *v = scratch + 3 * nn * st;
	double *d = v, *e = v + n * st, *w = v + 2 * n * st, *ew = v + 3 * n * st, *er = v + 4 * n * st;
	double *ei = v + 5 * n * st, *phr = v + 6 * n * st, *phi = v + 7 * n * st, *pr = v + 8 * n * st;
	double *pi = v + 9 * n * st, *work = v + 10 * n * st;
	for (int c = 0; c < n; c++) /* (a + a^H) / 2 */
		for (int r = 0; r < n; r++) {
			r5_cf x = a[r + (long)c * n], y = a[c + (long)r * n];
			ar[(r + (long)c * n) * st] = 0.5 * ((double)r5_cf_re(x) + (double)r5_cf_re(y));
			ai[(r + (long)c * n) * st] = 0.5 * ((double)r5_cf_im(x) - (double)r5_cf_im(y));
		}
	for (int j = 0; j + 2 < n; j++)
		r5_eig_householder(n, j, ar, ai, er, ei, pr, pi, st);
	if (n >= 2) {
		long s = (long)(n - 2) * n + n - 1;
		er[(n - 2) * st] = ar[s * st], ei[(n - 2) * st] = ai[s * st];
	}
	double tnorm = 0;
	phr[0] = 1, phi[0] = 0;
	for (int i = 0; i < n; i++) {
		d[i * st] = ar[(i + (long)i * n) * st];
		double xr = i + 1 < n ? er[i * st] : 0, xi = i + 1 < n ? ei[i * st] : 0, mag = sqrt(xr * xr + xi * xi);
		e[i * st] = mag;
		if (i + 1 < n) { /* D: ph_{i+1} = ph_i e_i / |e_i| makes T real */
			double cr = mag > 0 ? xr / mag : 1.0, ci = mag > 0 ? xi / mag : 0.0;
			phr[(i + 1) * st] = phr[i * st] * cr - phi[i * st] * ci;
			phi[(i + 1) * st] = phr[i * st] * ci + phi[i * st] * cr;
		}
		w[i * st] = d[i * st], ew[i * st] = mag * mag;
	}
	for (int i = 0; i < n; i++) {
		double row = fabs(d[i * st]) + e[i * st] + (i > 0 ? e[(i - 1) * st] : 0);
		tnorm = row > tnorm ? row : tnorm;
	}
	tnorm = tnorm > 0 ? tnorm : 1;
	if (r5_eig_tridiag_ql(n, w, ew, st))
		return 1;
	for (int i = 1; i < n; i++) { /* insertion sort, descending */
		double x = w[i * st];
		int j = i;
		for (; j > 0 && w[(j - 1) * st] < x; j--)
			w[j * st] = w[(j - 1) * st];
		w[j * st] = x;
	}
	int first = 0; /* first vector of the current cluster */
	for (int j = 0; j < k; j++) {
		if (j > 0 && w[(j - 1) * st] - w[j * st] > 1e-3 * tnorm)
			first = j;
		r5_eig_inverse_iteration(n, d, e, w[j * st], tnorm, j, z + (long)first * n * st, j - first,
					 z + (long)j * n * st, work, st);
	}
	for (int j = 0; j < k; j++)
		r5_eig_back_transform(n, j, ar, ai, phr, phi, z + (long)j * n * st, pr, pi, a, st);
	for (int i = 0; i < n; i++)
		evals[i] = (float)w[i * st];
	return 0;
}

#endif
