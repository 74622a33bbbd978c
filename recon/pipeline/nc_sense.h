/* Non-Cartesian CG-SENSE on arrays, and coil maps from non-Cartesian data (issue 14).
 *
 * r5_nc_sense_solve: x = argmin ||W^1/2 (A S x - y)||^2 + lambda_abs ||x||^2 with A the NUFFT of
 * recon/linop/nufft.h (unitary-like scaling, BART's units and layout), S the coil maps and W
 * the optional density weights, solved by CG (recon/solve/cg.h) on the normal equations
 * (S^H T_W S + lambda_abs) x = S^H A^H W y, where T_W = A^H W A is the Toeplitz normal
 * (r5_nufft_toeplitz: one 2N FFT pair per coil and iteration, exact to single precision; no
 * NUFFT inside the loop). lambda is relative: lambda_abs = lambda x the mean diagonal of
 * S^H T_W S (T_W's diagonal is sum_j w_j / N, times the mean of sum_c |S_c|^2), so the same
 * lambda means the same thing at any data scale, trajectory length or map normalisation.
 * Without density weights this is `bart pics -l2 -r lambda_abs -t` (BART's pics -t has no
 * density weighting either); with them (use_density) the weighted problem converges faster
 * on radial data at the price of noise (the ramp is a preconditioner that changes the solution).
 *
 * Density weights here (use_density 1): a radial ramp w_j = max(|k_j|, 1/4) / (N_max / 2) from
 * the coordinates alone (cycles per FOV; the 1/4 keeps DC, Joseph's centre correction in
 * spirit), fine for radial and rough for spirals. recon/linop/density.h (helper "traj") has
 * Pipe-Menon for other trajectories.
 *
 * r5_nc_maps_espirit: the density-compensated adjoint NUFFT gives coil images on the recon
 * matrix, their centred FFT a Cartesian k-space; its centre calib^d block is ESPIRiT's ACS
 * (recon/calib/espirit.h, defaults, one map set). On undersampled radial data (25 spokes)
 * this centre is Nyquist-sampled only inside the radius n_spokes / pi (~8 samples). Measured
 * (bench/bench_noncart.sh, real radial cardiac set, magnitude correlation with `bart nlinv -i
 * 10 -t`): BART's chain (nufft -a without density weights, fft, ecalib -r 24, pics -l2 -t)
 * gives the edge-only image of issue 14 (0.46); this function's maps, from the ramp-weighted
 * gridding, and r5_nc_sense_solve give 0.960 (spiral: 0.976, BART's 0.66), with the ESPIRiT
 * crop mask's holes where the coils' calibration is poor. recon/calib/nlinv.h (joint image
 * and coils, 0.991) is what the `sense` pipeline uses for its maps. Units: maps are ESPIRiT's
 * (sum_c |S_c|^2 = 1 inside the crop mask, 0 outside).
 *
 * Arrays: host arrays on a CPU context (the NUFFT runs on the host): samples [1, n_read,
 * n_lines, coils] (n_read * n_lines = n_points), coords[3 j + d] as r5_nufft_set_points, maps
 * and coil images [Nx, Ny, Nz, coils], image [Nx, Ny, Nz]. image_dims = [Nx, Ny, Nz, coils]. */
#ifndef R5_PIPELINE_NC_SENSE_H
#define R5_PIPELINE_NC_SENSE_H

#include "../core/progress.h"
#include "../linop/nufft.h"

/* The normal A^H W A inside CG. Toeplitz: the 2N convolution (exact to single precision, no
 * NUFFT in the loop; a kernel per trajectory: one 2N PSF NUFFT and FFT). NUFFT: the plan's
 * forward then adjoint (W between them), at the plan's accuracy, no kernel; cheaper when the
 * NUFFT grid is small against 2N and the points are few: measured (bench_rt_iterative, 256^2,
 * 8 coils, 21 spokes of 512 samples, sigma 1.25, tolerance 1e-3, width 5): 0.029 CPU s per
 * application against the Toeplitz's 0.19 (FFTW_ESTIMATE). At sigma 2 and many points (the sense
 * pipeline's whole scan) the Toeplitz stays the faster and the exact one. */
typedef enum r5_nc_normal {
	R5_NC_NORMAL_TOEPLITZ = 0,
	R5_NC_NORMAL_NUFFT = 1,
} r5_nc_normal;

typedef struct r5_nc_sense_opts {
	int iters;          /* CG iterations at most (30) */
	float lambda;       /* Tikhonov weight relative to the normal's mean diagonal (1e-3) */
	int use_density;    /* 0: plain least squares (default); 1: radial ramp weights W */
	double tolerance;   /* CG stops at |r| / |b| below this (0: run all iterations; default 0) */
	int warm_start;     /* non-zero: image holds the initial guess (a previous frame) */
	int normal;         /* r5_nc_normal: how CG applies A^H W A (default Toeplitz) */
	r5_nufft_opts nufft;
} r5_nc_sense_opts;

extern const r5_nc_sense_opts r5_nc_sense_defaults;

/* The reconstruction of one frame (see the header paragraph). opts NULL: defaults. progress:
 * stage "nc_sense", checked after every CG iteration, its stop status returned. image: host
 * [Nx, Ny, Nz] (other dims 1), overwritten (read first when warm_start). */
r5_status r5_nc_sense_solve(r5_ctx *ctx, const long image_dims[R5_DIMS], long n_points, const float *coords,
			    const r5_array *samples, const r5_array *maps, const r5_nc_sense_opts *opts,
			    const r5_progress *progress, r5_array *image);

/* A frame solver: r5_nc_sense_solve for a series of frames (pipeline realtime, mode iterative)
 * without rebuilding per frame what does not depend on the frame. Made once per series
 * (image_dims, opts): the NUFFT plan (kernel fit, de-apodisation, and, through it, the grid,
 * the sorted-samples copy, the Toeplitz kernel's buffer, the PSF's own 2N plan and the 2N
 * coil-group grid: nufft.h r5_nufft_toeplitz), coil images and rhs, all kept; the context keeps
 * the FFT plans. Per frame (each frame has its own spokes): the points set, the Toeplitz kernel
 * of those points, rhs = S^H A^H W y and CG. With warm_start 0 a frame is the same bits as
 * r5_nc_sense_solve on the same input (which is make + solve + destroy); warm_start 1 starts
 * CG at image's content (the previous frame). Sliding windows (consecutive frames sharing most
 * spokes) gain nothing more here: the kernel and rhs are linear in the spokes, but updating them
 * by the spokes that enter and leave saves only their spreading, not the FFTs that dominate
 * (the timing below says which stage costs what); what the overlap buys is the warm start. */
typedef struct r5_nc_sense_frames r5_nc_sense_frames;

enum {
	R5_NC_STAGE_PLAN,     /* make (the last frame's solve leaves it as it was) */
	R5_NC_STAGE_POINTS,   /* set points (binning, sort) and density weights */
	R5_NC_STAGE_TOEPLITZ, /* the Toeplitz kernel (the PSF's NUFFT and the 2N FFT), or the pair's buffer */
	R5_NC_STAGE_RHS,      /* S^H A^H W y */
	R5_NC_STAGE_CG,       /* CG through the Toeplitz normal */
	R5_NC_STAGES
};

/* Seconds per stage of make and of the last solve: wall (monotonic clock) and CPU (the whole
 * process's, CLOCK_PROCESS_CPUTIME_ID: meaningful in a benchmark, not in a busy server). */
typedef struct r5_nc_sense_timing {
	double wall_s[R5_NC_STAGES], cpu_s[R5_NC_STAGES];
	int cg_iters;        /* iterations the last solve ran */
	double rel_residual; /* its |r| / |b| at the end */
} r5_nc_sense_timing;

/* opts NULL: defaults (opts->warm_start is ignored: solve takes it per frame). */
r5_status r5_nc_sense_frames_make(r5_ctx *ctx, const long image_dims[R5_DIMS], const r5_nc_sense_opts *opts,
				  r5_nc_sense_frames **out);
/* One frame: arguments as r5_nc_sense_solve's (image_dims the make's); the samples' shape may
 * change between frames. */
r5_status r5_nc_sense_frames_solve(r5_ctx *ctx, r5_nc_sense_frames *frames, long n_points, const float *coords,
				   const r5_array *samples, const r5_array *maps, int warm_start,
				   const r5_progress *progress, r5_array *image);
void r5_nc_sense_frames_timing(const r5_nc_sense_frames *frames, r5_nc_sense_timing *timing);
void r5_nc_sense_frames_destroy(r5_nc_sense_frames *frames); /* NULL is harmless */

/* ESPIRiT maps from the gridded centre (calib: ACS width per dimension, e.g. 24; at least 8 and
 * at most the matrix). *maps: new host array [Nx, Ny, Nz, coils]. */
r5_status r5_nc_maps_espirit(r5_ctx *ctx, const long image_dims[R5_DIMS], long n_points, const float *coords,
			     const r5_array *samples, int calib, r5_array **maps);

/* Bytes r5_nc_sense_solve holds at its peak for image_dims and n_points (NUFFT plan, Toeplitz
 * kernel and its 2N grid for all coils, coil images, rhs and CG's vectors, weights); for the
 * memory estimate. */
double r5_nc_sense_bytes(const long image_dims[R5_DIMS], long n_points, int use_density);

/* Density-compensated coil images: A^H W y with W the radial ramp above (weights NULL) or the
 * given n_points weights. coil_images: host [Nx, Ny, Nz, coils]. */
r5_status r5_nc_grid_coils(r5_ctx *ctx, const long image_dims[R5_DIMS], long n_points, const float *coords,
			   const r5_array *samples, const float *weights, r5_array *coil_images);

/* The ramp weights of use_density (n_points values). */
r5_status r5_nc_ramp_weights(const long image_dims[R5_DIMS], long n_points, const float *coords, float *weights);

#endif
