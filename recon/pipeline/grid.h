/* Gridding of non-Cartesian k-space: the density-compensated adjoint NUFFT of one frame and its
 * coil combination (r5_grid_plan / r5_grid_frame, the building block of the `grid`, `realtime`
 * and `grasp` pipelines), and the `grid` pipeline for a whole non-Cartesian scan
 * (r5_pipeline_grid, pipelines.h).
 *
 * Data (recon/io/scan.h, the non-Cartesian model): samples [1, n_read, n_spokes, coils] in
 * arrival order, trajectory coordinates coords[3 j + d] in cycles per FOV of the image, sample
 * j = read + n_read * spoke (BART's [3, n_read, n_spokes] layout, real parts). A coordinate at
 * exactly +N_d/2 (BART and gpuNUFFT trajectories end there: the real radial set's first
 * sample is k0 = +128 for 256) is the same Fourier component as -N_d/2 on the image's integer
 * pixels, and is taken as -N_d/2 (the NUFFT wants [-N/2, N/2)); anything beyond is refused.
 *
 * Scaling: image = A^H W y with the NUFFT's unitary-like A (nufft.h) and density weights W such
 * that A^H W A is close to the identity, so a gridded image has the amplitude of the Cartesian
 * reconstruction of the same object (the centred unitary FFT): a weight is the k-space area its
 * sample stands for (recon/linop/density.h). For radial spokes (straight lines through the
 * centre: r5_grid_ramp tests it) that is density.h's ramp w_j = pi dk max(|k_j|, dk / 4) /
 * n_spokes (dk the sample spacing along the spoke; twice that for centre-out spokes); other
 * trajectories need weights (r5_pipeline_grid computes Pipe-Menon's, r5_density_pipe_menon).
 * Measured (tests/unit/test_grid.c, 64^2 Gaussian blob, 2 coils, 101 uniform spokes of 128
 * samples, 2x oversampled readout): NRMSE 1.0 % against the object over its support (maps and
 * rss alike); 3.7 % with 64 samples per spoke starting at +N/2.
 *
 * Coil combination: rss (sqrt sum |x_c|^2, magnitude) or, with maps S, the SENSE combination
 * sum_c conj(S_c) x_c / sum_c |S_c|^2 (0 where the maps vanish). r5_pipeline_grid also offers
 * adaptive (Walsh, recon/calib/combine.h) on the coil images.
 *
 * Host memory, CPU contexts only (the NUFFT's back ends: nufft.h). A plan belongs to one thread
 * at a time. */
#ifndef R5_PIPELINE_GRID_H
#define R5_PIPELINE_GRID_H

#include "../core/array.h"
#include "../core/progress.h"
#include "../linop/nufft.h"

typedef struct r5_grid_plan r5_grid_plan;

/* A plan per image size and coil count: image_dims = [Nx, Ny, Nz, coils] (Nz = 1 for 2D, other
 * dims 1), opts NULL for the NUFFT defaults. Reused across frames: the trajectory may change
 * each frame (golden angle), the number of points too. */
r5_status r5_grid_plan_make(r5_ctx *ctx, const long image_dims[R5_DIMS] /* Nx,Ny,Nz,coils */,
			    const r5_nufft_opts *opts, r5_grid_plan **out);

/* One frame: image = combine(A^H W samples). n_points = n_read * n_spokes of samples; coords as
 * above (n_points x 3 floats); weights n_points real density weights (NULL: the radial ramp
 * above, refused with R5_EINVAL when the spokes are not straight lines through the centre);
 * maps NULL: rss, else [Nx, Ny, Nz, coils] (host); coil_images NULL or [Nx, Ny, Nz, coils]
 * (host): the coil images are kept there; image [Nx, Ny, Nz] (host, complex; rss: real). */
r5_status r5_grid_frame(r5_ctx *ctx, r5_grid_plan *plan, long n_points, const float *coords,
			const float *weights /* NULL: ramp for radial */,
			const r5_array *samples /* [1, n_read, n_spokes, coils] */,
			const r5_array *maps /* NULL: rss; else [Nx,Ny,Nz,coils] */,
			r5_array *coil_images /* NULL or [Nx,Ny,Nz,coils]: kept */,
			r5_array *image /* [Nx,Ny,Nz] complex */);

void r5_grid_plan_destroy(r5_grid_plan *plan); /* NULL is harmless */

/* Bytes a plan for image_dims holds once it has gridded frames of n_points (the NUFFT's grid
 * and sorted samples, the coil images, weighted samples, coordinates and weights): for the
 * memory estimate. */
double r5_grid_plan_bytes(const long image_dims[R5_DIMS], long n_points, const r5_nufft_opts *opts);

/* Coordinates from a BART trajectory traj [3, n_read, n_spokes] (complex, real parts used):
 * spokes first_spoke .. first_spoke + n_spokes - 1 into coords (3 n_read n_spokes floats; k2 = 0
 * when image_dims[2] == 1), as they are (r5_grid_frame and r5_grid_ramp take them so; for
 * r5_nufft_set_points, r5_grid_wrap_coords them first). R5_EINVAL naming the spoke, sample, dimension and value
 * when a coordinate is not finite or outside [-N_d/2, N_d/2] of image_dims (in 2D, k2 must be
 * within [-1/2, 1/2]). */
r5_status r5_grid_coords(const r5_array *traj, const long image_dims[R5_DIMS], long first_spoke, long n_spokes,
			 float *coords);

/* In place: a coordinate at exactly +N_d/2 becomes -N_d/2 (the same component on integer
 * pixels; the NUFFT takes [-N/2, N/2)), and k_d = 0 along dimensions of size 1. */
void r5_grid_wrap_coords(const long image_dims[R5_DIMS], long n_points, float *coords);

/* The radial ramp above for n_spokes spokes of n_read samples (R5_EINVAL when they are not
 * straight lines through the centre, or n_read < 2). */
r5_status r5_grid_ramp(long n_read, long n_spokes, const float *coords, float *weights);

#endif
