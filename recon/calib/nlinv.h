/* NLINV for non-Cartesian data: image and coil sensitivities estimated jointly by regularised
 * nonlinear inversion (Uecker, Hohage, Block, Frahm, MRM 60:674, 2008; non-Cartesian through the
 * Toeplitz PSF as in Uecker et al., "Real-time MRI at a resolution of 20 ms", NMR Biomed
 * 23:986, 2010). Chosen over "better ESPIRiT maps + NC-SENSE" for issue 14's real radial set
 * (25 spokes, 12 coils): the gridded centre is Nyquist-sampled only within n_spokes / pi ~ 8
 * samples, too little for ESPIRiT (whose maps from it give the edge-only image), while NLINV
 * needs no calibration region at all — the coils are held smooth by a Sobolev norm and fitted
 * to all the data, the image with them.
 *
 * Model: y_c = A (rho . c_c), c_c = crop_N(IFFT_M(w . chat_c)), with A the NUFFT of
 * recon/linop/nufft.h on the recon matrix N, chat_c the coil's k-space on the M = 2N grid
 * (coils live on twice the FOV, as BART's nlinv -t, so that their smoothness is not forced to
 * be periodic across the object's FOV), w(k) = (1 + a |k|^2)^(-b/2) with k_d = (i_d - M_d/2) /
 * M_d (BART's klaplace), a = 220, b = 32. Unknowns x = (rho, chat), rho = 1 and chat = 0 at
 * the start. IRGNM: for n = 0..steps-1, with alpha_n = max(alpha0 / reduction^n, alpha_min),
 *   (DG^H DG + alpha_n) dx = DG^H (y - G(x_n)) - alpha_n x_n,   x_{n+1} = x_n + dx
 * solved by CG (recon/solve/cg.h, cg_iters at most, relative residual cg_tolerance, as BART's
 * irgnm: 0.1). Everything runs through the Toeplitz normal A^H A (r5_nufft_toeplitz: one 2N
 * FFT pair per coil, exact to single precision): DG^H DG dx needs no NUFFT, and DG^H (y - G x)
 * = [sum_c conj(c_c) g_c ; w . FFT_M(pad_M(conj(rho) g_c))] with g = A^H y - A^H A (rho c),
 * where A^H y is computed once. A CG iteration costs, per coil, one FFT pair on M (the
 * Sobolev coil transform and its adjoint) and one on 2N (the Toeplitz normal). The coils'
 * k-space is kept only where w is above 1e-9 of its peak (|k_d| < 51 of M = 512 at a = 220,
 * b = 32: chat is [K0, K1, K2, C], K ~ 102), and the coil transform runs one dimension at a
 * time (pad K_d -> M_d, 1D FFT, crop to N_d), a third of the FFT work of the full M grid.
 *
 * Measured (bench/bench_noncart.sh, 1 thread, a loaded 2-core machine; Pearson correlation of
 * the magnitudes with `bart nlinv -i 10 -t` (BART 0.8.00), whose image is on the same recon
 * matrix, its coils on the 2x grid): real radial cardiac 256^2, 12 coils, 25 spokes 0.991 (170
 * CG iterations, 46 user s; BART 112 user s); real spiral 320^2, 8 coils, 0.9975 (114 CG
 * iterations, 17 user s; BART 82); BART-phantom radial 256^2, 8 coils, 201 spokes 0.992 (16
 * user s; BART 52).
 *
 * Scale: the samples are scaled to norm data_norm (100, as BART's nlinv) for the solve, so
 * alpha0 means the same for any data; the image is returned in the data's units. Output (as
 * BART's nlinv without -N): image = rho . sqrt(sum_c |c_c|^2), maps = c / sqrt(sum_c |c_c|^2)
 * (0 where all coils are 0).
 *
 * Arrays: host, CPU context (the NUFFT's); samples [1, n_read, n_lines, coils] with n_read *
 * n_lines = n_points, coords as r5_nufft_set_points (cycles per FOV), image [Nx, Ny, Nz], maps
 * [Nx, Ny, Nz, coils]. image_dims = [Nx, Ny, Nz, coils]. */
#ifndef R5_CALIB_NLINV_H
#define R5_CALIB_NLINV_H

#include "../core/progress.h"
#include "../linop/nufft.h"

typedef struct r5_nlinv_conf {
	int newton_steps;    /* IRGNM steps (10, as `bart nlinv -i 10`) */
	float alpha0;        /* first regularisation weight (1) */
	float alpha_min;     /* floor of the weight (0) */
	float reduction;     /* alpha divided by this every step (2) */
	int cg_iters;        /* CG iterations per step at most (100) */
	float cg_tolerance;  /* CG stops at |r| / |b| below this (0.1) */
	float sobolev_a;     /* 220 */
	float sobolev_b;     /* 32 */
	float data_norm;     /* samples scaled to this norm for the solve (100) */
	r5_nufft_opts nufft; /* the NUFFT's accuracy (r5_nufft_defaults) */
	/* stop hook, checked after every CG iteration: stage "nlinv", fractions 0..1 over the steps */
	const r5_progress *progress;
} r5_nlinv_conf;

extern const r5_nlinv_conf r5_nlinv_defaults;

/* What a run did. */
typedef struct r5_nlinv_info {
	int cg_iters;      /* CG iterations over all Newton steps */
	long coil_kspace[3]; /* K_d: the coils' k-space widths kept on the 2N grid */
} r5_nlinv_info;

/* Joint estimate (see above). conf NULL: defaults. image: host [Nx, Ny, Nz] (overwritten);
 * maps: NULL or host [Nx, Ny, Nz, coils] (overwritten); info: NULL or filled. Errors: shapes,
 * coordinates outside [-N_d/2, N_d/2), all-zero samples, the hook's stop status. */
r5_status r5_nlinv_nc(r5_ctx *ctx, const r5_nlinv_conf *conf, const long image_dims[R5_DIMS], long n_points,
		      const float *coords, const r5_array *samples, r5_array *image, r5_array *maps,
		      r5_nlinv_info *info);

/* Bytes r5_nlinv_nc holds at its peak for image_dims and n_points (NUFFT plan, Toeplitz kernel
 * and its 2N grid for all coils, the coil-image arrays, x and CG's vectors, the coil transform's
 * stage buffers), conf NULL: defaults; for the memory estimate. */
double r5_nlinv_bytes(const r5_nlinv_conf *conf, const long image_dims[R5_DIMS], long n_points);

#endif
