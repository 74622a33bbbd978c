/* GRAPPA (Griswold et al., MRM 47:1202, 2002) for uniformly undersampled Cartesian k-space, in
 * ky (1D) or ky-kz (2D, e.g. 2x2 in 3D), and its analytic g-factor (Breuer et al., MRM 62:739,
 * 2009).
 *
 * Calibration: in the fully sampled auto-calibration (ACS) block every position can play the
 * role of a sampled grid point, so each "fit" takes the source points of one kernel placement
 * (kernel_x readout points x src lines along each accelerated dimension, spaced by R, all
 * coils) as a row of A and the missing points between them (one column per coil and per target
 * offset (ry, rz) != 0) as a row of T. The weights X solve the Tikhonov-regularised normal
 * equations (A^H A + lambda I) X = A^H T, lambda = conf.lambda * trace(A^H A) / n; A^H A and
 * A^H T come from the back end's zgemm, the small Cholesky solve runs on the host in double.
 *
 * Application: because the undersampled k-space is zero off the sampling grid, all target
 * offsets together form one convolution kernel K (identity at displacement 0) with
 *   k_full(t) = sum_d K(d) k_zf(t + d)
 * and in image space the convolution becomes per-pixel coil mixing u(r) = W(r) a(r) with a the
 * zero-filled coil images and W = sqrt(N) IFFT(K flipped, zero-padded) (centred, unitary).
 * W is made one output coil and one group of input coils at a time (memory N x group), so 3D
 * and 32 coils fit.
 *
 * g-factor: with combination weights p (per pixel, over coils) and white noise (prewhitened
 * data), the noise of p^H W a relative to the fully sampled p^H x is
 *   g = |W^H p| / (R |p|)
 * (R = Ry Rz), which is 1 at R = 1. Acquired ACS lines put back afterwards are not credited. */
#ifndef R5_CALIB_GRAPPA_H
#define R5_CALIB_GRAPPA_H

#include "../core/array.h"
#include "../core/progress.h"

typedef struct r5_grappa_conf {
	int kernel_x;   /* readout width (odd: even is reduced by one; capped at nx); 0: 7 for ky, 5 for ky-kz */
	int src_lines;  /* source lines per accelerated dimension (even); 0: 4 (2 in ky-kz when
			 * 16 kernel_x coils > 800) */
	float lambda;   /* Tikhonov weight relative to trace(A^H A) / n */
	long max_fits;  /* at most this many ACS fits (rows of A); 0: 6 x unknowns */
	/* stop hook (NULL: never stop), checked between blocks of ACS fits of the A^H A product
	 * (3D 2x2, 8 coils: 640 unknowns, 3840 fits, ~1 s in one piece) and around the solve */
	const r5_progress *progress;
} r5_grappa_conf;

extern const r5_grappa_conf r5_grappa_defaults;

/* A calibrated kernel: weights[wx, wy, wz, coil_in, coil_out] (host, contiguous) holding K
 * flipped about the centre (index w/2 is displacement 0), i.e. ready to be zero-padded and
 * transformed to image space:  k_full(t) = sum_i weights[i] k_zf(t - (i - w/2)). */
typedef struct r5_grappa_kernel {
	int accel[2];   /* Ry, Rz */
	long width[3];  /* wx, wy, wz (odd) */
	long n_coils;
	long n_fits;    /* ACS fits used */
	double residual; /* relative calibration residual |A X - T| / |T| */
	r5_array *weights;
} r5_grappa_kernel;

void r5_grappa_kernel_free(r5_grappa_kernel *kernel); /* NULL is harmless */

/* Acceleration and sampling-grid offset of a ky-kz mask (ny x nz, y fastest, non-zero =
 * sampled), from the lines outside the calibration block calib_yz (centred as in
 * calib_region.h): the spacing is the gcd of their distances. header_accel (may be NULL; 1 =
 * not stated) is checked against it ("header says R=3 but sampled lines outside the calibration
 * region are spaced by 2"). Non-uniform sampling is an error. No lines outside: accel 1 x 1. */
r5_status r5_grappa_sampling(const unsigned char *mask, long ny, long nz, const long calib_yz[2],
			     const int header_accel[2], int accel[2], int offset[2]);

/* Calibrates from kspace (host, [nx, ny, nz, coils], fully sampled in the centred block
 * calib[0..2] = x, y, z widths). R5_EINVAL naming the widths when the block is too small; the
 * hook's status ("GRAPPA calibration: stage ...") when conf->progress says stop. */
r5_status r5_grappa_calibrate(r5_ctx *ctx, const r5_array *kspace, const long calib[3], const int accel[2],
			      const r5_grappa_conf *conf, r5_grappa_kernel **out);

/* Image-space application: aliased = centred unitary IFFT of the zero-filled grid data (work,
 * [nx, ny, nz, coils]); coil_images (work, same dims) receives W a. When gfactor (work,
 * [nx, ny, nz, 1]) is given, weights (work, [nx, ny, nz, coils]: coil combination weights p)
 * must be too, and gfactor receives |W^H p| / (R |p|) (real, 0 where p = 0).
 * The mixing runs per output coil and per group of input coils (about R5_PROGRESS_CHUNK_VALUES
 * grid values at a time: one group holds the IFFT of that many kernel values), with a check
 * of progress (NULL: never stop) after each group. */
r5_status r5_grappa_apply(r5_ctx *ctx, const r5_grappa_kernel *kernel, const r5_array *aliased,
			  r5_array *coil_images, const r5_array *weights, r5_array *gfactor,
			  const r5_progress *progress);

#endif
