/* Readout regridding (readout_grid.h): G = F (P + lambda P^2) A^H from the sample positions, and
 * a small cache of position patterns. Everything in double precision; the dense solves are
 * recon/core/dense.h's Cholesky. */
#include "readout_grid.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/dense.h"
#include "../core/hd.h"

#define POWER_ITERATIONS 60 /* lambda_max to ~1e-3 is plenty: lambda only has to be small */

/* D(d) = sum_x exp(2 pi i d (x - v/2) / v) over the v voxels x = 0 .. v-1 (v/2 rounded down): the
 * inner product of two samples' rows of A (d their distance) and of a sample with a grid point.
 * v-periodic, in closed form sin(pi d) / sin(pi d / v), times exp(-i pi d / v) for even v, so
 * that nothing costs v. */
static double complex dirichlet(double d, long v)
{
	double r = d - (double)v * nearbyint(d / (double)v);
	if (r == 0.0)
		return (double)v;
	double a = R5_PI * r, ratio = sin(a) / sin(a / (double)v);
	return v % 2 ? ratio : cexp(-I * a / (double)v) * ratio;
}

/* The largest eigenvalue of the Hermitian positive semidefinite n x n matrix h (power iteration
 * from a fixed, generic start; deterministic). */
static double largest_eigenvalue(long n, const double complex *h, double complex *v, double complex *w)
{
	for (long i = 0; i < n; i++)
		v[i] = 1.0 + 0.37 * (double)i / (double)n + 0.11 * I * (double)(i % 7);
	double value = 0;
	for (int it = 0; it < POWER_ITERATIONS; it++) {
		double norm = 0;
		for (long i = 0; i < n; i++)
			norm += creal(v[i] * conj(v[i]));
		norm = sqrt(norm);
		if (!(norm > 0))
			return value;
		for (long i = 0; i < n; i++)
			v[i] /= norm;
		memset(w, 0, sizeof *w * (size_t)n);
		for (long c = 0; c < n; c++)
			for (long r = 0; r < n; r++)
				w[r] += h[r + n * c] * v[c];
		double rayleigh = 0;
		for (long i = 0; i < n; i++)
			rayleigh += creal(conj(v[i]) * w[i]);
		int settled = it > 4 && fabs(rayleigh - value) <= 1e-4 * rayleigh;
		value = rayleigh;
		if (settled)
			break;
		memcpy(v, w, sizeof *v * (size_t)n);
	}
	return value;
}

/* h = A A^H + lambda I (m x m) for samples k, h[j, l] = D(k_l - k_j). Returns lambda (relative
 * to the largest eigenvalue, which A^H A shares). */
static double gram_matrix(long v, long m, const double *k, double complex *h, double complex *scratch)
{
	for (long l = 0; l < m; l++)
		for (long j = 0; j <= l; j++) {
			h[j + m * l] = dirichlet(k[l] - k[j], v);
			h[l + m * j] = conj(h[j + m * l]);
		}
	double lambda = R5_READOUT_GRID_LAMBDA * largest_eigenvalue(m, h, scratch, scratch + m);
	if (!(lambda > 0))
		lambda = R5_READOUT_GRID_LAMBDA * (double)v; /* cannot happen for m >= 1; keeps h definite */
	for (long j = 0; j < m; j++)
		h[j + m * j] += lambda;
	return lambda;
}

/* Computed in the dual (sample) space: with Q = (A A^H + lambda I)^-1, (P + lambda P^2) A^H =
 * A^H (Q + lambda Q^2) (push-through), so G = B (Q + lambda Q^2) with B = F A^H, B[u, j] =
 * D(k_j - u) in closed form: an m x m Cholesky and 2 m^2 n for the solves, whatever v. */
r5_status r5_readout_grid_matrix(long n_grid, long n_voxels, long m, const double *k, double complex *g)
{
	long n = n_grid, v = n_voxels;
	if (n < 1 || v < n || m < 1)
		return r5_set_error(R5_EINVAL, "readout regridding: %ld grid points, %ld voxels, %ld samples (voxels >= grid "
				    "points >= 1)", n, v, m);
	for (long j = 0; j < m; j++)
		if (!isfinite(k[j]))
			return r5_set_error(R5_EINVAL, "readout regridding: sample %ld has position %g", j, k[j]);
	double complex *h = malloc(sizeof *h * (size_t)(m * m));
	double complex *z = malloc(sizeof *z * (size_t)(m * n));
	double complex *y = malloc(sizeof *y * (size_t)(m * n));
	double complex *scratch = malloc(sizeof *scratch * (size_t)(2 * m));
	r5_status s = h && z && y && scratch ? R5_OK
					     : r5_set_error(R5_ENOMEM, "readout regridding: %ld samples x %ld grid points", m, n);
	double lambda = 0;
	if (s == R5_OK) {
		lambda = gram_matrix(v, m, k, h, scratch);
		if (r5_dense_cholesky(m, h, 0.0, 0.0) >= 0)
			s = r5_set_error(R5_EINTERNAL, "readout regridding: A A^H + lambda I not positive definite "
						       "(%ld voxels, %ld samples)", v, m);
	}
	if (s == R5_OK) {
		/* G^H = (Q + lambda Q^2) B^H: z = Q B^H, y = Q z, z += lambda y; B^H[j, u] = D(u - k_j) */
		for (long u = 0; u < n; u++)
			for (long j = 0; j < m; j++)
				z[j + m * u] = dirichlet((double)(u - n / 2) - k[j], v);
		r5_dense_cholesky_solve(m, h, n, z);
		memcpy(y, z, sizeof *y * (size_t)(m * n));
		r5_dense_cholesky_solve(m, h, n, y);
		for (long u = 0; u < n; u++)
			for (long j = 0; j < m; j++)
				g[u + n * j] = conj(z[j + m * u] + lambda * y[j + m * u]);
	}
	free(h);
	free(z);
	free(y);
	free(scratch);
	return s;
}

typedef struct pattern {
	long m;           /* 0: empty slot */
	double *k;        /* m positions */
	double complex *g; /* n_grid x m */
	float *gf;        /* the same in float, split per column: real parts then imaginary (apply) */
	unsigned long used;
} pattern;

struct r5_readout_grid {
	long n_grid, n_voxels;
	pattern patterns[R5_READOUT_GRID_PATTERNS];
	unsigned long clock;
	long computed;
};

r5_status r5_readout_grid_create(long n_grid, long n_voxels, r5_readout_grid **out)
{
	*out = NULL;
	if (n_grid < 1 || n_voxels < n_grid)
		return r5_set_error(R5_EINVAL, "readout regridding: a grid of %ld points over %ld voxels", n_grid, n_voxels);
	r5_readout_grid *plan = calloc(1, sizeof *plan);
	if (!plan)
		return r5_set_error(R5_ENOMEM, "readout regridding plan");
	plan->n_grid = n_grid;
	plan->n_voxels = n_voxels;
	*out = plan;
	return R5_OK;
}

void r5_readout_grid_destroy(r5_readout_grid *plan)
{
	if (!plan)
		return;
	for (int p = 0; p < R5_READOUT_GRID_PATTERNS; p++) {
		free(plan->patterns[p].k);
		free(plan->patterns[p].g);
		free(plan->patterns[p].gf);
	}
	free(plan);
}

static int same_positions(const pattern *p, long m, const double *k)
{
	if (p->m != m)
		return 0;
	for (long j = 0; j < m; j++)
		if (!(fabs(p->k[j] - k[j]) <= R5_READOUT_GRID_SAME))
			return 0;
	return 1;
}

/* The kept pattern for these positions, computed into the slot used longest ago when none. */
static r5_status pattern_for(r5_readout_grid *plan, long m, const double *k, const pattern **out)
{
	*out = NULL;
	int oldest = 0;
	for (int p = 0; p < R5_READOUT_GRID_PATTERNS; p++) {
		pattern *pat = &plan->patterns[p];
		if (same_positions(pat, m, k)) {
			pat->used = ++plan->clock;
			*out = pat;
			return R5_OK;
		}
		if (pat->used < plan->patterns[oldest].used)
			oldest = p;
	}
	/* a new pattern: computed into fresh buffers, so that a failure leaves the slot as it was */
	double *kk = m > 0 ? malloc(sizeof *kk * (size_t)m) : NULL;
	double complex *gg = m > 0 ? malloc(sizeof *gg * (size_t)(plan->n_grid * m)) : NULL;
	float *gf = m > 0 ? malloc(sizeof *gf * (size_t)(2 * plan->n_grid * m)) : NULL;
	if (m > 0 && (!kk || !gg || !gf)) {
		free(kk);
		free(gg);
		free(gf);
		return r5_set_error(R5_ENOMEM, "readout regridding: %ld x %ld matrix", plan->n_grid, m);
	}
	r5_status s = r5_readout_grid_matrix(plan->n_grid, plan->n_voxels, m, k, gg);
	if (s != R5_OK) {
		free(kk);
		free(gg);
		free(gf);
		return s;
	}
	for (long j = 0, n = plan->n_grid; j < m; j++)
		for (long i = 0; i < n; i++)
			gf[2 * n * j + i] = (float)creal(gg[n * j + i]), gf[2 * n * j + n + i] = (float)cimag(gg[n * j + i]);
	memcpy(kk, k, sizeof *kk * (size_t)m);
	pattern *slot = &plan->patterns[oldest];
	free(slot->k);
	free(slot->g);
	free(slot->gf);
	slot->m = m;
	slot->k = kk;
	slot->g = gg;
	slot->gf = gf;
	slot->used = ++plan->clock;
	plan->computed++;
	*out = slot;
	return R5_OK;
}

r5_status r5_readout_grid_get(r5_readout_grid *plan, long m, const double *k, const double complex **g)
{
	const pattern *pat = NULL;
	*g = NULL;
	R5_TRY(pattern_for(plan, m, k, &pat));
	*g = pat->g;
	return R5_OK;
}

r5_status r5_readout_grid_apply(r5_readout_grid *plan, long m, const double *k, long n_lines, const float complex *in,
				long in_stride, float complex *out, long out_stride)
{
	const pattern *pat = NULL;
	R5_TRY(pattern_for(plan, m, k, &pat));
	const float *gf = pat->gf;
	long n = plan->n_grid;
	/* every line's sums at once, so that G is read once per acquisition and not once per coil
	 * (at 256 x 340 it is more than a core's L2), in float split into real and imaginary parts
	 * so the loop is SIMD, with real arithmetic (C's complex multiply checks for infinities):
	 * 4.5 -> 0.98 ms per 32-coil acquisition at 256 x 340 (readout_grid.h) */
	float *re = calloc((size_t)(2 * n * n_lines), sizeof *re);
	if (!re)
		return r5_set_error(R5_ENOMEM, "readout regridding: %ld lines of %ld", n_lines, n);
	float *im = re + n * n_lines;
	for (long j = 0; j < m; j++) { /* column by column: g is column-major */
		const float *gr = gf + 2 * n * j, *gi = gr + n;
		for (long c = 0; c < n_lines; c++) {
			float vr = crealf(in[c * in_stride + j]), vi = cimagf(in[c * in_stride + j]);
			float *sr = re + c * n, *si = im + c * n;
			for (long i = 0; i < n; i++) {
				sr[i] += gr[i] * vr - gi[i] * vi;
				si[i] += gr[i] * vi + gi[i] * vr;
			}
		}
	}
	for (long c = 0; c < n_lines; c++)
		for (long i = 0; i < n; i++)
			out[c * out_stride + i] = re[c * n + i] + I * im[c * n + i];
	free(re);
	return R5_OK;
}

long r5_readout_grid_bytes(const r5_readout_grid *plan)
{
	if (!plan)
		return 0;
	long bytes = (long)sizeof *plan;
	for (int p = 0; p < R5_READOUT_GRID_PATTERNS; p++)
		bytes += plan->patterns[p].m * ((long)sizeof(double) + plan->n_grid * (long)(sizeof(double complex) + 2 * sizeof(float)));
	return bytes;
}

long r5_readout_grid_computed(const r5_readout_grid *plan) { return plan ? plan->computed : 0; }
