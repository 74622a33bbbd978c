/* The dynamic phantom (`recon5t phantom --kind dynamic`, issue 14): a 2D golden-angle radial
 * scan of an object that moves and takes up contrast while it is scanned, for GRASP and
 * real-time reconstructions.
 *
 * Object (normalised coordinates, the FOV spans [-1, 1]; a shape set of discs and ellipses,
 * shepp_logan.h, so k-space is the closed-form transform — no NUFFT crime):
 *  - body: ellipse, tissue 0.2;
 *  - a beating heart: a myocardium-like annulus (outer disc minus inner disc) at (-0.4, 0.05)
 *    whose cavity radius 0.14 - 0.04 s(t) and wall thickness 0.07 + 0.025 s(t) follow
 *    s(t) = sin(2 pi t / heart_period), around a blood pool;
 *  - a liver-like ellipse at (0.35, 0.05) with two lesions.
 *  Contrast (tau = t / scan duration in [0, 1)): blood pool 0.4 + 1.2 g(tau), a gamma variate
 *  g = (u e^(1 - u))^3, u = tau / 0.2 (peak 1 at tau = 0.2: the arterial bolus); myocardium
 *  0.35 + 0.3 g(tau - 0.05); liver 0.3 + 0.25 tau; lesion 1 (wash-in, wash-out, Tofts-like
 *  biexponential) 0.3 + 0.9 (1 - e^(-v/0.08)) e^(-v/0.8), v = tau - 0.1 >= 0; lesion 2 (slow
 *  wash-in) 0.3 + 0.6 (1 - e^(-v/0.35)), v = tau - 0.15 >= 0 (totals, not increments).
 *
 * Sampling: n_frames x frame_spokes spokes in arrival order, spoke s at angle s * psi, psi = the
 * golden angle pi / phi (111.246 deg), one spoke every tr_ms. Each spoke has os N samples
 * (os = readout_oversampling, 1 or 2), sample i at radius (i - os N/2) / os cycles per FOV along
 * (k0, k1) = (sin, cos) of its angle, coordinates in [-N/2, N/2) (model.md): exactly
 * r5_traj_radial(R5_TRAJ_RADIAL_GOLDEN) of recon/linop/traj.h and `bart traj -r -G -c`.
 * Motion: the object is evaluated at each spoke's own time t_s = s tr_ms (continuous motion, not
 * per frame), unless per_frame_motion, when every spoke of a frame sees the frame's middle time.
 *
 * Scaling: the samples of coil c are y = F_c(k) / (dx dy sqrt(N^2)) (F the continuous transform
 * of S_c f, k in cycles/mm), so that r5_nufft_forward (recon/linop/nufft.h) of the coil images
 * S_c f sampled on the N x N grid reproduces them (up to discretisation). Coils: coils.h (the
 * Fourier-series sensitivities, fitted on the body ellipse); noise: noise.h (complex Gaussian,
 * correlated, one random stream per spoke, so the data do not depend on the thread count).
 *
 * Truth: per frame, at the time of the frame's middle spoke, the object band-limited to the
 * N x N Cartesian extent (its transform on the grid, centred unitary inverse FFT, magnitude:
 * what the other kinds write as "ground_truth") and the voxel average (4 x 4 sub-samples, the
 * "object" image). The matrix is square (nx = ny) and so is the FOV. */
#ifndef R5_PHANTOMS_DYNAMIC_H
#define R5_PHANTOMS_DYNAMIC_H

#include "../recon/core/array.h"
#include "phantom.h"

#define R5_DYNAMIC_GOLDEN_ANGLE 1.9416110387254665 /* pi / phi, radians (111.246 deg) */

/* What r5_dynamic_simulate makes (host arrays, the caller frees with r5_dynamic_free). */
typedef struct r5_dynamic_scan {
	long n_read, n_spokes, n_frames, frame_spokes;
	r5_array *samples; /* [1, n_read, n_spokes, coils] complex, arrival order */
	r5_array *traj;    /* [3, n_read, n_spokes], real parts cycles per FOV, k2 = 0 */
	r5_array *truth;   /* [N, N, 1, ..., frames in dim 10]: band-limited magnitude (real) */
	r5_array *object;  /* same dims: voxel-averaged object */
	double *frame_time_s; /* n_frames: the time the frame's truth shows (middle spoke) */
} r5_dynamic_scan;

/* The object at time t_s (seconds from the first spoke) for a scan of duration_s. */
r5_status r5_dynamic_object(const struct r5_phantom_params *p, double t_s, double duration_s, r5_shape_set *object);

/* The golden-angle trajectory of spokes first..first+count-1: coords[3 (i + n_read j) + d],
 * cycles per FOV (n_read = os N; k2 = 0). */
void r5_dynamic_trajectory(const struct r5_phantom_params *p, long first, long count, float *coords);

/* Simulates the whole scan (OpenMP over spokes) into `scan`; with_truth 0 leaves truth and
 * object NULL. */
r5_status r5_dynamic_simulate(const struct r5_phantom_params *p, int with_truth, r5_dynamic_scan *scan);
void r5_dynamic_free(r5_dynamic_scan *scan); /* zeroed / NULL harmless */

/* The checks specific to the dynamic kind (square matrix and FOV, frames, spokes, 2D). */
r5_status r5_dynamic_check(const struct r5_phantom_params *p);

#endif
