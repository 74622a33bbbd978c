/* Gradient-delay estimation for radial k-space by RING (Rosenzweig, Holme and Uecker, "Simple
 * auto-calibrated gradient delay estimation from few spokes using Radial Intersections (RING)",
 * MRM 81:1898, 2019), and its correction (recon/linop/traj.h: r5_traj_apply_delay).
 *
 * Model (BART's, `bart traj -q x:y:xy`, so that the numbers are BART's): delay = (Sx, Sy, Sxy)
 * in readout samples, the symmetric matrix M = [[Sy, Sxy], [Sxy, Sx]] in the (k0, k1) basis
 * (BART's "x" is the gradient that reads along k1: its spoke at angle 0). A spoke with unit
 * direction u (in (k0, k1)) and sample spacing dk was really sampled at
 *   projected (default):  k = k_nominal + dk (u^T M u) u   (a shift along the spoke, `traj -q`)
 *   transverse:           k = k_nominal + dk M u           (`traj -q ... -O`)
 * RING: two spokes i, j at different angles share the k-space value at the point where their
 * real lines cross; the crossing is found in the data as the pair of nominal positions (a, b)
 * (samples from k = 0 along u_i, u_j) that minimises sum_coils |Y_i(a) - Y_j(b)|^2, Y the spoke's
 * samples interpolated by a Kaiser-windowed sinc (16 samples each side). Projected model: the
 * real lines cross at k = 0, so a = -u_i^T M u_i and b = -u_j^T M u_j; transverse: a u_i - b u_j
 * = M (u_j - u_i). Every spoke is paired with the spokes whose lines are 45..135 degrees from it
 * (at most n_partners of them, the nearest to orthogonal), and (Sx, Sy, Sxy) solves all the
 * pairs' equations by least squares. The search: a grid of 0.1 samples over [-search, search]^2,
 * its 4 lowest local minima each refined on a grid of 0.01 samples and a parabola per axis, the
 * lowest kept (one coarse minimum alone picked spurious near-coincidences 3 samples away on 2 of
 * 200 pairs); then the fit drops, twice, the pairs whose equations miss it by more than 4 x the
 * median pair's miss (and 0.02 samples) and refits.
 *
 * Measured (tests/unit/test_gradient_delay.c; 64^2 phantom of smooth-edged discs, 4 coils,
 * samples by the forward NUFFT at the delayed trajectory): golden angle, 55 spokes, 2x readout:
 * delays (0.6, -0.4, 0.25) and (-1.2, 0.9, -0.5) recovered to 3e-4 samples, none to 1e-5; 25
 * spokes over 360 degrees without readout oversampling (as the real cardiac set): 1.1e-3; with
 * complex noise of sigma = 0.5, 1, 2, 4 % of the peak sample (3 seeds each): max errors 0.007-0.010,
 * 0.013-0.020, 0.025-0.031, 0.029-0.069 — proportional to the noise and of either sign (the
 * crossing is one k-space point per pair: more partners per spoke do not help, the spokes' own
 * noise dominates); transverse model: 4e-4. Gridding (ramp, rss)
 * 101 golden spokes with delay (0.8, -0.6, 0.3): NRMSE 0.075 with the nominal trajectory, 0.026
 * with the estimate applied, 0.026 with the true one. Time: 0.2 s for the real set (25 spokes x
 * 256 x 12 coils, 8 partners each; bench_gradient_delay, loaded 2-core machine). On that set
 * (bench_gradient_delay): (-0.112, -0.289, -0.073) samples, BART 0.8 estdelay -R (-0.087, -0.272,
 * -0.065), its opposing-spoke estdelay (-0.085, -0.399, -0.117); gridded with our correction
 * and with BART RING's the images differ by 0.8 % (the correction itself changes them by 7 %). */
#ifndef R5_CALIB_GRADIENT_DELAY_H
#define R5_CALIB_GRADIENT_DELAY_H

#include "../core/array.h"
#include "../core/progress.h"

typedef struct r5_gradient_delay_opts {
	int transverse;  /* 0: projected model (default, BART's traj -q); 1: M u (traj -q -O) */
	int n_partners;  /* spokes paired with each spoke (the nearest to orthogonal), 0: all */
	double search;   /* half-width of the search for the crossing, readout samples (> 0) */
} r5_gradient_delay_opts;

extern const r5_gradient_delay_opts r5_gradient_delay_defaults; /* projected, 8 partners, 3 samples */

/* samples: host [1, n_read, n_spokes, coils] complex; coords: the NOMINAL trajectory [3, n_read,
 * n_spokes] (2D: k2 ignored), each spoke a straight line of equally spaced samples through
 * (near) k = 0. opts NULL: the defaults. delay[3] = (Sx, Sy, Sxy), readout samples.
 * residual (NULL: not kept): rms of the pairs' equations after the fit (samples). */
r5_status r5_gradient_delay_ring(const r5_array *samples, const float *coords, long n_read, long n_spokes,
				 const r5_gradient_delay_opts *opts, const r5_progress *progress, float delay[3],
				 float *residual);

#endif
