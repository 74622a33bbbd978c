/* The NUFFT plan and operator of nufft.h: plan geometry and de-apodisation (plan_make), binning
 * and the per-point split into first cell and offset (set_points), the coil-batched spreader
 * and interpolator (OpenMP on the host, per-element math from recon/core/nufft_math.h), the
 * execution around the context's raw FFT, the Toeplitz kernel and its application, and the
 * linop wrapper. Layouts: image [N0, N1, N2, C] (C coils, x fastest); samples [n_points, C];
 * grid [C, M0, M1, M2], coil fastest, frequency u_d at cell u_d + M_d/2; the oversampled image
 * after the grid's FFT puts image position x at cell x mod M (no shifts anywhere). */
#include "nufft.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../core/fft.h"
#include "../core/threads.h"

const r5_nufft_opts r5_nufft_defaults = {.oversampling = 2.0, .width = 0, .tolerance = 1e-5,
					  .method = R5_NUFFT_METHOD_AUTO};

#define PSF_WIDTH 8 /* the Toeplitz kernel's plan: at the fp32 floor (5e-7, bench_nufft) */
#define TOEP_GROUP_BYTES (256L << 20)

struct r5_nufft_plan {
	int D, w;
	long N[3], M[3], C;
	double sigma, beta;
	int n_coef;
	float coef[R5_NUFFT_MAX_COEFS][R5_NUFFT_MAX_WIDTH]; /* the taps' polynomials (nufft_math.h) */
	float *corr[3]; /* per dimension: (-1)^x / phi_hat(x / M), dimension 0 also times N^-1/2 */
	/* points, in bin order */
	long n_points;
	int32_t *order;  /* sorted position -> index in the samples */
	int32_t *rank;   /* index in the samples -> sorted position */
	int32_t *start;  /* D per point: first cell */
	float *offset;   /* D per point: t - first cell */
	long bin[3], nb[3];
	long *slow_first; /* nb[D-1] + 1: first sorted point of each slow-dimension bin */
	r5_array *grid;   /* [C, M0, M1, M2] at the first execution */
	r5_array *sorted; /* [C, n_points]: the samples in sorted order, coil fastest */
	/* Toeplitz */
	r5_array *psf_hat;  /* [2N0, 2N1, 2N2] FFT of the point-spread function, over 2^D N */
	int has_kernel;     /* psf_hat holds the kernel of the points set now (set points clears it) */
	r5_array *toep;      /* [2N0, 2N1, 2N2, group]; 2D host: the half grid [2N0, N1, 1, group] */
	r5_array *toep_cols; /* 2D host: a block of columns [B, 2N1] (toep_normal_2d) */
	/* the PSF's own plan (2N image, PSF_WIDTH), made at the first r5_nufft_toeplitz and kept with
	 * psf_hat across new points (a frame loop that sets points and makes the kernel every frame
	 * fits its kernel once); its (4N)^D grid is freed after each kernel, as a fresh plan's was,
	 * so that it never sits beside the normal's 2N grids (in 3D it is the largest array) */
	r5_nufft_plan *psf_plan;
	long toep_group;
	/* the tile method (a device context, or R5_NUFFT_METHOD_TILES): the back end's nufft_* slots
	 * on tables held where the context computes (the host tables above stay: the Toeplitz
	 * kernel's points come from them) */
	int method, tiles;
	r5_residency where;
	struct r5_nufft_geom geom;
	r5_array *tile_corr;   /* N0 + N1 + N2 floats, packed (nufft_math.h) */
	r5_array *tile_tables; /* order, start, offset, sub_first, sub_bin (tiles_points) */
	struct r5_nufft_points pts;
};

/* The tile method (the block "--- the tile method ---" below): the back end's nufft_* slots. */
static long tile_bin(int dims, int d);
static r5_status tiles_plan(r5_ctx *ctx, r5_nufft_plan *p);
static r5_status tiles_points(r5_ctx *ctx, r5_nufft_plan *p, const long *bin_first);
static r5_status tiles_forward(r5_ctx *ctx, r5_nufft_plan *p, r5_array *samples, const r5_array *image);
static r5_status tiles_adjoint(r5_ctx *ctx, r5_nufft_plan *p, r5_array *image, const r5_array *samples);
static r5_status tiles_toeplitz_group(r5_ctx *ctx, r5_nufft_plan *p, r5_array *g, float complex *out,
				      const float complex *in, long coils);
static r5_status tiles_spread_grid(r5_ctx *ctx, r5_nufft_plan *p, r5_array *grid, const r5_array *samples);
static r5_status tiles_interp_grid(r5_ctx *ctx, r5_nufft_plan *p, r5_array *samples, const r5_array *grid);

/* smallest even n >= lo whose only prime factors are 2, 3, 5 */
static long next235even(long lo)
{
	for (long n = lo + (lo & 1);; n += 2) {
		long m = n;
		while (m % 2 == 0)
			m /= 2;
		while (m % 3 == 0)
			m /= 3;
		while (m % 5 == 0)
			m /= 5;
		if (m == 1)
			return n;
	}
}

/* Gauss-Legendre nodes and weights on [a, b] (Newton on P_n from the Chebyshev guesses). */
static void gauss_legendre(int n, double a, double b, double *x, double *wq)
{
	for (int i = 0; i < n; i++) {
		double z = cos(R5_PI * (i + 0.75) / (n + 0.5)), dp = 1.0;
		for (int it = 0; it < 100; it++) {
			double p0 = 1.0, p1 = z;
			for (int k = 2; k <= n; k++) {
				double p2 = ((2.0 * k - 1.0) * z * p1 - (k - 1.0) * p0) / k;
				p0 = p1;
				p1 = p2;
			}
			if (n == 1)
				p1 = z, p0 = 1.0;
			dp = n * (z * p1 - p0) / (z * z - 1.0);
			double dz = p1 / dp;
			z -= dz;
			if (fabs(dz) < 1e-16)
				break;
		}
		x[i] = 0.5 * (b - a) * z + 0.5 * (b + a);
		wq[i] = (b - a) / ((1.0 - z * z) * dp * dp);
	}
}

/* The taps' polynomials: tap i's weight phi(d0 - i) over d0 in [w/2 - 1, w/2] as a polynomial
 * in s = 2 d0 - (w - 1) in [-1, 1] of degree w + 2 (higher changes nothing at fp32: bench_nufft),
 * interpolated at Chebyshev nodes (Vandermonde solve in double, partial pivoting). */
static void fit_kernel(r5_nufft_plan *p)
{
	enum { K = R5_NUFFT_MAX_COEFS };
	int n = p->w + 3 < K ? p->w + 3 : K;
	double a[K][K + 1], inv_half = 2.0 / p->w;
	p->n_coef = n;
	for (int i = 0; i < p->w; i++) {
		for (int r = 0; r < n; r++) {
			double s = cos(R5_PI * (r + 0.5) / n), d0 = 0.5 * (s + (p->w - 1)), pw = 1.0;
			for (int k = n - 1; k >= 0; k--, pw *= s)
				a[r][k] = pw; /* column k: s^(n - 1 - k) */
			a[r][n] = r5_nufft_kernel_d(d0 - i, p->beta, inv_half);
		}
		for (int c = 0; c < n; c++) {
			int best = c;
			for (int r = c + 1; r < n; r++)
				if (fabs(a[r][c]) > fabs(a[best][c]))
					best = r;
			for (int k = 0; k <= n; k++) {
				double t = a[c][k];
				a[c][k] = a[best][k];
				a[best][k] = t;
			}
			for (int r = 0; r < n; r++)
				if (r != c) {
					double f = a[r][c] / a[c][c];
					for (int k = c; k <= n; k++)
						a[r][k] -= f * a[c][k];
				}
		}
		for (int k = 0; k < n; k++)
			p->coef[k][i] = (float)(a[k][n] / a[k][k]);
	}
}

static r5_status make_corrections(r5_nufft_plan *p)
{
	enum { MAX_NODES = 4 * R5_NUFFT_MAX_WIDTH + 40 };
	double x[MAX_NODES], wq[MAX_NODES];
	int n_nodes = 4 * p->w + 40;
	gauss_legendre(n_nodes, 0.0, 0.5 * p->w, x, wq);
	double pixels = 1.0;
	for (int d = 0; d < p->D; d++)
		pixels *= (double)p->N[d];
	for (int d = 0; d < p->D; d++) {
		p->corr[d] = malloc(sizeof(float) * (size_t)p->N[d]);
		if (!p->corr[d])
			return r5_set_error(R5_ENOMEM, "NUFFT plan: de-apodisation of %ld values", p->N[d]);
		for (long n = 0; n < p->N[d]; n++) {
			long xpos = n - p->N[d] / 2;
			double ft = r5_nufft_kernel_ft((double)xpos / (double)p->M[d], p->w, p->beta, n_nodes, x, wq);
			double c = (xpos % 2 ? -1.0 : 1.0) / ft;
			p->corr[d][n] = (float)(d == 0 ? c / sqrt(pixels) : c);
		}
	}
	return R5_OK;
}

void r5_nufft_plan_destroy(r5_nufft_plan *p)
{
	if (!p)
		return;
	for (int d = 0; d < 3; d++)
		free(p->corr[d]);
	free(p->order);
	free(p->rank);
	free(p->start);
	free(p->offset);
	free(p->slow_first);
	r5_array_free(p->grid);
	r5_array_free(p->sorted);
	r5_array_free(p->psf_hat);
	r5_array_free(p->toep);
	r5_array_free(p->toep_cols);
	r5_nufft_plan_destroy(p->psf_plan);
	r5_array_free(p->tile_corr);
	r5_array_free(p->tile_tables);
	free(p);
}

static r5_status check_opts(const r5_nufft_opts *o)
{
	if (!(o->oversampling >= 1.25 && o->oversampling <= 2.0))
		return r5_set_error(R5_EINVAL, "NUFFT plan: oversampling %g outside [1.25, 2]", o->oversampling);
	if (o->width != 0 && (o->width < 2 || o->width > R5_NUFFT_MAX_WIDTH))
		return r5_set_error(R5_EINVAL, "NUFFT plan: kernel width %d outside 2..%d (0: from the tolerance)",
				    o->width, R5_NUFFT_MAX_WIDTH);
	if (o->width == 0 && !(o->tolerance > 0.0 && o->tolerance < 1.0))
		return r5_set_error(R5_EINVAL, "NUFFT plan: tolerance %g outside (0, 1)", o->tolerance);
	if (o->method != R5_NUFFT_METHOD_AUTO && o->method != R5_NUFFT_METHOD_HOST && o->method != R5_NUFFT_METHOD_TILES)
		return r5_set_error(R5_EINVAL, "NUFFT plan: method %d (0 auto, 1 host, 2 tiles)", o->method);
	return R5_OK;
}

r5_status r5_nufft_plan_make(r5_ctx *ctx, const long image_dims[R5_DIMS], const r5_nufft_opts *opts,
			     r5_nufft_plan **out)
{
	char td[128];
	*out = NULL;
	if (!opts)
		opts = &r5_nufft_defaults;
	R5_TRY(check_opts(opts));
	if (r5_ctx_residency(ctx) != R5_HOST && opts->method == R5_NUFFT_METHOD_HOST)
		return r5_set_error(R5_ENOTSUP, "NUFFT plan: the host spreader runs on host memory, the %s back end "
				    "computes on a device (method auto or tiles)", r5_ctx_backend_name(ctx));
	r5_dims_format(td, sizeof td, image_dims);
	for (int d = 0; d < R5_DIMS; d++)
		if (image_dims[d] < 1 || (d > R5_DIM_COIL && image_dims[d] != 1))
			return r5_set_error(R5_EINVAL, "NUFFT plan: image dims %s: dimension %d is %ld (x, y, z, coil "
					    "only; one trajectory per plan)", td, d, image_dims[d]);
	if (image_dims[0] < 2 || image_dims[1] < 2)
		return r5_set_error(R5_EINVAL, "NUFFT plan: image dims %s: x and y must be at least 2 (2D or 3D)", td);
	r5_nufft_plan *p = calloc(1, sizeof *p);
	if (!p)
		return r5_set_error(R5_ENOMEM, "NUFFT plan");
	p->D = image_dims[2] > 1 ? 3 : 2;
	p->C = image_dims[R5_DIM_COIL];
	p->sigma = opts->oversampling;
	p->w = opts->width ? opts->width : r5_nufft_width_for(opts->tolerance, p->sigma);
	p->beta = r5_nufft_beta(p->w, p->sigma);
	p->method = opts->method;
	p->where = r5_ctx_residency(ctx);
	p->tiles = p->where != R5_HOST || opts->method == R5_NUFFT_METHOD_TILES;
	for (int d = 0; d < 3; d++) {
		p->N[d] = image_dims[d];
		p->M[d] = 1;
		p->nb[d] = 1;
		p->bin[d] = 1;
		if (d < p->D) {
			long lo = (long)ceil(p->sigma * (double)p->N[d] - 1e-9);
			p->M[d] = next235even(lo > 2 * p->w ? lo : 2 * p->w);
			p->bin[d] = p->tiles ? tile_bin(p->D, d) : d == 0 ? 16 : p->D == 2 ? 16 : 4;
			p->nb[d] = (p->M[d] + p->bin[d] - 1) / p->bin[d];
		}
	}
	fit_kernel(p);
	r5_status s = make_corrections(p);
	if (s == R5_OK && p->tiles)
		s = tiles_plan(ctx, p);
	if (s != R5_OK) {
		r5_nufft_plan_destroy(p);
		return s;
	}
	*out = p;
	return R5_OK;
}

/* --- points --- */

static r5_status check_point(const r5_nufft_plan *p, long j, const float *k)
{
	for (int d = 0; d < 3; d++) {
		double half = 0.5 * (double)p->N[d];
		if (!(isfinite(k[d]) && k[d] >= -half && k[d] < half))
			return r5_set_error(R5_EINVAL, "NUFFT points: point %ld has k%d = %g cycles/FOV, outside [%g, %g) "
					    "for an image of %ld along dimension %d", j, d, (double)k[d], -half, half,
					    p->N[d], d);
	}
	return R5_OK;
}

static double grid_coordinate(const r5_nufft_plan *p, int d, float k)
{
	return (double)k * ((double)p->M[d] / (double)p->N[d]) + 0.5 * (double)p->M[d];
}

static long bin_of(const r5_nufft_plan *p, const float *k)
{
	long key = 0;
	for (int d = p->D - 1; d >= 0; d--) {
		long b = (long)floor(grid_coordinate(p, d, k[d]) / (double)p->bin[d]);
		b = b < 0 ? 0 : b >= p->nb[d] ? p->nb[d] - 1 : b;
		key = key * p->nb[d] + b;
	}
	return key;
}

static void drop_points(r5_nufft_plan *p)
{
	free(p->order);
	free(p->rank);
	free(p->start);
	free(p->offset);
	free(p->slow_first);
	r5_array_free(p->sorted);
	p->sorted = NULL;
	p->order = p->rank = p->start = NULL;
	p->offset = NULL;
	p->slow_first = NULL;
	p->n_points = 0;
	p->has_kernel = 0; /* psf_hat's buffer stays for the next kernel */
	r5_array_free(p->tile_tables);
	p->tile_tables = NULL;
	memset(&p->pts, 0, sizeof p->pts);
}

/* Counting sort by bin; then each point's first cells and offsets in the sorted order. */
static r5_status sort_points(r5_nufft_plan *p, long n, const float *coords, int32_t *key, long *bin_first)
{
	long n_bins = p->nb[0] * p->nb[1] * p->nb[2];
	long *first = calloc((size_t)n_bins + 1, sizeof *first);
	if (!first)
		return r5_set_error(R5_ENOMEM, "NUFFT points: %ld bins", n_bins);
	for (long j = 0; j < n; j++) {
		key[j] = (int32_t)bin_of(p, coords + 3 * j);
		first[key[j] + 1]++;
	}
	for (long b = 0; b < n_bins; b++)
		first[b + 1] += first[b];
	if (bin_first)
		memcpy(bin_first, first, sizeof *first * (size_t)(n_bins + 1));
	long slow_bins = p->nb[p->D - 1], per_slow = n_bins / slow_bins;
	for (long b = 0; b <= slow_bins; b++)
		p->slow_first[b] = first[b * per_slow];
	for (long j = 0; j < n; j++) {
		p->rank[j] = (int32_t)first[key[j]]++;
		p->order[p->rank[j]] = (int32_t)j;
	}
	free(first);
#pragma omp parallel for schedule(static)
	for (long i = 0; i < n; i++) {
		const float *k = coords + 3 * (long)p->order[i];
		for (int d = 0; d < p->D; d++)
			r5_nufft_split(grid_coordinate(p, d, k[d]), p->w, &p->start[i * p->D + d], &p->offset[i * p->D + d]);
	}
	return R5_OK;
}

r5_status r5_nufft_set_points(r5_ctx *ctx, r5_nufft_plan *p, long n, const float *coords)
{
	drop_points(p);
	if (n < 1 || n > INT32_MAX)
		return r5_set_error(R5_EINVAL, "NUFFT points: %ld points (1 .. %d)", n, INT32_MAX);
	if (!coords)
		return r5_set_error(R5_EINVAL, "NUFFT points: no coordinates");
	for (long j = 0; j < n; j++)
		R5_TRY(check_point(p, j, coords + 3 * j));
	int32_t *key = malloc(sizeof *key * (size_t)n);
	long *bin_first = p->tiles ? malloc(sizeof *bin_first * (size_t)(p->nb[0] * p->nb[1] * p->nb[2] + 1)) : NULL;
	p->order = malloc(sizeof *p->order * (size_t)n);
	p->rank = malloc(sizeof *p->rank * (size_t)n);
	p->start = malloc(sizeof *p->start * (size_t)n * (size_t)p->D);
	p->offset = malloc(sizeof *p->offset * (size_t)n * (size_t)p->D);
	p->slow_first = malloc(sizeof *p->slow_first * (size_t)(p->nb[p->D - 1] + 1));
	r5_status s = key && p->order && p->rank && p->start && p->offset && p->slow_first && (bin_first || !p->tiles)
			      ? sort_points(p, n, coords, key, bin_first)
			      : r5_set_error(R5_ENOMEM, "NUFFT points: tables for %ld points", n);
	free(key);
	if (s == R5_OK && p->tiles) {
		p->n_points = n;
		s = tiles_points(ctx, p, bin_first);
	}
	free(bin_first);
	if (s != R5_OK) {
		drop_points(p);
		return s;
	}
	p->n_points = n;
	return R5_OK;
}

/* --- spreading and interpolation --- */

struct taps {
	int n[3];
	long idx[3][R5_NUFFT_MAX_WIDTH]; /* grid cell, times the cell's stride in floats */
	float wt[3][R5_NUFFT_MAX_WIDTH];
};

/* The taps of sorted point i along dimension d (cells wrapped, strides applied). */
static void dim_taps(const r5_nufft_plan *p, long i, int d, long stride, struct taps *tp)
{
	if (d >= p->D) {
		tp->n[d] = 1;
		tp->idx[d][0] = 0;
		tp->wt[d][0] = 1.0f;
		return;
	}
	int s = p->start[i * p->D + d], m = (int)p->M[d];
	r5_nufft_weights_poly(p->offset[i * p->D + d], p->w, p->n_coef, p->coef, tp->wt[d]);
	for (int t = 0; t < p->w; t++)
		tp->idx[d][t] = stride * r5_nufft_wrap(s + t, m);
	tp->n[d] = p->w;
}

static void point_taps(const r5_nufft_plan *p, long i, struct taps *tp)
{
	long s0 = 2 * p->C, s1 = s0 * p->M[0], s2 = s1 * p->M[1];
	dim_taps(p, i, 0, s0, tp);
	dim_taps(p, i, 1, s1, tp);
	dim_taps(p, i, 2, s2, tp);
}

/* y[q] += a x[q], q < len: one contiguous run of cells (w cells x all coils) */
static inline void axpy_run(long len, float a, const float *restrict x, float *restrict y)
{
#pragma omp simd
	for (long q = 0; q < len; q++)
		y[q] += a * x[q];
}

/* Whether the point's x cells are one contiguous run (no wrap): then a tap row is one run of
 * w C complex values and the coil batch and the x taps go through axpy_run together. */
static int x_contiguous(const r5_nufft_plan *p, long i)
{
	int s = p->start[i * p->D];
	return s >= 0 && s + p->w <= p->M[0];
}

/* acc[c] (2C floats) = the point's weighted sum of grid values; run: w 2C floats of scratch */
static void interpolate_point(const r5_nufft_plan *p, long i, const float *grid, const struct taps *tp, float *acc,
			      float *run)
{
	long C2 = 2 * p->C, len = p->w * C2;
	for (long c = 0; c < C2; c++)
		acc[c] = 0.0f;
	if (x_contiguous(p, i)) {
		for (long q = 0; q < len; q++)
			run[q] = 0.0f;
		for (int a = 0; a < tp->n[2]; a++)
			for (int b = 0; b < tp->n[1]; b++)
				axpy_run(len, tp->wt[2][a] * tp->wt[1][b], grid + tp->idx[2][a] + tp->idx[1][b] + tp->idx[0][0],
					 run);
		for (int t = 0; t < p->w; t++)
			for (long c = 0; c < C2; c++)
				acc[c] += tp->wt[0][t] * run[t * C2 + c];
		return;
	}
	for (int a = 0; a < tp->n[2]; a++)
		for (int b = 0; b < tp->n[1]; b++) {
			float w21 = tp->wt[2][a] * tp->wt[1][b];
			const float *row = grid + tp->idx[2][a] + tp->idx[1][b];
			for (int t = 0; t < tp->n[0]; t++)
				axpy_run(C2, w21 * tp->wt[0][t], row + tp->idx[0][t], acc);
		}
}

/* Between the samples [n, C] and their sorted copy [C, n] (to_sorted 1) or back: one pass in
 * the samples' order, each point one contiguous run of the sorted copy (a random cache line
 * per point instead of one per coil). */
static void permute(const r5_nufft_plan *p, float complex *samples, float complex *sorted, int to_sorted)
{
	long n = p->n_points, C = p->C;
#pragma omp parallel for schedule(static)
	for (long j = 0; j < n; j++) {
		float complex *run = sorted + C * (long)p->rank[j];
		for (long c = 0; c < C; c++) {
			if (to_sorted)
				run[c] = samples[j + c * n];
			else
				samples[j + c * n] = run[c];
		}
	}
}

/* sorted[C i + c] = sum of sorted point i's cells' grid values, weighted */
static r5_status interpolate(const r5_nufft_plan *p, const float *grid, float complex *sorted)
{
	long C2 = 2 * p->C, n = p->n_points;
	int failed = 0;
#pragma omp parallel reduction(| : failed)
	{
		float *acc = malloc(sizeof(float) * (size_t)(C2 * (1 + p->w)));
		struct taps tp;
		failed = !acc;
#pragma omp for schedule(static, 1024)
		for (long i = 0; i < n; i++) {
			if (!acc)
				continue;
			point_taps(p, i, &tp);
			interpolate_point(p, i, grid, &tp, acc, acc + C2);
			memcpy(sorted + p->C * i, acc, sizeof(float) * (size_t)C2);
		}
		free(acc);
	}
	return failed ? r5_set_error(R5_ENOMEM, "NUFFT interpolation: coil values of a thread") : R5_OK;
}

/* Whether slow bin b lies within `margin` bins (cyclically) of the slab's bins [b0, b1). */
static int bin_near_slab(long b, long b0, long b1, long margin, long n_bins)
{
	if (b1 - b0 + 2 * margin >= n_bins)
		return 1;
	long lo = b0 - margin, hi = b1 + margin; /* [lo, hi) modulo n_bins */
	return (b >= lo && b < hi) || (b + n_bins >= lo && b + n_bins < hi) || (b - n_bins >= lo && b - n_bins < hi);
}

/* Adds the point's coil values vals (2C floats, then w 2C floats of scratch) times its weights
 * into the grid cells of its taps. */
static void spread_point(const r5_nufft_plan *p, long i, const struct taps *tp, float *vals, float *grid)
{
	long C2 = 2 * p->C, len = p->w * C2;
	if (x_contiguous(p, i)) {
		float *run = vals + C2; /* the x taps' weights times the coil values, one run */
		for (int t = 0; t < p->w; t++)
			for (long c = 0; c < C2; c++)
				run[t * C2 + c] = tp->wt[0][t] * vals[c];
		for (int a = 0; a < tp->n[2]; a++)
			for (int b = 0; b < tp->n[1]; b++)
				axpy_run(len, tp->wt[2][a] * tp->wt[1][b], run, grid + tp->idx[2][a] + tp->idx[1][b] + tp->idx[0][0]);
		return;
	}
	for (int a = 0; a < tp->n[2]; a++)
		for (int b = 0; b < tp->n[1]; b++) {
			float w21 = tp->wt[2][a] * tp->wt[1][b];
			float *row = grid + tp->idx[2][a] + tp->idx[1][b];
			for (int t = 0; t < tp->n[0]; t++)
				axpy_run(C2, w21 * tp->wt[0][t], vals, row + tp->idx[0][t]);
		}
}

/* Spreads the points that touch the slab's rows [r0, r1) of the slow dimension into those rows
 * only, visiting bins in ascending order (each cell's sum in sorted point order, whatever the
 * slabs). */
static void spread_slab(const r5_nufft_plan *p, long b0, long b1, const float complex *sorted, float *grid,
			float *vals)
{
	int sd = p->D - 1;
	long ns = p->nb[sd], r0 = b0 * p->bin[sd];
	long r1 = b1 * p->bin[sd] < p->M[sd] ? b1 * p->bin[sd] : p->M[sd];
	/* bins within reach of the slab; one more when the last bin is partial (M not a multiple of the
	 * bin): a wrapped row then lands up to one bin further round (found by test_nufft_tiles: a
	 * corner point of 17 x 15 x 13, M2 = 30, lost its wrapped rows) */
	long margin = (p->w / 2 + 1 + p->bin[sd] - 1) / p->bin[sd] + (p->M[sd] % p->bin[sd] != 0);
	struct taps tp;
	for (long b = 0; b < ns; b++) {
		if (!bin_near_slab(b, b0, b1, margin, ns))
			continue;
		for (long i = p->slow_first[b]; i < p->slow_first[b + 1]; i++) {
			int s = p->start[i * p->D + sd], owned = 0;
			for (int t = 0; t < p->w; t++) {
				long r = r5_nufft_wrap(s + t, (int)p->M[sd]);
				owned += r >= r0 && r < r1;
			}
			if (!owned)
				continue;
			point_taps(p, i, &tp);
			/* keep the owned taps of the slow dimension */
			int k = 0;
			for (int t = 0; t < p->w; t++) {
				long r = r5_nufft_wrap(s + t, (int)p->M[sd]);
				if (r >= r0 && r < r1) {
					tp.idx[sd][k] = tp.idx[sd][t];
					tp.wt[sd][k++] = tp.wt[sd][t];
				}
			}
			tp.n[sd] = k;
			memcpy(vals, sorted + p->C * i, sizeof(float) * 2 * (size_t)p->C);
			spread_point(p, i, &tp, vals, grid);
		}
	}
}

static r5_status spread(const r5_nufft_plan *p, const float complex *sorted, float *grid)
{
	int sd = p->D - 1, failed = 0;
	long ns = p->nb[sd], per_slab = ns / (4L * r5_max_threads());
	per_slab = per_slab < 1 ? 1 : per_slab;
	long n_slabs = (ns + per_slab - 1) / per_slab;
#pragma omp parallel reduction(| : failed)
	{
		float *vals = malloc(sizeof(float) * 2 * (size_t)(p->C * (1 + p->w)));
		failed = !vals;
#pragma omp for schedule(dynamic, 1)
		for (long slab = 0; slab < n_slabs; slab++) {
			long b0 = slab * per_slab, b1 = b0 + per_slab < ns ? b0 + per_slab : ns;
			if (vals)
				spread_slab(p, b0, b1, sorted, grid, vals);
		}
		free(vals);
	}
	return failed ? r5_set_error(R5_ENOMEM, "NUFFT spreading: coil values of a thread") : R5_OK;
}

/* --- execution --- */

static r5_status check_image(const r5_nufft_plan *p, const r5_array *a, const char *what)
{
	char td[128], tp[128];
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = p->N[0], dims[1] = p->N[1], dims[2] = p->N[2], dims[3] = p->C;
	if (!r5_dims_equal(a->dims, dims))
		return r5_set_error(R5_EINVAL, "NUFFT %s: image dims %s, the plan's are %s", what,
				    r5_dims_format(td, sizeof td, a->dims), r5_dims_format(tp, sizeof tp, dims));
	if (a->where != p->where || !r5_array_is_contiguous(a))
		return r5_set_error(R5_EINVAL, "NUFFT %s: the image must be contiguous %s memory", what,
				    p->where == R5_HOST ? "host" : "device");
	return R5_OK;
}

static r5_status check_samples(const r5_nufft_plan *p, const r5_array *a, const char *what)
{
	char td[128];
	r5_dims_format(td, sizeof td, a->dims);
	if (p->n_points == 0)
		return r5_set_error(R5_EINVAL, "NUFFT %s: no points set", what);
	int ok = a->dims[0] == 1 && a->dims[1] * a->dims[2] == p->n_points && a->dims[3] == p->C;
	for (int d = 4; d < R5_DIMS; d++)
		ok = ok && a->dims[d] == 1;
	if (!ok)
		return r5_set_error(R5_EINVAL, "NUFFT %s: sample dims %s, the plan wants [1 read lines %ld] with read x "
				    "lines = %ld points", what, td, p->C, p->n_points);
	if (a->where != p->where || !r5_array_is_contiguous(a))
		return r5_set_error(R5_EINVAL, "NUFFT %s: the samples must be contiguous %s memory", what,
				    p->where == R5_HOST ? "host" : "device");
	return R5_OK;
}

static r5_status ensure_grid(r5_ctx *ctx, r5_nufft_plan *p)
{
	long dims[R5_DIMS], sdims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = p->C, dims[1] = p->M[0], dims[2] = p->M[1], dims[3] = p->M[2];
	r5_dims_ones(sdims);
	sdims[0] = p->C, sdims[1] = p->n_points;
	R5_TRY(r5_linop_scratch(ctx, "NUFFT grid", &p->grid, dims));
	return r5_linop_scratch(ctx, "NUFFT sorted samples", &p->sorted, sdims);
}

static unsigned long grid_fft_flags(const r5_nufft_plan *p) { return p->D == 2 ? 0x6UL : 0xeUL; }

/* Cell of image position n along d in the oversampled image (x mod M). */
static long image_cell(const r5_nufft_plan *p, int d, long n)
{
	long x = n - p->N[d] / 2;
	return x < 0 ? x + p->M[d] : x;
}

/* to_grid 1: grid cell of image pixel n = image[n] corr(n); 0: image[n] = grid cell corr(n). */
static void correct(const r5_nufft_plan *p, float complex *image, float *grid, int to_grid)
{
	long N0 = p->N[0], N1 = p->N[1], N2 = p->N[2], C = p->C, pix = N0 * N1 * N2;
#pragma omp parallel for collapse(2) schedule(static)
	for (long n2 = 0; n2 < N2; n2++)
		for (long n1 = 0; n1 < N1; n1++) {
			float c21 = (p->D == 3 ? p->corr[2][n2] : 1.0f) * p->corr[1][n1];
			long cell21 = p->M[0] * (image_cell(p, 1, n1) + p->M[1] * (p->D == 3 ? image_cell(p, 2, n2) : 0));
			for (long n0 = 0; n0 < N0; n0++) {
				float c = c21 * p->corr[0][n0];
				float *g = grid + 2 * C * (cell21 + image_cell(p, 0, n0));
				float complex *f = image + n0 + N0 * (n1 + N1 * n2);
				for (long k = 0; k < C; k++) {
					float *v = (float *)(f + k * pix);
					if (to_grid) {
						g[2 * k] = c * v[0];
						g[2 * k + 1] = c * v[1];
					} else {
						v[0] = c * g[2 * k];
						v[1] = c * g[2 * k + 1];
					}
				}
			}
		}
}

r5_status r5_nufft_forward(r5_ctx *ctx, r5_nufft_plan *p, r5_array *samples, const r5_array *image)
{
	R5_TRY(check_image(p, image, "forward"));
	R5_TRY(check_samples(p, samples, "forward"));
	if (p->tiles)
		return tiles_forward(ctx, p, samples, image);
	R5_TRY(ensure_grid(ctx, p));
	float *grid = (float *)p->grid->data;
	memset(grid, 0, sizeof(float complex) * (size_t)r5_array_size(p->grid));
	correct(p, image->data, grid, 1);
	R5_TRY(r5_fft_raw(ctx, grid_fft_flags(p), p->grid, p->grid, 0));
	R5_TRY(interpolate(p, grid, p->sorted->data));
	permute(p, samples->data, p->sorted->data, 0);
	return R5_OK;
}

r5_status r5_nufft_adjoint(r5_ctx *ctx, r5_nufft_plan *p, r5_array *image, const r5_array *samples)
{
	R5_TRY(check_image(p, image, "adjoint"));
	R5_TRY(check_samples(p, samples, "adjoint"));
	if (p->tiles)
		return tiles_adjoint(ctx, p, image, samples);
	R5_TRY(ensure_grid(ctx, p));
	float *grid = (float *)p->grid->data;
	memset(grid, 0, sizeof(float complex) * (size_t)r5_array_size(p->grid));
	permute(p, samples->data, p->sorted->data, 1);
	R5_TRY(spread(p, p->sorted->data, grid));
	R5_TRY(r5_fft_raw(ctx, grid_fft_flags(p), p->grid, p->grid, 1));
	correct(p, image->data, grid, 0);
	return R5_OK;
}

/* --- grid-domain spreading and interpolation (no FFT, no de-apodisation) --- */

static r5_status check_grid(const r5_nufft_plan *p, const r5_array *a, const char *what)
{
	char td[128], tp[128];
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = p->C, dims[1] = p->M[0], dims[2] = p->M[1], dims[3] = p->M[2];
	if (!r5_dims_equal(a->dims, dims))
		return r5_set_error(R5_EINVAL, "NUFFT %s: grid dims %s, the plan's are %s", what,
				    r5_dims_format(td, sizeof td, a->dims), r5_dims_format(tp, sizeof tp, dims));
	if (a->where != p->where || !r5_array_is_contiguous(a))
		return r5_set_error(R5_EINVAL, "NUFFT %s: the grid must be contiguous %s memory", what,
				    p->where == R5_HOST ? "host" : "device");
	return R5_OK;
}

static r5_status ensure_sorted(r5_ctx *ctx, r5_nufft_plan *p)
{
	long sdims[R5_DIMS];
	r5_dims_ones(sdims);
	sdims[0] = p->C, sdims[1] = p->n_points;
	return r5_linop_scratch(ctx, "NUFFT sorted samples", &p->sorted, sdims);
}

r5_status r5_nufft_spread_grid(r5_ctx *ctx, r5_nufft_plan *p, r5_array *grid, const r5_array *samples)
{
	R5_TRY(check_grid(p, grid, "spread to grid"));
	R5_TRY(check_samples(p, samples, "spread to grid"));
	if (p->tiles)
		return tiles_spread_grid(ctx, p, grid, samples);
	R5_TRY(ensure_sorted(ctx, p));
	memset(grid->data, 0, sizeof(float complex) * (size_t)r5_array_size(grid));
	permute(p, samples->data, p->sorted->data, 1);
	return spread(p, p->sorted->data, (float *)grid->data);
}

r5_status r5_nufft_interp_grid(r5_ctx *ctx, r5_nufft_plan *p, r5_array *samples, const r5_array *grid)
{
	R5_TRY(check_grid(p, grid, "interpolate from grid"));
	R5_TRY(check_samples(p, samples, "interpolate from grid"));
	if (p->tiles)
		return tiles_interp_grid(ctx, p, samples, grid);
	R5_TRY(ensure_sorted(ctx, p));
	R5_TRY(interpolate(p, (const float *)grid->data, p->sorted->data));
	permute(p, samples->data, p->sorted->data, 0);
	return R5_OK;
}

/* --- Toeplitz --- */

/* The point-spread function on the 2N image, T[d] at cell d mod 2N, by a type-1 NUFFT of the
 * weights at points 2k (cycles per FOV of the 2N image), through the plan's PSF plan (made once). */
static r5_status psf_compute(r5_ctx *ctx, r5_nufft_plan *p, const float *weights, r5_array *psf)
{
	long n = p->n_points, dims[R5_DIMS], sdims[R5_DIMS];
	r5_dims_ones(dims);
	r5_dims_ones(sdims);
	for (int d = 0; d < p->D; d++)
		dims[d] = 2 * p->N[d];
	sdims[1] = n;
	r5_nufft_opts o = {.oversampling = 2.0, .width = PSF_WIDTH, .method = p->method};
	r5_array *w = NULL, *w_host = NULL, *image = NULL;
	float *coords = malloc(sizeof(float) * 3 * (size_t)n);
	r5_status s = coords ? R5_OK : r5_set_error(R5_ENOMEM, "NUFFT Toeplitz: coordinates of %ld points", n);
	/* the sorted tables give back each point's grid coordinate t; k = (t - M/2) N / M */
	for (long i = 0; s == R5_OK && i < n; i++) {
		float *k = coords + 3 * (long)p->order[i];
		for (int d = 0; d < 3; d++) {
			double t = d < p->D ? (double)p->start[i * p->D + d] + (double)p->offset[i * p->D + d] : 0.0;
			double kk = d < p->D ? 2.0 * (t - 0.5 * p->M[d]) * (double)p->N[d] / (double)p->M[d] : 0.0;
			double lim = d < p->D ? (double)p->N[d] : 0.5; /* the 2N image's [-N, N) */
			k[d] = (float)(kk < -lim ? -lim : kk);
			if (k[d] >= (float)lim)
				k[d] = nextafterf((float)lim, 0.0f);
		}
	}
	if (s == R5_OK && !p->psf_plan)
		s = r5_nufft_plan_make(ctx, dims, &o, &p->psf_plan);
	if (s == R5_OK)
		s = r5_nufft_set_points(ctx, p->psf_plan, n, coords);
	if (s == R5_OK)
		s = r5_array_alloc_host(sdims, &w_host);
	if (s == R5_OK) {
		for (long j = 0; j < n; j++)
			w_host->data[j] = weights ? weights[j] : 1.0f;
		s = r5_array_to_work(ctx, w_host, &w); /* the weights where the context computes */
	}
	if (s == R5_OK)
		s = r5_array_alloc_work(ctx, dims, &image);
	if (s == R5_OK)
		s = r5_nufft_adjoint(ctx, p->psf_plan, image, w);
	if (s == R5_OK) {
		long shifts[R5_DIMS] = {0};
		for (int d = 0; d < p->D; d++)
			shifts[d] = p->N[d];
		s = r5_zcircshift(ctx, psf, image, shifts);
	}
	if (p->psf_plan) { /* the PSF plan's grid and sorted weights go (psf_plan's comment) */
		r5_array_free(p->psf_plan->grid);
		r5_array_free(p->psf_plan->sorted);
		p->psf_plan->grid = p->psf_plan->sorted = NULL;
	}
	free(coords);
	r5_array_free(w);
	r5_array_free(w_host);
	r5_array_free(image);
	return s;
}

r5_status r5_nufft_toeplitz(r5_ctx *ctx, r5_nufft_plan *p, const float *weights)
{
	if (p->n_points == 0)
		return r5_set_error(R5_EINVAL, "NUFFT Toeplitz: no points set");
	if (weights)
		for (long j = 0; j < p->n_points; j++)
			if (!isfinite(weights[j]))
				return r5_set_error(R5_EINVAL, "NUFFT Toeplitz: weight %ld is %g", j, (double)weights[j]);
	p->has_kernel = 0;
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	double cells = 1.0;
	for (int d = 0; d < p->D; d++) {
		dims[d] = 2 * p->N[d];
		cells *= (double)dims[d];
	}
	r5_status s = r5_linop_scratch(ctx, "NUFFT Toeplitz kernel", &p->psf_hat, dims);
	if (s == R5_OK)
		s = psf_compute(ctx, p, weights, p->psf_hat);
	if (s == R5_OK)
		s = r5_fft_raw(ctx, (1UL << p->D) - 1, p->psf_hat, p->psf_hat, 0);
	if (s == R5_OK) {
		/* T = (N^-1 / (2^D N)^-1/2) adjoint; over 2^D N for the raw inverse FFT */
		double pixels = cells / (double)(1L << p->D);
		s = r5_zscale(ctx, p->psf_hat, (float)(sqrt(cells) / pixels / cells));
	}
	/* T is Hermitian (T[-d] = conj T[d], real weights) at every offset the convolution uses,
	 * |d_i| < N_i, so its FFT is real up to rounding and the offsets d_i = -N_i that the
	 * convolution never reads: the 2D host path keeps the real part and multiplies by it */
	if (s == R5_OK && !p->tiles && p->D == 2)
		for (long i = 0, n = r5_array_size(p->psf_hat); i < n; i++)
			p->psf_hat->data[i] = crealf(p->psf_hat->data[i]);
	if (s != R5_OK)
		return r5_error_context(s, "NUFFT Toeplitz kernel");
	p->has_kernel = 1;
	return R5_OK;
}

/* Zero-pads (place 1) or crops (0) one group of coils between the image and the 2N grid, image
 * position x at cell x mod 2N. */
static void toep_place(const r5_nufft_plan *p, float complex *image, float complex *grid, long coils, int place)
{
	long N0 = p->N[0], N1 = p->N[1], N2 = p->N[2], L0 = 2 * N0, L1 = 2 * N1, L2 = p->D == 3 ? 2 * N2 : 1;
#pragma omp parallel for collapse(3) schedule(static)
	for (long c = 0; c < coils; c++)
		for (long n2 = 0; n2 < N2; n2++)
			for (long n1 = 0; n1 < N1; n1++) {
				long x2 = n2 - N2 / 2, x1 = n1 - N1 / 2;
				x2 = x2 < 0 ? x2 + L2 : x2;
				x1 = x1 < 0 ? x1 + L1 : x1;
				float complex *f = image + N0 * (n1 + N1 * (n2 + N2 * c));
				float complex *g = grid + L0 * (x1 + L1 * (x2 + L2 * c));
				long h = N0 / 2, rest = N0 - h;
				if (place) {
					memcpy(g, f + h, sizeof *g * (size_t)rest);
					memcpy(g + L0 - h, f, sizeof *g * (size_t)h);
				} else {
					memcpy(f + h, g, sizeof *g * (size_t)rest);
					memcpy(f, g + L0 - h, sizeof *g * (size_t)h);
				}
			}
}

/* The 2D host path: the same circular convolution on the 2N grid without its zero half. The
 * image goes to cells [0, N0) x [0, N1) (shifting the convolution's input and output by the same
 * cells changes nothing: T is indexed by x - x'), so after the readout FFT of rows y < N1 (the
 * other rows are zero) the grid's columns are zero below y = N1, and of the result only rows
 * y < N1 are kept: the half grid [2N0, N1] is all that is stored. The column FFT, the product
 * with T's FFT and the inverse column FFT run per block of columns in a buffer [B, 2N1] that
 * stays in cache (B = 32 per thread: 160 KiB at 2N1 = 640; T's block is read once for all coils):
 * 3/4 of the full grid's FFT work and none of its passes over the zero half (320^2, 8 coils, one
 * core, perf on the spiral of bench_noncart: 26 ms per application instead of 43). */
static r5_status toep_normal_2d(r5_ctx *ctx, r5_nufft_plan *p, float complex *out, const float complex *in,
				long coils)
{
	long N0 = p->N[0], N1 = p->N[1], L0 = 2 * N0, L1 = 2 * N1, B = p->toep_cols->dims[0];
	long hdims[R5_DIMS];
	r5_dims_ones(hdims);
	hdims[0] = L0;
	hdims[1] = N1;
	hdims[3] = coils;
	long hstrides[R5_DIMS], bstrides[R5_DIMS];
	r5_dims_strides(hstrides, hdims);
	r5_array h = r5_array_view_strided(p->toep, hdims, hstrides, 0);
	float complex *half = h.data;
	const float complex *psf = p->psf_hat->data;
#pragma omp parallel for collapse(2) schedule(static)
	for (long c = 0; c < coils; c++)
		for (long y = 0; y < N1; y++) {
			float complex *row = half + L0 * (y + N1 * c);
			memcpy(row, in + N0 * (y + N1 * c), sizeof *row * (size_t)N0);
			memset(row + N0, 0, sizeof *row * (size_t)N0);
		}
	R5_TRY(r5_fft_raw(ctx, 0x1UL, &h, &h, 0));
	int threads = r5_max_threads();
	for (long x0 = 0; x0 < L0; x0 += B) {
		long bw = L0 - x0 < B ? L0 - x0 : B, bdims[R5_DIMS];
		r5_dims_ones(bdims);
		bdims[0] = bw;
		bdims[1] = L1;
		r5_dims_strides(bstrides, bdims);
		r5_array cols = r5_array_view_strided(p->toep_cols, bdims, bstrides, 0);
		float complex *b = cols.data;
		for (long c = 0; c < coils; c++) {
			float complex *hc = half + L0 * N1 * c + x0;
#pragma omp parallel for schedule(static) if (threads > 1)
			for (long y = 0; y < N1; y++)
				memcpy(b + bw * y, hc + L0 * y, sizeof *b * (size_t)bw);
			memset(b + bw * N1, 0, sizeof *b * (size_t)(bw * N1));
			R5_TRY(r5_fft_raw(ctx, 0x2UL, &cols, &cols, 0));
#pragma omp parallel for schedule(static) if (threads > 1)
			for (long y = 0; y < L1; y++) { /* T's FFT is real here (r5_nufft_toeplitz) */
				float *v = (float *)(b + bw * y);
				const float *t = (const float *)(psf + x0 + L0 * y);
				for (long xb = 0; xb < bw; xb++) {
					v[2 * xb] *= t[2 * xb];
					v[2 * xb + 1] *= t[2 * xb];
				}
			}
			R5_TRY(r5_fft_raw(ctx, 0x2UL, &cols, &cols, 1));
#pragma omp parallel for schedule(static) if (threads > 1)
			for (long y = 0; y < N1; y++)
				memcpy(hc + L0 * y, b + bw * y, sizeof *b * (size_t)bw);
		}
	}
	R5_TRY(r5_fft_raw(ctx, 0x1UL, &h, &h, 1));
#pragma omp parallel for collapse(2) schedule(static)
	for (long c = 0; c < coils; c++)
		for (long y = 0; y < N1; y++)
			memcpy(out + N0 * (y + N1 * c), half + L0 * (y + N1 * c), sizeof *out * (size_t)N0);
	return R5_OK;
}

/* The scratch of the first application: the grid for a group of coils (the 2D host path's half
 * grid and its column block, toep_normal_2d). */
static r5_status toep_scratch(r5_ctx *ctx, r5_nufft_plan *p)
{
	long dims[R5_DIMS];
	r5_dims_copy(dims, p->psf_hat->dims);
	int half = !p->tiles && p->D == 2;
	if (half)
		dims[1] = p->N[1];
	long cells = r5_dims_size(dims);
	long group = TOEP_GROUP_BYTES / (cells * (long)sizeof(float complex));
	p->toep_group = group < 1 ? 1 : group > p->C ? p->C : group;
	dims[3] = p->toep_group;
	R5_TRY(r5_linop_scratch(ctx, "NUFFT Toeplitz grid", &p->toep, dims));
	if (!half)
		return R5_OK;
	long B = 32L * r5_max_threads(), cdims[R5_DIMS];
	r5_dims_ones(cdims);
	cdims[0] = B < dims[0] ? B : dims[0];
	cdims[1] = 2 * p->N[1];
	return r5_linop_scratch(ctx, "NUFFT Toeplitz columns", &p->toep_cols, cdims);
}

r5_status r5_nufft_normal(r5_ctx *ctx, r5_nufft_plan *p, r5_array *out, const r5_array *in)
{
	R5_TRY(check_image(p, in, "normal"));
	R5_TRY(check_image(p, out, "normal"));
	if (!p->has_kernel)
		return r5_set_error(R5_EINVAL, "NUFFT normal: no Toeplitz kernel (r5_nufft_toeplitz)");
	if (!p->toep)
		R5_TRY(toep_scratch(ctx, p));
	long dims[R5_DIMS], cells = r5_array_size(p->psf_hat), pix = p->N[0] * p->N[1] * p->N[2];
	r5_dims_copy(dims, p->psf_hat->dims);
	unsigned long flags = (1UL << p->D) - 1;
	for (long c0 = 0; c0 < p->C; c0 += p->toep_group) {
		long coils = p->C - c0 < p->toep_group ? p->C - c0 : p->toep_group;
		if (p->toep_cols) {
			R5_TRY(toep_normal_2d(ctx, p, out->data + c0 * pix, in->data + c0 * pix, coils));
			continue;
		}
		dims[3] = coils;
		r5_array g = r5_array_view_strided(p->toep, dims, NULL, 0);
		if (p->tiles) {
			R5_TRY(tiles_toeplitz_group(ctx, p, &g, out->data + c0 * pix, in->data + c0 * pix, coils));
			continue;
		}
		memset(g.data, 0, sizeof(float complex) * (size_t)(cells * coils));
		toep_place(p, in->data + c0 * pix, g.data, coils, 1);
		R5_TRY(r5_fft_raw(ctx, flags, &g, &g, 0));
		R5_TRY(r5_zmul(ctx, &g, &g, p->psf_hat, 0));
		R5_TRY(r5_fft_raw(ctx, flags, &g, &g, 1));
		toep_place(p, out->data + c0 * pix, g.data, coils, 0);
	}
	return R5_OK;
}

/* --- the tile method (device contexts, or R5_NUFFT_METHOD_TILES on the host) ---
 *
 * The same transform through the back end's nufft_* slots (recon/core/nufft_math.h: sorted
 * points in subproblems, a tile per subproblem, the coil batch inside; gpu/nufft_cuda.cu on a
 * device, recon/cpu/cpu_nufft.c on the host). Points are sorted on the host at set points (the
 * same counting sort as the host path, with the tile bins) and the tables uploaded once; every
 * execution then runs where the context computes: zero the grid, de-apodise into it, the
 * context's FFT, interpolate (forward); zero, spread, FFT, de-apodise out (adjoint). */

/* Tile bins: 16 x 16 in 2D (a 22 x 22 tile at w 6: 3.9 KiB a coil), 16 x 8 x 8 in 3D (21 x 13 x 13
 * at w 5: 28 KiB a coil; gpu/NOTES.md has the shared-memory arithmetic). */
static long tile_bin(int dims, int d) { return dims == 2 ? 16 : d == 0 ? 16 : 8; }

/* The stage's name before a failing slot's message. */
static r5_status staged(r5_status s, const char *stage) { return s == R5_OK ? s : r5_error_context(s, "%s", stage); }

static r5_status upload_table(r5_ctx *ctx, const char *what, r5_array **dst, float complex *host, long elems)
{
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = elems;
	r5_array *view = NULL;
	r5_status s = r5_array_alloc_work(ctx, dims, dst);
	if (s == R5_OK)
		s = r5_array_view(R5_HOST, NULL, dims, host, &view);
	if (s == R5_OK)
		s = r5_array_copy(ctx, *dst, view);
	r5_array_free(view);
	if (s != R5_OK) {
		r5_array_free(*dst);
		*dst = NULL;
		return r5_error_context(s, "NUFFT %s (%ld bytes)", what, 8 * elems);
	}
	return R5_OK;
}

/* The geometry the slots see, and the packed de-apodisation table where the context computes. */
static r5_status tiles_plan(r5_ctx *ctx, r5_nufft_plan *p)
{
	struct r5_nufft_geom *g = &p->geom;
	memset(g, 0, sizeof *g);
	g->dims = p->D, g->width = p->w, g->n_coef = p->n_coef, g->beta = (float)p->beta, g->C = p->C;
	for (int d = 0; d < 3; d++)
		g->N[d] = p->N[d], g->M[d] = p->M[d], g->bin[d] = p->bin[d], g->nb[d] = p->nb[d];
	memcpy(g->coef, p->coef, sizeof g->coef);
	long n_corr = p->N[0] + p->N[1] + p->N[2], elems = (n_corr + 1) / 2;
	float complex *host = calloc((size_t)elems, sizeof *host);
	if (!host)
		return r5_set_error(R5_ENOMEM, "NUFFT plan: de-apodisation table");
	float *corr = (float *)host;
	for (int d = 0; d < 3; d++)
		for (long i = 0; i < p->N[d]; i++)
			corr[(d > 0 ? p->N[0] : 0) + (d > 1 ? p->N[1] : 0) + i] = d < p->D ? p->corr[d][i] : 1.0f;
	r5_status s = upload_table(ctx, "de-apodisation table", &p->tile_corr, host, elems);
	free(host);
	return s;
}

/* Whether every sorted point lies in its bin's tile (else no plain adds in tile cores). */
static int points_in_tiles(const r5_nufft_plan *p, const long *bin_first)
{
	long n_bins = p->nb[0] * p->nb[1] * p->nb[2];
	for (long b = 0; b < n_bins; b++) {
		long bc[3], origin[3], len[3];
		r5_nufft_tile(&p->geom, b, bc, origin, len);
		for (long i = bin_first[b]; i < bin_first[b + 1]; i++)
			for (int d = 0; d < p->D; d++) {
				long l = p->start[i * p->D + d] - origin[d];
				if (l < 0 || l + p->w > len[d])
					return 0;
			}
	}
	return 1;
}

/* Subproblems from the bins, then one upload of the tables: order | start | offset | sub_first |
 * sub_bin, each section a whole number of 8-byte elements. */
static r5_status tiles_points(r5_ctx *ctx, r5_nufft_plan *p, const long *bin_first)
{
	long n = p->n_points, n_bins = p->nb[0] * p->nb[1] * p->nb[2], n_sub = 0;
	for (long b = 0; b < n_bins; b++)
		n_sub += (bin_first[b + 1] - bin_first[b] + R5_NUFFT_SUB_POINTS - 1) / R5_NUFFT_SUB_POINTS;
	long e_order = (n + 1) / 2, e_table = (n * p->D + 1) / 2, e_first = (n_sub + 2) / 2, e_bin = (n_sub + 1) / 2;
	long elems = e_order + 2 * e_table + e_first + e_bin;
	float complex *host = calloc((size_t)elems, sizeof *host);
	if (!host)
		return r5_set_error(R5_ENOMEM, "NUFFT points: tile tables of %ld points", n);
	int32_t *order = (int32_t *)host, *start = (int32_t *)(host + e_order);
	float *offset = (float *)(host + e_order + e_table);
	int32_t *sub_first = (int32_t *)(host + e_order + 2 * e_table), *sub_bin = (int32_t *)(host + elems - e_bin);
	memcpy(order, p->order, sizeof *order * (size_t)n);
	memcpy(start, p->start, sizeof *start * (size_t)(n * p->D));
	memcpy(offset, p->offset, sizeof *offset * (size_t)(n * p->D));
	long k = 0;
	for (long b = 0; b < n_bins; b++)
		for (long i = bin_first[b]; i < bin_first[b + 1]; i += R5_NUFFT_SUB_POINTS) {
			sub_first[k] = (int32_t)i;
			sub_bin[k++] = (int32_t)b;
		}
	sub_first[n_sub] = (int32_t)n;
	p->geom.n_points = n;
	p->geom.core_ok = points_in_tiles(p, bin_first);
	r5_status s = upload_table(ctx, "point tables", &p->tile_tables, host, elems);
	free(host);
	if (s != R5_OK)
		return s;
	float complex *base = p->tile_tables->data;
	p->pts.order = (const int32_t *)base;
	p->pts.start = (const int32_t *)(base + e_order);
	p->pts.offset = (const float *)(base + e_order + e_table);
	p->pts.sub_first = (const int32_t *)(base + e_order + 2 * e_table);
	p->pts.sub_bin = (const int32_t *)(base + elems - e_bin);
	p->pts.n_sub = n_sub;
	return R5_OK;
}

static r5_status tiles_grid(r5_ctx *ctx, r5_nufft_plan *p)
{
	long dims[R5_DIMS];
	r5_dims_ones(dims);
	dims[0] = p->C, dims[1] = p->M[0], dims[2] = p->M[1], dims[3] = p->M[2];
	R5_TRY(r5_linop_scratch(ctx, "NUFFT grid", &p->grid, dims));
	return r5_zfill(ctx, p->grid, 0.0f);
}

static r5_status tiles_forward(r5_ctx *ctx, r5_nufft_plan *p, r5_array *samples, const r5_array *image)
{
	const struct r5_backend *b = r5_ctx_backend(ctx);
	void *st = r5_ctx_state(ctx);
	R5_TRY(tiles_grid(ctx, p));
	/* to_grid 1 only reads the image */
	R5_TRY(staged(b->nufft_deapod(st, &p->geom, (const float *)p->tile_corr->data, image->data,
						p->grid->data, 1), "NUFFT forward, de-apodisation"));
	R5_TRY(r5_fft_raw(ctx, grid_fft_flags(p), p->grid, p->grid, 0));
	return staged(b->nufft_interp(st, &p->geom, &p->pts, p->grid->data, samples->data),
				"NUFFT forward, interpolation");
}

static r5_status tiles_adjoint(r5_ctx *ctx, r5_nufft_plan *p, r5_array *image, const r5_array *samples)
{
	const struct r5_backend *b = r5_ctx_backend(ctx);
	void *st = r5_ctx_state(ctx);
	R5_TRY(tiles_grid(ctx, p));
	R5_TRY(staged(b->nufft_spread(st, &p->geom, &p->pts, samples->data, p->grid->data),
				"NUFFT adjoint, spreading"));
	R5_TRY(r5_fft_raw(ctx, grid_fft_flags(p), p->grid, p->grid, 1));
	return staged(b->nufft_deapod(st, &p->geom, (const float *)p->tile_corr->data, image->data,
						p->grid->data, 0), "NUFFT adjoint, de-apodisation");
}

/* The grid-domain pair (r5_nufft_spread_grid / r5_nufft_interp_grid: Pipe-Menon density
 * compensation) where the context computes: the spreading and interpolation slots alone. */
static r5_status tiles_spread_grid(r5_ctx *ctx, r5_nufft_plan *p, r5_array *grid, const r5_array *samples)
{
	R5_TRY(r5_zfill(ctx, grid, 0.0f));
	return staged(r5_ctx_backend(ctx)->nufft_spread(r5_ctx_state(ctx), &p->geom, &p->pts, samples->data, grid->data),
		      "NUFFT spread to grid");
}

static r5_status tiles_interp_grid(r5_ctx *ctx, r5_nufft_plan *p, r5_array *samples, const r5_array *grid)
{
	return staged(r5_ctx_backend(ctx)->nufft_interp(r5_ctx_state(ctx), &p->geom, &p->pts, grid->data, samples->data),
		      "NUFFT interpolate from grid");
}

/* One group of coils of the Toeplitz normal where the context computes: zero the 2N grids, place,
 * FFT, times T's FFT, inverse FFT, crop. */
static r5_status tiles_toeplitz_group(r5_ctx *ctx, r5_nufft_plan *p, r5_array *g, float complex *out,
				      const float complex *in, long coils)
{
	const struct r5_backend *b = r5_ctx_backend(ctx);
	void *st = r5_ctx_state(ctx);
	unsigned long flags = (1UL << p->D) - 1;
	R5_TRY(r5_zfill(ctx, g, 0.0f));
	/* place 1 only reads the image */
	R5_TRY(staged(b->nufft_toep_place(st, &p->geom, coils, (float complex *)in, g->data, 1),
				"NUFFT normal, zero-pad"));
	R5_TRY(r5_fft_raw(ctx, flags, g, g, 0));
	R5_TRY(r5_zmul(ctx, g, g, p->psf_hat, 0));
	R5_TRY(r5_fft_raw(ctx, flags, g, g, 1));
	return staged(b->nufft_toep_place(st, &p->geom, coils, out, g->data, 0), "NUFFT normal, crop");
}

void r5_nufft_get_info(const r5_nufft_plan *p, r5_nufft_info *info)
{
	memset(info, 0, sizeof *info);
	info->dims = p->D;
	info->width = p->w;
	info->beta = p->beta;
	info->oversampling = p->sigma;
	for (int d = 0; d < 3; d++)
		info->grid[d] = p->M[d];
	info->n_points = p->n_points;
	info->n_coils = p->C;
	long bytes = r5_linop_array_bytes(p->grid) + r5_linop_array_bytes(p->sorted) + r5_linop_array_bytes(p->psf_hat) +
		     r5_linop_array_bytes(p->toep) + r5_linop_array_bytes(p->toep_cols) + r5_linop_array_bytes(p->tile_corr) +
		     r5_linop_array_bytes(p->tile_tables);
	if (p->psf_plan) {
		r5_nufft_info psf;
		r5_nufft_get_info(p->psf_plan, &psf);
		bytes += psf.bytes;
	}
	if (p->n_points)
		bytes += p->n_points * (long)(2 * sizeof(int32_t) + p->D * (sizeof(int32_t) + sizeof(float))) +
			 (p->nb[p->D - 1] + 1) * (long)sizeof(long);
	for (int d = 0; d < p->D; d++)
		bytes += p->N[d] * (long)sizeof(float);
	info->bytes = bytes;
}

/* --- the operator --- */

static r5_status op_forward(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	return r5_nufft_forward(ctx, data, out, in);
}

static r5_status op_adjoint(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	return r5_nufft_adjoint(ctx, data, out, in);
}

static r5_status op_normal(r5_ctx *ctx, void *data, r5_array *out, const r5_array *in)
{
	r5_nufft_plan *p = data;
	if (!p->has_kernel)
		R5_TRY(r5_nufft_toeplitz(ctx, p, NULL));
	return r5_nufft_normal(ctx, p, out, in);
}

static void op_destroy(void *data) { r5_nufft_plan_destroy(data); }

static long op_held(const void *data)
{
	r5_nufft_info info;
	r5_nufft_get_info(data, &info);
	return info.bytes;
}

r5_status r5_linop_nufft(r5_ctx *ctx, const long image_dims[R5_DIMS], const r5_array *traj,
			 const r5_nufft_opts *opts, r5_linop **out)
{
	char td[128];
	*out = NULL;
	if (!traj || traj->where != R5_HOST || !r5_array_is_contiguous(traj))
		return r5_set_error(R5_EINVAL, "NUFFT operator: the trajectory must be a contiguous host array");
	r5_dims_format(td, sizeof td, traj->dims);
	int ok = traj->dims[0] == 3;
	for (int d = 3; d < R5_DIMS; d++)
		ok = ok && traj->dims[d] == 1;
	if (!ok)
		return r5_set_error(R5_EINVAL, "NUFFT operator: trajectory dims %s, want [3 read lines]", td);
	long n = traj->dims[1] * traj->dims[2], odims[R5_DIMS];
	r5_nufft_plan *p = NULL;
	R5_TRY(r5_nufft_plan_make(ctx, image_dims, opts, &p));
	float *coords = malloc(sizeof(float) * 3 * (size_t)n);
	if (!coords) {
		r5_nufft_plan_destroy(p);
		return r5_set_error(R5_ENOMEM, "NUFFT operator: %ld coordinates", 3 * n);
	}
	for (long i = 0; i < 3 * n; i++)
		coords[i] = crealf(traj->data[i]);
	r5_status s = r5_nufft_set_points(ctx, p, n, coords);
	free(coords);
	if (s != R5_OK) {
		r5_nufft_plan_destroy(p);
		return r5_error_context(s, "NUFFT operator, trajectory %s", td);
	}
	r5_dims_ones(odims);
	odims[1] = traj->dims[1], odims[2] = traj->dims[2], odims[3] = image_dims[R5_DIM_COIL];
	R5_TRY(r5_linop_create(ctx, "nufft", image_dims, odims, op_forward, op_adjoint, op_normal, p, op_destroy, out));
	(*out)->held = op_held;
	(*out)->in_place = R5_LINOP_INPLACE_NORMAL;
	return R5_OK;
}
