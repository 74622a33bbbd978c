/* Density compensation weights for non-Cartesian trajectories: the analytic ramp of radial
 * (2D and 3D kooshball) and the iterative Pipe-Menon weights of any trajectory.
 *
 * Points as r5_nufft_set_points: coords[3 j + d] = k_d of point j, cycles per FOV (BART's
 * [3, n_read, n_spokes] layout); weights: one float per point.
 *
 * Scaling (both functions): w_j is the k-space area (volume in 3D) that point j stands for,
 * in cells of the reconstruction grid ((cycles/FOV)^2), i.e. 1 per sample on the full
 * Cartesian grid. Then A^H W A is about the identity on the band of k-space the trajectory
 * covers (A the unitary-scaled NUFFT of nufft.h, for which the Cartesian A^H A = I), so that
 * the density-compensated adjoint of a fully sampled scan comes back at the image's own
 * amplitude (no further scale), and the density-compensated adjoint of a constant-1 k-space
 * has the value sqrt(N) (covered area / N) at the image centre: sqrt(N) pi / 4 for a radial
 * trajectory filling the disc |k| < N/2 of an N x N image (the Cartesian adjoint of ones
 * restricted to the disc). Measured (tests/unit/test_density.c: 64^2 phantom of smooth-edged
 * discs, band-limited to the disc, NUFFT defaults; NRMSE of A^H W A f against f at scale 1, and
 * the least-squares scale):
 *   full radial, 101 spokes (pi/2 N), readout 2x oversampled (dk 1/2): ramp 0.035 (scale 0.977),
 *     Pipe-Menon 0.025 (0.9996); without readout oversampling (dk 1): 0.168 (0.917) and 0.148
 *     (0.964) — any diagonal weight is a coarse radial quadrature at dk = 1 when the spectrum
 *     varies on the scale of a sample (a direct DFT gives the same 0.168 at 101 and 400 spokes,
 *     0.035 at dk 1/2, 0.0098 at dk 1/4): sample radial readouts 2x;
 *   Archimedean spiral, 8 interleaves x 8 turns (2x Nyquist): Pipe-Menon 0.025 (0.9995);
 *   golden-angle frames of 21 spokes (2x readout): ramp 0.07 (0.973), Pipe-Menon 0.054 (0.999).
 *   Pipe-Menon residual rms(rho - 1): 24 at w = 1, 0.037 after one iteration, 0.005 after 20
 *   (full radial 2x), monotone; Pipe-Menon / ramp within 2 % for 4 <= |k| <= N/2 - 4.
 *
 * Ramp (radial, full-diameter spokes through the centre, n_spokes spokes spread over 180 (or
 * 360) degrees, any order: uniform, golden angle, frames of a few golden-angle spokes): with dk
 * the spoke's sample spacing (from its first and last sample) and S = n_spokes,
 *   2D: w = (pi / S) dk max(|k|, dk / 4)        (the ring of |k| +- dk/2 shared by 2S samples;
 *                                                the DC sample: the disc of radius dk/2 / S)
 *   3D: w = (2 pi / S) dk max(|k|^2, dk^2 / 12) (the shell of |k| +- dk/2 shared by 2S
 *                                                samples; DC: the ball of radius dk/2 / S)
 * (3D when image_dims[2] > 1). Valid on average over the angles (golden angle: the mean angular
 * spacing pi / S).
 *
 * Pipe-Menon (Pipe and Menon, MRM 41:179, 1999): w <- w / (C w), C w the density of the
 * weighted points convolved with a kernel, evaluated at each point: the weights are spread onto
 * the oversampled grid and interpolated back with a NUFFT plan's own kernel
 * (r5_nufft_spread_grid, r5_nufft_interp_grid; image_dims gives the plan, 1 coil, NUFFT
 * defaults: the ES kernel of width 6 oversampled cells = 3 cells). The density is normalised by
 * the kernel's integral, rho_j = interp(spread(w))_j sigma^D / I^2, I = (integral of the 1D
 * kernel)^D in oversampled cells, so that rho = 1 where the weights equal the area per point and
 * the fixed point has the scale above. Starts from w = 1. The points go in chunks of about
 * R5_PROGRESS_CHUNK_MACS of spreading each (one plan per chunk, each chunk spread into its own
 * grid and added to the total, all interpolated from the total), with the stop hook between
 * chunks. Time (bench_density, 10 iterations, 2 cores shared with other jobs, load 8-10): 2D
 * 256^2 radial 512 x 402 (206k points) 1.3 s CPU (0.13 s per iteration); spiral 16 x 8192 0.87
 * s; 3D 64^3 kooshball 128 x 6434 (824k points) 10.7 s CPU; the real 3-interleave spiral of
 * ../shared/data/kspace-precond-spiral (320^2, 11988 points): 20 iterations 0.13 s CPU, residual
 * 0.70 -> 6.1e-4. The ramp: milliseconds. */
#ifndef R5_LINOP_DENSITY_H
#define R5_LINOP_DENSITY_H

#include "../core/ctx.h"
#include "../core/progress.h"

/* Radial ramp for n_read x n_spokes points (coords [3, n_read, n_spokes]). image_dims [N0, N1,
 * N2, ...]: 3D when N2 > 1. */
r5_status r5_density_ramp(const long image_dims[R5_DIMS], long n_read, long n_spokes, const float *coords,
			  float *weights);

/* Pipe-Menon weights after iters >= 1 iterations, for any points inside the image's k range. The
 * numbers above are after 20 iterations: the image keeps improving after the residual flattens
 * (full radial 2x: NRMSE 0.060 after 8 iterations, residual 7.8e-3; 0.025 after 20, 4.8e-3). */
r5_status r5_density_pipe_menon(r5_ctx *ctx, const long image_dims[R5_DIMS], long n_points, const float *coords,
				int iters, float *weights);

/* The same with the stop hook (checked every iteration) and the residual of each iteration:
 * residuals[t] (NULL: not kept, else iters floats) = rms_j (rho_j - 1) of the weights that
 * iteration t started from (t = 0: w = 1). */
r5_status r5_density_pipe_menon_ex(r5_ctx *ctx, const long image_dims[R5_DIMS], long n_points, const float *coords,
				   int iters, const r5_progress *progress, float *weights, float *residuals);

#endif
