/* Readout regridding: one readout line sampled at non-uniform k0 (ramp-sampled EPI, any
 * readout whose ADC runs while the gradient changes) onto the uniform Cartesian grid of the
 * encoded x, so that the scan builder (scan.h) places it as any Cartesian line.
 *
 * Model: the line is band-limited by the FOV, s(k) = sum_x f(x) exp(-2 pi i k (x - V/2) / V) over
 * V voxel positions x = 0 .. V-1 spread evenly across the FOV (V/2 rounded down; k in cycles per
 * FOV of the encoded x; the grid points are the integers u = -N/2 .. N/2-1, the builder's x index
 * u + N/2). With A the M x V matrix A[j, x] = exp(-2 pi i k_j (x - V/2) / V) of the M sample
 * positions k_j, the voxel values are the regularised least-squares solution of A f = s and the
 * grid values u = F f, F[u, x] = exp(-2 pi i u (x - V/2) / V), so one matrix G (N x M) maps
 * samples to grid:
 *   G = F (P + lambda P^2) A^H,   P = (A^H A + lambda I)^-1,   lambda = R5_READOUT_GRID_LAMBDA * lambda_max(A^H A)
 * — Tikhonov iterated once (f1 = P A^H s, f = f1 + P A^H (s - A f1)), which keeps a well
 * determined component's bias at (lambda / sigma^2)^2 (1e-12 for a readout that is not
 * degenerate) while components the samples barely see (M < V, clustered samples) are still
 * damped (gain ~ 2 sigma^2 / lambda): with more voxels than samples it is the minimum-norm fit.
 * Samples on the grid (any order, reversed included) come out as a permutation to round-off
 * for any V >= N.
 *
 * Why V = 2N (R5_READOUT_GRID_OS, what the builder uses) and not N: the model is V-periodic in k.
 * With V = N a sample at N/2 + d stands for -N/2 + d, and a ramp-sampled readout reaches past
 * both ends of the grid (the Pulseq ramp-sampled EPI: +-47.8 for N = 96), so the two ends of
 * k-space are forced to agree — exact only for a line that is itself N-periodic (f on N voxels),
 * 1e-2 wrong for a real object. With V = 2N nothing wraps within the samples' reach and the
 * fit interpolates the object's (continuous) spectrum: measured on phantom --seq of that file
 * with one uniform coil, image NRMSE 1.2e-2 (V = N) against 4.7e-5 (V = 2N; 5.1e-5 at 1.25 N);
 * on sharp-edged boxes 1e-2 against 1e-4 (tests/unit/test_readout_grid.c). V = N stays
 * available for lines that are N-periodic. Computed in the sample space (G = F A^H (Q +
 * lambda Q^2), Q = (A A^H + lambda I)^-1, the same matrix), where A A^H and F A^H are
 * Dirichlet kernels in closed form: an M x M Cholesky and 2 M^2 N for the solves, whatever V
 * (measured: N = 96, M = 136: 0.02 s; N = 256, M = 340: 0.22 s), once per distinct position
 * pattern.
 *
 * Gadgetron's EPIReconXObjectTrapezoid does the same in spirit (a pseudo-inverse of a sinc
 * interpolation from the trapezoid's sample positions, then a DFT to the image); here the
 * positions come with the data (ISMRMRD traj, trajectory_dimensions 1) and the output stays in
 * k-space.
 *
 * A plan keeps the last R5_READOUT_GRID_PATTERNS distinct position patterns with their G
 * (positions equal to R5_READOUT_GRID_SAME cycles are one pattern): every line of an EPI has
 * one of two (forward and reversed). One plan per caller, not thread-safe (the builder holds
 * one). Pure computation: no I/O, no back end. */
#ifndef R5_IO_READOUT_GRID_H
#define R5_IO_READOUT_GRID_H

#include <complex.h>

#include "../core/status.h"

#define R5_READOUT_GRID_LAMBDA 1e-6 /* Tikhonov lambda relative to the largest eigenvalue of A^H A */
#define R5_READOUT_GRID_OS 2        /* voxels per grid point the scan builder models (above) */
#define R5_READOUT_GRID_PATTERNS 4  /* position patterns a plan keeps */
#define R5_READOUT_GRID_SAME 1e-6   /* cycles: two patterns closer than this everywhere are one */

/* G for n_grid grid points, n_voxels (>= n_grid) voxels and m samples at k (cycles per FOV),
 * column-major: g[i + n_grid j] takes sample j to grid point i (frequency i - n_grid/2).
 * R5_EINVAL for sizes out of order or a position that is not finite (naming the sample),
 * R5_ENOMEM. */
r5_status r5_readout_grid_matrix(long n_grid, long n_voxels, long m, const double *k, double complex *g);

typedef struct r5_readout_grid r5_readout_grid;

r5_status r5_readout_grid_create(long n_grid, long n_voxels, r5_readout_grid **out);
void r5_readout_grid_destroy(r5_readout_grid *plan); /* NULL is harmless */

/* G for these m positions: from the plan when a kept pattern matches, else computed and kept
 * (replacing the pattern used longest ago). Valid until the next call on the plan. */
r5_status r5_readout_grid_get(r5_readout_grid *plan, long m, const double *k, const double complex **g);

/* n_lines lines of m samples at k (line c at in + c in_stride) onto the grid (line c at
 * out + c out_stride, n_grid values): out = G in, with G rounded to float and accumulated in
 * float (relative error about 1e-6 of the line: the data are float anyway), all lines in one
 * pass over G. Measured on this 2-core machine: 0.98 ms for 32 coils at n_grid 256, m 340 (the
 * per-coil double-complex loop took 4.5 ms). */
r5_status r5_readout_grid_apply(r5_readout_grid *plan, long m, const double *k, long n_lines, const float complex *in,
				long in_stride, float complex *out, long out_stride);

/* Bytes the plan holds (its patterns' positions and G). */
long r5_readout_grid_bytes(const r5_readout_grid *plan);
/* Patterns computed so far (cache misses), for tests and logs. */
long r5_readout_grid_computed(const r5_readout_grid *plan);

#endif
