/* GRASP: golden-angle radial sparse parallel MRI (Feng, Grimm, Block, Chandarana, Kim, Xu, Axel,
 * Sodickson, Otazo, MRM 72:707, 2014): a dynamic series from golden-angle spokes binned into
 * frames of frame_spokes consecutive spokes (arrival order), reconstructed jointly with a
 * temporal total-variation penalty:
 *
 *     x = argmin_x  1/2 sum_t |W_t^1/2 (F_t S x_t - y_t)|^2 + lambda |D_t x|_1
 *                   [+ lambda_space |D_xy x|_2,1]
 *
 * x [Nx, Ny, 1, 1, ..., frames in dim 10] (model.md), S the coil maps [Nx, Ny, 1, coils], F_t
 * the NUFFT of frame t's spokes (recon/linop/nufft.h), W_t its radial density (the ramp of
 * recon/pipeline/grid.h, as GRASP puts the density compensation into the operator: the problem
 * is better conditioned and the gridded image A^H W y has the object's amplitude), D_t forward
 * differences along time (recon/linop/finite_diff.h, Neumann at the last frame), D_xy the
 * optional isotropic spatial TV.
 *
 * Solver: ADMM (recon/solve/admm.h) with z = D x; its x-update's CG runs on the normal operator
 * sum_t S^H T_t S x_t, T_t frame t's Toeplitz kernel of F_t^H W_t F_t (exact up to single
 * precision, one 2N-grid FFT pair per coil and frame, no gridding inside the iterations). One
 * Toeplitz plan per frame with one coil (so memory is frames x ([2N]^2 kernel + one 2N grid),
 * not x coils); A^H W y through one coil-batched NUFFT plan whose points are reset per frame.
 * lambda 0 (and lambda_space 0) gives the frames' independent weighted least-squares solutions
 * by CG (non-Cartesian CG-SENSE per frame on the same operator).
 *
 * Automatic weights (opts lambda < 0, the default): lambda = lambda_scale * max|x0|, x0 = the
 * maps-combined gridded series A^H W y (Feng et al. scale lambda by the maximum of the gridded
 * series the same way), so the penalty follows the data's scale; lambda_space likewise with
 * lambda_space_scale. rho (ADMM's penalty) is relative to A^H W A's scale (about 1 by the
 * density weights) and needs no data scaling.
 *
 * Measured (bench_grasp.sh, dynamic phantom 128^2, 8 coils, 24 frames x 21 spokes, readout x2,
 * noise 0.01, continuous motion; magnitudes against each frame's band-limited truth, least-
 * squares scale per frame; mean over frames, NRMSE / SSIM): gridding 0.186 / 0.37, NC-SENSE per
 * frame (r5_nc_sense_solve defaults) 0.124 / 0.52, density-weighted CG per frame (lambda 0, 10
 * iterations) 0.096 / 0.60, GRASP defaults 0.051 / 0.85 (59% below NC-SENSE), BART
 * `pics -t -R T:1024:0:0.01 -i 50` on the same data and maps 0.051 / 0.84 (0.003: 0.049 / 0.84).
 * lambda_scale 0.005 / 0.01 / 0.02 / 0.04 / 0.08 (defaults otherwise): NRMSE 0.054 / 0.051 /
 * 0.051 / 0.055 / 0.059, SSIM 0.79 / 0.83 / 0.85 / 0.84 / 0.85, so 0.02. With spatial TV too
 * (lambda_space -1, lambda_space_scale 0.1 x lambda_scale): 0.036 / 0.97 on this piecewise-
 * constant object (off by default, as in GRASP). CPU: 14.7 s user for GRASP with
 * FFTW_MEASURE plans (39 s with FFTW_ESTIMATE), BART 24 s user for its 50 iterations.
 *
 * Low rank + sparse (model R5_GRASP_LPLUSS; Otazo et al. 2015): x = L + S, L low rank as a
 * Casorati matrix [pixels x frames] (the background and its slow change), S sparse in the
 * temporal Fourier domain (the contrast and motion on top of it):
 *
 *     min  1/2 sum_t |W_t^1/2 (F_t S_c (L + S)_t - y_t)|^2 + lambda_L |L|_* + lambda_S |F_time S|_1
 *
 * by Otazo's iteration (their Algorithm 1, the proximal-gradient step on both parts from the
 * same iterate): L = SVT(M - S), S = F_time^H soft(F_time (M - L_prev)), M = L + S -
 * (A^H A (L + S) - A^H y) / |A^H A| (|A^H A| by a power iteration on the Toeplitz normal). The
 * singular values come from the Casorati Gram matrix (frames x frames, double), so the SVT is
 * X V diag(max(s - lambda_L, 0) / s) V^H, O(pixels x frames^2). Both thresholds are relative to
 * the first iterate (A^H y / |A^H A|): lambda_L = lowrank_scale x its largest singular value,
 * lambda_S = sparse_scale x the largest magnitude of its temporal spectrum. iters steps.
 * Measured (bench_grasp --ls-iters 30 --ls-sweep, the phantom above): mean NRMSE / SSIM 0.049 /
 * 0.90 at lowrank_scale 0.01, sparse_scale 0.005 (rank 19 of 24 at the end), GRASP's 0.051 /
 * 0.85 in the same run, 17 against 21 CPU s (FFTW_ESTIMATE, 2 threads); the sweep over both scales 0.005..0.08: 0.049..0.100,
 * sparse 0.0025 / 0.00125 (recon5t recon on the same phantom) no better; 20 steps instead of
 * 30: NRMSE 3 % higher.
 *
 * Coil maps: r5_grasp_maps, r5_nc_maps_espirit (nc_sense.h) on ALL the spokes: ESPIRiT on the
 * centre of the k-space of the time average (all spokes gridded together, ramp weights for the
 * whole scan, FFT'd, the calib x calib centre as the calibration block). With hundreds of
 * golden-angle spokes that centre is fully sampled, unlike one frame's.
 *
 * Host arrays, CPU contexts (the NUFFT's back ends). The stop hook is checked per frame in every
 * operator application and after every ADMM/CG step. */
#ifndef R5_PIPELINE_GRASP_H
#define R5_PIPELINE_GRASP_H

#include "../core/array.h"
#include "../core/progress.h"
#include "../linop/nufft.h"

typedef enum r5_grasp_model {
	R5_GRASP_TV = 0,  /* temporal (and optionally spatial) TV by ADMM: GRASP */
	R5_GRASP_LPLUSS,  /* low rank + sparse (Otazo, Candes, Sodickson, MRM 73:1125, 2015) */
} r5_grasp_model;

typedef struct r5_grasp_opts {
	r5_grasp_model model;
	long frame_spokes;        /* spokes per frame (21); trailing spokes short of a frame are dropped */
	int iters;                /* ADMM steps (20); lambda 0: CG iterations per frame */
	int cg_iters;             /* CG iterations per ADMM step (3) */
	float lambda;             /* temporal TV weight, absolute; < 0: automatic (default -1) */
	float lambda_scale;       /* automatic lambda = lambda_scale * max|x0| (0.02) */
	float lambda_space;       /* spatial TV weight, absolute; < 0: automatic; 0: off (default 0) */
	float lambda_space_scale; /* automatic lambda_space = lambda_space_scale * max|x0| (0.002) */
	float rho;                /* ADMM penalty (default 0.5) */
	float lowrank_scale;      /* L+S: singular-value threshold = lowrank_scale x sigma_1 of the
				   * first iterate's Casorati matrix (0.01) */
	float sparse_scale;       /* L+S: threshold of S's temporal Fourier coefficients =
				   * sparse_scale x their largest magnitude in the first iterate (0.005) */
	r5_nufft_opts nufft;      /* the NUFFT's accuracy */
} r5_grasp_opts;

extern const r5_grasp_opts r5_grasp_defaults;

typedef struct r5_grasp_info {
	long n_frames;
	float lambda, lambda_space; /* the weights used (L+S: lambda = S's threshold) */
	float lambda_lowrank;       /* L+S: the singular-value threshold used */
	long rank;                  /* L+S: singular values of L above zero at the end */
	int iters;                  /* ADMM steps (or CG iterations) run */
	long cg_iters;
	double seconds;
} r5_grasp_info;

/* coords: 3 n_read n_spokes floats (cycles per FOV, BART layout, in [-N/2, N/2)); samples
 * [1, n_read, n_spokes, coils] (host, arrival order); maps [Nx, Ny, 1, coils] (host);
 * image_dims [Nx, Ny, 1, coils]. images: [Nx, Ny, 1, 1, ..., n_frames in dim 10] (host),
 * n_frames = n_spokes / frame_spokes. x0 (may be NULL, same dims as images): receives the
 * maps-combined gridded series A^H W y. info may be NULL. Errors: frame_spokes < 1 or larger
 * than the scan, shapes that disagree, coordinates out of range (the NUFFT's message). */
r5_status r5_grasp_solve(r5_ctx *ctx, const long image_dims[R5_DIMS], const float *coords, const r5_array *samples,
			 const r5_array *maps, const r5_grasp_opts *opts, const r5_progress *progress, r5_array *images,
			 r5_array *x0, r5_grasp_info *info);

/* The encoding r5_grasp_solve works with, for tests and other solvers: A = W^1/2 F_t S on
 * [Nx, Ny, 1, ..., frames in dim 10] -> [1, n_read, frame_spokes, coils, ..., frames in dim 10],
 * its normal the per-frame Toeplitz sum (not adjoint(forward): the pair carries the NUFFT's
 * kernel error, the Toeplitz normal does not); *y the data in A's range (W^1/2 y, frame order).
 * Same arguments and checks as r5_grasp_solve; the operator copies the coordinates and borrows
 * maps (keep them alive); progress is checked per frame in every application. */
r5_status r5_grasp_operator(r5_ctx *ctx, const long image_dims[R5_DIMS], const float *coords, const r5_array *samples,
			    const r5_array *maps, const r5_grasp_opts *opts, const r5_progress *progress, r5_linop **op,
			    r5_array **y);

/* ESPIRiT maps [Nx, Ny, 1, coils] (new host array) from all spokes gridded together (see above),
 * calib: the calibration block's width (8..N, e.g. 24); coordinates at +N/2 are taken as -N/2. */
r5_status r5_grasp_maps(r5_ctx *ctx, const long image_dims[R5_DIMS], const float *coords, const r5_array *samples,
			int calib, r5_array **maps);

/* Singular-value thresholding of the Casorati matrix x [pix, T] (column t = x + pix t, host):
 * out = U diag(max(s - tau, 0)) V^H of x = U diag(s) V^H, through the Gram matrix x^H x in
 * double (T x T; T <= 32768). sigma1 (may be NULL): x's largest singular value; rank (may be
 * NULL): how many singular values exceed tau. out NULL: only those; out may equal x only if
 * T == 1. */
r5_status r5_casorati_svt(long pix, long T, const float complex *x, float tau, float complex *out, double *sigma1,
			  long *rank);

#endif
