/* Compressed sensing through the NUFFT (issue 14): one frame of non-Cartesian data, solved by
 * cs.c's r5_cs_solve (the same keys: reg l1 | tv | l1+tv, lambda_l1 / lambda_tv relative to max
 * |E^H y| or auto from the noise, wavelet, spins, iters) with the encoding E = A S: S the coil maps
 * (r5_linop_maps), A the NUFFT of recon/linop/nufft.h, whose normal is the Toeplitz one (no
 * NUFFT inside the iterations).
 *
 * Scaling: cs.c's FISTA steps by 1 / n_maps, which assumes |E^H E| <= 1 (true for the unitary
 * FFT and ESPIRiT maps). Through the NUFFT |E^H E| follows the sampling density (about
 * n_spokes * pi / 2 / N times the maps' energy for radial), so E and y are both scaled by
 * 1 / sqrt(max_eig), with max_eig of E^H E from 20 power iterations (tolerance 1e-2, times 1.05:
 * the estimate approaches from below). The minimiser is unchanged for relative weights (max
 * |E^H y| scales by 1 / max_eig too); the auto weights see the noise std scaled by the same
 * 1 / sqrt(max_eig), so kappa x sigma keeps its Cartesian meaning (sigma is the k-space noise
 * std of the scaled data).
 *
 * Noise (auto weights): r5_nc_noise_sigma, the robust std of the samples on the periphery of
 * k-space (radius |k_d| / (N_d / 2) >= 0.9 over the encoded dims), as r5_cs_noise_sigma does on a
 * Cartesian mask.
 *
 * Measured. Phantom (tests/unit/test_nc_cs.c: 48^2, 4 coils, 16 golden-angle spokes of 96
 * samples, complex noise std 0.004): NRMSE against the truth with the true maps nc CG-SENSE
 * 0.0118, cs l1 (auto) 0.0065, tv 0.0044; the pipelines on the same scan (NLINV maps, magnitude
 * NRMSE) sense 0.0098, cs 0.0058. Real radial cardiac set (25 spokes, 12 coils, 256^2;
 * bench/bench_noncart.sh): `recon5t recon --pipeline cs` with the defaults correlates 0.987
 * with `bart nlinv -i 10 -t` (nc sense with the same NLINV maps: 0.968). The solve alone with
 * BART's ecalib maps, lambda_l1 0.01, 30 iterations, 1 thread, FFTW wisdom: 3.3 s wall (3.2 s
 * user) against `bart pics -l1 -r 0.01 -i 30 -s 0.05 -t` 12.1 s (5.1 s user; without -s it
 * does not converge, 8.0 s), images correlating 0.996 (loaded machine, load 2.5..4). Strong
 * weights dim the magnitude where the image phase turns fast (complex wavelet coefficients
 * cancel there): on the radial set thin darker lines at about 0.66 rad/pixel phase gradients.
 *
 * Arrays: host arrays on a CPU context, as nc_sense.h: samples [1, n_read, n_lines, coils]
 * (n_read * n_lines = n_points), coords[3 j + d] in [-N_d/2, N_d/2) (cycles per FOV), maps
 * [Nx, Ny, Nz, coils], image [Nx, Ny, Nz] (its content is the initial guess). image_dims =
 * [Nx, Ny, Nz, coils]. */
#ifndef R5_PIPELINE_NC_CS_H
#define R5_PIPELINE_NC_CS_H

#include "../core/progress.h"
#include "pipeline.h"

typedef struct r5_nc_cs_info {
	double max_eig;    /* |E^H E| as used (power estimate x 1.05) */
	float noise_sigma; /* the noise std the auto weights saw, before scaling (< 0: none used) */
} r5_nc_cs_info;

/* The robust noise std of the samples at normalised radius >= 0.9 (median magnitude /
 * sqrt(ln 2)); 0 when fewer than 64 such samples (the auto weights then use their floor). */
float r5_nc_noise_sigma(const long image_dims[R5_DIMS], long n_points, const float *coords, const r5_array *samples);

/* One frame (see the header paragraph). p: the cs keys and iters (NULL: defaults). noise_sigma
 * < 0: measured by r5_nc_noise_sigma. progress: stage "cs" (and "cs-norm" for the power
 * iteration), its stop status returned. info: NULL or filled. */
r5_status r5_nc_cs_solve(r5_ctx *ctx, const r5_recon_params *p, const long image_dims[R5_DIMS], long n_points,
			 const float *coords, const r5_array *samples, const r5_array *maps, float noise_sigma,
			 const r5_progress *progress, r5_array *image, r5_nc_cs_info *info);

/* Peak bytes of the `cs` pipeline on a non-Cartesian scan (pipelines.h's sense account plus the
 * CS solve's operator and solver arrays), for the memory estimate. */
double r5_pipeline_nc_cs_bytes(const long image_dims[R5_DIMS], long n_read, long n_spokes, long frame_spokes,
			       long frames);

#endif
