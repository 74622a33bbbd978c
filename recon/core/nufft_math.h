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

#endif
