/* Per-element math of the NUFFT (recon/linop/nufft.h), shared by the CPU spreader and a future
 * CUDA twin so that both compute the same function. Plain C that nvcc also compiles; functions
 * marked R5_HD.
 *
 * Kernel: the "exponential of semicircle" (Barnett, Magland and af Klinteberg, "A parallel
 * nonuniform fast Fourier transform library based on an exponential of semicircle kernel",
 * SIAM J Sci Comput 41:C479, 2019), in grid cells t:
 *     phi(t) = exp(beta (sqrt(1 - (2 t / w)^2) - 1)) for |t| <= w/2, 0 outside,
 * width w cells, beta = 2.30 w for oversampling sigma = 2 and beta = 0.97 pi (1 - 1/(2 sigma)) w
 * otherwise (the paper's rules, as FINUFFT's setup_spreader). Width from a tolerance eps:
 * w = ceil(-log10(eps / 10)) for sigma = 2, ceil(-ln(eps) / (pi sqrt(1 - 1/sigma))) otherwise.
 *
 * De-apodisation: the kernel's Fourier transform phi_hat(xi) = int phi(t) cos(2 pi xi t) dt,
 * xi in cycles per grid cell, evaluated by Gauss-Legendre quadrature on [0, w/2] (in double:
 * once per plan and image coordinate, not per point).
 *
 * A point at centred grid coordinate t (cells; grid index i holds frequency i - M/2) touches the
 * w cells start .. start + w - 1 with start = ceil(t - w/2); the weight of cell start + i is
 * phi(d0 - i) with d0 = t - start in (w/2 - 1, w/2]. The split is made in double once per point
 * (set points), so that the weights come from a small float offset whatever the grid size. */
#ifndef R5_CORE_NUFFT_MATH_H
#define R5_CORE_NUFFT_MATH_H

#include <math.h>
#include <stdint.h>

#include "hd.h"

#define R5_NUFFT_MAX_WIDTH 16

/* Kernel shape parameter for width w and oversampling sigma. */
R5_HD double r5_nufft_beta(int width, double sigma)
{
	if (sigma == 2.0)
		return 2.30 * width;
	return 0.97 * R5_PI * (1.0 - 1.0 / (2.0 * sigma)) * width;
}

/* Width that reaches relative error about eps (at least 2, at most R5_NUFFT_MAX_WIDTH). */
R5_HD int r5_nufft_width_for(double eps, double sigma)
{
	double w = sigma == 2.0 ? ceil(-log10(eps / 10.0)) : ceil(-log(eps) / (R5_PI * sqrt(1.0 - 1.0 / sigma)));
	return w < 2 ? 2 : w > R5_NUFFT_MAX_WIDTH ? R5_NUFFT_MAX_WIDTH : (int)w;
}

/* phi at distance z (cells) for width w: inv_half = 2 / w. */
R5_HD float r5_nufft_kernel(float z, float beta, float inv_half)
{
	float s = z * inv_half;
	float q = 1.0f - s * s;
	return q < 0.0f ? 0.0f : expf(beta * (sqrtf(q) - 1.0f));
}

/* The same in double (the de-apodisation quadrature). */
R5_HD double r5_nufft_kernel_d(double z, double beta, double inv_half)
{
	double s = z * inv_half;
	double q = 1.0 - s * s;
	return q < 0.0 ? 0.0 : exp(beta * (sqrt(q) - 1.0));
}

/* The w weights of a point whose offset is d0 (cells from its first cell). */
R5_HD void r5_nufft_weights(float d0, int width, float beta, float *weights)
{
	float inv_half = 2.0f / (float)width;
	for (int i = 0; i < width; i++)
		weights[i] = r5_nufft_kernel(d0 - (float)i, beta, inv_half);
}

/* The same weights from per-tap polynomials (as FINUFFT's Horner kernels): weight i is
 * sum_k coef[k][i] s^(n_coef - 1 - k), s = 2 (d0 - (w - 1) / 2) in [-1, 1], coefficients fitted
 * in double at plan time (recon/linop/nufft.c); no exp or sqrt per tap. coef[k][i] is 0 for
 * i >= width. */
#define R5_NUFFT_MAX_COEFS 24
R5_HD void r5_nufft_weights_poly(float d0, int width, int n_coef, const float (*coef)[R5_NUFFT_MAX_WIDTH],
				 float *weights)
{
	/* all R5_NUFFT_MAX_WIDTH lanes (a fixed trip count vectorises; taps past the width have zero
	 * coefficients): weights holds R5_NUFFT_MAX_WIDTH floats */
	float s = 2.0f * d0 - (float)(width - 1);
	for (int i = 0; i < R5_NUFFT_MAX_WIDTH; i++)
		weights[i] = coef[0][i];
	for (int k = 1; k < n_coef; k++)
		for (int i = 0; i < R5_NUFFT_MAX_WIDTH; i++)
			weights[i] = weights[i] * s + coef[k][i];
}

/* First cell and offset of a point at centred grid coordinate t. */
R5_HD void r5_nufft_split(double t, int width, int *start, float *d0)
{
	double s = ceil(t - 0.5 * width);
	*start = (int)s;
	*d0 = (float)(t - s);
}

/* Grid index of cell i of a periodic dimension of m cells (i may be outside [0, m)). */
R5_HD int r5_nufft_wrap(int i, int m) { return i < 0 ? i + m : i >= m ? i - m : i; }

/* phi_hat(xi) by the quadrature nodes x[q] and weights wq[q] on [0, w/2]. */
R5_HD double r5_nufft_kernel_ft(double xi, int width, double beta, int n_nodes, const double *x, const double *wq)
{
	double inv_half = 2.0 / width, sum = 0.0;
	for (int q = 0; q < n_nodes; q++)
		sum += wq[q] * r5_nufft_kernel_d(x[q], beta, inv_half) * cos(2.0 * R5_PI * xi * x[q]);
	return 2.0 * sum;
}

/* --- the tile method: the back ends' nufft_* slots (gpu/nufft_cuda.cu, recon/cpu/cpu_nufft.c) ---
 *
 * The plan's geometry and its sorted points, as the slots see them (plain data, no pointers to
 * the plan). Points are sorted by bin (bin[d] cells along each of the plan's dims, x fastest in
 * the bin index); a subproblem is a run of at most R5_NUFFT_SUB_POINTS sorted points of one bin
 * (a dense bin is several subproblems: the load of a radial centre is shared). The tile of bin b
 * is the bin plus the kernel's reach: origin b_d bin_d - floor(w/2), bin_d + w cells along each
 * dim, every cell that a point of the bin can touch (set points checks this per point and clears
 * `core_ok` if one does not fit; such a point goes straight to the grid, atomically).
 *
 * Spreading (type 1, cuFINUFFT's SM method, Shih et al. 2021, arXiv:2102.08463): a subproblem's
 * points are spread into its tile (shared memory on the GPU), then the tile is added to the grid:
 * a cell that no other tile covers (the tile's core, r5_nufft_tile_core, used only where the bin
 * is a single subproblem) with a plain add, every other cell (the halo) atomically. Coils are
 * batched inside: a point's weights are computed once and applied to every coil of the group
 * (the tile is [cells][group], coil fastest, like the grid). */
#define R5_NUFFT_SUB_POINTS 1024

struct r5_nufft_geom {
	int dims, width, n_coef; /* D, w, Horner coefficients per tap */
	int core_ok;             /* every point lies in its bin's tile: core cells may take plain adds */
	float beta;
	long N[3], M[3];         /* image and oversampled grid (1 past dims) */
	long C;                  /* coils */
	long n_points;
	long bin[3], nb[3];      /* bin size (cells) and bins per dimension (1 past dims) */
	float coef[R5_NUFFT_MAX_COEFS][R5_NUFFT_MAX_WIDTH];
};

/* Where the back end computes (device memory for CUDA): the tables of the sorted points. */
struct r5_nufft_points {
	const int32_t *order;     /* n_points: sorted position -> sample index */
	const int32_t *start;     /* dims per sorted point: first cell (centred grid, unwrapped) */
	const float *offset;      /* dims per sorted point: t - first cell */
	const int32_t *sub_first; /* n_sub + 1: first sorted point of each subproblem (last: n_points) */
	const int32_t *sub_bin;   /* n_sub: its bin */
	long n_sub;
};

/* i mod m in [0, m); the cases a kernel meets (i within one period of [0, m)) without a division
 * (a 64-bit modulo is ~100 instructions on a GPU, and the interpolator wraps 3 w indices a point) */
R5_HD long r5_nufft_mod(long i, long m)
{
	if (i >= 0 && i < m)
		return i;
	if (i < 0 && i >= -m)
		return i + m;
	if (i >= m && i < 2 * m)
		return i - m;
	long r = i % m;
	return r < 0 ? r + m : r;
}

/* Bin `bin`'s coordinates b, its tile's first cell (unwrapped) and lengths. */
R5_HD void r5_nufft_tile(const struct r5_nufft_geom *g, long bin, long b[3], long origin[3], long len[3])
{
	for (int d = 0; d < 3; d++) {
		b[d] = bin % g->nb[d];
		bin /= g->nb[d];
		origin[d] = d < g->dims ? b[d] * g->bin[d] - g->width / 2 : 0;
		len[d] = d < g->dims ? g->bin[d] + g->width : 1;
	}
}

/* Whether local cell l of bin b's tile is covered by no other tile: along every dim it lies at
 * least ceil(w/2) cells past the bin's first cell and floor(w/2) before its end (or the grid's),
 * and the dim has 3 bins or more (fewer: neighbours on both sides are the same tile, or wrap). */
R5_HD int r5_nufft_tile_core(const struct r5_nufft_geom *g, const long b[3], const long l[3])
{
	int w = g->width;
	for (int d = 0; d < g->dims; d++) {
		long first = b[d] * g->bin[d], end = first + g->bin[d] < g->M[d] ? first + g->bin[d] : g->M[d];
		long cell = first - w / 2 + l[d];
		if (g->nb[d] < 3 || cell < first + (w + 1) / 2 || cell >= end - w / 2)
			return 0;
	}
	return 1;
}

/* The w weights of a sorted point along each dim (offset: its dims offsets); wt[d][0] = 1 past
 * the plan's dims. */
R5_HD void r5_nufft_point_weights(const struct r5_nufft_geom *g, const float *offset,
				  float wt[3][R5_NUFFT_MAX_WIDTH])
{
	for (int d = 0; d < 3; d++) {
		if (d < g->dims)
			r5_nufft_weights_poly(offset[d], g->width, g->n_coef, g->coef, wt[d]);
		else
			wt[d][0] = 1.0f;
	}
}

/* Image pixel q (x fastest, one coil) -> its cell in the oversampled image (x mod M, one coil,
 * in cells), and its coordinates n. */
R5_HD long r5_nufft_pixel_cell(const struct r5_nufft_geom *g, long q, long n[3])
{
	long cell = 0, stride = 1;
	for (int d = 0; d < 3; d++) {
		n[d] = q % g->N[d];
		q /= g->N[d];
		long x = n[d] - g->N[d] / 2;
		cell += stride * (x < 0 ? x + g->M[d] : x);
		stride *= g->M[d];
	}
	return cell;
}

/* The de-apodisation factor of pixel n from the packed table corr = [dim 0 | dim 1 | dim 2]
 * (N0 + N1 + N2 floats; the dim-2 entry is 1 in 2D), multiplied in the CPU plan's order. */
R5_HD float r5_nufft_deapod_factor(const struct r5_nufft_geom *g, const float *corr, const long n[3])
{
	return corr[g->N[0] + g->N[1] + n[2]] * corr[g->N[0] + n[1]] * corr[n[0]];
}

/* Image pixel q -> its cell in the Toeplitz 2N grid (x mod 2N along the plan's dims). */
R5_HD long r5_nufft_toep_cell(const struct r5_nufft_geom *g, long q)
{
	long cell = 0, stride = 1;
	for (int d = 0; d < 3; d++) {
		long n = q % g->N[d], len = d < g->dims ? 2 * g->N[d] : 1;
		q /= g->N[d];
		long x = n - g->N[d] / 2;
		cell += stride * (x < 0 ? x + len : x);
		stride *= len;
	}
	return cell;
}

#endif
