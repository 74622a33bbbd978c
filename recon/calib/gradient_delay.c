/* RING gradient-delay estimation of gradient_delay.h: per spoke its direction, spacing and the
 * position of its samples along it; each spoke's values on a coarse grid of positions near k = 0
 * (windowed-sinc interpolation); per pair the crossing by grid search and refinement; the 3
 * delays by least squares over all pairs. */
#include "gradient_delay.h"

#include <complex.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/hd.h"

const r5_gradient_delay_opts r5_gradient_delay_defaults = {.transverse = 0, .n_partners = 8, .search = 3.0};

#define HALF_TAPS 16     /* windowed sinc: samples each side */
#define WINDOW_BETA 6.0  /* exp(beta (sqrt(1 - (t/L)^2) - 1)) window */
#define COARSE_STEP 0.1  /* samples */
#define FINE_STEP 0.01
#define FINE_HALF 10     /* fine grid: +- 10 steps around the coarse minimum */

struct spoke {
	double u[2], dk, t0; /* direction, spacing, position of sample 0 (samples from k = 0) */
};

struct ring {
	const float complex *data; /* [n_read, n_spokes, coils] */
	long n_read, n_spokes, n_coils;
	struct spoke *spokes;
	long n_grid;
	float complex *coarse; /* [n_spokes][n_grid][coils] */
};

static double interp_weight(double t)
{
	if (fabs(t) >= HALF_TAPS)
		return 0.0;
	double q = t / HALF_TAPS, win = exp(WINDOW_BETA * (sqrt(1.0 - q * q) - 1.0));
	return fabs(t) < 1e-12 ? win : win * sin(R5_PI * t) / (R5_PI * t);
}

/* out[c] = spoke s's data at position t (samples from k = 0 along u) */
static void spoke_value(const struct ring *r, long s, double t, float complex *out)
{
	double m = t - r->spokes[s].t0; /* fractional sample index */
	long m0 = (long)floor(m) - HALF_TAPS + 1, m1 = (long)floor(m) + HALF_TAPS;
	for (long c = 0; c < r->n_coils; c++)
		out[c] = 0.0f;
	for (long i = m0 < 0 ? 0 : m0; i <= m1 && i < r->n_read; i++) {
		float w = (float)interp_weight(m - (double)i);
		const float complex *y = r->data + i + r->n_read * s;
		for (long c = 0; c < r->n_coils; c++)
			out[c] += w * y[c * r->n_read * r->n_spokes];
	}
}

static r5_status spokes_geometry(struct ring *r, const float *coords)
{
	for (long s = 0; s < r->n_spokes; s++) {
		const float *k = coords + 3 * r->n_read * s, *last = k + 3 * (r->n_read - 1);
		double d0 = (double)last[0] - k[0], d1 = (double)last[1] - k[1], len = hypot(d0, d1);
		if (!(len > 0.0) || !isfinite(len))
			return r5_set_error(R5_EINVAL, "RING gradient delay: spoke %ld has no extent in (k0, k1)", s);
		struct spoke *p = &r->spokes[s];
		p->u[0] = d0 / len, p->u[1] = d1 / len, p->dk = len / (double)(r->n_read - 1);
		p->t0 = ((double)k[0] * p->u[0] + (double)k[1] * p->u[1]) / p->dk;
		/* a spoke must pass near k = 0: distance of the line from the origin under a sample */
		double off = fabs((double)k[0] * p->u[1] - (double)k[1] * p->u[0]) / p->dk;
		if (off > 0.5 || p->t0 > -1.0 || p->t0 + (double)(r->n_read - 1) < 1.0)
			return r5_set_error(R5_EINVAL, "RING gradient delay: spoke %ld does not pass through k = 0 (radial "
					    "spokes only)", s);
	}
	return R5_OK;
}

static double pair_cost(long C, const float complex *yi, const float complex *yj)
{
	double e = 0.0;
	for (long c = 0; c < C; c++) {
		float complex d = yi[c] - yj[c];
		e += (double)crealf(d) * crealf(d) + (double)cimagf(d) * cimagf(d);
	}
	return e;
}

/* vertex of the parabola through (-h, em), (0, e0), (h, ep), clamped to [-h, h] */
static double parabola(double em, double e0, double ep, double h)
{
	double den = em - 2.0 * e0 + ep;
	if (!(den > 0.0))
		return 0.0;
	double x = 0.5 * h * (em - ep) / den;
	return x < -h ? -h : x > h ? h : x;
}

/* the fine grid around (a0, b0), then a parabola per axis: the refined crossing and its cost */
static double refine(const struct ring *r, long i, long j, double a0, double b0, float complex *scratch, double *a,
		     double *b)
{
	enum { F = 2 * FINE_HALF + 1 };
	long C = r->n_coils, best_p = 0, best_q = 0;
	float complex *fi = scratch, *fj = scratch + F * C;
	for (long p = 0; p < F; p++) {
		spoke_value(r, i, a0 + FINE_STEP * (p - FINE_HALF), fi + C * p);
		spoke_value(r, j, b0 + FINE_STEP * (p - FINE_HALF), fj + C * p);
	}
	double best = INFINITY;
	for (long p = 0; p < F; p++)
		for (long q = 0; q < F; q++) {
			double e = pair_cost(C, fi + C * p, fj + C * q);
			if (e < best)
				best = e, best_p = p, best_q = q;
		}
	double da = 0.0, db = 0.0;
	if (best_p > 0 && best_p < F - 1)
		da = parabola(pair_cost(C, fi + C * (best_p - 1), fj + C * best_q), best,
			      pair_cost(C, fi + C * (best_p + 1), fj + C * best_q), FINE_STEP);
	if (best_q > 0 && best_q < F - 1)
		db = parabola(pair_cost(C, fi + C * best_p, fj + C * (best_q - 1)), best,
			      pair_cost(C, fi + C * best_p, fj + C * (best_q + 1)), FINE_STEP);
	*a = a0 + FINE_STEP * (best_p - FINE_HALF) + da;
	*b = b0 + FINE_STEP * (best_q - FINE_HALF) + db;
	return best;
}

#define CANDIDATES 4 /* coarse local minima refined per pair */

/* the crossing (a, b) of spokes i and j: the coarse grid's lowest local minima, each refined,
 * the lowest refined one kept (a coarse cell 0.05 samples off the true crossing can cost more
 * than a near-coincidence elsewhere); scratch: 2 (2F+1) C */
static void pair_crossing(const struct ring *r, long i, long j, double search, float complex *scratch, double *a,
			  double *b)
{
	long G = r->n_grid, C = r->n_coils;
	double cost[CANDIDATES];
	long cell[CANDIDATES][2];
	for (int c = 0; c < CANDIDATES; c++)
		cost[c] = INFINITY, cell[c][0] = cell[c][1] = G / 2;
	const float complex *ci = r->coarse + G * C * i, *cj = r->coarse + G * C * j;
	for (long p = 0; p < G; p++)
		for (long q = 0; q < G; q++) {
			double e = pair_cost(C, ci + C * p, cj + C * q);
			if (!(e < cost[CANDIDATES - 1]))
				continue;
			int local = 1; /* no lower neighbour */
			for (long dp = -1; dp <= 1 && local; dp++)
				for (long dq = -1; dq <= 1 && local; dq++)
					if ((dp || dq) && p + dp >= 0 && p + dp < G && q + dq >= 0 && q + dq < G)
						local = pair_cost(C, ci + C * (p + dp), cj + C * (q + dq)) >= e;
			if (!local)
				continue;
			int k = CANDIDATES - 1;
			for (; k > 0 && cost[k - 1] > e; k--) {
				cost[k] = cost[k - 1];
				cell[k][0] = cell[k - 1][0], cell[k][1] = cell[k - 1][1];
			}
			cost[k] = e, cell[k][0] = p, cell[k][1] = q;
		}
	double best = INFINITY;
	*a = *b = 0.0;
	for (int c = 0; c < CANDIDATES; c++) {
		if (c > 0 && !isfinite(cost[c]))
			break;
		double ac, bc;
		double e = refine(r, i, j, -search + COARSE_STEP * cell[c][0], -search + COARSE_STEP * cell[c][1], scratch,
				  &ac, &bc);
		if (e < best)
			best = e, *a = ac, *b = bc;
	}
}

/* the pair's equations (rows of 3 coefficients for (Sx, Sy, Sxy) and a right-hand side) */
static int pair_rows(const struct spoke *si, const struct spoke *sj, double a, double b, int transverse,
		     double rows[2][4])
{
	if (!transverse) {
		const struct spoke *sp[2] = {si, sj};
		const double t[2] = {a, b};
		for (int k = 0; k < 2; k++) {
			double u0 = sp[k]->u[0], u1 = sp[k]->u[1];
			rows[k][0] = -u1 * u1, rows[k][1] = -u0 * u0, rows[k][2] = -2.0 * u0 * u1, rows[k][3] = t[k];
		}
		return 2;
	}
	double v0 = sj->u[0] - si->u[0], v1 = sj->u[1] - si->u[1];
	rows[0][0] = 0.0, rows[0][1] = v0, rows[0][2] = v1, rows[0][3] = a * si->u[0] - b * sj->u[0];
	rows[1][0] = v1, rows[1][1] = 0.0, rows[1][2] = v0, rows[1][3] = a * si->u[1] - b * sj->u[1];
	return 2;
}

static int by_cosine(const void *x, const void *y)
{
	const double *p = x, *q = y;
	return p[0] < q[0] ? -1 : p[0] > q[0];
}

/* solves the 3 x 3 normal equations by Cramer's rule; 0 when (near) singular */
static int solve3(double A[3][3], const double y[3], double x[3])
{
	double det = A[0][0] * (A[1][1] * A[2][2] - A[1][2] * A[2][1]) - A[0][1] * (A[1][0] * A[2][2] - A[1][2] * A[2][0]) +
		     A[0][2] * (A[1][0] * A[2][1] - A[1][1] * A[2][0]);
	double scale = fabs(A[0][0]) + fabs(A[1][1]) + fabs(A[2][2]);
	if (!(fabs(det) > 1e-9 * scale * scale * scale))
		return 0;
	for (int k = 0; k < 3; k++) {
		double M[3][3];
		memcpy(M, A, sizeof M);
		for (int r = 0; r < 3; r++)
			M[r][k] = y[r];
		x[k] = (M[0][0] * (M[1][1] * M[2][2] - M[1][2] * M[2][1]) - M[0][1] * (M[1][0] * M[2][2] - M[1][2] * M[2][0]) +
			M[0][2] * (M[1][0] * M[2][1] - M[1][1] * M[2][0])) / det;
	}
	return 1;
}

static r5_status check_inputs(const r5_array *samples, const float *coords, long n_read, long n_spokes,
			      const r5_gradient_delay_opts *o)
{
	if (!samples || !coords)
		return r5_set_error(R5_EINVAL, "RING gradient delay: no samples or no trajectory");
	int ok = samples->dims[0] == 1 && samples->dims[1] == n_read && samples->dims[2] == n_spokes;
	for (int d = 4; d < R5_DIMS; d++)
		ok = ok && samples->dims[d] == 1;
	if (!ok)
		return r5_set_error(R5_EINVAL, "RING gradient delay: samples must be [1, %ld, %ld, coils]", n_read, n_spokes);
	if (samples->where != R5_HOST || !r5_array_is_contiguous(samples))
		return r5_set_error(R5_EINVAL, "RING gradient delay: the samples must be contiguous host memory");
	if (n_read < 8 || n_spokes < 3)
		return r5_set_error(R5_EINVAL, "RING gradient delay: %ld samples x %ld spokes (need >= 8 x >= 3)", n_read,
				    n_spokes);
	if (!(o->search > 0.0 && o->search <= 16.0) || o->n_partners < 0)
		return r5_set_error(R5_EINVAL, "RING gradient delay: search %g samples (0, 16], partners %d (>= 0)",
				    o->search, o->n_partners);
	return R5_OK;
}

/* appends spoke i's pairs' equations to rows (2 rows of 4 per pair: coefficients, right side) */
static void add_pairs(const struct ring *r, long i, const r5_gradient_delay_opts *o, double *cand,
		      float complex *scratch, double (*rows)[4], long *n_rows)
{
	long n_cand = 0;
	const struct spoke *si = &r->spokes[i];
	for (long j = 0; j < r->n_spokes; j++) {
		double cosine = fabs(si->u[0] * r->spokes[j].u[0] + si->u[1] * r->spokes[j].u[1]);
		if (j != i && cosine <= 0.7072) /* lines 45..135 degrees apart */
			cand[2 * n_cand] = cosine, cand[2 * n_cand + 1] = (double)j, n_cand++;
	}
	qsort(cand, (size_t)n_cand, 2 * sizeof(double), by_cosine);
	long take = o->n_partners > 0 && o->n_partners < n_cand ? o->n_partners : n_cand;
	for (long p = 0; p < take; p++) {
		long j = (long)cand[2 * p + 1];
		double a, b;
		pair_crossing(r, i, j, o->search, scratch, &a, &b);
		*n_rows += pair_rows(si, &r->spokes[j], a, b, o->transverse, rows + *n_rows);
	}
}

static int by_value(const void *x, const void *y)
{
	double p = *(const double *)x, q = *(const double *)y;
	return p < q ? -1 : p > q;
}

/* least squares over the pairs whose rows (2 per pair) are kept; 0 when singular */
static int fit(const double (*rows)[4], const unsigned char *keep, long n_rows, double S[3])
{
	double AtA[3][3] = {{0}}, Atb[3] = {0};
	long used = 0;
	for (long k = 0; k < n_rows; k++) {
		if (!keep[k / 2])
			continue;
		used++;
		for (int x = 0; x < 3; x++) {
			for (int y = 0; y < 3; y++)
				AtA[x][y] += rows[k][x] * rows[k][y];
			Atb[x] += rows[k][x] * rows[k][3];
		}
	}
	return used >= 3 && solve3(AtA, Atb, S);
}

static double row_error(const double row[4], const double S[3])
{
	return fabs(row[0] * S[0] + row[1] * S[1] + row[2] * S[2] - row[3]);
}

/* Fits, then twice drops the pairs whose worse equation misses the fit by more than
 * max(4 x the median pair's miss, 0.02 samples) and refits (a pair whose crossing was found at a
 * spurious match). *rms: over the kept pairs. scratch: n_rows / 2 doubles. */
static int robust_fit(const double (*rows)[4], long n_rows, unsigned char *keep, double *scratch, double S[3],
		      double *rms)
{
	long n_pairs = n_rows / 2;
	memset(keep, 1, (size_t)n_pairs);
	if (!fit(rows, keep, n_rows, S))
		return 0;
	for (int round = 0; round < 2; round++) {
		for (long p = 0; p < n_pairs; p++)
			scratch[p] = fmax(row_error(rows[2 * p], S), row_error(rows[2 * p + 1], S));
		double *sorted = scratch + n_pairs;
		memcpy(sorted, scratch, sizeof(double) * (size_t)n_pairs);
		qsort(sorted, (size_t)n_pairs, sizeof(double), by_value);
		double limit = fmax(4.0 * sorted[n_pairs / 2], 0.02);
		for (long p = 0; p < n_pairs; p++)
			keep[p] = scratch[p] <= limit;
		if (!fit(rows, keep, n_rows, S))
			return 0;
	}
	double ss = 0.0;
	long used = 0;
	for (long k = 0; k < n_rows; k++)
		if (keep[k / 2])
			ss += pow(row_error(rows[k], S), 2), used++;
	*rms = sqrt(ss / (double)used);
	return 1;
}

r5_status r5_gradient_delay_ring(const r5_array *samples, const float *coords, long n_read, long n_spokes,
				 const r5_gradient_delay_opts *opts, const r5_progress *progress, float delay[3],
				 float *residual)
{
	const r5_gradient_delay_opts *o = opts ? opts : &r5_gradient_delay_defaults;
	R5_TRY(check_inputs(samples, coords, n_read, n_spokes, o));
	struct ring r = {.data = samples->data, .n_read = n_read, .n_spokes = n_spokes, .n_coils = samples->dims[3]};
	r.n_grid = 2 * (long)floor(o->search / COARSE_STEP + 0.5) + 1;
	long C = r.n_coils, max_rows = 2 * n_spokes * (o->n_partners > 0 ? o->n_partners : n_spokes);
	r.spokes = malloc(sizeof *r.spokes * (size_t)n_spokes);
	r.coarse = malloc(sizeof(float complex) * (size_t)(n_spokes * r.n_grid * C));
	double *cand = malloc(2 * sizeof(double) * (size_t)n_spokes);
	float complex *scratch = malloc(sizeof(float complex) * (size_t)(2 * (2 * FINE_HALF + 1) * C));
	double(*rows)[4] = malloc(sizeof *rows * (size_t)max_rows);
	double *misses = malloc(sizeof(double) * (size_t)max_rows);
	unsigned char *keep = malloc((size_t)max_rows / 2 + 1);
	r5_status s = r.spokes && r.coarse && cand && scratch && rows && misses && keep
			      ? spokes_geometry(&r, coords)
			      : r5_set_error(R5_ENOMEM, "RING gradient delay: tables for %ld spokes x %ld coils", n_spokes, C);
	double search = COARSE_STEP * (double)(r.n_grid / 2);
	for (long sp = 0; s == R5_OK && sp < n_spokes; sp++)
		for (long g = 0; g < r.n_grid; g++)
			spoke_value(&r, sp, -search + COARSE_STEP * g, r.coarse + C * (g + r.n_grid * sp));
	double S[3], rms = 0.0;
	long n_rows = 0;
	for (long i = 0; s == R5_OK && i < n_spokes; i++) {
		s = r5_progress_check(progress, "RING gradient delay", (double)i / n_spokes);
		if (s == R5_OK)
			add_pairs(&r, i, o, cand, scratch, rows, &n_rows);
	}
	if (s == R5_OK && (n_rows < 4 || !robust_fit((const double(*)[4])rows, n_rows, keep, misses, S, &rms)))
		s = r5_set_error(R5_EINVAL, "RING gradient delay: the %ld spokes' directions do not determine the 3 "
				 "delays (no pairs 45..135 degrees apart at enough angles)", n_spokes);
	if (s == R5_OK) {
		for (int x = 0; x < 3; x++)
			delay[x] = (float)S[x];
		if (residual)
			*residual = (float)rms;
	}
	free(r.spokes);
	free(r.coarse);
	free(cand);
	free(scratch);
	free(rows);
	free(misses);
	free(keep);
	return s;
}
